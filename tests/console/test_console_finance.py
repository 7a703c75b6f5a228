"""The console's finance, payroll and inspection forms, without a browser, on the package's platform (conftest.py):
the finance officer's remittance and receipt (a refusal in the API's words with what was typed kept, an accepted
entry shown in the list it changes); a payroll run computed by the clerk, approved by the approver and its funds
asked for by the accountant on finance's list of funding requests; an inspection's team and its feedback letter with
a deadline per finding, then the letter's PDF."""

import re
from datetime import timedelta

import httpx
import pytest

from services.kernel.clock import china_today
from tests.support.console import api_headers, console_sign_in, csrf_of, plan_inspection, staff_user

pytestmark = pytest.mark.once
TIMEOUT = 180.0


async def test_a_remittance_and_its_receipt_are_recorded_by_finance(platform):
    today = china_today()
    period = (today.replace(day=1) - timedelta(days=1)).strftime("%Y%m")
    refused_body = {"fund": "UNEMP", "period": period, "amount": "-5", "remitted_on": today.isoformat(),
                    "voucher_no": "控制台-划款-001"}
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        headers = await api_headers(platform, "finance_officer")
        special = await api.post("/api/collection/treasury/accounts", headers=headers, json={
            "kind": "special", "fund": "UNEMP", "bank_name": "中国工商银行某市分行", "account_no": "6222020602001234567",
            "opened_on": "2020-01-02", "opening_approval_ref": "某财社〔2020〕1号", "annual_inspection_due": "2027-03-31"})
        assert special.status_code in (200, 201), special.text
        direct = await api.post("/api/collection/treasury/remittances", headers=headers,
                                json={**refused_body, "period": int(period)})
    assert direct.status_code == 422, direct.text
    message = direct.json()["error"]["message"]

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as finance:
        await console_sign_in(finance, *platform.user_of("finance_officer"))
        home = await finance.get("/console/")
        assert 'data-screen="finance_entries"' in home.text
        page = await finance.get("/console/finance/entries")
        assert page.status_code == 200 and 'id="remittance-entry"' in page.text
        refused = await finance.post("/console/finance/entries/remittance",
                                     data={"csrf_token": csrf_of(page.text), **refused_body})
        assert refused.status_code == 422, refused.text[:300]
        shown = re.search(r'id="remittance-entry-error">([^<]+)<', refused.text).group(1)
        assert message in shown and 'value="控制台-划款-001"' in refused.text

        recorded = await finance.post("/console/finance/entries/remittance", data={
            "csrf_token": csrf_of(page.text), **refused_body, "amount": "12345.67"})
        assert recorded.status_code == 303 and recorded.headers["location"] == "/console/finance/remittances"
        listing = await finance.get("/console/finance/remittances", params={"fund": "UNEMP", "period": period})
        row = re.search(r"<tr>(?:(?!</tr>).)*控制台-划款-001(?:(?!</tr>).)*</tr>", listing.text, re.S).group(0)
        assert "12,345.67" in row
        remittance_id = re.findall(r"<td>([\w-]{8,})</td></tr>", row)[-1]

        page = await finance.get("/console/finance/entries")
        key = re.search(r'name="idempotency_key" value="([^"]+)"', page.text).group(1)
        receipt = {"csrf_token": csrf_of(page.text), "idempotency_key": key, "remittance_id": remittance_id,
                   "amount": "12345.67", "value_date": today.isoformat(), "reference": "控制台-到账-001"}
        first = await finance.post("/console/finance/entries/receipt", data=receipt)
        assert first.status_code == 303, re.findall(r"role=\"alert\"[^>]*>([^<]+)", first.text)
        again = await finance.post("/console/finance/entries/receipt", data=receipt)  # a double click: recorded once
        assert again.status_code == 303
        movements = await finance.get("/console/finance/transactions", params={"fund": "UNEMP"})
        assert movements.text.count("控制台-到账-001") == 1
        received = await finance.get("/console/finance/remittances", params={"fund": "UNEMP", "period": period})
        row = re.search(r"<tr>(?:(?!</tr>).)*控制台-划款-001(?:(?!</tr>).)*</tr>", received.text, re.S).group(0)
        assert row.count("12,345.67") == 2 and "<td>0.00</td>" in row.replace('class="num"', "").replace("<td >", "<td>")  # received, none outstanding

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as auditor:
        await console_sign_in(auditor, *platform.user_of("internal_auditor"))
        assert (await auditor.get("/console/finance/entries")).status_code == 403  # finance records, auditors read


