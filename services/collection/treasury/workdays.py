"""The treasury deadline (000 二(二): 各级财政部门要严格按照规定时间将缴入国库的各项社保费及时（特殊情况下不超出当月内的
10个工作日）足额划入社会保险财政专户) and whether a remittance met it.

Chinese working days — statutory holidays off, make-up weekend days on, a year the calendar does not hold unknown
(``None`` with a note), never guessed from weekdays — come from the kernel's calendar (services/kernel/workdays.py:
the ``chinesecalendar`` package, extended by the operator's calendar file). The remittance day itself is not counted.

Lateness of a remittance (what the finance officer sees on the remittance record; oversight's R3 judges the same
deadline independently):

- ``on_time``: in the special account in full, the last receipt on or before the deadline;
- ``late``: in full, the last receipt after the deadline — or still not in full after it; ``working_days_late``
  counts the working days from the deadline to that receipt (or to today, growing while nothing arrives);
- ``not_due``: not yet in full, the deadline not passed;
- ``unknown``: the calendar does not cover the deadline's year (``late`` and ``working_days_late`` null). When the
  deadline is known but the count reaches a year not covered, ``late`` is known and ``working_days_late`` null.
"""

from dataclasses import dataclass
from datetime import date

from services.kernel.workdays import WorkingDay, nth_working_day_after, working_days_after

TREASURY_DEADLINE_WORKING_DAYS = 10
TREASURY_DEADLINE_CLAUSE = "000 二(二)：缴入国库的社保费及时（特殊情况下不超出当月内的10个工作日）足额划入财政专户"

Deadline = WorkingDay  # day (None when the calendar does not cover the days needed) and a note why


def treasury_deadline(remitted_on: date) -> Deadline:
    return nth_working_day_after(remitted_on, TREASURY_DEADLINE_WORKING_DAYS)


@dataclass(frozen=True)
class Lateness:
    deadline: Deadline
    lateness: str  # on_time | late | not_due | unknown
    late: bool | None  # None: unknown
    working_days_late: int | None  # None: unknown
    note: str | None = None

    clause = TREASURY_DEADLINE_CLAUSE


def remittance_lateness(remitted_on: date, *, in_full: bool, last_receipt_on: date | None,
                        today: date) -> Lateness:
    """Whether the remittance reached the special account in full by the 10th working day after ``remitted_on``."""
    deadline = treasury_deadline(remitted_on)
    due = deadline.day
    if due is None:
        return Lateness(deadline, "unknown", None, None, deadline.note)
    reference = last_receipt_on if in_full else today
    if reference is None or reference <= due:
        return Lateness(deadline, "on_time" if in_full else "not_due", False, 0)
    count = working_days_after(due, reference)
    return Lateness(deadline, "late", True, count.count, count.note)
