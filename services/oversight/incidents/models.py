"""Major-incident reports (要情报告; 000 三(五); 001 第三十一条).

One row per incident: what was found (misappropriation 挪用, diversion 挤占, fraud 骗取), how (the channel), when it was
discovered, the amount, and whether it is major. A major incident is due at the same-level and the provincial
supervisor within 5 Chinese working days of discovery; both report dates are kept, and a report after the due day
is marked late (000 三(五): 急情缓报 is itself accountable). Others go into the half-yearly summary.
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field

from services.oversight.models import OversightTable


class MajorIncident(OversightTable, table=True):
    __tablename__ = "major_incident"
    __table_args__ = (Index("ix_major_incident_major_due", "major", "due_on"),)

    id: str = Field(primary_key=True, max_length=36)  # UUIDv7, also the list cursor
    kind: str = Field(max_length=20)  # misappropriation | diversion | fraud
    title: str = Field(max_length=200)
    description: str = Field(sa_column=Column(Text, nullable=False))
    unit: str = Field(max_length=200)  # where it happened / the responsible unit
    region: str | None = Field(default=None, max_length=6, index=True)
    channel: str = Field(max_length=20)  # inspection | audit | internal_control | media | whistleblowing | court | …
    source_ref: str | None = Field(default=None, max_length=100)  # the report, inspection or case it came from
    discovered_on: date = Field(index=True)
    amount_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    major: bool
    major_reason: str | None = Field(default=None, sa_column=Column(Text))  # why (re)classified
    due_on: date | None = None  # major: the 5th working day after discovery (None: calendar does not cover it)
    due_note: str | None = Field(default=None, max_length=200)
    same_level_reported_on: date | None = None
    same_level_ref: str | None = Field(default=None, max_length=100)
    same_level_late: bool | None = None
    provincial_reported_on: date | None = None
    provincial_ref: str | None = Field(default=None, max_length=100)
    provincial_late: bool | None = None
    recorded_at: datetime
    recorded_by: str = Field(max_length=100)
    updated_at: datetime
