"""Benefits payroll (待遇发放): the monthly runs with their lines per status and the bank's failures, each run's page
offering the steps of the payroll API to the roles it admits — computed by a clerk, approved by an approver (another
person), funding asked of finance by the accountant, the bank file issued, downloaded and re-issued by the cashier.
The bank's results come either from the bank's system (a system client) or as the bank's result file (回盘文件)
the cashier uploads on the run's page: a background job of the payroll API, followed on its job page (progress,
then the lines applied and the rows set aside with their reasons). Finance's list of funding requests is here too: the
approved runs with the date their funds were asked for."""

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path
from fastapi.responses import Response

from gateway.console import forms
from gateway.console import reports as r
from gateway.console.calls import ApiError
from gateway.console.format import FUND_LABELS
from gateway.console.pages import Page, ScreenRefused, screen_page
from gateway.console.tables import Column, Filter, Table

router = APIRouter()

RUNS = "/api/benefits/payroll/runs"
LINE_STATUSES = ("pending", "in_file", "paid", "failed", "withheld")
LINES_SHOWN = 200
FILE_CONTENT = ("GET", "/api/benefits/payroll/bank-files/{file_id}/content")
RESULT_UPLOAD = ("POST", "/api/benefits/payroll/bank-files/{file_id}/result-files")
FileId = Annotated[str, Path(max_length=64, pattern=r"^[\w-]+$")]

RUN_COLUMNS = (
    Column("period", "发放月份", "month"), Column("fund", "险种", "label:fund", link="/console/payroll/runs/{id}"),
    Column("status", "状态", "label:payroll_status"), Column("lines", "发放人数", "count"),
    Column("total", "发放总额", "yuan"), Column("large_lines", "大额笔数", "count"),
    Column("withheld_lines", "暂停发放", "count"), Column("by_status.failed.lines", "失败笔数", "count"),
    Column("by_status.failed.total", "失败金额", "yuan"), Column("computed_by", "计算人"),
    Column("approved_by", "审批人"), Column("funding_requested_at", "申请拨付时间", "time"),
    Column("bank_files", "报盘文件", "count"))
RUN_FILTERS = (Filter("fund", "险种", r.FUNDS, "fund"), Filter("period", "发放月份（YYYYMM）"))
PAYROLL_RUNS = Table("待遇发放批次", RUNS, RUN_COLUMNS, RUN_FILTERS, items=None, cursor=None)
# Finance reads the runs' funding (the API admits the finance officer to the runs, not to their lines or steps).
FUNDING_COLUMNS = (
    Column("id", "发放批次编号"), Column("period", "发放月份", "month"), Column("fund", "险种", "label:fund"),
    Column("status", "状态", "label:payroll_status"), Column("lines", "发放人数", "count"),
    Column("total", "申请拨付金额", "yuan"), Column("approved_by", "审批人"),
    Column("funding_requested_at", "申请拨付时间", "time"))
FUNDING = Table("工资资金申请", RUNS, FUNDING_COLUMNS,
                (*RUN_FILTERS, Filter("funding", "拨付申请", ("requested", "awaiting"), "funding")),
                items=None, cursor=None, caption="已审批的发放批次（申请拨付后由财政从专户拨付至支出户）")
r.add_table(router, "payroll", "/payroll/runs", PAYROLL_RUNS,
            intro="每月按待遇核定结果计算发放批次，经另一人审批、申请财政拨付后报盘，银行回盘失败的款项退回支出户。")


async def _approved_only(page: Page, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in rows if row["status"] != "computed"]


