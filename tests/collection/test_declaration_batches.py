"""Many employers' declarations at once, and a month's assessed lines read in pages: each declaration of a batch is
issued or refused exactly as alone, refused ones store nothing, and the month's listing holds every issued line once
(its assessment and employer with it), in the caller's area, without superseded assessments."""

from sqlalchemy import func, select
from sqlmodel import Session

from services.collection.assessments.endpoints import period_page_json
from services.collection.assessments.schemas import PeriodLinePage
from services.collection.assessments.service import period_lines
from services.collection.models import Assessment, AssessmentLine, Declaration
from services.kernel import context
from tests.support.collection import PERIOD, REGION, add_employer, add_people, approved_parameters, declare
from tests.support.registry import engine_of, error_code, outbox


def count(client, model) -> int:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


async def post_batch(client, headers, declarations: list[dict], expect: int = 201, period: int = PERIOD):  # noqa: ANN001, ANN201
    response = await client.post("/declarations/batches", json={"period": period, "declarations": declarations},
                                 headers=headers)
    assert response.status_code == expect, response.text
    return response.json() if expect == 201 else response


async def month_lines(client, headers, limit: int, **params) -> list[dict]:  # noqa: ANN001
    items, after = [], None
    while True:
        page = await client.get("/assessments/lines", params={"period": PERIOD, "limit": limit, **params,
                                                              **({"after": after} if after else {})}, headers=headers)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        after = page.json()["next_cursor"]
        if after is None:
            return items


