"""Declarations and assessments: hand-computed lines, base clamping, every refusal, files, supersession
(never editing), events in parts of at most 1 000 lines, and an employer of 20 000 employees in a few seconds."""

import io
import time
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from services.collection.assessments.endpoints import assessment_out, assessment_page_json, line_fields, yuan_text
from services.collection.assessments import service
from services.collection.assessments.schemas import AssessmentDetail
from services.collection.assessments.service import china_period
from services.collection.models import Assessment, AssessmentLine, Declaration, DeclarationLine
from services.kernel.models import OutboxMessage
from services.kernel.money import fen_to_yuan, percent_of_fen
from services.kernel.periods import add_months
from tests.support.registry import engine_of, error_code, outbox
from tests.support.collection import (
    REGION, accountant, add_employer, add_enrolment, add_people, approved_parameters, approver, document,
)
from tests.support.collection import PERIOD, declare


@pytest.fixture
def clerk(auth):  # noqa: ANN001, ANN201
    return auth("agency_clerk", region=REGION, subject="clerk.li")


def count(client, model) -> int:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def reasons(response) -> list[tuple[int, str]]:  # noqa: ANN001
    return [(r["line_no"], r["code"]) for r in response.json()["error"]["details"]["reasons"]]


# -- the happy path, by hand -----------------------------------------------------------------------------------------


async def test_a_declaration_is_assessed_line_by_line_and_issued(start_service, auth, clerk):
    async with start_service("collection") as collection:
        parameters_id = await approved_parameters(collection, auth)
        employer_id = add_employer(collection, risk_class=1)
        [(zhang, zhang_cid), (li, _)] = add_people(collection, employer_id, 2)
        result = await declare(collection, clerk, employer_id, [
            {"citizen_id": zhang_cid, "base": "5432.10"},
            {"person_id": li, "base": "10000"},
        ])
        assessment = result["assessment"]
        assert (assessment["status"], assessment["period"], assessment["parameters_id"]) == ("issued", PERIOD,
                                                                                             parameters_id)
        assert assessment["due_date"] == "2024-07-15"  # the 15th of the following month
        assert result["clamped"] == {"floor": 0, "cap": 0}

        detail = (await collection.get(f"/assessments/{assessment['id']}", headers=clerk)).json()
        lines = {(x["person_id"], x["fund"]): x for x in detail["items"]}
        got = {(p, f): (x["employer_amount"], x["individual_amount"], x["employer_rate"], x["individual_rate"])
               for (p, f), x in lines.items()}
        assert got == {
            # 5 432.10 × 16 % = 869.136 → 869.14; × 8 % = 434.568 → 434.57
            (zhang, "PEN_EMP"): ("869.14", "434.57", "0.16", "0.08"),
            # × 0.5 % = 27.1605 → 27.16 each side
            (zhang, "UNEMP"): ("27.16", "27.16", "0.005", "0.005"),
            # risk class 1: × 0.2 % = 10.8642 → 10.86, no individual part
            (zhang, "INJURY"): ("10.86", "0.00", "0.002", "0"),
            (li, "PEN_EMP"): ("1600.00", "800.00", "0.16", "0.08"),
            (li, "UNEMP"): ("50.00", "50.00", "0.005", "0.005"),
            (li, "INJURY"): ("20.00", "0.00", "0.002", "0"),
        }
        assert all(x["status"] == "open" and x["due_date"] == "2024-07-15" for x in detail["items"])
        # totals are sums of the rounded lines
        assert assessment["employer_total_fen"] == 86914 + 2716 + 1086 + 160000 + 5000 + 2000
        assert assessment["individual_total_fen"] == 43457 + 2716 + 80000 + 5000
        assert (assessment["employer_total"], assessment["individual_total"], assessment["total"]) == (
            "2577.16", "1311.73", "3888.89")

        [event] = outbox(collection, "collection.assessment.issued.v2")
        assert (event["assessment_id"], event["part"], event["parts"], event["supersedes_id"]) == (
            assessment["id"], 1, 1, None)
        assert (event["employer_total_fen"], event["individual_total_fen"], event["due_date"]) == (
            257716, 131173, "2024-07-15")
        pension = next(x for x in event["lines"] if (x["person_id"], x["fund"]) == (zhang, "PEN_EMP"))
        assert (pension["declared_base_fen"], pension["base_fen"], pension["clamp"], pension["employer_fen"],
                pension["individual_fen"]) == (543210, 543210, None, 86914, 43457)
        assert {x["line_id"] for x in event["lines"]} == {x["id"] for x in detail["items"]}

        entries = (await collection.get("/audit/entries", params={"entity_type": "assessment"},
                                        headers=auth("internal_auditor"))).json()
        assert [(e["action"], e["actor_id"]) for e in entries] == [("assessment.issue", "clerk.li")]
        listed = (await collection.get("/assessments", params={"employer_id": employer_id, "period": PERIOD},
                                       headers=clerk)).json()
        assert [a["id"] for a in listed["items"]] == [assessment["id"]]
        elsewhere = await collection.get(f"/assessments/{assessment['id']}", headers=auth("agency_clerk",
                                                                                          region="150103"))
        assert elsewhere.status_code == 403
        # a second declaration for the same month is refused: a correction supersedes
        again = await declare(collection, clerk, employer_id, [{"person_id": li, "base": "9000"}], expect=409)
        assert error_code(again) == "ASSESSMENT_EXISTS" and assessment["id"] in again.json()["error"]["message"]


