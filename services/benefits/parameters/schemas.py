"""Benefit parameters (待遇计发参数) as a validated document, and the request/response bodies of the parameter API.

The document is what ``BenefitParameters.document`` stores (canonical JSON). Every figure is *default* policy,
configured per region and ``valid_from`` month (DOMAIN.md), never a constant in code:

- ``average_monthly_wage_fen``: the prior-year average monthly wage (上年度在岗职工月平均工资, 计发基数), integer fen;
- ``basic_pension_rate_per_year``: the share of the base paid per year of contribution (1 % → ``"0.01"``);
- ``account_divisors``: 个人账户养老金计发月数 by whole age at retirement (139 at 60, 170 at 55, 195 at 50; the
  national table of 国发〔2005〕38号 runs from 40 to 70); the statutory ages and the resident pension age must be in it;
- ``statutory_retirement_ages``: 法定退休年龄 — men, women in cadre posts (干部), women in worker posts (工人);
- ``pension_min_contribution_months``: months of contribution needed for a monthly pension (15 years = 180);
- ``resident_pension_age`` / ``resident_basic_pension_fen``: 城乡居民养老保险 age and monthly 基础养老金;
- ``unemployment_monthly_fen``: 失业保险金 per month;
- ``unemployment_entitlement``: months of benefit by years of contribution, as bands ``[from_years, to_years)``
  (1–5 y → 12, 5–10 → 18, 10 + → 24; 失业保险条例 第十七条); less than the first band's ``from_years`` → none;
- ``large_amount_threshold_fen``: a single payment above it needs the extra review (001 第十八条; default 50 000 yuan).

Rates are decimal **strings** (a JSON number is refused: ``services.kernel.schemas.Rate``); amounts, months and ages
are JSON integers (a float is refused). Unknown keys are refused, so a misspelt field is never silently ignored.
"""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator
from pydantic_core import PydanticCustomError

from services.kernel.periods import Period
from services.kernel.schemas import DatedDocumentProposal, PositiveFen, Rate
from services.kernel.strict import RequestModel

# 国发〔2005〕38号 附件: 个人账户养老金计发月数表 (whole age at retirement → months).
NATIONAL_DIVISORS: dict[int, int] = {
    40: 233, 41: 230, 42: 226, 43: 223, 44: 220, 45: 216, 46: 212, 47: 207, 48: 204, 49: 199,
    50: 195, 51: 190, 52: 185, 53: 180, 54: 175, 55: 170, 56: 164, 57: 158, 58: 152, 59: 145,
    60: 139, 61: 132, 62: 125, 63: 117, 64: 109, 65: 101, 66: 93, 67: 84, 68: 75, 69: 65, 70: 56,
}

Age = Annotated[StrictInt, Field(ge=16, le=80)]
AgeKey = Annotated[int, Field(ge=16, le=80)]  # JSON object keys are strings: "60"
Months = Annotated[StrictInt, Field(ge=1, le=600)]


class RetirementAges(RequestModel):
    """法定退休年龄 in whole years. Which of the two women's ages applies is said on the claim (``post_type``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    male: Age = Field(description="男职工, e.g. 60")
    female_cadre: Age = Field(description="女干部 (管理岗位), e.g. 55")
    female_worker: Age = Field(description="女工人 (生产岗位), e.g. 50")


class UnemploymentBand(RequestModel):
    """Contribution of at least ``from_years`` and less than ``to_years`` (null: no upper bound) → ``months``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    from_years: Annotated[StrictInt, Field(ge=0, le=60)]
    to_years: Annotated[StrictInt | None, Field(ge=1, le=60)] = None
    months: Annotated[StrictInt, Field(ge=1, le=60)]


