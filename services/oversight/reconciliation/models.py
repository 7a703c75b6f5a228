"""Month close (月结) of the reconciliation: who closed which month when, and the frozen cells.

A closed month's report shows these cells as they were; what events changed since is listed beside them as post-close
adjustments (snapshot vs now), never folded in (OVERSIGHT.md).
"""

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Text
from sqlmodel import Field

from services.oversight.models import OversightTable


class ReconciliationClose(OversightTable, table=True):
    __tablename__ = "reconciliation_close"

    month: int = Field(primary_key=True)  # YYYYMM
    closed_at: datetime
    closed_by: str = Field(max_length=100)
    closed_role: str | None = Field(default=None, max_length=50)
    as_of: date  # the day R3's deadlines were judged against
    cells: int
    unmatched: int
    note: str | None = Field(default=None, sa_column=Column(Text))


class ReconciliationSnapshotCell(OversightTable, table=True):
    """One cell of a closed month, as it stood at the close."""

    __tablename__ = "reconciliation_snapshot_cell"

    month: int = Field(primary_key=True)
    check_id: str = Field(primary_key=True, max_length=4)  # R1 … R6
    cell_key: str = Field(primary_key=True, max_length=200)
    seq: int  # the cell's place in its check's report order
    key: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(max_length=20)
    fund: str | None = Field(default=None, max_length=10)
    period: int | None = None
    amounts: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # name → fen
    differences: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # name → fen
    difference_fen: int = Field(sa_type=BigInteger)
    detail: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    suspicion: str | None = Field(default=None, max_length=4)
    clause: str = Field(max_length=50)
