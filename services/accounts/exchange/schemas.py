"""Inter-department data (数据共享, stream EXCHANGE): what partner systems upload and what they get back.

A batch is validated in two layers. The envelope (``batch_key``, ``kind``, at most 10 000 ``records``) is checked
as a whole: a bad envelope is a 422 and nothing is kept. Each record is then checked on its own against the model of
its kind below; a bad line (an invalid citizen id or USCC, a missing date, …) is kept with status ``invalid`` and a
reason, and the rest of the batch goes on.
"""

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.kernel.identifiers import USCC, CitizenId
from services.kernel.pii import CitizenIdOut
from services.kernel.strict import RequestModel

MAX_RECORDS = 10_000


class BatchKind(StrEnum):
    death = "death"  # 卫健 / 民政: 死亡
    cremation = "cremation"  # 民政: 火化
    imprisonment = "imprisonment"  # 法院 / 司法: 服刑
    release = "release"  # 司法: 刑满释放
    business_registration = "business_registration"  # 市场监管: 企业设立登记


class RecordStatus(StrEnum):
    applied = "applied"  # matched and applied when the batch arrived
    unmatched = "unmatched"  # no such person / employer here; kept for review
    conflict = "conflict"  # matched, but contradicts the registry; listed, not applied
    invalid = "invalid"  # the line itself is wrong (identifier, dates, missing fields)
    resolved = "resolved"  # applied later by a reviewer after re-matching
    dismissed = "dismissed"  # closed by a reviewer with a note, nothing applied


OPEN_STATUSES = (RecordStatus.unmatched, RecordStatus.conflict, RecordStatus.invalid)


# -- one record per kind ---------------------------------------------------------------------------------------------


class _Record(RequestModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    record_id: str = Field(min_length=1, max_length=100, description="the partner's own line id")
    name: str = Field(min_length=1, max_length=200)


class _PersonRecord(_Record):
    citizen_id: CitizenId = Field(description="公民身份号码")


class DeathRecord(_PersonRecord):
    death_date: date


class CremationRecord(_PersonRecord):
    cremation_date: date


class ImprisonmentRecord(_PersonRecord):
    imprisoned_from: date
    imprisoned_until: date | None = Field(default=None, description="end of the sentence where known")

    @field_validator("imprisoned_until")
    @classmethod
    def _after_start(cls, value: date | None, info: Any) -> date | None:
        start = info.data.get("imprisoned_from")
        if value is not None and start is not None and value < start:
            raise ValueError("刑期截止日期早于开始日期")
        return value


class ReleaseRecord(_PersonRecord):
    released_on: date


class BusinessRegistrationRecord(_Record):
    uscc: USCC = Field(description="统一社会信用代码")
    registered_on: date = Field(description="成立日期 / 设立登记日期")


RECORD_MODELS: dict[BatchKind, type[_Record]] = {
    BatchKind.death: DeathRecord,
    BatchKind.cremation: CremationRecord,
    BatchKind.imprisonment: ImprisonmentRecord,
    BatchKind.release: ReleaseRecord,
    BatchKind.business_registration: BusinessRegistrationRecord,
}


def record_fields(kind: BatchKind) -> tuple[list[str], list[str]]:
    """(required, optional) field names of a record of ``kind``: also the CSV columns."""
    model = RECORD_MODELS[kind]
    required = [n for n, f in model.model_fields.items() if f.is_required()]
    optional = [n for n, f in model.model_fields.items() if not f.is_required()]
    return required, optional


# -- upload ----------------------------------------------------------------------------------------------------------


class BatchUpload(RequestModel):
    """``records`` are checked line by line (see the module docstring): one bad line does not refuse the batch.

    Record fields per kind — death: record_id, citizen_id, name, death_date; cremation: …, cremation_date;
    imprisonment: …, imprisoned_from, imprisoned_until (optional); release: …, released_on;
    business_registration: record_id, uscc, name, registered_on. Dates are ISO ``YYYY-MM-DD``.
    """

    batch_key: str = Field(min_length=1, max_length=100, description="the partner's own batch number")
    kind: BatchKind
    records: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_RECORDS)

    @field_validator("batch_key")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("批次号不能为空")
        return value


class RecordOutcome(BaseModel):
    """A line that was not simply applied as it arrived (its status now, after any review)."""

    id: str
    line_no: int
    record_id: str | None
    status: RecordStatus
    reason: str | None


class BatchResult(BaseModel):
    id: str
    source: str
    batch_key: str
    kind: BatchKind
    received_at: datetime
    received_by: str
    total: int
    applied: int = Field(description="matched and applied on arrival")
    unmatched: int
    conflicts: int
    invalid: int
    duplicate_upload: bool = Field(False, description="true when this upload repeated an earlier one (nothing changed)")
    status_counts: dict[str, int] = Field(description="the lines' statuses now, after any review")
    problems: list[RecordOutcome] = Field(
        description="every line not applied on arrival, or applied with a note; with its status now")


class BatchSummary(BaseModel):
    id: str
    source: str
    batch_key: str
    kind: BatchKind
    received_at: datetime
    total: int
    applied: int
    unmatched: int
    conflicts: int
    invalid: int


class BatchPage(BaseModel):
    items: list[BatchSummary]
    next_cursor: str | None


# -- review ----------------------------------------------------------------------------------------------------------


class ExchangeRecordOut(BaseModel):
    id: str
    batch_id: str
    kind: BatchKind
    source: str
    line_no: int
    record_id: str | None
    citizen_id: CitizenIdOut | None
    uscc: str | None
    name: str | None
    event_date: date | None
    until_date: date | None
    payload: dict[str, Any]
    status: RecordStatus
    reason: str | None
    person_id: str | None
    employer_id: str | None
    reviewed_at: datetime | None
    reviewed_by: str | None
    review_note: str | None


class RecordPage(BaseModel):
    items: list[ExchangeRecordOut]
    next_cursor: str | None = Field(description="pass as ?after= to get the next page; null on the last page")


class ResolveRequest(RequestModel):
    note: str = Field(min_length=1, max_length=2000, description="what was checked or fixed")
    accept_name_difference: bool = Field(
        False, description="apply although the partner's name differs from the registry (e.g. a former name)"
    )


class DismissRequest(RequestModel):
    note: str = Field(min_length=1, max_length=2000, description="why nothing is applied")
