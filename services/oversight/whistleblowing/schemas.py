"""API shapes of whistleblower reports. Money is ``Yuan`` at this edge, integer fen inside.

The reporter's identity appears only in ``ReportOut.reporters``, which the endpoints fill for oversight officers
only (everyone else gets ``null`` and ``identity_withheld: true``).
"""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from services.kernel.identifiers import CitizenId, RegionCode
from services.kernel.money import Yuan, yuan_type
from services.kernel.strict import RequestModel

Channel = Literal["web", "phone", "email", "letter", "visit"]
Category = Literal["collection", "payment", "management", "investment", "other"]
SubjectType = Literal["employer", "person", "agency", "institution", "other"]
Outcome = Literal["substantiated", "partly_substantiated", "unsubstantiated"]
Status = Literal["received", "assigned", "investigating", "answered", "closed"]
MAX_AMOUNT = Decimal("1000000000000")


def _non_negative(amount: Decimal) -> Decimal:
    if amount < 0 or amount > MAX_AMOUNT:
        raise PydanticCustomError("INVALID_AMOUNT", "金额须在 0 至 1 万亿元之间")
    return amount


def _positive(amount: Decimal) -> Decimal:
    if amount <= 0 or amount > MAX_AMOUNT:
        raise PydanticCustomError("INVALID_AMOUNT", "金额须大于 0 且不超过 1 万亿元")
    return amount


def _phone(value: str | None) -> str | None:
    if value is None:
        return None
    digits = value.replace(" ", "").replace("-", "")
    if not (digits.lstrip("+").isdigit() and 5 <= len(digits) <= 20):
        raise PydanticCustomError("INVALID_PHONE", "联系电话格式错误")
    return digits


Amount = yuan_type(_non_negative, minimum=Decimal(0))
PositiveAmount = yuan_type(_positive, minimum=Decimal(0), exclusive=True)
Phone = Annotated[str | None, AfterValidator(_phone)]
Name = Annotated[str, Field(min_length=1, max_length=100)]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]


