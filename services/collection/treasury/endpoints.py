"""Fund bank accounts, treasury remittances and the FINANCE leg; rules in service.py and rules.py."""

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from sqlmodel import Session

from services.collection.models import FundBankAccount
from services.collection.treasury import rules, service
from services.collection.treasury.schemas import (
    AccountIn,
    AccountOut,
    AccountRegistered,
    AllocationIn,
    AllocationRecorded,
    CloseIn,
    InspectionIn,
    InterestIn,
    MonthEndCheck,
    NonZeroIncomeAccount,
    ReceiptIn,
    Recorded,
    RemittanceIn,
    RemittanceOut,
    RemittanceRecorded,
    StatementImported,
    StatementIn,
    TransactionIn,
    TransactionOut,
    TransactionPage,
)
from services.kernel.auth import allow
from services.kernel.money import fen_to_yuan
from services.kernel.periods import Period
from services.kernel.service_app import SessionDep
from services.kernel.strict import IsoDate
from services.kernel.paging import SortQuery

# The special account is finance's; income and expenditure accounts are the agency's accountants' (checked per
# account in service.act_for_kind). Cashiers and internal auditors read.
FINANCE = allow("finance_officer")
KEEPERS = allow("finance_officer", "accountant")
READERS = allow("finance_officer", "accountant", "cashier", "internal_auditor")

router = APIRouter(prefix="/treasury", tags=["treasury"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key",
                                              description="business idempotency key of this movement (required)")]
Fund = Annotated[str | None, Query(pattern="^[A-Z_]{2,10}$")]
Cursor = Annotated[str | None, Query(max_length=400, description="next_cursor of the previous page")]
Limit = Annotated[int, Query(ge=1, le=1000)]


def _account(account: FundBankAccount) -> AccountOut:
    return AccountOut(
        id=account.id, kind=account.kind, fund=account.fund, bank_name=account.bank_name,
        account_no=account.account_no, opened_on=account.opened_on, opening_approval_ref=account.opening_approval_ref,
        annual_inspection_due=account.annual_inspection_due, inspection_overdue=service.inspection_overdue(account),
        status=account.status, balance=fen_to_yuan(account.balance_fen), created_at=account.created_at,
        created_by=account.created_by,
    )


def _remittance(state: service.RemittanceState) -> RemittanceOut:
    r = state.remittance
    lateness = state.lateness()
    return RemittanceOut(
        id=r.id, fund=r.fund, period=r.period, amount=fen_to_yuan(r.amount_fen), remitted_on=r.remitted_on,
        voucher_no=r.voucher_no, received=fen_to_yuan(state.received_fen),
        unreceived=fen_to_yuan(max(state.unreceived_fen, 0)), deadline=state.deadline.day,
        deadline_note=state.deadline.note, deadline_clause=lateness.clause, status=state.status,
        last_receipt_on=state.last_receipt_on, lateness=lateness.lateness, late=lateness.late,
        working_days_late=lateness.working_days_late, lateness_note=lateness.note, recorded_at=r.recorded_at,
        recorded_by=r.recorded_by,
    )


def _transactions(session: Session, rows) -> list[TransactionOut]:  # noqa: ANN001
    return [
        TransactionOut(
            id=v.row.id, account_id=v.row.account_id, account_kind=v.account_kind, fund=v.row.fund,
            direction=v.row.direction, amount=fen_to_yuan(v.row.amount_fen), counterparty=v.row.counterparty,
            counterparty_account_id=v.row.counterparty_account_id, counterparty_fund=v.row.counterparty_fund,
            purpose=v.row.purpose, remittance_id=v.row.remittance_id, period=v.period, reference=v.row.reference,
            value_date=v.row.value_date, source=v.row.source, status=v.row.status, violation=v.row.violation,
            late=v.late, deadline=v.deadline, idempotency_key=v.row.idempotency_key, recorded_at=v.row.recorded_at,
            recorded_by=v.row.recorded_by,
        )
        for v in service.views(session, rows)
    ]


def _created(replayed: bool, response: Response) -> None:
    """201 for a new record; 200 when its key was seen before and the original is returned."""
    response.status_code = status.HTTP_200_OK if replayed else status.HTTP_201_CREATED


def _recorded(session: Session, recording: service.Recording, response: Response) -> Recorded:
    _created(recording.replayed, response)
    row = recording.transactions[0]
    balance = session.get(FundBankAccount, row.account_id).balance_fen
    return Recorded(transaction=_transactions(session, [row])[0], balance=fen_to_yuan(balance),
                    replayed=recording.replayed)


# -- accounts --------------------------------------------------------------------------------------------------------


@router.post("/accounts", response_model=AccountRegistered, status_code=status.HTTP_201_CREATED,
             summary="Register a fund bank account (special: finance officer; income/expenditure: accountant)",
             description="One account per kind and fund. Registering the same account again with the same content "
                         "returns it (200); another account for a taken kind and fund, or a taken number, is 409.",
             dependencies=[KEEPERS])
