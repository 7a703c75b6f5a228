"""Strict types at the edge (issue 11, defects 1, 2, 4, 9), through the real service apps: huge amounts, integers
beyond 64 bits, citizen ids whose birth-place code a table lacks, and lax coercions each get a 422 with a stable
code, never a 500."""

from tests.collection.test_tax_payments import add_employer, add_persons, pay, post
from tests.oversight.test_whistleblowing import anonymous, unlimited


def error_of(response) -> tuple[int, str]:  # noqa: ANN001
    return response.status_code, response.json()["error"]["code"]


# -- defect 1: amounts -------------------------------------------------------------------------------------------------


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
