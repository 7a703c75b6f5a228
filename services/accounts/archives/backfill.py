"""Backfill (补录归档): dossiers for the persons and employers registered before the archive existed (migration
8a1fa2d6ac01), with their registration and enrolment items, from accounts' own tables — until then such a subject
had no dossier before its next act, and that act's dossier lacked the registration.

A background job, in chunks of ``CHUNK`` records, each chunk one transaction with the job's progress, so a run
killed part-way resumes after its last committed chunk (``services.kernel.jobs``). Two passes, each keyset-ordered
(a city has millions of persons; no OFFSET scan):

1. ``audit`` — the audit chain in ``seq`` order, for the registration and enrolment-opening entries: the acts found
   there are filed with their audit position (seq, hash) and the actor who did them;
2. ``employer``, ``person``, ``enrolment`` — the tables in id order: whatever is still not filed (an import's rows,
   whose audit entry is the chunk's, or data older than the chain) is filed with its audit position "unknown".

Each item is marked as backfilled: its title says 补录归档, its references name the backfill job and whether the
audit position was found, its ``occurred_at`` is the act's original time and its ``filed_at`` the backfill's. An act
already in its dossier (filed when done, by an import, or by an earlier backfill) is not filed again — the filing's
own rule (``filing.file_lines``) —, so a second run files nothing; an enrolment already filed by an import (one item
per person naming its enrolments) is recognised by the ids the item references.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from services.accounts.archives.filing import file_lines
from services.accounts.archives.models import Dossier, DossierItem
from services.accounts.models import Employer, Enrolment, Person
from services.kernel import archives
from services.kernel.bulk import dialect_of, in_parameter
from services.kernel.db import snapshot_session
from services.kernel.jobs import JobContext, JobKind, Step
from services.kernel.models import AuditEntry, Job

SOURCE = "accounts"  # the items are accounts' own acts, filed as accounts files them
CHUNK = 1000
PHASES = ("audit", "employer", "person", "enrolment")
# The audit actions of the acts backfilled, and the entity each one names.
REGISTRATIONS = {"employer.register": "employer", "person.register": "person"}
OPENINGS = {"enrolment.open": "open", "enrolment.transfer_in": "transfer_in"}
ACT_TITLES = {"open": "参保登记", "transfer_in": "参保关系转入"}
MARK = "补录归档"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Position:
    """Where the act is in the audit chain, and who did it, as its entry says."""

    seq: int
    hash: str
    actor_id: str
    actor_role: str | None


@dataclass
class Totals:
    """The run's counts so far, kept with the job's progress (``job.state``) so a resumed run reports them all."""

    phase: str = PHASES[0]
    after: Any = None  # the keyset cursor in the phase: an audit seq, or a row id
    examined: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PHASES, 0))
    filed: int = 0
    with_position: int = 0
    position_unknown: int = 0

    @classmethod
    def of(cls, state: str | None) -> "Totals":
        return cls(**json.loads(state)) if state else cls()

    def as_state(self) -> dict[str, Any]:
        return {"phase": self.phase, "after": self.after, "examined": self.examined, "filed": self.filed,
                "with_position": self.with_position, "position_unknown": self.position_unknown}


# -- the items -------------------------------------------------------------------------------------------------------


def _references(job_id: str, position: Position | None, **business: str | None) -> dict[str, str]:
    refs = {k: v for k, v in business.items() if v is not None}
    return refs | {"backfill_job_id": job_id, "audit_position": "found" if position else UNKNOWN}


def _marked(decision: str, position: Position | None) -> str:
    where = f"审计链第 {position.seq} 条" if position else "审计链位置不明"
    return f"{decision}（{MARK}，{where}）"


def _item(subject: tuple[str, str], item_type: str, act_id: str, title: str, decision: str, *, job_id: str,
          position: Position | None, decided_by: str, occurred_at: datetime, references: dict[str, str | None],
          registration: tuple[str, str, str] | None = None) -> dict[str, Any]:
    number, name, region = registration or (None, None, None)
    return archives.ArchiveItem(
        subject_type=subject[0], subject_id=subject[1], item_type=item_type, act_id=act_id,
        title=f"{title}（{MARK}）", decision=_marked(decision, position),
        decided_by=position.actor_id if position else decided_by,
        decided_role=position.actor_role if position else None,
        references=_references(job_id, position, **references),
        audit_seq=position.seq if position else None, audit_hash=position.hash if position else None,
        occurred_at=occurred_at.isoformat(), registration_number=number, subject_name=name, region=region,
    ).as_line(SOURCE)


def employer_item(employer: Employer, job_id: str, position: Position | None) -> dict[str, Any]:
    return _item((archives.EMPLOYER, employer.id), "employer_registration", employer.id, "参保单位登记",
                 f"登记参保单位 {employer.name}，统一社会信用代码 {employer.uscc}", job_id=job_id, position=position,
                 decided_by=employer.registered_by, occurred_at=employer.registered_at, references={},
                 registration=(employer.uscc, employer.name, employer.region))


def person_item(person: Person, job_id: str, position: Position | None) -> dict[str, Any]:
    return _item((archives.PERSON, person.id), "person_registration", person.id, "参保人员登记",
                 f"登记参保人员 {person.name}，参保地 {person.region}", job_id=job_id, position=position,
                 decided_by=person.registered_by, occurred_at=person.registered_at, references={},
                 registration=(person.citizen_id, person.name, person.region))


def enrolment_items(enrolment: Enrolment, action: str, job_id: str, position: Position | None) -> list[dict]:
    """The enrolment's opening, into the person's dossier and, through an employer, the employer's (as it is filed
    when done); the decision gives its state when backfilled."""
    title = ACT_TITLES[action]
    until = f"，{enrolment.end_period} 止" if enrolment.end_period else ""
    decision = (f"{title}：险种 {enrolment.fund}，{enrolment.start_period} 起{until}，"
                f"补录时状态 {enrolment.status}")
    dossiers = [(archives.PERSON, enrolment.person_id)]
    if enrolment.employer_id:
        dossiers.append((archives.EMPLOYER, enrolment.employer_id))
    return [_item(dossier, "enrolment", f"{enrolment.id}/{action}", title, decision, job_id=job_id,
                  position=position, decided_by=enrolment.created_by, occurred_at=enrolment.created_at,
                  references={"enrolment_id": enrolment.id, "employer_id": enrolment.employer_id})
            for dossier in dossiers]


def enrolments_filed(session: Session, person_ids: Iterable[str]) -> set[str]:
    """The enrolments of these persons whose opening is already in their dossiers: filed when done
    (``<id>/open``, ``<id>/transfer_in``) or by an import (one item naming its ``enrolment_ids``)."""
    rows = session.execute(
        select(DossierItem.act_id, DossierItem.references).join(Dossier, Dossier.id == DossierItem.dossier_id)
        .where(in_parameter(dialect_of(session), Dossier.subject_id, values=set(person_ids)), Dossier.subject_type == archives.PERSON,
               DossierItem.item_type == "enrolment", DossierItem.source == SOURCE))
    filed: set[str] = set()
    for act_id, references in rows:
        enrolment_id, _, action = act_id.rpartition("/")
        if enrolment_id:
            if action in ACT_TITLES:
                filed.add(enrolment_id)
            continue
        filed.update(i for i in json.loads(references).get("enrolment_ids", "").split(",") if i)
    return filed


# -- the passes ------------------------------------------------------------------------------------------------------


def _audit_chunk(session: Session, totals: Totals, job_id: str, size: int) -> tuple[int, list[dict[str, Any]]]:
    entries = session.execute(
        select(AuditEntry.seq, AuditEntry.hash, AuditEntry.actor_id, AuditEntry.actor_role, AuditEntry.action,
               AuditEntry.entity_id)
        .where(AuditEntry.seq > (totals.after or 0), AuditEntry.action.in_([*REGISTRATIONS, *OPENINGS]))
        .order_by(AuditEntry.seq).limit(size)).all()
    if not entries:
        return 0, []
    totals.after = entries[-1].seq
    # An entity's first entry of the kind is its act (a registration is not repeated; the chain is in seq order).
    acts: dict[str, tuple[str, Position]] = {}
    for seq, digest, actor_id, actor_role, action, entity_id in entries:
        acts.setdefault(entity_id, (action, Position(seq, digest, actor_id, actor_role)))
    lines: list[dict[str, Any]] = []
    by_entity = {entity: [i for i, (action, _) in acts.items() if REGISTRATIONS.get(action) == entity]
                 for entity in ("employer", "person")}
    for employer in _rows(session, Employer, by_entity["employer"]):
        lines.append(employer_item(employer, job_id, acts[employer.id][1]))
    for person in _rows(session, Person, by_entity["person"]):
        lines.append(person_item(person, job_id, acts[person.id][1]))
    opened = _rows(session, Enrolment, [i for i, (action, _) in acts.items() if action in OPENINGS])
    filed = enrolments_filed(session, {e.person_id for e in opened})
    for enrolment in opened:
        if enrolment.id not in filed:
            action, position = acts[enrolment.id]
            lines += enrolment_items(enrolment, OPENINGS[action], job_id, position)
    return len(entries), lines


def _rows(session: Session, model: type, ids: list[str]) -> list[Any]:
    if not ids:
        return []
    return list(session.execute(select(model).where(in_parameter(dialect_of(session), model.id, values=ids)).order_by(model.id)).scalars())


def _table_chunk(session: Session, totals: Totals, job_id: str, size: int) -> tuple[int, list[dict[str, Any]]]:
    model = {"employer": Employer, "person": Person, "enrolment": Enrolment}[totals.phase]
    query = select(model).order_by(model.id).limit(size)
    if totals.after is not None:
        query = query.where(model.id > totals.after)
    rows = list(session.execute(query).scalars())
    if not rows:
        return 0, []
    totals.after = rows[-1].id
    if model is Employer:
        return len(rows), [employer_item(row, job_id, None) for row in rows]
    if model is Person:
        return len(rows), [person_item(row, job_id, None) for row in rows]
    filed = enrolments_filed(session, {row.person_id for row in rows})
    return len(rows), [line for row in rows if row.id not in filed for line in enrolment_items(row, "open", job_id, None)]


class BackfillWork:
    """One run of the backfill job; resumed from the phase and cursor its last committed chunk stored."""

    def __init__(self, ctx: JobContext):
        self.job_id = ctx.job.id
        self.size = ctx.rows_per_chunk(CHUNK)
        with snapshot_session(ctx.engine) as session:
            self.total: int | None = (
                session.execute(select(func.count()).select_from(AuditEntry).where(
                    AuditEntry.action.in_([*REGISTRATIONS, *OPENINGS]))).scalar_one()
                + sum(session.execute(select(func.count()).select_from(m)).scalar_one()
                      for m in (Employer, Person, Enrolment)))

    def _totals(self, session: Session) -> Totals:
        """What the chunks committed so far (read in the chunk's transaction: always the state of its offset)."""
        return Totals.of(session.execute(select(Job.state).where(Job.id == self.job_id)).scalar_one())

    def run_chunk(self, session: Session, offset: int) -> Step:
        totals = self._totals(session)
        if totals.phase == "done":
            return Step(0, 0, offset, True, totals.as_state())
        chunk = _audit_chunk if totals.phase == "audit" else _table_chunk
        examined, lines = chunk(session, totals, self.job_id, self.size)
        if not examined:  # the phase is through: the next one starts from its beginning
            following = PHASES.index(totals.phase) + 1
            totals.phase, totals.after = (PHASES[following], None) if following < len(PHASES) else ("done", None)
            return Step(0, 0, offset, totals.phase == "done", totals.as_state())
        new = file_lines(session, lines)
        totals.examined[totals.phase] += examined
        totals.filed += new
        # file_lines does not say which lines were new: in the audit pass every line has its position, in the
        # tables' pass none has.
        if totals.phase == "audit":
            totals.with_position += new
        else:
            totals.position_unknown += new
        return Step(examined, 0, offset + examined, False, totals.as_state())

    def result(self, session: Session) -> dict[str, Any]:
        totals = self._totals(session)
        return {"items_filed": totals.filed, "with_audit_position": totals.with_position,
                "audit_position_unknown": totals.position_unknown, "examined": totals.examined}


BACKFILL = JobKind(name="accounts.archive_backfill", submitters=frozenset({"agency_approver"}),
                   readers=frozenset({"agency_approver", "internal_auditor"}), open=BackfillWork, exclusive=True)
