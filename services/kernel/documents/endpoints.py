"""Routes every issuing service mounts (through its own documents router): the public verification the gateway
fans out to, and the PDF response of an issuing endpoint."""

from collections.abc import Iterator
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StringConstraints
from sqlmodel import Session

from services.kernel.auth import allow, public
from services.kernel.documents import registry
from services.kernel.documents.models import IssuedDocument
from services.kernel.db import snapshot_session

Number = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


def _read_session(request: Request) -> Iterator[Session]:
    # A snapshot, as the services' GET routes read (service_app.get_session, which this package cannot import:
    # service_app → migrations → the registry's table here).
    with snapshot_session(request.app.state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(_read_session)]


class CodeCheck(BaseModel):
    number: Number = Field(description="文书编号, as printed")
    verification_code: Code = Field(description="验证码, as printed (case and dashes do not matter)")


class HashCheck(BaseModel):
    sha256: str = Field(min_length=64, max_length=64, description="SHA-256 of the presented file")
    reference: str | None = Field(default=None, max_length=80,
                                  description="what the file claims to be (kind/year/serial from its metadata)")


class PublicDocument(BaseModel):
    number: str
    kind: str
    title: str
    issued_on: str | None = None
    sha256: str | None = None
    size_bytes: int | None = None


class Verification(BaseModel):
    result: str = Field(description="genuine | altered | not_found")
    document: PublicDocument | None = None


def documents_router(readers: dict[str, registry.Readers]) -> APIRouter:
    """A service's ``/documents`` router, the public verification and the fetching again of its documents
    (``readers``: per kind code it issues, who may fetch one) already in it; the service adds its issuing routes."""
    router = APIRouter(prefix="/documents", tags=["documents"])
    router.include_router(verification_router())
    router.include_router(fetching_router(readers))
    return router


Purpose = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=500)]


def fetching_router(readers: dict[str, registry.Readers]) -> APIRouter:
    """``GET /issued/{number}``: an issued document as it was handed out, for the roles that read its kind."""
    router = APIRouter(prefix="/issued", tags=["documents"])
    roles = sorted({role for kind in readers.values() for role in kind.roles})
    kinds = "; ".join(f"{code}: {', '.join(kind.roles)}" for code, kind in sorted(readers.items()))

    @router.get("/{number}", response_class=Response, responses=FETCH_RESPONSES, dependencies=[allow(*roles)],
                summary="An issued document again, byte for byte as handed out (PDF, or its workbook)",
                description="By its number (文书编号, percent-encoded). Who may, per kind: " + kinds + "; and "
                            "only for what they may read (the person's or employer's area …). Nothing in it is "
                            "masked: it is the document issued. Who, when, which file and why (``purpose``) go "
                            "into the audit chain. 404 DOCUMENT_NOT_FOUND for an unknown number, "
                            "DOCUMENT_WORKBOOK_NOT_FOUND for xlsx of a kind kept as PDF only.")
    def fetch_issued(
        number: Annotated[str, Path(min_length=1, max_length=80, description="文书编号, as printed")],
        purpose: Annotated[Purpose, Query(description="why it is fetched again (kept in the audit chain)")],
        request: Request,
        form: Annotated[Literal["pdf", "xlsx"], Query(alias="format", description="pdf, or xlsx")] = "pdf",
    ) -> Response:
        document, data = registry.fetch_issued(request.app.state.engine, number, readers, form=form,
                                               purpose=purpose)
        return (pdf_response if form == "pdf" else xlsx_response)(document, data, status_code=200)

    return router


def verification_router() -> APIRouter:
    """``/verification/code`` and ``/verification/hash``, mounted in the service's ``/documents`` router."""
    router = APIRouter(prefix="/verification", tags=["documents"], dependencies=[public()])

    @router.post("/code", response_model=Verification, summary="Is this number with this code a document issued here?",
                 description="Public. Answers about the document only (title, number, date, hash), never about "
                             "the person or employer it concerns.")
    def verify_code(body: CodeCheck, session: SessionDep) -> Verification:
        return Verification.model_validate(registry.verify_by_code(session, body.number, body.verification_code))

    @router.post("/hash", response_model=Verification, summary="Are these exact bytes a document issued here?",
                 description="Public. ``altered`` when the file claims to be a document issued here but its "
                             "SHA-256 is not that document's.")
    def verify_hash(body: HashCheck, session: SessionDep) -> Verification:
        return Verification.model_validate(registry.verify_by_hash(session, body.sha256, body.reference))

    return router


PDF_RESPONSES: dict[int | str, dict] = {201: {
    "content": {"application/pdf": {}},
    "description": "the document as issued; X-Document-Id, X-Document-Number (percent-encoded), X-Document-Sha256"}}
PDF_OR_XLSX_RESPONSES: dict[int | str, dict] = {201: {
    "content": {"application/pdf": {}, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}},
    "description": "the document as issued (format=pdf), or its tables as a workbook (format=xlsx) naming the "
                   "registered PDF's number, verification code and SHA-256; X-Document-* headers as for the PDF"}}


FETCH_RESPONSES: dict[int | str, dict] = {200: {
    "content": {"application/pdf": {}, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {}},
    "description": "the document's bytes as issued; X-Document-Id, X-Document-Number (percent-encoded), "
                   "X-Document-Sha256 (of the PDF, the registered document)"}}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _file_response(document: IssuedDocument, data: bytes, media_type: str, suffix: str,
                   status_code: int) -> Response:
    filename = quote(f"{document.number}.{suffix}")
    return Response(data, status_code=status_code, media_type=media_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{filename}",
        "X-Document-Id": document.id,
        "X-Document-Number": quote(document.number),
        "X-Document-Sha256": document.sha256,
    })


def pdf_response(document: IssuedDocument, pdf: bytes | None = None, *, status_code: int = 201) -> Response:
    """The issued bytes, named by the document's number; its registry id, number and hash in headers."""
    return _file_response(document, document.pdf if pdf is None else pdf, "application/pdf", "pdf", status_code)


def xlsx_response(document: IssuedDocument, workbook: bytes | None = None, *, status_code: int = 201) -> Response:
    """A document's tables as a workbook; the headers name the registered document (the PDF) it belongs to."""
    return _file_response(document, document.xlsx if workbook is None else workbook, XLSX, "xlsx", status_code)