async def test_each_declaration_of_a_batch_is_issued_or_refused_as_alone(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    async with start_service("collection") as collection:
        await approved_parameters(collection, auth)
        first, second = add_employer(collection, 1), add_employer(collection, 2, risk_class=2)
        [(zhang, zhang_cid), (li, _)] = add_people(collection, first, 2)
        [(wang, _)] = add_people(collection, second, 1, first_serial=10)
        deregistered, elsewhere = add_employer(collection, 3, status="deregistered"), add_employer(
            collection, 4, region="150103")
        one_line = [{"person_id": wang, "base": "5000"}]
        result = await post_batch(collection, clerk, [
            {"employer_id": first, "lines": [{"citizen_id": zhang_cid, "base": "5432.10"},
                                             {"person_id": li, "base": "10000"}]},
            {"employer_id": second, "lines": [{"person_id": wang, "base": "6000"}, {"person_id": "nobody",
                                                                                   "base": "6000"}]},
            {"employer_id": "unknown", "lines": one_line},
            {"employer_id": deregistered, "lines": one_line},
            {"employer_id": elsewhere, "lines": one_line},
        ])
        assert (result["declarations"], result["issued"], result["refused"], result["assessed_lines"]) == (5, 1, 4, 6)
        statuses = [(i["employer_id"], i["status"], i["refusal"] and (i["refusal"]["status"], i["refusal"]["code"]))
                    for i in result["items"]]
        assert statuses == [(first, "issued", None), (second, "refused", (422, "DECLARATION_REJECTED")),
                            ("unknown", "refused", (404, "EMPLOYER_NOT_FOUND")),
                            (deregistered, "refused", (409, "EMPLOYER_DEREGISTERED")),
                            (elsewhere, "refused", (403, "OUT_OF_REGION"))]
        reasons = result["items"][1]["refusal"]["details"]["reasons"]
        assert [(r["line_no"], r["code"]) for r in reasons] == [(2, "PERSON_NOT_FOUND")]
        issued = result["items"][0]
        # the same figures as the single declaration's test: 2 577.16 + 1 311.73
        assert (issued["assessment"]["employer_total"], issued["assessment"]["individual_total"]) == (
            "2577.16", "1311.73")
        assert issued["clamped"] == {"floor": 0, "cap": 0} and issued["declaration_id"]
        # nothing of the refused declarations is stored; the issued one has its event
        assert (count(collection, Declaration), count(collection, Assessment), count(collection, AssessmentLine)) == (
            1, 1, 6)
        assert [e["assessment_id"] for e in outbox(collection, "collection.assessment.issued.v2")] == [
            issued["assessment"]["id"]]

        # sent again (an answer lost): the issued one is refused ASSESSMENT_EXISTS, the corrected one is issued
        again = await post_batch(collection, clerk, [
            {"employer_id": first, "lines": [{"person_id": li, "base": "9000"}]},
            {"employer_id": second, "lines": [{"person_id": wang, "base": "6000"}]}])
        assert [(i["status"], i["refusal"] and i["refusal"]["code"]) for i in again["items"]] == [
            ("refused", "ASSESSMENT_EXISTS"), ("issued", None)]
        # the same employer twice in one batch: the second is the repeat
        [(zhao, _)] = add_people(collection, deregistered, 1, first_serial=20)
        twice = add_employer(collection, 5)
        [(sun, _)] = add_people(collection, twice, 1, first_serial=30)
        repeated = await post_batch(collection, clerk, [{"employer_id": twice, "lines": [{"person_id": sun,
                                                                                         "base": "5000"}]}] * 2)
        assert [i["status"] for i in repeated["items"]] == ["issued", "refused"]
        assert zhao and count(collection, Assessment) == 3


async def test_a_batch_past_its_limits_or_by_another_role_is_refused_whole(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("collection") as collection:
        await approved_parameters(collection, auth)
        employer_id = add_employer(collection)
        lines = [{"person_id": f"p{i}", "base": "5000"} for i in range(5001)]
        response = await post_batch(collection, clerk, [{"employer_id": employer_id, "lines": lines}] * 2, expect=413)
        assert error_code(response) == "BATCH_TOO_LARGE"
        assert response.json()["error"]["details"] == {"max_lines": 10000, "lines": 10002}
        empty = await post_batch(collection, clerk, [], expect=422)
        assert empty.status_code == 422
        reviewer = await post_batch(collection, auth("agency_reviewer", region=REGION),
                                    [{"employer_id": employer_id, "lines": lines[:1]}], expect=403)
        assert error_code(reviewer) == "FORBIDDEN"
        assert count(collection, Declaration) == 0


async def test_the_months_lines_are_read_in_pages_in_the_callers_area(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("collection") as collection:
        await approved_parameters(collection, auth)
        employers = [add_employer(collection, serial) for serial in (1, 2, 3)]
        ids = {}
        for n, employer_id in enumerate(employers):
            people = add_people(collection, employer_id, 2 + n, first_serial=100 * (n + 1))
            result = await declare(collection, clerk, employer_id, [{"person_id": p, "base": "6000"}
                                                                    for p, _cid in people])
            ids[employer_id] = result["assessment"]["id"]
        # a correction: the old assessment's lines leave the month's listing
        corrected = await collection.post(f"/assessments/{ids[employers[0]]}/supersede", headers=clerk, json={
            "lines": [{"person_id": p, "base": "7000"} for p, _ in add_people(collection, employers[0], 1,
                                                                              first_serial=900)],
            "reason": "更正"})
        assert corrected.status_code == 201, corrected.text
        ids[employers[0]] = corrected.json()["assessment"]["id"]

        expected = {}
        for employer_id, assessment_id in ids.items():
            detail = (await collection.get(f"/assessments/{assessment_id}", params={"limit": 1000},
                                           headers=clerk)).json()
            expected.update({x["id"]: {"id": x["id"], "assessment_id": assessment_id, "employer_id": employer_id,
                                       **{k: x[k] for k in ("person_id", "fund", "base_fen", "employer_fen",
                                                            "individual_fen", "employer_amount", "individual_amount",
                                                            "status")}}
                             for x in detail["items"]})
        assert len(expected) == 3 + 9 + 12
        for limit in (1, 4, 5000):
            items = await month_lines(collection, clerk, limit)
            assert [x["id"] for x in items] == [x["id"] for x in sorted(
                expected.values(), key=lambda x: (x["assessment_id"], x["id"]))]
            assert {x["id"]: x for x in items} == expected
        one = await month_lines(collection, clerk, 2, employer_id=employers[1])
        assert {x["employer_id"] for x in one} == {employers[1]} and len(one) == 9
        assert await month_lines(collection, auth("agency_clerk", region="150103"), 10) == []
        assert (await month_lines(collection, clerk, 10, period=202405)) == []
        bad = await collection.get("/assessments/lines", params={"period": PERIOD, "after": "nodot"}, headers=clerk)
        assert bad.status_code == 422 and error_code(bad) == "INVALID_CURSOR"
        tax = await collection.get("/assessments/lines", params={"period": PERIOD}, headers=auth("tax_system"))
        assert tax.status_code == 403

        # the page written directly is the model's JSON
        with Session(engine_of(collection)) as session, context.trace(
                actor=context.Actor(id="t", role="agency_clerk", region=REGION)):
            rows, cursor = period_lines(session, PERIOD, employer_id=None, after=None, limit=5)
        body = period_page_json(rows, cursor)
        assert body == PeriodLinePage.model_validate_json(body).model_dump_json().encode()
