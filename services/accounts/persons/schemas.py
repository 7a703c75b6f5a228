"""Request and response bodies of the person registry (参保人员登记)."""

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from services.accounts.employers.schemas import Address, Name, Phone, Reason
from services.kernel.identifiers import BankCard, CitizenId, RegionCode
from services.kernel.pii import BankAccountOut, CitizenIdOut
from services.kernel.strict import RequestModel

HouseholdType = Literal["urban", "rural"]
LifeStatus = Literal["alive", "deceased", "imprisoned"]
Sex = Literal["M", "F"]


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def validate_nationality(value: str) -> str:
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise PydanticCustomError("INVALID_NATIONALITY", "国籍应为三位字母代码（GB/T 2659，如 CHN）")
    return value


Nationality = Annotated[str, BeforeValidator(_upper), AfterValidator(validate_nationality)]


class PersonRegistration(RequestModel):
    """Sex and birth date come from the citizen id; if declared too, they must agree with it."""

    model_config = ConfigDict(extra="forbid")

    citizen_id: CitizenId = Field(description="公民身份号码 (18 characters, check digit verified)")
    name: Name = Field(max_length=100, description="姓名")
    sex: Sex | None = Field(default=None, description="申报性别; checked against the citizen id")
    birth_date: date | None = Field(default=None, description="申报出生日期; checked against the citizen id")
    nationality: Nationality = "CHN"
    phone: Phone | None = None
    address: Address | None = None
    household_type: HouseholdType = Field(default="urban", description="户籍类型: urban 城镇 | rural 农村")
    region: RegionCode = Field(description="参保地行政区划代码")


# Fields a plain edit may never touch, with the code and the reason it is refused.
_NOT_EDITABLE = {
    "citizen_id": ("CITIZEN_ID_NOT_EDITABLE", "公民身份号码是参保人员的标识，不能直接修改；号码错误须办理身份信息更正"),
    "name": ("NAME_NOT_EDITABLE", "姓名变更须凭公安机关证明办理身份信息变更，不能直接修改"),
    "sex": ("DERIVED_FIELD_NOT_EDITABLE", "性别由公民身份号码确定，不能修改"),
    "birth_date": ("DERIVED_FIELD_NOT_EDITABLE", "出生日期由公民身份号码确定，不能修改"),
    "life_status": ("LIFE_STATUS_NOT_EDITABLE", "生存状态只能由部门共享数据或经复核批准的更正变更"),
    "death_date": ("LIFE_STATUS_NOT_EDITABLE", "死亡日期只能由部门共享数据或经复核批准的更正变更"),
    "imprisoned_from": ("LIFE_STATUS_NOT_EDITABLE", "服刑信息只能由部门共享数据或经复核批准的更正变更"),
    "imprisoned_until": ("LIFE_STATUS_NOT_EDITABLE", "服刑信息只能由部门共享数据或经复核批准的更正变更"),
    "region": ("REGION_NOT_EDITABLE", "参保地变更须办理转移接续，不能直接修改"),
}


class PersonUpdate(RequestModel):
    """PATCH of contact details: only the fields sent change; ``null`` clears phone or address."""

    model_config = ConfigDict(extra="forbid")

    phone: Phone | None = None
    address: Address | None = None
    household_type: HouseholdType | None = None
    nationality: Nationality | None = None
    expected_version: int | None = Field(default=None, description="refuse with 409 if the person changed since")
    reason: Reason | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_identity_and_life_status(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for field, (code, message) in _NOT_EDITABLE.items():
                if field in data:
                    raise PydanticCustomError(code, message)
            for field in ("household_type", "nationality"):
                if field in data and data[field] is None:
                    raise PydanticCustomError("VALIDATION_ERROR", f"{field} 不能为空")
        return data

    def updates(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude={"expected_version", "reason"})


class BankAccountIn(RequestModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["bank_account", "ss_card"] = Field(description="bank_account 银行账户 | ss_card 社会保障卡（金融账户）")
    bank_name: Name = Field(max_length=100, description="开户银行")
    account_no: BankCard = Field(description="账号或社会保障卡金融账号")
    holder_name: Name = Field(max_length=100, description="户名: must be the person's own name (000 二(三))")


class BankAccountClose(RequestModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class PersonBankAccountOut(BaseModel):
    id: str
    person_id: str
    kind: str
    bank_name: str
    account_no: BankAccountOut
    holder_name: str
    status: str
    added_at: datetime
    added_by: str
    closed_at: datetime | None


class PersonOut(BaseModel):
    id: str
    citizen_id: CitizenIdOut
    name: str
    sex: str
    birth_date: date
    nationality: str
    phone: str | None
    address: str | None
    household_type: str
    region: str
    life_status: str
    death_date: date | None
    imprisoned_from: date | None
    imprisoned_until: date | None
    registered_at: datetime
    registered_by: str
    updated_at: datetime | None
    version: int


class PersonDetail(PersonOut):
    bank_accounts: list[PersonBankAccountOut] = Field(default_factory=list)


class PersonPage(BaseModel):
    items: list[PersonOut]
    next_cursor: str | None = Field(description="pass as ?after= to get the next page; null on the last page")


class LifeStatusCorrectionIn(RequestModel):
    """后台修改 of a life status: a request with its reason and evidence, decided by another person."""

    model_config = ConfigDict(extra="forbid")

    new_status: LifeStatus
    death_date: date | None = None
    imprisoned_from: date | None = None
    imprisoned_until: date | None = None
    reason: Reason
    evidence: str | None = Field(default=None, max_length=4000, description="证明材料（文号、出具单位等）")


class CorrectionDecision(RequestModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = Field(default=None, description="审核意见; required to reject")


class LifeStatusCorrectionOut(BaseModel):
    id: str
    person_id: str
    new_status: str
    death_date: date | None
    imprisoned_from: date | None
    imprisoned_until: date | None
    reason: str
    evidence: str | None
    status: str
    requested_at: datetime
    requested_by: str
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None


class CorrectionInQueue(LifeStatusCorrectionOut):
    """A correction in the cross-person queue, with whom it concerns."""

    person_name: str
    current_life_status: str = Field(description="the person's life status now (before an approval applies it)")


class CorrectionQueuePage(BaseModel):
    items: list[CorrectionInQueue]
    next_cursor: str | None = Field(description="pass as ?after= to get the next page; null on the last page")
