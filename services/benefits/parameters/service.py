"""Benefit parameters (issue 6 §1): dated documents per region, proposed by the agency's finance (``accountant``) and
approved or rejected by another person (``agency_approver``), the same pattern as collection's rates and bases.

Every change writes its row and an audit-chain entry in one transaction; the proposal's and the decision's reasons
live in the audit entries (the ``benefit_parameters`` table has no column for them). A document applies from
``valid_from`` until the next approved one of the same region; ``parameters_for`` answers the one in force for a
month, walking up district → city → province, so a claim is computed with the figures of its effective month and
records the parameters' id.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlmodel import Session

from services.benefits.models import BenefitParameters
from services.benefits.parameters.schemas import BenefitParametersDocument, BenefitParametersProposal
from services.kernel import context
from services.kernel.audit import append_audit, canonical_json
from services.kernel.auth import ensure_in_region, region_levels, region_prefix
from services.kernel.errors import Conflict, DomainError, NotFound
from services.kernel.events import new_event_id

ENTITY = "benefit_parameters"


def _now() -> datetime:
    return datetime.now(UTC)


def _actor_id() -> str:
    return context.current().actor.id


def document_of(row: BenefitParameters) -> BenefitParametersDocument:
    return BenefitParametersDocument.model_validate(json.loads(row.document))


def _approved_exists(session: Session, region: str, valid_from: int, *, exclude: str | None = None) -> str | None:
    query = select(BenefitParameters.id).where(
        BenefitParameters.region == region, BenefitParameters.valid_from == valid_from,
        BenefitParameters.status == "approved")
    if exclude:
        query = query.where(BenefitParameters.id != exclude)
    return session.execute(query.limit(1)).scalar_one_or_none()


def propose(session: Session, proposal: BenefitParametersProposal) -> BenefitParameters:
    ensure_in_region(context.current().actor, proposal.region)
    existing = _approved_exists(session, proposal.region, proposal.valid_from)
    if existing:
        raise Conflict("PARAMETERS_ALREADY_APPROVED",
                       f"统筹区 {proposal.region} 自 {proposal.valid_from} 起的待遇计发参数已审批（{existing}）；"
                       "调整请以新的起始月份提出")
    document = proposal.document.as_json_dict()
    row = BenefitParameters(
        id=new_event_id(), region=proposal.region, valid_from=proposal.valid_from, document=canonical_json(document),
        status="proposed", proposed_at=_now(), proposed_by=_actor_id(),
    )
    session.add(row)
    append_audit(session, action="benefit_parameters.propose", entity_type=ENTITY, entity_id=row.id,
                 detail={"region": row.region, "valid_from": row.valid_from, "document": document},
                 reason=proposal.reason)
    session.commit()
    return row


def get_parameters(session: Session, parameters_id: str, *, for_update: bool = False) -> BenefitParameters:
    query = select(BenefitParameters).where(BenefitParameters.id == parameters_id)
    if for_update:
        query = query.with_for_update()
    row = session.execute(query).scalar_one_or_none()
    if row is None:
        raise NotFound("PARAMETERS_NOT_FOUND", "待遇计发参数不存在")
    return row


def decide(session: Session, parameters_id: str, *, approve: bool, reason: str | None) -> BenefitParameters:
    row = get_parameters(session, parameters_id, for_update=True)
    ensure_in_region(context.current().actor, row.region)
    if row.status != "proposed":
        raise Conflict("PARAMETERS_ALREADY_DECIDED",
                       f"该参数已{'审批' if row.status == 'approved' else '驳回'}，不能再次处理")
    if row.proposed_by == _actor_id():
        raise DomainError("SAME_PERSON_CANNOT_APPROVE", "提出人不能审批（或驳回）本人提出的参数，须由另一人办理", status=403)
    if approve:
        existing = _approved_exists(session, row.region, row.valid_from, exclude=row.id)
        if existing:
            raise Conflict("PARAMETERS_ALREADY_APPROVED",
                           f"统筹区 {row.region} 自 {row.valid_from} 起的待遇计发参数已审批（{existing}）")
    row.status = "approved" if approve else "rejected"
    row.decided_at, row.decided_by = _now(), _actor_id()
    session.add(row)
    append_audit(session, action=f"benefit_parameters.{'approve' if approve else 'reject'}", entity_type=ENTITY,
                 entity_id=row.id, detail={"region": row.region, "valid_from": row.valid_from, "status": row.status},
                 reason=reason)
    session.commit()
    return row


def list_parameters(session: Session, *, region: str | None = None, status: str | None = None,
                    after: str | None = None, limit: int = 50) -> tuple[list[BenefitParameters], str | None]:
    """Documents of the caller's area (and of the levels above it, which apply to it), newest first by id."""
    actor_region = context.current().actor.region or "------"
    query = select(BenefitParameters).where(
        BenefitParameters.region.startswith(region_prefix(actor_region))
        | BenefitParameters.region.in_(region_levels(actor_region))
    ).order_by(BenefitParameters.id.desc()).limit(limit + 1)
    if region:
        query = query.where(BenefitParameters.region == region)
    if status:
        query = query.where(BenefitParameters.status == status)
    if after:
        query = query.where(BenefitParameters.id < after)
    rows = list(session.execute(query).scalars())
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_cursor


@dataclass(frozen=True)
class Parameters:
    """The approved document in force: its row id (recorded in a claim's computation) and the parsed document."""

    id: str
    region: str
    valid_from: int
    document: BenefitParametersDocument


def parameters_for(session: Session, region: str, period: int) -> Parameters:
    """The approved document with the greatest ``valid_from`` ≤ ``period`` for ``region`` (walking up district →
    city → province); 422 NO_PARAMETERS if none applies."""
    for level in region_levels(region):
        row = session.execute(
            select(BenefitParameters)
            .where(BenefitParameters.region == level, BenefitParameters.status == "approved",
                   BenefitParameters.valid_from <= period)
            .order_by(BenefitParameters.valid_from.desc(), BenefitParameters.decided_at.desc())
            .limit(1)
        ).scalar_one_or_none()
        if row is not None:
            return Parameters(id=row.id, region=row.region, valid_from=row.valid_from, document=document_of(row))
    raise DomainError("NO_PARAMETERS", f"行政区划 {region} 没有适用于 {period} 的已审批待遇计发参数", status=422)
