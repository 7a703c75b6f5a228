"""The agency's internal control (稽核内控) through the gateway: a monthly sample of last month's business drawn from
the archive (004 第6项; quarterly: 001 第十九条) with a recorded seed, redrawn identically from it; high-risk acts
weighted; an internal auditor's non-conforming finding opens a case in oversight (once, however often delivered);
the yearly report (001 第二十四条) produced as a PDF that verifies on /verify, submitted to oversight, which tracks
its deadline (submitted / late / missing / unknown)."""

import math
from datetime import datetime, time, timedelta

from services.accounts.internal_control import risk
from services.contracts.archives import ArchiveItemLine
from services.contracts.benefits import BenefitsArchiveItemsFiled
from services.kernel import clock
from services.kernel.clock import CHINA
from services.kernel.documents.text import legal_basis
from services.oversight.internal_control.deadline import due_of
from tests.support.apps import bearer
from tests.support.archives import archive_line as line
from tests.support.documents import fetch_again, issued, pdf_text, platform, verifies
from tests.support.e2e import eventually
from tests.support.oversight import publish
from tests.support.registry import REGION, error_code, make_citizen_id

API = "/api/accounts/internal-control"


def last_month() -> tuple[str, datetime, str]:
    """(label, an instant inside it, this month's label)."""
    today = clock.china_today()
    day = today.replace(day=1) - timedelta(days=1)
    at = datetime.combine(day.replace(day=10), time(10), CHINA)
    return f"{day.year}-{day.month:02d}", at, f"{today.year}-{today.month:02d}"


async def job_result(gw, response, headers: dict) -> dict:  # noqa: ANN001
    """The result of the background job a 202 answer started."""
    assert response.status_code == 202, response.text
    url = f"/api/accounts/jobs/{response.json()['id']}"
    done = await eventually(lambda: gw.get(url, headers=headers),
                            lambda r: r.json()["status"] in ("succeeded", "failed"))
    assert done.json()["status"] == "succeeded", done.text
    return done.json()["result"]


def business(at: datetime) -> list[ArchiveItemLine]:
    """30 ordinary payroll lines, 6 injury claim decisions, 4 early retirements; one act filed into two dossiers
    (counted once); and acts of this month and of another area (not in the population)."""
    lines = [line(i, "payroll_line", f"pl-{i}", at, amount_fen="300000") for i in range(30)]
    lines += [line(100 + i, "claim_decision", f"claim-{i}/approval", at, claim_kind="injury") for i in range(6)]
    lines += [line(200 + i, "claim_decision", f"claim-er-{i}/approval", at, claim_kind="basic_pension",
                   early_retirement="true") for i in range(4)]
    lines.append(line(300, "payroll_line", "pl-0", at, amount_fen="300000"))  # pl-0 again, another dossier
    lines.append(line(301, "payroll_line", "pl-now", clock.china_now(), amount_fen="300000"))
    elsewhere = line(302, "payroll_line", "pl-elsewhere", at, amount_fen="300000")
    lines.append(elsewhere.model_copy(update={"region": "150103",
                                              "registration_number": make_citizen_id(502, area="150103")}))
    return lines


