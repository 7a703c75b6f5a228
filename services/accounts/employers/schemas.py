"""Request and response bodies of the employer registry (单位参保登记).

The field types at the top (phone, address, reasons, history entries) are shared with the person registry.
"""

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from services.kernel.identifiers import USCC, BankCard, RegionCode
from services.kernel.pii import BankAccountOut
from services.kernel.strict import RequestModel

# -- shared field types ----------------------------------------------------------------------------------------------

_PHONE = re.compile(r"^\+?\d[\d\- ]{3,27}\d$")


def _strip_text(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def validate_phone(value: str) -> str:
    """Mobile (13800138000), landline with area code (0471-1234567) or international (+86 …)."""
    if not _PHONE.match(value):
        raise PydanticCustomError("INVALID_PHONE", "联系电话格式错误（应为手机号或带区号的固定电话）")
    return value


Phone = Annotated[str, BeforeValidator(_strip_text), AfterValidator(validate_phone)]
Name = Annotated[str, BeforeValidator(_strip_text), Field(min_length=1)]
Address = Annotated[str, BeforeValidator(_strip_text), Field(min_length=1, max_length=200)]
Reason = Annotated[str, BeforeValidator(_strip_text), Field(min_length=1, max_length=2000, description="办理原因")]

UnitType = Literal["enterprise", "public_institution", "government", "individual_business"]
RiskClass = Annotated[int, Field(ge=1, le=8, description="工伤保险行业风险类别 1–8")]


class HistoryEntry(BaseModel):
    """One change of a registry row: field → [before, after]. Account numbers are masked unless the role needs them."""

    entity_type: str
    entity_id: str
    version: int
    action: str
    changes: dict[str, list[Any]]
    reason: str | None
    changed_at: datetime
    changed_by: str
    request_id: str | None


# -- employers -------------------------------------------------------------------------------------------------------


def _bank_pair_complete(bank_name: str | None, bank_account_no: str | None) -> None:
    if (bank_name is None) != (bank_account_no is None):
        raise PydanticCustomError("BANK_ACCOUNT_INCOMPLETE", "基本存款账户须同时填写开户银行和银行账号")


class EmployerRegistration(RequestModel):
    model_config = ConfigDict(extra="forbid")

    uscc: USCC = Field(description="统一社会信用代码 (18 characters, check character verified)")
    name: Name = Field(max_length=200, description="单位名称")
    region: RegionCode = Field(description="参保地行政区划代码 (the district agency that manages the employer)")
    unit_type: UnitType = Field(default="enterprise", description="单位类型")
    industry_risk_class: RiskClass = 1
    contact_name: Name | None = Field(default=None, max_length=50, description="联系人")
    contact_phone: Phone | None = Field(default=None, description="联系电话")
    address: Address | None = Field(default=None, description="单位地址")
    bank_name: Name | None = Field(default=None, max_length=100, description="基本存款账户开户银行")
    bank_account_no: BankCard | None = Field(default=None, description="基本存款账户账号")

    @model_validator(mode="after")
    def _bank_account(self) -> "EmployerRegistration":
        _bank_pair_complete(self.bank_name, self.bank_account_no)
        return self


_NOT_NULL = ("name", "unit_type", "industry_risk_class")


class EmployerUpdate(RequestModel):
    """PATCH: only the fields sent are changed; ``null`` clears an optional field. The USCC is the employer's
    identity and never changes here (a new code is a new registration)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = Field(default=None, max_length=200)
    region: RegionCode | None = Field(default=None, description="moving the employer to another district")
    unit_type: UnitType | None = None
    industry_risk_class: RiskClass | None = None
    contact_name: Name | None = Field(default=None, max_length=50)
    contact_phone: Phone | None = None
    address: Address | None = None
    bank_name: Name | None = Field(default=None, max_length=100)
    bank_account_no: BankCard | None = None
    expected_version: int | None = Field(default=None, description="refuse with 409 if the employer changed since")
    reason: Reason | None = None

    @model_validator(mode="before")
    @classmethod
    def _identity_is_not_editable(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if "uscc" in data:
                raise PydanticCustomError("USCC_NOT_EDITABLE", "统一社会信用代码是单位的标识，不能修改；代码变更请办理新的参保登记")
            if "status" in data:
                raise PydanticCustomError("STATUS_NOT_EDITABLE", "单位状态须通过暂停、恢复或注销办理，不能直接修改")
            for field in _NOT_NULL:
                if field in data and data[field] is None:
                    raise PydanticCustomError("VALIDATION_ERROR", f"{field} 不能为空")
        return data

    def updates(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude={"expected_version", "reason"})


class StatusChange(RequestModel):
    """Suspend, reactivate or deregister: why, and from when (today or earlier; the change applies now)."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason
    effective_date: date | None = Field(default=None, description="生效日期; today when omitted")


class EmployerOut(BaseModel):
    id: str
    uscc: str
    name: str
    region: str
    unit_type: str
    industry_risk_class: int
    contact_name: str | None
    contact_phone: str | None
    address: str | None
    bank_name: str | None
    bank_account_no: BankAccountOut | None
    status: str
    registered_at: datetime
    registered_by: str
    updated_at: datetime | None
    version: int


class EmployerPage(BaseModel):
    items: list[EmployerOut]
    next_cursor: str | None = Field(description="pass as ?after= to get the next page; null on the last page")
