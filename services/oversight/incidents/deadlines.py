"""The 5-working-day deadline of a major incident (001 第三十一条: 重大要情应在发现的5个工作日内上报).

Chinese working days follow the State Council's calendar — statutory holidays off, make-up weekend days (调休) on —
through the ``chinesecalendar`` package (``import chinese_calendar``). The discovery day itself is not counted: the
deadline is the 5th working day after it (discovered on Tuesday 2026-09-29, before the National Day holiday, the
deadline is Monday 2026-10-12, counting the make-up Saturday 2026-10-10). For a year the package does not cover yet
the deadline is unknown (``None`` with a note), never guessed from weekdays.
"""

from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar

MAJOR_INCIDENT_WORKING_DAYS = 5


@lru_cache(maxsize=4096)
def working_day_deadline(start: date, days: int = MAJOR_INCIDENT_WORKING_DAYS) -> tuple[date | None, str | None]:
    """(the ``days``-th working day after ``start``, None) or (None, why it cannot be computed)."""
    current, counted = start, 0
    try:
        while counted < days:
            current += timedelta(days=1)
            if chinese_calendar.is_workday(current):
                counted += 1
    except NotImplementedError:
        return None, f"节假日安排数据不含 {current.year} 年（请升级 chinesecalendar），暂无法计算工作日期限"
    return current, None
