import json
from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.benefits.models import BenefitParameters
from services.benefits.parameters import service
from services.benefits.parameters.schemas import (
    BenefitParametersDocument,
    BenefitParametersOut,
    BenefitParametersPage,
    BenefitParametersProposal,
    default_benefit_document,
)
from services.kernel.auth import allow
from services.kernel.dated_documents import RouteTexts, dated_document_routes
from services.kernel.money import MAX_FEN

# Set by the agency's finance (会计), approved by the agency's 审批 post, never by the same person.
PROPOSERS = allow("accountant")
APPROVERS = allow("agency_approver")
READERS = allow("accountant", "agency_approver", "agency_clerk", "agency_reviewer", "internal_auditor",
                "oversight_officer", "finance_officer")

router = APIRouter(prefix="/parameters", tags=["parameters"])


def _out(row: BenefitParameters) -> BenefitParametersOut:
    return BenefitParametersOut(**row.model_dump(exclude={"document"}), document=json.loads(row.document))


@router.get("/template", response_model=dict[str, Any], dependencies=[READERS],
            summary="A document with the national default figures, to adapt and propose")
def parameters_template(
    average_monthly_wage_fen: Annotated[int, Query(gt=0, le=MAX_FEN, description="上年度在岗职工月平均工资, fen")] = 800_000,
    unemployment_monthly_fen: Annotated[int, Query(gt=0, le=MAX_FEN, description="失业保险金, fen per month")] = 180_000,
    resident_basic_pension_fen: Annotated[int, Query(gt=0, le=MAX_FEN, description="城乡居民基础养老金, fen per month")] = 20_000,
) -> dict[str, Any]:
    document = default_benefit_document(average_monthly_wage_fen, unemployment_monthly_fen=unemployment_monthly_fen,
                                        resident_basic_pension_fen=resident_basic_pension_fen)
    return BenefitParametersDocument.model_validate(document).as_json_dict()


# -- propose, list, in force, one document, approve, reject (after /template) ----------------------------------------

dated_document_routes(
    router, service.BENEFIT_PARAMETERS, proposal_model=BenefitParametersProposal, out=_out,
    out_model=BenefitParametersOut, page_model=BenefitParametersPage, proposers=PROPOSERS, approvers=APPROVERS,
    readers=READERS,
    texts=RouteTexts(
        propose="Propose dated benefit parameters (待遇计发参数) for a region",
        propose_description="Average wage, divisors by retirement age, statutory ages, unemployment amount and "
                            "periods, large-amount threshold, resident basic pension. Rates are decimal strings (JSON "
                            "numbers refused: 422 `INVALID_RATE`); amounts are integer fen, months and ages integers. "
                            "`GET /parameters/template` gives a complete document with the national defaults.",
        listing="Benefit parameters of my area, newest first",
        effective="The approved parameters in force for a region and month (422 NO_PARAMETERS if none)",
        one="One parameters document",
        approve="Approve proposed parameters (by someone other than the proposer)",
        reject="Reject proposed parameters, with the reason (by someone other than the proposer)",
    ),
)
