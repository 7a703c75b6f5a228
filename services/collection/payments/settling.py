"""Who may settle a period's assessment lines: one transaction at a time per period (PostgreSQL).

Every writer of a line's settlement — a tax payment batch, a reviewer's resolve, a correction that supersedes an
assessment (its lines' paid figures carried over, the old lines closed) — first takes the transaction-scoped advisory
lock of each period it touches, then reads the lines. Under READ COMMITTED each statement reads what was committed
when it began, so the second settler of a period reads the lines after the first committed: two batches cannot both
settle one line. One advisory lock per period, rather than ``SELECT … FOR UPDATE`` of every open line, because a
row lock is written into the row (a WAL record and a dirtied page per line: 40 s and 404 MB of WAL for a
1 000 000-line month). SQLite needs nothing: its writer holds the whole database (``BEGIN IMMEDIATE``).
"""

from collections.abc import Iterable

from sqlmodel import Session

from services.kernel.locks import lock_keys

NAMESPACE = "collection.assessment_line.settlement"


def lock_periods(session: Session, periods: Iterable[int]) -> None:
    """Hold, until this transaction ends, the settlement lock of each of ``periods`` (no-op but on PostgreSQL)."""
    lock_keys(session, NAMESPACE, (str(period) for period in periods))