async def _funding_actions(page: Page, rows: list[dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
    return {"may_request": await page.may("POST", RUNS + "/{run_id}/funding-request")}


r.add_table(router, "payroll_funding", "/finance/payroll-funding", FUNDING, template="payroll_funding.html",
            enrich=_approved_only, extra=_funding_actions,
            intro="会计申请拨付后，财政部门在“专户收款登记”中按批次编号登记财政拨付（专户 → 支出户）。")


@router.post("/finance/payroll-funding/{run_id}")
async def request_funding(page: Annotated[Page, screen_page("payroll_funding")], run_id: FileId) -> Response:
    """The accountant asks finance for the run's funds (asking again returns the first request)."""
    route = RUNS + "/{run_id}/funding-request"
    if not await page.may("POST", route):
        raise ScreenRefused()
    await page.calls.json("POST", f"{RUNS}/{quote(run_id, safe='')}/funding-request")
    return page.redirect("/console/finance/payroll-funding")


COMPUTE = forms.FormSet("计算发放批次", "/console/payroll/compute",
                        "按险种和月份计算当月待遇发放（金额全部来自待遇核定，不可录入）；同一险种同一月份再次计算将在审批前重算。",
                        {"run": forms.Entry("计算发放批次", RUNS, (
                            forms.Input("fund", "text", "险种", FUND_LABELS),
                            forms.Input("period", "int", "发放月份（YYYYMM）")),
                            "/console/payroll/runs/{id}", id_key="run.id")},
                        button="计算", form_id="compute")
COMPUTE.add_routes(router, "payroll_compute")


async def _run_extra(page: Page, run: dict[str, Any]) -> dict[str, Any]:
    """The run's lines (a status chosen with ``?status=``, failures first otherwise) and its bank files."""
    chosen = page.request.query_params.get("status")
    chosen = chosen if chosen in LINE_STATUSES else None
    base = f"{RUNS}/{quote(run['id'], safe='')}"
    params: dict[str, Any] = {"limit": LINES_SHOWN, **({"status": chosen} if chosen else {})}
    lines = await page.calls.json("GET", f"{base}/lines", params=params)
    failed = [] if chosen else (await page.calls.json("GET", f"{base}/lines",
                                                      params={"status": "failed", "limit": LINES_SHOWN}))["items"]
    files = await page.calls.json("GET", f"{base}/bank-files")
    return {"lines": lines["items"], "more_lines": lines.get("next_cursor") is not None, "failed": failed,
            "files": files, "chosen": chosen, "line_statuses": LINE_STATUSES,
            "may_download": await page.may(*FILE_CONTENT), "may_upload": await page.may(*RESULT_UPLOAD)}


RUN = forms.Workflow(
    api=RUNS + "/{run_id}", page="/console/payroll/runs/{run_id}", template="payroll_run.html", name="run",
    steps={"approve": ("/approve", {}), "funding-request": ("/funding-request", {}),
           "bank-files": ("/bank-files", {}), "reissue": ("/reissue", {})},
    extra=_run_extra)
RUN.add_routes(router, "payroll")


@router.get("/payroll/bank-files/{file_id}/content")
async def bank_file_content(page: Annotated[Page, screen_page("payroll")], file_id: FileId) -> Response:
    """The bank payment file as the API gives it (CSV with its checksum), for the cashier."""
    if not await page.may(*FILE_CONTENT):
        raise ScreenRefused()
    response = await page.calls.call("GET", FILE_CONTENT[1].format(file_id=quote(file_id, safe="")))
    if response.status_code != 200:
        raise ApiError.of(response)
    headers = {k: v for k, v in response.headers.items() if k.lower() in ("content-disposition", "x-checksum-sha256")}
    return page.finish(Response(response.content, media_type=response.headers.get("content-type"), headers=headers))


@router.post("/payroll/bank-files/{file_id}/result-files")
async def upload_result_file(page: Annotated[Page, screen_page("payroll")], file_id: FileId) -> Response:
    """The bank's result file, streamed on to the API (a background job there), followed on the job's page."""
    if not await page.may(*RESULT_UPLOAD):
        raise ScreenRefused()
    upload = (await page.request.form()).get("file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        raise ApiError(422, "RESULT_FILE_MISSING", "请选择银行回盘文件")
    response = await page.calls.call(
        "POST", RESULT_UPLOAD[1].format(file_id=quote(file_id, safe="")),
        files={"file": (upload.filename, upload.file, upload.content_type or "application/octet-stream")})
    if response.status_code != 202:
        raise ApiError.of(response)
    return page.redirect(f"/console/jobs/benefits/{quote(response.json()['id'], safe='')}")
