"""Rates and bases: a validated document of decimal-string rates, proposed by the agency's finance and
approved by someone else, audited, published; the set in force for a month is the approved one with the greatest
``valid_from`` ≤ that month, so past periods keep their rates. Work-injury floating factors per employer likewise."""

from decimal import Decimal

from sqlmodel import Session

from services.collection.parameters.service import parameters_for
from tests.support.registry import engine_of, error_code, outbox
from tests.support.collection import (
    ACCOUNTANT, APPROVER, CITY, REGION, accountant, add_employer, approved_parameters, approver, document,
)


# -- helpers ---------------------------------------------------------------------------------------------------------


# -- parameter sets --------------------------------------------------------------------------------------------------


async def test_a_set_is_proposed_approved_by_another_person_audited_and_published(start_service, auth):
    async with start_service("collection") as collection:
        body = {"region": CITY, "valid_from": 202401, "document": document(), "reason": "2024 年度费率基数"}
        proposed = await collection.post("/parameters", json=body, headers=accountant(auth))
        assert proposed.status_code == 201, proposed.text
        row = proposed.json()
        assert row["status"] == "proposed" and row["proposed_by"] == ACCOUNTANT
        assert row["document"]["rates"]["PEN_EMP"] == {"employer": "0.16", "individual": "0.08"}
        assert row["document"]["injury_class_rates"]["8"] == "0.019"
        assert (row["floor_fen"], row["cap_fen"]) == (480_000, 2_400_000)
        # a proposal is not in force
        nothing = await collection.get(f"/parameters/effective/{CITY}/202406", headers=approver(auth))
        assert nothing.status_code == 422 and error_code(nothing) == "NO_PARAMETERS"
        assert outbox(collection, "collection.parameters.approved.v1") == []

        approved = await collection.post(f"/parameters/{row['id']}/approve", json={"reason": "同意"},
                                         headers=approver(auth))
        assert approved.status_code == 200, approved.text
        assert (approved.json()["status"], approved.json()["decided_by"]) == ("approved", APPROVER)
        again = await collection.post(f"/parameters/{row['id']}/approve", json={}, headers=approver(auth, "other"))
        assert again.status_code == 409 and error_code(again) == "PARAMETERS_ALREADY_DECIDED"

        [event] = outbox(collection, "collection.parameters.approved.v1")
        assert (event["parameters_id"], event["region"], event["valid_from"]) == (row["id"], CITY, 202401)
        assert event["document"]["late_fee_daily_rate"] == "0.0005" and event["_actor"]["id"] == APPROVER

        effective = await collection.get(f"/parameters/effective/{REGION}/202406", headers=auth("agency_clerk"))
        assert effective.status_code == 200 and effective.json()["id"] == row["id"]  # the city's set covers the district
        listed = await collection.get("/parameters", params={"status": "approved"}, headers=auth("agency_clerk"))
        assert [p["id"] for p in listed.json()["items"]] == [row["id"]]

        auditor = auth("internal_auditor")
        entries = (await collection.get("/audit/entries", params={"entity_id": row["id"]}, headers=auditor)).json()
        assert [(e["action"], e["actor_id"]) for e in entries] == [
            ("parameters.propose", ACCOUNTANT), ("parameters.approve", APPROVER)]
        assert (await collection.get("/audit/verify", headers=auditor)).json()["ok"] is True

        # the same region and month cannot be approved twice: a change is a set with a later valid_from
        duplicate = await collection.post("/parameters", json=body, headers=accountant(auth))
        assert duplicate.status_code == 409 and error_code(duplicate) == "PARAMETERS_ALREADY_APPROVED"


