"""Issuing and verifying documents: number per kind and year, verification code, registry row with the SHA-256 of
the bytes handed out, an audit entry, and the filing hooks (the dossier of the person or employer concerned —
the electronic archive — registers one with ``on_issued``)."""

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from fastapi.params import Depends as DependsParam
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.kernel import audit, clock, context
from services.kernel.auth import RoleGuard
from services.kernel.db import snapshot_session, unit_of_work
from services.kernel.documents.excel import render_xlsx
from services.kernel.documents.models import IssuedDocument
from services.kernel.documents.pdf import REFERENCE_TAG, DocumentBody, Stamp, render_pdf
from services.kernel.errors import Forbidden, Invalid, NotFound
from services.kernel.events import new_event_id

# Crockford-like: no 0/O, 1/I/L that a reader confuses when typing the code from paper.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_GROUPS, CODE_GROUP_LENGTH = 3, 4
NUMBER_ATTEMPTS = 5  # another replica may take the same serial between the read and the insert
SHA256_FORM = re.compile(r"^[0-9a-f]{64}$")
REFERENCE = re.compile(rb"%s([a-z_]{1,50})/([0-9]{4})/([0-9]{1,9})" % REFERENCE_TAG.encode())


@dataclass(frozen=True)
class DocumentKind:
    """A kind of document a service issues: ``code`` in the registry, ``title`` printed, ``prefix`` of its number
    (``prefix〔year〕serial号``, the form of a 发文字号)."""

    code: str
    title: str
    prefix: str
    # Its tables are also kept as a workbook (excel.py) a supervisor files: rendered at issue with the PDF's
    # number, code and hash, and kept with it, so both can be fetched again as they were handed out.
    workbook: bool = False


@dataclass(frozen=True)
class Subject:
    """What the document is about inside the issuing service (never shown by the public verification)."""

    type: str
    id: str


FilingHook = Callable[[Session, IssuedDocument], None]
_filing_hooks: list[FilingHook] = []


def on_issued(hook: FilingHook) -> FilingHook:
    """Register ``hook(session, document)``, called in the issuing transaction for every document: where the
    dossier (档案) filing of the electronic archive attaches itself."""
    _filing_hooks.append(hook)
    return hook


def issuing_unit(default: str) -> str:
    """The body a document is signed by: the unit of the member of staff issuing it (their token), else ``default``
    (the service's own body)."""
    return context.current().actor.unit or default


def new_verification_code() -> str:
    groups = ("".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_LENGTH)) for _ in range(CODE_GROUPS))
    return "-".join(groups)


def normalise_code(code: str) -> str:
    """What a person typed, in the printed form: case and separators do not matter."""
    plain = re.sub(r"[\s\-－—_]", "", code).upper()
    return "-".join(plain[i:i + CODE_GROUP_LENGTH] for i in range(0, len(plain), CODE_GROUP_LENGTH))


def document_number(kind: DocumentKind, year: int, serial: int) -> str:
    return f"{kind.prefix}〔{year}〕{serial}号"


def _next_serial(engine: Engine, kind: DocumentKind, year: int) -> int:
    with snapshot_session(engine) as session:
        last = session.execute(select(func.max(IssuedDocument.serial)).where(
            IssuedDocument.kind == kind.code, IssuedDocument.year == year)).scalar_one()
    return (last or 0) + 1


def issue(engine: Engine, kind: DocumentKind, subject: Subject, body: DocumentBody) -> IssuedDocument:
    """Number, render, store and file one document; returns its registry row (``pdf`` holds the bytes).

    Rendering (font subsetting, a second or two) happens outside any transaction, so no write lock is held
    while it runs; the serial read before it is checked by the unique constraint when the row is written."""
    actor = context.current().actor
    for _ in range(NUMBER_ATTEMPTS):
        issued_at = clock.utc_now()
        issued_on = issued_at.astimezone(clock.CHINA).date()  # the year of the number is the date's, at midnight too
        year = issued_on.year
        serial = _next_serial(engine, kind, year)
        stamp = Stamp(title=kind.title, number=document_number(kind, year, serial),
                      verification_code=new_verification_code(), issued_at=issued_at, issued_on=issued_on,
                      reference=f"{kind.code}/{year}/{serial}")
        pdf = render_pdf(body, stamp)
        document = IssuedDocument(
            id=new_event_id(), kind=kind.code, year=year, serial=serial, number=stamp.number,
            verification_code=stamp.verification_code, sha256=hashlib.sha256(pdf).hexdigest(), title=kind.title,
            subject_type=subject.type, subject_id=subject.id, issued_at=issued_at, issued_by=actor.id,
            issued_role=actor.role, size_bytes=len(pdf), pdf=pdf)
        if kind.workbook:
            document.xlsx = render_xlsx(body, document)
        try:
            with unit_of_work(engine) as session:
                _store(session, document)
        except IntegrityError:
            continue  # the serial was taken meanwhile: number it again
        return document
    raise RuntimeError(f"文书编号分配失败：{kind.code} {NUMBER_ATTEMPTS} 次冲突")


def _store(session: Session, document: IssuedDocument) -> None:
    session.add(document)
    session.flush()
    audit.append_audit(session, action="document.issued", entity_type="document", entity_id=document.number,
                       detail={"kind": document.kind, "sha256": document.sha256, "subject_type": document.subject_type,
                               "subject_id": document.subject_id, "size_bytes": document.size_bytes})
    for hook in _filing_hooks:
        hook(session, document)


