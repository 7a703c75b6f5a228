"""The treasury deadline (000 二(二): what the treasury received goes into the special account within 10 working
days).

Chinese working days — statutory holidays off, make-up weekend days on, a year the calendar does not hold unknown
(``None`` with a note), never guessed from weekdays — come from the kernel's calendar (services/kernel/workdays.py:
the ``chinesecalendar`` package, extended by the operator's calendar file). The remittance day itself is not counted.
"""

from datetime import date

from services.kernel.workdays import WorkingDay, nth_working_day_after

TREASURY_DEADLINE_WORKING_DAYS = 10

Deadline = WorkingDay  # day (None when the calendar does not cover the days needed) and a note why


def treasury_deadline(remitted_on: date) -> Deadline:
    return nth_working_day_after(remitted_on, TREASURY_DEADLINE_WORKING_DAYS)