async def test_bases_outside_the_limits_are_clamped_and_the_clamp_recorded(start_service, auth, clerk):
    async with start_service("collection") as collection:
        await approved_parameters(collection, auth)  # average 8 000.00: floor 4 800.00, cap 24 000.00
        employer_id = add_employer(collection)
        [(low, _), (high, _), (edge, _)] = add_people(collection, employer_id, 3, funds=("PEN_EMP",))
        result = await declare(collection, clerk, employer_id, [
            {"person_id": low, "base": "3000.00"}, {"person_id": high, "base": "50000"},
            {"person_id": edge, "base": "4800.00"},
        ])
        assert result["clamped"] == {"floor": 1, "cap": 1}
        declaration = (await collection.get(f"/declarations/{result['declaration']['id']}", headers=clerk)).json()
        recorded = {x["person_id"]: (x["declared_base"], x["base"], x["clamp"]) for x in declaration["items"]}
        assert recorded == {low: ("3000.00", "4800.00", "floor"), high: ("50000.00", "24000.00", "cap"),
                            edge: ("4800.00", "4800.00", None)}
        lines = {x["person_id"]: x for x in
                 (await collection.get(f"/assessments/{result['assessment']['id']}", headers=clerk)).json()["items"]}
        assert (lines[low]["base"], lines[low]["employer_amount"], lines[low]["individual_amount"]) == (
            "4800.00", "768.00", "384.00")
        assert (lines[high]["base"], lines[high]["employer_amount"]) == ("24000.00", "3840.00")
        [event] = outbox(collection, "collection.assessment.issued.v2")
        assert {x["person_id"]: (x["declared_base_fen"], x["base_fen"], x["clamp"]) for x in event["lines"]} == {
            low: (300000, 480000, "floor"), high: (5000000, 2400000, "cap"), edge: (480000, 480000, None)}


async def test_injury_rate_is_the_class_rate_times_the_approved_floating_factor(start_service, auth, clerk):
    async with start_service("collection") as collection:
        await approved_parameters(collection, auth)
        employer_id = add_employer(collection, risk_class=8)
        [(person, _)] = add_people(collection, employer_id, 1, funds=("INJURY",))
        proposed = await collection.post("/parameters/injury-adjustments", headers=accountant(auth), json={
            "employer_id": employer_id, "valid_from": 202405, "factor": "1.5", "reason": "工伤事故较多"})
        await collection.post(f"/parameters/injury-adjustments/{proposed.json()['id']}/approve", json={},
                              headers=approver(auth))
        before = await declare(collection, clerk, employer_id, [{"person_id": person, "base": "5432.10"}],
                               period=202404)
        after = await declare(collection, clerk, employer_id, [{"person_id": person, "base": "5432.10"}])

        async def injury(result: dict) -> dict:
            return (await collection.get(f"/assessments/{result['assessment']['id']}", headers=clerk)).json()["items"][0]

        # class 8: 1.9 % → 103.2099 → 103.21; floated × 1.5 = 2.85 % → 154.81485 → 154.81
        assert ((await injury(before))["employer_rate"], (await injury(before))["employer_amount"]) == ("0.019", "103.21")
        assert ((await injury(after))["employer_rate"], (await injury(after))["employer_amount"]) == ("0.0285", "154.81")


