"""Work through the console without a browser, on the package's platform (conftest.py): an import uploaded as a
background job and followed on its job page until done, then its rejected rows; a whistleblower report taken from
受理 to 答复 by an officer, the API's refusal shown in Chinese with the typed text kept and the auditor refused; a
report table filtered, sorted and downloaded as the workbook of the same rows."""

import re
from datetime import timedelta
from io import BytesIO

import httpx
import pytest
from openpyxl import load_workbook

from services.kernel.clock import china_today
from tests.chaos.month import citizen_id
from tests.support.console import console_sign_in, csrf_of, followed_to_the_end, plan_inspection

pytestmark = pytest.mark.once
TIMEOUT = 180.0


async def test_an_import_is_followed_on_its_job_page_then_its_rejected_rows(platform):
    persons = ("公民身份号码,姓名,行政区划代码\n"
               f"{citizen_id(901)},导入测试甲,150102\n"
               "110101199003071234,校验位错误,150102\n").encode()
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as browser:
        await console_sign_in(browser, *platform.user_of("agency_clerk"))
        imports = await browser.get("/console/agency/imports")
        assert imports.status_code == 200 and 'id="import-form"' in imports.text
        started = await browser.post("/console/agency/imports", data={
            "csrf_token": csrf_of(imports.text), "kind": "persons", "mode": "per_row"},
            files={"file": ("persons.csv", persons, "text/csv")})
        assert started.status_code == 303, started.text[:500]
        job_url = started.headers["location"]
        assert re.fullmatch(r"/console/jobs/accounts/[\w-]+", job_url)
        first = await browser.get(job_url)
        assert first.status_code == 200 and 'id="job-status"' in first.text
        done = await followed_to_the_end(browser, job_url)
        assert "成功" in done, done[:800]
        import_url = re.search(r'href="(/console/agency/imports/[\w-]+)" id="job-import-link"', done).group(1)
        report = await browser.get(import_url)
        assert report.status_code == 200
        assert "已接收 1 行，拒绝 1 行" in report.text
        rejected = re.search(r'<table class="data" id="import-rejections">.*?</table>', report.text, re.S).group(0)
        assert "<td>3</td>" in rejected or "<td>2</td>" in rejected  # the bad row, by its row number

        listing = await browser.get("/console/agency/persons", params={"name": "导入测试"})
        assert "导入测试甲" in listing.text and "校验位错误" not in listing.text

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as reviewer:
        await console_sign_in(reviewer, *platform.user_of("agency_reviewer"))
        # A reviewer reaches the job screen (reviewers export dossiers as jobs) but not an import's job: its kind's
        # readers are the clerks and auditors, and a job one may not read is not found, as in the API.
        kept_from = await reviewer.get(job_url)
        assert kept_from.status_code == 404, kept_from.text[:300]