def register_account(body: AccountIn, session: SessionDep, response: Response) -> AccountRegistered:
    account, replayed = service.register_account(session, body)
    _created(replayed, response)
    return AccountRegistered(account=_account(account), replayed=replayed)


@router.get("/accounts", response_model=list[AccountOut],
            summary="Fund bank accounts; overdue=true lists open accounts whose annual inspection is overdue",
            dependencies=[READERS])
def list_accounts(
    session: SessionDep,
    kind: Annotated[str | None, Query(pattern="^(special|income|expenditure)$")] = None,
    fund: Fund = None,
    account_status: Annotated[str | None, Query(alias="status", pattern="^(open|closed)$")] = None,
    overdue: bool | None = None,
) -> list[AccountOut]:
    return [_account(a) for a in service.list_accounts(session, kind=kind, fund=fund, status=account_status,
                                                      overdue=overdue)]


@router.get("/accounts/{account_id}", response_model=AccountOut, summary="One fund bank account",
            dependencies=[READERS])
def get_account(account_id: str, session: SessionDep) -> AccountOut:
    return _account(service.get_account(session, account_id))


@router.post("/accounts/{account_id}/close", response_model=AccountOut, summary="Close an account (balance zero)",
             dependencies=[KEEPERS])
def close_account(account_id: str, body: CloseIn, session: SessionDep) -> AccountOut:
    return _account(service.close_account(session, account_id, body))


@router.post("/accounts/{account_id}/annual-inspections", response_model=AccountOut,
             summary="Record the annual inspection (年检) and the next due date", dependencies=[KEEPERS])
def record_inspection(account_id: str, body: InspectionIn, session: SessionDep) -> AccountOut:
    return _account(service.record_inspection(session, account_id, body))


@router.post("/accounts/{account_id}/interest", response_model=Recorded, status_code=status.HTTP_201_CREATED,
             summary="Record the interest credited to this fund's account (分别计息)", dependencies=[KEEPERS])
def record_interest(account_id: str, body: InterestIn, session: SessionDep, response: Response,
                    idempotency_key: IdempotencyKey = None) -> Recorded:
    return _recorded(session, service.record_interest(session, account_id, body, idempotency_key), response)


# -- remittances, receipts, allocations ------------------------------------------------------------------------------


@router.post("/remittances", response_model=RemittanceRecorded, status_code=status.HTTP_201_CREATED,
             summary="Record the tax bureau's remittance to the treasury (its voucher number is its key)",
             description="Starts the 10-working-day clock of 000 二(二) (R3). The same voucher with the same content "
                         "returns the original (200); with other content 409 VOUCHER_REUSED.",
             dependencies=[FINANCE])
def record_remittance(body: RemittanceIn, session: SessionDep, response: Response) -> RemittanceRecorded:
    remittance, replayed = service.record_remittance(session, body)
    _created(replayed, response)
    return RemittanceRecorded(remittance=_remittance(service.remittance_states(session, [remittance])[0]),
                              replayed=replayed)


@router.get("/remittances", response_model=list[RemittanceOut],
            summary="Remittances with what has reached the special account; outstanding=true for those not fully "
                    "received (status overdue after the 10th working day, S12)",
            dependencies=[READERS])
def list_remittances(
    session: SessionDep,
    response: Response,
    fund: Fund = None,
    period: Annotated[Period | None, Query()] = None,
    outstanding: bool | None = None,
    after: Cursor = None,
    limit: Limit = 100,
    sort: SortQuery = None,
) -> list[RemittanceOut]:
    states, next_cursor = service.list_remittances(session, fund=fund, period=period, outstanding=outstanding,
                                                   after=after, limit=limit, sort=sort)
    if next_cursor:
        response.headers["X-Next-Cursor"] = next_cursor
    return [_remittance(s) for s in states]


@router.get("/remittances/{remittance_id}", response_model=RemittanceOut, summary="One remittance",
            dependencies=[READERS])
def get_remittance(remittance_id: str, session: SessionDep) -> RemittanceOut:
    return _remittance(service.remittance_states(session, [service.get_remittance(session, remittance_id)])[0])


@router.post("/receipts", response_model=Recorded, status_code=status.HTTP_201_CREATED,
             summary="Record a remittance's arrival in the special account of its fund (FINANCE leg)",
             description="Marked `late` after the 10th Chinese working day following the remittance (000 二(二)); "
                         "more than the remittance's unreceived amount is refused (409 OVER_RECEIPT).",
             dependencies=[FINANCE])
def record_receipt(body: ReceiptIn, session: SessionDep, response: Response,
                   idempotency_key: IdempotencyKey = None) -> Recorded:
    return _recorded(session, service.record_receipt(session, body, idempotency_key), response)


@router.post("/allocations", response_model=AllocationRecorded, status_code=status.HTTP_201_CREATED,
             summary="Allocate from the special account to the expenditure account of the same fund (财政拨付)",
             description="Two transactions, out of the special account and into the expenditure account, in one "
                         "database transaction; the in-leg's key is `<Idempotency-Key>#in`.",
             dependencies=[FINANCE])
