"""Recovery of overpayments (追回多发待遇, 001 第二十九条(四)、第二十九条(五)): notices, repayments, offsets, escalation."""

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from sqlmodel import Session

from services.benefits.models import Overpayment, Recovery, RecoveryNotice
from services.benefits.recovery import service
from services.benefits.recovery.schemas import (
    EscalationIn,
    EscalationOut,
    IndividualAccountRequestIn,
    IndividualAccountRequestOut,
    NoticeDetail,
    NoticeIn,
    NoticeOut,
    NoticePage,
    OffsetIn,
    OverpaymentOut,
    OverpaymentPage,
    Recorded,
    RecoveryOut,
    RepaymentIn,
)
from services.kernel.auth import allow
from services.kernel.money import fen_to_yuan, yuan_to_fen
from services.kernel.service_app import SessionDep

CLERKS = allow("agency_clerk")
CASHIERS = allow("cashier")
OFFSETTERS = allow("agency_clerk", "accountant")
READERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "accountant", "cashier", "internal_auditor")

router = APIRouter(prefix="/recovery", tags=["recovery"])

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key",
                                              description="business idempotency key of this repayment (required)")]
_RECORDED = {201: {"description": "recorded"}, 200: {"description": "the same business key again: nothing changed"}}


def notice_out(notice: RecoveryNotice) -> NoticeOut:
    return NoticeOut(id=notice.id, person_id=notice.person_id, amount=fen_to_yuan(notice.amount_fen),
                     recovered=fen_to_yuan(notice.recovered_fen),
                     remaining=fen_to_yuan(service.remaining_fen(notice)), deadline=notice.deadline,
                     status=notice.status, issued_at=notice.issued_at, issued_by=notice.issued_by,
                     escalated_at=notice.escalated_at)


def overpayment_out(o: Overpayment) -> OverpaymentOut:
    return OverpaymentOut(id=o.id, person_id=o.person_id, payroll_line_id=o.payroll_line_id, period=o.period,
                          amount=fen_to_yuan(o.amount_fen), reason=o.reason, found_at=o.found_at,
                          recovery_notice_id=o.recovery_notice_id)


def recovery_out(r: Recovery) -> RecoveryOut:
    return RecoveryOut(id=r.id, notice_id=r.notice_id, method=r.method, amount=fen_to_yuan(r.amount_fen),
                       reference=r.reference, recorded_at=r.recorded_at, recorded_by=r.recorded_by, status=r.status,
                       reversed_at=r.reversed_at, reversed_by=r.reversed_by, reversal_reason=r.reversal_reason)


def _detail(session: Session, notice: RecoveryNotice) -> NoticeDetail:
    overpayments, recoveries = service.notice_details(session, notice)
    return NoticeDetail(**notice_out(notice).model_dump(), overpayments=[overpayment_out(o) for o in overpayments],
                        recoveries=[recovery_out(r) for r in recoveries])


def _recorded(result: service.Recorded, response: Response) -> Recorded:
    if result.replayed:
        response.status_code = status.HTTP_200_OK
    return Recorded(recovery=recovery_out(result.recovery), notice=notice_out(result.notice), replayed=result.replayed)


@router.post("/notices", response_model=NoticeDetail, status_code=status.HTTP_201_CREATED, dependencies=[CLERKS],
             summary="Issue a recovery notice (追回社会保险待遇告知书) for the person's open overpayments",
             description="Benefits also issues one automatically when a death or an imprisonment reveals "
                         "overpayments; 409 NO_OPEN_OVERPAYMENTS when there is nothing left to put on a notice.")
def issue_notice(body: NoticeIn, session: SessionDep) -> NoticeDetail:
    return _detail(session, service.create_notice(session, body.person_id))


@router.get("/notices", response_model=NoticePage, dependencies=[READERS],
            summary="Recovery notices of the caller's area, cursor-paginated")