async def test_the_proposer_can_neither_approve_nor_reject_and_roles_are_enforced(start_service, auth):
    async with start_service("collection") as collection:
        body = {"region": CITY, "valid_from": 202401, "document": document(), "reason": "年度费率"}
        proposed = (await collection.post("/parameters", json=body, headers=accountant(auth, "same.person"))).json()
        for action, payload in (("approve", {}), ("reject", {"reason": "不同意"})):
            refused = await collection.post(f"/parameters/{proposed['id']}/{action}", json=payload,
                                            headers=approver(auth, "same.person"))
            assert refused.status_code == 403 and error_code(refused) == "SAME_PERSON_CANNOT_APPROVE"
        clerk = await collection.post("/parameters", json=body, headers=auth("agency_clerk", region=CITY))
        assert clerk.status_code == 403 and error_code(clerk) == "FORBIDDEN"
        self_approval = await collection.post(f"/parameters/{proposed['id']}/approve", json={},
                                              headers=accountant(auth, "same.person"))
        assert self_approval.status_code == 403 and error_code(self_approval) == "FORBIDDEN"
        elsewhere = await collection.post("/parameters", json={**body, "region": "150200"}, headers=accountant(auth))
        assert elsewhere.status_code == 403 and error_code(elsewhere) == "OUT_OF_REGION"

        no_reason = await collection.post(f"/parameters/{proposed['id']}/reject", json={}, headers=approver(auth))
        assert no_reason.status_code == 422
        rejected = await collection.post(f"/parameters/{proposed['id']}/reject", json={"reason": "平均工资有误"},
                                         headers=approver(auth))
        assert rejected.status_code == 200
        assert (rejected.json()["status"], rejected.json()["decision_reason"]) == ("rejected", "平均工资有误")
        assert outbox(collection, "collection.parameters.approved.v1") == []
        nothing = await collection.get(f"/parameters/effective/{CITY}/202406", headers=approver(auth))
        assert error_code(nothing) == "NO_PARAMETERS"


async def test_bad_documents_are_refused_with_their_code(start_service, auth):
    def rates(**change) -> dict:
        doc = document()
        doc["rates"] = {**doc["rates"], **change}
        return doc

    classes = document()
    del classes["injury_class_rates"]["8"]
    cases = [
        (rates(PEN_EMP={"employer": 0.16, "individual": "0.08"}), "INVALID_RATE"),  # a JSON float
        (rates(PEN_EMP={"employer": 16, "individual": "0.08"}), "INVALID_RATE"),  # a number, 16 or 0.16?
        (rates(PEN_EMP={"employer": "16", "individual": "0.08"}), "INVALID_RATE"),  # not a fraction
        (rates(PEN_EMP={"employer": "-0.01", "individual": "0.08"}), "INVALID_RATE"),
        (rates(PEN_EMP={"employer": "0.1234567", "individual": "0.08"}), "INVALID_RATE"),  # seven places
        (rates(MEDICAL={"employer": "0.08", "individual": "0.02"}), "UNKNOWN_FUND"),
        (classes, "INJURY_CLASS_RATES_INVALID"),
        (document(average_monthly_wage_fen=8000.5), "VALIDATION_ERROR"),  # fen are integers
        (document(average_monthly_wage_fen="800000"), "VALIDATION_ERROR"),
        (document(base_floor_ratio="3.5"), "BASE_LIMITS_INVALID"),
        (document(base_cap_ratio=3.0), "INVALID_RATE"),
        (document(late_fee_daily_rate=0.0005), "INVALID_RATE"),
        (document(due_day=31), "VALIDATION_ERROR"),
        (document(surprise="x"), "VALIDATION_ERROR"),
    ]
    missing = document()
    del missing["rates"]["UNEMP"]
    cases.append((missing, "FUND_RATE_MISSING"))
    async with start_service("collection") as collection:
        for doc, code in cases:
            body = {"region": CITY, "valid_from": 202401, "document": doc, "reason": "测试"}
            response = await collection.post("/parameters", json=body, headers=accountant(auth))
            assert response.status_code == 422, (code, response.text)
            assert error_code(response) == code, (code, response.text)
        bad_month = await collection.post("/parameters", json={"region": CITY, "valid_from": 202413,
                                                               "document": document(), "reason": "x"},
                                          headers=accountant(auth))
        assert error_code(bad_month) == "INVALID_PERIOD"
        template = await collection.get("/parameters/template", headers=accountant(auth))
        assert template.status_code == 200 and template.json()["injury_class_rates"]["3"] == "0.007"


