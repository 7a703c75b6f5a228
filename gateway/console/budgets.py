"""Budgets (基金预算, 002): a budget's page — its execution against time progress (a chart and the API's warnings),
its approval chain, its adjustments and its final accounts — with the step of each chain the user's roles may take
(the agency drafts, changes a draft's amounts, submits and adjusts, and draws the final accounts with the amounts of
the items the ledger does not hold; finance reviews, approves with the approval reference, or returns with a
reason; each step by another person, as the API checks), and the compile form of a new budget. Amounts are typed in
元 and sent as typed: the API reads them as Decimal and refuses a bad one in its own words, shown with what was
typed."""

import json
import re
from functools import partial
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from gateway.console import forms
from gateway.console.calls import ApiError
from gateway.console.format import FUND_LABELS
from gateway.console.pages import Page, screen_page

router = APIRouter(prefix="/finance")

API = "/api/oversight/budget/{fund}/{year}"
FundPath = Annotated[str, Path(pattern=r"^[A-Z][A-Z_]{1,9}$")]
YearPath = Annotated[int, Path(ge=2000, le=2200)]
ADJUSTMENT_ID = re.compile(r"^[\w-]{1,64}$")
APPROVE = {"approval_ref": "text", "approved_on": "text", "note": "text?"}


def lines_body(form: dict[str, str], extra: dict[str, str], *, prefix: str = "line_",
               key: str = "lines") -> dict[str, Any]:
    """``<prefix><item>`` fields typed (yuan, as typed) → the API's ``key`` (item → amount); plus the form's other
    fields."""
    lines = {name.removeprefix(prefix): value.strip() for name, value in form.items()
             if name.startswith(prefix) and value.strip()}
    return {**forms.body_of(extra, form), key: lines}


# step → (its route after the budget's, its fields). Adjustment steps name the adjustment in the form's
# ``adjustment_id``; the API decides who may take each step and in which state.
STEPS: dict[str, tuple[str, forms.Fields]] = {
    "lines": ("/lines", lambda form: lines_body(form, {"note": "text?"})),
    "submit": ("/submit", {}),
    "review": ("/review", {"note": "text?"}),
    "approve": ("/approve", APPROVE),
    "return": ("/return", {"reason": "text"}),
    "adjust": ("/adjustments", lambda form: lines_body(form, {"reason": "text"})),
    "adjustment-submit": ("/adjustments/{adjustment_id}/submit", {}),
    "adjustment-withdraw": ("/adjustments/{adjustment_id}/withdraw", {}),
    "adjustment-review": ("/adjustments/{adjustment_id}/review", {"note": "text?"}),
    "adjustment-approve": ("/adjustments/{adjustment_id}/approve", APPROVE),
    "adjustment-return": ("/adjustments/{adjustment_id}/return", {"reason": "text"}),
    "final-accounts": ("/final-accounts",
                       lambda form: lines_body(form, {"note": "text?"}, prefix="entered_", key="entered")),
    "final-submit": ("/final-accounts/submit", {}),
    "final-review": ("/final-accounts/review", {"note": "text?"}),
    "final-approve": ("/final-accounts/approve", APPROVE),
    "final-return": ("/final-accounts/return", {"reason": "text"}),
}
METHODS = {"lines": "PUT"}  # a step sent otherwise than by POST
Step = Annotated[str, Path(pattern="^(" + "|".join(re.escape(s) for s in STEPS) + ")$")]


def _budget_api(fund: str, year: int) -> str:
    return API.format(fund=fund, year=year)


async def _optional(page: Page, path: str, **kwargs: Any) -> Any:
    """The answer, or None when the API has none yet (no final accounts; no execution before approval)."""
    try:
        return await page.calls.json("GET", path, **kwargs)
    except ApiError as error:
        if error.status in (404, 409):
            return None
        raise


async def show(page: Page, fund: str, year: int, month: int | None = None, *, status_code: int = 200,
               error: str | None = None, form: dict[str, str] | None = None) -> Response:
    base = _budget_api(fund, year)
    budget = await page.calls.json("GET", base)
    execution = await _optional(page, f"{base}/execution", params={"month": month} if month else {})
    adjustments = await page.calls.json("GET", f"{base}/adjustments")
    final = await _optional(page, f"{base}/final-accounts")
    allowed = {step for step, (route, _) in STEPS.items()
               if await page.may(METHODS.get(step, "POST"), API + route)}
    # the items the final accounts take as entered (the ledger holds the others), with what the draft has
    entered = []
    if "final-accounts" in allowed and budget["status"] == "approved" and (final is None or final["status"] == "draft"):
        actual = {line["item"]: line["actual"] for line in (final or {}).get("lines", []) if line["source"] == "entered"}
        entered = [{**item, "actual": actual.get(item["item"], "")}
                   for item in await page.calls.json("GET", "/api/oversight/budget/items") if not item["from_ledger"]]
    chart = None
    if execution:
        chart = json.dumps({"items": [item["name"] for item in execution["items"]],
                            "execution": [item["execution"] for item in execution["items"]],
                            "time_progress": execution["time_progress"]}, ensure_ascii=False)
    return await page.render("budget_execution.html", status_code=status_code, budget=budget, execution=execution,
                             chart=chart, adjustments=adjustments, final=final, allowed=allowed, error=error,
                             form=form or {}, entered=entered)


@router.get("/budgets/{fund}/{year}")
async def budget_page(page: Annotated[Page, screen_page("budgets")], fund: FundPath, year: YearPath,
                      month: Annotated[int | None, Query(ge=1, le=12)] = None) -> Response:
    return await show(page, fund, year, month)


@router.post("/budgets/{fund}/{year}/{step}")
async def budget_step(page: Annotated[Page, screen_page("budgets")], fund: FundPath, year: YearPath,
                      step: Step) -> Response:
    route, fields = STEPS[step]
    adjustment = page.form.get("adjustment_id", "")
    if "{adjustment_id}" in route and not ADJUSTMENT_ID.match(adjustment):
        raise ApiError(422, "INVALID_ADJUSTMENT_ID", "请选择预算调整")
    path = _budget_api(fund, year) + route.format(adjustment_id=quote(adjustment, safe=""))
    here = f"/console/finance/budgets/{fund}/{year}"

    async def again(**context: Any) -> Response:
        return await show(page, fund, year, **context)

    return await forms.submit(page, API + route, path, fields, here, again, method=METHODS.get(step, "POST"))


# -- compile (编制): a new budget's draft with an amount per item ------------------------------------------------------

CompilePage = Annotated[Page, screen_page("budget_compile")]


async def _compile_form(page: Page, *, status_code: int = 200, error: str | None = None,
                        form: dict[str, str] | None = None) -> Response:
    items = await page.calls.json("GET", "/api/oversight/budget/items")
    return await page.render("budget_compile.html", status_code=status_code, items=items, error=error,
                             form=form or {}, funds=FUND_LABELS)


@router.get("/budget-compile")
async def compile_form(page: CompilePage) -> Response:
    return await _compile_form(page)


@router.post("/budget-compile")
async def compile_budget(page: CompilePage) -> Response:
    def created(budget: dict[str, Any]) -> str:
        return f"/console/finance/budgets/{quote(budget['fund'], safe='')}/{int(budget['year'])}"

    return await forms.submit(page, "/api/oversight/budget", "/api/oversight/budget",
                              lambda form: lines_body(form, {"fund": "text", "year": "int", "note": "text?"}),
                              created, partial(_compile_form, page))
