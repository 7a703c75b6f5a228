"""The report tables of every section (tables.py): each is a screen of menu.py whose list route it calls, shown with
the API's own filters and cursor, sortable by any column, and downloadable as Excel built from the rows shown."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.console.calls import ApiError
from gateway.console.pages import Page, screen_page
from gateway.console.tables import XLSX, Column, Filter, Table, workbook

FUNDS = ("PEN_EMP", "PEN_GOV", "PEN_RES", "UNEMP", "INJURY")

# Extra context for a table's page: (page, rows, query) → template values (counts, charts, a second list).
Extra = Callable[[Page, list[dict[str, Any]], dict[str, str]], Awaitable[dict[str, Any]]]
# Figures added to each row from other routes of the same screen (shown and downloaded alike).
Enrich = Callable[[Page, list[dict[str, Any]]], Awaitable[list[dict[str, Any]]]]


def table_query_href(path: str, query: dict[str, str], **changes: str | None) -> str:
    merged = {**query, **changes}
    kept = {k: v for k, v in merged.items() if v}
    return path + ("?" + urlencode(kept) if kept else "")


async def table_rows(page: Page, table: Table, query: dict[str, str],
                     enrich: Enrich | None = None) -> tuple[list[dict[str, Any]], str | None]:
    response = await page.calls.call("GET", table.api, params=table.params(query))
    if response.status_code >= 300:
        raise ApiError.of(response)
    answer = response.json()
    rows = table.rows(answer)
    if enrich is not None:
        rows = await enrich(page, rows)
    return table.sorted(rows, query.get("sort")), table.next_cursor(answer, response.headers)


async def show_table(page: Page, href: str, table: Table, query: dict[str, str], *, template: str = "table.html",
                     intro: str = "", extra: Extra | None = None, enrich: Enrich | None = None,
                     status_code: int = 200, **context: Any) -> Response:
    """The table's page at ``href`` for ``query``; ``context`` overrides ``extra``'s values (a refused form's
    message and what was typed, when a form on the page is shown again)."""
    rows, cursor = await table_rows(page, table, query, enrich)

    def sort_href(column: Column) -> str:
        current = query.get("sort")
        return table_query_href(href, query, sort=f"-{column.key}" if current == column.key else column.key,
                                after=None)

    more = await extra(page, rows, query) if extra else {}
    return await page.render(template, status_code=status_code, table=table, rows=rows, query=query, intro=intro,
                             sort_href=sort_href, excel_href=table_query_href(href + ".xlsx", query),
                             next_href=table_query_href(href, query, after=cursor) if cursor else None,
                             **{**more, **context})


def add_table(router: APIRouter, key: str, path: str, table: Table, *, intro: str = "",
              template: str = "table.html", extra: Extra | None = None, enrich: Enrich | None = None) -> None:
    """``GET path``: the table; ``GET path.xlsx``: the same rows as a workbook. Both are the screen ``key``."""
    href = "/console" + router.prefix + path

    async def show(page: Annotated[Page, screen_page(key)], request: Request) -> Response:
        return await show_table(page, href, table, dict(request.query_params), template=template, intro=intro,
                                extra=extra, enrich=enrich)

    async def download(page: Annotated[Page, screen_page(key)], request: Request) -> Response:
        query = dict(request.query_params)
        rows, _ = await table_rows(page, table, query, enrich)
        filters = "，".join(f"{f.label}：{query[f.name]}" for f in table.filters if query.get(f.name))
        name = path.strip("/").replace("/", "-") or key
        return page.finish(Response(workbook(table, rows, filters), media_type=XLSX,
                                    headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'}))

    show.__name__, download.__name__ = f"{key}_table", f"{key}_workbook"
    router.add_api_route(path + ".xlsx", download, methods=["GET"], name=f"{key}_workbook")
    router.add_api_route(path, show, methods=["GET"], name=f"{key}_table")


# -- supervisor (基金监督) -------------------------------------------------------------------------------------------

INCIDENTS = Table(
    "重大要情", "/api/oversight/incidents",
    (Column("discovered_on", "发现日期", "date"), Column("title", "标题", link="/console/oversight/incidents/{id}"),
     Column("kind", "类型", "label:incident_kind"),
     Column("unit", "涉及单位"), Column("channel", "发现渠道", "label:incident_channel"),
     Column("amount", "涉及金额", "yuan"), Column("major", "重大", "bool"), Column("due_on", "报告期限", "date"),
     Column("status", "状态", "label:incident_status"), Column("days_overdue", "逾期工作日", "count"),
     Column("same_level_reported_on", "报同级", "date"), Column("provincial_reported_on", "报省级", "date")),
    (Filter("year", "年度"), Filter("half", "半年", ("1", "2"), "half"),
     Filter("kind", "类型", ("misappropriation", "diversion", "fraud"), "incident_kind")))

CHECKPOINTS = Table(
    "审计链状态", "/api/oversight/chains",
    (Column("component", "服务", "label:component"), Column("last_status", "最近校验结果", "label:chain_status"),
     Column("last_checked_at", "最近校验", "time"), Column("seq", "已核验长度", "count"),
     Column("verified_at", "基线时间", "time"), Column("checks", "校验次数", "count"),
     Column("last_problem", "问题"), Column("last_case_id", "案件", link="/console/oversight/cases/{last_case_id}")),
    items=None, cursor=None)

RULES = Table(
    "疑点规则", "/api/oversight/rules",
    (Column("id", "规则"), Column("title", "名称"), Column("severity", "严重程度", "label:severity"),
     Column("clause", "依据"), Column("mode", "方式", "label:rule_mode"),
     Column("suggested_class", "建议分类", "label:case_class"), Column("open_cases", "未办结案件", "count"),
     Column("all_cases", "全部案件", "count")),
    items=None, cursor=None)

SWEEPS = Table(
    "规则扫描", "/api/oversight/rules/sweeps",
    (Column("id", "扫描", link="/console/oversight/sweeps/{id}"), Column("as_of", "基准日", "date"),
     Column("status", "状态", "label:run_status"), Column("started_at", "开始", "time"),
     Column("finished_at", "结束", "time"), Column("started_by", "发起人"), Column("months", "所属期")),
    items=None, cursor=None)

SCHEDULER_RUNS = Table(
    "定时任务运行记录", "/api/oversight/scheduler/runs",
    (Column("id", "编号", "count"), Column("job", "任务"), Column("trigger", "触发", "label:trigger"),
     Column("started_at", "开始", "time"), Column("finished_at", "结束", "time"),
     Column("outcome", "结果", "label:run_status"), Column("error", "错误")),
    (Filter("job", "任务"), Filter("outcome", "结果", ("running", "ok", "partial", "failed", "skipped"), "run_status")),
    items=None, cursor=None)

DISHONESTY = Table(
    "严重失信人名单", "/api/oversight/dishonesty-list",
    (Column("listed_at", "列入时间", "time"), Column("subject_type", "对象类型", "label:subject_type"), Column("subject_id", "对象"),
     Column("class_code", "案件分类", "label:case_class"), Column("amount_fen", "涉及金额", "fen"),
     Column("reason", "事由"), Column("case_id", "案件", link="/console/oversight/cases/{case_id}"),
     Column("removed_at", "移出时间", "time")),
    (Filter("subject_type", "对象类型", ("person", "employer"), "subject_type"),))

RECTIFICATION = Table(
    "整改台账", "/api/oversight/rectification-ledger",
    (Column("opened_at", "建账时间", "time"), Column("unit", "整改单位"), Column("class_code", "分类", "label:case_class"),
     Column("problem", "问题"), Column("measures", "整改措施"), Column("responsible", "责任人"),
     Column("due_date", "整改期限", "date"), Column("status", "状态", "label:rectification_status"),
     Column("closed_at", "销号时间", "time"), Column("case_id", "案件", link="/console/oversight/cases/{case_id}")),
    (Filter("status", "状态", ("open", "closed"), "rectification_status"), Filter("unit", "单位"),
     Filter("overdue_as_of", "逾期基准日（YYYY-MM-DD）")))

INSPECTIONS = Table(
    "现场监督", "/api/oversight/inspections",
    (Column("planned_on", "计划日期", "date"), Column("target_unit", "被监督单位", link="/console/oversight/inspections/{id}"),
     Column("target_level", "层级", "label:target_level"), Column("status", "状态", "label:inspection_status"),
     Column("notice_ref", "通知文号"), Column("findings_amount", "问题金额", "yuan"), Column("letter_no", "反馈函文号"),
     Column("reported_on", "报告日期", "date")),
    (Filter("status", "状态", ("planned", "notified", "inspecting", "feedback_issued", "reported"),
            "inspection_status"), Filter("year", "年度")))

REPORTS = Table(
    "举报处理", "/api/oversight/whistleblowing/reports",
    (Column("received_at", "受理时间", "time"), Column("title", "标题", link="/console/oversight/whistleblowing/{id}"),
     Column("category", "类别", "label:category"), Column("channel", "渠道", "label:report_channel"),
     Column("status", "状态", "label:report_status"), Column("assigned_to", "承办人"),
     Column("amount_claimed", "举报金额", "yuan"), Column("flagged", "重大/紧急", "bool")),
    (Filter("status", "状态", ("received", "assigned", "investigating", "answered", "closed"), "report_status"),
     Filter("category", "类别", ("collection", "payment", "management", "investment", "other"), "category")))

# -- agency (经办) ---------------------------------------------------------------------------------------------------

CLAIMS = Table(
    "待遇审核", "/api/benefits/claims",
    (Column("submitted_at", "申请时间", "time", sort="submitted_at"), Column("kind", "待遇", "label:claim_kind", link="/console/agency/claims/{id}", sort="kind"),
     Column("fund", "险种", "label:fund", sort="fund"), Column("person_id", "人员", link="/console/agency/persons/{person_id}", sort="person_id"),
     Column("status", "状态", "label:claim_status", sort="status"), Column("next_level", "待办环节", "label:claim_level"),
     Column("monthly_amount", "月待遇", "yuan"), Column("one_off_amount", "一次性金额", "yuan"),
     Column("blocked_reason", "校验问题")),
    (Filter("status", "状态", ("in_review", "returned", "blocked", "approved", "rejected"), "claim_status"),
     Filter("kind", "待遇", ("basic_pension", "resident_pension", "unemployment", "injury", "one_off"), "claim_kind"),
     Filter("person_id", "人员编号")), page_size=200)

PERSONS = Table(
    "参保人员", "/api/accounts/persons",
    (Column("name", "姓名", link="/console/agency/persons/{id}", sort="name"), Column("citizen_id", "身份证号"),
     Column("sex", "性别", "label:sex", sort="sex"), Column("birth_date", "出生日期", "date", sort="birth_date"), Column("region", "行政区划", sort="region"),
     Column("life_status", "生存状态", "label:life_status", sort="life_status"), Column("registered_at", "登记时间", "time", sort="registered_at")),
    (Filter("citizen_id", "身份证号"), Filter("name", "姓名")))

EMPLOYERS = Table(
    "参保单位", "/api/accounts/employers",
    (Column("name", "单位名称", link="/console/agency/employers/{id}", sort="name"), Column("uscc", "统一社会信用代码", sort="uscc"),
     Column("unit_type", "单位类型", "label:unit_type", sort="unit_type"), Column("region", "行政区划", sort="region"), Column("industry_risk_class", "行业风险类别", "count", sort="industry_risk_class"),
     Column("status", "状态", "label:status", sort="status"), Column("registered_at", "登记时间", "time", sort="registered_at")),
    (Filter("uscc", "信用代码"), Filter("name", "名称")))

UNMATCHED = Table(
    "未匹配税务明细", "/api/collection/tax-payments/unmatched",
    (Column("paid_date", "缴款日期", "date"), Column("tax_line_id", "税务明细号"), Column("payer_uscc", "缴费单位代码"),
     Column("citizen_id", "身份证号"), Column("fund", "险种", "label:fund"), Column("period", "所属期", "month"),
     Column("employer_amount", "单位缴费", "yuan"), Column("individual_amount", "个人缴费", "yuan"),
     Column("late_fee_amount", "滞纳金", "yuan"), Column("match_status", "状态", "label:match_status"),
     Column("match_note", "原因")),
    (Filter("fund", "险种", FUNDS, "fund"), Filter("period", "所属期（YYYYMM）")))

EXCHANGE = Table(
    "部门交换数据", "/api/accounts/exchange/records",
    (Column("event_date", "事件日期", "date"), Column("kind", "类型", "label:exchange_kind"), Column("source", "来源部门"),
     Column("citizen_id", "身份证号"), Column("uscc", "信用代码"), Column("name", "姓名/名称"),
     Column("status", "状态", "label:exchange_status"), Column("reason", "原因"),
     Column("person_id", "人员", link="/console/agency/persons/{person_id}")),
    (Filter("status", "状态", ("conflict", "unmatched", "invalid", "applied", "resolved", "dismissed"),
            "exchange_status"),
     Filter("kind", "类型", ("death", "cremation", "imprisonment", "release", "business_registration"),
            "exchange_kind"), Filter("citizen_id", "身份证号")))

IMPORTS = Table(
    "批量导入", "/api/accounts/imports",
    (Column("created_at", "提交时间", "time", sort="created_at"), Column("filename", "文件", link="/console/agency/imports/{id}", sort="filename"),
     Column("kind", "类型", "label:import_kind", sort="kind"), Column("status", "状态", "label:run_status", sort="status"), Column("total_rows", "总行数", "count", sort="total_rows"),
     Column("accepted_rows", "已接收", "count", sort="accepted_rows"), Column("rejected_rows", "被拒绝", "count", sort="rejected_rows"),
     Column("created_by", "提交人", sort="created_by"), Column("finished_at", "完成时间", "time")))

# -- finance (财政) --------------------------------------------------------------------------------------------------

REMITTANCES = Table(
    "国库划款与到账", "/api/collection/treasury/remittances",
    (Column("remitted_on", "划出日期", "date", sort="remitted_on"), Column("fund", "险种", "label:fund", sort="fund"), Column("period", "所属期", "month", sort="period"),
     Column("amount", "划款金额", "yuan", sort="amount"), Column("received", "已到账", "yuan"), Column("unreceived", "未到账", "yuan"),
     Column("deadline", "到账期限（10个工作日）", "date"), Column("lateness", "时效", "label:lateness"),
     Column("working_days_late", "逾期工作日", "count"), Column("last_receipt_on", "最后到账", "date"),
     Column("voucher_no", "凭证号", sort="voucher_no"), Column("id", "划款编号")),
    (Filter("fund", "险种", FUNDS, "fund"), Filter("period", "所属期（YYYYMM）"),
     Filter("outstanding", "仅未足额到账", ("true",), "flag")), items=None, cursor=None, cursor_header="X-Next-Cursor")

TRANSACTIONS = Table(
    "专户收支", "/api/collection/treasury/transactions",
    (Column("value_date", "起息日", "date"), Column("fund", "险种", "label:fund"),
     Column("account_kind", "账户", "label:account_kind"), Column("direction", "方向", "label:direction"),
     Column("amount", "金额", "yuan"), Column("purpose", "用途", "label:purpose"), Column("counterparty", "对方", "label:counterparty"),
     Column("period", "所属期", "month"), Column("reference", "凭证"), Column("status", "状态", "label:status"),
     Column("violation", "违规说明"), Column("late", "逾期", "bool")),
    (Filter("fund", "险种", FUNDS, "fund"), Filter("status", "状态", ("accepted", "flagged"), "status"),
     Filter("source", "来源", ("manual", "bank_statement"), "source"), Filter("from_date", "起（YYYY-MM-DD）"),
     Filter("to_date", "止（YYYY-MM-DD）")))

BANK_ACCOUNTS = Table(
    "基金银行账户", "/api/collection/treasury/accounts",
    (Column("fund", "险种", "label:fund"), Column("kind", "账户类型", "label:account_kind"), Column("bank_name", "开户行"),
     Column("account_no", "账号"), Column("opened_on", "开户日期", "date"), Column("opening_approval_ref", "批准文号"),
     Column("annual_inspection_due", "年检期限", "date"), Column("inspection_overdue", "年检逾期", "bool"),
     Column("status", "状态", "label:status"), Column("balance", "余额", "yuan")),
    (Filter("fund", "险种", FUNDS, "fund"), Filter("kind", "类型", ("special", "income", "expenditure"), "account_kind"),
     Filter("status", "状态", ("open", "closed"), "status")), items=None, cursor=None, page_size=500)

BUDGETS = Table(
    "基金预算", "/api/oversight/budget",
    (Column("year", "年度", "count"), Column("fund", "险种", "label:fund", link="/console/finance/budgets/{fund}/{year}"),
     Column("version", "版本", "count"), Column("status", "状态", "label:budget_status"),
     Column("totals.income", "收入预算", "yuan"), Column("totals.expenditure", "支出预算", "yuan"),
     Column("totals.surplus", "收支结余", "yuan"), Column("adjustments", "调整次数", "count"),
     Column("final_accounts", "决算", "label:budget_status")),
    (Filter("year", "年度"), Filter("fund", "险种", FUNDS, "fund")), items=None, cursor=None, page_size=500)
