"""Supervisor screens (基金监督): the three-way reconciliation matrix (R1, fund × month, 000 二(二)) with each cell's
legs and the employer lines behind it (R2), and the cases with their timeline."""

import asyncio
from collections import Counter
from datetime import date
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from gateway.console import forms
from gateway.console.calls import ApiError
from gateway.console.format import FUND_LABELS
from gateway.console.pages import Page, screen_page
from services.kernel.clock import china_today

router = APIRouter(prefix="/oversight")

ReconciliationPage = Annotated[Page, screen_page("reconciliation")]
CasesPage = Annotated[Page, screen_page("cases")]
MonthParam = Annotated[int, Path(ge=200001, le=220012)]
MAX_SPAN = 12
LINES_SHOWN = 500


def months_ending(end: int, span: int) -> list[int]:
    """``span`` months up to ``end`` (YYYYMM), oldest first."""
    return [shift(end, -back) for back in range(span - 1, -1, -1)]


def shift(month: int, delta: int) -> int:
    """YYYYMM moved by ``delta`` months."""
    index = (month // 100) * 12 + month % 100 - 1 + delta
    return (index // 12) * 100 + index % 12 + 1


def _valid_month(value: int) -> bool:
    return 1 <= value % 100 <= 12


async def _month_report(page: Page, month: int, *, include_matched: bool = False) -> dict[str, Any]:
    params = {"include_matched": "true"} if include_matched else {}
    return await page.calls.json("GET", f"/api/oversight/reconciliation/months/{month}", params=params)


def _check(report: dict[str, Any], check: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["check"] == check)


@router.get("/reconciliation")
async def reconciliation(page: ReconciliationPage, end: Annotated[int | None, Query(ge=200001, le=220012)] = None,
                         span: Annotated[int, Query(ge=1, le=MAX_SPAN)] = 6) -> Response:
    today = china_today()
    end = end if end and _valid_month(end) else today.year * 100 + today.month
    months = months_ending(end, span)
    reports = await asyncio.gather(*(_month_report(page, m) for m in months))
    matrix: dict[str, dict[int, dict[str, Any]]] = {fund: {} for fund in FUND_LABELS}
    closed = {}
    for month, report in zip(months, reports, strict=True):
        closed[month] = report.get("closed") is not None
        for cell in _check(report, "R1")["cells"]:
            matrix.setdefault(cell["fund"], {})[month] = cell
    statuses = Counter(cell["status"] for row in matrix.values() for cell in row.values())
    return await page.render("reconciliation.html", months=months, matrix=matrix, closed=closed,
                             statuses=statuses, span=span, end=end, earlier=shift(end, -span), later=shift(end, span))


@router.get("/reconciliation/{month}/{fund}")
async def reconciliation_cell(page: ReconciliationPage, month: MonthParam,
                              fund: Annotated[str, Path(pattern=r"^[A-Z][A-Z_]{1,9}$")]) -> Response:
    if not _valid_month(month):
        raise ApiError(422, "INVALID_MONTH", "月份格式应为 YYYYMM")
    report = await _month_report(page, month, include_matched=True)
    cell = next((c for c in _check(report, "R1")["cells"] if c["fund"] == fund), None)
    lines = [c for c in _check(report, "R2")["cells"] if c["fund"] == fund]
    lines.sort(key=lambda c: (c["status"] == "matched", c["key"].get("employer_id") or ""))
    template = "reconciliation_cell.html"
    return await page.render(template, month=month, fund=fund, cell=cell, lines=lines[:LINES_SHOWN],
                             lines_total=len(lines), unmatched_lines=sum(1 for c in lines if c["status"] != "matched"),
                             fragment=page.is_htmx, closed=report.get("closed"))


@router.get("/reconciliation/{month}.xlsx")
async def reconciliation_workbook(page: ReconciliationPage, month: MonthParam) -> Response:
    """The API's own workbook, passed through (the same file a client of the API gets)."""
    response = await page.calls.call("GET", f"/api/oversight/reconciliation/months/{month}.xlsx")
    if response.status_code != 200:
        raise ApiError.of(response)
    return page.finish(Response(response.content, media_type=response.headers.get("content-type"),
                                headers={"Content-Disposition": f'attachment; filename="reconciliation-{month}.xlsx"'}))


CASE_FILTERS = ("status", "rule_id", "severity", "unit")
# The case list's columns the API sorts by (its ``sort`` keys, services/oversight/cases/endpoints.py CASE_SORT).
CASE_SORTS = ("rule_id", "severity", "status", "unit", "opened_at", "deadline")


def age_days(opened_at: str, today: date) -> int:
    return (today - date.fromisoformat(opened_at[:10])).days


@router.get("/cases")
async def cases(page: CasesPage, status: str | None = None, rule_id: str | None = None,  # noqa: PLR0913
                severity: str | None = None, unit: str | None = None, open_only: bool = True,
                after: str | None = None, sort: str | None = None) -> Response:
    params: dict[str, Any] = {"limit": 100, "open_only": str(open_only).lower()}
    sort = sort if (sort or "").removeprefix("-") in CASE_SORTS else None
    for name, value in (("status", status), ("rule_id", rule_id), ("severity", severity), ("unit", unit),
                        ("after", after), ("sort", sort)):
        if value:
            params[name] = value
    listing, overdue = await asyncio.gather(page.calls.json("GET", "/api/oversight/cases", params=params),
                                            page.calls.json("GET", "/api/oversight/cases/overdue"))
    today = china_today()
    items = listing["items"]
    by_rule = Counter(c["rule_id"] for c in items)
    by_severity = Counter(c["severity"] for c in items)
    ages = Counter("≤7天" if age_days(c["opened_at"], today) <= 7 else "8–30天"
                   if age_days(c["opened_at"], today) <= 30 else ">30天" for c in items)
    filters = {"status": status or "", "rule_id": rule_id or "", "severity": severity or "", "unit": unit or "",
               "open_only": open_only, "sort": sort or ""}
    return await page.render("cases.html", items=items, next_cursor=listing.get("next_cursor"), overdue=overdue,
                             by_rule=sorted(by_rule.items()), by_severity=by_severity, ages=ages, filters=filters,
                             today=today, age_days=age_days, query_after=quote(listing.get("next_cursor") or ""))


# The case workflow (001 第二十九条 classes, 整改台账, 销号, two-officer dismissal): each step's API route and fields;
# the API's own checks of role, status and follow-up decide, its Chinese message is shown with what was typed.
CASE = forms.Workflow(
    api="/api/oversight/cases/{case_id}", page="/console/oversight/cases/{case_id}", template="case.html", name="case",
    steps={
        "investigate": ("/investigate", {"note": "text?"}),
        "classify": ("/classify", {"class_code": "int", "finding": "text", "amount_fen": "fen?", "reason": "text?"}),
        "follow-ups": ("/follow-ups", {"kind": "text", "evidence": "text", "reference": "text?"}),
        "rectification": ("/rectification", {"measures": "text", "due_date": "text", "responsible": "text?"}),
        "evidence": ("/rectification/evidence", {"note": "text", "document_ref": "text?"}),
        "close": ("/close", {"verification_note": "text"}),
        "dismissal": ("/dismissal", {"reason": "text"}),
        "dismissal-decision": ("/dismissal/decision", {"approve": "bool", "reason": "text?"}),
    })
CASE.add_routes(router, "cases")
