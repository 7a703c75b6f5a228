"""Tables of the oversight service: its own, independent copy of what other services reported (OVERSIGHT.md)."""

from datetime import datetime

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class OversightTable(SQLModel, registry=registry()):
    pass


metadata = OversightTable.metadata


class MirroredEmployer(OversightTable, table=True):
    """An employer as the accounts service announced it; oversight never reads the accounts database."""

    __tablename__ = "mirrored_employer"

    employer_id: str = Field(primary_key=True, max_length=36)
    uscc: str = Field(max_length=18, index=True)
    name: str = Field(max_length=200)
    region: str = Field(max_length=6)
    registered_at: datetime
    source_event_id: str = Field(max_length=36)
    received_at: datetime
