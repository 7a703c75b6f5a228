"""The archive and internal-control screens without a browser, on the package's platform (conftest.py): last month's
acts filed in the archive as benefits files them (its event on the real stream); a dossier found, its items read
only with a purpose (refused in the API's words without one) and the read found in the auditors' register; the
dossier exported and the package verified as genuine; a sample drawn as a job and followed to its page, the
auditor refused the finding on an act of their own (in Chinese), a finding recorded on another; the yearly report
generated and submitted, its PDF downloaded, and oversight's deadline page showing it submitted."""

import re
from datetime import timedelta

import httpx
import nats
import pytest

from services.contracts.benefits import BenefitsArchiveItemsFiled
from services.kernel.clock import china_now
from tests.support.archives import archive_line as line
from tests.support.console import api_headers, console_sign_in, csrf_of, followed_to_the_end
from tests.support.e2e import eventually
from tests.support.oversight import envelope_of

pytestmark = pytest.mark.once
TIMEOUT = 180.0
AUDITOR = "demo_internal_auditor"


async def _file_last_months_acts(platform) -> str:  # noqa: ANN001
    """Twelve acts of last month in the archive (one decided by the demo auditor); the subject id of the first."""
    at = (china_now().replace(day=1) - timedelta(days=20)).replace(hour=10)
    lines = [line(700 + i, "claim_decision", f"console-claim-{i}/approval", at, claim_kind="injury")
             for i in range(12)]
    lines[0] = lines[0].model_copy(update={"decided_by": AUDITOR, "decided_role": "internal_auditor"})
    # Past their term, for a 销毁清册: a payroll line of 1994 (kept 30 years, through 2024) and an unemployment
    # benefit decision of 1990 (a row of the attachment that keeps it 10 years, where the table refines it).
    lines.append(line(790, "payroll_line", "console-pl-1994", at.replace(year=1994), amount_fen="300000"))
    lines.append(line(791, "claim_decision", "console-claim-1990/approval", at.replace(year=1990),
                      claim_kind="unemployment"))
    envelope = envelope_of(BenefitsArchiveItemsFiled(items=lines))
    connection = await nats.connect(platform.settings.nats_url)
    try:
        await connection.jetstream().publish(envelope.type, envelope.to_bytes(),
                                             headers={"Nats-Msg-Id": envelope.id})
    finally:
        await connection.close()
    headers = await api_headers(platform, "agency_clerk")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as api:
        async def filed() -> list:
            answer = await api.get("/api/accounts/archives/dossiers", params={"subject_id": "p-711"}, headers=headers)
            return answer.json()["items"]

        await eventually(filed, lambda rows: len(rows) == 1, timeout=60)
    return "p-700"


@pytest.fixture(scope="module")
async def filed(platform):
    return await _file_last_months_acts(platform)


async def test_a_dossier_is_read_with_a_purpose_registered_exported_and_verified(platform, filed):
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as clerk:
        await console_sign_in(clerk, *platform.user_of("agency_clerk"))
        found = await clerk.get("/console/archives/dossiers", params={"subject_id": filed})
        assert found.status_code == 200 and "参保人700" in found.text, found.text[:500]
        href = re.search(r'href="(/console/archives/dossiers/[\w-]+)"', found.text).group(1)
        asked = await clerk.get(href)
        assert asked.status_code == 200 and 'id="purpose-form"' in asked.text and 'id="dossier-items"' not in asked.text
        refused = await clerk.get(href, params={"purpose": "查"})  # one character: the API wants a real purpose
        assert refused.status_code == 422 and 'id="dossier-error"' in refused.text
        read = await clerk.get(href, params={"purpose": "核对工伤待遇审批材料"})
        assert read.status_code == 200 and "claim_decision 700" in read.text, read.text[:800]

        exported = await clerk.post(f"{href}/export", data={"csrf_token": csrf_of(read.text),
                                                            "purpose": "移交上级经办机构复核"})
        if exported.status_code == 303:  # the export is a background job: followed on its page to the package
            done = await followed_to_the_end(clerk, exported.headers["location"])
            package = re.search(r'href="(/console/archives/exports/[\w-]+/package)" id="job-package-link"', done)
            assert package, done[:1500]
            exported = await clerk.get(package.group(1))
        assert exported.status_code == 200 and exported.headers["content-type"] == "application/zip"
        page = await clerk.get("/console/archives/verification")  # the package handed back, checked
        verified = await clerk.post("/console/archives/verification", data={"csrf_token": csrf_of(page.text)},
                                    files={"file": ("dossier.zip", exported.content, "application/zip")})
        assert verified.status_code == 200
        assert re.search(r'id="verification-verdict">([^<]+)<', verified.text).group(1) == "与导出时一致（真实）"
        assert (await clerk.get("/console/archives/access-register")).status_code == 403  # auditors read it

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as auditor:
        await console_sign_in(auditor, *platform.user_of("internal_auditor"))
        dossier_id = href.rsplit("/", 1)[1]
        register = await auditor.get("/console/archives/access-register", params={"dossier_id": dossier_id})
        assert register.status_code == 200 and "核对工伤待遇审批材料" in register.text and "查阅" in register.text
        assert "移交上级经办机构复核" in register.text  # the export is a use of the dossier too


