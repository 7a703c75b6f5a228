"""Filing archive items (归档) of the electronic archive (社会保险业务档案) in the transaction of the act.

Where a business act is completed (a registration, an assessment, a claim decision, a payroll line, a case step),
the service that did it describes it as an archive item — whose dossier it goes to (a person or an employer), what
was decided, by whom at which level, which documents it references and the audit-chain position of the act's
entry — and files it here, in the same session as the act. The service's *sink* takes the items: in accounts,
which keeps the dossiers, it writes them into the archive; elsewhere it writes them to the outbox as that service's
``<service>.archive_items.filed.v1`` events, at most ``MAX_ITEMS_PER_EVENT`` per event, which accounts consumes.
Either the act and its items commit together or neither does.

Mechanics only: which acts are filed, their titles and their retention classes are the services' business.

A service attaches its ``Filing`` (its sink, and the dossiers its issued documents go to: the documents registry's
``on_issued`` hook files each one) to its engine when its app starts (``ServiceSpec.archive``). A session whose
engine has no sink (a tool or a test working on a bare database) files nothing: there is no archive to file into.
"""

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session

from services.kernel import bulk, clock, context
from services.kernel.documents import registry
from services.kernel.documents.models import IssuedDocument
from services.kernel.models import AuditEntry
from services.kernel.outbox import record_events

MAX_ITEMS_PER_EVENT = 1000  # as every bulk event (ARCHITECTURE.md principle 6)

PERSON, EMPLOYER = "person", "employer"
# An on-site inspection's own file (001 第十一条): where its feedback letter goes when the inspected unit is not a
# registered employer (an agency: it has no dossier of its own in the business archive).
INSPECTION = "inspection"
ISSUED_DOCUMENT = "issued_document"
SUBJECT_TYPES = (PERSON, EMPLOYER, INSPECTION)


@dataclass(frozen=True)
class ArchiveItem:
    """One completed act as filed into one dossier.

    ``act_id`` names the act in its service (a claim decision's id, a payroll line's id, ``<assessment>``…): the
    same act filed twice into the same dossier is one item (``source``, ``item_type``, ``act_id`` and the subject
    are its key)."""

    subject_type: str  # person | employer | inspection
    subject_id: str  # the id accounts gave the person or employer
    item_type: str
    act_id: str
    title: str
    decision: str  # what was decided, in words
    decided_by: str
    decided_role: str | None = None
    level: str | None = None  # the review level that decided (初审/复审/审批) where there are levels
    references: dict[str, str] = field(default_factory=dict)  # document numbers, SHA-256, business ids
    audit_seq: int | None = None
    audit_hash: str | None = None
    occurred_at: str = ""  # RFC 3339; now when not given
    # What the filer knows of the subject (its registration number — citizen id or USCC —, name and region): the
    # archive opens a dossier with them without asking its registry. None: the archive looks them up.
    registration_number: str | None = None
    subject_name: str | None = None
    region: str | None = None

    def as_line(self, source: str) -> dict[str, Any]:
        # Field by field, not dataclasses.asdict (which deep-copies every value: most of a bulk filing's CPU).
        line = {name: getattr(self, name) for name in _FIELDS}
        line["source"] = source
        line["references"] = dict(self.references)
        line["occurred_at"] = self.occurred_at or clock.utc_now().isoformat()
        return line


Position = AuditEntry | tuple[int, str] | None  # the act's audit entry, or its (seq, hash)


_FIELDS = tuple(f.name for f in fields(ArchiveItem))


def act(subject_type: str, subject_id: str, item_type: str, act_id: str, title: str, decision: str, *,
        audit: Position = None, level: str | None = None, references: dict[str, str] | None = None,
        registration: tuple[str, str, str] | None = None) -> ArchiveItem:
    """An item for an act done now by the current actor; ``audit`` is the act's audit-chain entry or position;
    ``registration`` the subject's (registration number, name, region) where the filer has them at hand."""
    number, name, region = registration or (None, None, None)
    actor = context.current().actor
    seq, digest = (audit.seq, audit.hash) if isinstance(audit, AuditEntry) else audit or (None, None)
    return ArchiveItem(
        subject_type=subject_type, subject_id=subject_id, item_type=item_type, act_id=act_id, title=title,
        decision=decision, decided_by=actor.id, decided_role=actor.role, level=level,
        references={k: str(v) for k, v in (references or {}).items() if v is not None},
        audit_seq=seq, audit_hash=digest,
        occurred_at=clock.utc_now().isoformat(), registration_number=number, subject_name=name, region=region)