async def test_a_whistleblower_report_is_answered_through_its_page(platform):
    filed = await _file_report(platform)
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as officer:
        username, _ = platform.user_of("oversight_officer")
        await console_sign_in(officer, *platform.user_of("oversight_officer"))
        url = f"/console/oversight/whistleblowing/{filed}"
        page = await officer.get(url)
        assert page.status_code == 200 and "已受理" in page.text and 'id="assign-form"' in page.text
        for action, fields in (("assign", {"officer_id": username}), ("investigate", {"note": "调取发放记录"})):
            done = await officer.post(f"{url}/{action}", data={"csrf_token": csrf_of(page.text), **fields})
            assert done.status_code == 303, done.text[:500]
        page = await officer.get(url)
        assert "调查中" in page.text and 'id="answer-form"' in page.text
        typed = "经查，该人员已于 2026 年 3 月死亡，其后 4 个月养老金被冒领"
        refused = await officer.post(f"{url}/answer", data={
            "csrf_token": csrf_of(page.text), "answer": typed, "outcome": "unsubstantiated", "verified_amount": "800"})
        assert refused.status_code == 422 and 'id="report-error"' in refused.text
        assert "经查不属实的举报不应有查证属实金额" in refused.text and typed in refused.text  # the API's words, kept
        answered = await officer.post(f"{url}/answer", data={
            "csrf_token": csrf_of(page.text), "answer": typed, "outcome": "substantiated", "verified_amount": "8000.00"})
        assert answered.status_code == 303
        page = await officer.get(url)
        assert "已答复" in page.text and "8,000.00" in page.text and 'id="reward-form"' in page.text
        rewarded = await officer.post(f"{url}/reward", data={  # unticked boxes are false; anonymous: not eligible
            "csrf_token": csrf_of(page.text), "full_civil_capacity": "true"})
        assert rewarded.status_code == 303, rewarded.text[:500]
        page = await officer.get(url)
        rewards = re.search(r'<table class="data" id="report-rewards">.*?</table>', page.text, re.S).group(0)
        assert "<td>否</td>" in rewards and "匿名举报" in rewards  # each unmet condition in words

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as auditor:
        await console_sign_in(auditor, *platform.user_of("internal_auditor"))
        page = await auditor.get(url)
        assert page.status_code == 200 and 'id="close-form"' not in page.text  # the auditor reads only
        refused = await auditor.post(f"{url}/close", data={"csrf_token": csrf_of(page.text), "reason": "越权"})
        assert refused.status_code == 403


async def _file_report(platform) -> str:  # noqa: ANN001
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as public:
        filed = await public.post("/api/oversight/whistleblowing/reports", json={
            "category": "payment", "title": "控制台测试：冒领养老金", "content": "某人去世后仍有人领取其养老金",
            "anonymous": True})
        assert filed.status_code == 201, filed.text
        return filed.json()["report_id"]


async def test_a_report_table_is_filtered_sorted_and_downloaded_as_its_rows(platform):
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        username, password = platform.user_of("agency_clerk")
        token = (await api.post("/auth/token", data={"username": username, "password": password})).json()
        for serial, name in ((911, "排序测试乙"), (912, "排序测试甲"), (913, "排序测试丙")):
            registered = await api.post("/api/accounts/persons", headers={
                "Authorization": f"Bearer {token['access_token']}"}, json={
                "citizen_id": citizen_id(serial), "name": name, "region": "150102"})
            assert registered.status_code == 201, registered.text
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as clerk:
        await console_sign_in(clerk, *platform.user_of("agency_clerk"))
        query = {"name": "排序测试", "sort": "-name"}
        page = await clerk.get("/console/agency/persons", params=query)
        assert page.status_code == 200
        shown = re.findall(r'<a href="/console/agency/persons/[\w-]+">([^<]+)</a>', page.text)
        workbook = await clerk.get("/console/agency/persons.xlsx", params=query)
        assert workbook.status_code == 200
        assert workbook.headers["content-type"].startswith("application/vnd.openxmlformats")
        sheet = load_workbook(BytesIO(workbook.content)).active
        rows = [[c.value for c in row] for row in sheet.iter_rows()]
        assert rows[0][0] == "参保人员（姓名：排序测试）" and rows[1][0] == "姓名"
        assert [r[0] for r in rows[2:]] == shown
        assert shown == ["排序测试甲", "排序测试乙", "排序测试丙"]  # by name, descending (code points: 甲 > 乙 > 丙)
        person_url = re.search(r'<a href="(/console/agency/persons/[\w-]+)">排序测试甲</a>', page.text).group(1)
        person = await clerk.get(person_url)
        assert person.status_code == 200 and "参保记录" in person.text and 'id="claim-form"' in person.text
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as auditor:
        await console_sign_in(auditor, *platform.user_of("internal_auditor"))
        person = await auditor.get(person_url)  # the auditor reads the person; no claim form (only a clerk submits)
        assert person.status_code == 200 and "排序测试甲" in person.text and 'id="claim-form"' not in person.text


