"""Benefit amounts computed by the system (004 第20项: 待遇由系统生成), each step recorded for the claim's
``computation`` JSON. Pure functions: the caller supplies the parameters in force and the verified facts.

Basic pension (企业职工/机关事业 基本养老金, 国发〔2005〕38号), per month::

    average index            = Σ (base_i ÷ average wage of that year_i) ÷ n      over the ContributionIndex rows
    indexed average wage     = prior-year average monthly wage × average index    (指数化月平均缴费工资)
    contribution years       = contribution months ÷ 12                          (months from accounts' online check)
    基础养老金                = (prior-year average wage + indexed average wage) ÷ 2 × contribution years × rate (1 %)
    个人账户养老金            = individual account balance ÷ 计发月数 for the whole age at retirement
    monthly amount           = 基础养老金 (rounded) + 个人账户养老金 (rounded)

Resident pension (城乡居民): basic amount from the parameters + individual account balance ÷ 计发月数 at the resident
pension age (139 at 60). Unemployment: the monthly amount from the parameters for the months of the band of the
contribution years (失业保险条例 第十七条). Injury and one-off amounts are entered with their documents.

Exactness and rounding: every intermediate value is an exact rational number (``fractions.Fraction``, built from
integers and decimal strings), so nothing is lost in divisions such as base ÷ wage or balance ÷ 139. Each component
(基础养老金, 个人账户养老金) is rounded **once**, half-up to the fen; the monthly amount is the sum of the rounded
components (DOMAIN.md, Rounding). Recorded steps show exact values as decimal strings; a value with no finite decimal
expansion is shown to 10 places with ``…`` and its exact fraction alongside (``exact``).
"""

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

DISPLAY_PLACES = 10


def half_up_fen(value: Fraction) -> int:
    """Round an exact non-negative amount in fen half-up to a whole fen."""
    if value < 0:
        raise ValueError("amounts are never negative")
    return (2 * value.numerator + value.denominator) // (2 * value.denominator)


