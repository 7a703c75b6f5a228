"""An assessment line's settlement state, rebuilt from its ``LateFeeCharge`` rows (shared by payments and arrears).

A correction (``supersede``) issues a new line for the same person and fund and carries what was paid on the old
one. The old line's payments are part of the new line's history: the state of a corrected line replays the charges
of the line **and of its predecessors** (the lines of the same person and fund in the assessments it supersedes,
transitively) on the corrected principal; see ``load_states``.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlmodel import Session

from services.collection.arrears.latefee import DEFAULT_DAILY_RATE, LineState, accrue, parse_rate
from services.collection.models import Assessment, AssessmentLine, LateFeeCharge, TaxPayment
from services.kernel.bulk import dialect_of, in_parameter, parameter_values, read

CHUNK = 10_000  # ids per IN query: a whole batch in one (one JSON parameter on both databases, keyset.in_parameter)


@dataclass(frozen=True)
class ChargeTotals:
    principal_paid_fen: int = 0
    fee_accrued_fen: int = 0
    fee_paid_fen: int = 0
    last_paid_date: date | None = None



def one_of(session: Session, column: Any, values: list[str]) -> Any:
    """``column IN (values)`` with one parameter whatever the number of values (``keyset.in_parameter``: compiling
    and sending a 5 000-placeholder IN list costs more than the query); text keys."""
    return in_parameter(dialect_of(session), column, values=values)


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
                .where(AssessmentLine.assessment_id.in_(part), one_of(session, AssessmentLine.person_id, person_part))
            ).all():
                old_lines[(assessment_id, person_id, fund)] = line_id
    out: dict[str, list[str]] = {}
    for r in rows:
        ids = [old_lines[(a, r.person_id, r.fund)] for a in chain.get(r.assessment_id, [])
               if (a, r.person_id, r.fund) in old_lines]
        if ids:
            out[r.id] = ids
    return out


@lru_cache(maxsize=8)
def _charge_totals_query(dialect: str, through: bool) -> Any:
    """Per line of ``:ids``, the sums of its charges and its last paid date (``:through``: payments paid on or
    before it only). Built once per dialect, the ids bound as one parameter (``bulk.in_parameter``)."""
    charge, payment = LateFeeCharge.__table__.c, TaxPayment.__table__.c
    query = (
        select(charge.assessment_line_id, func.sum(charge.principal_paid_fen), func.sum(charge.fee_accrued_fen),
               func.sum(charge.fee_paid_fen), func.max(payment.paid_date))
        .join(TaxPayment.__table__, payment.id == charge.tax_payment_id)
        .where(in_parameter(dialect, charge.assessment_line_id, "ids"))
        .group_by(charge.assessment_line_id)
    )
    return query.where(payment.paid_date <= bindparam("through", type_=payment.paid_date.type)) if through else query


def charge_totals(session: Session, line_ids: Iterable[str], *, through: date | None = None) -> dict[str, ChargeTotals]:
    """Per line: what its charges paid and accrued (only payments paid on or before ``through`` when given).

    A Core statement on the session's connection (a tax batch asks for some 10 000 lines, most without a charge):
    no ORM statement compiled per call, no row objects."""
    dialect = dialect_of(session)
    statement = _charge_totals_query(dialect, through is not None)
    out: dict[str, ChargeTotals] = {}
    for part in chunks(list(dict.fromkeys(line_ids))):  # unique, in the caller's order
        params = {"ids": parameter_values(dialect, part), "through": through}
        for line_id, principal, accrued, paid, last in read(session, statement, params).all():
            out[line_id] = ChargeTotals(int(principal or 0), int(accrued or 0), int(paid or 0), _as_date(last))
    return out


def line_state(employer_fen: int, individual_fen: int, due_date: date, totals: ChargeTotals | None) -> LineState:
    # Positional (LineState's field order): keywords cost a named tuple's __new__ twice as much, once per line.
    if totals is None:
        return LineState(employer_fen + individual_fen, due_date)
    return LineState(employer_fen + individual_fen, due_date, totals.principal_paid_fen, totals.fee_accrued_fen,
                     totals.fee_paid_fen, totals.last_paid_date)


@dataclass(frozen=True)
class Step:
    """One payment's effect on a line: the segment it closed and what it paid (a ``LateFeeCharge``, or its replay)."""

    tax_payment_id: str
    paid_date: date
    days: int
    principal_before_fen: int
    fee_accrued_fen: int
    principal_paid_fen: int
    fee_paid_fen: int


