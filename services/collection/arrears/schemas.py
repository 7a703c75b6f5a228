"""Arrears and late fees (欠费与滞纳金): what the agency reads and what a notice (催缴通知) records.

Money is ``Yuan`` (decimal strings with two places); the computation of every line is shown: the payments that
settled part of it (each one a charge segment with its days and fee), and the open segment from the last payment (or
the due date) to the as-of day. See ``arrears/latefee.py`` for the rule.
"""

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.kernel.money import Yuan
from services.kernel.strict import RequestModel


class PaymentStep(BaseModel):
    """A payment that settled part of the line (a ``LateFeeCharge``): the segment it closed and what it paid."""

    tax_payment_id: str
    paid_date: date
    days: int = Field(description="days of the segment it closed (since the due date or the previous payment)")
    principal_before: Yuan
    fee_accrued: Yuan = Field(description="principal_before × rate × days, rounded half-up once")
    principal_paid: Yuan
    fee_paid: Yuan


class OpenSegment(BaseModel):
    """From the day after the last charged day (due date or last payment) to the as-of day, on the principal still
    outstanding."""

    from_date: date = Field(description="the last day already charged; counting starts the day after")
    through: date
    days: int
    principal: Yuan
    rate: str
    exact_fee: str = Field(description="principal × rate × days before rounding, in yuan")
    fee: Yuan
    explanation: str


class ArrearsLine(BaseModel):
    assessment_line_id: str
    assessment_id: str
    person_id: str
    fund: str
    period: int
    due_date: date
    principal: Yuan = Field(description="assessed: employer part + individual part")
    principal_paid: Yuan
    principal_outstanding: Yuan
    days_late: int = Field(description="days from the day after the due date to the as-of day")
    fee_unpaid_before: Yuan = Field(description="late fee charged at earlier payments and not yet paid")
    open_segment: OpenSegment
    late_fee: Yuan = Field(description="fee_unpaid_before + open_segment.fee")
    total: Yuan
    payments: list[PaymentStep] = Field(description="recorded charges; for a corrected line, its payments and those "
                                                    "of the lines it replaces replayed on the corrected principal")
    corrects: list[str] = Field(default_factory=list,
                                description="lines this one replaces (superseded assessments), nearest first")


class FundTotal(BaseModel):
    fund: str
    lines: int
    principal_outstanding: Yuan
    late_fee: Yuan
    total: Yuan


class EmployerArrears(BaseModel):
    employer_id: str
    uscc: str | None
    name: str | None
    lines: list[ArrearsLine]
    line_count: int
    oldest_due_date: date | None
    principal_outstanding: Yuan
    late_fee: Yuan
    total: Yuan
    by_fund: list[FundTotal]


class ArrearsReport(BaseModel):
    as_of: date
    daily_rate: str
    rate_source: str = Field(description="default, or parameters:<set id>")
    rule: str
    employers: list[EmployerArrears]
    principal_outstanding: Yuan = Field(description="of the employers on this page")
    late_fee: Yuan
    total: Yuan
    next_cursor: str | None = Field(description="pass as ?after= for the next page of employers")


class EmployerTotals(BaseModel):
    employer_id: str
    uscc: str | None
    name: str | None
    lines: int
    oldest_due_date: date | None
    principal_outstanding: Yuan
    late_fee: Yuan
    total: Yuan


class EmployerTotalsPage(BaseModel):
    as_of: date
    daily_rate: str
    rate_source: str
    items: list[EmployerTotals]
    next_cursor: str | None


class NoticeRequest(RequestModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    employer_id: str = Field(min_length=1, max_length=36)
    as_of: date | None = Field(default=None, description="default: today (China time); not in the future")


class NoticeOut(BaseModel):
    id: str
    employer_id: str
    as_of: date
    principal_outstanding: Yuan
    late_fee: Yuan
    total: Yuan
    lines: int
    issued_at: datetime
    issued_by: str
    document: dict[str, Any] = Field(description="the line-by-line computation as issued")


class NoticeSummary(BaseModel):
    id: str
    employer_id: str
    as_of: date
    principal_outstanding: Yuan
    late_fee: Yuan
    total: Yuan
    lines: int
    issued_at: datetime
    issued_by: str


class NoticePage(BaseModel):
    items: list[NoticeSummary]
    next_cursor: str | None
