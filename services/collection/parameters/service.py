"""Rates and bases: dated parameter sets and per-employer work-injury floating factors, each proposed by
one person (the agency's finance, ``accountant``) and approved or rejected by another (``agency_approver``).

Every change writes its row, an audit-chain entry and (on approval of a set) ``ParametersApproved`` in one
transaction. A set applies from ``valid_from`` until the next approved set of the same region; ``parameters_for``
answers the set in force for a month, so a past period keeps the rates that applied to it even after a new set is
approved (an issued assessment also records the ``parameters_id`` it used).

Regions: a set is configured for a 统筹区 (pooling region) code. ``parameters_for`` is asked with the employer's
own (district) code and walks up the 行政区划 hierarchy — district (150102), city (150100), province (150000) — and
uses the most specific level that has an approved set in force for the month.
"""

import json
from decimal import Decimal
from functools import lru_cache

from sqlalchemy import select
from sqlmodel import Session

from services.collection.models import ContributionParameters, EmployerInjuryAdjustment, RegistryEmployer
from services.collection.parameters.schemas import InjuryAdjustmentProposal, ParametersDocument
from services.contracts.collection import ParametersApproved
from services.kernel import clock, context
from services.kernel.audit import append_audit
from services.kernel.auth import ensure_in_region, region_filter
from services.kernel.dated_documents import DatedDocuments, InForce, Wording, ensure_other_person
from services.kernel.errors import Conflict, NotFound
from services.kernel.events import new_event_id
from services.kernel.outbox import record_event
from services.kernel.paging import newest_first

SOURCE = "collection"
ENTITY = "contribution_parameters"
ADJUSTMENT_ENTITY = "employer_injury_adjustment"
ONE = Decimal(1)
FOUR_EYES_ITEM = "事项"  # the same message for sets and floating factors



# -- parameter sets --------------------------------------------------------------------------------------------------


def _publish_approved(session: Session, row: ContributionParameters) -> None:
    record_event(session, ParametersApproved(parameters_id=row.id, region=row.region, valid_from=row.valid_from,
                                             document=json.loads(row.document)),
                 source=SOURCE, subject=row.id)


@lru_cache(maxsize=64)
def _parsed(document: str) -> ParametersDocument:
    return ParametersDocument.model_validate(json.loads(document))


class _ParameterSets(DatedDocuments[ContributionParameters, ParametersDocument]):
    """The kernel's lifecycle; a document's text is parsed once per process (every declaration reads the set in
    force, and a set's text never changes once written: a change is a new set). Readers never change the parsed
    document."""

    def document_of(self, row: ContributionParameters) -> ParametersDocument:
        return _parsed(row.document)


PARAMETER_SETS: DatedDocuments[ContributionParameters, ParametersDocument] = _ParameterSets(
    ContributionParameters, ParametersDocument, entity=ENTITY, action="parameters",
    wording=Wording(subject="费率基数", document="费率基数方案", item="方案", four_eyes=FOUR_EYES_ITEM),
    reasons_on_row=True, on_approve=_publish_approved,
)

Parameters = InForce[ParametersDocument]
"""The approved set in force: its row id (recorded on an assessment) and its parsed document."""

document_of = PARAMETER_SETS.document_of
propose, decide = PARAMETER_SETS.propose, PARAMETER_SETS.decide  # bench/money_in.py seeds a set without HTTP
parameters_for = PARAMETER_SETS.in_force  # (session, region, period) → Parameters; 422 NO_PARAMETERS


# -- work-injury floating factors ------------------------------------------------------------------------------------


def _registry_employer(session: Session, employer_id: str) -> RegistryEmployer:
    employer = session.get(RegistryEmployer, employer_id)
    if employer is None:
        raise NotFound("EMPLOYER_NOT_FOUND", "用人单位不存在（征缴系统尚未收到该单位的登记信息）")
    ensure_in_region(context.current().actor, employer.region)
    return employer


