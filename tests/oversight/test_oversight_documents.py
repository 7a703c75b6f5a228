"""Oversight's documents through the gateway: the inspection feedback letter (问题反馈函, 001 第十一条(三)) after an
inspection planned, notified, inspected and its letter recorded through the API; the PDF's Chinese text carries
every finding with its amount and deadline, it verifies on the public page and fails when altered."""

from datetime import timedelta

from services.kernel import clock
from tests.support.apps import bearer
from tests.support.documents import issued, pdf_text, platform, verifies

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

        others = await gw.post(url, headers=bearer(settings, "internal_auditor"))
        assert others.status_code == 403
        unknown = await gw.post("/api/oversight/documents/inspection-feedback-letters/nope", headers=officer)
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "INSPECTION_NOT_FOUND"
