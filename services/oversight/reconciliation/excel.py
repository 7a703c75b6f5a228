"""The month report as an Excel workbook a supervisor can file (openpyxl, write-only: streams rows).

Sheets: 概要 (the month, whether the figures are live or the closed snapshot, the status counts per check), one sheet
per check (R1 … R6) listing its cells — every cell except for R2, whose matched employer cells are only counted
(there are tens of thousands) — and, for a closed month, 月结后调整 (the post-close adjustments: snapshot vs now).
Amounts are numbers in yuan with two places; statuses are shown in Chinese and in the API's words.
"""

import io
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

from services.kernel.money import fen_to_yuan
from services.oversight.reconciliation.cells import CHECK_INFO, CHECKS, STATUSES, Cell
from services.oversight.reconciliation.report import DISCREPANCIES_ONLY
from services.oversight.reconciliation.service import MonthReport

STATUS_NAMES = {
    "matched": "相符", "mismatch": "不符", "missing_tax": "缺税务数据", "missing_finance": "缺财政数据",
    "missing_agency": "缺经办数据", "late": "逾期",
}
MONEY_FORMAT = "#,##0.00"
BOLD = Font(bold=True)

Column = tuple[str, Callable[[Cell], Any], bool]  # header, value, is money (fen → yuan)


def _a(name: str) -> Callable[[Cell], Any]:
    return lambda c: c.amounts.get(name)


def _d(name: str) -> Callable[[Cell], Any]:
    return lambda c: c.differences.get(name)


def _k(name: str) -> Callable[[Cell], Any]:
    return lambda c: c.key.get(name)


def _x(name: str) -> Callable[[Cell], Any]:
    return lambda c: c.detail.get(name)


def _status(cell: Cell) -> str:
    return f"{STATUS_NAMES.get(cell.status, cell.status)} ({cell.status})"


COLUMNS: dict[str, list[Column]] = {
    "R1": [("险种 fund", _k("fund"), False), ("所属期 period", _k("period"), False), ("状态 status", _status, False),
           ("税务 TAX", _a("tax"), True), ("其中本金 principal", _a("tax_principal"), True),
           ("其中滞纳金 late fee", _a("tax_late_fee"), True), ("财政 FINANCE", _a("finance"), True),
           ("经办 AGENCY", _a("agency"), True), ("财政−税务", _d("finance_minus_tax"), True),
           ("经办−税务本金", _d("agency_minus_tax_principal"), True)],
    "R2": [("单位 employer", _k("employer_id"), False), ("险种 fund", _k("fund"), False),
           ("所属期 period", _k("period"), False), ("状态 status", _status, False),
           ("核定 ASSESSED", _a("assessed"), True), ("税务 TAX", _a("tax"), True), ("经办 AGENCY", _a("agency"), True),
           ("滞纳金 late fee", _a("tax_late_fee"), True), ("欠费 arrears", _a("arrears"), True),
           ("经办−税务", _d("agency_minus_tax"), True)],
    "R3": [("缴款记录 remittance", _k("remittance_id"), False), ("凭证号 voucher", _x("voucher_no"), False),
           ("险种 fund", lambda c: c.fund, False), ("所属期 period", lambda c: c.period, False),
           ("缴库日期 remitted on", _x("remitted_on"), False), ("到账期限 deadline", _x("deadline"), False),
           ("状态 status", _status, False), ("缴库金额 remitted", _a("remitted"), True),
           ("已到账 received", _a("received"), True), ("未到账 unreceived", _a("unreceived"), True),
           ("最后到账日 last receipt", _x("last_receipt_on"), False), ("逾期天数 days late", _x("days_late"), False)],
    "R4": [("收入户 account", _k("account_id"), False), ("险种 fund", lambda c: c.fund, False),
           ("月末 month end", _x("month_end"), False), ("状态 status", _status, False),
           ("月末余额 closing balance", _a("closing_balance"), True), ("本月收入 in", _a("in"), True),
           ("本月支出 out", _a("out"), True), ("笔数 movements", _x("movements"), False)],
    "R5": [("险种 fund", _k("fund"), False), ("月份 month", _k("month"), False), ("状态 status", _status, False),
           ("核准发放 approved", _a("approved"), True), ("财政拨付 allocated", _a("allocated"), True),
           ("银行+停发+抵扣 accounted", _a("accounted"), True), ("银行确认 bank", _a("bank"), True),
           ("其中已付 paid", _a("paid"), True), ("其中退回 returned", _a("returned"), True),
           ("停发 held back", _a("held_back"), True), ("抵扣 offset", _a("offset"), True),
           ("拨付−核准", _d("allocated_minus_approved"), True),
           ("(银行+停发+抵扣)−核准", _d("accounted_minus_approved"), True)],
    "R6": [("交易 transaction", lambda c: c.key.get("transaction_id") or "", False),
           ("险种 fund", lambda c: c.fund, False), ("状态 status", _status, False),
           ("账户类型 account", _x("account_kind"), False), ("方向 direction", _x("direction"), False),
           ("金额 amount", _a("amount"), True), ("对方 counterparty", _x("counterparty"), False),
           ("对方险种 counterparty fund", _x("counterparty_fund"), False), ("用途 purpose", _x("purpose"), False),
           ("日期 value date", _x("value_date"), False), ("规则 rule", _x("usage_rule"), False),
           ("疑点 suspicion", lambda c: c.suspicion, False), ("说明 violation", _x("violation"), False)],
}
SHEET_NAMES = {"R1": "R1 三方对账", "R2": "R2 单位对账", "R3": "R3 国库划款时限", "R4": "R4 收入户月末余额",
               "R5": "R5 基金支出", "R6": "R6 基金间划转与违规"}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, int | float | Decimal):
        return value
    return _text(str(value))


