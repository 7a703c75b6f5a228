"""Collection's documents through the gateway: the arrears notice with the late fee to its day (社会保险法 第八十六条).
An employer, a person and an assessment due 2026-02-15 are written into collection's database (as the registry
mirror and the assessment flow write them: tests/collection covers those); a clerk issues the notice as of
2026-03-17 through the API, then the document: 1 304.67 principal, 30 days at 0.0005 → 19.57 fee (the hand
computation of tests/collection/test_arrears.py); it verifies on the public page and fails when altered."""

from services.collection.models import RegistryEmployer
from tests.support.apps import bearer
from tests.support.documents import fetch_again, issued, pdf_text, platform, verifies
from tests.support.payments import DUE, EMPLOYER_FEN, INDIVIDUAL_FEN, REGION, add_assessment, add_employer, add_persons
from tests.support.registry import error_code
from tests.support.benefits_mirror import get


async def test_an_arrears_notice_is_issued_as_pdf_with_the_late_fee_and_verifies(make_settings, nats_server):
    settings = make_settings(nats_server.url)
    clerk = bearer(settings, "agency_clerk", region=REGION, subject="clerk.zhao", unit="新城区社会保险费征收分局")
    async with platform(make_settings, nats_server.url) as p:
        collection = p.services["collection"]
        employer_id, uscc = add_employer(collection)
        name = get(collection, RegistryEmployer, employer_id).name
        [(person_id, citizen_id)] = add_persons(collection, [1])
        add_assessment(collection, employer_id, 202601, DUE, [(person_id, "PEN_EMP", EMPLOYER_FEN, INDIVIDUAL_FEN)])
        notice = await p.gateway.post("/api/collection/arrears/notices",
                                      json={"employer_id": employer_id, "as_of": "2026-03-17"}, headers=clerk)
        assert notice.status_code == 201, notice.text
        url = f"/api/collection/documents/arrears-notices/{notice.json()['id']}"

        pdf, number, code = issued(await p.gateway.post(url, headers=clerk))
        text = pdf_text(pdf)
        assert number.startswith("社保催字〔") and number.endswith("〕1号")
        for expected in ("社会保险费催缴通知书", number, f"{name}（统一社会信用代码{uscc}）：", "截至2026年3月17日",
                         "有1笔社会保险费逾期未缴", "欠缴本金人民币1,304.67元", "日费率0.0005",
                         "截至该日滞纳金19.57元，合计应缴1,324.24元", "最早一笔的缴费期限为2026年2月15日",
                         "企业职工基本养老保险2026年1月11,304.6719.571,324.24",
                         "《中华人民共和国社会保险法》第八十六条", "新城区社会保险费征收分局"):
            assert expected in text, expected
        assert citizen_id not in text  # a notice to the employer names no insured person

        await verifies(p.gateway, pdf, number, code, private=(name, uscc))

        again = await fetch_again(p.gateway, "collection", number, bearer(settings, "accountant", region=REGION))
        assert again.status_code == 200 and again.content == pdf
        far = await fetch_again(p.gateway, "collection", number, bearer(settings, "accountant", region="150103"))
        assert far.status_code == 403 and error_code(far) == "OUT_OF_REGION"

        elsewhere = await p.gateway.post(url, headers=bearer(settings, "agency_clerk", region="150103"))
        assert elsewhere.status_code == 403 and error_code(elsewhere) == "OUT_OF_REGION"
        auditor = await p.gateway.post(url, headers=bearer(settings, "internal_auditor", region=REGION))
        assert auditor.status_code == 403
        unknown = await p.gateway.post("/api/collection/documents/arrears-notices/nope", headers=clerk)
        assert unknown.status_code == 404 and error_code(unknown) == "ARREARS_NOTICE_NOT_FOUND"