def list_notices(
    session: SessionDep,
    person_id: str | None = None,
    notice_status: Annotated[str | None, Query(alias="status",
                                               pattern="^(open|recovered|escalated|written_off)$")] = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> NoticePage:
    rows, cursor = service.list_notices(session, person_id=person_id, status=notice_status, after=after, limit=limit)
    return NoticePage(items=[notice_out(n) for n in rows], next_cursor=cursor)


@router.get("/notices/{notice_id}", response_model=NoticeDetail, dependencies=[READERS],
            summary="A recovery notice with its overpayments and recoveries")
def get_notice(notice_id: str, session: SessionDep) -> NoticeDetail:
    return _detail(session, service.get_notice(session, notice_id))


@router.get("/overpayments", response_model=OverpaymentPage, dependencies=[READERS],
            summary="Overpayments of the caller's area (open_only: not yet on a notice), cursor-paginated")
def list_overpayments(
    session: SessionDep,
    person_id: str | None = None,
    open_only: bool = False,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> OverpaymentPage:
    rows, cursor = service.list_overpayments(session, person_id=person_id, open_only=open_only, after=after,
                                             limit=limit)
    return OverpaymentPage(items=[overpayment_out(o) for o in rows], next_cursor=cursor)


@router.post("/notices/{notice_id}/repayments", response_model=Recorded, status_code=status.HTTP_201_CREATED,
             responses=_RECORDED, dependencies=[CASHIERS],
             summary="Record money paid back against a notice (Idempotency-Key required)",
             description="Never more than what remains (409 OVER_RECOVERY). The same key with the same content "
                         "answers the original (200, replayed); with other content 409 IDEMPOTENCY_KEY_REUSED.")
def record_repayment(notice_id: str, body: RepaymentIn, session: SessionDep, response: Response,
                     idempotency_key: IdempotencyKey = None) -> Recorded:
    result = service.record_repayment(session, notice_id, amount_fen=yuan_to_fen(body.amount), paid_on=body.paid_on,
                                      reference=body.reference, key=idempotency_key)
    return _recorded(result, response)


@router.post("/notices/{notice_id}/offsets", response_model=Recorded, status_code=status.HTTP_201_CREATED,
             responses=_RECORDED, dependencies=[OFFSETTERS],
             summary="Offset against a later payment, a one-off benefit or the individual account (001 第二十九条(五))",
             description="payroll_offset and one_off_offset by a clerk, individual_account (after the withdrawal in "
                         "accounts) by an accountant. One offset per notice, method and reference.")
def record_offset(notice_id: str, body: OffsetIn, session: SessionDep, response: Response) -> Recorded:
    result = service.record_offset(session, notice_id, method=body.method, amount_fen=yuan_to_fen(body.amount),
                                   reference=body.reference)
    return _recorded(result, response)


@router.post("/notices/{notice_id}/individual-account-requests", response_model=IndividualAccountRequestOut,
             status_code=status.HTTP_201_CREATED, dependencies=[CLERKS],
             summary="Request the offset against a deceased person's individual account (withdrawal in accounts)")
def request_individual_account(notice_id: str, body: IndividualAccountRequestIn,
                               session: SessionDep) -> IndividualAccountRequestOut:
    request = service.request_individual_account_offset(session, notice_id, body.note)
    return IndividualAccountRequestOut(
        notice_id=request["notice_id"], person_id=request["person_id"], remaining=fen_to_yuan(request["remaining_fen"]),
        withdrawal_idempotency_key=request["withdrawal_idempotency_key"], requested_by=request["requested_by"],
        requested_at=request["requested_at"])


@router.post("/escalations", response_model=EscalationOut, dependencies=[CLERKS],
             summary="Escalate notices past their deadline with money remaining (to audit, 001 第二十九条(五))")
def escalate(body: EscalationIn, session: SessionDep) -> EscalationOut:
    return EscalationOut(as_of=body.as_of, escalated=[notice_out(n) for n in service.escalate(session, body.as_of)])
