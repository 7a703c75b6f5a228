"""Who may settle an assessment line: one transaction at a time per line key (PostgreSQL).

Every writer of a line's settlement — a tax payment batch, a reviewer's resolve, a correction that supersedes an
assessment (its lines' paid figures carried over, the old lines closed) — first takes transaction-scoped advisory
locks, then reads the lines. Under READ COMMITTED each statement reads what was committed when it began, so the
second settler of a line reads it after the first committed: two batches cannot both settle one line.

Two levels, always taken in this order (periods, then lines, each set in one hash order: no deadlock):

- a **period** lock: exclusive for a settler that cannot name its lines' keys before reading them (a batch with
  employer-level payments: an employer's lines, any of its persons; a correction: the old assessment's lines), so it
  holds the whole period; shared for the others;
- a **line key** lock (period, person, fund: the lines a person-level payment may settle, whatever their employer),
  exclusive, under the period's shared lock (``lock_lines``).

So two tax batches of one period settle at once unless they pay the same person's fund (a 10 000-line batch holds
10 000 line keys: ``max_locks_per_transaction`` in infra/postgres/sifund.conf). Advisory locks rather than
``SELECT … FOR UPDATE`` of every open line, because a row lock is written into the row (a WAL record and a dirtied
page per line: 40 s and 404 MB of WAL for a 1 000 000-line month). SQLite needs nothing: its writer holds the whole
database (``BEGIN IMMEDIATE``).
"""

from collections.abc import Iterable

from sqlmodel import Session

from services.kernel.locks import lock_keys

NAMESPACE = "collection.assessment_line.settlement"
LINE_NAMESPACE = "collection.assessment_line.settlement.line"


def lock_periods(session: Session, periods: Iterable[int]) -> None:
    """Hold, until this transaction ends, the whole settlement of each of ``periods``: no other settler of their
    lines goes on meanwhile (no-op but on PostgreSQL)."""
    lock_keys(session, NAMESPACE, (str(period) for period in periods))


def lock_lines(session: Session, keys: Iterable[tuple[int, str, str]]) -> None:
    """Hold, until this transaction ends, the settlement of the lines of each (period, person id, fund) of ``keys``:
    their periods in share mode, then each key (no-op but on PostgreSQL: ``keys`` not even read)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = set(keys)
    lock_keys(session, NAMESPACE, {str(period) for period, _, _ in keys}, shared=True)
    lock_keys(session, LINE_NAMESPACE, (f"{period}:{person_id}:{fund}" for period, person_id, fund in keys))
