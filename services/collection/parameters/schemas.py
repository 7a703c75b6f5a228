"""Rates and bases (缴费费率与基数) as a validated document, and the request/response bodies of the parameter API.

The document is what ``ContributionParameters.document`` stores (canonical JSON) and what ``ParametersApproved``
carries. Its figures are *default* policy, configured per region and ``valid_from`` month (DOMAIN.md, Funds):

- ``rates``: employer and individual rate per wage-based fund (PEN_EMP, PEN_GOV, UNEMP), e.g. 16 % / 8 %;
- ``injury_class_rates``: the work-injury employer rate of each industry risk class 1–8 (INJURY has no individual
  part); an employer's approved floating factor (``EmployerInjuryAdjustment``) multiplies it;
- ``average_monthly_wage_fen``: the prior-year average monthly wage (上年度社会平均工资), integer fen;
- ``base_floor_ratio`` / ``base_cap_ratio``: the contribution base is clamped to [floor, cap] × that wage
  (60 % / 300 %), each limit rounded half-up to the fen once;
- ``resident_grades``: the flat annual grades of PEN_RES (城乡居民养老) with the government subsidy of each;
- ``due_day``: the day of the month after the period by which the assessment is due (1–28, so every month has it);
- ``late_fee_daily_rate``: the late fee per day (0.05 %, 社会保险法 §86).

Every rate and ratio is a decimal **string** ("0.16"); a JSON number is refused, a float because it has already lost
the exact value, an integer because a rate written as a number is ambiguous (16 or 0.16?). Amounts are integers in
fen (a float is refused). Unknown keys are refused, so a misspelt field is never silently ignored.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, model_validator
from pydantic_core import PydanticCustomError

from services.contracts.codes import Fund
from services.kernel.money import round_fen
from services.kernel.periods import Period
from services.kernel.schemas import (AS_RATE_TEXT, DatedDocumentProposal, Fen, PositiveFen, Rate, Reason,
                                     parse_decimal_string)
from services.kernel.strict import RequestModel

WAGE_FUNDS = (Fund.PEN_EMP, Fund.PEN_GOV, Fund.UNEMP)  # rated on the declared base, employer and individual part
INJURY = Fund.INJURY  # employer part only, by risk class × floating factor
RESIDENT_FUND = Fund.PEN_RES  # flat annual grades, not wage-based
KNOWN_FUNDS = (*WAGE_FUNDS, INJURY, RESIDENT_FUND)
RISK_CLASSES = tuple(range(1, 9))
MAX_FACTOR_PLACES = 2


def parse_ratio(value: object) -> Decimal:
    """A positive ratio in a decimal string (the base floor "0.6", the cap "3.0"), at most four decimal places."""
    if isinstance(value, Decimal):
        value = format(value, "f")
    ratio = parse_decimal_string(value, what="比例", example="0.6")
    if ratio <= 0 or ratio > 100 or -ratio.as_tuple().exponent > 4:
        raise PydanticCustomError("INVALID_RATE", f"比例应为大于 0 的小数，最多保留 4 位小数，收到 {value}")
    return ratio


def parse_factor(value: object) -> Decimal:
    """The work-injury floating factor (浮动费率): 0.5 to 1.5 of the class rate, at most two decimal places."""
    if isinstance(value, Decimal):
        value = format(value, "f")
    factor = parse_decimal_string(value, what="浮动系数", example="1.2")
    if not Decimal("0.5") <= factor <= Decimal("1.5") or -factor.as_tuple().exponent > MAX_FACTOR_PLACES:
        raise PydanticCustomError("INVALID_FACTOR",
                                  f"工伤保险浮动系数应在 0.5 至 1.5 之间（如 \"1.2\" 表示上浮 20%），最多两位小数，收到 {value}")
    return factor


Ratio = Annotated[Decimal, BeforeValidator(parse_ratio), AS_RATE_TEXT]
Factor = Annotated[Decimal, BeforeValidator(parse_factor), AS_RATE_TEXT]


class SideRates(RequestModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    employer: Rate = Field(description="单位缴费比例, e.g. \"0.16\"")
    individual: Rate = Field(description="个人缴费比例, e.g. \"0.08\"")


class ResidentGrade(RequestModel):
    """One PEN_RES grade (缴费档次): what the resident pays per year and what the government adds (政府补贴)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grade: Annotated[StrictInt, Field(ge=1, le=50)]
    annual_fen: PositiveFen
    subsidy_fen: Fen


def _fund_keys(value: Any) -> Any:
    if isinstance(value, dict):
        unknown = [k for k in value if k not in WAGE_FUNDS]
        if unknown:
            hint = "（工伤保险按行业风险类别在 injury_class_rates 中设置，城乡居民养老在 resident_grades 中设置）"
            raise PydanticCustomError("UNKNOWN_FUND", f"险种 {'、'.join(map(str, unknown))} 不是按基数缴费的险种（可选："
                                      f"{'、'.join(WAGE_FUNDS)}）{hint}")
        missing = [f for f in WAGE_FUNDS if f not in value]
        if missing:
            raise PydanticCustomError("FUND_RATE_MISSING", f"缺少险种 {'、'.join(missing)} 的费率")
    return value


