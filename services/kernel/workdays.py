"""Chinese working days (工作日): the calendar every "within N working days" deadline is counted on.

A day is a working day unless the State Council's yearly arrangement (国务院办公厅关于某年部分节假日安排的通知) makes
it a holiday; a weekend day is a rest day unless the arrangement makes it a make-up working day (调休上班). The
arrangement for each year comes from

1. the **operator's calendar file** (setting ``workday_calendar_file``, ``SIFUND_WORKDAY_CALENDAR_FILE``), when it
   lists the year: the notice is published around November, long before a package release reaches production, so
   the operator transcribes it here; a year in the file replaces the package's year as a whole;
2. otherwise the ``chinesecalendar`` package (``import chinese_calendar``).

A year in neither is **unknown**: ``nth_working_day_after`` gives no day (``None`` with a Chinese note), and
``is_working_day`` raises ``YearNotCovered``. It is never guessed from weekdays: a make-up Saturday can make the true
deadline earlier than a weekday count, a holiday later, and a wrong deadline would mark a timely remittance or report
late (or a late one timely).

Counting: the start day itself is not counted; the n-th working day after it is the deadline (discovered on Tuesday
2026-09-29, before the National Day holiday, the 5th working day after is Monday 2026-10-12: 9-30, 10-8, 10-9, the
make-up Saturday 10-10, 10-12). ``working_days_after(deadline, day)`` counts the other way: how many working days
``day`` is past ``deadline`` (the same five from 2026-09-29 to 2026-10-12). How many days, and under which clause,
is each service's business rule.

Calendar file format (JSON, UTF-8; an example transcribing the 2026 notice: ``infra/calendar/example-2026.json``)::

    {
      "2027": {
        "source": "国务院办公厅关于2027年部分节假日安排的通知（国办发明电〔2026〕N号）",
        "holidays": ["2027-01-01", "2027-10-01/2027-10-07"],
        "workdays": ["2027-09-26"]
      }
    }

- one key per year (four digits), each with exactly ``source`` (the notice the dates were transcribed from, so any
  date can be traced; non-empty), ``holidays`` and ``workdays`` (lists; ``workdays`` may be empty);
- an entry is a day ``YYYY-MM-DD`` or an inclusive period ``YYYY-MM-DD/YYYY-MM-DD`` (ISO 8601), as the notice words
  it: "10月1日至7日放假调休" is ``"2027-10-01/2027-10-07"``, weekend days inside a holiday period included;
- ``holidays``: every day off of the notice's holiday periods; ``workdays``: the make-up working days ("…上班"), each a
  Saturday or a Sunday.

The file is validated when it is loaded; it is refused as a whole, with every bad entry named (``2027.holidays[3]``),
when: it is not a JSON object of years; a year key is not four digits; a year lacks or adds a key; ``source`` is
empty; an entry is not a day or a period, or a period ends before it starts; a day lies outside its year; a day is
listed twice; a day is both a holiday and a make-up working day; a make-up working day is not a weekend day; the
holidays do not include 1 January (元旦 is a holiday every year: without it the year is incomplete, and an incomplete
year would silently replace the package's). A year the package also knows and that differs from it is accepted (the
file wins) and logged with the differing days.

The file is read on first use and kept until it changes on disk (path, modification time and size), so an edited
file takes effect without a restart; a file that fails validation raises ``CalendarFileError`` at every use until it
is fixed (never a silent fallback to the package). Check a file before deploying it::

    python -m services.kernel.workdays path/to/calendar.json

Which settings: those given to ``configure`` (tests, or a process that builds its own ``Settings``), otherwise the
process's ``get_settings()`` (environment and ``.env``, as every service process started by ``sifund up``).
Deadlines already stored (e.g. an incident's ``due_on``) are what the calendar said when they were computed.
"""

import json
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import chinese_calendar
import structlog

from services.kernel.settings import Settings, get_settings

log = structlog.get_logger(__name__)

SATURDAY = 5  # date.weekday(): Monday 0 … Saturday 5, Sunday 6
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
YEAR_KEYS = frozenset({"source", "holidays", "workdays"})


