"""The contribution index (缴费指数, the basis of 指数化月平均缴费工资) from the COLLECTION stream.

``ContributionIndex`` holds one row per person × pension fund (PEN_EMP, PEN_GOV) × period: the assessed base (the
clamped base of the assessment line) and the average monthly wage of the contribution parameters in force for that
period; the month's index is base ÷ wage. Flat PEN_RES lines and the other funds are not indexed.

Where the average wage comes from. ``AssessmentIssued`` lines do not carry it (nor the ``parameters_id`` collection
used), so benefits mirrors every approved parameter set (``ParametersApproved``) and picks the set in force the way
collection does (``parameters_for``): the most specific level of the 行政区划 hierarchy — district, city, province —
with an approved set whose ``valid_from`` is not after the period, the latest such set. Collection walks up from the
*employer's* region, which benefits does not mirror; benefits walks up from the *person's* region, which gives the
same set whenever the sets are configured at the pooling-region (city) or province level, the normal case.

Where the mirrored sets and the assessment → lines mapping are kept. The benefits schema has no table for them (the
schema is not changed here; the tables wanted are described in the report: ``mirrored_contribution_parameters`` and
an ``assessment_id`` column on ``contribution_index``). Until then both are entries of benefits' own audit chain —
durable, in the same transaction as the rows they explain, and traceable (who/what/why of every index change):

- ``contribution_parameters.mirror`` (entity ``mirrored_parameters``, id = parameters id): region, valid_from and
  the average wage of an approved set;
- ``contribution_index.apply`` (entity ``mirrored_assessment``, id = assessment id): the pension line ids one part
  of an assessment put into the index;
- ``contribution_index.superseded`` (same entity): the assessment was replaced and its lines removed.

Reading the parameter sets and the superseded assessments for every event would scan the chain; a small per-engine
cache follows the chain instead: it remembers the last sequence number (and hash) it read and reads only the newer
entries, and starts over if the entry it remembers is gone or different (a rolled-back transaction).

Supersession (a correction of an assessment): ``AssessmentSuperseded`` removes the rows of the old assessment's lines
(found through its ``contribution_index.apply`` entries); the new ``AssessmentIssued`` then adds its own. Order
tolerance: a line replaces an existing row of the same person, fund and period only if its id is newer (UUIDv7), so
a new assessment arriving before the supersession is not undone by it, and a late part of a superseded assessment is
skipped. An assessment line for a person not mirrored yet, or for a period without a mirrored parameter set, raises
``MirrorGap``: the consumer retries it and then dead-letters it for an operator to replay.
"""

import json
import threading
import weakref
from dataclasses import dataclass, field
from fractions import Fraction

from sqlalchemy import Engine, delete, insert, select
from sqlmodel import Session

from services.benefits.models import BeneficiaryPerson, ContributionIndex
from services.collection.events import AssessmentIssued, AssessmentSuperseded, ParametersApproved
from services.collection.registry.handlers import MirrorGap, _payload
from services.kernel.audit import GENESIS, append_audit
from services.kernel.events import EventEnvelope
from services.kernel.models import AuditEntry

PENSION_FUNDS = ("PEN_EMP", "PEN_GOV")
PARAMETERS_ENTITY = "mirrored_parameters"
ASSESSMENT_ENTITY = "mirrored_assessment"
MIRROR_ACTION = "contribution_parameters.mirror"
APPLY_ACTION = "contribution_index.apply"
SUPERSEDED_ACTION = "contribution_index.superseded"
CHUNK = 500


@dataclass(frozen=True)
class MirroredParameters:
    parameters_id: str
    region: str
    valid_from: int
    average_wage_fen: int


@dataclass
class _Known:
    """What the audit chain says up to ``seq``: the mirrored parameter sets and the superseded assessments."""

    seq: int = 0
    hash: str = GENESIS
    parameters: dict[str, MirroredParameters] = field(default_factory=dict)
    superseded: set[str] = field(default_factory=set)


