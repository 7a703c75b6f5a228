"""Reconciliation reports and month close, for the fund supervisor (OVERSIGHT.md).

- ``GET /reconciliation/months/{YYYYMM}`` (JSON) and ``GET /reconciliation/months/{YYYYMM}.xlsx``: oversight
  officers and internal auditors (read-only: 稽核内控 reviews the figures but cannot close a month).
- ``POST /reconciliation/months/{YYYYMM}/close``: oversight officers only.
"""

from typing import Annotated

import anyio
from fastapi import APIRouter, Body, Path, Query, Request, Response
from pydantic import Field
from sqlmodel import Session

from services.kernel.auth import allow
from services.kernel.periods import Period
from services.kernel.service_app import SessionDep
from services.kernel.strict import IsoDate, RequestModel
from services.oversight.reconciliation import excel, report, service

READERS = allow("oversight_officer", "internal_auditor")
OFFICERS = allow("oversight_officer")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

router = APIRouter(prefix="/reconciliation", tags=["reconciliation"])

MonthPath = Annotated[Period, Path(description="the month, YYYYMM (费款所属期 for R1/R2, the month for R3–R6)")]
AsOf = Annotated[IsoDate | None, Query(description="judge R3's deadlines as of this day (default: today, China time)")]


class CloseIn(RequestModel):
    note: str | None = Field(default=None, max_length=2000)


# The workbook route comes first: "/months/{month}" would otherwise take "202401.xlsx" as the month.
@router.get("/months/{month}.xlsx", summary="The month's reconciliation as an Excel workbook",
            response_class=Response, dependencies=[READERS],
            responses={200: {"content": {XLSX: {}}, "description": "one sheet per check"}})
async def month_workbook(request: Request, month: MonthPath, as_of: AsOf = None) -> Response:
    def build() -> bytes:
        with Session(request.app.state.engine) as session:
            return excel.workbook_bytes(service.month_report(session, month, as_of=as_of))

    content = await anyio.to_thread.run_sync(build)
    return Response(content=content, media_type=XLSX,
                    headers={"Content-Disposition": f'attachment; filename="reconciliation-{month}.xlsx"'})


@router.get("/months/{month}", summary="The month's reconciliation R1–R6 (live, or the closed snapshot with "
                                       "post-close adjustments)", dependencies=[READERS])
def month_report(
    session: SessionDep,
    month: MonthPath,
    as_of: AsOf = None,
    include_matched: Annotated[bool, Query(description="list R2's matched cells too")] = False,
) -> dict:
    return report.report_json(service.month_report(session, month, as_of=as_of), include_matched=include_matched)


@router.post("/months/{month}/close", status_code=201, summary="Close the month (月结): freeze its cells",
             dependencies=[OFFICERS])
def close_month(session: SessionDep, month: MonthPath, body: Annotated[CloseIn | None, Body()] = None) -> dict:
    close = service.close_month(session, month, note=body.note if body else None)
    return {"month": close.month, "closed_at": close.closed_at, "closed_by": close.closed_by, "as_of": close.as_of,
            "cells": close.cells, "unmatched": close.unmatched, "note": close.note}