async def test_a_payroll_run_is_computed_approved_and_its_funds_asked_for(platform):
    today = china_today()
    future = (today.replace(day=28) + timedelta(days=10)).strftime("%Y%m")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as clerk:
        await console_sign_in(clerk, *platform.user_of("agency_clerk"))
        page = await clerk.get("/console/payroll/compute")
        assert page.status_code == 200 and 'id="run-compute"' in page.text
        refused = await clerk.post("/console/payroll/compute/run", data={
            "csrf_token": csrf_of(page.text), "fund": "INJURY", "period": future})
        assert refused.status_code == 422 and "PERIOD_IN_FUTURE" in refused.text, refused.text[:500]
        computed = await clerk.post("/console/payroll/compute/run", data={
            "csrf_token": csrf_of(page.text), "fund": "INJURY", "period": today.strftime("%Y%m")})
        assert computed.status_code == 303, computed.text[:500]
        run_url = computed.headers["location"]
        assert re.fullmatch(r"/console/payroll/runs/[\w-]+", run_url)
        run_page = await clerk.get(run_url)
        assert "已计算（待审批）" in run_page.text and 'id="approve-form"' not in run_page.text  # not the clerk's
        listing = await clerk.get("/console/payroll/runs", params={"fund": "INJURY"})
        assert f'href="{run_url}"' in listing.text

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as approver:
        await console_sign_in(approver, *platform.user_of("agency_approver"))
        run_page = await approver.get(run_url)
        assert 'id="approve-form"' in run_page.text
        approved = await approver.post(f"{run_url}/approve", data={"csrf_token": csrf_of(run_page.text)})
        assert approved.status_code == 303, approved.text[:500]
        again = await approver.post(f"{run_url}/approve", data={"csrf_token": csrf_of(run_page.text)})
        assert again.status_code == 409 and "PAYROLL_ALREADY_APPROVED" in again.text  # the API's refusal, shown

    run_id = run_url.rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as accountant:
        await console_sign_in(accountant, *platform.user_of("accountant"))
        funding = await accountant.get("/console/finance/payroll-funding")
        assert funding.status_code == 200 and f'id="funding-{run_id}"' in funding.text
        asked = await accountant.post(f"/console/finance/payroll-funding/{run_id}",
                                      data={"csrf_token": csrf_of(funding.text)})
        assert asked.status_code == 303, asked.text[:500]
        funding = await accountant.get("/console/finance/payroll-funding")
        assert f'id="funding-{run_id}"' not in funding.text and "已于" in funding.text
        assert "申请拨付时间" in funding.text

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as finance:  # reads, asks nothing
        await console_sign_in(finance, *platform.user_of("finance_officer"))
        home = await finance.get("/console/")
        assert 'data-screen="payroll_funding"' in home.text and 'data-screen="payroll"' not in home.text
        requested = await finance.get("/console/finance/payroll-funding", params={"funding": "requested"})
        assert requested.status_code == 200 and run_id in requested.text and "申请拨付金额" in requested.text
        assert 'id="funding-actions"' not in requested.text
        awaiting = await finance.get("/console/finance/payroll-funding", params={"funding": "awaiting"})
        assert run_id not in awaiting.text


