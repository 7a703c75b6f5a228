"""API shapes of the individual-account ledger. Money is ``Yuan`` (a Decimal with two places, serialised as a
string, JSON floats refused) at this edge and integer fen inside."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from services.accounts.ledger.interest import parse_rate
from services.contracts.codes import WagePensionFundCode
from services.kernel.money import Yuan, yuan_type
from services.kernel.periods import Period
from services.kernel.strict import RequestModel

MAX_AMOUNT = Decimal("10000000000")  # 100 亿元: far above any account, far below the BIGINT of fen


def _positive(amount: Decimal) -> Decimal:
    if amount <= 0:
        raise PydanticCustomError("INVALID_AMOUNT", "金额须大于 0")
    if amount > MAX_AMOUNT:
        raise PydanticCustomError("INVALID_AMOUNT", "金额超出允许范围")
    return amount


PositiveYuan = yuan_type(_positive, minimum=Decimal(0), exclusive=True, maximum=MAX_AMOUNT)
Rate = Annotated[Decimal, BeforeValidator(parse_rate)]


class ContributionPosting(RequestModel):
    """个人缴费记账: the individual part of a pension contribution, credited to the account."""

    model_config = ConfigDict(extra="forbid")

    amount: PositiveYuan = Field(description="yuan, decimal string, e.g. \"640.00\"")
    period: Period = Field(description="费款所属期 YYYYMM")
    fund: WagePensionFundCode = "PEN_EMP"
    employer_id: str | None = Field(default=None, max_length=36)
    reference: str | None = Field(default=None, max_length=200, description="payment line or voucher")


class TransferInPosting(RequestModel):
    """转入: an individual account balance received from another pooling region."""

    model_config = ConfigDict(extra="forbid")

    amount: PositiveYuan
    document_ref: str = Field(min_length=1, max_length=200, description="转移接续 document number")
    from_region: str | None = Field(default=None, max_length=6)
    note: str | None = Field(default=None, max_length=500)


class TransferOutPosting(RequestModel):
    """转出: to another pooling region. Without ``amount`` the whole balance leaves and the account closes."""

    model_config = ConfigDict(extra="forbid")

    amount: PositiveYuan | None = None
    document_ref: str = Field(min_length=1, max_length=200)
    to_region: str | None = Field(default=None, max_length=6)
    note: str | None = Field(default=None, max_length=500)


class WithdrawalPosting(RequestModel):
    """支取: the whole balance is paid out on death (to the heirs) or settlement, and the account closes."""

    model_config = ConfigDict(extra="forbid")

    reason: Literal["death", "settlement"]
    reference: str = Field(min_length=1, max_length=200, description="the approved benefit or settlement document")
    note: str | None = Field(default=None, max_length=500)


class EntryOut(BaseModel):
    id: str
    person_id: str
    entry_type: str
    amount: Yuan = Field(description="signed: credits positive, debits negative")
    year: int
    period: int | None
    reference: str | None
    reason: str | None
    idempotency_key: str
    posted_at: datetime
    posted_by: str


class PostingOut(BaseModel):
    entry: EntryOut
    balance: Yuan
    account_status: str
    replayed: bool = Field(description="true when the Idempotency-Key was seen before: nothing was posted again")


class AccountOut(BaseModel):
    person_id: str
    balance: Yuan
    status: str
    opened_at: datetime
    updated_at: datetime | None
    version: int


class EntryPage(BaseModel):
    items: list[EntryOut]
    next_cursor: str | None


class Verification(BaseModel):
    person_id: str
    cached_balance: Yuan
    derived_balance: Yuan
    entries: int
    consistent: bool


class Statement(BaseModel):
    person_id: str
    year: int
    account_status: str
    interest_rate: str | None = Field(description="记账利率 of the year, when set")
    opening_balance: Yuan
    entries: list[EntryOut]
    total_credits: Yuan
    total_debits: Yuan = Field(description="positive: the sum taken out")
    interest: Yuan = Field(description="interest credited for the year (part of total_credits)")
    closing_balance: Yuan


class InterestRateIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    rate: Rate = Field(description="decimal string, e.g. \"0.0262\" for 2.62 %; numbers are refused")


class InterestRateOut(BaseModel):
    year: int
    rate: str
    set_at: datetime
    set_by: str


class InterestRunIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    year: int = Field(ge=1990, le=2200)


class InterestRunOut(BaseModel):
    year: int
    rate: str
    accounts: int = Field(description="open accounts examined")
    credited: int = Field(description="accounts credited by this run")
    already_credited: int = Field(description="accounts whose interest for the year was credited before")
    zero_interest: int
    skipped_later_interest: int = Field(description="accounts already credited for a later year: left alone")
    total_interest: Yuan = Field(description="credited by this run")
    batches: int
