"""Event handlers that keep oversight's ledger (``models.py``). Each runs inside the consumer's transaction
(``kernel.inbox``), which applies every event once; a handler turns an event into a few increments of aggregate rows
(Core ``INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x``, one statement per table and event), so a
1 000-line event costs a handful of statements, and concurrent consumers of a shared durable add up correctly.

What feeds what (amounts in fen):

- ``collection.assessment.issued`` → ASSESSED (R2): employer + individual parts of each line, per fund; also kept
  per assessment × fund so that ``collection.assessment.superseded`` (or the correction's ``supersedes_id``,
  whichever comes first) takes it back out. A part that arrives after its assessment was superseded is recorded
  but not counted.
- ``collection.payments.collected`` → TAX (R1, R2): principal (employer + individual) and late fee, every stored
  line (matched or not: the TAX leg is what the bureau collected).
- ``accounts.contributions.posted`` → AGENCY (R1, R2): employer + individual parts of each posted line, in rows of
  their own (``ledger_fund_period_agency``, ``ledger_employer_period_agency``): this consumer and the COLLECTION one
  never share a row.
- ``collection.treasury.remitted`` → the R3 row of the remittance, with its deadline (10 Chinese working days).
- ``collection.bank_transaction.recorded`` → every movement: the account's month (R4, R6); a receipt of a
  remittance into the special account → FINANCE (R1, by the remittance's period) and the remittance (R3); an
  allocation received on the expenditure account → R5's finance figure (month of the value date); a movement whose
  counterparty belongs to another fund, or that was flagged, → R6.
- ``collection.bank_account.registered`` → the account (so that an income account with no movement is still
  checked by R4).
- ``benefits.payroll.approved`` → R5's approved figure (the payroll's month).
- ``benefits.payments.settled`` → R5's bank figures: paid, and failed (returned to the expenditure account);
  per payroll line, paid wins over failed whatever the order (a failed line re-issued and paid counts once, paid).
- ``benefits.payroll.retained`` → R5's held-back and offset figures (lines the first bank file did not pay, or paid
  net of a recovery offset); once per payroll line.

Every other type on the three streams is ignored explicitly (tests/test_event_catalogue.py); on ACCOUNTS the mirror
handles the rest.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, select, update
from sqlmodel import Session

from services.contracts import accounts as accounts_events
from services.contracts import benefits as benefits_events
from services.contracts import collection as collection_events
from services.kernel import clock
from services.kernel import bulk
from services.kernel.bulk import insert_for, table_of
from services.kernel.events import EventEnvelope
from services.kernel.periods import period_of
from services.kernel.service_app import ConsumerSpec
from services.oversight.ledger.models import (
    LedgerAccountMonth,
    LedgerAssessment,
    LedgerBankAccount,
    LedgerEmployerPeriod,
    LedgerEmployerPeriodAgency,
    LedgerFlaggedTransaction,
    LedgerFundMonthOut,
    LedgerFundPeriod,
    LedgerFundPeriodAgency,
    LedgerRemittance,
    LedgerRetainedLine,
    LedgerSettledLine,
    LedgerSupersededAssessment,
)
from services.oversight.ledger.workdays import remittance_deadline

Handler = Callable[[Session, EventEnvelope], None]
ID_CHUNK = 500



def employer_key(employer_id: str | None) -> str:
    return employer_id or ""


# -- upserts ---------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _python_defaults(table: Table) -> tuple[tuple[str, Any], ...]:
    return tuple((c.name, c.default.arg) for c in table.columns if c.default is not None and c.default.is_scalar)


def bump(session: Session, model: Any, rows: Iterable[dict[str, Any]], **how: Iterable[str]) -> None:
    """``kernel.bulk.bump`` (same arguments) with each row given the columns it leaves to a Python-side default (the
    counters' 0): a row that leaves one out would take SQLAlchemy's executemany instead of the driver's on SQLite. The
    values are the ones the insert would have taken; an existing row's columns move only as ``how`` says."""
    defaults = dict(_python_defaults(table_of(model)))
    bulk.bump(session, model, [{**defaults, **row} for row in rows] if defaults else rows, **how)


def _insert(session: Session, table: Table):  # noqa: ANN202
    return insert_for(session, table)


def _chunks(values: list, size: int = ID_CHUNK) -> Iterable[list]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


# -- assessments (ASSESSED, R2) --------------------------------------------------------------------------------------


_SUPERSEDED = select(LedgerSupersededAssessment.assessment_id).where(
    LedgerSupersededAssessment.assessment_id == bindparam("id"))


def is_superseded(session: Session, assessment_id: str) -> bool:
    """Known superseded to the ledger (its marker is written with Core: this plain query sees it, no ORM flush)."""
    return session.connection().execute(_SUPERSEDED, {"id": assessment_id}).first() is not None


def on_assessment_issued(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(collection_events.AssessmentIssued)
    employer = employer_key(e.employer_id)
    per_fund: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in e.lines:
        sums = per_fund[line.fund]
        sums[0] += line.employer_fen + line.individual_fen
        sums[1] += 1
    if e.supersedes_id:  # collection sends AssessmentSuperseded first; the new one names it too: either suffices
        _supersede(session, e.supersedes_id, by=e.assessment_id, event_id=envelope.id)
    superseded = is_superseded(session, e.assessment_id)
    bump(session, LedgerAssessment, [
        {"assessment_id": e.assessment_id, "fund": fund, "employer_key": employer, "period": e.period,
         "assessed_fen": fen, "lines": lines, "superseded": superseded}
        for fund, (fen, lines) in per_fund.items()], add=("assessed_fen", "lines"))
    if not superseded:
        bump(session, LedgerEmployerPeriod, [
            {"period": e.period, "fund": fund, "employer_key": employer, "assessed_fen": fen}
            for fund, (fen, _) in per_fund.items()], add=("assessed_fen",))


def _supersede(session: Session, assessment_id: str, *, by: str, event_id: str) -> None:
    """Take what ``assessment_id`` assessed (the parts counted so far) out of its R2 cells, once; parts arriving
    later are not counted (the marker)."""
    connection = session.connection()
    connection.execute(_insert(session, LedgerSupersededAssessment.__table__).values(
        assessment_id=assessment_id, superseded_by_id=by, source_event_id=event_id,
        received_at=clock.utc_now()).on_conflict_do_nothing(index_elements=["assessment_id"]))
    A = LedgerAssessment  # noqa: N806
    counted = A.assessment_id == assessment_id, A.superseded.is_(False)
    rows = connection.execute(select(A.period, A.fund, A.employer_key, A.assessed_fen).where(*counted)
                              .with_for_update()).all()
    bump(session, LedgerEmployerPeriod, [
        {"period": period, "fund": fund, "employer_key": employer, "assessed_fen": -fen}
        for period, fund, employer, fen in rows], add=("assessed_fen",))
    connection.execute(update(A.__table__).where(*counted).values(superseded=True, updated_at=clock.utc_now()))


def on_assessment_superseded(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(collection_events.AssessmentSuperseded)
    _supersede(session, e.assessment_id, by=e.superseded_by_id, event_id=envelope.id)


# -- TAX and AGENCY legs (R1, R2) ------------------------------------------------------------------------------------


def _legs(session: Session, lines: Iterable[Any], *, leg: str) -> None:
    """Add collected (``leg`` = ``tax``) or posted (``agency``) lines to their R1 and R2 cells: summed per cell in
    plain lists first (a line costs a few additions), rows built once per cell."""
    tax = leg == "tax"
    principal, count = ("tax_principal_fen", "tax_lines") if tax else ("agency_fen", "agency_lines")
    sums = (principal, "tax_late_fee_fen") if tax else (principal,)
    r2: dict[tuple[int, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # principal, late fee, lines
    for line in lines:
        cell = r2[(line.period, line.fund, line.employer_id or "")]
        cell[0] += line.employer_fen + line.individual_fen
        if tax:
            cell[1] += line.late_fee_fen
        cell[2] += 1
    r1: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for (period, fund, _), (fen, late_fee, n) in r2.items():
        cell = r1[(period, fund)]
        cell[0] += fen
        cell[1] += late_fee
        cell[2] += n

    def amounts(fen: int, late_fee: int) -> dict[str, int]:
        return {principal: fen, "tax_late_fee_fen": late_fee} if tax else {principal: fen}

    # The AGENCY leg's cells are rows of their own: the two consumers never wait for each other's row lock.
    bump(session, LedgerFundPeriod if tax else LedgerFundPeriodAgency,
         [{"period": p, "fund": f, **amounts(fen, late_fee), count: n} for (p, f), (fen, late_fee, n) in r1.items()],
         add=(*sums, count))
    bump(session, LedgerEmployerPeriod if tax else LedgerEmployerPeriodAgency,
         [{"period": p, "fund": f, "employer_key": k, **amounts(fen, late_fee)}
          for (p, f, k), (fen, late_fee, _) in r2.items()], add=sums)


def on_payments_collected(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(collection_events.PaymentsCollected)
    _legs(session, e.lines, leg="tax")


def on_contributions_posted(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(accounts_events.ContributionsPosted)
    _legs(session, e.lines, leg="agency")


# -- treasury and bank accounts (FINANCE leg, R3, R4, R5 allocations, R6) --------------------------------------------


def on_treasury_remitted(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(collection_events.TreasuryRemitted)
    bump(session, LedgerRemittance, [{
        "remittance_id": e.remittance_id, "month": period_of(e.remitted_on), "fund": e.fund, "period": e.period,
        "amount_fen": e.amount_fen, "remitted_on": e.remitted_on, "voucher_no": e.voucher_no,
        "deadline": remittance_deadline(e.remitted_on), "received_fen": 0, "receipts": 0,
    }], overwrite=("month", "fund", "period", "amount_fen", "remitted_on", "voucher_no", "deadline"))


def on_bank_account_registered(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(collection_events.BankAccountRegistered)
    bump(session, LedgerBankAccount, [{"account_id": e.account_id, "kind": e.kind, "fund": e.fund,
                                       "opened_on": e.opened_on}], overwrite=("kind", "fund", "opened_on"))


def _receipt_period(session: Session, e: collection_events.BankTransactionRecorded) -> int:
    if e.period is not None:
        return e.period
    known = session.execute(select(LedgerRemittance.period).where(
        LedgerRemittance.remittance_id == e.remittance_id)).scalar_one_or_none()
    return known if known is not None else period_of(e.value_date)


def on_bank_transaction_recorded(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(collection_events.BankTransactionRecorded)
    month = period_of(e.value_date)
    bump(session, LedgerBankAccount, [{"account_id": e.account_id, "kind": e.account_kind, "fund": e.fund}])
    incoming = e.direction == "in"
    bump(session, LedgerAccountMonth, [{
        "account_id": e.account_id, "month": month, "kind": e.account_kind, "fund": e.fund,
        "in_fen": e.amount_fen if incoming else 0, "out_fen": 0 if incoming else e.amount_fen, "movements": 1,
    }], add=("in_fen", "out_fen", "movements"))

    if e.account_kind == "special" and incoming and e.purpose == "receipt" and e.remittance_id:
        bump(session, LedgerRemittance, [{
            "remittance_id": e.remittance_id, "month": month, "fund": e.fund, "period": e.period,
            "received_fen": e.amount_fen, "receipts": 1, "first_receipt_on": e.value_date,
            "last_receipt_on": e.value_date,
        }], add=("received_fen", "receipts"), fill=("period",), least=("first_receipt_on",),
            greatest=("last_receipt_on",))
        bump(session, LedgerFundPeriod, [{"period": _receipt_period(session, e), "fund": e.fund,
                                          "finance_fen": e.amount_fen, "finance_receipts": 1}],
             add=("finance_fen", "finance_receipts"))
    if e.account_kind == "expenditure" and incoming and e.purpose == "allocation":
        bump(session, LedgerFundMonthOut, [{"month": e.period or month, "fund": e.fund,
                                            "allocated_fen": e.amount_fen, "allocations": 1}],
             add=("allocated_fen", "allocations"))

    cross_fund = e.counterparty_fund is not None and e.counterparty_fund != e.fund
    if cross_fund or e.status == "flagged" or e.violation:
        stmt = _insert(session, LedgerFlaggedTransaction.__table__).values(
            transaction_id=e.transaction_id, month=month, fund=e.fund, account_id=e.account_id,
            account_kind=e.account_kind, direction=e.direction, amount_fen=e.amount_fen, counterparty=e.counterparty,
            counterparty_fund=e.counterparty_fund, purpose=e.purpose, value_date=e.value_date, source=e.source,
            status=e.status, cross_fund=cross_fund, violation=e.violation, source_event_id=envelope.id,
            received_at=clock.utc_now())
        session.execute(stmt.on_conflict_do_nothing(index_elements=["transaction_id"]))


# -- money out (R5) --------------------------------------------------------------------------------------------------


def on_payroll_approved(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(benefits_events.PayrollApproved)
    bump(session, LedgerFundMonthOut, [{"month": e.period, "fund": e.fund, "approved_fen": e.total_fen,
                                        "approved_runs": 1, "approved_lines": e.lines}],
         add=("approved_fen", "approved_runs", "approved_lines"))


def on_payments_settled(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(benefits_events.PaymentsSettled)
    connection = session.connection()
    S = LedgerSettledLine  # noqa: N806
    by_id = {line.payroll_line_id: line for line in e.lines}
    known: dict[str, Any] = {}
    for chunk in _chunks(sorted(by_id)):
        known.update((row.payroll_line_id, row) for row in connection.execute(
            select(S.payroll_line_id, S.fund, S.month, S.amount_fen, S.result)
            .where(S.payroll_line_id.in_(chunk)).with_for_update()))
    deltas: dict[tuple[int, str], dict[str, int]] = defaultdict(
        lambda: {"paid_fen": 0, "paid_lines": 0, "returned_fen": 0, "returned_lines": 0})
    new_rows, now_paid, now = [], [], clock.utc_now()
    for line_id, line in by_id.items():
        row = known.get(line_id)
        if row is None:
            new_rows.append({"payroll_line_id": line_id, "fund": e.fund, "month": line.period,
                             "amount_fen": line.amount_fen, "result": line.result, "file_id": e.file_id,
                             "updated_at": now})
            d = deltas[(line.period, e.fund)]
            kind = "paid" if line.result == "paid" else "returned"
            d[f"{kind}_fen"] += line.amount_fen
            d[f"{kind}_lines"] += 1
        elif row.result == "failed" and line.result == "paid":  # re-issued and paid: no longer returned
            d = deltas[(row.month, row.fund)]
            d["returned_fen"] -= row.amount_fen
            d["returned_lines"] -= 1
            d["paid_fen"] += line.amount_fen
            d["paid_lines"] += 1
            now_paid.append({"line_id": line_id, "amount": line.amount_fen})
        # else: the same result again, or a failure reported after the line was paid: nothing changes
    if new_rows:
        connection.execute(_insert(session, S.__table__), new_rows)
    if now_paid:
        connection.execute(
            update(S.__table__).where(S.payroll_line_id == bindparam("line_id"))
            .values(result="paid", amount_fen=bindparam("amount"), file_id=e.file_id, updated_at=now), now_paid)
    bump(session, LedgerFundMonthOut, [{"month": m, "fund": f, **d} for (m, f), d in deltas.items()],
         add=("paid_fen", "paid_lines", "returned_fen", "returned_lines"))


def on_payroll_lines_retained(session: Session, envelope: EventEnvelope) -> None:
    """Held-back lines and recovery offsets of a run's first bank file → R5's held-back and offset figures. One
    ``ledger_retained_line`` row per payroll line (``INSERT … ON CONFLICT DO NOTHING RETURNING``): only the lines
    inserted now are counted, so a line reported again (another part said twice, a replay) counts once."""
    e = envelope.payload_view(benefits_events.PayrollLinesRetained)
    now = clock.utc_now()
    rows: dict[str, dict[str, Any]] = {}
    for held in e.held_back:
        rows.setdefault(held.payroll_line_id, {
            "payroll_line_id": held.payroll_line_id, "fund": e.fund, "month": e.period, "run_id": e.run_id,
            "kind": "held_back", "amount_fen": held.amount_fen, "fully_offset": False, "reason": held.reason,
            "updated_at": now})
    for offset in e.offsets:
        rows.setdefault(offset.payroll_line_id, {
            "payroll_line_id": offset.payroll_line_id, "fund": e.fund, "month": e.period, "run_id": e.run_id,
            "kind": "offset", "amount_fen": offset.offset_fen, "fully_offset": offset.fully_offset, "reason": None,
            "updated_at": now})
    if not rows:
        return
    R = LedgerRetainedLine  # noqa: N806
    stmt = _insert(session, R.__table__).on_conflict_do_nothing(index_elements=["payroll_line_id"]).returning(
        R.payroll_line_id)
    inserted = set(session.connection().execute(stmt, [rows[k] for k in sorted(rows)]).scalars())
    d = {"held_back_fen": 0, "held_back_lines": 0, "offset_fen": 0, "offset_lines": 0}
    for line_id in inserted:
        row = rows[line_id]
        d[f"{row['kind']}_fen"] += row["amount_fen"]
        d[f"{row['kind']}_lines"] += 1
    if inserted:
        bump(session, LedgerFundMonthOut, [{"month": e.period, "fund": e.fund, **d}],
             add=("held_back_fen", "held_back_lines", "offset_fen", "offset_lines"))


# -- the consumers ---------------------------------------------------------------------------------------------------

COLLECTION_HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(collection_events.AssessmentIssued.versions(), on_assessment_issued),
    collection_events.AssessmentSuperseded.event_type: on_assessment_superseded,
    **dict.fromkeys(collection_events.PaymentsCollected.versions(), on_payments_collected),
    collection_events.TreasuryRemitted.event_type: on_treasury_remitted,
    collection_events.BankTransactionRecorded.event_type: on_bank_transaction_recorded,
    collection_events.BankAccountRegistered.event_type: on_bank_account_registered,
}
COLLECTION_IGNORES = frozenset({
    collection_events.ParametersApproved.event_type,
    collection_events.PaymentsRejected.event_type,  # S17 is the suspicion engine's
    collection_events.ArrearsNoticeIssued.event_type,
    collection_events.CollectionArchiveItemsFiled.event_type,  # archive items, for the dossiers accounts keeps
})

# On ACCOUNTS the mirror handles every type; the ledger adds the AGENCY leg.
ACCOUNTS_HANDLERS: dict[str, Handler] = {
    **dict.fromkeys(accounts_events.ContributionsPosted.versions(), on_contributions_posted),
}

BENEFITS_HANDLERS: dict[str, Handler] = {
    benefits_events.PayrollApproved.event_type: on_payroll_approved,
    benefits_events.PaymentsSettled.event_type: on_payments_settled,
    benefits_events.PayrollLinesRetained.event_type: on_payroll_lines_retained,
}
BENEFITS_IGNORES = frozenset({
    benefits_events.ClaimSubmitted.event_type,
    benefits_events.ClaimDecided.event_type,
    benefits_events.EntitlementGranted.event_type,
    benefits_events.EntitlementSuspended.event_type,
    benefits_events.EntitlementResumed.event_type,
    benefits_events.EntitlementEnded.event_type,
    benefits_events.FundingRequested.event_type,  # R5 compares the allocation itself, as finance recorded it
    benefits_events.PaymentsIssued.event_type,
    benefits_events.SurvivalCertified.event_type,
    benefits_events.OverpaymentFound.event_type,
    benefits_events.RecoveryNoticeIssued.event_type,
    benefits_events.RecoveryRecorded.event_type,
    benefits_events.RecoveryEscalated.event_type,
    benefits_events.BenefitsArchiveItemsFiled.event_type,  # archive items, for the dossiers accounts keeps
})

LEDGER_COLLECTION_CONSUMER = ConsumerSpec(stream="COLLECTION", handlers=COLLECTION_HANDLERS,
                                          ignores=COLLECTION_IGNORES)
LEDGER_ACCOUNTS_CONSUMER = ConsumerSpec(stream="ACCOUNTS", handlers=ACCOUNTS_HANDLERS)
LEDGER_BENEFITS_CONSUMER = ConsumerSpec(stream="BENEFITS", handlers=BENEFITS_HANDLERS, ignores=BENEFITS_IGNORES)
LEDGER_CONSUMERS = [LEDGER_COLLECTION_CONSUMER, LEDGER_ACCOUNTS_CONSUMER, LEDGER_BENEFITS_CONSUMER]

# Every handler of the ledger, by type: what the rebuild replays the streams into.
LEDGER_HANDLERS: dict[str, Handler] = {
    t: h for spec in LEDGER_CONSUMERS for t, h in spec.handlers.items()
}
LEDGER_STREAMS = tuple(spec.stream for spec in LEDGER_CONSUMERS)
