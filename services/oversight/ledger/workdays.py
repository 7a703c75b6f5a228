"""Chinese working days for R3 (000 二(二): what the treasury received goes into the special account "特殊情况下不超出
当月内的10个工作日"). Oversight computes the deadline itself rather than trusting the operator's figure.

Working days come from the kernel's calendar (services/kernel/workdays.py: the State Council's arrangement through
the ``chinesecalendar`` package, extended by the operator's calendar file). For a year the calendar does not hold
the deadline is unknown (``None``), never guessed from weekdays.
"""

from datetime import date

from services.kernel.workdays import nth_working_day_after

DEADLINE_WORKING_DAYS = 10


def remittance_deadline(remitted_on: date, working_days: int = DEADLINE_WORKING_DAYS) -> date | None:
    """The ``working_days``-th working day after ``remitted_on`` (the remittance day itself is not counted)."""
    return nth_working_day_after(remitted_on, working_days).day
