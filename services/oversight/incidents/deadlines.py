"""The 5-working-day deadline of a major incident (001 第三十一条: 重大要情应在发现的5个工作日内上报).

Chinese working days — statutory holidays off, make-up weekend days (调休) on — come from the kernel's calendar
(services/kernel/workdays.py: the ``chinesecalendar`` package, extended by the operator's calendar file). The
discovery day itself is not counted: the deadline is the 5th working day after it (discovered on Tuesday 2026-09-29,
before the National Day holiday, the deadline is Monday 2026-10-12, counting the make-up Saturday 2026-10-10). For a
year the calendar does not hold the deadline is unknown (``None`` with a note), never guessed from weekdays.
"""

from datetime import date

from services.kernel.workdays import nth_working_day_after

MAJOR_INCIDENT_WORKING_DAYS = 5


def working_day_deadline(start: date, days: int = MAJOR_INCIDENT_WORKING_DAYS) -> tuple[date | None, str | None]:
    """(the ``days``-th working day after ``start``, None) or (None, why it cannot be computed)."""
    deadline = nth_working_day_after(start, days)
    return deadline.day, deadline.note
