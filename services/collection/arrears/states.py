"""An assessment line's settlement state, rebuilt from its ``LateFeeCharge`` rows (shared by payments and arrears).

A correction (``supersede``) issues a new line for the same person and fund and carries what was paid on the old
one. The old line's charges are part of the new line's history: the principal they paid, the fee they accrued and
paid, and the last day they charged. So the state of a line sums the charges of the line **and of its predecessors**
(the lines of the same person and fund in the assessments it supersedes, transitively).
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from services.collection.arrears.latefee import LineState
from services.collection.models import Assessment, AssessmentLine, LateFeeCharge, TaxPayment

CHUNK = 5_000  # ids per IN query (SQLite allows 32 766 parameters, PostgreSQL 65 535)


@dataclass(frozen=True)
class ChargeTotals:
    principal_paid_fen: int = 0
    fee_accrued_fen: int = 0
    fee_paid_fen: int = 0
    last_paid_date: date | None = None

    def __add__(self, other: "ChargeTotals") -> "ChargeTotals":
        dates = [d for d in (self.last_paid_date, other.last_paid_date) if d is not None]
        return ChargeTotals(self.principal_paid_fen + other.principal_paid_fen,
                            self.fee_accrued_fen + other.fee_accrued_fen, self.fee_paid_fen + other.fee_paid_fen,
                            max(dates) if dates else None)


def chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _as_date(value: Any) -> date | None:
    if isinstance(value, str):  # SQLite's max() over a DATE column answers text
        return date.fromisoformat(value[:10])
    return value


def predecessors(session: Session, rows: list[Any]) -> dict[str, list[str]]:
    """line id → ids of the lines it replaces (same person and fund in the superseded assessments, transitively).
    ``rows`` carry ``id``, ``assessment_id``, ``person_id`` and ``fund``. One query per level of correction."""
    chain: dict[str, list[str]] = {}  # assessment id → the assessments it supersedes, nearest first
    pending = sorted({r.assessment_id for r in rows})
    parent: dict[str, str] = {}
    while pending:
        found: dict[str, str] = {}
        for part in chunks(pending):
            found.update(dict(session.execute(
                select(Assessment.id, Assessment.supersedes_id)
                .where(Assessment.id.in_(part), Assessment.supersedes_id.is_not(None))
            ).all()))
        parent.update(found)
        pending = sorted({p for p in found.values() if p not in parent})
    if not parent:
        return {}
    for assessment_id in {r.assessment_id for r in rows}:
        ancestors, current = [], parent.get(assessment_id)
        while current is not None and current not in ancestors:
            ancestors.append(current)
            current = parent.get(current)
        if ancestors:
            chain[assessment_id] = ancestors
    old_assessments = sorted({a for ancestors in chain.values() for a in ancestors})
    persons = sorted({r.person_id for r in rows if r.assessment_id in chain})
    old_lines: dict[tuple[str, str, str], str] = {}
    for part in chunks(old_assessments, 500):
        for person_part in chunks(persons, 4_000):
            for line_id, assessment_id, person_id, fund in session.execute(
                select(AssessmentLine.id, AssessmentLine.assessment_id, AssessmentLine.person_id, AssessmentLine.fund)
                .where(AssessmentLine.assessment_id.in_(part), AssessmentLine.person_id.in_(person_part))
            ).all():
                old_lines[(assessment_id, person_id, fund)] = line_id
    out: dict[str, list[str]] = {}
    for r in rows:
        ids = [old_lines[(a, r.person_id, r.fund)] for a in chain.get(r.assessment_id, [])
               if (a, r.person_id, r.fund) in old_lines]
        if ids:
            out[r.id] = ids
    return out


def charge_totals(session: Session, line_ids: Iterable[str], *, through: date | None = None,
                  history: dict[str, list[str]] | None = None) -> dict[str, ChargeTotals]:
    """Per line: what its charges (and, with ``history``, its predecessors' charges) paid and accrued; only payments
    paid on or before ``through`` when given."""
    history = history or {}
    owner: dict[str, str] = {}
    for line_id in line_ids:
        owner[line_id] = line_id
        for old in history.get(line_id, []):
            owner.setdefault(old, line_id)
    out: dict[str, ChargeTotals] = defaultdict(ChargeTotals)
    for part in chunks(sorted(owner)):
        query = (
            select(LateFeeCharge.assessment_line_id, func.sum(LateFeeCharge.principal_paid_fen),
                   func.sum(LateFeeCharge.fee_accrued_fen), func.sum(LateFeeCharge.fee_paid_fen),
                   func.max(TaxPayment.paid_date))
            .join(TaxPayment, TaxPayment.id == LateFeeCharge.tax_payment_id)
            .where(LateFeeCharge.assessment_line_id.in_(part))
            .group_by(LateFeeCharge.assessment_line_id)
        )
        if through is not None:
            query = query.where(TaxPayment.paid_date <= through)
        for line_id, principal, accrued, paid, last in session.execute(query).all():
            out[owner[line_id]] += ChargeTotals(int(principal or 0), int(accrued or 0), int(paid or 0), _as_date(last))
    return dict(out)


def line_state(employer_fen: int, individual_fen: int, due_date: date, totals: ChargeTotals | None) -> LineState:
    if totals is None:
        return LineState(principal_fen=employer_fen + individual_fen, due_date=due_date)
    return LineState(principal_fen=employer_fen + individual_fen, due_date=due_date,
                     paid_principal_fen=totals.principal_paid_fen, fee_accrued_fen=totals.fee_accrued_fen,
                     fee_paid_fen=totals.fee_paid_fen, accrued_through=totals.last_paid_date)


def load_states(session: Session, rows: list[Any], *, through: date | None = None
                ) -> tuple[dict[str, LineState], dict[str, list[str]]]:
    """(line id → state, line id → predecessor line ids) for ``rows`` carrying ``id``, ``assessment_id``,
    ``person_id``, ``fund``, ``employer_fen``, ``individual_fen`` and ``due_date``."""
    history = predecessors(session, rows)
    totals = charge_totals(session, [r.id for r in rows], through=through, history=history)
    states = {r.id: line_state(r.employer_fen, r.individual_fen, r.due_date, totals.get(r.id)) for r in rows}
    return states, history