_cache: "weakref.WeakKeyDictionary[Engine, _Known]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _read_entries(session: Session, known: _Known) -> _Known:
    last = session.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
    if last is None or last[0] <= known.seq:
        return known
    rows = session.execute(
        select(AuditEntry.seq, AuditEntry.hash, AuditEntry.entity_type, AuditEntry.entity_id, AuditEntry.action,
               AuditEntry.detail)
        .where(AuditEntry.seq > known.seq, AuditEntry.seq <= last[0],
               (AuditEntry.entity_type == PARAMETERS_ENTITY)
               | ((AuditEntry.entity_type == ASSESSMENT_ENTITY) & (AuditEntry.action == SUPERSEDED_ACTION)))
        .order_by(AuditEntry.seq)
    ).all()
    for _seq, _hash, entity_type, entity_id, action, detail in rows:
        if entity_type == PARAMETERS_ENTITY and action == MIRROR_ACTION:
            d = json.loads(detail)
            known.parameters[entity_id] = MirroredParameters(entity_id, d["region"], int(d["valid_from"]),
                                                             int(d["average_monthly_wage_fen"]))
        elif action == SUPERSEDED_ACTION:
            known.superseded.add(entity_id)
    known.seq, known.hash = last[0], last[1]
    return known


def known_state(session: Session) -> _Known:
    """The mirrored parameter sets and superseded assessments as this session sees the audit chain."""
    engine = session.get_bind()
    with _lock:
        known = _cache.get(engine)
        if known is not None and known.seq:
            entry_hash = session.execute(select(AuditEntry.hash).where(AuditEntry.seq == known.seq)).scalar_one_or_none()
            if entry_hash != known.hash:
                known = None  # that entry was rolled back (or this session cannot see it yet): read from the start
        if known is None:
            known = _Known()
        else:  # work on a copy: another session may be reading the cached state
            known = _Known(known.seq, known.hash, dict(known.parameters), set(known.superseded))
        known = _read_entries(session, known)
        _cache[engine] = known
        return known


def region_levels(region: str) -> list[str]:
    """``150102`` → [150102, 150100, 150000]: the region and the levels above it, most specific first."""
    return list(dict.fromkeys([region, region[:4] + "00", region[:2] + "0000"]))


def parameters_in_force(known: _Known, region: str, period: int) -> MirroredParameters | None:
    for level in region_levels(region):
        candidates = [p for p in known.parameters.values() if p.region == level and p.valid_from <= period]
        if candidates:
            return max(candidates, key=lambda p: (p.valid_from, p.parameters_id))
    return None


def average_wage_for(session: Session, region: str, period: int) -> MirroredParameters | None:
    """The approved collection parameter set in force for ``period`` in ``region`` (for claims, too)."""
    return parameters_in_force(known_state(session), region, period)


# -- handlers --------------------------------------------------------------------------------------------------------


def on_parameters_approved(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, ParametersApproved)
    wage = e.document.get("average_monthly_wage_fen")
    if not isinstance(wage, int) or isinstance(wage, bool) or wage <= 0:
        raise ValueError(f"parameters {e.parameters_id}: average_monthly_wage_fen must be a positive integer")
    if e.parameters_id in known_state(session).parameters:
        return
    append_audit(session, action=MIRROR_ACTION, entity_type=PARAMETERS_ENTITY, entity_id=e.parameters_id,
                 detail={"region": e.region, "valid_from": e.valid_from, "average_monthly_wage_fen": wage,
                         "event_id": envelope.id},
                 reason="collection.parameters.approved")


