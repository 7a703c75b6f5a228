"""Thresholds of the suspicion rules: configuration, not code (DOMAIN.md *default* values, set per region), read
from ``SIFUND_OVERSIGHT_RULES_*`` environment variables (or ``.env``)."""

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class RuleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIFUND_OVERSIGHT_RULES_", env_file=".env", extra="ignore")

    # S06 (001 第十八条): a single payment above this needs the extra review (大额复核). Benefits keeps its own figure
    # in its parameter sets, which oversight does not receive; the default is the same (50 000 yuan).
    large_amount_threshold_fen: int = 5_000_000
    # S08 (001 第二十二条): statutory retirement ages (国发〔1978〕104号): men; women in cadre / worker posts.
    statutory_age_male: int = 60
    statutory_age_female_cadre: int = 55
    statutory_age_female_worker: int = 50
    # S09 (001 第二十一条): a one-off back payment covering at least this many months, or at least this amount.
    back_payment_months: int = 36
    back_payment_amount_fen: int = 5_000_000
    # S04 (001 第二十六条, at least one survival certification a year): months after which it is overdue.
    survival_months: int = 12
    # S10 (003 三.6): the average base of the last ``recent`` months before retirement at least ``percent`` % of the
    # average of the ``earlier`` months before those, each window with at least ``min_months`` months assessed.
    base_rise_percent: int = 150
    base_rise_recent_months: int = 12
    base_rise_earlier_months: int = 36
    base_rise_min_months: int = 6
    # S11 (003 三.5): days after the market-regulation registration by which the employer must be registered.
    business_registration_days: int = 30
    # S20 (001 第十六条): years on a high-risk post.
    tenure_years: int = 5
    # S19: hours a life-status change citing partner data may precede the partner record's arrival (two streams).
    life_change_grace_hours: int = 24
    # S12–S16: months of reconciliation cells a sweep looks at by default — the months before ``as_of``'s month
    # (a month is reconciled once it is over: 每月对账).
    reconciliation_months: int = 1


@lru_cache
def rule_settings() -> RuleSettings:
    return RuleSettings()
