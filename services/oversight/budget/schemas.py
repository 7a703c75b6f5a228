"""Requests and responses of the budget endpoints. Money is ``Yuan`` (a two-place decimal string) at the edge,
integer fen inside; percentages are decimal strings with two places (percent, or percentage points)."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, Field, PlainSerializer

from services.kernel.money import Yuan
from services.kernel.strict import RequestModel

Percent = Annotated[Decimal, PlainSerializer(lambda d: f"{d:.2f}", return_type=str)]
FundCode = Annotated[str, Field(pattern=r"^[A-Z][A-Z_]{1,9}$", description="fund code, e.g. PEN_EMP")]
Year = Annotated[int, Field(ge=2000, le=2200)]
Lines = Annotated[dict[str, Yuan], Field(description="item → amount in yuan (see GET /budget/items)")]


class BudgetIn(RequestModel):
    fund: FundCode
    year: Year
    lines: Lines = Field(default_factory=dict)
    note: str | None = Field(default=None, max_length=2000)


class BudgetLinesIn(RequestModel):
    lines: Lines
    note: str | None = Field(default=None, max_length=2000)


class ReviewIn(RequestModel):
    note: str | None = Field(default=None, max_length=2000)


class ApproveIn(RequestModel):
    approval_ref: str = Field(min_length=1, max_length=200, description="人大批准 / 批复文号")
    approved_on: date
    note: str | None = Field(default=None, max_length=2000)


class ReturnIn(RequestModel):
    reason: str = Field(min_length=1, max_length=2000)


class AdjustmentIn(RequestModel):
    lines: Lines = Field(description="item → its NEW amount in yuan (items not named keep theirs)")
    reason: str = Field(min_length=1, max_length=2000, description="特殊情况或重大政策因素")


class FinalAccountsIn(RequestModel):
    entered: Lines = Field(default_factory=dict,
                           description="actuals of the items the ledger does not hold (item → yuan); missing: 0")
    note: str | None = Field(default=None, max_length=2000)


class ItemOut(BaseModel):
    item: str
    name: str
    side: str
    from_ledger: bool


class ChainOut(BaseModel):
    status: str
    created_by: str
    created_role: str | None
    created_at: datetime
    submitted_by: str | None
    submitted_at: datetime | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_note: str | None
    approved_by: str | None
    approved_at: datetime | None
    approval_ref: str | None
    approved_on: date | None
    returned_reason: str | None


class BudgetLineOut(BaseModel):
    item: str
    name: str
    side: str
    amount: Yuan
    approved: Yuan | None  # as first approved


class Totals(BaseModel):
    income: Yuan
    expenditure: Yuan
    surplus: Yuan  # income − expenditure


class BudgetOut(ChainOut):
    id: str
    fund: str
    fund_name: str
    year: int
    version: int
    note: str | None
    lines: list[BudgetLineOut]
    totals: Totals
    adjustments: int
    open_adjustment: str | None
    final_accounts: str | None  # status


class AdjustmentLineOut(BaseModel):
    item: str
    name: str
    side: str
    before: Yuan
    after: Yuan
    change: Yuan


class AdjustmentOut(ChainOut):
    id: str
    fund: str
    year: int
    seq: int
    reason: str
    base_version: int
    applied_version: int | None
    lines: list[AdjustmentLineOut]


class ExecutionMonthOut(BaseModel):
    month: int  # YYYYMM
    closed: bool  # reconciliation month close (月结): later events show as post-close adjustments
    time_progress: Percent
    actual: Yuan
    cumulative: Yuan
    execution: Percent | None  # cumulative / budget, %
    deviation: Percent | None  # execution − time progress, percentage points
    warning: bool


class ExecutionItemOut(BaseModel):
    item: str
    name: str
    side: str
    budget: Yuan
    actual: Yuan  # cumulative up to the month
    execution: Percent | None
    deviation: Percent | None
    warning: bool
    months: list[ExecutionMonthOut]


class WarningOut(BaseModel):
    item: str
    name: str
    month: int
    kind: str  # over | under | unbudgeted
    execution: Percent | None
    time_progress: Percent
    deviation: Percent | None
    message: str


class ExecutionOut(BaseModel):
    fund: str
    fund_name: str
    year: int
    month: int  # YYYYMM: execution up to and including this month
    budget_version: int
    time_progress: Percent
    threshold: Percent  # percentage points
    items: list[ExecutionItemOut]
    warnings: list[WarningOut]
    not_from_ledger: list[str]  # items oversight's ledger does not hold (reported at the final accounts)
    open_months: list[int]  # months up to ``month`` not closed yet: their figures may still change


class FinalLineOut(BaseModel):
    item: str
    name: str
    side: str
    source: str  # ledger | entered
    budget: Yuan
    actual: Yuan
    variance: Yuan  # actual − budget
    execution: Percent | None


class FinalTotals(BaseModel):
    budget: Totals
    actual: Totals
    variance: Totals


class FinalAccountsOut(ChainOut):
    id: str
    fund: str
    year: int
    budget_version: int
    computed_at: datetime
    note: str | None
    lines: list[FinalLineOut]
    totals: FinalTotals
    open_months: list[int]  # months of the year not closed when computed
