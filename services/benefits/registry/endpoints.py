"""Benefits' registry mirror, read-only: a person with payment accounts, and the contribution index."""

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Annotated

from fastapi import APIRouter, Query

from services.benefits.registry import service
from services.benefits.registry.index import contribution_record
from services.benefits.registry.schemas import (
    BeneficiaryAccountOut,
    BeneficiaryPersonOut,
    ContributionIndexOut,
    ContributionMonth,
)
from services.contracts.codes import WagePensionFundCode
from services.kernel.auth import allow
from services.kernel.money import fen_to_yuan
from services.kernel.service_app import SessionDep

READERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "accountant", "cashier", "internal_auditor")

router = APIRouter(prefix="/registry", tags=["registry"])

_SIX = Decimal("0.000001")


def decimal_text(value: Fraction) -> str:
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return str(exact.quantize(_SIX, rounding=ROUND_HALF_UP))


@router.get("/persons/{person_id}", response_model=BeneficiaryPersonOut, dependencies=[READERS],
            summary="A person as benefits knows it, with payment accounts (numbers masked unless the role needs them)")
def get_person(person_id: str, session: SessionDep) -> BeneficiaryPersonOut:
    person = service.get_person(session, person_id)
    accounts = [
        BeneficiaryAccountOut(bank_account_id=a.bank_account_id, kind=a.kind, bank_name=a.bank_name,
                              account_no=a.account_no, holder_name=a.holder_name, status=a.status,
                              payable=service.payable_account(session, person, a.bank_account_id) is not None)
        for a in service.accounts_of(session, person_id)
    ]
    return BeneficiaryPersonOut(**person.model_dump(), accounts=accounts)


@router.get("/persons/{person_id}/contribution-index", response_model=ContributionIndexOut, dependencies=[READERS],
            summary="Months assessed and monthly indexes (base ÷ average wage) of a pension fund")
def get_contribution_index(
    person_id: str, session: SessionDep,
    fund: Annotated[WagePensionFundCode, Query()] = "PEN_EMP",
) -> ContributionIndexOut:
    service.get_person(session, person_id)
    record = contribution_record(session, person_id, fund)
    items = [ContributionMonth(period=r.period, base=fen_to_yuan(r.base_fen), average_wage=fen_to_yuan(r.average_wage_fen),
                               index=decimal_text(Fraction(r.base_fen, r.average_wage_fen)),
                               assessment_line_id=r.assessment_line_id) for r in record.rows]
    return ContributionIndexOut(person_id=person_id, fund=fund, months=record.months,
                                index_sum=decimal_text(record.index_sum),
                                average_index=decimal_text(record.average_index), items=items)
