import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from services.collection.models import ContributionParameters, EmployerInjuryAdjustment
from services.collection.parameters import service
from services.collection.parameters.schemas import (
    InjuryAdjustmentOut,
    InjuryAdjustmentProposal,
    ParametersDocument,
    ParametersOut,
    ParametersPage,
    ParametersProposal,
    default_document,
)
from services.kernel.auth import allow
from services.kernel.dated_documents import RouteTexts, dated_document_routes
from services.kernel.money import MAX_FEN
from services.kernel.schemas import Decision, RejectDecision
from services.kernel.service_app import SessionDep

# Rates are set by the agency's finance (会计) and approved by the agency's 审批 post, never by the same person.
PROPOSERS = allow("accountant")
APPROVERS = allow("agency_approver")
READERS = allow("accountant", "agency_approver", "agency_clerk", "agency_reviewer", "internal_auditor",
                "oversight_officer", "finance_officer")

router = APIRouter(prefix="/parameters", tags=["parameters"])


def _out(row: ContributionParameters) -> ParametersOut:
    document = service.document_of(row)
    return ParametersOut(**row.model_dump(exclude={"document"}), document=json.loads(row.document),
                         floor_fen=document.floor_fen, cap_fen=document.cap_fen)


def _adjustment_out(row: EmployerInjuryAdjustment) -> InjuryAdjustmentOut:
    return InjuryAdjustmentOut.model_validate(row, from_attributes=True)


@router.get("/template", response_model=dict[str, Any], dependencies=[READERS],
            summary="A document with the national default rates, to adapt and propose")
def parameters_template(
    average_monthly_wage_fen: Annotated[int, Query(gt=0, le=MAX_FEN, description="上年度月平均工资, fen")] = 800_000,
    due_day: Annotated[int, Query(ge=1, le=28)] = 15,
) -> dict[str, Any]:
    document = default_document(average_monthly_wage_fen, due_day=due_day)
    return ParametersDocument.model_validate(document).as_json_dict()


# -- work-injury floating factors (declared before /{parameters_id}) -------------------------------------------------


@router.post("/injury-adjustments", status_code=status.HTTP_201_CREATED, response_model=InjuryAdjustmentOut,
             summary="Propose an employer's work-injury floating factor (工伤保险浮动费率)", dependencies=[PROPOSERS])
def propose_adjustment(proposal: InjuryAdjustmentProposal, session: SessionDep) -> InjuryAdjustmentOut:
    return _adjustment_out(service.propose_adjustment(session, proposal))


@router.get("/injury-adjustments", response_model=list[InjuryAdjustmentOut], dependencies=[READERS],
            summary="Floating factors of employers in my area, newest first")
def list_adjustments(
    session: SessionDep,
    employer_id: str | None = None,
    status_: Annotated[str | None, Query(alias="status", pattern="^(proposed|approved|rejected)$")] = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[InjuryAdjustmentOut]:
    rows, _ = service.list_adjustments(session, employer_id=employer_id, status=status_, after=after, limit=limit)
    return [_adjustment_out(r) for r in rows]


@router.post("/injury-adjustments/{adjustment_id}/approve", response_model=InjuryAdjustmentOut,
             summary="Approve a floating factor (by someone other than the proposer)", dependencies=[APPROVERS])
def approve_adjustment(adjustment_id: str, decision: Decision, session: SessionDep) -> InjuryAdjustmentOut:
    return _adjustment_out(service.decide_adjustment(session, adjustment_id, approve=True, reason=decision.reason))


@router.post("/injury-adjustments/{adjustment_id}/reject", response_model=InjuryAdjustmentOut,
             summary="Reject a floating factor (by someone other than the proposer)", dependencies=[APPROVERS])
def reject_adjustment(adjustment_id: str, decision: RejectDecision, session: SessionDep) -> InjuryAdjustmentOut:
    return _adjustment_out(service.decide_adjustment(session, adjustment_id, approve=False, reason=decision.reason))


# -- the parameter sets: propose, list, in force, one set, approve, reject (after the fixed paths above) -------------

dated_document_routes(
    router, service.PARAMETER_SETS, proposal_model=ParametersProposal, out=_out, out_model=ParametersOut,
    page_model=ParametersPage, proposers=PROPOSERS, approvers=APPROVERS, readers=READERS,
    texts=RouteTexts(
        propose="Propose a dated set of rates and bases (费率基数方案) for a region",
        propose_description="Rates and ratios are decimal strings (\"0.16\"); JSON numbers are refused (422 "
                            "`INVALID_RATE`); amounts are integer fen. See `GET /parameters/template` for a complete "
                            "document with the national default figures.",
        listing="Parameter sets of my area, newest first",
        effective="The approved set in force for a region and month (422 NO_PARAMETERS if none)",
        one="One parameter set",
        approve="Approve a proposed set (by someone other than the proposer); publishes ParametersApproved",
        reject="Reject a proposed set, with the reason (by someone other than the proposer)",
    ),
)
