"""Oversight's documents through the gateway: the inspection feedback letter (问题反馈函, 001 第十一条(三)) after an
inspection planned, notified, inspected and its letter recorded through the API, every finding with its amount
and deadline, filed into the inspection's own dossier (an agency inspected) or the inspected employer's (a service
institution registered as an employer: 001 第十一条 延伸检查服务机构); the budget tables and execution report
(002 二(三)、三(一)) as PDF and as a workbook. Each PDF's Chinese text is checked, it verifies on the public page and fails
when altered; each is fetched again as issued."""

import io
from datetime import timedelta
from decimal import Decimal
from urllib.parse import unquote

from openpyxl import load_workbook

from services.kernel import clock
from services.oversight.models import MirroredEmployer
from tests.support.accounts import full_employer
from tests.support.apps import bearer
from tests.support.benefits_mirror import get
from tests.support.e2e import eventually
from tests.support.documents import fetch_again, issued, pdf_text, platform, verifies
from tests.support.oversight import LINES, PEN, YEAR, Feed, posted, settled

TODAY = clock.china_today()


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).isoformat()


def chinese(offset: int) -> str:
    d = TODAY + timedelta(days=offset)
    return f"{d.year}年{d.month}月{d.day}日"


async def test_the_inspection_feedback_letter_is_issued_as_pdf_and_verifies(make_settings, nats_server):
    settings = make_settings(nats_server.url)
    officer = bearer(settings, "oversight_officer", subject="officer.wang", unit="呼和浩特市社会保险基金监督科")
    async with platform(make_settings, nats_server.url) as p:
        gw = p.gateway

        async def post(path: str, body: dict, expected: int = 200) -> dict:
            r = await gw.post(f"/api/oversight{path}", json=body, headers=officer)
            assert r.status_code == expected, r.text
            return r.json()

        inspection = await post("/inspections", {
            "target_unit": "新城区社会保险事业管理局", "target_code": "AG-150102", "target_level": "lower_level",
            "scope": "2025年度养老保险待遇发放与银行账户管理", "planned_on": day(-10),
            "members": [{"inspector_id": "officer.wang", "name": "王监督", "leader": True},
                        {"inspector_id": "officer.li", "name": "李监督"}]}, 201)
        iid = inspection["id"]
        url = f"/api/oversight/documents/inspection-feedback-letters/{iid}"
        await post(f"/inspections/{iid}/notification", {"notified_on": day(-14), "notice_ref": "监督通知〔2026〕3号"})
        first = await post(f"/inspections/{iid}/findings", {
            "title": "死亡人员冒领养老金未追回", "description": "3名已死亡人员继续领取待遇14个月。", "fund": "PEN_EMP",
            "amount": "85432.10"}, 201)
        second = await post(f"/inspections/{iid}/findings", {
            "title": "支出户向个人账户转账", "description": "支出户2笔转入个人账户。", "amount": "12000.05"}, 201)

        early = await gw.post(url, headers=officer)
        assert early.status_code == 409 and early.json()["error"]["code"] == "FEEDBACK_LETTER_NOT_ISSUED"

        await post(f"/inspections/{iid}/feedback-letter", {
            "letter_no": "问题反馈函〔2026〕5号", "issued_on": day(-3), "oral_feedback_on": day(-8),
            "requirements": "逐条整改并报送整改情况",
            "deadlines": [{"finding_id": first["id"], "rectify_by": day(27)},
                          {"finding_id": second["id"], "rectify_by": day(57)}]})

        pdf, number, code = issued(await gw.post(url, headers=officer))
        assert number == f"社保监函〔{TODAY.year}〕1号"
        text = pdf_text(pdf)
        for expected in ("问题反馈函", number, "新城区社会保险事业管理局：", "王监督（组长）、李监督", chinese(-10),
                         "2025年度养老保险待遇发放与银行账户管理", chinese(-8), "死亡人员冒领养老金未追回",
                         "85,432.10", chinese(27), "支出户向个人账户转账", "12,000.05", chinese(57),
                         "共2项，涉及资金合计人民币97,432.15元", "逐条整改并报送整改情况", "问题反馈函〔2026〕5号",
                         "《赣州市社会保险基金监督办法（试行）（2020）》第十一条(三)", "呼和浩特市社会保险基金监督科"):
            assert expected in text, expected

        await verifies(gw, pdf, number, code)

        # Fetched again by the readers of inspections; an approver, who reads budgets here, not this kind.
        again = await fetch_again(gw, "oversight", number, bearer(settings, "internal_auditor"))
        assert again.status_code == 200 and again.content == pdf
        approver = await fetch_again(gw, "oversight", number, bearer(settings, "agency_approver"))
        assert approver.status_code == 403 and approver.json()["error"]["code"] == "DOCUMENT_KIND_FORBIDDEN"

        # Filed: an agency has no dossier of its own, so the inspection's (in the officer's area, 150100).
        archive_reader = bearer(settings, "agency_clerk", subject="clerk.archive")
        [dossier] = await dossiers_of(gw, iid, archive_reader)
        assert (dossier["subject_type"], dossier["registration_number"], dossier["name"], dossier["region"]) == (
            "inspection", "AG-150102", "新城区社会保险事业管理局（现场监督）", "150100")
        assert await filed_numbers(gw, dossier["id"], archive_reader) == [number]

        # A service institution that is a registered employer: the letter goes into the employer's dossier.
        employer = full_employer(7, name="新城区某某定点医院")
        registered = await gw.post("/api/accounts/employers", json=employer, headers=bearer(
            settings, "agency_clerk", region="150102"))
        assert registered.status_code == 201, registered.text
        employer_id = registered.json()["id"]
        await eventually(lambda: _mirrored(p, employer_id), lambda known: known)
        hospital = await post("/inspections", {
            "target_unit": employer["name"], "target_code": employer["uscc"], "target_level": "service_institution",
            "scope": "医疗服务协议执行情况", "planned_on": day(-10),
            "members": [{"inspector_id": "officer.wang", "name": "王监督", "leader": True},
                        {"inspector_id": "officer.li", "name": "李监督"}]}, 201)
        await post(f"/inspections/{hospital['id']}/notification", {"notified_on": day(-14)})
        finding = await post(f"/inspections/{hospital['id']}/findings", {
            "title": "串换药品", "description": "串换药品结算。", "amount": "1200.00"}, 201)
        await post(f"/inspections/{hospital['id']}/feedback-letter", {
            "letter_no": "问题反馈函〔2026〕6号", "issued_on": day(-3),
            "deadlines": [{"finding_id": finding["id"], "rectify_by": day(27)}]})
        _, letter, _ = issued(await gw.post(
            f"/api/oversight/documents/inspection-feedback-letters/{hospital['id']}", headers=officer))
        [employer_dossier] = await dossiers_of(gw, employer_id, bearer(settings, "agency_clerk", region="150102"))
        assert employer_dossier["subject_type"] == "employer"
        assert letter in await filed_numbers(gw, employer_dossier["id"], bearer(settings, "agency_clerk",
                                                                                region="150102"))
        assert await dossiers_of(gw, hospital["id"], archive_reader, wait=False) == []

        others = await gw.post(url, headers=bearer(settings, "internal_auditor"))
        assert others.status_code == 403
        unknown = await gw.post("/api/oversight/documents/inspection-feedback-letters/nope", headers=officer)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "INSPECTION_NOT_FOUND"


