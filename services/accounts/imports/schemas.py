"""Bulk import: the documented column sets, one (non-table) pydantic model per row kind, and the API schemas.

Each row is checked by the same kernel types as the single APIs (``CitizenId``, ``USCC``, ``RegionCode``,
``BankCard``, ``Period``): a refused row carries the same stable code (``INVALID_CITIZEN_ID``…) and Chinese message.
Enumerations accept the codes used in the API and the Chinese words legacy systems export (男/女, 城镇/农村, 注销…).
"""

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from services.kernel.identifiers import USCC, BankCard, CitizenId, RegionCode
from services.kernel.periods import Period
from services.kernel.tabular import Column


class ImportKind(StrEnum):
    employers = "employers"
    persons = "persons"
    enrolments = "enrolments"


class ImportMode(StrEnum):
    per_row = "per_row"  # good rows stored, bad rows reported
    all_or_nothing = "all_or_nothing"  # any bad row: nothing stored, every bad row reported


# -- documented column sets ------------------------------------------------------------------------------------------

REGION_ALIASES = ("参保地", "参保地行政区划代码", "所属区划", "区划代码", "region_code")

COLUMNS: dict[ImportKind, tuple[Column, ...]] = {
    ImportKind.employers: (
        Column("uscc", "统一社会信用代码", ("社会信用代码", "信用代码", "credit_code"), True, "18 characters, check character verified"),
        Column("name", "单位名称", ("名称", "employer_name", "unit_name"), True),
        Column("region", "行政区划代码", REGION_ALIASES, True, "the district agency that manages the employer"),
        Column("unit_type", "单位类型", ("unit_type",), False,
               "企业|事业单位|机关|个体工商户 or enterprise|public_institution|government|individual_business"),
        Column("industry_risk_class", "行业风险类别", ("风险类别", "行业风险类别（1-8）", "risk_class"), False, "1–8, default 1"),
        Column("contact_name", "联系人", ("contact",), False),
        Column("contact_phone", "联系电话", ("电话", "phone"), False),
        Column("address", "地址", ("单位地址", "注册地址"), False),
        Column("bank_name", "开户银行", ("开户行", "bank"), False),
        Column("bank_account_no", "银行账号", ("基本存款账户", "账号", "bank_account"), False, "12–19 digits"),
        Column("status", "单位状态", ("状态",), False, "正常|暂停|注销 or active|suspended|deregistered; default active"),
    ),
    ImportKind.persons: (
        Column("citizen_id", "公民身份号码", ("身份证号码", "身份证号", "社会保障号码", "社会保障号", "id_number"), True,
               "18 characters, check digit verified; also the social security number"),
        Column("name", "姓名", ("person_name",), True),
        Column("region", "行政区划代码", REGION_ALIASES, True, "参保地 district"),
        Column("sex", "性别", ("gender",), False, "男|女 (or M|F, 1|2); checked against the citizen id"),
        Column("birth_date", "出生日期", ("birthday", "date_of_birth"), False,
               "YYYY-MM-DD; checked against the citizen id"),
        Column("nationality", "国籍", ("country",), False, "ISO 3166 alpha-3, default CHN"),
        Column("phone", "联系电话", ("电话", "手机号码", "mobile"), False),
        Column("address", "地址", ("居住地址", "联系地址"), False),
        Column("household_type", "户口性质", ("户籍类型", "户口类型", "hukou"), False,
               "城镇|农村 (非农业|农业) or urban|rural; default urban"),
    ),
    ImportKind.enrolments: (
        Column("citizen_id", "公民身份号码", ("身份证号码", "身份证号", "社会保障号码", "社会保障号", "id_number"), True,
               "the person must already be registered (import persons first)"),
        Column("fund", "险种", ("险种代码", "险种类型", "fund_code"), True,
               "PEN_EMP|PEN_GOV|PEN_RES|UNEMP|INJURY or 企业职工基本养老保险、机关事业单位养老保险、城乡居民基本养老保险、失业保险、工伤保险"),
        Column("uscc", "统一社会信用代码", ("单位统一社会信用代码", "社会信用代码", "employer_uscc"), False,
               "the employer (required for employee funds, absent for PEN_RES); must already be registered"),
        Column("start_period", "参保开始年月", ("开始年月", "起始年月", "参保年月", "start"), True, "YYYYMM"),
        Column("end_period", "参保终止年月", ("终止年月", "截止年月", "end"), False, "YYYYMM; history rows only"),
        Column("status", "参保状态", ("状态",), False,
               "参保缴费|暂停缴费|终止缴费 or active|suspended|stopped; default stopped with an end, else active"),
        Column("stop_reason", "终止原因", ("停保原因", "reason"), False),
    ),
}

