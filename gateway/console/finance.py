"""Finance screens (财政): remittances from the treasury with their 10-working-day deadline and lateness (000 二(二)),
the special accounts' receipts and payments, the fund bank accounts, and budgets with their execution against time
progress (a chart and the warnings the API raises)."""

import json
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from gateway.console import reports as r
from gateway.console.pages import Page, screen_page

router = APIRouter(prefix="/finance")

r.add_table(router, "remittances", "/remittances", r.REMITTANCES,
            intro="缴入国库的社保费应在当月内（特殊情况下不超过 10 个工作日）足额划入财政专户（000 二(二)）。")
r.add_table(router, "transactions", "/transactions", r.TRANSACTIONS, intro="财政专户及收入户、支出户的每笔收支。")
r.add_table(router, "bank_accounts", "/accounts", r.BANK_ACCOUNTS)
r.add_table(router, "budgets", "/budgets", r.BUDGETS, intro="点击险种查看预算执行与时间进度对比。")

FundPath = Annotated[str, Path(pattern=r"^[A-Z][A-Z_]{1,9}$")]
YearPath = Annotated[int, Path(ge=2000, le=2200)]


@router.get("/budgets/{fund}/{year}")
async def budget_execution(page: Annotated[Page, screen_page("budgets")], fund: FundPath, year: YearPath,
                           month: Annotated[int | None, Query(ge=1, le=12)] = None) -> Response:
    params = {"month": month} if month else {}
    execution = await page.calls.json("GET", f"/api/oversight/budget/{fund}/{year}/execution", params=params)
    series = {"items": [item["name"] for item in execution["items"]],
              "execution": [item["execution"] for item in execution["items"]],
              "time_progress": execution["time_progress"]}
    return await page.render("budget_execution.html", execution=execution,
                             chart=json.dumps(series, ensure_ascii=False))
