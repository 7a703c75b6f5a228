"""Tables of the agency's internal control (稽核内控, accounts database): samples drawn from the archive's items,
the items drawn with the internal auditor's finding on each, and the yearly reports submitted."""

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field

from services.accounts.models import AccountsTable


class ControlSample(AccountsTable, table=True):
    """A sampling plan as drawn: which period, from which population (its size and SHA-256), with which seed and
    weights — so the same draw can be made again and compared."""

    __tablename__ = "control_sample"
    __table_args__ = (UniqueConstraint("kind", "period", "region", name="uq_control_sample_period"),)

    id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=10)  # monthly | quarterly
    period: str = Field(max_length=7, index=True)  # 2026-11 | 2026-Q3
    year: int = Field(index=True)
    first_day: date
    last_day: date
    region: str = Field(max_length=6)  # the auditor's area: the population is the acts of dossiers in it
    seed: int = Field(sa_column=Column(BigInteger, nullable=False))
    rate_percent: int
    weights: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON: risk → weight, as drawn
    population: int
    population_sha256: str = Field(max_length=64)
    size: int
    drawn_at: datetime
    drawn_by: str = Field(max_length=100)


class SampledItem(AccountsTable, table=True):
    """One act drawn into a sample, and the internal auditor's finding on it (one finding per item)."""

    __tablename__ = "control_sampled_item"
    __table_args__ = (UniqueConstraint("sample_id", "item_id", name="uq_control_sampled_item"),)

    id: str = Field(primary_key=True, max_length=36)  # the finding's id too
    sample_id: str = Field(foreign_key="control_sample.id", max_length=36, index=True)
    rank: int  # order of the draw (1: the highest key)
    item_id: str = Field(max_length=36)  # the archive item
    dossier_id: str = Field(max_length=36)
    subject_type: str = Field(max_length=20)
    subject_id: str = Field(max_length=36)
    region: str | None = Field(default=None, max_length=6)
    source: str = Field(max_length=20)
    item_type: str = Field(max_length=40)
    act_id: str = Field(max_length=100)
    title: str = Field(max_length=200)
    decided_by: str = Field(max_length=100)
    risk: str = Field(max_length=30)
    weight: int
    finding: str | None = Field(default=None, max_length=20)  # conform | not_conform
    reason: str | None = Field(default=None, sa_column=Column(Text))
    reviewed_by: str | None = Field(default=None, max_length=100)
    reviewed_at: datetime | None = None


class ControlReport(AccountsTable, table=True):
    """The internal-control yearly report (001 第二十四条) as issued and submitted to oversight."""

    __tablename__ = "control_report"
    __table_args__ = (UniqueConstraint("year", "region", name="uq_control_report_year"),)

    id: str = Field(primary_key=True, max_length=36)
    year: int
    region: str = Field(max_length=6)
    document_id: str = Field(max_length=36)
    document_number: str = Field(max_length=80)
    document_sha256: str = Field(max_length=64)
    samples: int
    sampled_items: int
    reviewed: int
    nonconforming: int
    submitted_at: datetime
    submitted_by: str = Field(max_length=100)