# Documentation for the OpenAPI description of the upload route.
COLUMNS_DOC = "\n".join(
    f"- **{kind.value}**: " + "; ".join(
        f"`{c.header}`/`{c.field}`{' (required)' if c.required else ''}" for c in columns
    )
    for kind, columns in COLUMNS.items()
)


# -- value normalisers -----------------------------------------------------------------------------------------------


def _choice(code: str, message: str, mapping: dict[str, str]):  # noqa: ANN202
    table = {k.lower(): v for k, v in mapping.items()}

    def convert(value: Any) -> Any:
        if value is None:
            return None
        key = str(value).strip().lower()
        if isinstance(value, float) and value.is_integer():
            key = str(int(value))
        if key in table:
            return table[key]
        raise PydanticCustomError(code, message.format(value=value))

    return BeforeValidator(convert)


def _text(value: Any) -> Any:
    """Excel numbers written into text columns (phone numbers, names of numbered units) become text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return value


def _identifier_cell(code: str, what: str):  # noqa: ANN202
    """An identifier typed into Excel as a number: an int keeps its digits; a float beyond 2**53 has lost its last
    digits (Excel keeps 15 significant digits), which no check can repair: say so."""

    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if value.is_integer() and abs(value) < 2**53:
                return str(int(value))
            raise PydanticCustomError(code, f"{what}在 Excel 中被存成了数字，末几位已丢失：请把该列设为文本格式后重新导出")
        return value

    return BeforeValidator(convert)


_DATE_FORMATS = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


def _to_date(value: Any) -> Any:
    """1990-01-31, 1990/1/31, 1990.01.31, 1990年1月31日, 19900131 or an Excel date."""
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    text = str(value).strip()
    if " " in text:  # "1990-01-01 00:00:00" from an Excel export
        text = text.split(" ", 1)[0]
    if text.isdigit() and len(text) == 8:
        parts: tuple[str, ...] = (text[:4], text[4:6], text[6:])
    elif (match := _DATE_FORMATS.match(text)) is not None:
        parts = match.groups()
    else:
        raise PydanticCustomError("INVALID_DATE", "日期格式应为 YYYY-MM-DD")
    try:
        return date(*(int(p) for p in parts))
    except ValueError:
        raise PydanticCustomError("INVALID_DATE", "日期不存在") from None


_PERIOD_FORMAT = re.compile(r"^(\d{4})[-/.年](\d{1,2})月?$")


def _to_period(value: Any) -> Any:
    """202401, "202401", "2024-01", "2024/1", "2024年1月", or an Excel date → 202401; the kernel Period checks it."""
    if value is None:
        return None
    if isinstance(value, datetime | date):
        return value.year * 100 + value.month
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.isdigit() and len(text) == 6:
        return int(text)
    match = _PERIOD_FORMAT.match(text)
    if match is None:
        raise PydanticCustomError("INVALID_PERIOD", "年月应为 YYYYMM 格式，例如 202401")
    return int(match[1]) * 100 + int(match[2])


Text = Annotated[str, BeforeValidator(_text)]
DateCell = Annotated[date, BeforeValidator(_to_date)]
PeriodCell = Annotated[Period, BeforeValidator(_to_period)]
CitizenIdCell = Annotated[CitizenId, _identifier_cell("INVALID_CITIZEN_ID", "公民身份号码")]
USCCCell = Annotated[USCC, _identifier_cell("INVALID_USCC", "统一社会信用代码")]
BankCardCell = Annotated[BankCard, _identifier_cell("INVALID_BANK_CARD", "银行账号")]
RegionCell = Annotated[RegionCode, _identifier_cell("INVALID_REGION_CODE", "行政区划代码")]

Sex = Annotated[str, _choice("INVALID_SEX", "性别应为“男”或“女”", {
    "男": "M", "女": "F", "m": "M", "f": "F", "male": "M", "female": "F", "1": "M", "2": "F"})]
HouseholdType = Annotated[str, _choice("INVALID_HOUSEHOLD_TYPE", "户口性质应为“城镇”或“农村”", {
    "城镇": "urban", "非农业": "urban", "非农业户口": "urban", "城镇户口": "urban", "urban": "urban",
    "农村": "rural", "农业": "rural", "农业户口": "rural", "农村户口": "rural", "rural": "rural"})]
UnitType = Annotated[str, _choice("INVALID_UNIT_TYPE", "单位类型应为企业、事业单位、机关或个体工商户", {
    "企业": "enterprise", "enterprise": "enterprise",
    "事业单位": "public_institution", "事业": "public_institution", "public_institution": "public_institution",
    "机关": "government", "机关单位": "government", "government": "government",
    "个体工商户": "individual_business", "个体": "individual_business", "individual_business": "individual_business"})]
EmployerStatus = Annotated[str, _choice("INVALID_STATUS", "单位状态应为正常、暂停或注销", {
    "正常": "active", "存续": "active", "active": "active",
    "暂停": "suspended", "suspended": "suspended",
    "注销": "deregistered", "已注销": "deregistered", "deregistered": "deregistered"})]
EnrolmentStatus = Annotated[str, _choice("INVALID_STATUS", "参保状态应为参保缴费、暂停缴费或终止缴费", {
    "参保缴费": "active", "正常": "active", "正常参保": "active", "active": "active",
    "暂停缴费": "suspended", "暂停": "suspended", "中断": "suspended", "suspended": "suspended",
    "终止缴费": "stopped", "终止": "stopped", "停保": "stopped", "终止参保": "stopped", "stopped": "stopped"})]

FUND_NAMES = {
    "企业职工基本养老保险": "PEN_EMP", "企业职工养老保险": "PEN_EMP", "企业养老": "PEN_EMP",
    "机关事业单位养老保险": "PEN_GOV", "机关事业单位基本养老保险": "PEN_GOV", "机关养老": "PEN_GOV",
    "城乡居民基本养老保险": "PEN_RES", "城乡居民养老保险": "PEN_RES", "居民养老": "PEN_RES",
    "失业保险": "UNEMP", "工伤保险": "INJURY",
}


def _fund(value: Any) -> Any:
    """A code (any case) or a Chinese name; anything else passes through for the enrolment rules to refuse
    (UNKNOWN_FUND, with the list of funds)."""
    text = str(value).strip()
    return FUND_NAMES.get(text, text.upper())


Fund = Annotated[str, BeforeValidator(_fund)]


# -- row models ------------------------------------------------------------------------------------------------------


class _Row(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")


class EmployerRow(_Row):
    uscc: USCCCell
    name: Text = Field(min_length=1, max_length=200)
    region: RegionCell
    unit_type: UnitType = "enterprise"
    industry_risk_class: int = Field(default=1, ge=1, le=8)
    contact_name: Text | None = Field(default=None, max_length=50)
    contact_phone: Text | None = Field(default=None, max_length=30)
    address: Text | None = Field(default=None, max_length=200)
    bank_name: Text | None = Field(default=None, max_length=100)
    bank_account_no: BankCardCell | None = None
    status: EmployerStatus = "active"


class PersonRow(_Row):
    citizen_id: CitizenIdCell
    name: Text = Field(min_length=1, max_length=100)
    region: RegionCell
    sex: Sex | None = None
    birth_date: DateCell | None = None
    nationality: Text = Field(default="CHN", min_length=3, max_length=3, pattern="^[A-Za-z]{3}$")
    phone: Text | None = Field(default=None, max_length=30)
    address: Text | None = Field(default=None, max_length=200)
    household_type: HouseholdType = "urban"


class EnrolmentRow(_Row):
    citizen_id: CitizenIdCell
    fund: Fund
    uscc: USCCCell | None = None
    start_period: PeriodCell
    end_period: PeriodCell | None = None
    status: EnrolmentStatus | None = None
    stop_reason: Text | None = Field(default=None, max_length=200)


ROW_MODELS: dict[ImportKind, type[_Row]] = {
    ImportKind.employers: EmployerRow,
    ImportKind.persons: PersonRow,
    ImportKind.enrolments: EnrolmentRow,
}


# -- API -------------------------------------------------------------------------------------------------------------


class ImportJobOut(BaseModel):
    id: str
    kind: str
    filename: str
    file_format: str
    encoding: str | None
    mode: str
    status: str = Field(description="running | completed | rejected | failed")
    total_rows: int = Field(description="data rows read (blank rows not counted)")
    accepted_rows: int = Field(description="rows stored")
    rejected_rows: int = Field(description="rows refused, listed at /imports/{id}/rejections")
    reported_overlaps: int = Field(
        0, description="overlapping pension periods found in imported history: stored, reported as "
                       "DuplicateEnrolmentFound (S03) and listed at /imports/{id}/overlaps")
    created_at: datetime
    created_by: str
    finished_at: datetime | None


class ImportJobPage(BaseModel):
    items: list[ImportJobOut]
    next_cursor: str | None


class RejectionOut(BaseModel):
    row_no: int = Field(description="row number in the file as Excel shows it (the header is row 1)")
    code: str = Field(description="stable code, e.g. INVALID_CITIZEN_ID, DUPLICATE_IN_FILE, OUT_OF_REGION")
    message: str = Field(description="Chinese message")
    raw: dict[str, Any] | None = Field(None, description="the row as uploaded, keyed by the file's headers")


class RejectionPage(BaseModel):
    items: list[RejectionOut]
    next_cursor: str | None = Field(description="pass as ?after= for the next page; null on the last page")