async def test_a_past_period_keeps_its_rates_after_a_new_set_is_approved(start_service, auth, clerk):
    async with start_service("collection") as collection:
        old_set = await approved_parameters(collection, auth, valid_from=202401)
        new_doc = document(average_monthly_wage_fen=900_000)
        new_doc["rates"]["PEN_EMP"] = {"employer": "0.14", "individual": "0.08"}
        new_set = await approved_parameters(collection, auth, valid_from=202501, doc=new_doc)
        employer_id = add_employer(collection)
        [(person, _)] = add_people(collection, employer_id, 1, funds=("PEN_EMP",))
        old = await declare(collection, clerk, employer_id, [{"person_id": person, "base": "5432.10"}], period=202412)
        new = await declare(collection, clerk, employer_id, [{"person_id": person, "base": "5432.10"}], period=202502)
        assert (old["assessment"]["parameters_id"], new["assessment"]["parameters_id"]) == (old_set, new_set)
        assert old["assessment"]["employer_total"] == "869.14"  # 16 %
        # 5 432.10 is above the new floor (0.6 × 9 000.00 = 5 400.00): × 14 % = 760.494 → 760.49
        assert new["assessment"]["employer_total"] == "760.49"


# -- refusals --------------------------------------------------------------------------------------------------------


async def test_bad_amounts_and_periods_are_refused_and_nothing_is_stored(start_service, auth, clerk):
    async with start_service("collection") as collection:
        await approved_parameters(collection, auth)
        employer_id = add_employer(collection)
        [(person, _)] = add_people(collection, employer_id, 1)
        for base, code in (("-100.00", "INVALID_BASE"), ("0", "INVALID_BASE"), ("5432.105", "INVALID_AMOUNT"),
                           (5432.1, "INVALID_AMOUNT"), ("abc", "INVALID_AMOUNT")):
            response = await declare(collection, clerk, employer_id, [{"person_id": person, "base": base}],
                                     expect=422)
            assert error_code(response) == code, (base, response.text)
        future = add_months(china_period(), 1)
        response = await declare(collection, clerk, employer_id, [{"person_id": person, "base": "5000"}],
                                 period=future, expect=422)
        assert error_code(response) == "PERIOD_IN_FUTURE"
        response = await declare(collection, clerk, employer_id, [{"base": "5000"}], expect=422)
        assert error_code(response) == "PERSON_REQUIRED"
        response = await declare(collection, clerk, employer_id, [{"citizen_id": "110105199001010000",
                                                                   "base": "5000"}], expect=422)
        assert error_code(response) == "INVALID_CITIZEN_ID"
        response = await declare(collection, clerk, employer_id, [], expect=422)
        assert (count(collection, Declaration), count(collection, Assessment), count(collection, OutboxMessage)) == (
            0, 0, 1)  # the ParametersApproved event only


async def test_the_employer_must_be_known_active_and_in_the_clerks_area(start_service, auth, clerk):
    async with start_service("collection") as collection:
        await approved_parameters(collection, auth)
        line = [{"person_id": "x", "base": "5000"}]
        unknown = await declare(collection, clerk, "nope", line, expect=404)
        assert error_code(unknown) == "EMPLOYER_NOT_FOUND"
        deregistered = add_employer(collection, 2, status="deregistered")
        response = await declare(collection, clerk, deregistered, line, expect=409)
        assert error_code(response) == "EMPLOYER_DEREGISTERED"
        suspended = add_employer(collection, 3, status="suspended")
        assert error_code(await declare(collection, clerk, suspended, line, expect=409)) == "EMPLOYER_SUSPENDED"
        other_district = add_employer(collection, 4, region="150103")
        response = await declare(collection, clerk, other_district, line, expect=403)
        assert error_code(response) == "OUT_OF_REGION"
        reviewer = await collection.post(f"/employers/{deregistered}/declarations",
                                         json={"period": PERIOD, "lines": line},
                                         headers=auth("agency_reviewer", region=REGION))
        assert reviewer.status_code == 403 and error_code(reviewer) == "FORBIDDEN"
        # no parameters in force for the month
        early = add_employer(collection, 5)
        [(person, _)] = add_people(collection, early, 1, first_serial=50)
        response = await declare(collection, clerk, early, [{"person_id": person, "base": "5000"}], period=202312,
                                 expect=422)
        assert error_code(response) == "NO_PARAMETERS"


