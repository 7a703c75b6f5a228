"""Accounts' documents through the gateway: the individual account statement (个人权益记录, 社会保险法 第七十四条).
A person registered through the API, two monthly contributions and a transfer-in posted by the accountant; a clerk
of the area issues the year's statement; its Chinese text carries each entry and the balances, the citizen id in
full (the clerk's role reads it so); it verifies on the public page and fails when
altered."""

import re

from services.kernel import clock
from services.kernel.identifiers import mask_citizen_id
from tests.support.accounts import REGION, person_body
from tests.support.apps import bearer
from tests.support.documents import fetch_again, issued, pdf_text, platform, verifies
from tests.support.registry import error_code, make_citizen_id


async def test_the_account_statement_is_issued_as_pdf_and_verifies(make_settings, nats_server):
    settings = make_settings(nats_server.url)
    clerk = bearer(settings, "agency_clerk", region=REGION, subject="clerk.qian", unit="新城区社会保险事业管理局")
    accountant = bearer(settings, "accountant", region=REGION, subject="acct.sun")
    today = clock.china_today()
    year = today.year
    # Two postings of this year's months, none in the future: in January both are January's (one contribution month).
    postings = ((year * 100 + 1, "640.00", "c1"), (year * 100 + min(2, today.month), "652.50", "c2"))
    months = len({period for period, _, _ in postings})
    citizen_id = make_citizen_id(81)
    async with platform(make_settings, nats_server.url) as p:
        gw = p.gateway
        registered = await gw.post("/api/accounts/persons", json=person_body(citizen_id, "刘淑芬"), headers=clerk)
        assert registered.status_code == 201, registered.text
        person_id = registered.json()["id"]
        url = f"/api/accounts/documents/account-statements/{person_id}"

        none_yet = await gw.post(url, headers=clerk)
        assert none_yet.status_code == 404 and error_code(none_yet) == "ACCOUNT_NOT_FOUND"

        for period, amount, key in postings:
            r = await gw.post(f"/api/accounts/individual-accounts/{person_id}/contributions",
                              json={"amount": amount, "period": period},
                              headers={**accountant, "Idempotency-Key": key})
            assert r.status_code == 201, r.text
        r = await gw.post(f"/api/accounts/individual-accounts/{person_id}/transfers-in",
                          json={"amount": "10000.00", "document_ref": "ZR-2026-001", "from_region": "150203"},
                          headers={**accountant, "Idempotency-Key": "t1"})
        assert r.status_code == 201, r.text

        pdf, number, code = issued(await gw.post(url, params={"year": year}, headers=clerk))
        assert number == f"社保权字〔{year}〕1号"
        text = pdf_text(pdf)
        for expected in ("社会保险个人权益记录", number, f"刘淑芬（公民身份号码{citizen_id}）：", f"{year}年度权益记录",
                         "年初余额0.00元，本年记入11,292.50元（其中利息0.00元），本年支出0.00元，年末余额11,292.50元",
                         f"个人缴费记账{year}年1月640.00", f"个人缴费记账{year}年{postings[1][0] % 100}月652.50",
                         f"企业职工基本养老保险{months}", "《中华人民共和国社会保险法》第七十四条", "新城区社会保险事业管理局"):
            assert expected in text, expected
        assert re.search(r"转入(\d{4}年\d{1,2}月)?10,000\.00", text)

        await verifies(gw, pdf, number, code, private=("刘淑芬", citizen_id, mask_citizen_id(citizen_id)))

        again = await fetch_again(gw, "accounts", number, bearer(settings, "internal_auditor", region=REGION))
        assert again.status_code == 200 and again.content == pdf  # the citizen id in full, as issued
        far = await fetch_again(gw, "accounts", number, bearer(settings, "internal_auditor", region="150103"))
        assert far.status_code == 403 and error_code(far) == "OUT_OF_REGION"

        elsewhere = await gw.post(url, headers=bearer(settings, "agency_clerk", region="150103"))
        assert elsewhere.status_code == 403 and error_code(elsewhere) == "OUT_OF_REGION"
        cashier = await gw.post(url, headers=bearer(settings, "cashier", region=REGION))
        assert cashier.status_code == 403
        bad_year = await gw.post(url, params={"year": 1800}, headers=clerk)
        assert bad_year.status_code == 422
