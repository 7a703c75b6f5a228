"""The budget amount forms (gateway/console/budgets.py), without a browser, on the package's platform (conftest.py):
a draft's amounts changed by the agency's accountant (PUT …/lines) — a malformed amount refused in the API's words
with what was typed kept, a right one shown in 元 — and, once the budget is approved and its year over, the final
accounts drawn with the amounts of the items the ledger does not hold, refused and accepted the same way."""

import re

import httpx
import pytest

from tests.support.console import api_headers, console_sign_in, csrf_of, staff_user

pytestmark = pytest.mark.once
TIMEOUT = 180.0
FUND, YEAR = "UNEMP", 2024
URL = f"/console/finance/budgets/{FUND}/{YEAR}"
API = f"/api/oversight/budget/{FUND}/{YEAR}"


def alert(html: str) -> list[str]:
    return re.findall(r'role="alert"[^>]*>([^<]+)', html)


async def approved_by_finance(platform) -> None:  # noqa: ANN001
    """The draft submitted by its accountant, reviewed by one finance officer and approved by another (the API)."""
    second = await staff_user(platform, "console6_finance2", "finance_officer")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        steps = [("accountant", "/submit", None), ("finance_officer", "/review", {"note": "同意"})]
        for role, step, body in steps:
            done = await api.post(API + step, headers=await api_headers(platform, role), json=body)
            assert done.status_code == 200, done.text
        token = (await api.post("/auth/token", data={"username": second[0], "password": second[1]})).json()
        approved = await api.post(API + "/approve", headers={"Authorization": f"Bearer {token['access_token']}"},
                                  json={"approval_ref": "某人大常〔2024〕3号", "approved_on": "2024-01-10"})
        assert approved.status_code == 200, approved.text


async def test_a_drafts_amounts_and_the_final_accounts_entered_amounts_are_typed_in_yuan(platform):
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as accountant:
        await console_sign_in(accountant, *platform.user_of("accountant"))
        page = await accountant.get("/console/finance/budget-compile")
        created = await accountant.post("/console/finance/budget-compile", data={
            "csrf_token": csrf_of(page.text), "fund": FUND, "year": str(YEAR), "line_contributions": "500000"})
        assert created.status_code == 303 and created.headers["location"] == URL, alert(created.text)

        page = await accountant.get(URL)
        assert 'id="lines-form"' in page.text and 'name="line_interest"' in page.text
        refused = await accountant.post(f"{URL}/lines", data={
            "csrf_token": csrf_of(page.text), "line_contributions": "12.345", "line_interest": "800"})
        assert refused.status_code == 422 and 'id="budget-error"' in refused.text, refused.text[:300]
        assert 'value="12.345"' in refused.text and 'value="800"' in refused.text  # what was typed, kept
        changed = await accountant.post(f"{URL}/lines", data={
            "csrf_token": csrf_of(page.text), "line_contributions": "2000000.50", "line_interest": "800",
            "note": "按上年执行数调整"})
        assert changed.status_code == 303, alert(changed.text)
        page = await accountant.get(URL)
        lines = re.search(r'id="budget-lines">.*?</table>', page.text, re.S).group(0)
        assert "2,000,000.50" in lines and "800.00" in lines

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as finance:  # not the drafter's
        await console_sign_in(finance, *platform.user_of("finance_officer"))
        assert 'id="lines-form"' not in (await finance.get(URL)).text

    await approved_by_finance(platform)
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as accountant:
        await console_sign_in(accountant, *platform.user_of("accountant"))
        page = await accountant.get(URL)
        assert 'id="lines-form"' not in page.text and 'id="final-accounts-form"' in page.text
        assert 'name="entered_interest"' in page.text and 'name="entered_contributions"' not in page.text  # ledger's
        refused = await accountant.post(f"{URL}/final-accounts", data={
            "csrf_token": csrf_of(page.text), "entered_interest": "一千", "entered_other_income": "5"})
        assert refused.status_code == 422 and 'id="budget-error"' in refused.text, refused.text[:300]
        assert 'value="一千"' in refused.text and 'value="5"' in refused.text
        drawn = await accountant.post(f"{URL}/final-accounts", data={
            "csrf_token": csrf_of(page.text), "entered_interest": "1234.56", "note": "决算草案"})
        assert drawn.status_code == 303, alert(drawn.text)
        page = await accountant.get(URL)
        final = re.search(r'id="final-lines">.*?</table>', page.text, re.S).group(0)
        assert "1,234.56" in final and "填报" in final and "账务数据" in final
        assert 'id="entered-interest" name="entered_interest" value="1234.56"' in page.text  # redraw, as entered
