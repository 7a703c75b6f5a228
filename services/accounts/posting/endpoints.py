"""The posting suspense list (暂挂): collected lines the agency could not post, for accountants and agency reviewers
to retry after the registry was fixed, or dismiss with a note; internal control reads it."""

from typing import Annotated

from fastapi import APIRouter, Query

from services.accounts.models import PostingSuspense
from services.accounts.posting import service
from services.accounts.posting.schemas import (
    DismissRequest,
    ReasonCode,
    RetryAllOut,
    RetryAllRequest,
    RetryOut,
    RetryRequest,
    SuspenseLineOut,
    SuspensePage,
    SuspenseStatus,
    SuspenseSummaryRow,
)
from services.kernel.auth import allow
from services.kernel.money import fen_to_yuan
from services.kernel.periods import Period
from services.kernel.service_app import SessionDep

WORKERS = allow("accountant", "agency_reviewer")
READERS = allow("accountant", "agency_reviewer", "internal_auditor")

router = APIRouter(prefix="/postings/suspense", tags=["agency posting"])


def line_out(row: PostingSuspense) -> SuspenseLineOut:
    return SuspenseLineOut(
        id=row.id, payment_id=row.payment_id, batch_id=row.batch_id, source_event_id=row.source_event_id,
        citizen_id=row.citizen_id, person_id=row.person_id, employer_id=row.employer_id, fund=row.fund,
        period=row.period, employer_amount=fen_to_yuan(row.employer_fen),
        individual_amount=fen_to_yuan(row.individual_fen), late_fee_amount=fen_to_yuan(row.late_fee_fen),
        reason_code=row.reason_code, reason=row.reason, status=row.status, attempts=row.attempts,
        held_at=row.held_at, last_attempt_at=row.last_attempt_at, resolved_at=row.resolved_at,
        resolved_by=row.resolved_by, entry_id=row.entry_id, note=row.note,
    )


@router.get("", response_model=SuspensePage, summary="Held lines (or posted / dismissed ones), cursor-paginated",
            dependencies=[READERS])
def list_lines(
    session: SessionDep,
    status_: Annotated[SuspenseStatus, Query(alias="status")] = SuspenseStatus.held,
    reason_code: ReasonCode | None = None,
    fund: str | None = None,
    period: Annotated[Period | None, Query()] = None,
    batch_id: str | None = None,
    citizen_id: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SuspensePage:
    rows, next_cursor = service.list_lines(
        session, status=status_.value, reason_code=reason_code.value if reason_code else None, fund=fund,
        period=period, batch_id=batch_id, citizen_id=citizen_id, after=after, limit=limit)
    return SuspensePage(items=[line_out(r) for r in rows], next_cursor=next_cursor)


@router.get("/summary", response_model=list[SuspenseSummaryRow], summary="Lines and amounts by status and reason",
            dependencies=[READERS])
def summary(session: SessionDep) -> list[SuspenseSummaryRow]:
    return [SuspenseSummaryRow(status=r["status"], reason_code=r["reason_code"], lines=r["lines"],
                               amount=fen_to_yuan(r["amount_fen"])) for r in service.summary(session)]


@router.post("/retry", response_model=RetryAllOut,
             summary="Check every held line (of a reason, of a batch) against the registry again and post what can "
                     "be posted now", dependencies=[WORKERS])
def retry_all(body: RetryAllRequest, session: SessionDep) -> RetryAllOut:
    result = service.retry_all(session, reason_code=body.reason_code.value if body.reason_code else None,
                               batch_id=body.batch_id, note=body.note)
    return RetryAllOut(tried=result.lines, posted=result.posted, still_held=result.held,
                       out_of_region=result.out_of_region, credited=fen_to_yuan(result.credited_fen),
                       held_by_reason=result.held_by_reason)


@router.get("/{suspense_id}", response_model=SuspenseLineOut, summary="One held line", dependencies=[READERS])
def get_line(suspense_id: str, session: SessionDep) -> SuspenseLineOut:
    return line_out(service.get_line(session, suspense_id))


@router.post("/{suspense_id}/retry", response_model=RetryOut,
             summary="Check a held line against the registry again and post it if it can be posted now",
             dependencies=[WORKERS])
def retry_line(suspense_id: str, body: RetryRequest, session: SessionDep) -> RetryOut:
    row, outcome = service.retry_line(session, suspense_id, note=body.note)
    return RetryOut(outcome="posted" if outcome.status == "posted" else "held", line=line_out(row))


@router.post("/{suspense_id}/dismiss", response_model=SuspenseLineOut,
             summary="Close a held line without posting it, with a note", dependencies=[WORKERS])
def dismiss_line(suspense_id: str, body: DismissRequest, session: SessionDep) -> SuspenseLineOut:
    return line_out(service.dismiss_line(session, suspense_id, note=body.note))
