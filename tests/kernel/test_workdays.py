"""The kernel's Chinese working-day calendar: the package's years, the operator's calendar file for the years the
package does not know (a synthetic 2031 here: no official arrangement beyond 2026 is at hand), unknown years never
guessed, bad files refused naming every bad entry, and the three deadlines built on it (treasury, R3, incidents)."""

import json
import os
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar
import pytest

from services.collection.treasury.workdays import treasury_deadline
from services.kernel import workdays
from services.kernel.settings import Settings, activate, get_settings
from services.kernel.workdays import (CalendarFileError, WorkingDay, YearNotCovered, load_calendar, package_year,
                                      parse_calendar)
from services.oversight.incidents.deadlines import working_day_deadline
from services.oversight.ledger.workdays import remittance_deadline

pytestmark = pytest.mark.unit  # pure: no NATS, no app, no database (make test-unit)

EXAMPLE = Path(__file__).resolve().parents[2] / "infra" / "calendar" / "example-2026.json"

# A synthetic year (not an official arrangement): New Year's Day, a National Day week 10-01 … 10-07 with the make-up
# Sunday 09-28 and Saturday 10-11.
YEAR_2031 = {"source": "测试用虚构安排（非官方）",
             "holidays": ["2031-01-01", "2031-10-01/2031-10-07"],
             "workdays": ["2031-09-28", "2031-10-11"]}


@pytest.fixture(autouse=True)
def process_calendar():
    yield
    workdays.configure(None)