async def test_an_inspection_team_and_its_feedback_letter_with_a_deadline_per_finding(platform):
    username, password = platform.user_of("oversight_officer")
    planned_on = china_today() - timedelta(days=1)
    url = await plan_inspection(platform, planned_on, "某县社保经办机构", "2026 年基金征缴")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as officer:
        await console_sign_in(officer, username, password)
        page = await officer.get(url)
        assert 'id="team-form"' in page.text and 'value="监督员乙"' in page.text
        csrf = csrf_of(page.text)
        alone = await officer.post(f"{url}/team", data={"csrf_token": csrf, "inspector_id_1": username,
                                                         "name_1": "监督员甲", "leader": "1"})
        assert alone.status_code in (409, 422) and 'id="inspection-error"' in alone.text, alone.text[:300]
        assert 'value="监督员甲"' in alone.text
        team = await officer.post(f"{url}/team", data={
            "csrf_token": csrf, "inspector_id_1": username, "name_1": "监督员甲", "inspector_id_2": "inspector-2",
            "name_2": "监督员乙", "inspector_id_3": "inspector-3", "name_3": "监督员丙", "leader": "3"})
        assert team.status_code == 303, team.text[:500]
        assert "监督员丙（组长）" in (await officer.get(url)).text

        await officer.post(f"{url}/notification", data={
            "csrf_token": csrf, "notified_on": (planned_on - timedelta(days=5)).isoformat(), "notice_ref": "通知1号"})
        for title in ("少缴基本养老保险费", "个人账户记账错误"):
            found = await officer.post(f"{url}/findings", data={
                "csrf_token": csrf, "title": title, "description": "见底稿", "fund": "PEN_EMP", "amount": "100"})
            assert found.status_code == 303, found.text[:500]
        page = await officer.get(url)
        finding_ids = re.findall(r'name="rectify_by_([\w-]+)"', page.text)
        assert len(finding_ids) == 2 and 'id="letter-pdf-form"' not in page.text
        issued_on = china_today()
        letter = {"csrf_token": csrf, "letter_no": "某监函〔2026〕7号", "issued_on": issued_on.isoformat(),
                  "requirements": "限期整改", f"rectify_by_{finding_ids[0]}": (issued_on + timedelta(days=30)).isoformat()}
        missing = await officer.post(f"{url}/feedback-letter", data=letter)  # one finding without its deadline
        assert missing.status_code == 422 and "DEADLINE_MISSING" in missing.text, missing.text[:500]
        assert 'value="某监函〔2026〕7号"' in missing.text
        letter[f"rectify_by_{finding_ids[1]}"] = (issued_on + timedelta(days=60)).isoformat()
        issued = await officer.post(f"{url}/feedback-letter", data=letter)
        assert issued.status_code == 303, issued.text[:500]
        page = await officer.get(url)
        assert "某监函〔2026〕7号" in page.text and 'id="letter-pdf-form"' in page.text
        pdf = await officer.post(f"{url}/documents/feedback-letter", data={"csrf_token": csrf})
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF"), pdf.text[:300]
        assert pdf.headers["content-type"] == "application/pdf"


