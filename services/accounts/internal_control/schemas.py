"""Request and response bodies of the internal control (稽核内控)."""

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=2000)]


class SampleRequest(BaseModel):
    kind: Literal["monthly", "quarterly"] = Field(description="monthly: a month (004 第6项); quarterly: a quarter "
                                                              "(001 第十九条)")
    period: str = Field(max_length=7, description="2026-11 (monthly) or 2026-Q3 (quarterly); an ended period")
    rate_percent: int = Field(default=5, ge=1, le=100, description="一定比例: the share of the acts drawn, rounded up")
    seed: int | None = Field(default=None, ge=0, le=2 ** 63 - 1,
                             description="the generator's seed; drawn at random and recorded when not given")


class SampleOut(BaseModel):
    id: str
    kind: str
    period: str
    year: int
    first_day: date
    last_day: date
    region: str
    seed: int
    rate_percent: int
    weights: dict[str, int] = Field(description="risk category → weight, as drawn")
    population: int = Field(description="acts of the period in the area (each act once)")
    population_sha256: str
    size: int
    drawn_at: datetime
    drawn_by: str


class SampledItemOut(BaseModel):
    id: str = Field(description="the sampled item's id, also the finding's")
    rank: int
    item_id: str = Field(description="the archive item (件)")
    dossier_id: str
    subject_type: str
    subject_id: str
    source: str
    item_type: str
    act_id: str
    title: str
    decided_by: str
    risk: str
    risk_label: str
    weight: int
    finding: str | None = Field(description="conform | not_conform; null until reviewed")
    reason: str | None
    reviewed_by: str | None
    reviewed_at: datetime | None


class SampleDetail(SampleOut):
    items: list[SampledItemOut]


class SamplePage(BaseModel):
    items: list[SampleOut]
    next_cursor: str | None


class FindingRequest(BaseModel):
    finding: Literal["conform", "not_conform"]
    reason: Reason | None = Field(default=None, description="required when not_conform")


class StaffFiguresIn(BaseModel):
    """Figures read from the gateway's identity reports (accounts cannot read the gateway's database)."""

    conflict_rules: int = Field(ge=0, le=10_000, description="incompatible-duty rules in force (/identity/conflict-rules)")
    long_tenure_staff: int = Field(ge=0, le=1_000_000,
                                   description="staff in high-risk posts longer than tenure_years "
                                               "(/identity/reports/long-tenure)")
    tenure_years: int = Field(default=5, ge=1, le=30)
    read_on: date
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class ReportRequest(BaseModel):
    summary: Annotated[str, StringConstraints(strip_whitespace=True, min_length=10, max_length=4000)] = Field(
        description="the agency's own summary of the year's internal control (总结)")
    staff: StaffFiguresIn | None = Field(default=None, description="absent: the report says the section is missing")


class ReportOut(BaseModel):
    id: str
    year: int
    region: str
    document_id: str
    document_number: str
    document_sha256: str
    samples: int
    sampled_items: int
    reviewed: int
    nonconforming: int
    submitted_at: datetime
    submitted_by: str