async def test_every_bad_line_is_reported_and_the_declaration_refused_as_a_whole(start_service, auth, clerk):
    async with start_service("collection") as collection:
        await approved_parameters(collection, auth)
        employer_id = add_employer(collection)
        other = add_employer(collection, 2)
        [(good, good_cid), (elsewhere, _), (suspended, _), (medical, _), (later, _), (left, _)] = add_people(
            collection, employer_id, 6, funds=())
        add_enrolment(collection, good, employer_id, "PEN_EMP")
        add_enrolment(collection, elsewhere, other, "PEN_EMP")  # enrolled, but with another employer
        add_enrolment(collection, suspended, employer_id, "PEN_EMP", status="suspended")
        add_enrolment(collection, medical, employer_id, "MEDICAL")  # a fund the parameters have no rate for
        add_enrolment(collection, later, employer_id, "PEN_EMP", start=202407)  # starts after the period
        add_enrolment(collection, left, employer_id, "PEN_EMP", start=202001, end=202405, status="stopped")
        [(stranger, _)] = add_people(collection, None, 1, first_serial=900, funds=())
        response = await declare(collection, clerk, employer_id, [
            {"person_id": good, "base": "5000"},
            {"person_id": "no-such-person", "base": "5000"},
            {"person_id": elsewhere, "base": "5000"},
            {"person_id": suspended, "base": "5000"},
            {"person_id": medical, "base": "5000"},
            {"person_id": later, "base": "5000"},
            {"person_id": left, "base": "5000"},
            {"citizen_id": good_cid, "base": "6000"},
            {"person_id": stranger, "base": "5000"},
            {"person_id": good, "citizen_id": add_people(collection, None, 1, first_serial=901, funds=())[0][1],
             "base": "5000"},
        ], expect=422)
        assert error_code(response) == "DECLARATION_REJECTED"
        details = response.json()["error"]["details"]
        assert (details["lines"], details["rejected"]) == (10, 9)
        assert reasons(response) == [
            (2, "PERSON_NOT_FOUND"), (3, "NOT_ENROLLED"), (4, "ENROLMENT_SUSPENDED"), (5, "FUND_NOT_CONFIGURED"),
            (6, "NOT_ENROLLED"), (7, "NOT_ENROLLED"), (8, "DUPLICATE_PERSON"), (9, "NOT_ENROLLED"),
            (10, "PERSON_MISMATCH")]
        assert (count(collection, Declaration), count(collection, DeclarationLine), count(collection, Assessment),
                count(collection, AssessmentLine)) == (0, 0, 0, 0)
        assert outbox(collection, "collection.assessment.issued.v2") == []
        # a stopped enrolment still covers the months up to its end: a back declaration is accepted
        back = await declare(collection, clerk, employer_id, [{"person_id": left, "base": "5000"}], period=202405)
        assert back["assessment"]["lines"] == 1


# -- correction by supersession --------------------------------------------------------------------------------------


