"""Benefit parameters: a dated document per region — prior-year average wage, divisors by retirement
age, statutory ages, unemployment amount and entitlement months, large-amount threshold, resident basic pension —
proposed by the accountant and approved by another person (agency_approver); rates are decimal strings, amounts fen
integers; the set in force for a month is the approved one with the greatest ``valid_from`` ≤ that month."""

import json

import pytest
from sqlalchemy import select
from sqlmodel import Session

from services.benefits.parameters.schemas import BenefitParametersDocument
from services.benefits.parameters.service import parameters_for
from services.kernel.models import AuditEntry
from tests.support.registry import engine_of, error_code
from tests.support.benefits import ACCOUNTANT, APPROVER, CITY, approved_benefit_parameters, benefit_document

DISTRICT = "150102"


@pytest.mark.unit
def test_default_document_lookups():
    doc = BenefitParametersDocument.model_validate(benefit_document())
    assert (doc.divisor_for(60), doc.divisor_for(55), doc.divisor_for(50)) == (139, 170, 195)
    assert doc.retirement_age("M", None) == 60
    assert (doc.retirement_age("F", "cadre"), doc.retirement_age("F", "worker"), doc.retirement_age("F", None)) == \
        (55, 50, None)
    # 1–5 years → 12 months, 5–10 → 18, 10 and more → 24; under a year → none.
    assert [doc.unemployment_months_for(m) for m in (11, 12, 59, 60, 119, 120, 400)] == [None, 12, 12, 18, 18, 24, 24]
    assert doc.large_amount_threshold_fen == 5_000_000  # 50 000 yuan
    assert doc.as_json_dict()["basic_pension_rate_per_year"] == "0.01"


async def test_propose_approve_and_the_set_in_force(start_service, auth):
    async with start_service("benefits") as client:
        first = await approved_benefit_parameters(client, auth, valid_from=202401)
        later = await approved_benefit_parameters(client, auth, valid_from=202601,
                                                  doc=benefit_document(average_monthly_wage_fen=900_000))
        reader = auth("agency_clerk", region=DISTRICT)
        in_force = await client.get(f"/parameters/effective/{DISTRICT}/202512", headers=reader)
        assert in_force.status_code == 200 and in_force.json()["id"] == first
        in_force = await client.get(f"/parameters/effective/{DISTRICT}/202611", headers=reader)
        assert in_force.json()["id"] == later and in_force.json()["document"]["average_monthly_wage_fen"] == 900_000
        assert in_force.json()["document"]["account_divisors"]["60"] == 139
        before = await client.get(f"/parameters/effective/{DISTRICT}/202312", headers=reader)
        assert before.status_code == 422 and error_code(before) == "NO_PARAMETERS"
        with Session(engine_of(client)) as session:
            assert parameters_for(session, DISTRICT, 202601).document.average_monthly_wage_fen == 900_000

        listed = await client.get("/parameters", headers=reader)
        assert [p["id"] for p in listed.json()["items"]] == [later, first]
        template = await client.get("/parameters/template", headers=reader)
        assert BenefitParametersDocument.model_validate(template.json()).divisor_for(50) == 195

        # A second approved set for the same month is refused.
        again = await client.post("/parameters", headers=auth("accountant", region=CITY, subject=ACCOUNTANT), json={
            "region": CITY, "valid_from": 202601, "document": benefit_document(), "reason": "重复"})
        assert again.status_code == 409 and error_code(again) == "PARAMETERS_ALREADY_APPROVED"

        # The reasons are in the audit chain.
        with Session(engine_of(client)) as session:
            entries = session.execute(select(AuditEntry).where(AuditEntry.entity_id == later)
                                      .order_by(AuditEntry.seq)).scalars().all()
        assert [(e.action, e.actor_id, e.reason) for e in entries] == [
            ("benefit_parameters.propose", ACCOUNTANT, "年度计发参数"), ("benefit_parameters.approve", APPROVER, "同意")]


async def test_proposer_cannot_approve_and_roles_and_region_are_enforced(start_service, auth):
    async with start_service("benefits") as client:
        body = {"region": CITY, "valid_from": 202501, "document": benefit_document(), "reason": "年度计发参数"}
        clerk = await client.post("/parameters", json=body, headers=auth("agency_clerk", region=CITY))
        assert clerk.status_code == 403
        elsewhere = await client.post("/parameters", json=body, headers=auth("accountant", region="150200"))
        assert elsewhere.status_code == 403 and error_code(elsewhere) == "OUT_OF_REGION"
        proposed = await client.post("/parameters", json=body, headers=auth("accountant", subject="both.hats"))
        assert proposed.status_code == 201 and proposed.json()["status"] == "proposed"
        own = await client.post(f"/parameters/{proposed.json()['id']}/approve", json={},
                                headers=auth("agency_approver", subject="both.hats"))
        assert own.status_code == 403 and error_code(own) == "SAME_PERSON_CANNOT_APPROVE"
        no_reason = await client.post(f"/parameters/{proposed.json()['id']}/reject", json={},
                                      headers=auth("agency_approver", subject=APPROVER))
        assert no_reason.status_code == 422
        rejected = await client.post(f"/parameters/{proposed.json()['id']}/reject", json={"reason": "工资数据未公布"},
                                     headers=auth("agency_approver", subject=APPROVER))
        assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
        twice = await client.post(f"/parameters/{proposed.json()['id']}/approve", json={},
                                  headers=auth("agency_approver", subject=APPROVER))
        assert twice.status_code == 409 and error_code(twice) == "PARAMETERS_ALREADY_DECIDED"
        none = await client.get(f"/parameters/effective/{DISTRICT}/202506", headers=auth("agency_clerk"))
        assert none.status_code == 422


async def test_documents_are_decimal_strings_and_integers_only(start_service, auth):
    async def propose(doc: dict):  # noqa: ANN202
        return await client.post("/parameters", headers=auth("accountant"), json={
            "region": CITY, "valid_from": 202501, "document": doc, "reason": "测试"})

    async with start_service("benefits") as client:
        as_float = await propose(benefit_document(basic_pension_rate_per_year=0.01))
        assert as_float.status_code == 422 and error_code(as_float) == "INVALID_RATE"
        as_number = await propose(benefit_document(basic_pension_rate_per_year=1))
        assert as_number.status_code == 422 and error_code(as_number) == "INVALID_RATE"
        wage_float = await propose(benefit_document(average_monthly_wage_fen=850000.5))
        assert wage_float.status_code == 422
        wage_text = await propose(benefit_document(large_amount_threshold_fen="5000000"))
        assert wage_text.status_code == 422
        divisors = benefit_document()
        divisors["account_divisors"] = {"60": 139, "55": 170}  # women workers retire at 50: no divisor
        missing = await propose(divisors)
        assert missing.status_code == 422 and error_code(missing) == "DIVISOR_MISSING"
        gap = benefit_document(unemployment_entitlement=[{"from_years": 1, "to_years": 5, "months": 12},
                                                         {"from_years": 6, "to_years": None, "months": 24}])
        bands = await propose(gap)
        assert bands.status_code == 422 and error_code(bands) == "UNEMPLOYMENT_BANDS_INVALID"
        unknown = await propose(benefit_document(pension_rate="0.01"))
        assert unknown.status_code == 422
        ok = await propose(benefit_document())
        assert ok.status_code == 201
        stored = json.loads(json.dumps(ok.json()["document"]))
        assert stored["basic_pension_rate_per_year"] == "0.01" and stored["unemployment_monthly_fen"] == 180_000
