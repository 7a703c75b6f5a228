"""The agency's internal-control yearly reports as oversight received them (001 第二十四条)."""

from datetime import datetime

from sqlalchemy import UniqueConstraint
from sqlmodel import Field

from services.oversight.models import OversightTable


class ControlReportReceipt(OversightTable, table=True):
    """One area's yearly report received: when it was submitted (the agency's instant) and received."""

    __tablename__ = "control_report_receipt"
    __table_args__ = (UniqueConstraint("year", "region", name="uq_control_report_receipt"),)

    id: int | None = Field(default=None, primary_key=True)
    year: int = Field(index=True)
    region: str = Field(max_length=6, index=True)
    document_id: str = Field(max_length=36)
    document_number: str = Field(max_length=80)
    document_sha256: str = Field(max_length=64)
    submitted_at: datetime
    submitted_by: str = Field(max_length=100)
    received_at: datetime
    samples: int
    sampled_items: int
    nonconforming: int
    event_id: str = Field(max_length=36)
