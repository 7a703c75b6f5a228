"""API shapes of the posting suspense list (暂挂). Money is ``Yuan`` at this edge, integer fen inside."""

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.accounts.posting.service import REASONS
from services.kernel.money import Yuan
from services.kernel.pii import CitizenIdOut
from services.kernel.strict import RequestModel

ReasonCode = StrEnum("ReasonCode", {code: code for code in REASONS})  # type: ignore[misc]


class SuspenseStatus(StrEnum):
    held = "held"  # waiting for the registry to be fixed, or for a reviewer
    posted = "posted"  # posted after all (retried, or sent again once the registry was right)
    dismissed = "dismissed"  # closed by a reviewer with a note, nothing posted


class SuspenseLineOut(BaseModel):
    id: str
    payment_id: str
    batch_id: str = Field(description="the collection batch the line came in")
    source_event_id: str
    citizen_id: CitizenIdOut | None
    person_id: str | None
    employer_id: str | None
    fund: str
    period: int
    employer_amount: Yuan
    individual_amount: Yuan
    late_fee_amount: Yuan
    reason_code: str
    reason: str
    status: SuspenseStatus
    attempts: int
    held_at: datetime
    last_attempt_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    entry_id: str | None = Field(description="the individual-account entry, when posted with a credit")
    note: str | None


class SuspensePage(BaseModel):
    items: list[SuspenseLineOut]
    next_cursor: str | None = Field(description="pass as ?after= to get the next page; null on the last page")


class SuspenseSummaryRow(BaseModel):
    status: SuspenseStatus
    reason_code: str
    lines: int
    amount: Yuan = Field(description="employer and individual parts")


class RetryRequest(RequestModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000, description="what was fixed in the registry")


class RetryAllRequest(RequestModel):
    model_config = ConfigDict(extra="forbid")

    reason_code: ReasonCode | None = Field(default=None, description="only the lines held for this reason")
    batch_id: str | None = Field(default=None, max_length=64, description="only the lines of this collection batch")
    note: str | None = Field(default=None, max_length=2000)


class RetryOut(BaseModel):
    outcome: Literal["posted", "held"]
    line: SuspenseLineOut


class RetryAllOut(BaseModel):
    tried: int
    posted: int
    still_held: int
    out_of_region: int = Field(description="left held: the person is outside the caller's area")
    credited: Yuan = Field(description="credited to individual accounts")
    held_by_reason: dict[str, int] = Field(description="the lines still held, by reason code")


class DismissRequest(RequestModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=2000, description="why the line is not posted")