class YearNotCovered(LookupError):
    """Neither the calendar file nor the package holds the holiday arrangement of ``year``."""

    def __init__(self, year: int):
        self.year = year
        self.note = (f"节假日安排数据不含 {year} 年（请按国务院办公厅当年部分节假日安排的通知补充工作日历文件"
                     f" SIFUND_WORKDAY_CALENDAR_FILE，或升级 chinesecalendar），暂无法计算工作日期限")
        super().__init__(self.note)


class CalendarFileError(ValueError):
    """The operator's calendar file cannot be used; the message names the file and every bad entry."""


@dataclass(frozen=True)
class WorkingDay:
    day: date | None  # None when the calendar does not cover the days needed
    note: str | None = None  # why ``day`` is None


@dataclass(frozen=True)
class WorkingDayCount:
    count: int | None  # None when the calendar does not cover the days counted
    note: str | None = None  # why ``count`` is None


@dataclass(frozen=True)
class YearArrangement:
    """One year of the State Council's arrangement: the days off and the make-up working days."""

    year: int
    source: str
    holidays: frozenset[date]
    workdays: frozenset[date]

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < SATURDAY and day not in self.holidays


# -- the calendar ----------------------------------------------------------------------------------------------------


class WorkdayCalendar:
    """The package's years, with the supplied years (``supplement``) replacing or extending them."""

    def __init__(self, supplement: Mapping[int, YearArrangement] | None = None):
        self.supplement = dict(supplement or {})
        self.nth_working_day_after = lru_cache(maxsize=8192)(self._nth_working_day_after)

    def is_working_day(self, day: date) -> bool:
        """Raises ``YearNotCovered`` for a year neither the supplement nor the package holds."""
        arrangement = self.supplement.get(day.year)
        if arrangement is not None:
            return arrangement.is_working_day(day)
        try:
            return chinese_calendar.is_workday(day)
        except NotImplementedError:
            raise YearNotCovered(day.year) from None

    def working_days_after(self, start: date, end: date) -> WorkingDayCount:
        """How many working days lie after ``start`` up to ``end`` inclusive (0 when ``end`` is not after
        ``start``); no count when a year in between is not covered."""
        current, counted = start, 0
        try:
            while current < end:
                current += timedelta(days=1)
                counted += self.is_working_day(current)
        except YearNotCovered as exc:
            return WorkingDayCount(None, exc.note)
        return WorkingDayCount(counted)

    def _nth_working_day_after(self, start: date, n: int) -> WorkingDay:
        """The ``n``-th working day after ``start`` (``start`` itself is not counted; ``n`` = 0 is ``start``)."""
        if n < 0:
            raise ValueError(f"n must not be negative, not {n}")
        current, counted = start, 0
        try:
            while counted < n:
                current += timedelta(days=1)
                counted += self.is_working_day(current)
        except YearNotCovered as exc:
            return WorkingDay(None, exc.note)
        return WorkingDay(current)