# A sink receives the items of one filing as plain dicts (``ArchiveItem.as_line``), in the caller's session.
Sink = Callable[[Session, list[dict[str, Any]]], None]
# A dossier an issued document is filed into: (subject_type, subject_id), or with the subject's (registration
# number, name, region) where the filer has them (the archive opens the dossier with them: ArchiveItem).
DossierRef = tuple[str, str] | tuple[str, str, tuple[str | None, str | None, str | None]]
# The dossiers an issued document of the service is filed into.
DocumentDossiers = Callable[[Session, IssuedDocument], list[DossierRef]]


def _no_dossiers(session: Session, document: IssuedDocument) -> list[DossierRef]:
    return []


@dataclass(frozen=True)
class Filing:
    """How a service files: its sink, and which dossiers its issued documents go to."""

    sink: Sink
    document_dossiers: DocumentDossiers = _no_dossiers


_filings: "weakref.WeakKeyDictionary[Engine, tuple[str, Filing]]" = weakref.WeakKeyDictionary()


def attach(engine: Engine, service: str, filing: Filing) -> None:
    """Make ``filing`` take the items filed in sessions of ``engine`` (the service's app does this at start-up)."""
    _filings[engine] = (service, filing)


def detach(engine: Engine) -> None:
    _filings.pop(engine, None)


def file_items(session: Session, items: Iterable[ArchiveItem]) -> int:
    """File ``items`` in the caller's transaction; returns how many were handed to the sink."""
    attached = _filings.get(session.get_bind())
    if attached is None:
        return 0
    service, filing = attached
    lines = [item.as_line(service) for item in items]
    if lines:
        filing.sink(session, lines)
    return len(lines)


@registry.on_issued
def file_issued_document(session: Session, document: IssuedDocument) -> None:
    """Every issued document goes into the dossiers it concerns, with its number and the SHA-256 of its bytes."""
    attached = _filings.get(session.get_bind())
    if attached is None:
        return
    _, filing = attached
    dossiers = filing.document_dossiers(session, document)
    if not dossiers:
        return
    # The registry appended the document.issued entry just before calling the hooks: the last of the chain.
    [(seq, digest)] = latest_positions(session, 1)
    file_items(session, [_document_item(document, dossier, (seq, digest)) for dossier in dossiers])


def _document_item(document: IssuedDocument, dossier: DossierRef, position: tuple[int, str]) -> ArchiveItem:
    subject_type, subject_id, *known = dossier
    number, name, region = known[0] if known else (None, None, None)
    return ArchiveItem(
        subject_type=subject_type, subject_id=subject_id, item_type=ISSUED_DOCUMENT, act_id=document.id,
        title=document.title, decision=f"签发 {document.number}", decided_by=document.issued_by,
        decided_role=document.issued_role,
        references={"document_number": document.number, "document_sha256": document.sha256,
                    "document_kind": document.kind},
        audit_seq=position[0], audit_hash=position[1], occurred_at=document.issued_at.isoformat(),
        registration_number=number, subject_name=name, region=region)


def outbox_sink(payload_type: Callable[..., Any], *, source: str) -> Sink:
    """The sink of a service that keeps no archive: its items go out through its outbox, ``MAX_ITEMS_PER_EVENT``
    to an event of ``payload_type`` (``items=[...]``), subject the first item's dossier."""
    def sink(session: Session, lines: list[dict[str, Any]]) -> None:
        record_events(session, [(payload_type(items=list(chunk)), f"{chunk[0]['subject_type']}:{chunk[0]['subject_id']}")
                                for chunk in bulk.chunks(lines, MAX_ITEMS_PER_EVENT)], source=source)

    return sink


def file_act(session: Session, dossiers: Iterable[tuple[str, str]], item_type: str, act_id: str, title: str,
             decision: str, *, audit: Position = None, level: str | None = None,
             references: dict[str, str] | None = None, registration: tuple[str, str, str] | None = None) -> int:
    """One act done now by the current actor, filed into each of ``dossiers`` ((subject type, id) pairs)."""
    return file_items(session, [act(subject_type, subject_id, item_type, act_id, title, decision, audit=audit,
                                     level=level, references=references, registration=registration)
                                for subject_type, subject_id in dossiers])


def latest_positions(session: Session, count: int) -> list[tuple[int, str]]:
    """(seq, hash) of the last ``count`` audit entries, oldest first: the positions of the entries a bulk act has
    just appended with ``append_audit_many`` in this transaction (which holds the chain's head, so they are the
    last ones)."""
    if count <= 0:
        return []
    rows = session.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(count))
    return [(seq, digest) for seq, digest in reversed(rows.all())]
