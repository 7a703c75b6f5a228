from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from services.kernel.periods import Period
from services.kernel.strict import RequestModel


class EnrolmentRequest(RequestModel):
    model_config = ConfigDict(extra="forbid")

    person_id: str = Field(min_length=1, max_length=36, description="参保人员编号")
    fund: str = Field(min_length=1, max_length=10, description="险种: PEN_EMP, PEN_GOV, PEN_RES, UNEMP, INJURY")
    employer_id: str | None = Field(default=None, max_length=36,
                                    description="参保单位编号; required for employee funds, refused for PEN_RES")
    start_period: Period = Field(description="first month covered, YYYYMM")


class TransferRequest(RequestModel):
    model_config = ConfigDict(extra="forbid")

    employer_id: str = Field(min_length=1, max_length=36, description="the new employer")
    start_period: Period = Field(
        description="first month with the new employer; the old enrolment ends the month before")
    reason: str | None = Field(default=None, max_length=200)


class SuspendRequest(RequestModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200)


class ResumeRequest(RequestModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=200)


class StopRequest(RequestModel):
    model_config = ConfigDict(extra="forbid")

    end_period: Period = Field(description="last month covered, YYYYMM")
    reason: str = Field(min_length=1, max_length=200)


class EnrolmentOut(BaseModel):
    id: str
    person_id: str
    fund: str
    employer_id: str | None
    start_period: int
    end_period: int | None
    status: str
    stop_reason: str | None
    transferred_from: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime | None
    version: int


class TransferOut(BaseModel):
    closed: EnrolmentOut
    opened: EnrolmentOut


class EnrolmentPage(BaseModel):
    items: list[EnrolmentOut]
    next_cursor: str | None = Field(description="pass as ?after= to get the next page; null on the last page")


class EnrolmentVerification(BaseModel):
    """Answer of the online enrolment check (004 第10项): does an enrolment of ``fund`` cover ``period``?"""

    person_found: bool = Field(description="false when no person with this citizen id is registered here")
    enrolled: bool = Field(description="an enrolment of the fund covers the period (whatever its current status)")
    person_id: str | None = None
    fund: str | None = None
    period: int
    enrolment_id: str | None = None
    since_period: int | None = Field(default=None,
                                     description="first month of the enrolment, followed back through transfers")
    employer_id: str | None = None
    status: str | None = Field(default=None,
                               description="current status of that enrolment: active | suspended | stopped")
    life_status: str | None = None


class ContributionMonthsVerification(BaseModel):
    person_found: bool
    person_id: str | None = None
    fund: str | None = None
    until: int | None = None
    months: int
    first_period: int | None = None
    last_period: int | None = None