def package_year(year: int) -> YearArrangement | None:
    """The package's arrangement of ``year`` (None if it does not know the year)."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return None
    return YearArrangement(year, f"chinesecalendar {chinese_calendar.__version__}",
                           frozenset(d for d in chinese_calendar.holidays if d.year == year),
                           frozenset(d for d in chinese_calendar.workdays if d.year == year))


# -- the calendar file -----------------------------------------------------------------------------------------------


def parse_calendar(data: Any, origin: str = "calendar") -> dict[int, YearArrangement]:
    """Validate the decoded JSON of a calendar file; ``CalendarFileError`` lists every problem."""
    problems: list[str] = []
    years: dict[int, YearArrangement] = {}
    if not isinstance(data, dict):
        raise CalendarFileError(f"{origin}: expected a JSON object of years, e.g. {{\"2027\": {{…}}}}")
    for key, value in data.items():
        if not (isinstance(key, str) and len(key) == 4 and key.isascii() and key.isdigit()):
            problems.append(f"{key!r}: not a year (four digits)")
            continue
        arrangement = _parse_year(int(key), value, problems)
        if arrangement is not None:
            years[arrangement.year] = arrangement
    if problems:
        raise CalendarFileError(f"{origin}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    return years


def _parse_year(year: int, value: Any, problems: list[str]) -> YearArrangement | None:
    if not isinstance(value, dict):
        problems.append(f"{year}: expected an object with source, holidays, workdays")
        return None
    before = len(problems)
    if missing := sorted(YEAR_KEYS - value.keys()):
        problems.append(f"{year}: missing {', '.join(missing)}")
    if unknown := sorted(value.keys() - YEAR_KEYS):
        problems.append(f"{year}: unknown key(s) {', '.join(unknown)} (expected source, holidays, workdays)")
    source = value.get("source")
    if "source" in value and not (isinstance(source, str) and source.strip()):
        problems.append(f"{year}.source: the notice the dates were transcribed from (non-empty text)")
    holidays = _days(year, "holidays", value.get("holidays", []), problems)
    workdays = _days(year, "workdays", value.get("workdays", []), problems)
    for day in sorted(holidays.keys() & workdays.keys()):
        problems.append(f"{year}: {day} is both a holiday ({holidays[day]}) and a make-up working day "
                        f"({workdays[day]})")
    for day, where in sorted(workdays.items()):
        if day.weekday() < SATURDAY:
            problems.append(f"{where}: {day} is a {WEEKDAYS[day.weekday()]}, already a working day; a make-up working "
                            f"day (调休上班) is a Saturday or a Sunday")
    if "holidays" in value and date(year, 1, 1) not in holidays:
        problems.append(f"{year}.holidays: 1 January (元旦) is missing; a year in the file replaces the package's "
                        f"year as a whole, so it must list every holiday of the notice")
    if len(problems) > before:
        return None
    return YearArrangement(year, source.strip(), frozenset(holidays), frozenset(workdays))


def _days(year: int, field: str, entries: Any, problems: list[str]) -> dict[date, str]:
    """Each day of the entries → where it was listed (``2027.holidays[3]``)."""
    found: dict[date, str] = {}
    if not isinstance(entries, list):
        problems.append(f"{year}.{field}: expected a list of \"YYYY-MM-DD\" or \"YYYY-MM-DD/YYYY-MM-DD\"")
        return found
    for i, entry in enumerate(entries):
        where = f"{year}.{field}[{i}]"
        try:
            first, last = _period(entry)
        except ValueError:
            problems.append(f"{where} {entry!r}: not a day \"YYYY-MM-DD\" or a period \"YYYY-MM-DD/YYYY-MM-DD\"")
            continue
        if last < first:
            problems.append(f"{where} {entry!r}: the period ends before it starts")
            continue
        if first.year != year or last.year != year:
            problems.append(f"{where} {entry!r}: outside {year} (a day goes under its own calendar year)")
            continue
        for day in _each_day(first, last):
            if day in found:
                problems.append(f"{where}: {day} is already listed at {found[day]}")
            else:
                found[day] = where
    return found


def _period(entry: Any) -> tuple[date, date]:
    if not isinstance(entry, str):
        raise ValueError(entry)
    first, _, last = entry.strip().partition("/")
    if not _iso_day(first) or (last and not _iso_day(last)):
        raise ValueError(entry)
    return date.fromisoformat(first), date.fromisoformat(last or first)


def _iso_day(text: str) -> bool:
    """Strictly ``YYYY-MM-DD`` (``date.fromisoformat`` also takes ``20270101`` and week dates)."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-" or not text.replace("-", "").isdigit():
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _each_day(first: date, last: date) -> Iterator[date]:
    while first <= last:
        yield first
        first += timedelta(days=1)


def _log_differences(path: Path, years: Mapping[int, YearArrangement]) -> None:
    for year, arrangement in sorted(years.items()):
        known = package_year(year)
        if known is None:
            continue
        holidays = sorted(arrangement.holidays ^ known.holidays)
        workdays = sorted(arrangement.workdays ^ known.workdays)
        if holidays or workdays:
            log.warning("workday_calendar_overrides_package", file=str(path), year=year,
                        holidays_differing=[d.isoformat() for d in holidays],
                        workdays_differing=[d.isoformat() for d in workdays])