async def test_a_correction_supersedes_the_assessment_and_never_edits_it(start_service, auth, clerk):
    async with start_service("collection") as collection:
        await approved_parameters(collection, auth)
        employer_id = add_employer(collection)
        [(zhang, _), (li, _)] = add_people(collection, employer_id, 2, funds=("PEN_EMP",))
        first = await declare(collection, clerk, employer_id, [{"person_id": zhang, "base": "5432.10"}])
        old_id = first["assessment"]["id"]
        body = {"lines": [{"person_id": zhang, "base": "6000.00"}, {"person_id": li, "base": "7000.00"}],
                "reason": "漏报一人，基数更正"}
        no_reason = await collection.post(f"/assessments/{old_id}/supersede", json={"lines": body["lines"]},
                                          headers=clerk)
        assert no_reason.status_code == 422
        bad = await collection.post(f"/assessments/{old_id}/supersede",
                                    json={**body, "lines": [{"person_id": "nobody", "base": "6000"}]}, headers=clerk)
        assert bad.status_code == 422 and reasons(bad) == [(1, "PERSON_NOT_FOUND")]
        wrong_period = await collection.post(f"/assessments/{old_id}/supersede", json={**body, "period": 202405},
                                             headers=clerk)
        assert wrong_period.status_code == 422 and error_code(wrong_period) == "PERIOD_MISMATCH"

        corrected = await collection.post(f"/assessments/{old_id}/supersede", json=body, headers=clerk)
        assert corrected.status_code == 201, corrected.text
        new = corrected.json()["assessment"]
        assert (new["supersedes_id"], new["reason"], new["lines"]) == (old_id, "漏报一人，基数更正", 2)
        assert new["employer_total"] == "2080.00" and new["individual_total"] == "1040.00"
        old = (await collection.get(f"/assessments/{old_id}", headers=clerk)).json()
        assert (old["assessment"]["status"], old["assessment"]["superseded_by_id"]) == ("superseded", new["id"])
        assert old["assessment"]["employer_total"] == "869.14"  # the figures stay as issued
        assert [x["status"] for x in old["items"]] == ["superseded"]
        old_declaration = (await collection.get(f"/declarations/{first['declaration']['id']}", headers=clerk)).json()
        assert old_declaration["declaration"]["status"] == "superseded"

        events = [(e["type"], e.get("assessment_id")) for e in outbox(collection) if e["type"].startswith(
            "collection.assessment")]
        assert events == [("collection.assessment.issued.v2", old_id),
                          ("collection.assessment.superseded.v1", old_id),
                          ("collection.assessment.issued.v2", new["id"])]
        [superseded] = outbox(collection, "collection.assessment.superseded.v1")
        assert (superseded["superseded_by_id"], superseded["reason"]) == (new["id"], "漏报一人，基数更正")
        assert outbox(collection, "collection.assessment.issued.v2")[1]["supersedes_id"] == old_id

        again = await collection.post(f"/assessments/{old_id}/supersede", json=body, headers=clerk)
        assert again.status_code == 409 and error_code(again) == "ASSESSMENT_NOT_ISSUED"
        current = (await collection.get("/assessments", params={"employer_id": employer_id, "status": "issued"},
                                        headers=clerk)).json()["items"]
        assert [a["id"] for a in current] == [new["id"]]
        actions = [e["action"] for e in (await collection.get("/audit/entries",
                                                               headers=auth("internal_auditor"))).json()]
        assert actions[-3:] == ["declaration.submit", "assessment.supersede", "assessment.issue"]


async def test_what_was_collected_on_a_superseded_line_is_carried_to_the_new_one(start_service, auth, clerk):
    async with start_service("collection") as collection:
        await approved_parameters(collection, auth)
        employer_id = add_employer(collection)
        [(zhang, _), (li, _)] = add_people(collection, employer_id, 2, funds=("PEN_EMP",))
        first = await declare(collection, clerk, employer_id, [{"person_id": zhang, "base": "5000"},
                                                               {"person_id": li, "base": "5000"}])
        old_id = first["assessment"]["id"]
        with Session(engine_of(collection)) as session:  # the tax bureau collected Zhang's line in full
            line = session.execute(select(AssessmentLine).where(AssessmentLine.assessment_id == old_id,
                                                                AssessmentLine.person_id == zhang)).scalar_one()
            line.paid_principal_fen, line.paid_late_fee_fen, line.status = 120_000, 35, "paid"
            session.add(line)
            session.commit()
        dropped = await collection.post(f"/assessments/{old_id}/supersede", headers=clerk, json={
            "lines": [{"person_id": li, "base": "6000"}], "reason": "张某离职"})
        assert dropped.status_code == 409 and error_code(dropped) == "PAID_LINE_DROPPED"
        raised = await collection.post(f"/assessments/{old_id}/supersede", headers=clerk, json={
            "lines": [{"person_id": zhang, "base": "6000"}, {"person_id": li, "base": "5000"}], "reason": "基数更正"})
        assert raised.status_code == 201, raised.text
        lines = {x["person_id"]: x for x in (await collection.get(
            f"/assessments/{raised.json()['assessment']['id']}", headers=clerk)).json()["items"]}
        # 6 000.00 × 24 % = 1 440.00 owed, 1 200.00 already collected: still open for the difference
        assert (lines[zhang]["paid_principal_fen"], lines[zhang]["paid_late_fee_fen"], lines[zhang]["status"]) == (
            120_000, 35, "open")
        assert (lines[li]["paid_principal_fen"], lines[li]["status"]) == (0, "open")


# -- files -----------------------------------------------------------------------------------------------------------


