"""Request and response bodies of recovery. Money is ``Yuan`` at this edge (a decimal string with at most two places;
JSON floats refused) and integer fen inside."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from services.kernel.money import Yuan, yuan_type
from services.kernel.strict import RequestModel

MAX_AMOUNT = Decimal("100000000")  # 1 亿元: far above any person's overpayment


def _positive(amount: Decimal) -> Decimal:
    if amount <= 0:
        raise PydanticCustomError("INVALID_AMOUNT", "金额须大于 0")
    if amount > MAX_AMOUNT:
        raise PydanticCustomError("INVALID_AMOUNT", "金额超出允许范围")
    return amount


PositiveYuan = yuan_type(_positive, minimum=Decimal(0), exclusive=True, maximum=MAX_AMOUNT)
Reference = Annotated[str, Field(min_length=1, max_length=100)]


class NoticeIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    person_id: str = Field(min_length=1, max_length=36)


class RepaymentIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    amount: PositiveYuan
    paid_on: date | None = Field(default=None, description="the day the money was received")
    reference: Reference | None = Field(default=None, description="bank voucher or transaction number")


class OffsetIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["payroll_offset", "one_off_offset", "individual_account"]
    amount: PositiveYuan
    reference: Reference = Field(description="payroll_offset: the pending payroll line; one_off_offset: the approved "
                                             "one-off claim; individual_account: the accounts withdrawal entry")


class IndividualAccountRequestIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000)


class IndividualAccountRequestOut(BaseModel):
    notice_id: str
    person_id: str
    remaining: Yuan
    withdrawal_idempotency_key: str = Field(description="the Idempotency-Key to use for the withdrawal in accounts")
    requested_by: str
    requested_at: datetime


class EscalationIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    as_of: date


class OverpaymentOut(BaseModel):
    id: str
    person_id: str
    payroll_line_id: str
    period: int
    amount: Yuan
    reason: str
    found_at: datetime
    recovery_notice_id: str | None


class RecoveryOut(BaseModel):
    id: str
    notice_id: str
    method: str
    amount: Yuan
    reference: str | None
    recorded_at: datetime
    recorded_by: str
    status: Literal["recorded", "reversed"] = Field(
        description="reversed: a payroll offset whose payroll line was held back when the bank file was made — "
                    "nothing was deducted from any payment, so it no longer counts as recovered")
    reversed_at: datetime | None = None
    reversed_by: str | None = None
    reversal_reason: str | None = None


class NoticeOut(BaseModel):
    id: str
    person_id: str
    amount: Yuan
    recovered: Yuan
    remaining: Yuan
    deadline: date
    status: str
    issued_at: datetime
    issued_by: str
    escalated_at: datetime | None


class NoticeDetail(NoticeOut):
    overpayments: list[OverpaymentOut]
    recoveries: list[RecoveryOut]


class NoticePage(BaseModel):
    items: list[NoticeOut]
    next_cursor: str | None = Field(description="pass as ?after= to get the next page; null on the last page")


class OverpaymentPage(BaseModel):
    items: list[OverpaymentOut]
    next_cursor: str | None


class Recorded(BaseModel):
    recovery: RecoveryOut
    notice: NoticeOut
    replayed: bool = Field(description="true when this business key was seen before: nothing was recorded again")


class EscalationOut(BaseModel):
    as_of: date
    escalated: list[NoticeOut]