async def test_past_periods_keep_the_set_that_applied_to_them(start_service, auth):
    async with start_service("collection") as collection:
        first = await approved_parameters(collection, auth, valid_from=202401)
        lower = document()
        lower["rates"]["PEN_EMP"] = {"employer": "0.15", "individual": "0.08"}
        second = await approved_parameters(collection, auth, valid_from=202501, doc=lower)
        with Session(engine_of(collection)) as session:
            assert parameters_for(session, REGION, 202412).id == first
            assert parameters_for(session, REGION, 202501).id == second
            assert parameters_for(session, CITY, 203012).document.rates["PEN_EMP"].employer == Decimal("0.15")
        old = await collection.get(f"/parameters/effective/{CITY}/202406", headers=auth("agency_clerk"))
        assert old.json()["document"]["rates"]["PEN_EMP"]["employer"] == "0.16"
        before = await collection.get(f"/parameters/effective/{CITY}/202312", headers=auth("agency_clerk"))
        assert before.status_code == 422 and error_code(before) == "NO_PARAMETERS"
        # a district's own set overrides the city's for that district only
        district = await approved_parameters(collection, auth, valid_from=202401, region=REGION)
        with Session(engine_of(collection)) as session:
            assert parameters_for(session, REGION, 202601).id == district
            assert parameters_for(session, "150103", 202601).id == second


# -- work-injury floating factors ------------------------------------------------------------------------------------


async def test_injury_floating_factor_is_proposed_and_approved_by_different_people(start_service, auth):
    async with start_service("collection") as collection:
        employer_id = add_employer(collection, risk_class=3)
        body = {"employer_id": employer_id, "valid_from": 202401, "factor": "1.2", "reason": "上年度工伤发生率偏高"}
        for factor, code in ((1.2, "INVALID_RATE"), ("2.0", "INVALID_FACTOR"), ("0.4", "INVALID_FACTOR"),
                             ("1.234", "INVALID_FACTOR")):
            bad = await collection.post("/parameters/injury-adjustments", json={**body, "factor": factor},
                                        headers=accountant(auth))
            assert bad.status_code == 422 and error_code(bad) == code, (factor, bad.text)
        unknown = await collection.post("/parameters/injury-adjustments", json={**body, "employer_id": "nope"},
                                        headers=accountant(auth))
        assert unknown.status_code == 404 and error_code(unknown) == "EMPLOYER_NOT_FOUND"
        proposed = await collection.post("/parameters/injury-adjustments", json=body, headers=accountant(auth))
        assert proposed.status_code == 201, proposed.text
        adjustment = proposed.json()
        assert (adjustment["factor"], adjustment["status"]) == ("1.2", "proposed")
        same = await collection.post(f"/parameters/injury-adjustments/{adjustment['id']}/approve", json={},
                                     headers=approver(auth, ACCOUNTANT))
        assert same.status_code == 403 and error_code(same) == "SAME_PERSON_CANNOT_APPROVE"
        approved = await collection.post(f"/parameters/injury-adjustments/{adjustment['id']}/approve", json={},
                                         headers=approver(auth))
        assert approved.status_code == 200 and approved.json()["status"] == "approved"
        listed = await collection.get("/parameters/injury-adjustments", params={"employer_id": employer_id},
                                      headers=auth("agency_clerk"))
        assert [a["id"] for a in listed.json()] == [adjustment["id"]]
        entries = (await collection.get("/audit/entries", params={"entity_id": adjustment["id"]},
                                        headers=auth("internal_auditor"))).json()
        assert [e["action"] for e in entries] == ["injury_adjustment.propose", "injury_adjustment.approve"]
        twice = await collection.post("/parameters/injury-adjustments", json=body, headers=accountant(auth))
        assert twice.status_code == 409 and error_code(twice) == "ADJUSTMENT_ALREADY_APPROVED"