def show(value: Fraction) -> dict[str, str] | str:
    """Exact decimal text when finite, else 10 places with an ellipsis and the exact fraction."""
    places, power = 0, 1
    while power % value.denominator and places <= 60:
        places, power = places + 1, power * 10
    if power % value.denominator == 0:  # finite decimal expansion: exact text
        text = format(Decimal(value.numerator * (power // value.denominator)).scaleb(-places), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    scaled = Fraction(value.numerator * 10**DISPLAY_PLACES, value.denominator)
    digits = half_up_fen(scaled) if value >= 0 else -half_up_fen(-scaled)
    shown = format(Decimal(digits).scaleb(-DISPLAY_PLACES), "f")
    return {"value": f"{shown}…", "exact": f"{value.numerator}/{value.denominator}"}


@dataclass
class Computation:
    """What the system computed and how. ``as_dict`` is stored in ``Claim.computation``."""

    method: str
    inputs: dict[str, Any] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    monthly_amount_fen: int | None = None
    one_off_amount_fen: int | None = None
    end_period: int | None = None
    flags: dict[str, Any] = field(default_factory=dict)

    def step(self, name: str, formula: str, value: Fraction | int | str) -> None:
        shown = show(value) if isinstance(value, Fraction) else value
        self.steps.append({"step": name, "formula": formula, "value": shown})

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method, "inputs": self.inputs, "steps": self.steps,
            "monthly_amount_fen": self.monthly_amount_fen, "one_off_amount_fen": self.one_off_amount_fen,
            "end_period": self.end_period, "flags": self.flags,
            "rounding": "exact rational arithmetic; each component rounded once, half-up to the fen",
        }


@dataclass(frozen=True)
class IndexRow:
    period: int
    base_fen: int
    average_wage_fen: int


def _account_pension(c: Computation, balance_fen: int, divisor: int) -> int:
    exact = Fraction(balance_fen, divisor)
    c.step("account_pension_exact", "个人账户储存额 ÷ 计发月数", exact)
    rounded = half_up_fen(exact)
    c.step("account_pension_fen", "个人账户养老金, half-up to the fen", rounded)
    return rounded


def basic_pension(*, average_wage_fen: int, rate_per_year: Decimal, index_rows: list[IndexRow],
                  contribution_months: int, balance_fen: int, retirement_age: int, divisor: int) -> Computation:
    """基本养老金 = 基础养老金 + 个人账户养老金 (see the module docstring). ``index_rows`` must not be empty."""
    if not index_rows:
        raise ValueError("no contribution index rows")
    rate = Fraction(rate_per_year)
    c = Computation(method="basic_pension", inputs={
        "average_monthly_wage_fen": average_wage_fen, "basic_pension_rate_per_year": format(rate_per_year, "f"),
        "contribution_months": contribution_months, "index_months": len(index_rows),
        "index_first_period": min(r.period for r in index_rows), "index_last_period": max(r.period for r in index_rows),
        "account_balance_fen": balance_fen, "retirement_age": retirement_age, "account_divisor": divisor,
    })
    index_sum = sum((Fraction(r.base_fen, r.average_wage_fen) for r in index_rows), Fraction(0))
    c.step("index_sum", "Σ 缴费基数 ÷ 当年社会平均工资", index_sum)
    average_index = index_sum / len(index_rows)
    c.step("average_index", f"平均缴费指数 = index_sum ÷ {len(index_rows)}", average_index)
    indexed_wage = average_wage_fen * average_index
    c.step("indexed_average_wage_fen", "指数化月平均缴费工资 = 上年度月平均工资 × 平均缴费指数", indexed_wage)
    years = Fraction(contribution_months, 12)
    c.step("contribution_years", f"缴费年限 = {contribution_months} ÷ 12", years)
    basic_exact = (average_wage_fen + indexed_wage) / 2 * years * rate
    c.step("basic_pension_exact", "(上年度月平均工资 + 指数化月平均缴费工资) ÷ 2 × 缴费年限 × 1%", basic_exact)
    basic = half_up_fen(basic_exact)
    c.step("basic_pension_fen", "基础养老金, half-up to the fen", basic)
    account = _account_pension(c, balance_fen, divisor)
    c.monthly_amount_fen = basic + account
    c.step("monthly_amount_fen", "基础养老金 + 个人账户养老金", c.monthly_amount_fen)
    return c


def resident_pension(*, basic_amount_fen: int, balance_fen: int, pension_age: int, divisor: int) -> Computation:
    c = Computation(method="resident_pension", inputs={
        "resident_basic_pension_fen": basic_amount_fen, "account_balance_fen": balance_fen,
        "resident_pension_age": pension_age, "account_divisor": divisor,
    })
    c.step("basic_pension_fen", "城乡居民基础养老金 (parameters)", basic_amount_fen)
    account = _account_pension(c, balance_fen, divisor)
    c.monthly_amount_fen = basic_amount_fen + account
    c.step("monthly_amount_fen", "基础养老金 + 个人账户养老金", c.monthly_amount_fen)
    return c


def unemployment(*, monthly_fen: int, contribution_months: int, entitlement_months: int, effective_period: int,
                 end_period: int) -> Computation:
    c = Computation(method="unemployment", inputs={
        "unemployment_monthly_fen": monthly_fen, "contribution_months": contribution_months,
    })
    c.step("contribution_years", f"缴费年限 = {contribution_months} ÷ 12", Fraction(contribution_months, 12))
    c.step("entitlement_months", "领取期限 by contribution years (parameters' bands)", entitlement_months)
    c.step("end_period", f"{effective_period} + {entitlement_months} − 1 months", end_period)
    c.monthly_amount_fen, c.end_period = monthly_fen, end_period
    c.step("monthly_amount_fen", "失业保险金 (parameters)", monthly_fen)
    return c


def entered(*, kind: str, monthly_fen: int | None, one_off_fen: int | None, documents: list[dict]) -> Computation:
    """Injury and one-off amounts: entered by the clerk with the documents that determine them."""
    c = Computation(method=f"{kind}_entered", inputs={"documents": documents})
    if monthly_fen is not None:
        c.step("monthly_amount_fen", "entered from the determining documents", monthly_fen)
    if one_off_fen is not None:
        c.step("one_off_amount_fen", "entered from the determining documents", one_off_fen)
    c.monthly_amount_fen, c.one_off_amount_fen = monthly_fen, one_off_fen
    return c
