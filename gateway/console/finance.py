"""Finance screens (财政): remittances from the treasury with their 10-working-day deadline and lateness (000 二(二)),
the special accounts' receipts and payments, the fund bank accounts, the finance officer's entries (a remittance to
the treasury, its receipt in the special account, the allocation of a payroll's funds), and the list of budgets (a
budget's page and its approval chain: budgets.py)."""

from fastapi import APIRouter

from gateway.console import reports as r
from gateway.console.format import FUND_LABELS
from gateway.console.forms import Entry, FormSet, Input

router = APIRouter(prefix="/finance")

r.add_table(router, "remittances", "/remittances", r.REMITTANCES,
            intro="缴入国库的社保费应在当月内（特殊情况下不超过 10 个工作日）足额划入财政专户（000 二(二)）。")
r.add_table(router, "transactions", "/transactions", r.TRANSACTIONS, intro="财政专户及收入户、支出户的每笔收支。")
r.add_table(router, "bank_accounts", "/accounts", r.BANK_ACCOUNTS)
r.add_table(router, "budgets", "/budgets", r.BUDGETS, intro="点击险种查看预算执行与时间进度对比。")

FUND = Input("fund", "text", "险种", FUND_LABELS)
ENTRIES = FormSet("专户收款登记", "/console/finance/entries",
                  "财政专户的收入与拨付由财政部门登记；每笔以凭证为准，重复提交只记一次，未通过的原因显示在表单旁。", {
    "remittance": Entry("国库划款（税务部门缴入国库的社保费）", "/api/collection/treasury/remittances", (
        FUND, Input("period", "int", "费款所属期（YYYYMM）"), Input("amount", "yuan", "划款金额（元）"),
        Input("remitted_on", "text", "划出日期（YYYY-MM-DD）"), Input("voucher_no", "text", "凭证号")),
        "/console/finance/remittances"),
    "receipt": Entry("财政专户收款（划款到账）", "/api/collection/treasury/receipts", (
        Input("remittance_id", "text", "划款编号"), Input("amount", "yuan", "到账金额（元）"),
        Input("value_date", "text", "到账日期（YYYY-MM-DD）"), Input("reference", "text?", "银行凭证号")),
        "/console/finance/transactions", idempotent=True),
    "allocation": Entry("财政拨付（待遇发放资金：专户 → 支出户）", "/api/collection/treasury/allocations", (
        FUND, Input("amount", "yuan", "拨付金额（元）"), Input("payroll_reference", "text", "发放批次编号（资金申请）"),
        Input("value_date", "text", "拨付日期（YYYY-MM-DD）")),
        "/console/finance/transactions", idempotent=True),
})
ENTRIES.add_routes(router, "finance_entries")
