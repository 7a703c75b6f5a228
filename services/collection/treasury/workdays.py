"""Chinese working days for the treasury deadline (000 二(二): treasury → special account within 10 working days).

Working days follow the State Council's calendar (statutory holidays off, make-up weekend days on) through the
``chinesecalendar`` package (``import chinese_calendar``), which holds each year once it is announced. For a year
it does not know yet the deadline is unknown (``None``), never guessed from weekdays: a make-up Saturday can make the
true deadline earlier than a weekday count and a holiday later.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar

TREASURY_DEADLINE_WORKING_DAYS = 10


@dataclass(frozen=True)
class Deadline:
    day: date | None  # None when the calendar does not cover the days needed
    note: str | None = None


def add_working_days(start: date, days: int) -> Deadline:
    """The ``days``-th working day after ``start`` (``start`` itself is not counted)."""
    current, counted = start, 0
    try:
        while counted < days:
            current += timedelta(days=1)
            if chinese_calendar.is_workday(current):
                counted += 1
    except NotImplementedError:
        return Deadline(None, f"节假日安排数据不含 {current.year} 年（请升级 chinesecalendar），暂无法计算工作日期限")
    return Deadline(current)


@lru_cache(maxsize=4096)
def treasury_deadline(remitted_on: date) -> Deadline:
    return add_working_days(remitted_on, TREASURY_DEADLINE_WORKING_DAYS)
