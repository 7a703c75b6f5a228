"""Requests and responses of the payroll and bank payment endpoints. Money is yuan with two decimals (a string) at
the API edge and integer fen inside; account numbers are shown in full only to the roles that pay (pii)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.kernel.money import Yuan
from services.kernel.periods import Period
from services.kernel.pii import BankAccountOut
from services.kernel.strict import RequestModel

FUND_PATTERN = "^[A-Z_]{2,10}$"
MAX_RESULT_LINES = 1_000_000


class RunIn(RequestModel):
    """Compute (or recompute) the monthly payroll of a fund. Nothing else is entered: every amount comes from the
    entitlements (004 第20项)."""

    model_config = ConfigDict(extra="forbid")

    fund: str = Field(pattern=FUND_PATTERN, description="险种: PEN_EMP, PEN_GOV, PEN_RES, UNEMP, INJURY, …")
    period: Period = Field(description="the month paid, YYYYMM; not after the current month (China time)")


class StatusTotal(BaseModel):
    lines: int
    total: Yuan


class RunOut(BaseModel):
    id: str
    fund: str
    period: int
    status: str = Field(description="computed | approved | paid (every payable line paid)")
    lines: int = Field(description="payable lines (withheld lines are not part of the run total)")
    total: Yuan = Field(description="sum of the payable lines: the figure approved and funded")
    large_lines: int = Field(description="payable lines above the large-amount threshold (001 第十八条)")
    withheld_lines: int
    withheld_total: Yuan
    by_status: dict[str, StatusTotal] = Field(
        description="lines and payroll amounts per line status: pending, in_file, paid, failed (returned), withheld "
                    "(at computation, outside the total) and held_back (withheld after approval, inside the total)")
    computed_at: datetime
    computed_by: str
    approved_at: datetime | None
    approved_by: str | None
    funding_requested_at: datetime | None
    bank_files: int


class RunComputed(BaseModel):
    run: RunOut
    created: bool = Field(description="a new run (201)")
    recomputed: bool = Field(description="an existing, not yet approved run computed again (200)")
    frozen: bool = Field(description="the run was already approved and is returned unchanged (200)")


class FundingOut(BaseModel):
    run: RunOut
    amount: Yuan = Field(description="asked of finance: the run's total, special → expenditure account")
    replayed: bool = Field(description="funding had already been requested; nothing new was sent (200)")


class LineOut(BaseModel):
    id: str
    entitlement_id: str
    person_id: str
    period: int
    amount: Yuan
    bank_account_id: str | None
    account_no: BankAccountOut | None
    status: str = Field(description="pending | in_file | paid | failed | withheld")
    reason: str | None = Field(description="why a line is withheld, or the bank's reason for a failure")


class LinePage(BaseModel):
    items: list[LineOut]
    next_cursor: str | None


class RunVerification(BaseModel):
    run_id: str
    ok: bool
    stored_lines: int
    stored_total: Yuan
    recomputed_lines: int = Field(description="count of the payable lines as stored now")
    recomputed_total: Yuan = Field(description="sum of the payable lines as stored now")
    lines_not_matching_entitlement: int = Field(
        description="lines whose amount or fund differs from their entitlement's monthly amount (never hand-entered)")
    problems: list[str]


class BankFileOut(BaseModel):
    id: str
    run_id: str
    sequence: int = Field(description="1 for the first file of a run, 2… for re-issues")
    lines: int
    total: Yuan
    checksum: str = Field(description="SHA-256 of the canonical detail lines (bankfile.py)")
    status: str = Field(description="issued | settled (every line has the bank's result)")
    paid_lines: int
    paid_total: Yuan
    failed_lines: int
    returned_total: Yuan = Field(description="failed payments returned to the fund's expenditure account")
    awaiting_result: int
    offset_total: Yuan = Field(description="recovery offsets deducted from these lines' payroll amounts")
    created_at: datetime
    created_by: str


class NotReissued(BaseModel):
    payroll_line_id: str
    person_id: str
    reason: str


class BankFileIssued(BaseModel):
    file: BankFileOut
    replayed: bool = Field(description="the run's first file already existed and is returned (200)")
    held_back: list[NotReissued] = Field(
        default_factory=list,
        description="pending lines no longer payable (entitlement suspended or ended, person dead or imprisoned "
                    "since approval): withheld, never sent")
    fully_offset_lines: int = Field(default=0, description="lines settled in full by a recovery offset")


class Reissued(BaseModel):
    file: BankFileOut
    not_reissued: list[NotReissued] = Field(description="failed lines still waiting for a corrected account")


class ResultLineIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    line_no: int = Field(ge=1)
    payroll_line_id: str = Field(min_length=1, max_length=36)
    result: Literal["paid", "failed"]
    reason: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _failure_has_reason(self) -> "ResultLineIn":
        if self.result == "failed" and not (self.reason or "").strip():
            raise ValueError("a failed payment needs the bank's reason")
        return self


class ResultsIn(RequestModel):
    """The bank's results for one payment file (JSON form; the CSV form is in bankfile.py)."""

    model_config = ConfigDict(extra="forbid")

    checksum: str = Field(min_length=64, max_length=64, description="the payment file's checksum, echoed")
    lines: list[ResultLineIn] = Field(min_length=1, max_length=MAX_RESULT_LINES)


class ResultsApplied(BaseModel):
    file_id: str
    run_id: str
    applied: int = Field(description="lines settled by this import")
    unchanged: int = Field(description="lines already settled with the same result (no-op)")
    paid_lines: int
    paid_total: Yuan
    failed_lines: int
    returned_total: Yuan = Field(description="amount of the failed lines of this import, back in the expenditure "
                                             "account")
    file_status: str
    run_status: str