async def dossiers_of(gw, subject_id: str, headers: dict, *, wait: bool = True) -> list[dict]:  # noqa: ANN001
    """The dossiers of a subject in accounts' archive, once one holds an issued document (when ``wait``)."""
    async def found() -> list[dict]:
        r = await gw.get("/api/accounts/archives/dossiers", params={"subject_id": subject_id}, headers=headers)
        assert r.status_code == 200, r.text
        return r.json()["items"]

    if not wait:
        return await found()
    return await eventually(found, lambda rows: rows and rows[0]["item_count"] > 0)


async def filed_numbers(gw, dossier_id: str, headers: dict) -> list[str]:  # noqa: ANN001
    """The numbers of the issued documents filed in a dossier."""
    r = await gw.get(f"/api/accounts/archives/dossiers/{dossier_id}/items", params={"purpose": "核对归档文书"},
                     headers=headers)
    assert r.status_code == 200, r.text
    return [i["references"]["document_number"] for i in r.json()["items"] if i["item_type"] == "issued_document"]


async def _mirrored(p, employer_id: str) -> bool:  # noqa: ANN001
    return get(p.services["oversight"], MirroredEmployer, employer_id) is not None


async def test_the_budget_report_is_issued_as_pdf_and_excel_and_verifies(make_settings, nats_server):
    """002 二(三)、三(一): a PEN_EMP budget approved by three people through the gateway; its execution to April
    from oversight's ledger (contributions and bank-settled benefits fed through the ledger's handlers, as
    tests/oversight/test_budget.py does): benefits 51.67 % against 33.33 % is the early warning."""
    settings = make_settings(nats_server.url)
    drafter = bearer(settings, "accountant", subject="acc.zhang")
    reviewer, approver = bearer(settings, "finance_officer", subject="fin.li"), bearer(
        settings, "finance_officer", subject="fin.wang")
    officer = bearer(settings, "oversight_officer", subject="officer.sun", unit="呼和浩特市社会保险基金监督科")
    async with platform(make_settings, nats_server.url) as p:
        gw = p.gateway
        base = f"/api/oversight/budget/{PEN}/{YEAR}"
        url = f"/api/oversight/documents/budget-reports/{PEN}/{YEAR}"
        created = await gw.post("/api/oversight/budget", json={"fund": PEN, "year": YEAR, "lines": LINES},
                                headers=drafter)
        assert created.status_code == 201, created.text
        early = await gw.post(url, headers=officer)
        assert early.status_code == 409 and early.json()["error"]["code"] == "BUDGET_NOT_APPROVED"
        for step, who, body in (("submit", drafter, None), ("review", reviewer, None), (
                "approve", approver, {"approval_ref": "人大批准〔2024〕1号", "approved_on": "2024-01-15"})):
            r = await gw.post(f"{base}/{step}", json=body, headers=who)
            assert r.status_code == 200, r.text
        feed = Feed(p.services["oversight"].app.state.engine)
        for m in (1, 2, 3):
            feed(posted((PEN, YEAR * 100 + m, "e1", 6_000_000, 4_000_000), prefix=f"c{m}-", batch=f"b{m}"))
        for m, amount in ((1, 100_000), (2, 100_000), (3, 220_000), (4, 200_000)):
            feed(settled(f"f{m}", f"run{m}", PEN, YEAR * 100 + m, (f"l{m}", amount * 100, "paid")))

        pdf, number, code = issued(await gw.post(url, params={"month": 4}, headers=officer))
        text = pdf_text(pdf)
        assert number == f"社保预字〔{TODAY.year}〕1号"
        for expected in ("社会保险基金预算表及执行情况报告", "企业职工基本养老保险基金2024年度预算（第1版，人大批准〔2024〕1号（2024年1月15日）批准）",
                         "截至2024年4月", "收入社会保险费收入1,200,000.00", "收入财政补贴收入300,000.00",
                         "收入合计1,512,345.67", "支出合计1,251,000.00", "本年收支结余261,345.67",
                         "社会保险费收入1,200,000.00300,000.0025.00%33.33%-8.33正常",
                         "社会保险待遇支出1,200,000.00620,000.0051.67%33.33%18.33预警",
                         "2024年3月社会保险待遇支出220,000.00420,000.0035.00%",
                         "社会保险待遇支出预算执行进度51.67%超过时间进度33.33%",
                         "《内蒙古自治区：关于进一步加强社会保险基金预算管理的意见》三(一)", "呼和浩特市社会保险基金监督科"):
            assert expected in text, expected
        await verifies(gw, pdf, number, code)

        workbook = await gw.post(url, params={"month": 4, "format": "xlsx"}, headers=officer)
        assert workbook.status_code == 201, workbook.text
        sheet = load_workbook(io.BytesIO(workbook.content)).active
        cells = [[c for c in row] for row in sheet.iter_rows(values_only=True)]
        second = unquote(workbook.headers["x-document-number"])
        assert second == f"社保预字〔{TODAY.year}〕2号" and ["文书编号", second] == cells[1][:2]
        assert cells[3][:2] == ["PDF 文件 SHA-256", workbook.headers["x-document-sha256"]]
        assert ["社会保险待遇支出", Decimal("1200000.00"), Decimal("620000.00"), "51.67%", "33.33%", "18.33", "预警"] in [
            [Decimal(str(c)) if isinstance(c, float | int) else c for c in row[:7]] for row in cells]
        code_of_workbook = cells[2][1]
        # Both files of the registered document fetched again as handed out.
        reader = bearer(settings, "finance_officer", subject="fin.zhao")
        again = await fetch_again(gw, "oversight", second, reader, form="xlsx")
        assert again.status_code == 200 and again.content == workbook.content
        assert again.headers["content-type"] == workbook.headers["content-type"]
        assert (await fetch_again(gw, "oversight", number, reader)).content == pdf
        answer = await gw.post("/verify/documents", json={"number": second, "verification_code": code_of_workbook})
        assert answer.json()["result"] == "genuine"

        clerk = await gw.post(url, headers=bearer(settings, "agency_clerk"))
        assert clerk.status_code == 403
        missing = await gw.post(f"/api/oversight/documents/budget-reports/UNEMP/{YEAR}", headers=officer)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "BUDGET_NOT_FOUND"
        bad = await gw.post(url, params={"format": "doc"}, headers=officer)
        assert bad.status_code == 422


