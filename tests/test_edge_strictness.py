"""Strict types at the edge, through the real service apps: huge amounts, integers
beyond 64 bits, citizen ids whose birth-place code a table lacks, and lax coercions each get a 422 with a stable
code, never a 500."""

from tests.support.payments import add_employer, add_persons, pay, post
from tests.support.oversight import anonymous, unlimited


def error_of(response) -> tuple[int, str]:  # noqa: ANN001
    return response.status_code, response.json()["error"]["code"]


# -- amounts ---------------------------------------------------------------------------------------------------------


async def test_a_huge_amount_on_the_public_report_form_is_a_422_not_a_500(start_service):
    async with start_service("oversight") as client:
        unlimited(client)
        for amount in ("1E+400", "100000000000000000000.00", "1" * 27):
            response = await client.post("/whistleblowing/reports", json=anonymous(amount_claimed=amount))
            assert error_of(response) == (422, "AMOUNT_OUT_OF_RANGE"), response.text
            assert "金额" in response.json()["error"]["message"]
        for amount in ("1e-400", "NaN", "+5.00", "５", " 5.00"):
            response = await client.post("/whistleblowing/reports", json=anonymous(amount_claimed=amount))
            assert error_of(response) == (422, "INVALID_AMOUNT"), response.text
        ok = await client.post("/whistleblowing/reports", json=anonymous(amount_claimed="1000000000000.00"))
        assert ok.status_code == 201, ok.text


async def test_a_huge_tax_line_is_rejected_with_its_code_and_the_batch_is_applied(start_service, settings):
    async with start_service("collection") as client:
        _, uscc = add_employer(client)
        [(_, cid)] = add_persons(client, [1])
        response = await post(client, settings, [
            pay("HUGE", payer_uscc=uscc, citizen_id=cid, employer_amount="100000000000000000000.00"),
            pay("EXP", payer_uscc=uscc, citizen_id=cid, employer_amount="1E+400"),
            pay("WIDE", payer_uscc=uscc, citizen_id=cid, employer_amount="１００.００"),
        ])
        assert response.status_code == 201, response.text
        codes = {r["tax_line_id"]: r["code"] for r in response.json()["rejections"]}
        assert codes == {"HUGE": "AMOUNT_OUT_OF_RANGE", "EXP": "AMOUNT_OUT_OF_RANGE", "WIDE": "INVALID_AMOUNT"}


async def test_money_fields_publish_their_bounds_in_openapi(start_service):
    async with start_service("oversight") as client:
        document = (await client.get("/openapi.json")).json()
    amount = document["components"]["schemas"]["services__oversight__whistleblowing__schemas__ReportIn"]["properties"]["amount_claimed"]
    schema = next(s for s in amount.get("anyOf", [amount]) if s.get("maximum"))
    assert schema["maximum"] == 1_000_000_000_000 and schema["minimum"] == 0


# -- integers beyond 64 bits ------------------------------------------------------------------------------------------


async def test_integers_beyond_int64_in_query_parameters_are_a_422(start_service, auth):
    async with start_service("oversight") as client:
        officer = auth("oversight_officer")
        cases = await client.get("/cases", params={"class_code": "30692776850376472725919719674085376"},
                                 headers=officer)
        assert cases.status_code == 422, cases.text
        audit = await client.get("/audit/entries", params={"after_seq": "758882690469653037891715072"},
                                 headers=auth("internal_auditor"))
        assert audit.status_code == 422, audit.text
        for path in ("/chains/checks", "/scheduler/runs"):
            response = await client.get(path, params={"before_id": str(2**31)}, headers=officer)
            assert response.status_code == 422, (path, response.text)
        assert (await client.get("/audit/entries", params={"after_seq": str(2**31 - 1)},
                                 headers=auth("internal_auditor"))).status_code == 200
        document = (await client.get("/openapi.json")).json()
    [after_seq] = [p for p in document["paths"]["/audit/entries"]["get"]["parameters"] if p["name"] == "after_seq"]
    assert after_seq["schema"]["maximum"] == 2**31 - 1 and after_seq["schema"]["minimum"] == 0


# -- citizen ids ------------------------------------------------------------------------------------------------------


async def test_a_hohhot_citizen_id_missing_from_the_table_is_accepted(start_service, auth):
    from tests.support.accounts import person_body

    async with start_service("accounts") as client:
        response = await client.post("/persons", json=person_body(citizen_id="15010219650315916X", sex=None),
                                     headers=auth("agency_clerk", region="150102"))
        assert response.status_code == 201, response.text
        bad = await client.post("/persons", json=person_body(citizen_id="15010219650230916X"),
                                headers=auth("agency_clerk", region="150102"))
        assert error_of(bad) == (422, "INVALID_CITIZEN_ID")
        assert bad.json()["error"]["message"] == "公民身份号码中的出生日期无效"
        assert bad.json()["error"]["details"][0]["reason"] == "CITIZEN_ID_BIRTH_DATE"


# -- lax coercion -----------------------------------------------------------------------------------------------------


async def test_dates_are_iso_text_within_a_plausible_window(start_service, auth, settings):
    async with start_service("benefits") as benefits:
        clerk = auth("agency_clerk")
        for as_of, code in ((0, "INVALID_DATE"), ("0", "INVALID_DATE"), (1700000000, "INVALID_DATE"),
                            ("0001-01-01", "DATE_OUT_OF_RANGE"), ("2026-02-30", "INVALID_DATE")):
            response = await benefits.post("/eligibility/survival-sweeps", json={"as_of": as_of}, headers=clerk)
            assert error_of(response) == (422, code), (as_of, response.text)
    async with start_service("oversight") as oversight:
        response = await oversight.get("/cases/overdue", params={"as_of": "0"}, headers=auth("oversight_officer"))
        assert error_of(response) == (422, "INVALID_DATE"), response.text
    async with start_service("collection") as collection:
        _, uscc = add_employer(collection)
        [(_, cid)] = add_persons(collection, [1])
        result = await post(collection, settings, [
            pay("ANCIENT", payer_uscc=uscc, citizen_id=cid, employer_amount="1.00", paid_date="0001-01-01"),
            pay("EPOCH", payer_uscc=uscc, citizen_id=cid, employer_amount="1.00", paid_date=0),
        ])
        codes = {r["tax_line_id"]: r["code"] for r in result.json()["rejections"]}
        assert codes == {"ANCIENT": "DATE_OUT_OF_RANGE", "EPOCH": "INVALID_DATE"}


async def test_booleans_are_not_integers_and_names_are_clean(start_service, auth):
    from tests.support.accounts import full_employer
    from tests.support.accounts import person_body

    async with start_service("accounts") as accounts:
        clerk = auth("agency_clerk", region="150102")
        response = await accounts.post("/employers", json=full_employer(industry_risk_class=True), headers=clerk)
        assert error_of(response) == (422, "INVALID_INTEGER"), response.text
        for name in ("王\x00大明", "王\u202e大明", "王\u200b大明", "\ufeff王大明", "王\n大明"):
            response = await accounts.post("/persons", json=person_body(name=name), headers=clerk)
            assert error_of(response) == (422, "INVALID_CHARACTERS"), (repr(name), response.text)
        composed = await accounts.post("/persons", json=person_body(name="  Zoe\u0301 王 "), headers=clerk)
        assert composed.status_code == 201, composed.text
        assert composed.json()["name"] == "Zo\u00e9 王"
