"""API shapes of the fund bank accounts and the FINANCE leg. Money is ``Yuan`` (a Decimal with two places, serialised
as a string, JSON floats refused) at this edge and integer fen inside."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from services.collection.treasury.rules import FUND_ACCOUNT_KINDS
from services.contracts import codes
from services.kernel.money import Yuan, yuan_type
from services.kernel.periods import Period
from services.kernel.strict import RequestModel

# The funds of DOMAIN.md (Funds in scope). TODO(collection): read them from the region's fund catalogue once the
# parameters package publishes one, so that a region adding a fund does not need a code change here.
FUNDS = codes.FUNDS
MAX_AMOUNT = Decimal("1000000000000")  # 1 万亿元: above any fund account, far below the BIGINT of fen
MAX_STATEMENT_LINES = 10_000

Fund = codes.FundCode
AccountKind = Literal["special", "income", "expenditure"]
Direction = Literal["in", "out"]
Counterparty = Literal["treasury", "special", "income", "expenditure", "interest", "payer", "beneficiary", "other"]
Purpose = Literal["receipt", "transfer", "allocation", "interest", "payment", "return", "other"]


def _positive(amount: Decimal) -> Decimal:
    if amount <= 0:
        raise PydanticCustomError("INVALID_AMOUNT", "金额须大于 0")
    if amount > MAX_AMOUNT:
        raise PydanticCustomError("INVALID_AMOUNT", "金额超出允许范围")
    return amount


def _account_no(value: object) -> object:
    if not isinstance(value, str):
        return value
    digits = value.replace(" ", "").replace("-", "")
    if not digits.isdigit() or not 8 <= len(digits) <= 40:
        raise PydanticCustomError("INVALID_ACCOUNT_NO", "银行账号应为8至40位数字")
    return digits


PositiveYuan = yuan_type(_positive, minimum=Decimal(0), exclusive=True, maximum=MAX_AMOUNT)
AccountNo = Annotated[str, BeforeValidator(_account_no)]
Text = Annotated[str, Field(min_length=1, max_length=200)]


def _is_treasury_receipt(movement: "TransactionIn | StatementLine") -> bool:
    return (movement.direction, movement.counterparty, movement.purpose) == ("in", "treasury", "receipt")


# -- accounts --------------------------------------------------------------------------------------------------------


class AccountIn(RequestModel):
    """A fund bank account: the special account is finance's (opened with the Ministry of Finance's approval), the
    income and expenditure accounts are the agency's (filed with the treasury department) (000 二(四)1)."""

    model_config = ConfigDict(extra="forbid")

    kind: AccountKind
    fund: Fund
    bank_name: str = Field(min_length=1, max_length=100)
    account_no: AccountNo
    opened_on: date
    opening_approval_ref: str = Field(min_length=1, max_length=100, description="审批或备案文号")
    annual_inspection_due: date = Field(description="下次年检到期日")

    @model_validator(mode="after")
    def _dates(self) -> "AccountIn":
        if self.annual_inspection_due < self.opened_on:
            raise PydanticCustomError("INVALID_DATE", "年检到期日不能早于开户日期")
        return self


class AccountOut(BaseModel):
    id: str
    kind: str
    fund: str
    bank_name: str
    account_no: str
    opened_on: date
    opening_approval_ref: str
    annual_inspection_due: date
    inspection_overdue: bool
    status: str
    balance: Yuan
    created_at: datetime
    created_by: str


class AccountRegistered(BaseModel):
    account: AccountOut
    replayed: bool = Field(description="true when the same account was registered before with the same content")


class CloseIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)
    approval_ref: str | None = Field(default=None, max_length=100, description="销户审批或备案文号")


class InspectionIn(RequestModel):
    """年检 done: the next due date moves forward."""

    model_config = ConfigDict(extra="forbid")

    inspected_on: date
    next_due: date
    reference: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _dates(self) -> "InspectionIn":
        if self.next_due <= self.inspected_on:
            raise PydanticCustomError("INVALID_DATE", "下次年检到期日须晚于本次年检日期")
        return self


# -- remittances -----------------------------------------------------------------------------------------------------


class RemittanceIn(RequestModel):
    """The tax bureau's remittance to the treasury (国库), as finance records it. The voucher number is its key."""

    model_config = ConfigDict(extra="forbid")

    fund: Fund
    period: Period = Field(description="费款所属期 YYYYMM")
    amount: PositiveYuan
    remitted_on: date
    voucher_no: str = Field(min_length=1, max_length=64)


class RemittanceOut(BaseModel):
    id: str
    fund: str
    period: int
    amount: Yuan
    remitted_on: date
    voucher_no: str
    received: Yuan = Field(description="received into the special account so far")
    unreceived: Yuan
    deadline: date | None = Field(description="10th Chinese working day after remitted_on; null if unknown")
    deadline_note: str | None
    deadline_clause: str = Field(description="the seed clause the deadline comes from (000 二(二))")
    status: str = Field(description="open | received | overdue (unreceived after the deadline)")
    last_receipt_on: date | None = Field(description="value date of the last receipt into the special account")
    lateness: str = Field(description="on_time (in full by the deadline) | late (in full after it, or still not in "
                                      "full after it) | not_due (not yet in full, deadline not passed) | unknown "
                                      "(the working-day calendar does not cover the year)")
    late: bool | None = Field(description="whether the deadline was missed; null when unknown (never guessed)")
    working_days_late: int | None = Field(description="working days from the deadline to the last receipt (or to "
                                                      "today while not in full); 0 when not late; null when unknown")
    lateness_note: str | None = Field(description="why late or working_days_late is unknown")
    recorded_at: datetime
    recorded_by: str


class RemittanceRecorded(BaseModel):
    remittance: RemittanceOut
    replayed: bool


