"""Filing into the dossiers: accounts' own acts directly (its ``Filing`` sink), and the items other services send
(``*.archive_items.filed.v1``), idempotently: an act already in a dossier is not filed again."""

from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, literal_column, select, text
from sqlmodel import Session

from services.accounts.archives.models import Disposal, DisposalLine, Dossier, DossierItem
from services.accounts.archives.retention import expires_after, retention_of
from services.accounts.archives.seals import sealed_years
from services.accounts.models import Employer, Person
from services.kernel import archives, clock
from services.kernel.audit import canonical_json
from services.kernel.bulk import dialect_of, in_parameter, insert_many, parameter_values
from services.kernel.db import KeyRead
from services.kernel.events import new_event_id
from services.kernel.locks import lock_keys


@lru_cache(maxsize=4)
def _dossier_query(dialect: str) -> KeyRead:
    """The dossiers of one subject type (``:subject_type``) among ``:ids``, locked: built once per dialect (building
    the statement cost more than running it, and archive events are small: one act each, as often as not), and
    run at the driver on SQLite (``KeyRead.all``: SQLAlchemy's execution context cost more than the read)."""
    return KeyRead(select(Dossier.id, Dossier.subject_type, Dossier.subject_id, Dossier.item_count)
                   .where(Dossier.subject_type == bindparam("subject_type"),
                          in_parameter(dialect, Dossier.subject_id, "ids"))
                   .with_for_update())


@lru_cache(maxsize=4)
def _filed_query(dialect: str) -> KeyRead:
    """(dossier, source, item type, act) of the acts among ``:acts`` filed into the dossiers among ``:dossiers``, or
    filed there and destroyed by a disposal; built once per dialect, run at the driver on SQLite (``KeyRead.all``:
    SQLAlchemy's execution context and rows cost more than the read of an archive event's few acts). The status is
    a literal of the statement (``KeyRead`` binds only the caller's parameters)."""
    return KeyRead(
        select(DossierItem.dossier_id, DossierItem.source, DossierItem.item_type, DossierItem.act_id)
        .where(in_parameter(dialect, DossierItem.dossier_id, "dossiers"),
               in_parameter(dialect, DossierItem.act_id, "acts"))
        .union_all(select(DisposalLine.dossier_id, DisposalLine.source, DisposalLine.item_type, DisposalLine.act_id)
                   .join(Disposal, Disposal.id == DisposalLine.disposal_id)
                   .where(Disposal.status == literal_column("'destroyed'"),
                          in_parameter(dialect, DisposalLine.act_id, "acts"),
                          in_parameter(dialect, DisposalLine.dossier_id, "dossiers"))))


def _registry_facts(session: Session, subject_type: str, ids: list[str]) -> dict[str, tuple[str, str, str]]:
    """(registration number, name, region) of the persons or employers ``ids``."""
    if subject_type == archives.PERSON:
        query = select(Person.id, Person.citizen_id, Person.name, Person.region).where(Person.id.in_(ids))
    else:
        query = select(Employer.id, Employer.uscc, Employer.name, Employer.region).where(Employer.id.in_(ids))
    return {row[0]: tuple(row[1:]) for row in session.execute(query)}


@dataclass(slots=True)
class _Open:
    """A dossier being filed into: its id and its item count (the last 件号)."""

    id: str
    count: int
    before: int
    opened: bool = False  # by this filing


def _dossiers(session: Session, keys: set[tuple[str, str]], known: dict[tuple[str, str], tuple],
              now: datetime) -> tuple[dict[tuple[str, str], _Open], list[dict[str, Any]]]:
    """The dossiers of ``keys`` (subject type, id), locked for this transaction, and the rows of those to open
    (inserted by the caller with their item counts: an import's chunk opens a thousand in one insert)."""
    # Two transactions opening the same subject's first dossier at once (PostgreSQL, READ COMMITTED) would both
    # insert it: the second waits here for the first to commit, then finds it.
    lock_keys(session, "accounts.archive_dossier", {i for _, i in keys})
    wanted: dict[str, set[str]] = defaultdict(set)
    for subject_type, subject_id in keys:
        wanted[subject_type].add(subject_id)
    # One query per subject type, on the (subject type, subject id) unique index: by subject id alone SQLite scanned
    # every dossier for each filing, a cost growing with the archive.
    dialect = dialect_of(session)
    found = {(t, i): _Open(d, n, n) for subject_type, ids in wanted.items() for d, t, i, n in _dossier_query(
        dialect).all(session, subject_type=subject_type, ids=parameter_values(dialect, ids))}
    by_type: dict[str, list[str]] = defaultdict(list)
    for subject_type, subject_id in keys - found.keys():
        by_type[subject_type].append(subject_id)
    rows = []
    for subject_type, ids in by_type.items():
        facts = {i: known[(subject_type, i)] for i in ids if (subject_type, i) in known}
        if len(facts) < len(ids):
            facts |= _registry_facts(session, subject_type, [i for i in ids if i not in facts])
        for subject_id in ids:
            number, name, region = facts.get(subject_id, (None, None, None))
            rows.append({"id": new_event_id(), "subject_type": subject_type, "subject_id": subject_id,
                         "registration_number": number, "name": name, "region": region, "opened_at": now,
                         "item_count": 0, "last_filed_at": None})
            found[(subject_type, subject_id)] = _Open(rows[-1]["id"], 0, 0, opened=True)
    return found, rows


