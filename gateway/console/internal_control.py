"""The agency's internal control (稽核内控) in the console: samples of a month's or a quarter's business drawn from the
archive (a background job), each sample's acts with the auditor's finding form (conform, or not conform with the
reason; an act the auditor decided is refused by the API, CONTROL_REVIEW_OWN_ACT, and the refusal shown in its
words), the redraw check from the recorded seed (a job); the yearly report generated and submitted to oversight
(001 第二十四条) with its PDF; and oversight's view of the report's deadline."""

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from gateway.console import format as fmt
from gateway.console import forms
from gateway.console import reports as r
from gateway.console.calls import ApiError
from gateway.console.pages import Page, ScreenRefused, screen_page
from gateway.console.tables import Column, Filter, Table
from services.kernel.clock import china_today

router = APIRouter(prefix="/internal-control")
API = "/api/accounts/internal-control"
FINDING = ("POST", f"{API}/samples/{{sample_id}}/items/{{sampled_id}}/finding")
REDRAW = ("POST", f"{API}/samples/{{sample_id}}/redraw")
SUBMIT = ("POST", f"{API}/reports/{{year}}")
STAFF_REPORTS = (("GET", "/identity/conflict-rules"), ("GET", "/identity/reports/long-tenure"))
Id = Annotated[str, Path(max_length=100, pattern=r"^[\w-]+$")]
Year = Annotated[str, Query(max_length=4, pattern=r"^(\d{4})?$")]

fmt.LABELS.update({
    "sample_kind": {"monthly": "月度抽查", "quarterly": "季度抽查"},
    "control_finding": {"conform": "符合规定", "not_conform": "不符合规定"},
    "control_deadline": {"submitted": "按时报送", "late": "逾期报送", "missing": "未报送", "unknown": "期限未知（日历未覆盖）"},
})
fmt.JOB_RESULT_LABELS.update({
    "sample_id": "样本编号", "period": "所属期", "seed": "随机种子", "population": "总体件数",
    "population_sha256": "总体哈希", "size": "抽取件数", "population_unchanged": "总体未变",
    "identical": "样本相同", "drawn_item_ids": "抽取的档案件"})

SAMPLES = Table(
    "内控抽查样本", f"{API}/samples",
    (Column("drawn_at", "抽取时间", "time"), Column("period", "所属期", link="/console/internal-control/samples/{id}"),
     Column("kind", "类型", "label:sample_kind"), Column("region", "行政区划"), Column("rate_percent", "比例（%）", "count"),
     Column("population", "总体件数", "count"), Column("size", "抽取件数", "count"), Column("seed", "随机种子"),
     Column("drawn_by", "抽取人")),
    (Filter("year", "年度"),))

REPORTS = Table(
    "稽核内控年度报告", f"{API}/reports",
    (Column("year", "年度", "count"), Column("document_number", "文书编号", link="/console/internal-control/reports/{id}.pdf"),
     Column("region", "行政区划"), Column("samples", "样本数", "count"), Column("sampled_items", "抽查件数", "count"),
     Column("reviewed", "已核查", "count"), Column("nonconforming", "不符合规定", "count"),
     Column("submitted_at", "报送时间", "time"), Column("submitted_by", "报送人")),
    items=None, cursor=None)

r.add_table(router, "control_samples", "/samples", SAMPLES,
            intro="每月（004 第6项）、每季度（001 第十九条）从档案中按比例抽取已办结业务，高风险业务加权；记录随机种子，可复核重抽。")

DRAW = forms.FormSet(
    "抽取内控样本", "/console/internal-control/draw",
    "从已结束的月份或季度的业务中按比例抽取（后台任务，完成后在任务页查看结果）；不填随机种子时由系统生成并记录。",
    {"sample": forms.Entry("抽取样本", f"{API}/samples", (
        forms.Input("kind", "text", "类型", {"monthly": "月度抽查", "quarterly": "季度抽查"}),
        forms.Input("period", "text", "所属期（月度如 2026-11，季度如 2026-Q3）"),
        forms.Input("rate_percent", "int?", "抽取比例（%，默认 5）"),
        forms.Input("seed", "int?", "随机种子（可不填）")),
        "/console/jobs/accounts/{id}")},
    button="抽取", form_id="draw")
DRAW.add_routes(router, "control_draw")

# -- a sample: its acts and the finding on each -------------------------------------------------------------------------


async def _sample_page(page: Page, sample_id: str, *, status_code: int = 200, error: str | None = None,
                       refused: str | None = None, form: dict[str, str] | None = None) -> Response:
    sample = await page.calls.json("GET", f"{API}/samples/{quote(sample_id, safe='')}")
    return await page.render("control_sample.html", status_code=status_code, sample=sample, error=error,
                             refused=refused, form=form or {}, may_find=await page.may(*FINDING),
                             may_redraw=await page.may(*REDRAW))


@router.get("/samples/{sample_id}")
async def sample(page: Annotated[Page, screen_page("control_samples")], sample_id: Id) -> Response:
    return await _sample_page(page, sample_id)


