"""Request and response bodies of eligibility upkeep (survival certification, sweeps, a person's status)."""

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.kernel.money import Yuan
from services.kernel.pii import CitizenIdOut
from services.kernel.strict import RequestModel

Channel = Literal["app", "face", "on_site", "data_match"]
MAX_BATCH_RECORDS = 10_000


class CertificationIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    person_id: str = Field(min_length=1, max_length=36)
    channel: Channel = Field(description="app 手机APP | face 人脸识别 | on_site 现场认证 | data_match 数据比对")
    certified_on: date


class CertificationOut(BaseModel):
    id: str
    person_id: str
    channel: str
    certified_on: date
    recorded_at: datetime
    recorded_by: str
    created: bool = Field(description="false when the same person, day and channel was already recorded")
    notices_closed: int
    resumed_entitlement_ids: list[str]


class DataMatchRecord(RequestModel):
    model_config = ConfigDict(extra="forbid")

    citizen_id: str = Field(min_length=1, max_length=40)
    certified_on: date


class DataMatchBatch(RequestModel):
    """A partner department's data match: persons known to be alive on a day (e.g. a hospital visit, a benefit
    collected in person elsewhere). Checked line by line; one bad line does not refuse the batch."""

    model_config = ConfigDict(extra="forbid")

    batch_key: str = Field(min_length=1, max_length=100, description="the partner's own batch number")
    records: list[DataMatchRecord] = Field(min_length=1, max_length=MAX_BATCH_RECORDS)


class DataMatchLine(BaseModel):
    line_no: int
    citizen_id: CitizenIdOut
    status: str = Field(description="recorded | duplicate | unmatched | conflict | invalid")
    code: str | None
    message: str | None
    person_id: str | None


class DataMatchResult(BaseModel):
    batch_key: str
    total: int
    recorded: int
    duplicates: int
    unmatched: int
    conflicts: int
    invalid: int
    problems: list[DataMatchLine] = Field(description="every line not recorded (duplicates included)")


class SweepIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    as_of: date = Field(description="the day the sweep stands on (not in the future)")


class SweepOut(BaseModel):
    as_of: date
    notices_issued: int
    notices_expired: int
    entitlements_suspended: int
    notice_ids: list[str]
    suspended_person_ids: list[str]


class SurvivalNoticeOut(BaseModel):
    id: str
    person_id: str
    issued_on: date
    respond_by: date
    status: str


class SurvivalNoticePage(BaseModel):
    items: list[SurvivalNoticeOut]
    next_cursor: str | None = Field(description="pass as ?after= to get the next page; null on the last page")


class CertificationRow(BaseModel):
    id: str
    channel: str
    certified_on: date
    recorded_at: datetime
    recorded_by: str


class EntitlementStatus(BaseModel):
    id: str
    kind: str
    fund: str
    monthly_amount: Yuan
    start_period: int
    end_period: int | None
    status: str
    suspended_reason: str | None
    suspended_at: datetime | None


class PersonEligibility(BaseModel):
    person_id: str
    citizen_id: CitizenIdOut
    name: str
    life_status: str
    death_date: date | None
    imprisoned_from: date | None
    imprisoned_until: date | None
    last_certified_on: date | None
    open_notice: SurvivalNoticeOut | None
    entitlements: list[EntitlementStatus]
