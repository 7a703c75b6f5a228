"""The platform's one clock: every "now" and "today" in services, gateway and CLI reads it.

China has kept UTC+8 without daylight saving since 1991, so a fixed offset is exact for every date the funds
deal with. Tests (and an operator rehearsing a year end) can shift the clock with ``SIFUND_TEST_CLOCK``, an ISO
instant: the clock then reads that instant plus the real time elapsed since the process first read it.
"""

import os
from datetime import UTC, date, datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")

_offset: timedelta | None = None


def _shift() -> timedelta:
    global _offset
    if _offset is None:
        pinned = os.environ.get("SIFUND_TEST_CLOCK")
        if pinned:
            instant = datetime.fromisoformat(pinned)
            if instant.tzinfo is None:
                instant = instant.replace(tzinfo=CHINA)
            _offset = instant - datetime.now(UTC)
        else:
            _offset = timedelta(0)
    return _offset


def utc_now() -> datetime:
    """The current instant, timezone-aware UTC (what tables and events store)."""
    return datetime.now(UTC) + _shift()


def china_now() -> datetime:
    """The current instant on the wall clock in China."""
    return utc_now().astimezone(CHINA)


def china_today() -> date:
    """Today's date in China: the day deadlines, periods and month ends are judged on."""
    return china_now().date()