async def test_the_half_year_incident_summary_is_issued_as_pdf_and_verifies(make_settings, nats_server):
    """001 第三十一条: three incidents of 2026's first half recorded through the gateway (one major reported on
    time at both levels, one major reported late to the same level and not to the province, one not major), one
    of the second half and one of 2025 that the summary leaves out."""
    settings = make_settings(nats_server.url)
    officer = bearer(settings, "oversight_officer", subject="officer.sun", unit="呼和浩特市社会保险基金监督科")
    async with platform(make_settings, nats_server.url) as p:
        gw = p.gateway

        async def record(**overrides) -> dict:
            body = {"kind": "misappropriation", "title": "挪用失业保险基金", "description": "某区经办机构将基金借给企业周转。",
                    "unit": "某区社会保险事业管理局", "region": "150102", "channel": "inspection",
                    "discovered_on": "2026-03-02", "amount": "100000.00", "major": True, **overrides}
            r = await gw.post("/api/oversight/incidents", json=body, headers=officer)
            assert r.status_code == 201, r.text
            return r.json()

        on_time = await record()
        late = await record(title="骗取工伤保险待遇", kind="fraud", channel="audit", discovered_on="2026-04-01",
                            amount="20000.50", unit="某县社会保险事业管理局")
        await record(title="挤占医疗费用", kind="diversion", channel="media", discovered_on="2026-06-30",
                     amount="3000.00", major=False)
        await record(title="下半年要情", discovered_on="2026-07-01", amount="999.99")
        await record(title="上年要情", discovered_on="2025-12-31", amount="1.00")
        for level in ("same_level", "provincial"):
            r = await gw.post(f"/api/oversight/incidents/{on_time['id']}/reports", headers=officer,
                              json={"level": level, "reported_on": "2026-03-09"})
            assert r.status_code == 200, r.text
        r = await gw.post(f"/api/oversight/incidents/{late['id']}/reports", headers=officer,
                          json={"level": "same_level", "reported_on": "2026-04-10"})
        assert r.json()["same_level_late"] is True

        url = "/api/oversight/documents/incident-summaries/2026/1"
        pdf, number, code = issued(await gw.post(url, params={"as_of": "2026-07-15"}, headers=officer))
        text = pdf_text(pdf)
        assert number == f"社保要字〔{TODAY.year}〕1号"
        for expected in ("社会保险基金要情半年汇总报告", "同级社会保险基金监督机构、上级社会保险经办机构：",
                         "2026年上半年（2026年1月1日至2026年6月30日）共发现要情3起，涉及金额123,000.50元；"
                         "其中重大要情2起，涉及金额120,000.50元",
                         "挪用1100,000.00", "骗取120,000.50", "挤占13,000.00", "媒体披露13,000.00", "检察机关或法院立案审理00.00",
                         "2026年3月2日挪用挪用失业保险基金某区社会保险事业管理局100,000.00是2026年3月9日2026年3月9日",
                         "骗取工伤保险待遇某县社会保险事业管理局20,000.50是2026年4月10日（逾期）未报告",
                         "挤占医疗费用某区社会保险事业管理局3,000.00否半年汇总半年汇总",
                         "重大要情逾期报告1起：骗取工伤保险待遇",
                         "截至2026年7月15日，已过报告期限仍未报告的重大要情1起：骗取工伤保险待遇",
                         "《赣州市社会保险基金监督办法（试行）（2020）》第三十一条"):
            assert expected in text, expected
        assert "下半年要情" not in text and "上年要情" not in text
        await verifies(gw, pdf, number, code)

        workbook = await gw.post(url, params={"as_of": "2026-07-15", "format": "xlsx"}, headers=officer)
        assert workbook.status_code == 201, workbook.text
        rows = [list(r) for r in load_workbook(io.BytesIO(workbook.content)).active.iter_rows(values_only=True)]
        assert ["骗取", "1", Decimal("20000.50")] in [
            [Decimal(str(c)) if isinstance(c, float | int) else c for c in r[:3]] for r in rows]

        future = await gw.post(url, params={"as_of": "2099-01-01"}, headers=officer)
        assert future.status_code == 422 and future.json()["error"]["code"] == "AS_OF_IN_FUTURE"
        assert (await gw.post("/api/oversight/documents/incident-summaries/2026/3", headers=officer)).status_code == 422
        assert (await gw.post(url, headers=bearer(settings, "internal_auditor"))).status_code == 403
