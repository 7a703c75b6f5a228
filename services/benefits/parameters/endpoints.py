import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from services.benefits.models import BenefitParameters
from services.benefits.parameters import service
from services.benefits.parameters.schemas import (
    BenefitParametersDocument,
    BenefitParametersOut,
    BenefitParametersPage,
    BenefitParametersProposal,
    Decision,
    RejectDecision,
    default_benefit_document,
)
from services.kernel.auth import allow
from services.kernel.errors import DomainError
from services.kernel.periods import validate_period
from services.kernel.service_app import SessionDep

# Set by the agency's finance (会计), approved by the agency's 审批 post, never by the same person.
PROPOSERS = allow("accountant")
APPROVERS = allow("agency_approver")
READERS = allow("accountant", "agency_approver", "agency_clerk", "agency_reviewer", "internal_auditor",
                "oversight_officer", "finance_officer")

router = APIRouter(prefix="/parameters", tags=["parameters"])


def _out(row: BenefitParameters) -> BenefitParametersOut:
    return BenefitParametersOut(**row.model_dump(exclude={"document"}), document=json.loads(row.document))


@router.post("", status_code=status.HTTP_201_CREATED, response_model=BenefitParametersOut, dependencies=[PROPOSERS],
             summary="Propose dated benefit parameters (待遇计发参数) for a region",
             description="Average wage, divisors by retirement age, statutory ages, unemployment amount and periods, "
                         "large-amount threshold, resident basic pension. Rates are decimal strings (JSON numbers "
                         "refused: 422 `INVALID_RATE`); amounts are integer fen, months and ages integers. "
                         "`GET /parameters/template` gives a complete document with the national defaults.")
def propose_parameters(proposal: BenefitParametersProposal, session: SessionDep) -> BenefitParametersOut:
    return _out(service.propose(session, proposal))


@router.get("/template", response_model=dict[str, Any], dependencies=[READERS],
            summary="A document with the national default figures, to adapt and propose")
def parameters_template(
    average_monthly_wage_fen: Annotated[int, Query(gt=0, description="上年度在岗职工月平均工资, fen")] = 800_000,
    unemployment_monthly_fen: Annotated[int, Query(gt=0, description="失业保险金, fen per month")] = 180_000,
    resident_basic_pension_fen: Annotated[int, Query(gt=0, description="城乡居民基础养老金, fen per month")] = 20_000,
) -> dict[str, Any]:
    document = default_benefit_document(average_monthly_wage_fen, unemployment_monthly_fen=unemployment_monthly_fen,
                                        resident_basic_pension_fen=resident_basic_pension_fen)
    return BenefitParametersDocument.model_validate(document).as_json_dict()


@router.get("", response_model=BenefitParametersPage, dependencies=[READERS],
            summary="Benefit parameters of my area, newest first")
def list_parameters(
    session: SessionDep,
    region: str | None = None,
    status_: Annotated[str | None, Query(alias="status", pattern="^(proposed|approved|rejected)$")] = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> BenefitParametersPage:
    rows, next_cursor = service.list_parameters(session, region=region, status=status_, after=after, limit=limit)
    return BenefitParametersPage(items=[_out(r) for r in rows], next_cursor=next_cursor)


@router.get("/effective/{region}/{period}", response_model=BenefitParametersOut, dependencies=[READERS],
            summary="The approved parameters in force for a region and month (422 NO_PARAMETERS if none)")
def effective_parameters(region: str, period: int, session: SessionDep) -> BenefitParametersOut:
    try:
        validate_period(period)
    except ValueError as exc:  # PydanticCustomError is a ValueError
        raise DomainError("INVALID_PERIOD", str(exc), status=422) from None
    found = service.parameters_for(session, region, period)
    return _out(service.get_parameters(session, found.id))


@router.get("/{parameters_id}", response_model=BenefitParametersOut, dependencies=[READERS],
            summary="One parameters document")
def get_parameters(parameters_id: str, session: SessionDep) -> BenefitParametersOut:
    return _out(service.get_parameters(session, parameters_id))


@router.post("/{parameters_id}/approve", response_model=BenefitParametersOut, dependencies=[APPROVERS],
             summary="Approve proposed parameters (by someone other than the proposer)")
def approve_parameters(parameters_id: str, decision: Decision, session: SessionDep) -> BenefitParametersOut:
    return _out(service.decide(session, parameters_id, approve=True, reason=decision.reason))


@router.post("/{parameters_id}/reject", response_model=BenefitParametersOut, dependencies=[APPROVERS],
             summary="Reject proposed parameters, with the reason (by someone other than the proposer)")
def reject_parameters(parameters_id: str, decision: RejectDecision, session: SessionDep) -> BenefitParametersOut:
    return _out(service.decide(session, parameters_id, approve=False, reason=decision.reason))
