"""Reconciliation reports, month close (月结) and the suspicion engine's view of the cells.

- ``month_report``: the cells of a month, check by check. For an open month they are computed now from the ledger.
  For a closed month they are the snapshot frozen at the close, and every cell that events (or, for R3, the passing
  of a deadline) changed since is listed as a **post-close adjustment** (snapshot vs now, with the delta): the
  closed figures are never silently replaced.
- ``close_month``: an oversight officer freezes a month that is over: every cell is stored as it stands (R3 judged
  as of the day of the close); closing twice is refused (409 ``MONTH_ALREADY_CLOSED``), and so is a month that has
  not ended yet (422 ``MONTH_NOT_OVER``). The close is an audit entry.
- ``unmatched_cells``: every non-matched cell of a month as it stands now, for the suspicion engine (S15, S12, S13,
  S14, S16); in a closed month a cell that changed since the close carries ``post_close``.
"""

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.kernel import clock, context
from services.kernel.audit import append_audit
from services.kernel.errors import Conflict, Invalid
from services.kernel.periods import period_of
from services.oversight.reconciliation.cells import CHECKS, STATUSES, Cell, cell_key, compute_cells
from services.oversight.reconciliation.models import ReconciliationClose, ReconciliationSnapshotCell

ENTITY = "reconciliation_month"
SNAPSHOT_CHUNK = 2000


def consistent_view(session: Session) -> None:
    """Read every cell of a month from one snapshot of the ledger. On PostgreSQL (READ COMMITTED by default) each
    statement would see the ledger as of its own start, and an event committed between the R1 and the R3 query
    would show in one check and not the other; REPEATABLE READ gives the whole report one snapshot. (SQLite: every
    transaction begins IMMEDIATE, which already excludes writers.) Must come before the transaction's first query."""
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    """Cell keys and details hold str, int, bool, None and dates: dates become ISO strings for the JSON column."""
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in value.items()}


# -- snapshots -------------------------------------------------------------------------------------------------------


def _snapshot_row(cell: Cell, seq: int) -> dict[str, Any]:
    return {"month": cell.month, "check_id": cell.check, "seq": seq, "cell_key": cell.cell_key,
            "key": _jsonable(cell.key), "status": cell.status, "fund": cell.fund, "period": cell.period,
            "amounts": cell.amounts, "differences": cell.differences, "difference_fen": cell.difference_fen,
            "detail": _jsonable(cell.detail), "suspicion": cell.suspicion, "clause": cell.clause}


_SNAPSHOT_COLUMNS = (ReconciliationSnapshotCell.check_id, ReconciliationSnapshotCell.key,
                     ReconciliationSnapshotCell.status, ReconciliationSnapshotCell.month,
                     ReconciliationSnapshotCell.fund, ReconciliationSnapshotCell.period,
                     ReconciliationSnapshotCell.amounts, ReconciliationSnapshotCell.differences,
                     ReconciliationSnapshotCell.difference_fen, ReconciliationSnapshotCell.detail,
                     ReconciliationSnapshotCell.suspicion, ReconciliationSnapshotCell.clause)


def snapshot_cells(session: Session, month: int) -> dict[str, list[Cell]]:
    """The cells frozen at the close, in the order they were computed (plain rows: no ORM objects per cell)."""
    cells: dict[str, list[Cell]] = {check: [] for check in CHECKS}
    rows = session.execute(select(*_SNAPSHOT_COLUMNS).where(ReconciliationSnapshotCell.month == month)
                           .order_by(ReconciliationSnapshotCell.check_id, ReconciliationSnapshotCell.seq))
    for check, key, status, month_, fund, period, amounts, differences, difference, detail, suspicion, clause in rows:
        cells[check].append(Cell(check=check, key=key, status=status, month=month_, fund=fund, period=period,
                                 amounts=amounts, differences=differences, difference_fen=difference, detail=detail,
                                 suspicion=suspicion, clause=clause))
    return cells


def get_close(session: Session, month: int) -> ReconciliationClose | None:
    return session.get(ReconciliationClose, month)


# -- adjustments after the close -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Adjustment:
    check: str
    key: dict[str, Any]
    snapshot: Cell | None  # None: a cell that did not exist at the close
    now: Cell | None  # None: a cell that no longer exists
    changed: list[str]

    @property
    def delta(self) -> dict[str, int]:
        before = self.snapshot.amounts if self.snapshot else {}
        after = self.now.amounts if self.now else {}
        return {name: after.get(name, 0) - before.get(name, 0) for name in {**before, **after}
                if after.get(name, 0) != before.get(name, 0)}

    def as_post_close(self) -> dict[str, Any]:
        return {"snapshot": _state(self.snapshot), "now": _state(self.now), "delta": self.delta,
                "changed": self.changed}


def _state(cell: Cell | None) -> dict[str, Any] | None:
    return None if cell is None else {"status": cell.status, "amounts": dict(cell.amounts)}


