"""Routes every issuing service mounts (through its own documents router): the public verification the gateway
fans out to, and the PDF response of an issuing endpoint."""

from collections.abc import Iterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, StringConstraints
from sqlmodel import Session

from services.kernel.auth import public
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


def documents_router() -> APIRouter:
    """A service's ``/documents`` router, the public verification already in it; the service adds its issuing
    routes."""
    router = APIRouter(prefix="/documents", tags=["documents"])
    router.include_router(verification_router())
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


def pdf_response(document: IssuedDocument) -> Response:
    """The issued bytes, named by the document's number; its registry id, number and hash in headers."""
    filename = quote(f"{document.number}.pdf")
    return Response(document.pdf, status_code=201, media_type="application/pdf", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{filename}",
        "X-Document-Id": document.id,
        "X-Document-Number": quote(document.number),
        "X-Document-Sha256": document.sha256,
    })


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_response(document: IssuedDocument, workbook: bytes) -> Response:
    """A document's tables as a workbook; the headers name the registered document (the PDF) it belongs to."""
    filename = quote(f"{document.number}.xlsx")
    return Response(workbook, status_code=201, media_type=XLSX, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{filename}",
        "X-Document-Id": document.id,
        "X-Document-Number": quote(document.number),
        "X-Document-Sha256": document.sha256,
    })
