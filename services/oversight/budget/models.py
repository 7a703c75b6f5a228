"""Fund budgets (社会保险基金预算, 002 二(三)、二(四)、三(一)、三(二)、三(三)).

- ``budget``: one per fund × year, with its approval chain (``status``: draft → submitted → reviewed → approved; a
  reviewer or approver may return it to draft with a reason). ``version`` counts the approved states of its amounts:
  1 when first approved, +1 per approved adjustment.
- ``budget_line``: one row per line item of 002 二(三) (``items.py``), integer fen. ``amount_fen`` is the amount in
  force; ``approved_fen`` the amount as the budget was first approved (None until then).
- ``budget_adjustment`` / ``budget_adjustment_line``: 预算调整 (002 三(二)): the new amount of each item it changes,
  through the same chain; the budget lines change only when it is approved, and the adjustment keeps the amounts
  before and after (the history of the budget).
- ``budget_final_accounts`` / ``budget_final_line``: 决算 (002 三(三)): the year's actual per item (from the ledger
  where oversight's ledger holds it, entered otherwise), compared with the budget in force, through the same chain.

Who did each step is kept on the row (``*_by``, ``*_role``, ``*_at``) and in the audit chain.
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field

from services.oversight.models import OversightTable


def _fen() -> int:
    return Field(default=0, sa_column_kwargs={"server_default": "0"}, sa_type=BigInteger)


class ApprovalSteps(OversightTable):
    """The approval chain's columns of a budget, an adjustment and final accounts: who did each step, in which role
    and when (drafted → submitted → reviewed → approved; a return to draft keeps its reason)."""

    created_by: str = Field(max_length=100)
    created_role: str | None = Field(default=None, max_length=50)
    created_at: datetime
    submitted_by: str | None = Field(default=None, max_length=100)
    submitted_role: str | None = Field(default=None, max_length=50)
    submitted_at: datetime | None = None
    reviewed_by: str | None = Field(default=None, max_length=100)
    reviewed_role: str | None = Field(default=None, max_length=50)
    reviewed_at: datetime | None = None
    review_note: str | None = Field(default=None, sa_type=Text)
    approved_by: str | None = Field(default=None, max_length=100)
    approved_role: str | None = Field(default=None, max_length=50)
    approved_at: datetime | None = None
    approval_ref: str | None = Field(default=None, max_length=200)  # 人大批准 / 批复文号
    approved_on: date | None = None  # the day of the approval the reference records
    returned_reason: str | None = Field(default=None, sa_type=Text)
    updated_at: datetime


class Budget(ApprovalSteps, table=True):
    __tablename__ = "budget"
    __table_args__ = (UniqueConstraint("fund", "year"),)

    id: str = Field(primary_key=True, max_length=36)
    fund: str = Field(max_length=10, index=True)
    year: int = Field(index=True)
    status: str = Field(max_length=20)  # draft | submitted | reviewed | approved
    version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    note: str | None = Field(default=None, sa_column=Column(Text))


class BudgetLine(OversightTable, table=True):
    __tablename__ = "budget_line"

    budget_id: str = Field(primary_key=True, foreign_key="budget.id", max_length=36)
    item: str = Field(primary_key=True, max_length=30)
    side: str = Field(max_length=12)  # income | expenditure
    amount_fen: int = _fen()  # in force
    approved_fen: int | None = Field(default=None, sa_type=BigInteger)  # as first approved


class BudgetAdjustment(ApprovalSteps, table=True):
    __tablename__ = "budget_adjustment"
    __table_args__ = (UniqueConstraint("budget_id", "seq"),)

    id: str = Field(primary_key=True, max_length=36)
    budget_id: str = Field(foreign_key="budget.id", max_length=36, index=True)
    seq: int
    status: str = Field(max_length=20)  # draft | submitted | reviewed | approved | withdrawn
    reason: str = Field(sa_column=Column(Text, nullable=False))
    base_version: int  # the budget version the amounts "before" were read from
    applied_version: int | None = None  # the budget version its approval made


class BudgetAdjustmentLine(OversightTable, table=True):
    __tablename__ = "budget_adjustment_line"

    adjustment_id: str = Field(primary_key=True, foreign_key="budget_adjustment.id", max_length=36)
    item: str = Field(primary_key=True, max_length=30)
    side: str = Field(max_length=12)
    before_fen: int = Field(sa_type=BigInteger)
    after_fen: int = Field(sa_type=BigInteger)


class BudgetFinalAccounts(ApprovalSteps, table=True):
    __tablename__ = "budget_final_accounts"

    id: str = Field(primary_key=True, max_length=36)
    budget_id: str = Field(foreign_key="budget.id", max_length=36, unique=True)
    status: str = Field(max_length=20)  # draft | submitted | reviewed | approved
    budget_version: int  # the budget version the variances were computed against
    computed_at: datetime  # when the ledger's actuals were read
    note: str | None = Field(default=None, sa_column=Column(Text))


class BudgetFinalLine(OversightTable, table=True):
    __tablename__ = "budget_final_line"

    final_id: str = Field(primary_key=True, foreign_key="budget_final_accounts.id", max_length=36)
    item: str = Field(primary_key=True, max_length=30)
    side: str = Field(max_length=12)
    source: str = Field(max_length=10)  # ledger | entered
    budget_fen: int = Field(sa_type=BigInteger)  # in force when computed
    actual_fen: int = Field(sa_type=BigInteger)


BUDGET_TABLES = (Budget, BudgetLine, BudgetAdjustment, BudgetAdjustmentLine, BudgetFinalAccounts, BudgetFinalLine)
