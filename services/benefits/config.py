"""Month arithmetic of eligibility upkeep and recovery. Their figures (survival interval, notice and recovery
deadlines, offset window) are the ``benefits_upkeep`` section of the platform settings
(services/kernel/settings_sections.py, ``SIFUND_BENEFITS_*``)."""

from datetime import date


def months_before(day: date, months: int) -> date:
    """The same day ``months`` earlier, clamped to the month's end (29 Feb 2024 − 12 months → 28 Feb 2023)."""
    index = day.year * 12 + (day.month - 1) - months
    year, month = divmod(index, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")