def charge_sequences(session: Session, owner: dict[str, str], *, through: date | None = None
                     ) -> dict[str, list[tuple[str, date, int, int, LateFeeCharge]]]:
    """owner line id → its charges (and its predecessors') as (payment id, paid date, principal paid, fee paid, row),
    in paid-date order."""
    out: dict[str, list] = defaultdict(list)
    for part in chunks(sorted(owner)):
        query = (
            select(LateFeeCharge, TaxPayment.paid_date)
            .join(TaxPayment, TaxPayment.id == LateFeeCharge.tax_payment_id)
            .where(one_of(session, LateFeeCharge.assessment_line_id, part))
        )
        if through is not None:
            query = query.where(TaxPayment.paid_date <= through)
        for charge, paid_date in session.execute(query).all():
            out[owner[charge.assessment_line_id]].append(
                (charge.tax_payment_id, _as_date(paid_date), charge.principal_paid_fen, charge.fee_paid_fen, charge))
    for items in out.values():
        items.sort(key=lambda item: (item[1], item[4].id))
    return dict(out)


@dataclass
class LoadedStates:
    states: dict[str, LineState]
    history: dict[str, list[str]]  # line id → the lines it replaced
    replayed: dict[str, list[Step]]  # for corrected lines: their payments replayed on the corrected principal


def _may_have_charges(row: Any) -> bool:
    """False for a line whose stored paid principal and paid late fee are both zero: it has no charge, for every
    charge pays some principal or fee (a stored payment is never zero; a zero share of an employer-level payment is
    not recorded) and is written in the same transaction as its line's new paid figures. Most of a tax batch's lines
    are such, and are not looked up in ``late_fee_charge``. A row without those figures may have any."""
    return getattr(row, "paid_principal_fen", None) != 0 or getattr(row, "paid_late_fee_fen", None) != 0


def load_states(session: Session, rows: list[Any], *, through: date | None = None,
                rate_on: Callable[[date], Decimal] | None = None) -> LoadedStates:
    """The state of each line of ``rows`` (carrying ``id``, ``assessment_id``, ``person_id``, ``fund``,
    ``employer_fen``, ``individual_fen`` and ``due_date``, and if they can ``paid_principal_fen`` and
    ``paid_late_fee_fen``: see ``_may_have_charges``), counting only payments paid on or before ``through``.

    A line never corrected: the sums of its recorded charges (each charge keeps the fee computed when the payment was
    settled). A corrected line: its payments and its predecessors' are **replayed** in paid-date order on the
    corrected principal — each payment closes a segment charged at the rate in force on its paid date
    (``rate_on``), then its recorded principal and fee amounts are applied. A correction that raises the principal
    thus owes the late fee on the difference from the original due date (社会保险法 第八十六条: the amount was due
    then), and one that lowers it owes less."""
    history = predecessors(session, rows)
    plain = [r for r in rows if r.id not in history] if history else rows
    totals = charge_totals(session, [r.id for r in plain if _may_have_charges(r)], through=through)
    if totals:
        states = {r.id: line_state(r.employer_fen, r.individual_fen, r.due_date, totals.get(r.id)) for r in plain}
    else:  # no line has a charge yet (a month's first payments): ``line_state(…, None)`` each, built here
        states = {r.id: LineState(r.employer_fen + r.individual_fen, r.due_date) for r in plain}
    replayed: dict[str, list[Step]] = {}
    corrected = [r for r in rows if r.id in history]
    if corrected:
        rate_on = rate_on or (lambda _day: parse_rate(DEFAULT_DAILY_RATE))
        owner: dict[str, str] = {}
        for r in corrected:
            owner[r.id] = r.id
            for old in history[r.id]:
                owner.setdefault(old, r.id)
        sequences = charge_sequences(session, owner, through=through)
        for r in corrected:
            state = LineState(principal_fen=r.employer_fen + r.individual_fen, due_date=r.due_date)
            steps = []
            for payment_id, paid_date, principal_paid, fee_paid, _row in sequences.get(r.id, []):
                segment, state = accrue(state, paid_date, rate_on(paid_date))
                steps.append(Step(payment_id, paid_date, segment.days, segment.principal_fen, segment.fee_fen,
                                  principal_paid, fee_paid))
                state = state._replace(paid_principal_fen=state.paid_principal_fen + principal_paid,
                                       fee_paid_fen=state.fee_paid_fen + fee_paid)
            states[r.id] = state
            replayed[r.id] = steps
    return LoadedStates(states=states, history=history, replayed=replayed)
