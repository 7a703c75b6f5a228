"""Public disclosure responses: fund-level sums only (Yuan strings), no personal or per-employer data."""

from datetime import date

from pydantic import BaseModel, Field

from services.kernel.money import Yuan


class Figures(BaseModel):
    income: Yuan = Field(description="社会保险费收入")
    expenditure: Yuan = Field(description="社会保险待遇支出")
    period_surplus: Yuan = Field(description="当期收支结余 = 收入 − 支出 (the period's, not the fund's balance)")


class Balances(Figures):
    accumulated_balance: Yuan = Field(description="累计结余: the period surpluses of every closed month up to this "
                                                  "one (from the first closed month on; see basis)")


class FundFigures(Balances):
    fund: str
    fund_name: str


class MonthFunds(BaseModel):
    month: int  # YYYYMM, a closed month
    funds: list[FundFigures]
    totals: Balances


class FundsOut(BaseModel):
    year: int | None = Field(description="the year asked for, or the latest closed month's (none closed: null)")
    month: int | None = Field(description="the month shown (YYYYMM) when one month is: asked for, or by default the "
                                          "latest closed month; null for a whole year")
    months: list[MonthFunds]
    basis: dict[str, str]


class FundMonth(Balances):
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
