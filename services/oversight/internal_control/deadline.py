"""When the internal-control yearly report of a year is due, and whether a report met it.

001 第二十四条: 每年12月底前 ... 将总结报告报送至人社部门监督机构. A report is handed to the supervisor on a working day,
so the year's report is due on the last Chinese working day of its December (services/kernel/workdays.py: 31
December 2026 is a Thursday, a working day; when the 31st falls on a weekend or a holiday, the working day before
it). For a year the calendar does not hold, the due day is unknown — never guessed from weekdays — and so is
whether a report was on time."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.kernel.clock import CHINA
from services.kernel.workdays import YearNotCovered, is_working_day

SUBMITTED, LATE, MISSING, UNKNOWN = "submitted", "late", "missing", "unknown"


@dataclass(frozen=True)
class Due:
    day: date | None
    note: str | None


def due_of(year: int) -> Due:
    day = date(year, 12, 31)
    try:
        while not is_working_day(day):
            day -= timedelta(days=1)
    except YearNotCovered as unknown:
        return Due(None, unknown.note)
    return Due(day, None)


def status_of(due: Due, submitted_at: datetime | None, today: date) -> tuple[str, bool]:
    """(submitted | late | missing | unknown, overdue): ``unknown`` when the due day is unknown; ``overdue`` when
    nothing was submitted and the due day has passed."""
    if due.day is None:
        return UNKNOWN, False
    if submitted_at is None:
        return MISSING, today > due.day
    return (LATE if submitted_at.astimezone(CHINA).date() > due.day else SUBMITTED), False
