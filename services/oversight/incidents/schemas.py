"""API shapes of major-incident reports. Money is ``Yuan`` at this edge, integer fen inside."""

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from services.kernel.identifiers import RegionCode
from services.kernel.money import Yuan, yuan_type
from services.kernel.strict import RequestModel

Kind = Literal["misappropriation", "diversion", "fraud"]
# 000 三(五): 专项检查、审计监督、内部控制、媒体披露、受理群众举报、检察机关或法院立案审理; 001 第三十一条: 疑点数据核实.
Channel = Literal["inspection", "audit", "internal_control", "media", "whistleblowing", "court", "data_verification"]
Level = Literal["same_level", "provincial"]

KIND_LABELS = {"misappropriation": "挪用", "diversion": "挤占", "fraud": "骗取"}
CHANNEL_LABELS = {
    "inspection": "专项检查/现场监督", "audit": "审计监督", "internal_control": "内部控制", "media": "媒体披露",
    "whistleblowing": "受理群众举报", "court": "检察机关或法院立案审理", "data_verification": "疑点数据核实",
}
LEVEL_LABELS = {"same_level": "同级社会保险基金监督机构", "provincial": "省级社会保险基金监督机构"}


def _amount(value: Decimal) -> Decimal:
    if value < 0 or value > Decimal("1000000000000"):
        raise PydanticCustomError("INVALID_AMOUNT", "金额须在 0 至 1 万亿元之间")
    return value


Amount = yuan_type(_amount, minimum=Decimal(0))


class IncidentIn(RequestModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: Kind = Field(description="misappropriation 挪用, diversion 挤占, fraud 骗取")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(min_length=1, max_length=20_000)
    unit: str = Field(min_length=1, max_length=200, description="the unit concerned")
    region: RegionCode | None = None
    channel: Channel
    source_ref: str | None = Field(default=None, max_length=100,
                                   description="the whistleblower report, inspection or case it came from")
    discovered_on: date
    amount: Amount
    major: bool = Field(description="重大要情: due at the provincial supervisor within 5 working days")
    major_reason: str | None = Field(default=None, max_length=2000)


class ReportIn(RequestModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    level: Level
    reported_on: date
    reference: str | None = Field(default=None, max_length=100, description="文号 of the report")


class ClassificationIn(RequestModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    major: bool
    reason: str = Field(min_length=1, max_length=2000)


class IncidentOut(BaseModel):
    id: str
    kind: str
    kind_label: str
    title: str
    description: str
    unit: str
    region: str | None
    channel: str
    channel_label: str
    source_ref: str | None
    discovered_on: date
    amount: Yuan
    major: bool
    major_reason: str | None
    due_on: date | None = Field(description="major only: the 5th Chinese working day after discovery")
    due_note: str | None
    same_level_reported_on: date | None
    same_level_ref: str | None
    same_level_late: bool | None
    provincial_reported_on: date | None
    provincial_ref: str | None
    provincial_late: bool | None
    late: bool = Field(description="a report reached a level after the due day")
    status: str = Field(description="major: reported | due | overdue | deadline_unknown; otherwise half_yearly")
    days_overdue: int | None
    recorded_at: datetime
    recorded_by: str


class IncidentPage(BaseModel):
    items: list[IncidentOut]
    next_cursor: str | None


class DueList(BaseModel):
    as_of: date
    due: list[IncidentOut] = Field(description="major incidents not yet reported to every level, deadline not passed")
    overdue: list[IncidentOut] = Field(description="deadline passed, a level still not reported (急情缓报)")
    deadline_unknown: list[IncidentOut]


class Bucket(BaseModel):
    count: int
    amount: Yuan


class Summary(BaseModel):
    """The half-yearly summary (001 第三十一条: 每半年汇总), by discovery date."""

    year: int
    half: int
    period_from: date
    period_to: date
    as_of: date
    count: int
    amount: Yuan
    major_count: int
    major_amount: Yuan
    by_kind: dict[str, Bucket]
    by_channel: dict[str, Bucket]
    reported_late: list[IncidentOut]
    overdue_unreported: list[IncidentOut]
    incidents: list[IncidentOut]