async def test_declarations_upload_as_gbk_csv_or_xlsx_with_chinese_headers(start_service, auth, clerk):
    async with start_service("collection") as collection:
        await approved_parameters(collection, auth)
        employer_id = add_employer(collection)
        people = add_people(collection, employer_id, 3, funds=("PEN_EMP", "UNEMP"))
        csv_text = "单位职工缴费基数申报表\n公民身份号码,姓名,缴费基数\n" + "\n".join(
            f'{cid},职工{i + 1},"{base}"' for i, ((_, cid), base) in enumerate(zip(people, ("5432.10", "6,000.00",
                                                                                          "4800"), strict=True)))
        response = await collection.post(f"/employers/{employer_id}/declarations/upload", data={"period": "202406"},
                                         files={"file": ("申报.csv", csv_text.encode("gbk"), "text/csv")},
                                         headers=clerk)
        assert response.status_code == 201, response.text
        result = response.json()
        assert (result["declaration"]["source"], result["assessment"]["lines"]) == ("csv", 6)
        # per line: 869.14 + 27.16, 960.00 + 30.00, 768.00 + 24.00
        assert result["assessment"]["employer_total"] == "2678.30"

        # an Excel file with bad rows: reasons carry the row numbers the clerk sees
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(["人员编号", "姓名", "缴费基数"])
        sheet.append([people[0][0], "职工1", 5432.1])  # an Excel number
        sheet.append([people[1][0], "别人", "6000"])  # name does not match
        sheet.append([people[2][0], "职工3", "4800.001"])
        sheet.append([people[2][0], None, -5])
        sheet.append([None, "职工9", "5000"])
        buffer = io.BytesIO()
        book.save(buffer)
        refused = await collection.post(f"/employers/{employer_id}/declarations/upload", data={"period": "202405"},
                                        files={"file": ("申报.xlsx", buffer.getvalue(), "application/octet-stream")},
                                        headers=clerk)
        assert refused.status_code == 422, refused.text
        assert reasons(refused) == [(3, "NAME_MISMATCH"), (4, "INVALID_AMOUNT"), (5, "INVALID_BASE"),
                                    (6, "PERSON_REQUIRED")]
        missing_base = await collection.post(
            f"/employers/{employer_id}/declarations/upload", data={"period": "202405"},
            files={"file": ("x.csv", "公民身份号码,姓名\n".encode(), "text/csv")}, headers=clerk)
        assert missing_base.status_code == 422 and error_code(missing_base) == "IMPORT_COLUMNS_INVALID"

        # a corrected file supersedes
        sheet.delete_rows(3, 4)
        buffer = io.BytesIO()
        book.save(buffer)
        ok = await collection.post(f"/employers/{employer_id}/declarations/upload", data={"period": "202405"},
                                   files={"file": ("申报.xlsx", buffer.getvalue(), "application/octet-stream")},
                                   headers=clerk)
        assert ok.status_code == 201, ok.text
        assert (ok.json()["declaration"]["source"], ok.json()["assessment"]["employer_total"]) == ("xlsx", "896.30")
        corrected = await collection.post(
            f"/assessments/{ok.json()['assessment']['id']}/supersede/upload", data={"reason": "补报"},
            files={"file": ("c.csv", f"人员编号,缴费基数\n{people[0][0]},5432.10\n{people[1][0]},6000\n".encode(),
                            "text/csv")}, headers=clerk)
        assert corrected.status_code == 201, corrected.text
        assert corrected.json()["superseded"]["status"] == "superseded"


# -- scale -----------------------------------------------------------------------------------------------------------


async def test_large_assessments_are_published_in_parts_of_at_most_1000_lines(start_service, auth, clerk):
    async with start_service("collection") as collection:
        await approved_parameters(collection, auth)
        employer_id = add_employer(collection)
        people = add_people(collection, employer_id, 350)  # × 3 funds = 1 050 lines
        result = await declare(collection, clerk, employer_id, [{"person_id": p, "base": "5000"} for p, _ in people])
        events = outbox(collection, "collection.assessment.issued.v2")
        assert [(e["part"], e["parts"], len(e["lines"])) for e in events] == [(1, 2, 1000), (2, 2, 50)]
        assert sum(x["employer_fen"] for e in events for x in e["lines"]) == result["assessment"]["employer_total_fen"]
        page1 = (await collection.get(f"/assessments/{result['assessment']['id']}", params={"limit": 1000},
                                      headers=clerk)).json()
        page2 = (await collection.get(f"/assessments/{result['assessment']['id']}",
                                      params={"limit": 1000, "after": page1["next_cursor"]}, headers=clerk)).json()
        assert (len(page1["items"]), len(page2["items"]), page2["next_cursor"]) == (1000, 50, None)
        assert len({x["id"] for x in page1["items"] + page2["items"]}) == 1050