# -- transactions ----------------------------------------------------------------------------------------------------


class ReceiptIn(RequestModel):
    """A receipt of a remittance into the special account of its fund (counterparty treasury, purpose receipt)."""

    model_config = ConfigDict(extra="forbid")

    remittance_id: str = Field(min_length=1, max_length=36)
    amount: PositiveYuan
    value_date: date
    reference: str | None = Field(default=None, max_length=200, description="bank voucher of the receipt")


class InterestIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    amount: PositiveYuan
    value_date: date
    reference: str | None = Field(default=None, max_length=200, description="bank interest slip")


class AllocationIn(RequestModel):
    """财政拨付: special account → expenditure account of the same fund, for an approved payroll."""

    model_config = ConfigDict(extra="forbid")

    fund: Fund
    amount: PositiveYuan
    payroll_reference: str = Field(min_length=1, max_length=200)
    value_date: date


class TransactionIn(RequestModel):
    """A movement entered by hand on one fund account. A counterparty that is one of our fund accounts is named by
    ``counterparty_account_id``. Allocations go through ``POST /treasury/allocations`` (both legs at once)."""

    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(min_length=1, max_length=36)
    direction: Direction
    amount: PositiveYuan
    counterparty: Counterparty
    counterparty_account_id: str | None = Field(default=None, max_length=36)
    purpose: Purpose
    remittance_id: str | None = Field(default=None, max_length=36, description="for receipts from the treasury")
    reference: str | None = Field(default=None, max_length=200)
    value_date: date

    @model_validator(mode="after")
    def _shape(self) -> "TransactionIn":
        if (self.counterparty in FUND_ACCOUNT_KINDS) != (self.counterparty_account_id is not None):
            raise PydanticCustomError("INVALID_COUNTERPARTY",
                                      "对方为财政专户、收入户或支出户时须且仅须填写 counterparty_account_id")
        if self.remittance_id is not None and not _is_treasury_receipt(self):
            raise PydanticCustomError("REMITTANCE_NOT_EXPECTED", "只有从国库收到的划款（收入、对方国库、用途 receipt）才对应国库缴款记录")
        return self


class StatementLine(RequestModel):
    """One line of a bank statement (银行对账单): a movement that has already happened."""

    model_config = ConfigDict(extra="forbid")

    bank_line_id: str = Field(min_length=1, max_length=64, description="the bank's serial number of the line (流水号)")
    value_date: date
    direction: Direction
    amount: PositiveYuan
    counterparty: Counterparty = Field(description="as classified; a registered counterparty account number wins")
    counterparty_account_no: AccountNo | None = None
    purpose: Purpose
    remittance_voucher_no: str | None = Field(default=None, max_length=64,
                                              description="the remittance a receipt from the treasury belongs to")
    reference: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _shape(self) -> "StatementLine":
        if self.counterparty in FUND_ACCOUNT_KINDS and self.counterparty_account_no is None:
            raise PydanticCustomError("INVALID_COUNTERPARTY", "对方为财政专户、收入户或支出户时须填写对方账号")
        if self.remittance_voucher_no is not None and not _is_treasury_receipt(self):
            raise PydanticCustomError("REMITTANCE_NOT_EXPECTED", "只有从国库收到的划款（收入、对方国库、用途 receipt）才对应国库缴款凭证")
        return self


class StatementIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(min_length=1, max_length=36)
    statement_ref: str | None = Field(default=None, max_length=200)
    lines: list[StatementLine] = Field(min_length=1, max_length=MAX_STATEMENT_LINES)

    @model_validator(mode="after")
    def _unique_lines(self) -> "StatementIn":
        seen: set[str] = set()
        for line in self.lines:
            if line.bank_line_id in seen:
                raise PydanticCustomError("DUPLICATE_LINE", f"对账单中流水号 {line.bank_line_id} 重复")
            seen.add(line.bank_line_id)
        return self


class TransactionOut(BaseModel):
    id: str
    account_id: str
    account_kind: str
    fund: str
    direction: str
    amount: Yuan
    counterparty: str
    counterparty_account_id: str | None
    counterparty_fund: str | None
    purpose: str
    remittance_id: str | None
    period: int | None = Field(description="the contribution period of the remittance a receipt belongs to")
    reference: str | None
    value_date: date
    source: str
    status: str = Field(description="accepted | flagged")
    violation: str | None
    late: bool | None = Field(description="receipts: received after the 10th working day; null when not a "
                                          "receipt or the calendar does not cover the deadline")
    deadline: date | None
    idempotency_key: str
    recorded_at: datetime
    recorded_by: str


class Recorded(BaseModel):
    transaction: TransactionOut
    balance: Yuan = Field(description="the account's balance now")
    replayed: bool = Field(description="true when the Idempotency-Key was seen before: nothing was recorded again")


class AllocationRecorded(BaseModel):
    out_leg: TransactionOut
    in_leg: TransactionOut
    special_balance: Yuan
    expenditure_balance: Yuan
    replayed: bool


class StatementImported(BaseModel):
    account_id: str
    statement_ref: str | None
    lines: int
    recorded: int
    replayed: int
    flagged: int
    balance: Yuan
    transactions: list[TransactionOut]


class TransactionPage(BaseModel):
    items: list[TransactionOut]
    next_cursor: str | None


class NonZeroIncomeAccount(BaseModel):
    account_id: str
    fund: str
    bank_name: str
    account_no: str
    closing_balance: Yuan


class MonthEndCheck(BaseModel):
    """R4 / S13: income accounts whose balance at the end of the month is not zero (000 二(四)1 收入户月末无余额)."""

    month: int
    month_end: date
    checked: int
    non_zero: list[NonZeroIncomeAccount]

