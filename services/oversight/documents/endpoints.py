"""Documents oversight issues as PDF; the public verification every issuing service answers."""

from datetime import date
from typing import Annotated, Literal

from fastapi import Path as PathParam
from fastapi import Query
from fastapi.responses import Response

from services.kernel import clock
from services.kernel.auth import allow
from services.kernel.documents.endpoints import (
    PDF_OR_XLSX_RESPONSES,
    PDF_RESPONSES,
    documents_router,
    pdf_response,
    xlsx_response,
)
from services.kernel.documents.models import IssuedDocument
from services.kernel.documents.registry import Readers
from services.kernel.errors import Invalid
from services.kernel.service_app import EngineDep
from services.oversight.budget import endpoints as budget_routes
from services.oversight.budget.endpoints import FundPath, YearPath
from services.oversight.documents import service
from services.oversight.incidents import endpoints as incident_routes
from services.oversight.inspections import endpoints as inspection_routes

# Who fetches an issued document again: the readers of what it is about (its own GET routes'). Oversight's objects
# have no area, so no object rule.
router = documents_router({
    service.FEEDBACK_LETTER.code: Readers.like(inspection_routes.READERS),
    service.BUDGET_REPORT.code: Readers.like(budget_routes.READERS),
    service.INCIDENT_SUMMARY.code: Readers.like(incident_routes.READERS),
})

Format = Annotated[Literal["pdf", "xlsx"], Query(alias="format", description="pdf, or xlsx: the tables as a workbook")]


def _answer(document: IssuedDocument, form: str) -> Response:
    return pdf_response(document) if form == "pdf" else xlsx_response(document)


@router.post("/inspection-feedback-letters/{inspection_id}", status_code=201, response_class=Response,
             responses=PDF_RESPONSES, dependencies=[allow("oversight_officer")],
             summary="Issue the inspection's feedback letter as a document (问题反馈函, PDF)",
             description="After the letter is recorded (POST /inspections/{id}/feedback-letter, 409 "
                         "FEEDBACK_LETTER_NOT_ISSUED before): every finding with its amount and deadline.")
def issue_feedback_letter(inspection_id: str, engine: EngineDep) -> Response:
    return pdf_response(service.issue_feedback_letter(engine, inspection_id))


@router.post("/budget-reports/{fund}/{year}", status_code=201, response_class=Response,
             responses=PDF_OR_XLSX_RESPONSES, dependencies=[allow("oversight_officer", "accountant", "agency_approver")],
             summary="Issue a fund's budget tables and execution report (预算表及执行情况报告, PDF or Excel)",
             description="002 二(三)、三(一): the approved budget in force and its execution to ``month`` "
                         "(default: the last month over) with early warnings; 409 BUDGET_NOT_APPROVED before.")
def issue_budget_report(
    fund: FundPath,
    year: YearPath,
    engine: EngineDep,
    month: Annotated[int | None, Query(ge=1, le=12, description="1–12; default: the last month over")] = None,
    form: Format = "pdf",
) -> Response:
    return _answer(service.issue_budget_report(engine, fund, year, month), form)


@router.post("/incident-summaries/{year}/{half}", status_code=201, response_class=Response,
             responses=PDF_OR_XLSX_RESPONSES, dependencies=[allow("oversight_officer")],
             summary="Issue the half-year major-incident summary (要情半年汇总报告, PDF or Excel)",
             description="001 第三十一条: the half's incidents (by discovery date) by kind and channel, each with its "
                         "reports; overdue as of ``as_of`` (default today, never in the future).")
def issue_incident_summary(
    year: Annotated[int, PathParam(ge=2000, le=2200)],
    half: Annotated[int, PathParam(ge=1, le=2, description="1: January–June, 2: July–December")],
    engine: EngineDep,
    as_of: Annotated[date | None, Query(description="default: today (China)")] = None,
    form: Format = "pdf",
) -> Response:
    today = clock.china_today()
    if as_of is not None and as_of > today:
        raise Invalid("AS_OF_IN_FUTURE", f"统计截止日 {as_of.isoformat()} 不能晚于今天")
    return _answer(service.issue_incident_summary(engine, year, half, as_of or today), form)