async def test_a_dismissal_is_proposed_by_one_officer_and_decided_by_another(platform):
    first, first_password = platform.user_of("oversight_officer")
    second = await _second_officer(platform)
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        token = (await api.post("/auth/token", data={"username": first, "password": first_password})).json()
        opened = await api.post("/api/oversight/cases", headers={"Authorization": f"Bearer {token['access_token']}"},
                                json={"fact_key": "console-dismissal", "severity": "low", "subject_type": "person",
                                      "subject_id": "P-1", "title": "控制台测试：疑似误报", "unit": "演示社保经办机构",
                                      "seed_clause": "001 第二十九条"})
        assert opened.status_code in (200, 201), opened.text
    url = f"/console/oversight/cases/{opened.json()['id']}"
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as proposer:
        await console_sign_in(proposer, first, first_password)
        page = await proposer.get(url)
        proposed = await proposer.post(f"{url}/dismissal", data={"csrf_token": csrf_of(page.text),
                                                                 "reason": "数据源重复推送，非真实疑点"})
        assert proposed.status_code == 303
        page = await proposer.get(url)
        assert "提出排除：数据源重复推送" in page.text and 'id="dismissal-decision-form"' in page.text
        own = await proposer.post(f"{url}/dismissal-decision", data={"csrf_token": csrf_of(page.text),
                                                                      "approve": "true", "reason": "同意"})
        assert own.status_code == 403 and "申请人不能确认本人的申请" in own.text  # the API's words on the page
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as decider:
        await console_sign_in(decider, *second)
        page = await decider.get(url)
        decided = await decider.post(f"{url}/dismissal-decision", data={"csrf_token": csrf_of(page.text),
                                                                         "approve": "true", "reason": "核实为重复推送"})
        assert decided.status_code == 303
        page = await decider.get(url)
        assert '<dd id="case-status">已排除</dd>' in page.text and "dismissal-form" not in page.text


async def _second_officer(platform) -> tuple[str, str]:  # noqa: ANN001
    """Another oversight officer, added by the IT administrator (dismissal needs two)."""
    admin, admin_password = platform.user_of("it_admin")
    password = "Second-Officer-2026!"
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        token = (await api.post("/auth/token", data={"username": admin, "password": admin_password})).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        created = await api.post("/identity/users", headers=headers, json={
            "username": "console_officer_2", "display_name": "第二监督员", "unit": "演示社保经办机构",
            "region": "150100", "password": password})
        assert created.status_code == 201, created.text
        granted = await api.post("/identity/users/console_officer_2/roles", headers=headers,
                                 json={"role": "oversight_officer", "reason": "排除须两人"})
        assert granted.status_code in (200, 201), granted.text
    return "console_officer_2", password


async def test_a_major_incident_shows_its_countdown_and_takes_its_reports(platform):
    username, password = platform.user_of("oversight_officer")
    today = china_today()
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        signed = await api.post("/auth/token", data={"username": username, "password": password})
        assert signed.status_code == 200, (signed.status_code, signed.headers, signed.text)
        token = signed.json()
        recorded = await api.post("/api/oversight/incidents", headers={
            "Authorization": f"Bearer {token['access_token']}"}, json={
            "kind": "diversion", "title": "控制台测试：挤占失业保险基金", "description": "用于办公楼修缮",
            "unit": "某区人社局", "channel": "audit", "discovered_on": today.isoformat(), "amount": "350000.00",
            "major": True, "major_reason": "金额较大"})
        assert recorded.status_code == 201, recorded.text
        incident = recorded.json()
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as officer:
        await console_sign_in(officer, username, password)
        listing = await officer.get("/console/oversight/incidents")
        countdown = re.search(r'<section id="incident-countdown">.*?</section>', listing.text, re.S).group(0)
        row = re.search(r"控制台测试：挤占失业保险基金.*?</tr>", countdown, re.S).group(0)
        if incident["due_on"]:  # the 5th working day after discovery: 5 working days left today
            assert '<td class="num">5</td>' in row, row
        url = f"/console/oversight/incidents/{incident['id']}"
        page = await officer.get(url)
        assert 'id="reports-form"' in page.text
        refused = await officer.post(f"{url}/reports", data={
            "csrf_token": csrf_of(page.text), "level": "same_level", "reported_on": "2026-13-01",
            "reference": "某人社监〔2026〕9号"})
        assert refused.status_code == 422 and 'id="incident-error"' in refused.text
        assert "某人社监〔2026〕9号" in refused.text  # kept
        reported = await officer.post(f"{url}/reports", data={
            "csrf_token": csrf_of(page.text), "level": "same_level", "reported_on": today.isoformat(),
            "reference": "某人社监〔2026〕9号"})
        assert reported.status_code == 303, reported.text[:500]
        page = await officer.get(url)
        same_level = re.search(r'<dd id="incident-same-level">(.*?)</dd>', page.text).group(1)
        assert "某人社监〔2026〕9号" in same_level and "逾期" not in same_level
        assert '<option value="same_level">' not in page.text  # only the provincial report is left


