"""费款所属期: a month as a ``YYYYMM`` integer (202401), with arithmetic and a validated pydantic type."""

from datetime import date
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

FIRST_PERIOD, LAST_PERIOD = 195001, 220012
_INVALID = "费款所属期应为 YYYYMM 格式的有效月份"


def validate_period(value: int) -> int:
    year, month = divmod(value, 100)
    if not (1950 <= year <= 2200 and 1 <= month <= 12):
        raise PydanticCustomError("INVALID_PERIOD", _INVALID)
    return value


def _period_input(value: object) -> object:
    """An integer (JSON) or ASCII digits (query, path, CSV); booleans, floats and other digits refused."""
    if isinstance(value, bool) or isinstance(value, float):
        raise PydanticCustomError("INVALID_PERIOD", _INVALID)
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit() and len(value) == 6):
            raise PydanticCustomError("INVALID_PERIOD", _INVALID)
        return int(value)
    return value


Period = Annotated[int, BeforeValidator(_period_input), AfterValidator(validate_period),
                   WithJsonSchema({"type": "integer", "minimum": FIRST_PERIOD, "maximum": LAST_PERIOD,
                                   "description": "YYYYMM"}, mode="validation")]


def add_months(period: int, months: int) -> int:
    year, month = divmod(period, 100)
    index = year * 12 + (month - 1) + months
    return (index // 12) * 100 + index % 12 + 1


def months_between(first: int, last: int) -> int:
    """Inclusive count of months from ``first`` to ``last`` (0 if last precedes first)."""
    y1, m1 = divmod(first, 100)
    y2, m2 = divmod(last, 100)
    return max(0, (y2 * 12 + m2) - (y1 * 12 + m1) + 1)


def period_of(day: date) -> int:
    return day.year * 100 + day.month


def month_has_ended(month: int, day: date) -> bool:
    """Whether ``month`` (YYYYMM) was over before ``day`` (a month-end figure — a closing balance, a month's
    reconciliation — exists only then)."""
    return month < period_of(day)
