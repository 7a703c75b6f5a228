"""Public pages (no login): fund disclosure (003 二.4) and the whistleblower form with tracking-code lookup
(001 第三十三条), over oversight's public routes."""

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import Response

from gateway.console.calls import ApiError
from gateway.console.format import FUND_LABELS, WHISTLEBLOWING_CATEGORY_LABELS
from gateway.console.pages import Page, screen_page

router = APIRouter(prefix="/public")

DisclosurePage = Annotated[Page, screen_page("disclosure")]
WhistleblowingPage = Annotated[Page, screen_page("whistleblowing")]


def disclosure_chart(months: list[dict[str, Any]]) -> dict[str, Any]:
    """The chart's series: per closed month, the totals' income, expenditure and accumulated balance (yuan strings;
    the browser plots them, the table beside shows the exact figures)."""
    return {
        "months": [f"{str(m['month'])[:4]}-{str(m['month'])[4:]}" for m in months],
        "income": [m["totals"]["income"] for m in months],
        "expenditure": [m["totals"]["expenditure"] for m in months],
        "balance": [m["totals"]["accumulated_balance"] for m in months],
    }


@router.get("/disclosure")
async def disclosure(page: DisclosurePage, year: Annotated[int | None, Query(ge=2000, le=2200)] = None) -> Response:
    params = {"year": year} if year else {}
    body = await page.calls.json("GET", "/api/oversight/disclosure/funds", public=True, params=params)
    if year is None and body.get("year"):  # the latest closed month's year, every closed month of it
        body = await page.calls.json("GET", "/api/oversight/disclosure/funds", public=True,
                                     params={"year": body["year"]})
    months = sorted(body.get("months", []), key=lambda m: m["month"])
    return await page.render("disclosure.html", year=body.get("year"), months=months,
                             chart=disclosure_chart(months), basis=body.get("basis", {}), funds=FUND_LABELS)


def _report_body(form: dict[str, str]) -> dict[str, Any]:
    anonymous = form.get("anonymous") == "yes"
    body: dict[str, Any] = {"channel": "web", "anonymous": anonymous, "category": form.get("category") or "other",
                            "title": form.get("title", ""), "content": form.get("content", "")}
    for name in ("subject_name", "occurred_on", "amount_claimed"):
        if form.get(name, "").strip():
            body[name] = form[name].strip()
    if not anonymous:
        reporter = {"name": form.get("reporter_name", "")}
        if form.get("reporter_phone", "").strip():
            reporter["phone"] = form["reporter_phone"].strip()
        body["reporters"] = [reporter]
    return body


def _field_errors(error: ApiError) -> list[str]:
    details = error.details if isinstance(error.details, list) else (error.details or {}).get("errors", []) \
        if isinstance(error.details, dict) else []
    found = []
    for item in details:
        if isinstance(item, dict):
            where = item.get("field") or ".".join(str(p) for p in item.get("loc", []) if p != "body")
            found.append(f"{where}：{item.get('message') or item.get('msg') or item.get('code')}")
    return found


@router.get("/whistleblowing")
async def whistleblowing_form(page: WhistleblowingPage) -> Response:
    return await page.render("whistleblowing.html", form={}, errors=[], received=None,
                             categories=WHISTLEBLOWING_CATEGORY_LABELS)


@router.post("/whistleblowing")
async def file_report(page: WhistleblowingPage) -> Response:
    response = await page.calls.call("POST", "/api/oversight/whistleblowing/reports", public=True,
                                     json=_report_body(page.form))
    if response.status_code == 201:
        return await page.render("whistleblowing.html", form={}, errors=[], received=response.json(),
                                 categories=WHISTLEBLOWING_CATEGORY_LABELS, status_code=201)
    error = ApiError.of(response)
    return await page.render("whistleblowing.html", status_code=response.status_code, form=page.form,
                             errors=[error.message, *_field_errors(error)], received=None,
                             categories=WHISTLEBLOWING_CATEGORY_LABELS)


@router.get("/whistleblowing/track")
async def track(page: WhistleblowingPage, code: Annotated[str, Query(max_length=100)] = "") -> Response:
    code = code.strip()
    tracking, error = None, None
    if not code:
        error = "请输入查询码"
    else:
        response = await page.calls.call("GET", f"/api/oversight/whistleblowing/track/{quote(code, safe='')}", public=True)
        if response.status_code == 200:
            tracking = response.json()
        elif response.status_code == 404:
            error = "查询码不存在，请核对后重新输入"
        else:
            error = ApiError.of(response).message
    template = "tracking_result.html" if page.is_htmx else "tracking.html"
    return await page.render(template, code=code, tracking=tracking, error=error)
