from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Path, Query, Response, status

from services.accounts.ledger import service
from services.accounts.ledger.schemas import (
    AccountOut,
    ContributionPosting,
    EntryOut,
    EntryPage,
    InterestRateIn,
    InterestRateOut,
    InterestRunIn,
    InterestRunOut,
    PostingOut,
    Statement,
    TransferInPosting,
    TransferOutPosting,
    Verification,
    WithdrawalPosting,
)
from services.kernel import clock
from services.kernel.auth import allow
from services.kernel.money import fen_to_yuan
from services.kernel.service_app import EngineDep, SessionDep

ACCOUNTANT = allow("accountant")
READERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "accountant", "internal_auditor")

router = APIRouter(prefix="/individual-accounts", tags=["individual accounts"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key",
                                              description="business idempotency key of this posting (required)")]
Year = Annotated[int, Path(ge=1990, le=2200)]


def _entry(entry) -> EntryOut:  # noqa: ANN001
    return EntryOut(
        id=entry.id, person_id=entry.person_id, entry_type=entry.entry_type, amount=fen_to_yuan(entry.amount_fen),
        year=entry.year, period=entry.period, reference=entry.reference, reason=entry.reason,
        idempotency_key=entry.idempotency_key, posted_at=entry.posted_at, posted_by=entry.posted_by,
    )


def _posted(posting: service.Posting, response: Response) -> PostingOut:
    """201 for a new entry; 200 when the key was seen before and the original entry is returned."""
    response.status_code = status.HTTP_200_OK if posting.replayed else status.HTTP_201_CREATED
    return PostingOut(entry=_entry(posting.entry), balance=fen_to_yuan(posting.balance_fen),
                      account_status=posting.account_status, replayed=posting.replayed)


# -- interest rates and runs (declared before /{person_id} so that these paths are not read as a person id) ----------


@router.get("/interest-rates", response_model=list[InterestRateOut], summary="记账利率 by year",
            dependencies=[READERS])
def list_interest_rates(session: SessionDep) -> list[InterestRateOut]:
    return [InterestRateOut.model_validate(r, from_attributes=True) for r in service.list_interest_rates(session)]


@router.put("/interest-rates/{year}", response_model=InterestRateOut,
            summary="Set the 记账利率 of a year (a decimal string; floats refused)", dependencies=[ACCOUNTANT])
def set_interest_rate(year: Year, body: InterestRateIn, session: SessionDep) -> InterestRateOut:
    return InterestRateOut.model_validate(service.set_interest_rate(session, year, body.rate), from_attributes=True)


@router.post("/interest-runs", response_model=InterestRunOut, summary="Credit a year's interest to every open account",
             description="Batched, one transaction per batch; idempotent per (person, year) through the key "
                         "`interest:{year}:{person_id}`, so running it again credits nothing twice.",
             dependencies=[ACCOUNTANT])
async def run_interest(body: InterestRunIn, engine: EngineDep) -> InterestRunOut:
    # The run opens its own sessions, one per batch; it runs in a worker thread with the caller's context.
    run = await anyio.to_thread.run_sync(service.run_interest, engine, body.year)
    return InterestRunOut(
        year=run.year, rate=run.rate, accounts=run.accounts, credited=run.credited,
        already_credited=run.already_credited, zero_interest=run.zero_interest,
        skipped_later_interest=run.skipped_later_interest, total_interest=fen_to_yuan(run.total_fen),
        batches=run.batches,
    )


# -- postings --------------------------------------------------------------------------------------------------------


@router.post("/{person_id}/contributions", response_model=PostingOut, status_code=status.HTTP_201_CREATED,
             summary="Credit an individual contribution (个人缴费记账)", dependencies=[ACCOUNTANT])
def post_contribution(person_id: str, body: ContributionPosting, session: SessionDep, response: Response,
                      idempotency_key: IdempotencyKey = None) -> PostingOut:
    return _posted(service.post_contribution(session, person_id, body, idempotency_key), response)


