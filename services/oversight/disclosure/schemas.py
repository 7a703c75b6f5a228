"""Public disclosure responses: fund-level sums only (Yuan strings), no personal or per-employer data."""

from datetime import date

from pydantic import BaseModel

from services.kernel.money import Yuan


class Figures(BaseModel):
    income: Yuan  # 社会保险费收入
    expenditure: Yuan  # 社会保险待遇支出
    balance: Yuan  # 当期收支结余


class FundFigures(Figures):
    fund: str
    fund_name: str


class MonthFunds(BaseModel):
    month: int  # YYYYMM, a closed month
    funds: list[FundFigures]
    totals: Figures


class FundsOut(BaseModel):
    year: int | None
    month: int | None
    months: list[MonthFunds]
    basis: dict[str, str]


class FundMonth(Figures):
    month: int
    year_to_date: Figures


class BudgetFigures(Figures):
    approved_on: date | None
    approval_ref: str | None
    adjustments: int


class FundYearOut(BaseModel):
    fund: str
    fund_name: str
    year: int
    months: list[FundMonth]
    totals: Figures
    budget: BudgetFigures | None  # the approved budget in force
    basis: dict[str, str]
