"""Employer registry: registration details, updates with history, status changes, search, masking."""

from datetime import date, timedelta

from sqlmodel import Session

from services.accounts.models import Enrolment, Person
from services.kernel import clock
from tests.support.registry import (
    CITY,
    OTHER_DISTRICT,
    REGION,
    engine_of,
    error_code,
    make_card,
    make_citizen_id,
    make_uscc,
    outbox,
)
from tests.support.accounts import CARD, full_employer


async def register(accounts, headers, **overrides) -> dict:  # noqa: ANN001
    response = await accounts.post("/employers", json=full_employer(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def add_enrolment(client, employer_id: str, *, status: str = "active", serial: int = 1) -> str:  # noqa: ANN001
    """An enrolment row written straight into the database (the enrolment API is another package)."""
    now = clock.utc_now()
    citizen_id = make_citizen_id(900 + serial)
    with Session(engine_of(client)) as session:
        person = Person(id=f"p-enr-{serial}", citizen_id=citizen_id, name="张三", sex="M", birth_date=date(1985, 6, 15),
                        region=REGION, registered_at=now, registered_by="seed")
        session.add(person)
        session.flush()
        enrolment = Enrolment(id=f"e-enr-{serial}", person_id=person.id, fund="UNEMP", fund_group="UNEMP",
                              employer_id=employer_id, start_period=202401, status=status, created_at=now,
                              created_by="seed")
        session.add(enrolment)
        session.commit()
        return enrolment.id


def set_enrolment_status(client, enrolment_id: str, status: str) -> None:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        row = session.get(Enrolment, enrolment_id)
        row.status = status
        session.commit()


async def test_registration_keeps_every_detail_in_the_row_the_history_and_the_event(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.zhang")
    async with start_service("accounts") as accounts:
        created = await register(accounts, clerk, unit_type="public_institution", industry_risk_class=8)
        assert created["unit_type"] == "public_institution" and created["industry_risk_class"] == 8
        assert created["contact_phone"] == "0471-6612345" and created["bank_account_no"] == CARD
        assert (created["status"], created["version"], created["registered_by"]) == ("active", 1, "clerk.zhang")

        fetched = (await accounts.get(f"/employers/{created['id']}", headers=clerk)).json()
        assert fetched == created
        missing = await accounts.get("/employers/no-such-employer", headers=clerk)
        assert missing.status_code == 404 and error_code(missing) == "EMPLOYER_NOT_FOUND"

        [entry] = (await accounts.get(f"/employers/{created['id']}/history", headers=clerk)).json()
        assert (entry["version"], entry["action"], entry["changed_by"]) == (1, "register", "clerk.zhang")
        assert entry["changes"]["industry_risk_class"] == [None, 8]
        assert entry["changes"]["bank_account_no"] == [None, CARD]

        [event] = outbox(accounts, "accounts.employer.registered.v1")
        assert (event["employer_id"], event["unit_type"], event["industry_risk_class"]) == (
            created["id"], "public_institution", 8)
        assert (await accounts.get("/audit/verify", headers=auth("internal_auditor"))).json()["ok"] is True

        # Defaults: a bare registration is an enterprise of risk class 1 without contact or bank details.
        bare = await accounts.post("/employers", json={"uscc": make_uscc(2), "name": "某个体户", "region": REGION},
                                   headers=clerk)
        assert bare.status_code == 201
        assert (bare.json()["unit_type"], bare.json()["industry_risk_class"], bare.json()["bank_account_no"]) == (
            "enterprise", 1, None)


async def test_every_bad_registration_is_refused_with_its_code_and_writes_nothing(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    bad_uscc = make_uscc(1)[:-1] + ("0" if make_uscc(1)[-1] != "0" else "1")
    bad_card = CARD[:-1] + str((int(CARD[-1]) + 1) % 10)
    cases = [
        ({"uscc": bad_uscc}, "INVALID_USCC"),
        ({"uscc": "9115"}, "INVALID_USCC"),
        ({"region": "159999"}, "INVALID_REGION_CODE"),
        ({"unit_type": "partnership"}, "VALIDATION_ERROR"),
        ({"industry_risk_class": 0}, "VALIDATION_ERROR"),
        ({"industry_risk_class": 9}, "VALIDATION_ERROR"),
        ({"contact_phone": "call me"}, "INVALID_PHONE"),
        ({"bank_account_no": bad_card}, "INVALID_BANK_CARD"),
        ({"bank_account_no": "12345"}, "INVALID_BANK_CARD"),
        ({"bank_account_no": None}, "BANK_ACCOUNT_INCOMPLETE"),
        ({"bank_name": None}, "BANK_ACCOUNT_INCOMPLETE"),
        ({"name": "   "}, "VALIDATION_ERROR"),
        ({"status": "suspended"}, "VALIDATION_ERROR"),  # not a registration field
    ]
    async with start_service("accounts") as accounts:
        for overrides, code in cases:
            response = await accounts.post("/employers", json=full_employer(**overrides), headers=clerk)
            assert response.status_code == 422, (overrides, response.text)
            assert error_code(response) == code, (overrides, response.text)

        await register(accounts, clerk)
        duplicate = await accounts.post("/employers", json=full_employer(name="另一家公司"), headers=clerk)
        assert duplicate.status_code == 409 and error_code(duplicate) == "EMPLOYER_ALREADY_REGISTERED"
        lowercase = await accounts.post("/employers", json=full_employer(uscc=make_uscc(1).lower()), headers=clerk)
        assert lowercase.status_code == 409

        assert len(outbox(accounts)) == 1
        assert (await accounts.get("/audit/head", headers=auth("internal_auditor"))).json()["seq"] == 1


async def test_update_changes_only_the_fields_sent_with_history_and_event(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    async with start_service("accounts") as accounts:
        created = await register(accounts, clerk)
        url = f"/employers/{created['id']}"
        response = await accounts.patch(url, json={"contact_phone": "13800138000", "industry_risk_class": 5,
                                                   "contact_name": "王会计", "reason": "单位信息变更申请"},
                                        headers=clerk)
        assert response.status_code == 200, response.text
        updated = response.json()
        assert (updated["version"], updated["contact_phone"], updated["industry_risk_class"]) == (2, "13800138000", 5)
        assert updated["name"] == created["name"] and updated["updated_at"]

        [event] = outbox(accounts, "accounts.employer.updated.v1")
        # contact_name was sent unchanged: not a change
        assert event["changes"] == {"contact_phone": ["0471-6612345", "13800138000"], "industry_risk_class": [3, 5]}
        assert event["version"] == 2

        # Nothing really changes: no version, no history, no event.
        same = await accounts.patch(url, json={"contact_phone": "13800138000"}, headers=clerk)
        assert same.status_code == 200 and same.json()["version"] == 2
        assert len(outbox(accounts, "accounts.employer.updated.v1")) == 1

        # null clears an optional field; the bank account is cleared as a pair or not at all.
        cleared = await accounts.patch(url, json={"address": None}, headers=clerk)
        assert cleared.json()["address"] is None and cleared.json()["version"] == 3
        half = await accounts.patch(url, json={"bank_account_no": None}, headers=clerk)
        assert half.status_code == 422 and error_code(half) == "BANK_ACCOUNT_INCOMPLETE"
        new_card = make_card(77)
        moved_bank = await accounts.patch(url, json={"bank_account_no": new_card}, headers=clerk)
        assert moved_bank.json()["bank_account_no"] == new_card

        refusals = [
            ({"uscc": make_uscc(9)}, 422, "USCC_NOT_EDITABLE"),
            ({"status": "deregistered"}, 422, "STATUS_NOT_EDITABLE"),
            ({"name": None}, 422, "VALIDATION_ERROR"),
            ({"industry_risk_class": 12}, 422, "VALIDATION_ERROR"),
            ({"contact_phone": "x"}, 422, "INVALID_PHONE"),
            ({"bank_account_no": "6222021234567890123"}, 422, "INVALID_BANK_CARD"),
            ({"registered_by": "me"}, 422, "VALIDATION_ERROR"),
            ({"contact_name": "新联系人", "expected_version": 1}, 409, "VERSION_CONFLICT"),
        ]
        for body, status, code in refusals:
            response = await accounts.patch(url, json=body, headers=clerk)
            assert (response.status_code, error_code(response)) == (status, code), (body, response.text)

        ok = await accounts.patch(url, json={"contact_name": "新联系人", "expected_version": 4}, headers=clerk)
        assert ok.status_code == 200 and ok.json()["version"] == 5

        history = (await accounts.get(f"{url}/history", headers=clerk)).json()
        assert [(h["version"], h["action"]) for h in history] == [
            (1, "register"), (2, "update"), (3, "update"), (4, "update"), (5, "update")]
        assert history[1]["changes"] == event["changes"] and history[1]["reason"] == "单位信息变更申请"
        assert history[1]["changed_by"] == "clerk.li" and history[1]["request_id"]
        assert history[2]["changes"] == {"address": [created["address"], None]}
        assert (await accounts.get("/employers/nope/history", headers=clerk)).status_code == 404
        assert (await accounts.patch("/employers/nope", json={"address": "某地"}, headers=clerk)).status_code == 404


async def test_region_rules_apply_to_updates_history_and_moves(start_service, auth):
    xincheng = auth("agency_clerk", region=REGION)
    huimin = auth("agency_clerk", region=OTHER_DISTRICT)
    city_clerk = auth("agency_clerk", region=CITY)
    async with start_service("accounts") as accounts:
        created = await register(accounts, xincheng)
        url = f"/employers/{created['id']}"
        for call in (accounts.patch(url, json={"address": "某地"}, headers=huimin),
                     accounts.get(f"{url}/history", headers=huimin),
                     accounts.post(f"{url}/suspend", json={"reason": "x"}, headers=huimin)):
            response = await call
            assert response.status_code == 403 and error_code(response) == "OUT_OF_REGION"
        # A district clerk cannot hand an employer to another district; a city clerk can.
        refused = await accounts.patch(url, json={"region": OTHER_DISTRICT}, headers=xincheng)
        assert refused.status_code == 403 and error_code(refused) == "OUT_OF_REGION"
        moved = await accounts.patch(url, json={"region": OTHER_DISTRICT, "reason": "迁址"}, headers=city_clerk)
        assert moved.status_code == 200 and moved.json()["region"] == OTHER_DISTRICT
        assert (await accounts.get(url, headers=huimin)).status_code == 200
        assert (await accounts.get(url, headers=xincheng)).status_code == 403
        # Writes are the clerk's: a reviewer may read but not change.
        reviewer = auth("agency_reviewer", region=CITY)
        forbidden = await accounts.patch(url, json={"address": "某地"}, headers=reviewer)
        assert forbidden.status_code == 403 and error_code(forbidden) == "FORBIDDEN"


async def test_suspend_reactivate_deregister_with_reasons_dates_history_and_events(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    today = clock.china_today()
    async with start_service("accounts") as accounts:
        created = await register(accounts, clerk)
        url = f"/employers/{created['id']}"

        missing_reason = await accounts.post(f"{url}/suspend", json={}, headers=clerk)
        assert missing_reason.status_code == 422 and error_code(missing_reason) == "VALIDATION_ERROR"
        future = await accounts.post(f"{url}/suspend", json={"reason": "停产", "effective_date":
                                                            (today + timedelta(days=1)).isoformat()}, headers=clerk)
        assert future.status_code == 422 and error_code(future) == "EFFECTIVE_DATE_IN_FUTURE"
        too_early = await accounts.post(f"{url}/suspend", json={"reason": "停产", "effective_date": "2001-01-01"},
                                        headers=clerk)
        assert too_early.status_code == 422 and error_code(too_early) == "EFFECTIVE_DATE_BEFORE_REGISTRATION"
        not_suspended = await accounts.post(f"{url}/reactivate", json={"reason": "复产"}, headers=clerk)
        assert not_suspended.status_code == 409 and error_code(not_suspended) == "INVALID_STATUS_TRANSITION"

        suspended = await accounts.post(f"{url}/suspend", json={"reason": "停产整顿"}, headers=clerk)
        assert suspended.status_code == 200, suspended.text
        assert (suspended.json()["status"], suspended.json()["version"]) == ("suspended", 2)
        again = await accounts.post(f"{url}/suspend", json={"reason": "停产整顿"}, headers=clerk)
        assert again.status_code == 409 and error_code(again) == "INVALID_STATUS_TRANSITION"
        # A suspended employer's details can still be corrected.
        assert (await accounts.patch(url, json={"address": "新地址"}, headers=clerk)).status_code == 200
        reactivated = await accounts.post(f"{url}/reactivate", json={"reason": "恢复生产",
                                                                     "effective_date": today.isoformat()},
                                          headers=clerk)
        assert reactivated.json()["status"] == "active" and reactivated.json()["version"] == 4

        enrolment_id = add_enrolment(accounts, created["id"], status="active")
        refused = await accounts.post(f"{url}/deregister", json={"reason": "歇业"}, headers=clerk)
        assert refused.status_code == 409 and error_code(refused) == "EMPLOYER_HAS_ACTIVE_ENROLMENTS"
        assert "1" in refused.json()["error"]["message"]
        set_enrolment_status(accounts, enrolment_id, "suspended")  # still open
        refused = await accounts.post(f"{url}/deregister", json={"reason": "歇业"}, headers=clerk)
        assert refused.status_code == 409 and error_code(refused) == "EMPLOYER_HAS_ACTIVE_ENROLMENTS"
        set_enrolment_status(accounts, enrolment_id, "stopped")
        deregistered = await accounts.post(f"{url}/deregister", json={"reason": "歇业注销"}, headers=clerk)
        assert deregistered.status_code == 200 and deregistered.json()["status"] == "deregistered"

        # Deregistration is final.
        for action in ("reactivate", "suspend", "deregister"):
            response = await accounts.post(f"{url}/{action}", json={"reason": "x"}, headers=clerk)
            assert response.status_code == 409 and error_code(response) == "INVALID_STATUS_TRANSITION"
        frozen = await accounts.patch(url, json={"address": "某地"}, headers=clerk)
        assert frozen.status_code == 409 and error_code(frozen) == "EMPLOYER_DEREGISTERED"

        events = outbox(accounts, "accounts.employer.status_changed.v1")
        assert [(e["previous_status"], e["status"], e["reason"]) for e in events] == [
            ("active", "suspended", "停产整顿"), ("suspended", "active", "恢复生产"), ("active", "deregistered", "歇业注销")]
        assert all(e["effective_date"] == today.isoformat() and e["uscc"] == created["uscc"] for e in events)

        history = (await accounts.get(f"{url}/history", headers=auth("internal_auditor", region=REGION))).json()
        assert [h["action"] for h in history] == ["register", "suspend", "update", "reactivate", "deregister"]
        assert history[1]["changes"] == {"status": ["active", "suspended"], "effective_date": [None, today.isoformat()]}
        assert history[1]["reason"] == "停产整顿"
        assert (await accounts.get("/audit/verify", headers=auth("internal_auditor"))).json()["ok"] is True
        assert (await accounts.post("/employers/nope/suspend", json={"reason": "x"}, headers=clerk)).status_code == 404


async def test_bank_account_numbers_are_masked_for_roles_that_do_not_pay(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        created = await register(accounts, clerk)
        url = f"/employers/{created['id']}"
        masked = "*" * (len(CARD) - 4) + CARD[-4:]
        for role, expected in [("agency_clerk", CARD), ("agency_reviewer", CARD), ("agency_approver", masked),
                               ("internal_auditor", masked)]:
            headers = auth(role, region=REGION)
            assert (await accounts.get(url, headers=headers)).json()["bank_account_no"] == expected, role
            [entry] = (await accounts.get(f"{url}/history", headers=headers)).json()
            assert entry["changes"]["bank_account_no"] == [None, expected], role
            listed = (await accounts.get("/employers", params={"uscc": created["uscc"]}, headers=headers)).json()
            assert listed["items"][0]["bank_account_no"] == expected, role


async def test_search_by_uscc_and_name_within_the_region(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        await register(accounts, clerk, serial=1, name="青城机械厂")
        await register(accounts, clerk, serial=2, name="青城食品公司")
        await register(accounts, clerk, serial=3, name="100%_百分百公司")
        by_name = (await accounts.get("/employers", params={"name": "青城"}, headers=clerk)).json()
        assert {e["name"] for e in by_name["items"]} == {"青城机械厂", "青城食品公司"}
        by_uscc = (await accounts.get("/employers", params={"uscc": make_uscc(2).lower()}, headers=clerk)).json()
        assert [e["name"] for e in by_uscc["items"]] == ["青城食品公司"]
        literal = (await accounts.get("/employers", params={"name": "%_"}, headers=clerk)).json()
        assert [e["name"] for e in literal["items"]] == ["100%_百分百公司"]  # wildcards are taken literally
        page = (await accounts.get("/employers", params={"limit": 2}, headers=clerk)).json()
        rest = (await accounts.get("/employers", params={"limit": 2, "after": page["next_cursor"]}, headers=clerk)).json()
        assert len(page["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
        other = (await accounts.get("/employers", params={"name": "青城"},
                                    headers=auth("agency_clerk", region=OTHER_DISTRICT))).json()
        assert other["items"] == []
