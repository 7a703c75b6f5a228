"""On-site inspections (现场监督; 001 第八条、第十一条; 000 三(二)).

- ``inspection``: plan (target unit, planned date) → notification at least 3 days ahead → findings → feedback
  letter (问题反馈函) → report. ``status``: planned | notified | inspecting | feedback_issued | reported.
- ``inspection_member``: the team; an inspection is carried out by at least 2 inspectors (001 第八条).
- ``inspection_finding``: each problem found, with the amount involved and, once the letter is issued, its
  rectification deadline (and the day it was rectified).
- ``inspection_programme`` / ``inspection_programme_agency``: the yearly programme (001 第十一条: 每年检查一次同级经办
  机构，抽查不少于20%下一级经办机构): every agency listed, the same-level ones always in, the lower-level sample
  drawn from the recorded seed (programme.py) and reproducible from it.
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Text, UniqueConstraint, false
from sqlmodel import Field

from services.oversight.models import OversightTable


class InspectionProgramme(OversightTable, table=True):
    __tablename__ = "inspection_programme"

    id: str = Field(primary_key=True, max_length=36)
    year: int = Field(unique=True)
    seed: str = Field(max_length=128)
    algorithm: str = Field(max_length=40)  # programme.ALGORITHM
    sample_rate: str = Field(max_length=10)  # decimal fraction as text, e.g. "0.20"
    lower_level_count: int
    sample_size: int
    created_at: datetime
    created_by: str = Field(max_length=100)


class InspectionProgrammeAgency(OversightTable, table=True):
    __tablename__ = "inspection_programme_agency"
    __table_args__ = (UniqueConstraint("programme_id", "code"),)

    id: int | None = Field(default=None, primary_key=True)
    programme_id: str = Field(foreign_key="inspection_programme.id", max_length=36, index=True)
    code: str = Field(max_length=50)
    name: str = Field(max_length=200)
    level: str = Field(max_length=20)  # same_level | lower_level
    selected: bool
    rank_key: str | None = Field(default=None, max_length=64)  # lower level: HMAC-SHA256(seed, code), hex


class Inspection(OversightTable, table=True):
    __tablename__ = "inspection"

    id: str = Field(primary_key=True, max_length=36)  # UUIDv7, also the list cursor
    programme_id: str | None = Field(default=None, foreign_key="inspection_programme.id", max_length=36, index=True)
    target_code: str | None = Field(default=None, max_length=50, index=True)
    target_unit: str = Field(max_length=200)
    target_level: str = Field(max_length=20)  # same_level | lower_level | service_institution | other
    scope: str = Field(sa_column=Column(Text, nullable=False))  # 监督方案: what is checked
    planned_on: date = Field(index=True)
    status: str = Field(max_length=20, index=True)
    notified_on: date | None = None
    notice_ref: str | None = Field(default=None, max_length=100)
    oral_feedback_on: date | None = None
    letter_no: str | None = Field(default=None, max_length=100, unique=True)  # 问题反馈函 文号
    letter_issued_on: date | None = None
    letter_requirements: str | None = Field(default=None, sa_column=Column(Text))
    reported_on: date | None = None
    report_summary: str | None = Field(default=None, sa_column=Column(Text))
    reported_to_higher: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    created_at: datetime
    created_by: str = Field(max_length=100)
    updated_at: datetime


class InspectionMember(OversightTable, table=True):
    __tablename__ = "inspection_member"
    __table_args__ = (UniqueConstraint("inspection_id", "inspector_id"),)

    id: int | None = Field(default=None, primary_key=True)
    inspection_id: str = Field(foreign_key="inspection.id", max_length=36, index=True)
    inspector_id: str = Field(max_length=100)
    name: str = Field(max_length=100)
    leader: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class InspectionFinding(OversightTable, table=True):
    __tablename__ = "inspection_finding"
    __table_args__ = (UniqueConstraint("inspection_id", "seq"),)

    id: str = Field(primary_key=True, max_length=36)
    inspection_id: str = Field(foreign_key="inspection.id", max_length=36, index=True)
    seq: int  # 1, 2, … in the order found: the letter lists them so (逐条指出)
    title: str = Field(max_length=200)
    description: str = Field(sa_column=Column(Text, nullable=False))
    fund: str | None = Field(default=None, max_length=10)
    amount_fen: int = Field(sa_column=Column(BigInteger, nullable=False))  # 涉及资金数额
    rectify_by: date | None = None  # set by the feedback letter
    rectified_on: date | None = None
    rectification_note: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime
    created_by: str = Field(max_length=100)
