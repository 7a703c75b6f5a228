"""API shapes of on-site inspections and the yearly programme. Money is ``Yuan`` at this edge, fen inside."""

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from services.contracts.codes import FundCode
from services.kernel.money import Yuan, yuan_type
from services.kernel.strict import RequestModel

TargetLevel = Literal["same_level", "lower_level", "service_institution", "other"]
AgencyLevel = Literal["same_level", "lower_level"]
Fund = FundCode


def _amount(value: Decimal) -> Decimal:
    if value < 0 or value > Decimal("1000000000000"):
        raise PydanticCustomError("INVALID_AMOUNT", "金额须在 0 至 1 万亿元之间")
    return value


Amount = yuan_type(_amount, minimum=Decimal(0))
Code = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[0-9A-Za-z_.\-]+$")]


class MemberIn(RequestModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    inspector_id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=100)
    leader: bool = False


class TeamIn(RequestModel):
    """The inspection team: at least 2 inspectors (001 第八条: 应当由2名以上监督人员共同进行), checked by the service."""

    model_config = ConfigDict(extra="forbid")

    members: list[MemberIn] = Field(max_length=50)


class InspectionIn(RequestModel):
    """The plan (监督方案): whom, when, what."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    target_unit: str = Field(min_length=1, max_length=200)
    target_code: Code | None = None
    target_level: TargetLevel
    scope: str = Field(min_length=1, max_length=20_000)
    planned_on: date
    programme_id: str | None = Field(default=None, max_length=36)
    members: list[MemberIn] | None = Field(default=None, max_length=50,
                                           description="the team now, or later with PUT …/team")


class RescheduleIn(RequestModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    planned_on: date
    reason: str = Field(min_length=1, max_length=2000)


class NotificationIn(RequestModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    notified_on: date = Field(description="at least 3 days before the planned date (001 第十一条(一))")
    notice_ref: str | None = Field(default=None, max_length=100)


class FindingIn(RequestModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=20_000)
    fund: Fund | None = None
    amount: Amount = Field(description="涉及资金数额")


class DeadlineIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    finding_id: str = Field(max_length=36)
    rectify_by: date


class FeedbackLetterIn(RequestModel):
    """问题反馈函: every finding with its rectification deadline (001 第十一条(三); 000 三(二))."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    letter_no: str = Field(min_length=1, max_length=100)
    issued_on: date
    oral_feedback_on: date | None = None
    requirements: str | None = Field(default=None, max_length=20_000)
    deadlines: list[DeadlineIn] = Field(min_length=1, max_length=1000)


class RectifiedIn(RequestModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    rectified_on: date
    note: str = Field(min_length=1, max_length=5000)


class InspectionReportIn(RequestModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    reported_on: date
    summary: str = Field(min_length=1, max_length=50_000)
    reported_to_higher: bool = Field(default=False, description="视情况上报上级监督部门")


class MemberOut(BaseModel):
    inspector_id: str
    name: str
    leader: bool


class FindingOut(BaseModel):
    id: str
    seq: int
    title: str
    description: str
    fund: str | None
    amount: Yuan
    rectify_by: date | None
    rectified_on: date | None
    rectification_note: str | None
    rectification_overdue: bool
    created_at: datetime
    created_by: str


class InspectionOut(BaseModel):
    id: str
    programme_id: str | None
    target_unit: str
    target_code: str | None
    target_level: str
    scope: str
    planned_on: date
    status: str
    notified_on: date | None
    notice_ref: str | None
    members: list[MemberOut]
    findings: list[FindingOut]
    findings_amount: Yuan
    oral_feedback_on: date | None
    letter_no: str | None
    letter_issued_on: date | None
    letter_requirements: str | None
    reported_on: date | None
    report_summary: str | None
    reported_to_higher: bool
    created_at: datetime
    created_by: str


class InspectionPage(BaseModel):
    items: list[InspectionOut]
    next_cursor: str | None


class AgencyIn(RequestModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: Code
    name: str = Field(min_length=1, max_length=200)
    level: AgencyLevel


class ProgrammeIn(RequestModel):
    """The year's programme: the same-level agency (or agencies) once each, and a sample of at least 20 % (rounded
    up) of the lower-level agencies drawn from ``seed`` (generated when absent; recorded either way)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    year: int = Field(ge=2000, le=2200)
    agencies: list[AgencyIn] = Field(min_length=1, max_length=5000)
    seed: str | None = Field(default=None, min_length=8, max_length=128)
    sample_rate: Decimal = Field(default=Decimal("0.20"), description="at least 0.20", max_digits=5,
                                 decimal_places=4)


class ProgrammeAgencyOut(BaseModel):
    code: str
    name: str
    level: str
    selected: bool
    rank_key: str | None
    inspections: list[str]
    inspected: bool = Field(description="an inspection of it has been reported")


class ProgrammeOut(BaseModel):
    id: str
    year: int
    seed: str
    algorithm: str
    sample_rate: Decimal
    lower_level_count: int
    sample_size: int
    same_level: list[str]
    sample: list[str]
    agencies: list[ProgrammeAgencyOut]
    created_at: datetime
    created_by: str


class ProgrammeVerification(BaseModel):
    id: str
    year: int
    seed: str
    algorithm: str
    recorded_sample: list[str]
    derived_sample: list[str]
    matches: bool