class ReporterIn(RequestModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: Name
    citizen_id: CitizenId | None = None
    phone: Phone = None
    email: str | None = Field(default=None, max_length=200, pattern=r"^[^@\s]+@[^@\s]+$")
    address: str | None = Field(default=None, max_length=300)


class ReportIn(RequestModel):
    """A report (举报). Anonymous: no reporter. Named: one reporter, or several for a joint report (联名举报).
    ``channel`` other than ``web`` is recorded by an oversight officer (phone, e-mail, letter, visit)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: Channel = "web"
    anonymous: bool = False
    reporters: list[ReporterIn] = Field(default_factory=list, max_length=50)
    subject_name: str | None = Field(default=None, max_length=200, description="被举报主体（单位或个人）")
    subject_type: SubjectType | None = None
    category: Category = Field(description="collection 征缴/收入, payment 待遇支付/支出, management 基金管理 "
                                           "(挤占、挪用…), investment 投资运营, other 其他")
    title: str = Field(min_length=1, max_length=200)
    content: str = Field(min_length=1, max_length=20_000)
    region: RegionCode | None = None
    occurred_on: date | None = None
    amount_claimed: Amount | None = Field(default=None, description="the amount the reporter believes is involved")
    urgent: bool = Field(default=False, description="the reporter asks for urgent handling (000 三(四))")
    received_at: datetime | None = Field(
        default=None, description="staff channels only: when the call, letter, e-mail or visit came in (default: "
                                  "now); it decides who reported a fact first (001 第三十七条)")

    @model_validator(mode="after")
    def _identity(self) -> "ReportIn":
        if self.received_at is not None and self.channel == "web":
            raise PydanticCustomError("RECEIVED_AT_NOT_ALLOWED", "网上举报的受理时间由系统记录")
        if self.received_at is not None and self.received_at.tzinfo is None:
            raise PydanticCustomError("TIMEZONE_REQUIRED", "受理时间须带时区（如 +08:00）")
        if self.anonymous and self.reporters:
            raise PydanticCustomError("ANONYMOUS_WITH_IDENTITY", "匿名举报不应填写举报人信息")
        if not self.anonymous and not self.reporters:
            raise PydanticCustomError("REPORTER_REQUIRED", "实名举报须填写举报人信息；否则请选择匿名举报")
        return self


class ReportReceived(BaseModel):
    """What the reporter gets back: the tracking code is shown once; keep it to follow the report."""

    report_id: str
    tracking_code: str
    status: str
    received_at: datetime
    track_url: str
    message: str


class PublicStep(BaseModel):
    status: str
    at: datetime


class TrackingOut(BaseModel):
    """What the holder of a tracking code sees: status and the answer, never internal notes or who handles it."""

    status: str
    status_label: str
    received_at: datetime
    last_update_at: datetime
    answer: str | None
    answered_at: datetime | None
    closed_reason: str | None
    closed_at: datetime | None
    steps: list[PublicStep]


class ReporterOut(BaseModel):
    name: str
    citizen_id: str | None
    phone: str | None
    email: str | None
    address: str | None


class ReportOut(BaseModel):
    id: str
    channel: str
    anonymous: bool
    reporter_count: int
    identity_withheld: bool = Field(description="the reporter's identity is shown to oversight officers only")
    reporters: list[ReporterOut] | None
    subject_name: str | None
    subject_type: str | None
    category: str
    title: str
    content: str
    region: str | None
    occurred_on: date | None
    amount_claimed: Yuan | None
    urgent_requested: bool
    flagged: bool
    flag_reasons: list[dict]
    status: str
    assigned_to: str | None
    outcome: str | None
    verified_amount: Yuan | None
    answer: str | None
    answered_at: datetime | None
    closed_reason: str | None
    closed_at: datetime | None
    matter_id: str
    first_in_matter: bool
    received_at: datetime
    recorded_by: str
    status_changed_at: datetime


class StepOut(BaseModel):
    at: datetime
    actor_id: str
    action: str
    from_status: str | None
    to_status: str
    note: str | None


class NoteOut(BaseModel):
    id: int
    at: datetime
    author: str
    text: str


class ReportDetail(ReportOut):
    steps: list[StepOut]
    notes: list[NoteOut]
    rewards: list["RewardOut"]


class ReportPage(BaseModel):
    items: list[ReportOut]
    next_cursor: str | None


class AssignIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    officer_id: str = Field(min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=2000)


class NoteIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=10_000)


class StartIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000)


class AnswerIn(RequestModel):
    """The answer to the reporter (shown on the tracking page) and the investigation's outcome (internal)."""

    model_config = ConfigDict(extra="forbid")

    answer: str = Field(min_length=1, max_length=10_000)
    outcome: Outcome
    verified_amount: Amount | None = Field(default=None, description="违法违规金额 found true, if any")

    @model_validator(mode="after")
    def _amount(self) -> "AnswerIn":
        if self.outcome == "unsubstantiated" and self.verified_amount:
            raise PydanticCustomError("AMOUNT_WITHOUT_FINDING", "经查不属实的举报不应有查证属实金额")
        return self


class CloseIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class FlagIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class LinkIn(RequestModel):
    """This report concerns the same fact as ``same_as`` (001 第三十七条: one matter, the first reporter its main
    beneficiary)."""

    model_config = ConfigDict(extra="forbid")

    same_as: str = Field(min_length=1, max_length=36)


class AlertOut(BaseModel):
    id: str
    report_id: str
    reasons: list[dict]
    raised_at: datetime
    raised_by: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    action_taken: str | None


class AcknowledgeIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    action_taken: str = Field(min_length=1, max_length=2000,
                              description="what was done: reported to whom, measures taken (000 三(四))")


class RewardIn(RequestModel):
    """A reward decision, on the amount found true (查证属实的违法违规金额) that the answer recorded; the officer states
    what the records cannot show: full civil capacity, whether the facts were already known, whether the reporter
    has statutory duties over the fund, and — for a later reporter of the same fact — a substantial contribution."""

    model_config = ConfigDict(extra="forbid")

    verified_amount: PositiveAmount | None = Field(
        default=None, description="optional restatement of the verified amount the answer recorded (409 "
                                  "VERIFIED_AMOUNT_MISMATCH if it differs); the reward is computed on the recorded one")
    full_civil_capacity: bool
    facts_already_known: bool
    statutory_duty: bool
    substantial_contribution: bool = False
    supplementary_amount: PositiveAmount | None = Field(
        default=None, description="for a later reporter with a substantial contribution: the amount decided "
                                  "(at most the standard amount and what the matter's cap leaves)")
    note: str | None = Field(default=None, max_length=2000)


class CheckOut(BaseModel):
    code: str
    ok: bool
    clause: str
    detail: str


class RewardOut(BaseModel):
    id: str
    report_id: str
    matter_id: str
    eligible: bool
    kind: str | None
    checks: list[CheckOut]
    failed: list[str]
    verified_amount: Yuan
    standard: str
    computed: Yuan | None = Field(description="the standard's share, rounded half-up to the fen, before floor and cap")
    amount: Yuan | None
    floor_applied: bool
    cap_applied: bool
    steps: list[str]
    decided_at: datetime
    decided_by: str


ReportDetail.model_rebuild()
