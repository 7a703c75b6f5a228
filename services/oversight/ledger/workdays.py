"""Chinese working days for R3 (000 二(二): what the treasury received goes into the special account "特殊情况下不超出
当月内的10个工作日"). Oversight computes the deadline itself rather than trusting the operator's figure.

Working days follow the State Council's calendar (statutory holidays off, make-up weekend days on) through the
``chinesecalendar`` package (``import chinese_calendar``). For a year the package does not cover yet the deadline is
unknown (``None``), never guessed from weekdays.
"""

from datetime import date, timedelta
from functools import lru_cache

import chinese_calendar

DEADLINE_WORKING_DAYS = 10


@lru_cache(maxsize=4096)
def remittance_deadline(remitted_on: date, working_days: int = DEADLINE_WORKING_DAYS) -> date | None:
    """The ``working_days``-th working day after ``remitted_on`` (the remittance day itself is not counted)."""
    current, counted = remitted_on, 0
    try:
        while counted < working_days:
            current += timedelta(days=1)
            if chinese_calendar.is_workday(current):
                counted += 1
    except NotImplementedError:
        return None
    return current
