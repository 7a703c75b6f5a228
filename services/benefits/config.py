"""Figures of eligibility upkeep and recovery. They are *default* policy (DOMAIN.md: configuration per region and
year, never constants buried in code), read from ``SIFUND_BENEFITS_*`` environment variables (or ``.env``):

- ``SIFUND_BENEFITS_SURVIVAL_INTERVAL_MONTHS`` (12): a beneficiary must prove being alive at least this often
  (001 第二十六条: at least once a year);
- ``SIFUND_BENEFITS_SURVIVAL_NOTICE_DAYS`` (30): how long a survival notice gives before the benefit is suspended;
- ``SIFUND_BENEFITS_RECOVERY_DEADLINE_DAYS`` (30): the deadline of a recovery notice (追回社会保险待遇告知书,
  001 第二十九条(四): 责令限期退还);
- ``SIFUND_BENEFITS_OFFSET_WINDOW_MONTHS`` (12): later regular payments may be offset within this many months
  after payment resumed (001 第二十九条(五): 恢复发放后一年内定期待遇).

The benefit parameters document of the region (``BenefitParameters``, owned by claims) is the place for them once
it carries these keys; until then the environment is the configuration.
"""

from datetime import date, datetime
from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.kernel import clock


# China has one time zone and no daylight saving: the business date is UTC+8.
CHINA = clock.CHINA


class UpkeepConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIFUND_BENEFITS_", env_file=".env", extra="ignore")

    survival_interval_months: int = Field(default=12, ge=1, le=24)
    survival_notice_days: int = Field(default=30, ge=1, le=365)
    recovery_deadline_days: int = Field(default=30, ge=1, le=365)
    offset_window_months: int = Field(default=12, ge=1, le=60)


@lru_cache
def get_config() -> UpkeepConfig:
    return UpkeepConfig()


def china_today() -> date:
    return clock.china_today()


def now() -> datetime:
    return clock.utc_now()


def months_before(day: date, months: int) -> date:
    """The same day ``months`` earlier, clamped to the month's end (29 Feb 2024 − 12 months → 28 Feb 2023)."""
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")