def read_calendar_file(path: Path) -> dict[int, YearArrangement]:
    """Read and validate a calendar file (no caching)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise CalendarFileError(f"{path}: cannot read the working-day calendar file ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise CalendarFileError(f"{path}: not UTF-8 text ({exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CalendarFileError(f"{path}: not JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from exc
    return parse_calendar(data, str(path))


_lock = threading.Lock()
_loaded: dict[Path, tuple[tuple[int, int], WorkdayCalendar]] = {}
_package_only = WorkdayCalendar()


def load_calendar(path: Path | None) -> WorkdayCalendar:
    """The calendar with the file at ``path`` supplementing the package (``None``: the package alone). Validated on
    first use and cached until the file changes on disk; a bad file raises ``CalendarFileError`` (not cached)."""
    if path is None:
        return _package_only
    resolved = Path(path).expanduser().resolve()
    try:
        stat = os.stat(resolved)
    except OSError as exc:
        raise CalendarFileError(f"{resolved}: cannot read the working-day calendar file "
                                f"(SIFUND_WORKDAY_CALENDAR_FILE): {exc.strerror or exc}") from exc
    version = (stat.st_mtime_ns, stat.st_size)
    cached = _loaded.get(resolved)
    if cached is not None and cached[0] == version:
        return cached[1]
    with _lock:
        cached = _loaded.get(resolved)
        if cached is not None and cached[0] == version:
            return cached[1]
        years = read_calendar_file(resolved)
        _log_differences(resolved, years)
        calendar = WorkdayCalendar(years)
        _loaded[resolved] = (version, calendar)
        log.info("workday_calendar_loaded", file=str(resolved), years=sorted(years))
        return calendar


def calendar_for(settings: Settings) -> WorkdayCalendar:
    return load_calendar(settings.workday_calendar_file)


# -- the process's calendar ------------------------------------------------------------------------------------------

_configured: Settings | None = None


def configure(settings: Settings | None) -> None:
    """Use ``settings``' calendar file from now on in this process (``None``: back to ``get_settings()``)."""
    global _configured
    _configured = settings


def current_calendar() -> WorkdayCalendar:
    return calendar_for(_configured or get_settings())


def is_working_day(day: date) -> bool:
    """Whether ``day`` is a Chinese working day; raises ``YearNotCovered`` for a year the calendar does not hold."""
    return current_calendar().is_working_day(day)


def nth_working_day_after(start: date, n: int) -> WorkingDay:
    """The ``n``-th Chinese working day after ``start`` (``start`` itself is not counted), or no day and a note
    why when a year it reaches is not covered."""
    return current_calendar().nth_working_day_after(start, n)


def working_days_after(start: date, end: date) -> WorkingDayCount:
    """The number of Chinese working days after ``start`` up to ``end`` inclusive (how many working days ``end`` is
    past a deadline ``start``), or no count and a note why when a year between them is not covered."""
    return current_calendar().working_days_after(start, end)


def main(argv: list[str]) -> int:
    """``python -m services.kernel.workdays FILE…``: validate calendar files, print what each year holds."""
    if not argv:
        print("usage: python -m services.kernel.workdays CALENDAR.json …", file=sys.stderr)
        return 2
    failed = False
    for name in argv:
        try:
            years = read_calendar_file(Path(name))
        except CalendarFileError as exc:
            print(exc, file=sys.stderr)
            failed = True
            continue
        for year, a in sorted(years.items()):
            known = package_year(year)
            compared = ("not in chinesecalendar" if known is None else
                        "same as chinesecalendar" if (known.holidays, known.workdays) == (a.holidays, a.workdays)
                        else "differs from chinesecalendar (the file wins)")
            print(f"{name}: {year}: {len(a.holidays)} holiday days, {len(a.workdays)} make-up working days; "
                  f"{compared}; source: {a.source}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