class BenefitParametersDocument(RequestModel):
    """The benefit parameters of one region from one month on. See the module docstring for each field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    average_monthly_wage_fen: PositiveFen = Field(description="上年度在岗职工月平均工资 (计发基数), fen")
    basic_pension_rate_per_year: Rate = Field(description="基础养老金 per year of contribution, \"0.01\" = 1 %")
    account_divisors: dict[AgeKey, Months] = Field(description="计发月数 by age at retirement, e.g. {\"60\": 139}")
    statutory_retirement_ages: RetirementAges
    pension_min_contribution_months: Months = Field(description="累计缴费满 15 年 = 180")
    resident_pension_age: Age = Field(description="城乡居民养老保险 领取年龄, e.g. 60")
    resident_basic_pension_fen: PositiveFen = Field(description="城乡居民 基础养老金 per month, fen")
    unemployment_monthly_fen: PositiveFen = Field(description="失业保险金 per month, fen")
    unemployment_entitlement: list[UnemploymentBand] = Field(min_length=1, max_length=20)
    large_amount_threshold_fen: PositiveFen = Field(description="单笔大额 threshold, fen (default 5 000 000)")

    @field_validator("unemployment_entitlement")
    @classmethod
    def _bands(cls, bands: list[UnemploymentBand]) -> list[UnemploymentBand]:
        for band, following in zip(bands, bands[1:], strict=False):
            if band.to_years is None or band.to_years != following.from_years:
                raise PydanticCustomError("UNEMPLOYMENT_BANDS_INVALID",
                                          "失业保险金领取期限档次须按缴费年限连续排列（上一档的 to_years 等于下一档的 from_years）")
        for band in bands:
            if band.to_years is not None and band.to_years <= band.from_years:
                raise PydanticCustomError("UNEMPLOYMENT_BANDS_INVALID", "失业保险金领取期限档次的 to_years 须大于 from_years")
        if bands[-1].to_years is not None:
            raise PydanticCustomError("UNEMPLOYMENT_BANDS_INVALID", "最后一档失业保险金领取期限不设上限（to_years 为 null）")
        return bands

    @model_validator(mode="after")
    def _consistent(self) -> "BenefitParametersDocument":
        ages = self.statutory_retirement_ages
        needed = sorted({ages.male, ages.female_cadre, ages.female_worker, self.resident_pension_age})
        missing = [a for a in needed if a not in self.account_divisors]
        if missing:
            raise PydanticCustomError("DIVISOR_MISSING",
                                      f"计发月数表缺少法定退休年龄 {'、'.join(map(str, missing))} 岁的计发月数")
        return self

    # -- lookups --------------------------------------------------------------------------------------------------

    def retirement_age(self, sex: str, post_type: str | None) -> int | None:
        """The statutory age of a man (``sex`` "M"), or of a woman by post type; None for a woman without one."""
        if sex == "M":
            return self.statutory_retirement_ages.male
        if post_type == "cadre":
            return self.statutory_retirement_ages.female_cadre
        if post_type == "worker":
            return self.statutory_retirement_ages.female_worker
        return None

    def divisor_for(self, age: int) -> int | None:
        return self.account_divisors.get(age)

    def unemployment_months_for(self, contribution_months: int) -> int | None:
        """Months of unemployment benefit for ``contribution_months`` of contribution; None below the first band."""
        for band in self.unemployment_entitlement:
            upper = None if band.to_years is None else band.to_years * 12
            if contribution_months >= band.from_years * 12 and (upper is None or contribution_months < upper):
                return band.months
        return None

    @property
    def unemployment_min_months(self) -> int:
        return self.unemployment_entitlement[0].from_years * 12

    def as_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def default_benefit_document(average_monthly_wage_fen: int = 800_000, *, unemployment_monthly_fen: int = 180_000,
                             resident_basic_pension_fen: int = 20_000) -> dict[str, Any]:
    """The national *default* figures as a document body, for a region to adapt and propose."""
    return {
        "average_monthly_wage_fen": average_monthly_wage_fen,
        "basic_pension_rate_per_year": "0.01",
        "account_divisors": {str(age): months for age, months in NATIONAL_DIVISORS.items()},
        "statutory_retirement_ages": {"male": 60, "female_cadre": 55, "female_worker": 50},
        "pension_min_contribution_months": 180,
        "resident_pension_age": 60,
        "resident_basic_pension_fen": resident_basic_pension_fen,
        "unemployment_monthly_fen": unemployment_monthly_fen,
        "unemployment_entitlement": [
            {"from_years": 1, "to_years": 5, "months": 12},
            {"from_years": 5, "to_years": 10, "months": 18},
            {"from_years": 10, "to_years": None, "months": 24},
        ],
        "large_amount_threshold_fen": 5_000_000,
    }


# -- API bodies ------------------------------------------------------------------------------------------------------


class BenefitParametersProposal(DatedDocumentProposal):
    valid_from: Period = Field(description="first month (YYYYMM) the parameters apply to")
    document: BenefitParametersDocument


class BenefitParametersOut(BaseModel):
    id: str
    region: str
    valid_from: int
    document: dict[str, Any]
    status: str
    proposed_at: datetime
    proposed_by: str
    decided_at: datetime | None
    decided_by: str | None


class BenefitParametersPage(BaseModel):
    items: list[BenefitParametersOut]
    next_cursor: str | None = Field(description="pass as ?after= to get the next page; null on the last page")