def _already_filed(session: Session, dossier_ids: list[str], lines: list[dict[str, Any]]) -> set[tuple]:
    """(dossier, source, item type, act) of the acts already filed — or filed and destroyed by a disposal, which a
    late redelivery must not bring back. Dossiers opened by this filing have none (an import's chunk asks nothing)."""
    if not dossier_ids:
        return set()
    dialect = dialect_of(session)
    acts = {line["act_id"] for line in lines}
    rows = _filed_query(dialect).all(session, dossiers=parameter_values(dialect, dossier_ids),
                                     acts=parameter_values(dialect, acts))
    return {tuple(row) for row in rows}


COUNT_ITEMS = text("UPDATE archive_dossier SET item_count = :n, last_filed_at = :at WHERE id = :id").bindparams(
    bindparam("at", type_=Dossier.__table__.c.last_filed_at.type))


def file_lines(session: Session, lines: list[dict[str, Any]], *, event_id: str | None = None) -> int:
    """File archive item lines (``ArchiveItem.as_line``) into their dossiers; returns how many were new."""
    valid = [line for line in lines if line["subject_type"] in archives.SUBJECT_TYPES]
    if not valid:
        return 0
    now = clock.utc_now()
    known = {(line["subject_type"], line["subject_id"]): (line["registration_number"], line["subject_name"],
                                                          line["region"])
             for line in valid if line.get("registration_number") and line.get("region")}
    dossiers, opened = _dossiers(session, {(line["subject_type"], line["subject_id"]) for line in valid}, known,
                                 now)
    seen = _already_filed(session, [d.id for d in dossiers.values() if not d.opened], valid)
    moments = _Moments()
    sealed = sealed_years(session, {moments.year(line["occurred_at"]) for line in valid})
    rows = []
    for line in valid:
        dossier = dossiers[(line["subject_type"], line["subject_id"])]
        key = (dossier.id, line["source"], line["item_type"], line["act_id"])
        if key in seen:
            continue
        seen.add(key)
        dossier.count += 1
        rows.append(_row(dossier, line, moments, now, event_id, sealed))
    for row in opened:
        row["item_count"] = dossiers[(row["subject_type"], row["subject_id"])].count
        row["last_filed_at"] = now
    insert_many(session, Dossier, opened)
    insert_many(session, DossierItem, rows)
    counted = [{"id": d.id, "n": d.count, "at": now} for d in dossiers.values() if not d.opened and d.count != d.before]
    if counted:
        session.connection().execute(COUNT_ITEMS, counted)
    return len(rows)


class _Moments:
    """The acts' times and archive years (the year the act was done, China time), parsed once per distinct time: the
    items of one act or one import chunk share it, and one ``datetime`` object is bound once by ``insert_many``."""

    def __init__(self) -> None:
        self._parsed: dict[str, tuple[datetime, int]] = {}

    def _get(self, occurred_at: str) -> tuple[datetime, int]:
        parsed = self._parsed.get(occurred_at)
        if parsed is None:
            moment = datetime.fromisoformat(occurred_at)
            parsed = self._parsed[occurred_at] = (moment, moment.astimezone(clock.CHINA).year)
        return parsed

    def at(self, occurred_at: str) -> datetime:
        return self._get(occurred_at)[0]

    def year(self, occurred_at: str) -> int:
        return self._get(occurred_at)[1]


def _row(dossier: _Open, line: dict[str, Any], moments: _Moments, now: datetime, event_id: str | None,
         sealed: set[int]) -> dict[str, Any]:
    year = moments.year(line["occurred_at"])
    retention = retention_of(line["item_type"], line.get("references"))
    return {
        "id": new_event_id(), "dossier_id": dossier.id, "serial": dossier.count, "year": year,
        "source": line["source"], "item_type": line["item_type"], "act_id": line["act_id"][:100],
        "title": line["title"][:200], "decision": line["decision"], "decided_by": line["decided_by"],
        "decided_role": line.get("decided_role"), "level": line.get("level"),
        "references": canonical_json(line.get("references") or {}), "audit_seq": line.get("audit_seq"),
        "audit_hash": line.get("audit_hash"), "retention_class": retention.retention_class,
        "retention_years": retention.years, "expires_after_year": expires_after(year, retention),
        "occurred_at": moments.at(line["occurred_at"]), "filed_at": now, "source_event_id": event_id,
        # Filed after its year was sealed: a supplement (补充归档), outside the sealed manifest.
        "supplement": year in sealed,
    }


def file_own(session: Session, lines: list[dict[str, Any]]) -> None:
    """accounts' sink: its own acts go straight into the dossiers, in the act's transaction."""
    file_lines(session, lines)


def document_dossiers(session: Session, document: Any) -> list[tuple[str, str]]:
    """accounts' documents are about a person (the individual account statement) or an employer."""
    if document.subject_type in archives.SUBJECT_TYPES:
        return [(document.subject_type, document.subject_id)]
    return []


FILING = archives.Filing(sink=file_own, document_dossiers=document_dossiers)