async def test_an_employer_of_20000_employees_is_assessed_in_one_declaration(start_service, auth, clerk):
    async with start_service("collection") as collection:
        await approved_parameters(collection, auth)
        employer_id = add_employer(collection)
        people = add_people(collection, employer_id, 20_000, funds=("PEN_EMP", "UNEMP", "INJURY"))
        lines = [{"person_id": p, "base": f"{4000 + i % 30000}.{i % 100:02d}"} for i, (p, _) in enumerate(people)]
        started = time.perf_counter()
        result = await declare(collection, clerk, employer_id, lines)
        elapsed = time.perf_counter() - started
        assert result["assessment"]["lines"] == 60_000
        assert count(collection, AssessmentLine) == 60_000 and count(collection, DeclarationLine) == 20_000
        assert len(outbox(collection, "collection.assessment.issued.v2")) == 60
        print(f"20 000 employees × 3 funds assessed in {elapsed:.2f} s")



# -- the page of lines, written without a model per line -------------------------------------------------------------


@pytest.mark.unit
def test_a_page_of_lines_is_the_json_the_model_writes():
    """``GET /assessments/{id}`` writes its page directly; the bytes are the documented model's, for every amount."""
    amounts = [0, 1, 9, 10, 99, 100, 101, 543210, 10**14, 2**62, -1, -100, -543210]
    assert [yuan_text(f) for f in amounts] == [f"{fen_to_yuan(f):.2f}" for f in amounts]
    assessment = Assessment(id="a-1", declaration_id="d-1", employer_id="e-\"1\"", period=202601, parameters_id="p-1",
                            status="issued", due_date=date(2026, 2, 15), lines=len(amounts), employer_total_fen=10**15,
                            individual_total_fen=3, issued_at=datetime(2026, 2, 1, 8, 30, 1, 123456, tzinfo=UTC),
                            issued_by="clerk.李", reason=None)
    lines = [AssessmentLine(id=f"l-{i:03d}", assessment_id="a-1", employer_id="e-1", person_id=f"人-{i}", fund="PEN_EMP",
                            period=202601, base_fen=abs(f), employer_rate="0.16", individual_rate="0.08",
                            employer_fen=f, individual_fen=amounts[-1 - i], due_date=date(2026, 2, 15),
                            status="open" if i % 2 else "paid", paid_principal_fen=i, paid_late_fee_fen=f)
             for i, f in enumerate(amounts)]
    for cursor in (None, "l-012"):
        expected = AssessmentDetail.model_validate({"assessment": assessment_out(assessment),
                                                    "items": [line_fields(x) for x in lines], "next_cursor": cursor})
        assert assessment_page_json(assessment, lines, cursor) == expected.model_dump_json().encode()
    assert assessment_page_json(assessment, [], None) == AssessmentDetail(
        assessment=assessment_out(assessment), items=[], next_cursor=None).model_dump_json().encode()


@pytest.mark.unit
def test_a_portion_in_integers_is_percent_of_fen():
    rates = [Decimal(r) for r in ("0", "0.16", "0.08", "0.005", "0.0048", "0.002", "0.019", "1", "1.5", "0.33333333333",
                                  "1E+1", "0.007125", "0.123456789012")]
    rates.append(Decimal("0.0048") * Decimal("1.25"))  # a class rate times a floating factor
    bases = [0, 1, 5, 49, 50, 51, 99, 100, 12_345, 543_210, 3_166_949, 10**14, 10**26, 10**27 + 7, 2**62, -1, -543_210]

    def outcome(compute, *args):  # noqa: ANN001, ANN002, ANN202
        try:
            return compute(*args)
        except InvalidOperation as exc:  # beyond Decimal's precision both fail alike
            return type(exc)

    for rate in rates:
        ratio = service.exact_ratio(rate)
        for base in bases:
            assert outcome(service.portion_fen, base, ratio) == outcome(percent_of_fen, base, rate), (base, rate)
    assert outcome(service.portion_fen, 10**40, service.exact_ratio(Decimal("0.16"))) is InvalidOperation