async def test_a_budget_is_compiled_submitted_and_reviewed_and_its_approval_refused_to_the_reviewer(platform):
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        items = (await api.get("/api/oversight/budget/items",
                               headers=await api_headers(platform, "accountant"))).json()
    income = next(i["item"] for i in items if i["side"] == "income")
    url = "/console/finance/budgets/INJURY/2031"
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as accountant:
        await console_sign_in(accountant, *platform.user_of("accountant"))
        page = await accountant.get("/console/finance/budget-compile")
        assert page.status_code == 200 and f'name="line_{income}"' in page.text
        refused = await accountant.post("/console/finance/budget-compile", data={
            "csrf_token": csrf_of(page.text), "fund": "INJURY", "year": "1999", f"line_{income}": "1000000"})
        assert refused.status_code == 422 and 'id="budget-compile-error"' in refused.text, refused.text[:300]
        assert 'value="1000000"' in refused.text
        compiled = await accountant.post("/console/finance/budget-compile", data={
            "csrf_token": csrf_of(page.text), "fund": "INJURY", "year": "2031", f"line_{income}": "1000000.50"})
        assert compiled.status_code == 303 and compiled.headers["location"] == url, compiled.text[:500]
        page = await accountant.get(url)
        assert "编制中" in page.text and "1,000,000.50" in page.text and 'id="execution-none"' in page.text
        submitted = await accountant.post(f"{url}/submit", data={"csrf_token": csrf_of(page.text)})
        assert submitted.status_code == 303, submitted.text[:500]
        assert 'id="review-form"' not in (await accountant.get(url)).text  # finance reviews

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as finance:
        await console_sign_in(finance, *platform.user_of("finance_officer"))
        page = await finance.get(url)
        assert 'id="review-form"' in page.text and 'id="submit-form"' not in page.text
        reviewed = await finance.post(f"{url}/review", data={"csrf_token": csrf_of(page.text), "note": "同意"})
        assert reviewed.status_code == 303, reviewed.text[:500]
        page = await finance.get(url)
        assert "已审核" in page.text and 'id="approve-form"' in page.text
        same = await finance.post(f"{url}/approve", data={  # the reviewer may not approve too: the API's words
            "csrf_token": csrf_of(page.text), "approval_ref": "某人大常〔2031〕1号", "approved_on": "2026-01-05"})
        assert same.status_code in (403, 409, 422) and 'id="budget-error"' in same.text, same.text[:300]
        assert 'value="某人大常〔2031〕1号"' in same.text

    second_officer = await staff_user(platform, "console_finance2", "finance_officer")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as second:
        await console_sign_in(second, *second_officer)
        page = await second.get(url)
        approved = await second.post(f"{url}/approve", data={
            "csrf_token": csrf_of(page.text), "approval_ref": "某人大常〔2031〕1号", "approved_on": "2026-01-05"})
        assert approved.status_code == 303, re.findall(r'role="alert"[^>]*>([^<]+)', approved.text)
        page = await second.get(url)
        assert "已批准" in page.text and "某人大常〔2031〕1号" in page.text and 'id="approve-form"' not in page.text

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as accountant:  # an adjustment
        await console_sign_in(accountant, *platform.user_of("accountant"))
        page = await accountant.get(url)
        assert 'id="adjust-form"' in page.text
        adjusted = await accountant.post(f"{url}/adjust", data={
            "csrf_token": csrf_of(page.text), f"line_{income}": "1200000", "reason": "重大政策调整"})
        assert adjusted.status_code == 303, re.findall(r'role="alert"[^>]*>([^<]+)', adjusted.text)
        adjustments = re.search(r'id="budget-adjustments">.*?</table>', (await accountant.get(url)).text, re.S)
        assert "重大政策调整" in adjustments.group(0) and "1,200,000.00" in adjustments.group(0)
        assert 'id="adjustment-submit-1"' in adjustments.group(0)


async def test_the_cashier_is_offered_the_bank_file_of_a_funded_run_and_sees_the_apis_refusal(platform):
    """The run of the test before has no line to pay (no entitlement in this district): the API's refusal is shown
    on the run's page. (A bank file with lines, its download and the bank's results need entitlements: the browser
    suite's claim walk grants one.)"""
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        runs = (await api.get("/api/benefits/payroll/runs", params={"fund": "INJURY"},
                              headers=await api_headers(platform, "cashier"))).json()
    funded = next((run for run in runs if run["funding_requested_at"]), None)
    if funded is None:
        pytest.skip("needs the funded run of the test before (this module runs in order)")
    url = f"/console/payroll/runs/{funded['id']}"
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as cashier:
        await console_sign_in(cashier, *platform.user_of("cashier"))
        page = await cashier.get(url)
        assert 'id="bank-files-form"' in page.text and 'id="approve-form"' not in page.text
        assert 'id="funding-request-form"' not in page.text  # the accountant's
        refused = await cashier.post(f"{url}/bank-files", data={"csrf_token": csrf_of(page.text)})
        assert refused.status_code == 409 and 'id="run-error"' in refused.text
        assert "NOTHING_TO_PAY" in re.search(r'id="run-error">([^<]+)<', refused.text).group(1)
        assert "尚未报盘" in refused.text
