"""Public disclosure (003 二.4): read-only, open to anyone (``public()``), closed months only."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from services.kernel.auth import public
from services.kernel.money import fen_to_yuan
from services.kernel.service_app import SessionDep
from services.oversight.disclosure import service
from services.oversight.disclosure.schemas import FundsOut, FundYearOut

router = APIRouter(prefix="/disclosure", tags=["disclosure"], dependencies=[public()])

MONEY = ("income", "expenditure", "period_surplus", "accumulated_balance")


def _yuan(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: fen_to_yuan(v) if k in MONEY else _yuan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_yuan(v) for v in value]
    return value


@router.get("/funds", response_model=FundsOut,
            summary="Income, expenditure, period surplus and accumulated balance of every fund, closed months (公开)",
            description="``year`` and ``month``: that month (404 while it is not closed); ``year`` alone: every "
                        "closed month of the year; neither: the latest closed month (named in ``year`` and "
                        "``month``). ``period_surplus`` (当期收支结余) is the month's income − expenditure; "
                        "``accumulated_balance`` (累计结余) the surpluses of every closed month up to it. Figures "
                        "are frozen at the month close and never change afterwards.")
def funds(session: SessionDep, year: Annotated[int | None, Query(ge=2000, le=2200)] = None,
          month: Annotated[int | None, Query(ge=1, le=12)] = None) -> FundsOut:
    view = service.funds_view(session, year, month)
    return FundsOut(**{**view, "months": _yuan(view["months"])})


@router.get("/funds/{fund}/{year}", response_model=FundYearOut,
            summary="One fund's closed months of a year, with year-to-date figures and the approved budget (公开)")
def fund_year(session: SessionDep, fund: Annotated[str, Path(pattern=r"^[A-Z][A-Z_]{1,9}$")],
              year: Annotated[int, Path(ge=2000, le=2200)]) -> FundYearOut:
    view = service.fund_year_view(session, fund, year)
    return FundYearOut(**{**view, "months": _yuan(view["months"]), "totals": _yuan(view["totals"]),
                          "budget": _yuan(view["budget"]) if view["budget"] else None})