def documents_of(session: Session, subject: Subject, kind: str | None = None) -> list[IssuedDocument]:
    query = select(IssuedDocument).where(IssuedDocument.subject_type == subject.type,
                                         IssuedDocument.subject_id == subject.id)
    if kind is not None:
        query = query.where(IssuedDocument.kind == kind)
    return list(session.execute(query.order_by(IssuedDocument.issued_at)).scalars())


# -- fetching an issued document again (its holder's role, the object rule, the audit chain) ------------------------

# Raises (403 OUT_OF_REGION, 404 …) when the current actor may not read the business object a document is about.
ObjectRule = Callable[[Session, IssuedDocument], None]


@dataclass(frozen=True)
class Readers:
    """Who may fetch a kind of document again: the roles that read what it is about (as that object's own GET
    route allows), and the object rule that route applies (the person's or employer's area …)."""

    roles: tuple[str, ...]
    rule: ObjectRule | None = None

    @classmethod
    def like(cls, policy: DependsParam, rule: ObjectRule | None = None) -> "Readers":
        """The roles of a route's policy (``allow(...)`` of the object's own GET route), so the two never drift."""
        guard = policy.dependency
        if not isinstance(guard, RoleGuard):
            raise TypeError("Readers.like takes an allow(...) policy")
        return cls(tuple(sorted(guard.roles)), rule)


def by_number(session: Session, number: str) -> IssuedDocument:
    document = session.execute(select(IssuedDocument).where(
        IssuedDocument.number == number.strip())).scalar_one_or_none()
    if document is None:
        raise NotFound("DOCUMENT_NOT_FOUND", f"文书 {number.strip()} 不存在")
    return document


def fetch_issued(engine: Engine, number: str, readers: dict[str, Readers], *, form: str,
                 purpose: str) -> tuple[IssuedDocument, bytes]:
    """The bytes handed out when ``number`` was issued (its PDF, or its workbook when ``form`` is xlsx), to an
    actor with a reading role of its kind who may read what it is about; who, when, which file and why go into the
    audit chain in the same transaction (nothing is handed out unrecorded)."""
    with unit_of_work(engine) as session:
        document = by_number(session, number)
        kind = readers.get(document.kind)
        actor = context.current().actor
        acting = next((r for r in actor.roles if kind is not None and r in kind.roles), None)
        if acting is None:
            allowed = "、".join(kind.roles) if kind is not None else "无"
            raise Forbidden("DOCUMENT_KIND_FORBIDDEN", f"无权获取{document.title}，需要角色：{allowed}")
        context.set_actor(replace(actor, role=acting))
        if kind.rule is not None:
            kind.rule(session, document)
        data = document.pdf if form == "pdf" else document.xlsx
        if data is None:
            raise NotFound("DOCUMENT_WORKBOOK_NOT_FOUND", f"{document.title}没有 Excel 版本，请获取 PDF")
        audit.append_audit(session, action="document.fetched", entity_type="document", entity_id=document.number,
                           detail={"kind": document.kind, "format": form,
                                   "sha256": hashlib.sha256(data).hexdigest()}, reason=purpose)
    return document, data


# -- verification (public: answers about the document, never about the person) ------------------------------------

def public_view(document: IssuedDocument) -> dict[str, Any]:
    return {"number": document.number, "kind": document.kind, "title": document.title,
            "issued_on": document.issued_at.astimezone(clock.CHINA).date().isoformat(),
            "sha256": document.sha256, "size_bytes": document.size_bytes}


def verify_by_code(session: Session, number: str, code: str) -> dict[str, Any]:
    """``genuine`` when the number exists and the code is its code; ``not_found`` otherwise (whether the number
    exists is not told apart from a wrong code: a guessed number learns nothing)."""
    document = session.execute(select(IssuedDocument).where(
        IssuedDocument.number == number.strip())).scalar_one_or_none()
    if document is None or not hmac.compare_digest(document.verification_code, normalise_code(code)):
        return {"result": "not_found"}
    return {"result": "genuine", "document": public_view(document)}


def presented_reference(pdf: bytes) -> str | None:
    """The ``kind/year/serial`` a presented file claims in its metadata (None when it names none)."""
    found = REFERENCE.search(pdf)
    return None if found is None else b"/".join(found.groups()).decode()


def verify_by_hash(session: Session, sha256: str, reference: str | None = None) -> dict[str, Any]:
    """``genuine`` (unaltered) when these bytes are exactly a document issued here. Otherwise ``altered`` when the
    file claims (``reference``, from ``presented_reference``) to be a document issued here: the file is not the
    one handed out; else ``not_found``."""
    sha256 = sha256.strip().lower()
    if not SHA256_FORM.match(sha256):
        raise Invalid("INVALID_SHA256", "SHA-256 摘要应为 64 位十六进制字符")
    document = session.execute(select(IssuedDocument).where(IssuedDocument.sha256 == sha256)).scalar_one_or_none()
    if document is not None:
        return {"result": "genuine", "document": public_view(document)}
    claimed = _by_reference(session, reference) if reference else None
    if claimed is not None:
        return {"result": "altered", "document": {"number": claimed.number, "title": claimed.title,
                                                   "kind": claimed.kind}}
    return {"result": "not_found"}


def _by_reference(session: Session, reference: str) -> IssuedDocument | None:
    kind, _, rest = reference.partition("/")
    year, _, serial = rest.partition("/")
    if not (year.isdigit() and serial.isdigit()):
        return None
    return session.execute(select(IssuedDocument).where(
        IssuedDocument.kind == kind, IssuedDocument.year == int(year),
        IssuedDocument.serial == int(serial))).scalar_one_or_none()
