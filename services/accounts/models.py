"""Tables of the accounts service (参保登记). They live in the accounts database only."""

from datetime import datetime

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class AccountsTable(SQLModel, registry=registry()):
    pass


metadata = AccountsTable.metadata


class Employer(AccountsTable, table=True):
    """用人单位, identified by its 统一社会信用代码 (USCC)."""

    __tablename__ = "employer"

    id: str = Field(primary_key=True, max_length=36)
    uscc: str = Field(max_length=18, unique=True)
    name: str = Field(max_length=200, index=True)
    region: str = Field(max_length=6, index=True)  # 行政区划代码 of the agency district that manages it
    status: str = Field(default="active", max_length=20)
    registered_at: datetime
    registered_by: str = Field(max_length=100)