def propose_adjustment(session: Session, proposal: InjuryAdjustmentProposal) -> EmployerInjuryAdjustment:
    _registry_employer(session, proposal.employer_id)
    if _adjustment_exists(session, proposal.employer_id, proposal.valid_from):
        raise Conflict("ADJUSTMENT_ALREADY_APPROVED",
                       f"该单位自 {proposal.valid_from} 起的工伤保险浮动费率已审批；调整请以新的起始月份提出")
    factor = format(proposal.factor, "f")
    row = EmployerInjuryAdjustment(
        id=new_event_id(), employer_id=proposal.employer_id, valid_from=proposal.valid_from, factor=factor,
        status="proposed", reason=proposal.reason, proposed_at=clock.utc_now(), proposed_by=context.actor_id(),
    )
    session.add(row)
    append_audit(session, action="injury_adjustment.propose", entity_type=ADJUSTMENT_ENTITY, entity_id=row.id,
                 detail={"employer_id": row.employer_id, "valid_from": row.valid_from, "factor": factor},
                 reason=proposal.reason)
    session.flush()
    return row


def _adjustment_exists(session: Session, employer_id: str, valid_from: int, *, exclude: str | None = None) -> bool:
    query = select(EmployerInjuryAdjustment.id).where(
        EmployerInjuryAdjustment.employer_id == employer_id, EmployerInjuryAdjustment.valid_from == valid_from,
        EmployerInjuryAdjustment.status == "approved")
    if exclude:
        query = query.where(EmployerInjuryAdjustment.id != exclude)
    return session.execute(query.limit(1)).scalar_one_or_none() is not None


def decide_adjustment(session: Session, adjustment_id: str, *, approve: bool,
                      reason: str | None) -> EmployerInjuryAdjustment:
    row = session.execute(
        select(EmployerInjuryAdjustment).where(EmployerInjuryAdjustment.id == adjustment_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise NotFound("ADJUSTMENT_NOT_FOUND", "工伤保险浮动费率申请不存在")
    _registry_employer(session, row.employer_id)
    if row.status != "proposed":
        raise Conflict("ADJUSTMENT_ALREADY_DECIDED", "该申请已处理，不能再次处理")
    ensure_other_person(row.proposed_by, FOUR_EYES_ITEM)
    if approve and _adjustment_exists(session, row.employer_id, row.valid_from, exclude=row.id):
        raise Conflict("ADJUSTMENT_ALREADY_APPROVED", f"该单位自 {row.valid_from} 起的工伤保险浮动费率已审批")
    row.status = "approved" if approve else "rejected"
    row.decided_at, row.decided_by = clock.utc_now(), context.actor_id()
    session.add(row)
    append_audit(session, action=f"injury_adjustment.{'approve' if approve else 'reject'}",
                 entity_type=ADJUSTMENT_ENTITY, entity_id=row.id,
                 detail={"employer_id": row.employer_id, "valid_from": row.valid_from, "factor": row.factor,
                         "status": row.status}, reason=reason)
    session.flush()
    return row


def list_adjustments(session: Session, *, employer_id: str | None = None, status: str | None = None,
                     after: str | None = None, limit: int = 50) -> tuple[list[EmployerInjuryAdjustment], str | None]:
    query = (
        select(EmployerInjuryAdjustment)
        .join(RegistryEmployer, RegistryEmployer.employer_id == EmployerInjuryAdjustment.employer_id)
        .where(region_filter(RegistryEmployer.region))
    )
    if employer_id:
        query = query.where(EmployerInjuryAdjustment.employer_id == employer_id)
    if status:
        query = query.where(EmployerInjuryAdjustment.status == status)
    return newest_first(session, query, EmployerInjuryAdjustment.id, after=after, limit=limit)


def injury_factors(session: Session, employer_ids: set[str], period: int) -> dict[str, tuple[Decimal, str]]:
    """employer id → its approved floating factor in force for ``period`` (greatest ``valid_from`` ≤ period, the
    latest decided of those) and the adjustment's id, for the employers that have one (the others pay the class
    rate: factor 1)."""
    out: dict[str, tuple[Decimal, str]] = {}
    ids = sorted(employer_ids)
    for start in range(0, len(ids), 1000):
        rows = session.execute(
            select(EmployerInjuryAdjustment.employer_id, EmployerInjuryAdjustment.factor, EmployerInjuryAdjustment.id)
            .where(EmployerInjuryAdjustment.employer_id.in_(ids[start:start + 1000]),
                   EmployerInjuryAdjustment.status == "approved", EmployerInjuryAdjustment.valid_from <= period)
            .order_by(EmployerInjuryAdjustment.valid_from.desc(), EmployerInjuryAdjustment.decided_at.desc())
        )
        for employer_id, factor, adjustment_id in rows:
            out.setdefault(employer_id, (Decimal(factor), adjustment_id))
    return out
