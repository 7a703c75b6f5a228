"""The identity store, in the gateway's own database: staff users, system clients, role assignments with tenure,
the incompatible-duty rules, and refresh tokens."""

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class GatewayTable(SQLModel, registry=registry()):
    pass


metadata = GatewayTable.metadata


class UserAccount(GatewayTable, table=True):
    __tablename__ = "user_account"

    id: str = Field(primary_key=True, max_length=36)
    username: str = Field(max_length=64, unique=True)
    display_name: str = Field(max_length=100)
    unit: str = Field(max_length=100)  # the agency, bureau or office the person works for
    region: str = Field(max_length=6)  # 行政区划代码 of that unit: object-level checks compare with it
    password_hash: str = Field(max_length=200)
    status: str = Field(default="active", max_length=20)  # active | disabled
    failed_logins: int = 0
    locked_until: datetime | None = None
    created_at: datetime
    created_by: str = Field(max_length=100)
    password_changed_at: datetime


class SystemClient(GatewayTable, table=True):
    """Another system (tax bureau, partner department, bank) using the client-credentials grant."""

    __tablename__ = "system_client"

    id: str = Field(primary_key=True, max_length=36)
    client_id: str = Field(max_length=64, unique=True)
    name: str = Field(max_length=100)
    role: str = Field(max_length=50)
    region: str = Field(max_length=6)
    secret_hash: str = Field(max_length=200)
    status: str = Field(default="active", max_length=20)
    created_at: datetime
    created_by: str = Field(max_length=100)
    last_token_at: datetime | None = None  # its last client_credentials grant (recorded since this column exists)


class RoleAssignment(GatewayTable, table=True):
    """A role held by a user from ``granted_at`` (tenure starts here) until revoked; never deleted."""

    __tablename__ = "role_assignment"
    __table_args__ = (Index("ix_role_assignment_user_active", "user_id", "revoked_at"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="user_account.id", max_length=36)
    role: str = Field(max_length=50, index=True)
    granted_at: datetime
    granted_by: str = Field(max_length=100)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    revoked_at: datetime | None = None
    revoked_by: str | None = Field(default=None, max_length=100)
    revoke_reason: str | None = Field(default=None, sa_column=Column(Text))


class RoleConflictRule(GatewayTable, table=True):
    """Two groups of roles one person may not hold together (004 第3项、第22项, 001 第十六条)."""

    __tablename__ = "role_conflict_rule"

    code: str = Field(primary_key=True, max_length=50)
    roles_a: str = Field(max_length=500)  # comma-separated role names
    roles_b: str = Field(max_length=500)
    message: str = Field(max_length=200)
    basis: str = Field(max_length=100)


class RefreshToken(GatewayTable, table=True):
    """Issued refresh tokens; each use rotates it, and reuse of a spent one revokes the subject's whole family."""

    __tablename__ = "refresh_token"

    jti: str = Field(primary_key=True, max_length=64)
    subject: str = Field(max_length=64, index=True)
    kind: str = Field(max_length=10)
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    replaced_by: str | None = Field(default=None, max_length=64)