def write(path: Path, data) -> Path:  # noqa: ANN001
    path.write_text(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def calendar_file(tmp_path: Path) -> Path:
    return write(tmp_path / "calendar.json", {"2031": YEAR_2031})


def package_nth(day: date, n: int) -> date:
    while n:
        day += timedelta(days=1)
        n -= chinese_calendar.is_workday(day)
    return day


# -- the package's years ---------------------------------------------------------------------------------------------


def test_known_2026_days_follow_the_state_council_arrangement():
    workdays.configure(Settings(workday_calendar_file=None))
    # Tuesday before National Day: 9-30, 10-8, 10-9, 10-10 (the make-up Saturday), 10-12
    assert workdays.nth_working_day_after(date(2026, 9, 29), 5) == WorkingDay(date(2026, 10, 12))
    assert package_nth(date(2026, 9, 29), 5) == date(2026, 10, 12)
    assert workdays.nth_working_day_after(date(2026, 9, 30), 10).day == package_nth(date(2026, 9, 30), 10)
    assert workdays.nth_working_day_after(date(2026, 11, 2), 5).day == date(2026, 11, 9)  # an ordinary week
    # The start day is not counted, even when it is itself a working day (the make-up Saturday).
    assert workdays.nth_working_day_after(date(2026, 10, 10), 1).day == date(2026, 10, 12)
    assert workdays.nth_working_day_after(date(2026, 10, 10), 0).day == date(2026, 10, 10)
    assert workdays.is_working_day(date(2026, 10, 10))  # Saturday, 调休上班
    assert not workdays.is_working_day(date(2026, 10, 5))  # Monday, holiday
    assert not workdays.is_working_day(date(2026, 10, 3))  # Saturday inside the holiday
    assert not workdays.is_working_day(date(2026, 11, 7)) and workdays.is_working_day(date(2026, 11, 6))
    with pytest.raises(ValueError):
        workdays.nth_working_day_after(date(2026, 10, 10), -1)


def test_a_year_neither_the_package_nor_a_file_holds_is_unknown_never_guessed():
    workdays.configure(Settings(workday_calendar_file=None))
    unknown = workdays.nth_working_day_after(date(2031, 3, 3), 5)
    assert unknown.day is None and "2031" in unknown.note and "SIFUND_WORKDAY_CALENDAR_FILE" in unknown.note
    assert len(unknown.note) <= 200  # stored as an incident's due_note
    with pytest.raises(YearNotCovered) as raised:
        workdays.is_working_day(date(2031, 3, 3))
    assert raised.value.year == 2031 and raised.value.note == unknown.note
    # The three deadlines say the same.
    assert treasury_deadline(date(2031, 3, 3)) == unknown
    assert remittance_deadline(date(2031, 3, 3)) is None
    assert working_day_deadline(date(2031, 3, 3)) == (None, unknown.note)


def test_working_days_after_a_deadline_are_counted_on_the_same_calendar(calendar_file: Path):
    """How many working days a day is past a deadline (the treasury remittance's lateness)."""
    workdays.configure(Settings(workday_calendar_file=None))
    assert workdays.working_days_after(date(2026, 9, 29), date(2026, 10, 12)).count == 5  # holiday, make-up Sat
    assert workdays.working_days_after(date(2026, 9, 29), date(2026, 9, 29)).count == 0
    assert workdays.working_days_after(date(2026, 9, 29), date(2026, 9, 1)).count == 0
    assert workdays.working_days_after(date(2026, 11, 6), date(2026, 11, 8)).count == 0  # a weekend
    unknown = workdays.working_days_after(date(2026, 12, 30), date(2031, 1, 6))
    assert unknown.count is None and "SIFUND_WORKDAY_CALENDAR_FILE" in unknown.note
    workdays.configure(Settings(workday_calendar_file=calendar_file))
    assert workdays.working_days_after(date(2031, 9, 30), date(2031, 10, 13)).count == 5
    beyond = workdays.working_days_after(date(2031, 12, 24), date(2032, 1, 5))
    assert beyond.count is None and "2032" in beyond.note


# -- the operator's calendar file ------------------------------------------------------------------------------------


def test_a_year_supplied_by_the_file_is_computed(calendar_file: Path):
    workdays.configure(Settings(workday_calendar_file=calendar_file))
    # Tuesday before the (synthetic) National Day: 10-8, 10-9, 10-10, 10-11 (make-up Saturday), 10-13; a weekday
    # count would say 10-7.
    assert workdays.nth_working_day_after(date(2031, 9, 30), 5) == WorkingDay(date(2031, 10, 13))
    assert workdays.is_working_day(date(2031, 9, 28)) and not workdays.is_working_day(date(2031, 10, 6))
    assert not workdays.is_working_day(date(2031, 1, 1)) and workdays.is_working_day(date(2031, 1, 2))
    # The services' deadlines: treasury and R3 count 10 days, a major incident 5.
    # 2031-09-26 (Fri): 9-28 (Sun, make-up), 9-29, 9-30, 10-8, 10-9, 10-10, 10-11 (Sat, make-up), 10-13, 10-14, 10-15
    assert treasury_deadline(date(2031, 9, 26)) == WorkingDay(date(2031, 10, 15))
    assert remittance_deadline(date(2031, 9, 26)) == date(2031, 10, 15)
    assert working_day_deadline(date(2031, 9, 30)) == (date(2031, 10, 13), None)
    # The package's years are still there, and a deadline reaching a year in neither is unknown.
    assert workdays.nth_working_day_after(date(2026, 9, 29), 5).day == date(2026, 10, 12)
    beyond = workdays.nth_working_day_after(date(2031, 12, 24), 10)  # 5 working days left in 2031
    assert beyond.day is None and "2032" in beyond.note


def test_the_process_settings_are_read_when_nothing_is_configured(calendar_file: Path, monkeypatch):
    monkeypatch.setenv("SIFUND_WORKDAY_CALENDAR_FILE", str(calendar_file))
    previous = get_settings()
    activate(Settings())  # the process's settings, read from the environment as a service process does at start
    try:
        assert working_day_deadline(date(2031, 9, 30)) == (date(2031, 10, 13), None)
    finally:
        activate(previous)


def test_a_year_in_the_file_replaces_the_package_year(tmp_path: Path):
    example = load_calendar(EXAMPLE)
    # The shipped template transcribes the 2026 notice: identical to the package's 2026.
    assert example.supplement[2026].holidays == package_year(2026).holidays
    assert example.supplement[2026].workdays == package_year(2026).workdays
    # A file that says otherwise wins (here: 10-10 not a make-up day any more).
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["2026"]["workdays"].remove("2026-10-10")
    changed = load_calendar(write(tmp_path / "2026.json", data))
    assert not changed.is_working_day(date(2026, 10, 10))
    assert changed.nth_working_day_after(date(2026, 9, 29), 5).day == date(2026, 10, 13)


def test_the_file_is_cached_until_it_changes_and_a_bad_version_is_refused_until_fixed(tmp_path: Path):
    path = write(tmp_path / "calendar.json", {"2031": YEAR_2031})
    first = load_calendar(path)
    assert load_calendar(path) is first
    changed = {"2031": {**YEAR_2031, "workdays": ["2031-09-28"]}}  # no make-up Saturday 10-11 any more
    write(path, changed)
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)
    second = load_calendar(path)
    assert second is not first and not second.is_working_day(date(2031, 10, 11))
    write(path, {"2031": {**YEAR_2031, "workdays": ["2031-10-10"]}})
    os.utime(path, ns=(path.stat().st_mtime_ns + 2 * 10**9,) * 2)
    with pytest.raises(CalendarFileError, match="2031-10-10"):
        load_calendar(path)
    with pytest.raises(CalendarFileError):  # not cached: refused again, not silently the older version
        load_calendar(path)
    write(path, changed)
    os.utime(path, ns=(path.stat().st_mtime_ns + 3 * 10**9,) * 2)
    assert not load_calendar(path).is_working_day(date(2031, 10, 11))


