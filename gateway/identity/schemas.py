from datetime import datetime

from pydantic import BaseModel, Field

from services.kernel.identifiers import RegionCode
from services.kernel.strict import RequestModel

USERNAME_PATTERN = r"^[a-z][a-z0-9_.-]{2,63}$"


class UserCreate(RequestModel):
    username: str = Field(pattern=USERNAME_PATTERN, description="lower-case login name")
    display_name: str = Field(min_length=1, max_length=100)
    unit: str = Field(min_length=1, max_length=100, description="所在单位")
    region: RegionCode = Field(description="所在单位的行政区划代码")
    password: str = Field(min_length=1, max_length=200)


class RoleOut(BaseModel):
    role: str
    granted_at: datetime
    granted_by: str
    reason: str | None


class UserOut(BaseModel):
    username: str
    display_name: str
    unit: str
    region: str
    status: str
    locked_until: datetime | None
    created_at: datetime
    roles: list[RoleOut]


class RoleGrant(RequestModel):
    role: str
    reason: str = Field(min_length=2, max_length=500, description="授权依据（如任职文件号）")


class StatusChange(RequestModel):
    reason: str = Field(min_length=2, max_length=500)


class PasswordChange(RequestModel):
    old_password: str
    new_password: str


class ClientCreate(RequestModel):
    client_id: str = Field(pattern=USERNAME_PATTERN)
    name: str = Field(min_length=1, max_length=100)
    role: str
    region: RegionCode


class ClientCreated(BaseModel):
    client_id: str
    name: str
    role: str
    region: str
    client_secret: str = Field(description="shown once; only its hash is stored")


class ClientOut(BaseModel):
    """A system client as the IT administrator sees it: never its secret (only a hash is stored anyway)."""

    client_id: str
    name: str
    roles: list[str]
    region: str
    status: str = Field(description="active | disabled")
    disabled: bool
    created_at: datetime
    created_by: str
    last_token_at: datetime | None = Field(description="its last client_credentials grant; null: none recorded")


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str | None = None
    roles: list[str]


class ConflictRuleOut(BaseModel):
    code: str
    roles_a: list[str]
    roles_b: list[str]
    message: str
    basis: str


class TenureOut(BaseModel):
    username: str
    display_name: str
    unit: str
    region: str
    role: str
    granted_at: datetime
    tenure_days: int


class Me(BaseModel):
    subject: str
    role: str | None
    roles: list[str]
    unit: str | None
    region: str | None