async def test_a_monthly_sample_redraws_from_its_seed_and_a_nonconformity_opens_a_case(make_settings, nats_server):
    settings = make_settings(nats_server.url)
    auditor = bearer(settings, "internal_auditor", region=REGION, subject="auditor.qian", unit="新城区社会保险事业管理局")
    deciding = bearer(settings, "internal_auditor", region=REGION, subject="reviewer.wu")
    officer = bearer(settings, "oversight_officer", region=REGION, subject="officer.sun")
    clerk = bearer(settings, "agency_clerk", region=REGION)
    period, at, this_month = last_month()
    async with platform(make_settings, nats_server.url) as p:
        gw, accounts = p.gateway, p.services["accounts"]
        await publish(accounts, BenefitsArchiveItemsFiled(items=business(at)))

        async def filed() -> int:
            r = await gw.get("/api/accounts/archives/dossiers", params={"subject_id": "p-302"},
                             headers=bearer(settings, "agency_clerk", region="150103"))
            return len(r.json()["items"])

        await eventually(filed, lambda n: n == 1)

        body = {"kind": "monthly", "period": period, "rate_percent": 25, "seed": 20261207}
        refused = await gw.post(f"{API}/samples", json=body, headers=clerk)
        assert refused.status_code == 403
        for bad, code in (({"period": "2026-13"}, "INVALID_CONTROL_PERIOD"),
                          ({"period": this_month}, "CONTROL_PERIOD_NOT_ENDED"),
                          ({"kind": "quarterly", "period": "2026-11"}, "INVALID_CONTROL_PERIOD")):
            r = await gw.post(f"{API}/samples", json={**body, **bad}, headers=auditor)
            assert r.status_code == 422 and error_code(r) == code, r.text
            assert any("\u4e00" <= c <= "\u9fff" for c in r.json()["error"]["message"])

        drawn = await job_result(gw, await gw.post(f"{API}/samples", json=body, headers=auditor), auditor)
        sample = (await gw.get(f"{API}/samples/{drawn['sample_id']}", headers=officer)).json()
        assert (drawn["population"], drawn["size"], drawn["seed"]) == (40, 10, 20261207)
        assert (sample["population"], sample["size"], sample["seed"]) == (40, math.ceil(40 * 0.25), 20261207)
        assert sample["weights"] == risk.current_weights()
        items = sample["items"]
        assert [i["rank"] for i in items] == list(range(1, 11))
        assert len({i["act_id"] for i in items}) == 10 and "pl-now" not in {i["act_id"] for i in items}
        risks = {i["act_id"]: i["risk"] for i in items}
        assert all(r == ("injury" if a.startswith("claim-") and "er" not in a else
                         "early_retirement" if a.startswith("claim-er") else "ordinary") for a, r in risks.items())

        again = await gw.post(f"{API}/samples", json=body, headers=auditor)
        assert again.status_code == 409 and error_code(again) == "CONTROL_SAMPLE_EXISTS"
        redraw = await job_result(gw, await gw.post(f"{API}/samples/{sample['id']}/redraw", headers=officer), officer)
        assert (redraw["identical"], redraw["population_unchanged"]) == (True, True)
        assert redraw["population_sha256"] == sample["population_sha256"]
        assert redraw["drawn_item_ids"] == [i["item_id"] for i in items]

        first = items[0]
        url = f"{API}/samples/{sample['id']}/items/{first['id']}/finding"
        no_reason = await gw.post(url, json={"finding": "not_conform"}, headers=auditor)
        assert no_reason.status_code == 422 and error_code(no_reason) == "CONTROL_REASON_REQUIRED"
        own = await gw.post(url, json={"finding": "conform"}, headers=deciding)
        assert own.status_code == 403 and error_code(own) == "CONTROL_REVIEW_OWN_ACT"
        by_officer = await gw.post(url, json={"finding": "conform"}, headers=officer)
        assert by_officer.status_code == 403
        found = await gw.post(url, json={"finding": "not_conform", "reason": "缺少劳动能力鉴定结论"}, headers=auditor)
        assert found.status_code == 200, found.text
        assert (found.json()["finding"], found.json()["reviewed_by"]) == ("not_conform", "auditor.qian")
        twice = await gw.post(url, json={"finding": "conform"}, headers=auditor)
        assert twice.status_code == 409 and error_code(twice) == "CONTROL_FINDING_RECORDED"
        ok = await gw.post(f"{API}/samples/{sample['id']}/items/{items[1]['id']}/finding",
                           json={"finding": "conform"}, headers=auditor)
        assert ok.status_code == 200, ok.text

        async def cases() -> list[dict]:
            r = await gw.get("/api/oversight/cases", params={"rule_id": "IC"}, headers=officer)
            assert r.status_code == 200, r.text
            return r.json()["items"]

        [case] = await eventually(cases, lambda rows: len(rows) == 1)
        assert case["fact_key"] == f"IC:{first['id']}" and case["subject_id"] == first["subject_id"]
        assert case["severity"] == ("medium" if first["risk"] == "ordinary" else "high")

        # The yearly report: from the year's samples and findings, with the identity reports' figures.
        year = int(period[:4])
        report_url = f"{API}/reports/{year}"
        short = await gw.post(report_url, json={"summary": "短"}, headers=auditor)
        assert short.status_code == 422
        future = await gw.post(f"{API}/reports/{clock.china_today().year + 1}",
                               json={"summary": "全年按月抽查已办结业务。"}, headers=auditor)
        assert future.status_code == 422 and error_code(future) == "CONTROL_REPORT_FUTURE_YEAR"
        pdf, number, code = issued(await gw.post(report_url, headers=auditor, json={
            "summary": "全年按月抽查已办结业务，高风险业务加权抽取。",
            "staff": {"conflict_rules": 7, "long_tenure_staff": 2, "read_on": clock.china_today().isoformat()}}))
        assert number == f"社保内控字〔{clock.china_today().year}〕1号"
        text = pdf_text(pdf)
        for expected in ("稽核内控工作年度总结报告", "抽取10件", "已核查2件", "符合规定1件，不符合规定1件",
                         "缺少劳动能力鉴定结论", "现行不相容岗位规则7条", "20261207", legal_basis("001 第二十四条"),
                         "新城区社会保险事业管理局"):
            assert expected in text, expected
        await verifies(gw, pdf, number, code)
        assert (await fetch_again(gw, "accounts", number, officer)).content == pdf  # oversight reads it again
        [listed] = (await gw.get(f"{API}/reports", headers=officer)).json()
        kept = await gw.get(f"{API}/reports/{listed['id']}/document", headers=officer)
        assert kept.status_code == 200 and kept.content == pdf  # the very bytes issued, read again later
        assert (await gw.get(f"{API}/reports/{listed['id']}/document", headers=clerk)).status_code == 403
        unknown_report = await gw.get(f"{API}/reports/no-such-report/document", headers=auditor)
        assert unknown_report.status_code == 404 and error_code(unknown_report) == "CONTROL_REPORT_NOT_FOUND"
        resubmitted = await gw.post(report_url, json={"summary": "全年按月抽查已办结业务。"}, headers=auditor)
        assert resubmitted.status_code == 409 and error_code(resubmitted) == "CONTROL_REPORT_SUBMITTED"

        async def deadline(of_year: int) -> dict:
            r = await gw.get(f"/api/oversight/internal-control/reports/{of_year}", params={"region": REGION},
                             headers=officer)
            assert r.status_code == 200, r.text
            return r.json()

        tracked = await eventually(lambda: deadline(year), lambda d: d["report"] is not None)
        due = due_of(year).day  # None for a year the calendar does not hold (a dates profile in a later year)
        assert tracked["due_on"] == (due.isoformat() if due else None)
        assert tracked["status"] == ("unknown" if due is None else
                                     "submitted" if clock.china_today() <= due else "late")
        assert tracked["report"]["document_number"] == number
        missing = await deadline(year - 2)
        assert (missing["status"], missing["overdue"], missing["report"]) == ("missing", True, None)
        unknown = await deadline(2099)
        assert (unknown["status"], unknown["due_on"]) == ("unknown", None) and "2099" in unknown["due_note"]
        elsewhere = await gw.get(f"/api/oversight/internal-control/reports/{year}", params={"region": "150103"},
                                 headers=officer)
        assert elsewhere.status_code == 403
        assert (await gw.get(f"/api/oversight/internal-control/reports/{year}", headers=clerk)).status_code == 403

        # An act of the month filed late: the redraw says the population is no longer the one drawn from.
        await publish(accounts, BenefitsArchiveItemsFiled(items=[line(400, "payroll_line", "pl-late", at,
                                                                      amount_fen="300000")]))

        async def late_filed() -> dict:
            r = await gw.get("/api/accounts/archives/dossiers", params={"subject_id": "p-400"}, headers=clerk)
            return r.json()["items"]

        await eventually(late_filed, lambda rows: len(rows) == 1)
        late = await job_result(gw, await gw.post(f"{API}/samples/{sample['id']}/redraw", headers=auditor), auditor)
        assert late["population"] == 41
        assert late["population_unchanged"] is False and late["population_sha256"] != sample["population_sha256"]
        quarter = await gw.post(f"{API}/samples", headers=auditor, json={
            "kind": "quarterly", "period": f"{clock.china_today().year}-Q{(clock.china_today().month - 1) // 3 + 1}"})
        assert quarter.status_code == 422 and error_code(quarter) == "CONTROL_PERIOD_NOT_ENDED"