def _amounts_differ(before: dict[str, int], after: dict[str, int]) -> bool:
    """An amount missing on one side is zero: a snapshot taken before a check gained a figure (R5's held back and
    offset) is not an adjustment for that reason alone."""
    return any(before.get(name, 0) != after.get(name, 0) for name in {**before, **after})


def adjustments(snapshot: dict[str, list[Cell]], live: dict[str, list[Cell]]) -> list[Adjustment]:
    """Cells whose status or amounts differ between the snapshot and now, in check order."""
    found = []
    for check in CHECKS:
        before = {c.cell_key: c for c in snapshot.get(check, [])}
        after = {c.cell_key: c for c in live.get(check, [])}
        for key in [*before, *(k for k in after if k not in before)]:
            old, new = before.get(key), after.get(key)
            changed = []
            if (old.status if old else None) != (new.status if new else None):
                changed.append("status")
            if _amounts_differ(old.amounts if old else {}, new.amounts if new else {}):
                changed.append("amounts")
            if changed:
                found.append(Adjustment(check, (old or new).key, old, new, changed))  # type: ignore[union-attr]
    return found


# -- reports ---------------------------------------------------------------------------------------------------------


@dataclass
class MonthReport:
    month: int
    as_of: date
    generated_at: datetime
    close: ReconciliationClose | None
    cells: dict[str, list[Cell]]  # the snapshot's when the month is closed
    adjustments: list[Adjustment] = field(default_factory=list)

    def summary(self, check: str) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for cell in self.cells[check]:
            counts[cell.status] += 1
        return {"cells": len(self.cells[check]), **counts}


def month_report(session: Session, month: int, *, as_of: date | None = None) -> MonthReport:
    consistent_view(session)
    as_of = as_of or clock.china_today()
    live = compute_cells(session, month, as_of=as_of)
    close = get_close(session, month)
    if close is None:
        return MonthReport(month, as_of, clock.utc_now(), None, live)
    frozen = snapshot_cells(session, month)
    return MonthReport(month, as_of, clock.utc_now(), close, frozen, adjustments(frozen, live))


def unmatched_cells(session: Session, month: int, *, as_of: date | None = None) -> list[Cell]:
    """Every cell of ``month`` that is not matched, as it stands now (R3 as of ``as_of``, default today in China),
    in check order. When the month is closed, a cell that changed since the close carries ``post_close``."""
    consistent_view(session)
    as_of = as_of or clock.china_today()
    live = compute_cells(session, month, as_of=as_of)
    changed: dict[tuple[str, str], Adjustment] = {}
    if get_close(session, month) is not None:
        changed = {(a.check, cell_key(a.key)): a for a in adjustments(snapshot_cells(session, month), live)}
    found = []
    for check in CHECKS:
        for cell in live[check]:
            if cell.matched:
                continue
            adjustment = changed.get((check, cell.cell_key))
            found.append(replace(cell, post_close=adjustment.as_post_close()) if adjustment else cell)
    return found


# -- month close -----------------------------------------------------------------------------------------------------


def close_month(session: Session, month: int, *, note: str | None = None) -> ReconciliationClose:
    consistent_view(session)
    today = clock.china_today()
    if month >= period_of(today):
        raise Invalid("MONTH_NOT_OVER", f"{month} 月尚未结束，不能月结")
    if get_close(session, month) is not None:
        raise Conflict("MONTH_ALREADY_CLOSED", f"{month} 月已月结")
    cells = compute_cells(session, month, as_of=today)
    rows = [_snapshot_row(cell, seq) for check in CHECKS for seq, cell in enumerate(cells[check])]
    unmatched = sum(1 for check in CHECKS for cell in cells[check] if not cell.matched)
    actor = context.current().actor
    close = ReconciliationClose(month=month, closed_at=clock.utc_now(), closed_by=actor.id,
                                closed_role=actor.role, as_of=today, cells=len(rows), unmatched=unmatched,
                                note=note.strip() if note and note.strip() else None)
    counts = {check: dict(Counter(c.status for c in cells[check])) for check in CHECKS}
    try:
        session.add(close)
        session.flush()  # a concurrent close of the same month fails here (primary key)
        for start in range(0, len(rows), SNAPSHOT_CHUNK):
            session.execute(insert(ReconciliationSnapshotCell.__table__), rows[start:start + SNAPSHOT_CHUNK])
    except IntegrityError:
        session.rollback()
        raise Conflict("MONTH_ALREADY_CLOSED", f"{month} 月已月结") from None
    append_audit(session, action="reconciliation.month_closed", entity_type=ENTITY, entity_id=str(month),
                 detail={"month": month, "as_of": today, "cells": len(rows), "unmatched": unmatched,
                         "statuses": counts}, reason=close.note)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("MONTH_ALREADY_CLOSED", f"{month} 月已月结") from None
    return close