async def test_a_sweep_and_a_ledger_rebuild_are_started_and_followed(platform):
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as officer:
        await console_sign_in(officer, *platform.user_of("oversight_officer"))
        sweeps = await officer.get("/console/oversight/sweeps")
        assert 'id="sweep-form"' in sweeps.text and 'id="rebuild-form"' in sweeps.text
        swept = await officer.post("/console/oversight/sweeps", data={"csrf_token": csrf_of(sweeps.text)})
        assert swept.status_code == 303 and swept.headers["location"].startswith("/console/oversight/sweeps/")
        run = await followed_to_the_end(officer, swept.headers["location"])
        assert re.search(r'<strong id="sweep-status">(已完成|部分完成)</strong>', run), run[:800]
        assert 'id="sweep-rules"' in run and "S01" in run

        rebuild = await officer.post("/console/oversight/ledger/rebuild", data={"csrf_token": csrf_of(sweeps.text)})
        assert rebuild.status_code == 303 and rebuild.headers["location"].startswith("/console/jobs/oversight/")
        done = await followed_to_the_end(officer, rebuild.headers["location"])
        assert '<strong id="job-status">成功</strong>' in done and 'id="job-result"' in done, done[:800]

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as auditor:
        await console_sign_in(auditor, *platform.user_of("internal_auditor"))
        page = await auditor.get("/console/oversight/scheduler")
        assert page.status_code == 200 and 'id="scheduler-jobs"' in page.text
        assert (await auditor.get(rebuild.headers["location"])).status_code == 200  # auditors read the job
        assert (await auditor.get("/console/oversight/sweeps")).status_code == 403  # sweeps are the officers'


async def test_an_inspection_is_notified_and_takes_findings_through_its_page(platform):
    username, password = platform.user_of("oversight_officer")
    planned_on = china_today() - timedelta(days=1)  # under way: findings are recorded from the planned day
    url = await plan_inspection(platform, planned_on, "某区社保经办机构", "2026 年待遇发放")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as officer:
        await console_sign_in(officer, username, password)
        listing = await officer.get("/console/oversight/inspections")
        assert f'href="{url}"' in listing.text
        page = await officer.get(url)
        late = await officer.post(f"{url}/notification", data={  # less than 3 days before: refused in words
            "csrf_token": csrf_of(page.text), "notified_on": (planned_on - timedelta(days=1)).isoformat(),
            "notice_ref": "某监通〔2026〕3号"})
        assert late.status_code in (409, 422) and 'id="inspection-error"' in late.text, late.text[:300]
        assert "某监通〔2026〕3号" in late.text
        notified = await officer.post(f"{url}/notification", data={
            "csrf_token": csrf_of(page.text), "notified_on": (planned_on - timedelta(days=5)).isoformat(),
            "notice_ref": "某监通〔2026〕3号"})
        assert notified.status_code == 303, notified.text[:500]
        found = await officer.post(f"{url}/findings", data={
            "csrf_token": csrf_of(page.text), "title": "超标准发放丧葬补助金", "description": "3 人",
            "fund": "PEN_EMP", "amount": "12000.50"})
        assert found.status_code == 303, found.text[:500]
        page = await officer.get(url)
        assert "检查中" in page.text and "超标准发放丧葬补助金" in page.text and "12,000.50" in page.text