def on_assessment_issued(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, AssessmentIssued)
    known = known_state(session)
    if e.assessment_id in known.superseded:
        return  # a late part of an assessment already replaced by a correction
    lines = [line for line in e.lines if line.fund in PENSION_FUNDS]
    if not lines:
        return
    person_ids = sorted({line.person_id for line in lines})
    regions: dict[str, str] = {}
    for start in range(0, len(person_ids), CHUNK):
        chunk = person_ids[start:start + CHUNK]
        regions.update(session.execute(select(BeneficiaryPerson.person_id, BeneficiaryPerson.region)
                                       .where(BeneficiaryPerson.person_id.in_(chunk))).all())
    missing = [p for p in person_ids if p not in regions]
    if missing:
        raise MirrorGap(f"assessment {e.assessment_id}: {len(missing)} person(s) not in benefits' registry yet, "
                        f"e.g. {missing[0]}")
    in_force: dict[str, MirroredParameters] = {}
    for region in set(regions.values()):
        found = parameters_in_force(known, region, e.period)
        if found is None:
            raise MirrorGap(f"no approved contribution parameters mirrored for region {region}, period {e.period}")
        in_force[region] = found

    existing: dict[tuple[str, str], ContributionIndex] = {}
    for start in range(0, len(person_ids), CHUNK):
        chunk = person_ids[start:start + CHUNK]
        for row in session.execute(select(ContributionIndex).where(
                ContributionIndex.person_id.in_(chunk), ContributionIndex.period == e.period)).scalars():
            existing[(row.person_id, row.fund)] = row
    new: dict[tuple[str, str], dict] = {}
    for line in lines:
        wage = in_force[regions[line.person_id]].average_wage_fen
        key = (line.person_id, line.fund)
        values = {"person_id": line.person_id, "fund": line.fund, "period": e.period, "base_fen": line.base_fen,
                  "average_wage_fen": wage, "assessment_line_id": line.line_id}
        row = existing.get(key)
        if row is not None:
            if line.line_id > row.assessment_line_id:  # a correction (or a later assessment) replaces the month
                row.base_fen, row.average_wage_fen, row.assessment_line_id = line.base_fen, wage, line.line_id
                session.add(row)
        elif key not in new or line.line_id > new[key]["assessment_line_id"]:
            new[key] = values
    new_rows = list(new.values())
    for start in range(0, len(new_rows), CHUNK):
        session.execute(insert(ContributionIndex.__table__), new_rows[start:start + CHUNK])
    append_audit(session, action=APPLY_ACTION, entity_type=ASSESSMENT_ENTITY, entity_id=e.assessment_id,
                 detail={"employer_id": e.employer_id, "period": e.period, "part": e.part, "parts": e.parts,
                         "parameters": sorted({p.parameters_id for p in in_force.values()}),
                         "line_ids": [line.line_id for line in lines], "event_id": envelope.id},
                 reason="collection.assessment.issued")


def on_assessment_superseded(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, AssessmentSuperseded)
    if e.assessment_id in known_state(session).superseded:
        return
    line_ids: set[str] = set()
    for detail in session.execute(select(AuditEntry.detail).where(
            AuditEntry.entity_type == ASSESSMENT_ENTITY, AuditEntry.entity_id == e.assessment_id,
            AuditEntry.action == APPLY_ACTION)).scalars():
        line_ids.update(json.loads(detail)["line_ids"])
    removed = 0
    ordered = sorted(line_ids)
    for start in range(0, len(ordered), CHUNK):
        result = session.execute(delete(ContributionIndex).where(
            ContributionIndex.assessment_line_id.in_(ordered[start:start + CHUNK])))
        removed += result.rowcount or 0
    append_audit(session, action=SUPERSEDED_ACTION, entity_type=ASSESSMENT_ENTITY, entity_id=e.assessment_id,
                 detail={"superseded_by_id": e.superseded_by_id, "employer_id": e.employer_id, "period": e.period,
                         "removed": removed, "event_id": envelope.id},
                 reason=e.reason)


# -- reading ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ContributionRecord:
    person_id: str
    fund: str
    months: int
    index_sum: Fraction  # exact: Σ base ÷ wage
    rows: list[ContributionIndex]

    @property
    def average_index(self) -> Fraction:
        return self.index_sum / self.months if self.months else Fraction(0)


def contribution_record(session: Session, person_id: str, fund: str) -> ContributionRecord:
    """The months assessed and the exact sum of monthly indexes of a person in a pension fund (for the claims
    computation of 指数化月平均缴费工资: average index × the average wage used for the pension)."""
    rows = list(session.execute(select(ContributionIndex).where(
        ContributionIndex.person_id == person_id, ContributionIndex.fund == fund)
        .order_by(ContributionIndex.period)).scalars())
    total = sum((Fraction(r.base_fen, r.average_wage_fen) for r in rows), Fraction(0))
    return ContributionRecord(person_id, fund, len(rows), total, rows)
