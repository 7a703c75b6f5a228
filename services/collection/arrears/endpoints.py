"""Arrears and late fees (欠费与滞纳金): reports per employer and line, and arrears notices (催缴通知)."""

from typing import Annotated

from fastapi import APIRouter, Query, status

from services.collection.arrears import service
from services.collection.arrears.schemas import (
    ArrearsReport,
    EmployerTotalsPage,
    NoticeOut,
    NoticePage,
    NoticeRequest,
)
from services.kernel.auth import allow
from services.kernel.service_app import SessionDep
from services.kernel.strict import IsoDate
from services.kernel.settings import SettingsDep

READERS = allow("agency_clerk", "agency_reviewer", "accountant", "internal_auditor")
CLERKS = allow("agency_clerk")

router = APIRouter(prefix="/arrears", tags=["arrears"])


@router.get("", response_model=ArrearsReport,
            summary="Arrears as of a day, line by line with the late-fee computation, and totals per employer",
            description="With `employer_id`: that employer's lines. Without: a page of employers in arrears (by "
                        "employer id, `after`/`limit`). `as_of` defaults to today (China time); a later day projects "
                        "the fee to that day.",
            dependencies=[READERS])
def arrears_report(
    settings: SettingsDep,
    session: SessionDep,
    employer_id: str | None = None,
    as_of: IsoDate | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
) -> ArrearsReport:
    return service.report(session, employer_id=employer_id, as_of=as_of, region=settings.region,
                          after=after, limit=limit)


@router.get("/employers", response_model=EmployerTotalsPage,
            summary="Employers in arrears with their totals (cursor-paginated by employer id)",
            dependencies=[READERS])
def arrears_employers(
    settings: SettingsDep,
    session: SessionDep,
    as_of: IsoDate | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> EmployerTotalsPage:
    return service.employers_page(session, as_of=as_of, region=settings.region,
                                  after=after, limit=limit)


@router.post("/notices", response_model=NoticeOut, status_code=status.HTTP_201_CREATED,
             summary="Issue an arrears notice (催缴通知) to an employer with the line-by-line computation",
             dependencies=[CLERKS])
def issue_notice(body: NoticeRequest, settings: SettingsDep, session: SessionDep) -> NoticeOut:
    return service.issue_notice(session, employer_id=body.employer_id, as_of=body.as_of, region=settings.region)


@router.get("/notices", response_model=NoticePage, summary="Issued notices, newest first", dependencies=[READERS])
def list_notices(
    session: SessionDep,
    employer_id: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> NoticePage:
    items, next_cursor = service.list_notices(session, employer_id=employer_id, after=after, limit=limit)
    return NoticePage(items=items, next_cursor=next_cursor)


@router.get("/notices/{notice_id}", response_model=NoticeOut, summary="One notice with its computation document",
            dependencies=[READERS])
def get_notice(notice_id: str, session: SessionDep) -> NoticeOut:
    return service.get_notice(session, notice_id)
