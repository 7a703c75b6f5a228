"""The platform's one clock: every "now" and "today" in services, gateway and CLI reads it.

China has kept UTC+8 without daylight saving since 1991, so a fixed offset is exact for every date the funds
deal with.

Tests (and an operator rehearsing a year end) shift the clock with ``SIFUND_TEST_CLOCK``, an ISO instant (China
time when it names no zone). The clock keeps running from there: it reads the pinned instant plus the real time
elapsed since ``SIFUND_TEST_CLOCK_ANCHORED_AT``, the real UTC instant at which the pin held. The offset between
the two is fixed, so every process that inherits both variables reads the same time: the test session (or
``sifund up``) calls :func:`anchor` once before starting any subprocess; a process that finds only
``SIFUND_TEST_CLOCK`` anchors it at its first reading and exports the anchor to the processes it starts later.
"""

import os
from datetime import UTC, date, datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")

PIN = "SIFUND_TEST_CLOCK"
ANCHORED_AT = "SIFUND_TEST_CLOCK_ANCHORED_AT"

_offset: timedelta | None = None


def _instant(text: str, variable: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{variable}={text!r} is not an ISO instant (e.g. 2026-12-31T16:00:00+08:00)") from None
    return value if value.tzinfo else value.replace(tzinfo=CHINA)


def anchor() -> timedelta:
    """Fix this process's offset from real time and export it, so that subprocesses started from now on agree."""
    global _offset
    if _offset is None:
        pinned = os.environ.get(PIN)
        if not pinned:
            _offset = timedelta(0)
        else:
            anchored = os.environ.get(ANCHORED_AT)
            if anchored:
                real = _instant(anchored, ANCHORED_AT)
            else:
                real = datetime.now(UTC)
                os.environ[ANCHORED_AT] = real.isoformat()
            _offset = _instant(pinned, PIN) - real
    return _offset


def utc_now() -> datetime:
    """The current instant, timezone-aware UTC (what tables and events store)."""
    return datetime.now(UTC) + anchor()


def china_now() -> datetime:
    """The current instant on the wall clock in China."""
    return utc_now().astimezone(CHINA)


def china_today() -> date:
    """Today's date in China: the day deadlines, periods and month ends are judged on."""
    return china_now().date()
