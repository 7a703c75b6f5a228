"""The month report as JSON: money as yuan strings with two places (ARCHITECTURE.md principle 4), one section per
check with its status counts and its cells (every cell of R1, R3, R4, R5, R6; R2's discrepancies only unless
``include_matched``: a city has tens of thousands of employer cells), and, for a closed month, the close and the
post-close adjustments."""

from typing import Any

from services.kernel.money import fen_to_yuan
from services.oversight.reconciliation.cells import CHECK_INFO, CHECKS, Cell
from services.oversight.reconciliation.service import Adjustment, MonthReport

# Checks whose matched cells are listed only on request (one per employer × fund: many).
DISCREPANCIES_ONLY = frozenset({"R2"})


def yuan(fen: int | None) -> str | None:
    return None if fen is None else f"{fen_to_yuan(int(fen))}"


def cell_json(cell: Cell) -> dict[str, Any]:
    body = {
        "check": cell.check, "key": cell.key, "status": cell.status, "fund": cell.fund, "period": cell.period,
        "amounts": {name: yuan(fen) for name, fen in cell.amounts.items()},
        "differences": {name: yuan(fen) for name, fen in cell.differences.items()},
        "difference": yuan(cell.difference_fen), "detail": cell.detail, "suspicion": cell.suspicion,
        "clause": cell.clause,
    }
    if cell.post_close is not None:
        body["post_close"] = post_close_json(cell.post_close)
    return body


def _state_json(state: dict[str, Any] | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {"status": state["status"], "amounts": {n: yuan(f) for n, f in state["amounts"].items()}}


def post_close_json(post_close: dict[str, Any]) -> dict[str, Any]:
    return {"snapshot": _state_json(post_close["snapshot"]), "now": _state_json(post_close["now"]),
            "delta": {n: yuan(f) for n, f in post_close["delta"].items()}, "changed": post_close["changed"]}


def adjustment_json(adjustment: Adjustment) -> dict[str, Any]:
    return {"check": adjustment.check, "key": adjustment.key, **post_close_json(adjustment.as_post_close())}


def report_json(report: MonthReport, *, include_matched: bool = False) -> dict[str, Any]:
    checks = []
    for check in CHECKS:
        info = CHECK_INFO[check]
        listed_all = include_matched or check not in DISCREPANCIES_ONLY
        cells = report.cells[check] if listed_all else [c for c in report.cells[check] if not c.matched]
        checks.append({
            "check": check, "title": info.title, "granularity": info.granularity, "rule": info.rule,
            "clause": info.clause, "summary": report.summary(check),
            "listed": "all" if listed_all else "discrepancies", "cells": [cell_json(c) for c in cells],
        })
    close = report.close
    return {
        "month": report.month,
        "as_of": report.as_of,
        "generated_at": report.generated_at,
        "figures": "snapshot" if close else "live",
        "closed": None if close is None else {
            "closed_at": close.closed_at, "closed_by": close.closed_by, "closed_role": close.closed_role,
            "as_of": close.as_of, "cells": close.cells, "unmatched": close.unmatched, "note": close.note},
        "unmatched": sum(1 for check in CHECKS for c in report.cells[check] if not c.matched),
        "checks": checks,
        "post_close_adjustments": [adjustment_json(a) for a in report.adjustments],
    }