def _text(value: str) -> str:
    """Text from other systems (vouchers, bank line ids, references) may hold control characters that XML, and so
    a workbook, cannot carry: openpyxl would abort mid-file (a 500). Shown as U+FFFD."""
    return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)


def _money(sheet: Any, fen: Any) -> Any:
    if fen is None:
        return None
    cell = WriteOnlyCell(sheet, value=fen_to_yuan(int(fen)))
    cell.number_format = MONEY_FORMAT
    return cell


def _header(sheet: Any, values: list[str]) -> None:
    row = []
    for value in values:
        cell = WriteOnlyCell(sheet, value=value)
        cell.font = BOLD
        row.append(cell)
    sheet.append(row)


def workbook_bytes(report: MonthReport) -> bytes:
    book = Workbook(write_only=True)
    summary = book.create_sheet("概要")
    summary.append([f"社会保险基金三方对账报告 {report.month}"])
    summary.append(["数据口径 figures", "月结快照 snapshot at the close" if report.close else "实时 live"])
    if report.close:
        summary.append(["月结时间 closed at", str(report.close.closed_at), "月结人 closed by", report.close.closed_by])
        summary.append(["月结后调整 post-close adjustments", len(report.adjustments)])
    summary.append(["判断日 as of", str(report.as_of), "生成时间 generated", str(report.generated_at)])
    summary.append([])
    _header(summary, ["检查 check", "名称 title", "规则 rule", "依据 clause", "单元格 cells",
                      *(f"{STATUS_NAMES[s]} {s}" for s in STATUSES)])
    for check in CHECKS:
        info, counts = CHECK_INFO[check], report.summary(check)
        summary.append([check, info.title, info.rule, info.clause, counts["cells"], *(counts[s] for s in STATUSES)])

    for check in CHECKS:
        sheet = book.create_sheet(SHEET_NAMES[check])
        columns = COLUMNS[check]
        cells = report.cells[check]
        if check in DISCREPANCIES_ONLY:
            matched = sum(1 for c in cells if c.matched)
            cells = [c for c in cells if not c.matched]
            sheet.append([f"仅列出不相符的单元格；相符 {matched} 个未列出 (discrepancies only; {matched} matched cells "
                          "not listed)"])
        _header(sheet, [header for header, _, _ in columns])
        for cell in cells:
            sheet.append([_money(sheet, get(cell)) if money else _plain(get(cell)) for _, get, money in columns])

    if report.close:
        sheet = book.create_sheet("月结后调整")
        _header(sheet, ["检查 check", "单元格 cell", "变化 changed", "月结时状态 snapshot status",
                        "现状态 status now", "金额变动 delta (yuan)"])
        for adjustment in report.adjustments:
            delta = "; ".join(f"{name} {fen_to_yuan(fen):+}" for name, fen in sorted(adjustment.delta.items()))
            sheet.append([adjustment.check, _text(", ".join(f"{k}={v}" for k, v in adjustment.key.items())),
                          ", ".join(adjustment.changed),
                          adjustment.snapshot.status if adjustment.snapshot else "(无 none)",
                          adjustment.now.status if adjustment.now else "(无 none)", delta])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
