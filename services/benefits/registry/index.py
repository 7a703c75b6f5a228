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

The mirrored sets are rows of ``average_wage`` (one per approved set); the assessments the index holds are rows of
``mirrored_assessment``, and each index row names its assessment.

Supersession (a correction of an assessment): ``AssessmentSuperseded`` removes the rows of the old assessment; the new ``AssessmentIssued`` then adds its own. Order
tolerance: a line replaces an existing row of the same person, fund and period only if its id is newer (UUIDv7), so
a new assessment arriving before the supersession is not undone by it, and a late part of a superseded assessment is
skipped. An assessment line for a person not mirrored yet, or for a period without a mirrored parameter set, raises
``MirrorGap``: the consumer retries it and then dead-letters it for an operator to replay.
"""

from dataclasses import dataclass
from functools import lru_cache
from fractions import Fraction
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlmodel import Session

from services.benefits.models import AverageWage, BeneficiaryPerson, ContributionIndex, MirroredAssessment
from services.contracts.codes import WAGE_PENSION_FUNDS
from services.contracts.collection import AssessmentIssued, AssessmentSuperseded, ParametersApproved
from services.kernel.auth import region_levels
from services.kernel.bulk import dialect_insert, dialect_of, in_parameter, parameter_values, read
from services.kernel.events import EventEnvelope
from services.kernel.mirror import MirrorGap, execute_rows
from services.kernel.mirror import typed_payload as _payload

PENSION_FUNDS = WAGE_PENSION_FUNDS  # the pensions with a contribution index


@dataclass(frozen=True)
class MirroredParameters:
    parameters_id: str
    region: str
    valid_from: int
    average_wage_fen: int


def average_wage_for(session: Session, region: str, period: int) -> MirroredParameters | None:
    """The approved collection parameter set in force for ``period`` in ``region`` (for claims, too): the most
    specific level (district → city → province) with a set, the latest ``valid_from`` not after the period."""
    return wages_in_force(session, {region}, period)[region]


def wages_in_force(session: Session, regions: set[str], period: int) -> dict[str, MirroredParameters | None]:
    """``average_wage_for`` of several regions at once: one query over every level of them."""
    levels = {region: region_levels(region) for region in regions}
    latest: dict[str, MirroredParameters] = {}
    wanted = sorted({level for chain in levels.values() for level in chain})
    dialect = dialect_of(session)
    for row in read(session, _wages_query(dialect), {"regions": parameter_values(dialect, wanted), "period": period}):
        if row.region not in latest or row.valid_from > latest[row.region].valid_from:
            latest[row.region] = MirroredParameters(*row)
    return {region: next((latest[level] for level in chain if level in latest), None)
            for region, chain in levels.items()}


# The index's reads, built once per dialect, their keys bound as one parameter (``bulk.in_parameter``): building a
# statement and rendering an IN of a few hundred parameters per event cost more than the queries themselves.


@lru_cache(maxsize=4)
def _wages_query(dialect: str) -> Any:
    return (select(AverageWage.parameters_id, AverageWage.region, AverageWage.valid_from,
                   AverageWage.average_monthly_wage_fen)
            .where(in_parameter(dialect, AverageWage.region, "regions"), AverageWage.valid_from <= bindparam("period")))


@lru_cache(maxsize=4)
def _regions_query(dialect: str) -> Any:
    return (select(BeneficiaryPerson.person_id, BeneficiaryPerson.region)
            .where(in_parameter(dialect, BeneficiaryPerson.person_id, "ids")))


_MIRRORED_STATUS = select(MirroredAssessment.status).where(MirroredAssessment.assessment_id == bindparam("id"))
_MIRRORED_INSERT = MirroredAssessment.__table__.insert()


# -- handlers --------------------------------------------------------------------------------------------------------


def on_parameters_approved(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, ParametersApproved)
    wage = e.document.get("average_monthly_wage_fen")
    if not isinstance(wage, int) or isinstance(wage, bool) or wage <= 0:
        raise ValueError(f"parameters {e.parameters_id}: average_monthly_wage_fen must be a positive integer")
    if session.execute(select(AverageWage.id).where(AverageWage.parameters_id == e.parameters_id)).first():
        return
    same_month = session.execute(select(AverageWage).where(
        AverageWage.region == e.region, AverageWage.valid_from == e.valid_from)).scalar_one_or_none()
    if same_month is not None:  # a later approval for the same region and month replaces the earlier one
        if e.parameters_id > same_month.parameters_id:
            same_month.parameters_id, same_month.average_monthly_wage_fen = e.parameters_id, wage
            session.add(same_month)
        return
    session.add(AverageWage(region=e.region, valid_from=e.valid_from, average_monthly_wage_fen=wage,
                            parameters_id=e.parameters_id))


def on_assessment_issued(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(AssessmentIssued)  # read only: the lines as structs, not models
    mirrored = read(session, _MIRRORED_STATUS, {"id": e.assessment_id}).scalar_one_or_none()
    if mirrored == "superseded":
        return  # a late part of an assessment already replaced by a correction
    lines = [line for line in e.lines if line.fund in PENSION_FUNDS]
    if not lines:
        return
    dialect = dialect_of(session)
    person_ids = {line.person_id for line in lines}
    regions: dict[str, str] = dict(read(session, _regions_query(dialect),
                                        {"ids": parameter_values(dialect, person_ids)}).all())
    missing = sorted(p for p in person_ids if p not in regions)
    if missing:
        raise MirrorGap(f"assessment {e.assessment_id}: {len(missing)} person(s) not in benefits' registry yet, "
                        f"e.g. {missing[0]}")
    in_force = wages_in_force(session, set(regions.values()), e.period)
    for region, found in in_force.items():
        if found is None:
            raise MirrorGap(f"no approved contribution parameters mirrored for region {region}, period {e.period}")
    if mirrored is None:
        session.connection().execute(_MIRRORED_INSERT, {
            "assessment_id": e.assessment_id, "employer_id": e.employer_id, "period": e.period, "status": "issued"})

    # One row per person × fund of the month, the newest line id winning: within the event here, against a row
    # already held in the upsert's WHERE (a correction or a later assessment replaces the month, an older line never
    # does). One executemany (at the driver on SQLite), no row read or held per line.
    wage_of = {person_id: in_force[region].average_wage_fen for person_id, region in regions.items()}
    period, assessment_id = e.period, e.assessment_id
    newest: dict[tuple[str, str], dict] = {}
    for line in lines:
        key = (line.person_id, line.fund)
        held = newest.get(key)
        if held is None or line.line_id > held["assessment_line_id"]:
            newest[key] = {"person_id": line.person_id, "fund": line.fund, "period": period,
                           "base_fen": line.base_fen, "average_wage_fen": wage_of[line.person_id],
                           "assessment_line_id": line.line_id, "assessment_id": assessment_id}
    execute_rows(session, _newest_line_wins(dialect), list(newest.values()))


@lru_cache(maxsize=None)
def _newest_line_wins(dialect: str) -> Any:
    """Built once per dialect: building it (``excluded``'s columns) cost more than running it for an event."""
    table = ContributionIndex.__table__
    stmt = dialect_insert(dialect, table)
    replaced = ("base_fen", "average_wage_fen", "assessment_line_id", "assessment_id")
    return stmt.on_conflict_do_update(
        index_elements=["person_id", "fund", "period"], set_={name: stmt.excluded[name] for name in replaced},
        where=stmt.excluded.assessment_line_id > table.c.assessment_line_id)


def on_assessment_superseded(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, AssessmentSuperseded)
    mirrored = session.get(MirroredAssessment, e.assessment_id)
    if mirrored is not None and mirrored.status == "superseded":
        return
    if mirrored is None:
        mirrored = MirroredAssessment(assessment_id=e.assessment_id, employer_id=e.employer_id, period=e.period,
                                      status="superseded")
    mirrored.status, mirrored.superseded_by_id = "superseded", e.superseded_by_id
    session.add(mirrored)
    session.execute(delete(ContributionIndex).where(ContributionIndex.assessment_id == e.assessment_id))


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