async def _approve(browser: httpx.AsyncClient, disposal: str, reason: str) -> httpx.Response:
    page = await browser.get(disposal)
    assert page.status_code == 200 and 'id="approvals-form"' in page.text, page.text[:500]
    return await browser.post(f"{disposal}/approvals", data={"csrf_token": csrf_of(page.text), "reason": reason})


def _status(html: str) -> str:
    return re.search(r'id="disposal-status">([^<]+)<', html).group(1)


async def test_a_disposal_list_is_proposed_and_destroyed_after_two_approvals(platform, filed):
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as clerk:
        await console_sign_in(clerk, *platform.user_of("agency_clerk"))
        listing = await clerk.get("/console/archives/disposals")
        assert listing.status_code == 200 and 'id="disposal-propose-link"' in listing.text
        form = await clerk.get("/console/archives/disposal-proposal")
        refused = await clerk.post("/console/archives/disposal-proposal/disposal",
                                   data={"csrf_token": csrf_of(form.text), "reason": "销"})
        assert refused.status_code == 422 and 'id="disposal-proposal-error"' in refused.text
        assert 'value="销"' in refused.text  # what was typed is kept
        proposed = await clerk.post("/console/archives/disposal-proposal/disposal",
                                    data={"csrf_token": csrf_of(form.text), "reason": "保管期满，经鉴定无继续保存价值"})
        assert proposed.status_code == 303, proposed.text[:500]
        disposal = proposed.headers["location"]
        page = await clerk.get(disposal)
        assert ("payroll_line 790" in page.text or "claim_decision 791" in page.text) and _status(page.text) == "待审批"
        assert 'id="approvals-form"' not in page.text  # the clerk proposes, reviewers and approvers decide

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as reviewer:
        await console_sign_in(reviewer, *platform.user_of("agency_reviewer"))
        first = await _approve(reviewer, disposal, "同意销毁")
        assert first.status_code == 303
        twice = await _approve(reviewer, disposal, "再次同意")
        assert twice.status_code == 403
        assert "SAME_PERSON_TWO_APPROVALS" in re.search(r'id="disposal-error">([^<]+)<', twice.text).group(1)
        assert _status(twice.text) == "已一人批准（待第二人）"
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as approver:
        await console_sign_in(approver, *platform.user_of("agency_approver"))
        second = await _approve(approver, disposal, "同意销毁")
        assert second.status_code == 303
        assert _status((await approver.get(disposal)).text) == "已销毁"


async def test_a_past_year_is_sealed_as_a_job_and_a_current_one_refused(platform):
    this_year, last_year = str(china_now().year), str(china_now().year - 1)
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as clerk:
        await console_sign_in(clerk, *platform.user_of("agency_clerk"))
        page = await clerk.get("/console/archives/seals")
        assert page.status_code == 200 and 'id="seal-form"' not in page.text  # the approver seals
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as approver:
        await console_sign_in(approver, *platform.user_of("agency_approver"))
        page = await approver.get("/console/archives/seals", params={"year": this_year})
        assert page.status_code == 200 and 'id="seal-form"' in page.text
        not_ended = await approver.post("/console/archives/seals", data={"csrf_token": csrf_of(page.text),
                                                                        "year": this_year})
        assert not_ended.status_code == 422 and "ARCHIVE_YEAR_NOT_ENDED" in not_ended.text
        started = await approver.post("/console/archives/seals", data={"csrf_token": csrf_of(page.text),
                                                                      "year": last_year})
        assert started.status_code == 303 and started.headers["location"].startswith("/console/jobs/accounts/")
        done = await followed_to_the_end(approver, started.headers["location"])
        assert "根哈希" in done, done[:800]
        sealed = await approver.get("/console/archives/seals", params={"year": last_year})
        assert 'id="seal-facts"' in sealed.text and "完好" in sealed.text and 'id="seal-form"' not in sealed.text