def year(**changes) -> dict:
    return {"2031": {**YEAR_2031, **changes}}


@pytest.mark.parametrize(("data", "message"), [
    ([], "expected a JSON object of years"),
    ({"31": YEAR_2031}, "'31': not a year"),
    ({"2031": ["2031-01-01"]}, "2031: expected an object"),
    ({"2031": {"holidays": ["2031-01-01"], "workdays": []}}, "2031: missing source"),
    (year(workday=[]), "unknown key(s) workday"),
    (year(source=" "), "2031.source: the notice"),
    (year(holidays="2031-01-01"), "2031.holidays: expected a list"),
    (year(holidays=["2031-01-01", "2030-12-31"]), "2031.holidays[1] '2030-12-31': outside 2031"),
    (year(holidays=["2031-01-01", "2031-12-31/2032-01-02"]), "2031.holidays[1] '2031-12-31/2032-01-02': outside"),
    (year(holidays=["2031-01-01", "2031-02-30"]), "2031.holidays[1] '2031-02-30': not a day"),
    (year(holidays=["2031-01-01", "20310201"]), "2031.holidays[1] '20310201': not a day"),
    (year(holidays=["2031-01-01", 20310201]), "2031.holidays[1] 20310201: not a day"),
    (year(holidays=["2031-01-01", "2031-10-07/2031-10-01"]), "ends before it starts"),
    (year(holidays=["2031-01-01", "2031-10-01/2031-10-07", "2031-10-03"]),
     "2031.holidays[2]: 2031-10-03 is already listed at 2031.holidays[1]"),
    (year(workdays=["2031-09-28", "2031-10-04"]),
     "2031: 2031-10-04 is both a holiday (2031.holidays[1]) and a make-up working day (2031.workdays[1])"),
    (year(workdays=["2031-10-10"]), "2031.workdays[0]: 2031-10-10 is a Friday, already a working day"),
    (year(holidays=["2031-10-01/2031-10-07"]), "2031.holidays: 1 January (元旦) is missing"),
])
def test_bad_files_are_refused_naming_the_bad_entry(tmp_path: Path, data, message: str):  # noqa: ANN001
    path = write(tmp_path / "bad.json", data)
    with pytest.raises(CalendarFileError) as raised:
        load_calendar(path)
    assert message in str(raised.value) and str(path) in str(raised.value)


def test_every_problem_of_a_file_is_listed_at_once():
    with pytest.raises(CalendarFileError) as raised:
        parse_calendar({"2031": year(workdays=["2031-10-10", "2031-10-04"])["2031"], "2032": {"source": "x"}})
    text = str(raised.value)
    assert "3 problem(s)" in text
    assert "2031-10-10 is a Friday" in text and "2031-10-04 is both" in text
    assert "2032: missing holidays, workdays" in text


def test_unreadable_files_are_refused_with_the_path(tmp_path: Path):
    with pytest.raises(CalendarFileError, match="cannot read"):
        load_calendar(tmp_path / "missing.json")
    with pytest.raises(CalendarFileError, match=r"not JSON \(line 1"):
        load_calendar(write(tmp_path / "broken.json", '{"2031": '))
    # At use: a configured file that is bad makes the deadline fail loudly, not fall back to the package.
    workdays.configure(Settings(workday_calendar_file=tmp_path / "missing.json"))
    with pytest.raises(CalendarFileError, match="missing.json"):
        workdays.nth_working_day_after(date(2026, 9, 29), 5)


def test_the_checker_validates_and_compares_with_the_package(tmp_path: Path, calendar_file: Path, capsys):
    assert workdays.main([str(EXAMPLE), str(calendar_file)]) == 0
    out = capsys.readouterr().out
    assert "2026: 33 holiday days, 6 make-up working days; same as chinesecalendar" in out
    assert "2031: 8 holiday days, 2 make-up working days; not in chinesecalendar" in out
    assert workdays.main([str(write(tmp_path / "bad.json", year(workdays=["2031-10-10"])))]) == 1
    assert "2031-10-10 is a Friday" in capsys.readouterr().err