@router.post("/samples/{sample_id}/items/{sampled_id}/finding")
async def record_finding(page: Annotated[Page, screen_page("control_samples")], sample_id: Id,
                         sampled_id: Id) -> Response:
    """The finding on one act; a refusal (one's own act, a reason missing, recorded already) shown beside it."""
    async def again(**context: Any) -> Response:
        return await _sample_page(page, sample_id, refused=sampled_id, **context)

    path = f"{API}/samples/{quote(sample_id, safe='')}/items/{quote(sampled_id, safe='')}/finding"
    back = f"/console/internal-control/samples/{quote(sample_id, safe='')}#item-{quote(sampled_id, safe='')}"
    return await forms.submit(page, FINDING[1], path, {"finding": "text", "reason": "text?"}, back, again)


@router.post("/samples/{sample_id}/redraw")
async def redraw(page: Annotated[Page, screen_page("control_samples")], sample_id: Id) -> Response:
    """The draw made again from the recorded seed (a job): the same population, the same sample?"""
    if not await page.may(*REDRAW):
        raise ScreenRefused()
    job = await page.calls.json("POST", f"{API}/samples/{quote(sample_id, safe='')}/redraw")
    return page.redirect(f"/console/jobs/accounts/{quote(job['id'], safe='')}")


# -- the yearly report: generated, submitted to oversight, its PDF -------------------------------------------------


async def _staff_figures(page: Page) -> dict[str, Any]:
    """The identity reports' figures the report quotes, read for the auditor when the role may read them."""
    if not all([await page.may(*route) for route in STAFF_REPORTS]):
        return {}
    rules = await page.calls.json("GET", "/identity/conflict-rules")
    tenure = await page.calls.json("GET", "/identity/reports/long-tenure")
    return {"conflict_rules": str(len(rules)), "long_tenure_staff": str(len(tenure)), "tenure_years": "5",
            "read_on": china_today().isoformat()}


async def _report_actions(page: Page, rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    may_submit = await page.may(*SUBMIT)
    return {"may_submit": may_submit, "typed": await _staff_figures(page) if may_submit else {},
            "this_year": china_today().year, "error": None}


r.add_table(router, "control_reports", "/reports", REPORTS, template="control_reports.html", extra=_report_actions,
            intro="每年12月底前对本年度稽核内控工作进行总结，报送人社部门基金监督机构（001 第二十四条）。")


def report_body(form: dict[str, str]) -> dict[str, Any]:
    """The summary, and the staff figures when the auditor gave them (a report without them says so)."""
    body: dict[str, Any] = {"summary": form.get("summary", "").strip()}
    staff = forms.body_of({"conflict_rules": "int", "long_tenure_staff": "int", "tenure_years": "int?",
                           "read_on": "text", "note": "text?"}, form)
    if any(str(staff.get(k, "")).strip() for k in ("conflict_rules", "long_tenure_staff")):
        body["staff"] = staff
    return body


@router.post("/reports")
async def submit_report(page: Annotated[Page, screen_page("control_reports")]) -> Response:
    """Generates and submits the year's report; back to the list, where its PDF is. A refusal: the form again."""
    if not await page.may(*SUBMIT):
        raise ScreenRefused()
    year = page.form.get("year", "").strip()
    response = await page.calls.call("POST", f"{API}/reports/{quote(year or '0', safe='')}",
                                     json=report_body(page.form))
    if response.status_code == 201:
        return page.redirect("/console/internal-control/reports")
    rows = await page.calls.json("GET", REPORTS.api)
    return await page.render("control_reports.html", status_code=response.status_code, table=REPORTS, rows=rows,
                             query={}, intro="", sort_href=lambda c: "#", excel_href="/console/internal-control/reports.xlsx",
                             next_href=None, may_submit=True, typed=page.form, this_year=china_today().year,
                             error=ApiError.of(response).in_words())


@router.get("/reports/{report_id}.pdf")
async def report_pdf(page: Annotated[Page, screen_page("control_reports")], report_id: Id) -> Response:
    """The report's PDF as it was issued, passed through as a download."""
    response = await page.calls.call("GET", f"{API}/reports/{quote(report_id, safe='')}/document")
    if response.status_code != 200:
        raise ApiError.of(response)
    headers = {k: v for k, v in response.headers.items() if k.lower() == "content-disposition"
               or k.lower().startswith("x-document-")}
    return page.finish(Response(response.content, media_type="application/pdf", headers=headers))


# -- oversight: the report's deadline ------------------------------------------------------------------------------


@router.get("/deadline")
async def deadline(page: Annotated[Page, screen_page("control_deadline")], year: Year = "") -> Response:
    shown = year or str(china_today().year)
    mine = await page.calls.json("GET", f"/api/oversight/internal-control/reports/{shown}")
    received = await page.calls.json("GET", "/api/oversight/internal-control/reports", params={"year": shown})
    return await page.render("control_deadline.html", year=shown, mine=mine, received=received)