def record_allocation(body: AllocationIn, session: SessionDep, response: Response,
                      idempotency_key: IdempotencyKey = None) -> AllocationRecorded:
    recording = service.record_allocation(session, body, idempotency_key)
    _created(recording.replayed, response)
    out_leg, in_leg = _transactions(session, recording.transactions)
    special = session.get(FundBankAccount, out_leg.account_id)
    expenditure = session.get(FundBankAccount, in_leg.account_id)
    return AllocationRecorded(out_leg=out_leg, in_leg=in_leg, special_balance=fen_to_yuan(special.balance_fen),
                              expenditure_balance=fen_to_yuan(expenditure.balance_fen), replayed=recording.replayed)


# -- transactions and statements -------------------------------------------------------------------------------------


@router.post("/transactions", response_model=Recorded, status_code=status.HTTP_201_CREATED,
             summary="Record a movement entered by hand on one account; a usage-rule violation is refused",
             description="Checked against the usage rules of 000 二(四)1 (GET /treasury/usage-rules): a violation is "
                         "409 USAGE_RULE_VIOLATION with the clause. The special account's movements are the finance "
                         "officer's, the income and expenditure accounts' the accountant's.",
             dependencies=[KEEPERS])
def record_transaction(body: TransactionIn, session: SessionDep, response: Response,
                       idempotency_key: IdempotencyKey = None) -> Recorded:
    return _recorded(session, service.record_transaction(session, body, idempotency_key), response)


@router.get("/transactions", response_model=TransactionPage, summary="Movements, cursor-paginated",
            dependencies=[READERS])
def list_transactions(
    session: SessionDep,
    account_id: Annotated[str | None, Query(max_length=36)] = None,
    fund: Fund = None,
    transaction_status: Annotated[str | None, Query(alias="status", pattern="^(accepted|flagged)$")] = None,
    source: Annotated[str | None, Query(pattern="^(manual|bank_statement)$")] = None,
    from_date: IsoDate | None = None,
    to_date: IsoDate | None = None,
    after: Cursor = None,
    limit: Limit = 100,
) -> TransactionPage:
    rows, next_cursor = service.list_transactions(session, account_id=account_id, fund=fund,
                                                  status=transaction_status, source=source, from_date=from_date,
                                                  to_date=to_date, after=after, limit=limit)
    return TransactionPage(items=_transactions(session, rows), next_cursor=next_cursor)


@router.get("/transactions/{transaction_id}", response_model=TransactionOut, summary="One movement",
            dependencies=[READERS])
def get_transaction(transaction_id: str, session: SessionDep) -> TransactionOut:
    return _transactions(session, [service.get_transaction(session, transaction_id)])[0]


@router.post("/bank-statements", response_model=StatementImported, status_code=status.HTTP_201_CREATED,
             summary="Import bank statement lines of one account; violations are recorded and flagged",
             description="The lines already happened: each is checked like any movement and, when it breaks a usage "
                         "rule, recorded with status `flagged` and the violation (also in the event). Each line's "
                         "key is its bank line id: importing the same statement again records nothing twice (200).",
             dependencies=[KEEPERS])
def import_statement(body: StatementIn, session: SessionDep, response: Response) -> StatementImported:
    result = service.import_statement(session, body)
    _created(result.recorded == 0, response)
    return StatementImported(
        account_id=result.account.id, statement_ref=body.statement_ref, lines=len(body.lines),
        recorded=result.recorded, replayed=result.replayed, flagged=result.flagged,
        balance=fen_to_yuan(result.account.balance_fen), transactions=_transactions(session, result.transactions),
    )


# -- checks ----------------------------------------------------------------------------------------------------------


@router.get("/income-accounts/month-end", response_model=MonthEndCheck,
            summary="Income accounts whose balance at the end of the month is not zero (R4, S13)",
            description="A month that has not ended is refused (422 ``MONTH_NOT_OVER``): it has no month end yet.",
            dependencies=[READERS])
def income_month_end(
    session: SessionDep,
    month: Annotated[Period | None, Query(description="YYYYMM; default: the previous month")] = None,
) -> MonthEndCheck:
    check = service.month_end_check(session, month or service.previous_month())
    return MonthEndCheck(
        month=check.month, month_end=check.month_end, checked=check.checked,
        non_zero=[NonZeroIncomeAccount(account_id=a.id, fund=a.fund, bank_name=a.bank_name, account_no=a.account_no,
                                       closing_balance=fen_to_yuan(fen)) for a, fen in check.non_zero],
    )


@router.get("/usage-rules", summary="The usage rules every movement is checked against, with their seed clauses",
            dependencies=[READERS])
def usage_rules() -> list[dict]:
    return [
        {"id": r.id, "account_kind": r.account_kind, "direction": r.direction, "clause": r.clause,
         "seed_text": r.seed_text, "summary": r.summary, "suspicion": r.suspicion,
         "allowed": [{"counterparty": f.counterparty, "purposes": sorted(f.purposes),
                      "needs_reference": f.needs_reference, "needs_remittance": f.needs_remittance}
                     for f in r.allowed]}
        for r in rules.RULES
    ]
