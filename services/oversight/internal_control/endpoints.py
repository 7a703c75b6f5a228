"""The deadline of the agency's internal-control yearly report (001 第二十四条), as oversight tracks it."""

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from services.kernel import clock, context
from services.kernel.auth import allow, ensure_in_region, region_filter
from services.kernel.identifiers import RegionCode
from services.kernel.service_app import SessionDep
from services.oversight.internal_control.deadline import due_of, status_of
from services.oversight.internal_control.models import ControlReportReceipt

READERS = allow("oversight_officer", "internal_auditor")

router = APIRouter(prefix="/internal-control", tags=["internal control"])


class ReceivedReport(BaseModel):
    document_number: str
    document_sha256: str
    submitted_at: datetime
    submitted_by: str
    received_at: datetime
    samples: int
    sampled_items: int
    nonconforming: int


class ReportDeadline(BaseModel):
    year: int
    region: str
    due_on: date | None = Field(description="the last working day of December; null when the calendar does not "
                                            "know the year")
    due_note: str | None
    status: str = Field(description="submitted (on time) | late | missing | unknown (the due day is unknown)")
    overdue: bool = Field(description="missing and the due day has passed")
    report: ReceivedReport | None


@router.get("/reports/{year}", response_model=ReportDeadline, dependencies=[READERS],
            summary="The yearly internal-control report of an area: due day, submitted / late / missing / unknown")
def report_deadline(year: Annotated[int, Path(ge=1990, le=2200)], session: SessionDep,
                    region: Annotated[RegionCode | None, Query(description="行政区划; default: the reader's")] = None) \
        -> ReportDeadline:
    actor = context.current().actor
    region = region or actor.region or ""
    ensure_in_region(actor, region)
    receipt = session.execute(select(ControlReportReceipt).where(
        ControlReportReceipt.year == year, ControlReportReceipt.region == region)).scalar_one_or_none()
    due = due_of(year)
    status, overdue = status_of(due, receipt.submitted_at if receipt else None, clock.china_today())
    return ReportDeadline(year=year, region=region, due_on=due.day, due_note=due.note, status=status,
                          overdue=overdue,
                          report=ReceivedReport.model_validate(receipt, from_attributes=True) if receipt else None)


@router.get("/reports", response_model=list[ReportDeadline], dependencies=[READERS],
            summary="The yearly reports received in the reader's area for a year, each with its status")
def reports_received(session: SessionDep, year: Annotated[int, Query(ge=1990, le=2200)]) -> list[ReportDeadline]:
    due = due_of(year)
    today = clock.china_today()
    rows = session.execute(select(ControlReportReceipt).where(
        ControlReportReceipt.year == year, region_filter(ControlReportReceipt.region))
        .order_by(ControlReportReceipt.region)).scalars()
    return [ReportDeadline(year=year, region=r.region, due_on=due.day, due_note=due.note,
                           status=status_of(due, r.submitted_at, today)[0], overdue=False,
                           report=ReceivedReport.model_validate(r, from_attributes=True)) for r in rows]