@router.post("/{person_id}/transfers-in", response_model=PostingOut, status_code=status.HTTP_201_CREATED,
             summary="Credit a balance transferred from another region (转入)", dependencies=[ACCOUNTANT])
def post_transfer_in(person_id: str, body: TransferInPosting, session: SessionDep, response: Response,
                     idempotency_key: IdempotencyKey = None) -> PostingOut:
    return _posted(service.post_transfer_in(session, person_id, body, idempotency_key), response)


@router.post("/{person_id}/transfers-out", response_model=PostingOut, status_code=status.HTTP_201_CREATED,
             summary="Debit a transfer to another region (转出); without an amount the whole balance, closing it",
             dependencies=[ACCOUNTANT])
def post_transfer_out(person_id: str, body: TransferOutPosting, session: SessionDep, response: Response,
                      idempotency_key: IdempotencyKey = None) -> PostingOut:
    return _posted(service.post_transfer_out(session, person_id, body, idempotency_key), response)


@router.post("/{person_id}/withdrawals", response_model=PostingOut, status_code=status.HTTP_201_CREATED,
             summary="Pay out the whole balance on death or settlement and close the account (支取)",
             dependencies=[ACCOUNTANT])
def post_withdrawal(person_id: str, body: WithdrawalPosting, session: SessionDep, response: Response,
                    idempotency_key: IdempotencyKey = None) -> PostingOut:
    return _posted(service.post_withdrawal(session, person_id, body, idempotency_key), response)


# -- reading ---------------------------------------------------------------------------------------------------------


@router.get("/{person_id}", response_model=AccountOut, summary="One individual account", dependencies=[READERS])
def get_account(person_id: str, session: SessionDep) -> AccountOut:
    account = service.get_account(session, person_id)
    return AccountOut(person_id=account.person_id, balance=fen_to_yuan(account.balance_fen), status=account.status,
                      opened_at=account.opened_at, updated_at=account.updated_at, version=account.version)


@router.get("/{person_id}/entries", response_model=EntryPage, summary="Ledger entries, cursor-paginated",
            dependencies=[READERS])
def list_entries(
    person_id: str,
    session: SessionDep,
    entry_type: Annotated[str | None,
                          Query(pattern="^(contribution|interest|transfer_in|transfer_out|withdrawal)$")] = None,
    year: Annotated[int | None, Query(ge=1990, le=2200)] = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EntryPage:
    rows, next_cursor = service.list_entries(session, person_id, entry_type=entry_type, year=year, after=after,
                                             limit=limit)
    return EntryPage(items=[_entry(e) for e in rows], next_cursor=next_cursor)


@router.get("/{person_id}/verify", response_model=Verification,
            summary="Cached balance against the balance derived from the entries", dependencies=[READERS])
def verify_account(person_id: str, session: SessionDep) -> Verification:
    check = service.verify_account(session, person_id)
    return Verification(person_id=check.person_id, cached_balance=fen_to_yuan(check.cached_fen),
                        derived_balance=fen_to_yuan(check.derived_fen), entries=check.entries,
                        consistent=check.consistent)


@router.get("/{person_id}/statement", response_model=Statement, summary="Yearly statement (对账单)",
            dependencies=[READERS])
def get_statement(
    person_id: str,
    session: SessionDep,
    year: Annotated[int | None, Query(ge=1990, le=2200, description="default: this year")] = None,
) -> Statement:
    result = service.statement(session, person_id, year or clock.china_now().year)
    return Statement(
        person_id=person_id, year=result.year, account_status=result.account.status, interest_rate=result.rate,
        opening_balance=fen_to_yuan(result.opening_fen), entries=[_entry(e) for e in result.entries],
        total_credits=fen_to_yuan(result.credits_fen), total_debits=fen_to_yuan(result.debits_fen),
        interest=fen_to_yuan(result.interest_fen), closing_balance=fen_to_yuan(result.closing_fen),
    )