def _risk_class_keys(value: Any) -> Any:
    if isinstance(value, dict):
        keys = {str(k) for k in value}
        expected = {str(c) for c in RISK_CLASSES}
        if keys != expected:
            raise PydanticCustomError("INJURY_CLASS_RATES_INVALID",
                                      "工伤保险行业基准费率须逐一列出风险类别 1 至 8，"
                                      f"缺少 {sorted(expected - keys) or '无'}，多余 {sorted(keys - expected) or '无'}")
    return value


class ParametersDocument(RequestModel):
    """The rates and bases of one region from one month on. See the module docstring for each field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rates: Annotated[dict[str, SideRates], BeforeValidator(_fund_keys)] = Field(
        description="wage-based funds PEN_EMP, PEN_GOV, UNEMP: employer and individual rate")
    injury_class_rates: Annotated[dict[int, Rate], BeforeValidator(_risk_class_keys)] = Field(
        description="work-injury employer rate by industry risk class 1–8, e.g. {\"1\": \"0.002\", …, \"8\": \"0.019\"}")
    average_monthly_wage_fen: PositiveFen = Field(description="上年度全口径城镇单位就业人员月平均工资, fen")
    base_floor_ratio: Ratio = Field(description="缴费基数下限, as a fraction of the average wage (\"0.6\")")
    base_cap_ratio: Ratio = Field(description="缴费基数上限, as a fraction of the average wage (\"3.0\")")
    resident_grades: list[ResidentGrade] = Field(default_factory=list, max_length=50,
                                                 description="PEN_RES flat annual grades with subsidy")
    due_day: Annotated[StrictInt, Field(ge=1, le=28)] = Field(description="due on this day of the following month")
    late_fee_daily_rate: Rate = Field(description="滞纳金日比例 (\"0.0005\" = 0.05 % per day)")

    @model_validator(mode="after")
    def _consistent(self) -> "ParametersDocument":
        if self.base_floor_ratio > self.base_cap_ratio:
            raise PydanticCustomError("BASE_LIMITS_INVALID", "缴费基数下限比例不能高于上限比例")
        grades = [g.grade for g in self.resident_grades]
        if len(grades) != len(set(grades)):
            raise PydanticCustomError("RESIDENT_GRADES_INVALID", "城乡居民养老缴费档次编号重复")
        return self

    # -- derived figures ------------------------------------------------------------------------------------------

    def limit_fen(self, ratio: Decimal) -> int:
        return round_fen(Decimal(self.average_monthly_wage_fen) * ratio)

    @property
    def floor_fen(self) -> int:
        return self.limit_fen(self.base_floor_ratio)

    @property
    def cap_fen(self) -> int:
        return self.limit_fen(self.base_cap_ratio)

    def injury_rate(self, risk_class: int) -> Decimal:
        try:
            return self.injury_class_rates[risk_class]
        except KeyError:
            raise PydanticCustomError("UNKNOWN_RISK_CLASS", f"行业风险类别 {risk_class} 无基准费率") from None

    def as_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def default_document(average_monthly_wage_fen: int, *, due_day: int = 15) -> dict[str, Any]:
    """The national *default* figures (DOMAIN.md, Funds) as a document body, for a region to adapt and propose."""
    return {
        "rates": {
            "PEN_EMP": {"employer": "0.16", "individual": "0.08"},
            "PEN_GOV": {"employer": "0.16", "individual": "0.08"},
            "UNEMP": {"employer": "0.005", "individual": "0.005"},
        },
        "injury_class_rates": {str(c): r for c, r in zip(RISK_CLASSES, (
            "0.002", "0.004", "0.007", "0.009", "0.011", "0.013", "0.016", "0.019"), strict=True)},
        "average_monthly_wage_fen": average_monthly_wage_fen,
        "base_floor_ratio": "0.6",
        "base_cap_ratio": "3.0",
        "resident_grades": [
            {"grade": i + 1, "annual_fen": amount * 100, "subsidy_fen": subsidy * 100}
            for i, (amount, subsidy) in enumerate(
                [(200, 30), (300, 40), (500, 60), (800, 80), (1000, 100), (1500, 120), (2000, 150), (3000, 200)])
        ],
        "due_day": due_day,
        "late_fee_daily_rate": "0.0005",
    }


# -- API bodies ------------------------------------------------------------------------------------------------------

class ParametersProposal(DatedDocumentProposal):
    valid_from: Period = Field(description="first month (YYYYMM) the set applies to")
    document: ParametersDocument


class ParametersOut(BaseModel):
    id: str
    region: str
    valid_from: int
    document: dict[str, Any]
    status: str
    reason: str
    proposed_at: datetime
    proposed_by: str
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    floor_fen: int
    cap_fen: int


class ParametersPage(BaseModel):
    items: list[ParametersOut]
    next_cursor: str | None = Field(description="pass as ?after= to get the next page; null on the last page")


class InjuryAdjustmentProposal(RequestModel):
    model_config = ConfigDict(extra="forbid")

    employer_id: str = Field(min_length=1, max_length=36)
    valid_from: Period
    factor: Factor = Field(description="浮动系数 applied to the class rate, e.g. \"1.2\" (+20 %) or \"0.8\" (−20 %)")
    reason: Reason


class InjuryAdjustmentOut(BaseModel):
    id: str
    employer_id: str
    valid_from: int
    factor: str
    status: str
    reason: str
    proposed_at: datetime
    proposed_by: str
    decided_at: datetime | None
    decided_by: str | None
