"""Case-workflow figures that are configuration (DOMAIN.md: *default* values, per region), read from
``SIFUND_OVERSIGHT_*`` environment variables (or ``.env``) next to the platform settings."""

from datetime import date
from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.kernel import clock


CHINA = clock.CHINA


class CaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIFUND_OVERSIGHT_", env_file=".env", extra="ignore")

    # Days a unit has to verify and report (001 第二十九条 在规定时限内上报) when the opener names none.
    default_deadline_days: int = 30
    # An overdue case escalates again at most once per this many days.
    escalation_interval_days: int = 7
    # Class 4 and 5 cases qualify for the dishonesty list (001 第三十条) from this amount (fen); class 6 always.
    serious_amount_fen: int = 1_000_000
    # The unit cases are issued to when the opener names none (the pooling region's agency).
    default_unit: str = "社会保险经办机构"
    # Broken or rewound audit chains are issued to the agency's information department (信息数据部门).
    chain_unit: str = "社会保险经办机构信息数据部门"
    # RecoveryEscalated (001 第二十九条(五)): days the agency has to start the audit.
    recovery_case_deadline_days: int = 30


@lru_cache
def case_settings() -> CaseSettings:
    return CaseSettings()


def today() -> date:
    """The calendar day in China, the day deadlines are counted in."""
    return clock.china_today()