async def test_a_sample_is_drawn_reviewed_and_the_year_reported(platform, filed):
    this_month = china_now().strftime("%Y-%m")
    last_month = (china_now().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as auditor:
        await console_sign_in(auditor, *platform.user_of("internal_auditor"))
        home = await auditor.get("/console/")
        assert 'data-screen="control_draw"' in home.text and 'data-screen="control_samples"' in home.text
        form = await auditor.get("/console/internal-control/draw")
        not_ended = await auditor.post("/console/internal-control/draw/sample", data={
            "csrf_token": csrf_of(form.text), "kind": "monthly", "period": this_month, "rate_percent": "100"})
        assert not_ended.status_code == 422 and 'id="sample-draw-error"' in not_ended.text
        assert f'value="{this_month}"' in not_ended.text
        started = await auditor.post("/console/internal-control/draw/sample", data={
            "csrf_token": csrf_of(form.text), "kind": "monthly", "period": last_month, "rate_percent": "100"})
        assert started.status_code == 303 and started.headers["location"].startswith("/console/jobs/accounts/")
        done = await followed_to_the_end(auditor, started.headers["location"])
        sample_url = re.search(r'href="(/console/internal-control/samples/[\w-]+)" id="job-sample-link"', done).group(1)
        sample = await auditor.get(sample_url)
        assert sample.status_code == 200 and "claim_decision 700" in sample.text

        rows = re.findall(r'<tr id="item-([\w-]+)">(.*?)</tr>', sample.text, re.S)
        own = next(item for item, row in rows if f"<td>{AUDITOR}</td>" in row)
        other = next(item for item, row in rows if f"<td>{AUDITOR}</td>" not in row)
        refused = await auditor.post(f"{sample_url}/items/{own}/finding", data={
            "csrf_token": csrf_of(sample.text), "finding": "conform"})
        assert refused.status_code == 403
        shown = re.search(rf'id="finding-error-{own}">([^<]+)<', refused.text).group(1)
        assert "不能核查本人经办的业务" in shown and "CONTROL_REVIEW_OWN_ACT" in shown
        recorded = await auditor.post(f"{sample_url}/items/{other}/finding", data={
            "csrf_token": csrf_of(sample.text), "finding": "not_conform", "reason": "缺少劳动能力鉴定结论"})
        assert recorded.status_code == 303
        after = await auditor.get(sample_url)
        assert "不符合规定" in after.text and "缺少劳动能力鉴定结论" in after.text
        redrawn = await auditor.post(f"{sample_url}/redraw", data={"csrf_token": csrf_of(after.text)})
        assert redrawn.status_code == 303 and redrawn.headers["location"].startswith("/console/jobs/accounts/")
        check = await followed_to_the_end(auditor, redrawn.headers["location"])
        assert re.search(r"<dt>样本相同</dt><dd>是</dd>", check), check[:1500]

        reports = await auditor.get("/console/internal-control/reports")
        assert reports.status_code == 200 and 'id="control-report-form"' in reports.text
        year = last_month[:4]
        short = await auditor.post("/console/internal-control/reports", data={
            "csrf_token": csrf_of(reports.text), "year": year, "summary": "太短"})
        assert short.status_code == 422 and 'id="control-report-error"' in short.text
        submitted = await auditor.post("/console/internal-control/reports", data={
            "csrf_token": csrf_of(reports.text), "year": year, "summary": "全年按月抽查已办结业务，高风险业务加权抽取。",
            "conflict_rules": "7", "long_tenure_staff": "0", "tenure_years": "5",
            "read_on": china_now().date().isoformat()})
        assert submitted.status_code == 303, submitted.text[:800]
        listed = await auditor.get("/console/internal-control/reports")
        pdf_href = re.search(r'href="(/console/internal-control/reports/[\w-]+\.pdf)"', listed.text).group(1)
        pdf = await auditor.get(pdf_href)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")

    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=TIMEOUT) as officer:
        await console_sign_in(officer, *platform.user_of("oversight_officer"))

        async def tracked() -> str:
            return (await officer.get("/console/internal-control/deadline", params={"year": year})).text

        page = await eventually(tracked, lambda text: 'id="deadline-status"' in text and "尚未收到" not in text,
                                timeout=60)
        assert re.search(r'id="deadline-status"[^>]*>([^<（]+)', page).group(1) in ("按时报送", "逾期报送")
