"""Budget-execution figures that are configuration, read from ``SIFUND_OVERSIGHT_BUDGET_*`` environment variables
(or ``.env``)."""

from decimal import Decimal
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class BudgetSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIFUND_OVERSIGHT_BUDGET_", env_file=".env", extra="ignore")

    # 002 三(一) 预警: warn when an item's execution rate deviates from the time progress (months / 12) by more than
    # this many percentage points, either way.
    warning_threshold_points: Decimal = Decimal(10)


@lru_cache
def budget_settings() -> BudgetSettings:
    return BudgetSettings()
