"""Person registry: registration from the citizen id, contact updates, payment accounts in the person's
own name, life status only through an approved correction (or the exchange feed), masking, search, history."""

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import event, select
from sqlmodel import Session

from services.accounts.models import ChangeHistory, Employer, Enrolment, LifeEvent, Person
from services.accounts.persons.service import LifeStatusWrites, apply_life_status
from services.kernel import clock, context
from services.kernel.context import Actor
from services.kernel.errors import DomainError
from services.kernel.identifiers import mask_bank_account, mask_citizen_id
from services.kernel.audit import verify_chain
from services.kernel.models import AuditEntry, OutboxMessage
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
from tests.support.accounts import WANG_ID, person_body
from tests.support.statements import head

CARD = make_card(1)


async def register(accounts, headers, **overrides) -> dict:  # noqa: ANN001
    response = await accounts.post("/persons", json=person_body(**overrides), headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def account_body(account_no: str = CARD, holder_name: str = "王大明", kind: str = "bank_account") -> dict:
    return {"kind": kind, "bank_name": "中国建设银行呼和浩特分行", "account_no": account_no, "holder_name": holder_name}


def person_row(client, person_id: str) -> Person:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        return session.get(Person, person_id)


async def test_registration_derives_sex_and_birth_date_and_emits_the_event(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.zhao")
    woman_id = make_citizen_id(2, born=date(1992, 2, 29), sex="F")
    async with start_service("accounts") as accounts:
        wang = await register(accounts, clerk, citizen_id=WANG_ID.lower(), sex="M", birth_date="1985-06-15")
        assert (wang["citizen_id"], wang["sex"], wang["birth_date"]) == (WANG_ID, "M", "1985-06-15")
        assert (wang["life_status"], wang["version"], wang["nationality"], wang["bank_accounts"]) == (
            "alive", 1, "CHN", [])
        li = await register(accounts, clerk, citizen_id=woman_id, name=" 李小红 ", household_type="rural")
        assert (li["sex"], li["birth_date"], li["name"], li["household_type"]) == ("F", "1992-02-29", "李小红", "rural")

        events = outbox(accounts, "accounts.person.registered.v1")
        assert [(e["person_id"], e["citizen_id"], e["sex"], e["birth_date"]) for e in events] == [
            (wang["id"], WANG_ID, "M", "1985-06-15"), (li["id"], woman_id, "F", "1992-02-29")]
        assert events[0]["_actor"] == {"id": "clerk.zhao", "role": "agency_clerk"}

        [entry] = (await accounts.get(f"/persons/{wang['id']}/history", headers=clerk)).json()
        assert (entry["entity_type"], entry["action"], entry["version"]) == ("person", "register", 1)
        assert entry["changes"]["citizen_id"] == [None, WANG_ID] and entry["changes"]["sex"] == [None, "M"]
        assert (await accounts.get(f"/persons/{wang['id']}", headers=clerk)).json() == wang
        assert (await accounts.get("/audit/verify", headers=auth("internal_auditor"))).json()["ok"] is True


async def test_every_bad_registration_is_refused_with_its_code_and_writes_nothing(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    bad_check = WANG_ID[:-1] + ("0" if WANG_ID[-1] != "0" else "1")
    impossible_birth = "15010219900230" + "0018"  # 30 February
    born_tomorrow = make_citizen_id(3, born=clock.china_today() + timedelta(days=1))
    cases = [
        ({"citizen_id": bad_check}, "INVALID_CITIZEN_ID"),
        ({"citizen_id": "15010219850615"}, "INVALID_CITIZEN_ID"),
        ({"citizen_id": impossible_birth}, "INVALID_CITIZEN_ID"),
        ({"citizen_id": born_tomorrow}, "INVALID_CITIZEN_ID"),
        ({"sex": "F"}, "SEX_MISMATCH"),
        ({"birth_date": "1985-06-16"}, "BIRTH_DATE_MISMATCH"),
        ({"sex": "X"}, "VALIDATION_ERROR"),
        ({"household_type": "nomad"}, "VALIDATION_ERROR"),
        ({"region": "159999"}, "INVALID_REGION_CODE"),
        ({"phone": "not a phone"}, "INVALID_PHONE"),
        ({"nationality": "CN"}, "INVALID_NATIONALITY"),
        ({"name": ""}, "VALIDATION_ERROR"),
        ({"life_status": "deceased"}, "VALIDATION_ERROR"),  # not a registration field
    ]
    async with start_service("accounts") as accounts:
        for overrides, code in cases:
            response = await accounts.post("/persons", json=person_body(**overrides), headers=clerk)
            assert response.status_code == 422, (overrides, response.text)
            assert error_code(response) == code, (overrides, response.text)
        mismatch = await accounts.post("/persons", json=person_body(sex="F"), headers=clerk)
        assert "男" in mismatch.json()["error"]["message"]

        out_of_region = await accounts.post("/persons", json=person_body(region=OTHER_DISTRICT), headers=clerk)
        assert out_of_region.status_code == 403 and error_code(out_of_region) == "OUT_OF_REGION"
        reviewer = await accounts.post("/persons", json=person_body(), headers=auth("agency_reviewer", region=REGION))
        assert reviewer.status_code == 403 and error_code(reviewer) == "FORBIDDEN"

        first = await register(accounts, clerk)
        duplicate = await accounts.post("/persons", json=person_body(name="王二明", region=REGION), headers=clerk)
        assert duplicate.status_code == 409 and error_code(duplicate) == "PERSON_ALREADY_REGISTERED"
        assert first["id"] in duplicate.json()["error"]["message"]

        assert len(outbox(accounts)) == 1
        assert (await accounts.get("/audit/head", headers=auth("internal_auditor"))).json()["seq"] == 1


async def test_contact_updates_are_kept_and_identity_and_life_status_are_not_plain_edits(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.qian")
    async with start_service("accounts") as accounts:
        wang = await register(accounts, clerk)
        url = f"/persons/{wang['id']}"
        response = await accounts.patch(url, json={"phone": "0471-1234567", "address": "新地址", "household_type": "urban",
                                                   "reason": "本人申请"}, headers=clerk)
        assert response.status_code == 200, response.text
        assert (response.json()["phone"], response.json()["address"], response.json()["version"]) == (
            "0471-1234567", "新地址", 2)
        [event] = outbox(accounts, "accounts.person.updated.v1")
        assert event["changes"] == {"phone": ["13800138000", "0471-1234567"],
                                    "address": ["呼和浩特市新城区某路1号", "新地址"]}

        unchanged = await accounts.patch(url, json={"phone": "0471-1234567"}, headers=clerk)
        assert unchanged.json()["version"] == 2 and len(outbox(accounts, "accounts.person.updated.v1")) == 1
        cleared = await accounts.patch(url, json={"phone": None}, headers=clerk)
        assert cleared.json()["phone"] is None and cleared.json()["version"] == 3

        refusals = [
            ({"citizen_id": make_citizen_id(5)}, "CITIZEN_ID_NOT_EDITABLE"),
            ({"name": "王小明"}, "NAME_NOT_EDITABLE"),
            ({"sex": "F"}, "DERIVED_FIELD_NOT_EDITABLE"),
            ({"birth_date": "1990-01-01"}, "DERIVED_FIELD_NOT_EDITABLE"),
            ({"life_status": "deceased"}, "LIFE_STATUS_NOT_EDITABLE"),
            ({"phone": "13900000000", "death_date": "2020-01-01"}, "LIFE_STATUS_NOT_EDITABLE"),
            ({"imprisoned_from": "2020-01-01"}, "LIFE_STATUS_NOT_EDITABLE"),
            ({"region": OTHER_DISTRICT}, "REGION_NOT_EDITABLE"),
            ({"household_type": None}, "VALIDATION_ERROR"),
            ({"version": 9}, "VALIDATION_ERROR"),
            ({"phone": "abc"}, "INVALID_PHONE"),
        ]
        for body, code in refusals:
            refused = await accounts.patch(url, json=body, headers=clerk)
            assert (refused.status_code, error_code(refused)) == (422, code), (body, refused.text)
        stale = await accounts.patch(url, json={"address": "别处", "expected_version": 1}, headers=clerk)
        assert stale.status_code == 409 and error_code(stale) == "VERSION_CONFLICT"

        row = person_row(accounts, wang["id"])
        assert (row.life_status, row.death_date, row.phone, row.version) == ("alive", None, None, 3)
        history = (await accounts.get(f"{url}/history", headers=clerk)).json()
        assert [(h["action"], h["version"]) for h in history] == [("register", 1), ("update", 2), ("update", 3)]
        assert history[1]["reason"] == "本人申请" and history[1]["changed_by"] == "clerk.qian"
        other = await accounts.patch(url, json={"address": "x"}, headers=auth("agency_clerk", region=OTHER_DISTRICT))
        assert other.status_code == 403 and error_code(other) == "OUT_OF_REGION"
        assert (await accounts.patch("/persons/nope", json={"address": "x"}, headers=clerk)).status_code == 404


async def test_payment_accounts_must_be_in_the_persons_own_name(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        wang = await register(accounts, clerk)
        li = await register(accounts, clerk, citizen_id=make_citizen_id(2, sex="F"), name="李小红")
        url = f"/persons/{wang['id']}/bank-accounts"

        mismatch = await accounts.post(url, json=account_body(holder_name="李小红"), headers=clerk)
        assert mismatch.status_code == 422 and error_code(mismatch) == "ACCOUNT_HOLDER_MISMATCH"
        assert "000 二(三)" in mismatch.json()["error"]["message"]
        bad_card = CARD[:-1] + str((int(CARD[-1]) + 1) % 10)
        for body, code in [(account_body(account_no=bad_card), "INVALID_BANK_CARD"),
                           (account_body(account_no="12ab"), "INVALID_BANK_CARD"),
                           (account_body(kind="cash"), "VALIDATION_ERROR"),
                           (account_body(holder_name=""), "VALIDATION_ERROR")]:
            response = await accounts.post(url, json=body, headers=clerk)
            assert (response.status_code, error_code(response)) == (422, code), body

        added = await accounts.post(url, json=account_body(account_no=CARD[:4] + " " + CARD[4:]), headers=clerk)
        assert added.status_code == 201, added.text
        account = added.json()
        assert (account["account_no"], account["status"], account["holder_name"]) == (CARD, "active", "王大明")
        duplicate = await accounts.post(url, json=account_body(), headers=clerk)
        assert duplicate.status_code == 409 and error_code(duplicate) == "BANK_ACCOUNT_ALREADY_REGISTERED"
        someone_elses = await accounts.post(f"/persons/{li['id']}/bank-accounts",
                                            json=account_body(holder_name="李小红"), headers=clerk)
        assert someone_elses.status_code == 409 and error_code(someone_elses) == "BANK_ACCOUNT_HELD_BY_ANOTHER_PERSON"

        card = await accounts.post(url, json=account_body(account_no=make_card(2), kind="ss_card"), headers=clerk)
        assert card.status_code == 201
        second_card = await accounts.post(url, json=account_body(account_no=make_card(3), kind="ss_card"), headers=clerk)
        assert second_card.status_code == 409 and error_code(second_card) == "SS_CARD_ALREADY_ACTIVE"

        close_url = f"{url}/{account['id']}/close"
        assert error_code(await accounts.post(close_url, json={}, headers=clerk)) == "VALIDATION_ERROR"
        closed = await accounts.post(close_url, json={"reason": "本人申请更换银行卡"}, headers=clerk)
        assert closed.status_code == 200 and closed.json()["status"] == "closed" and closed.json()["closed_at"]
        again = await accounts.post(close_url, json={"reason": "x"}, headers=clerk)
        assert again.status_code == 409 and error_code(again) == "BANK_ACCOUNT_ALREADY_CLOSED"
        wrong_person = await accounts.post(f"/persons/{li['id']}/bank-accounts/{account['id']}/close",
                                           json={"reason": "x"}, headers=clerk)
        assert wrong_person.status_code == 404 and error_code(wrong_person) == "BANK_ACCOUNT_NOT_FOUND"
        reopened = await accounts.post(url, json=account_body(), headers=clerk)
        assert reopened.status_code == 409 and "已关闭" in reopened.json()["error"]["message"]
        # Once closed for Wang, the number may be registered by its real holder.
        assert (await accounts.post(f"/persons/{li['id']}/bank-accounts", json=account_body(holder_name="李小红"),
                                    headers=clerk)).status_code == 201

        [added_event, _card_event, _li_event] = outbox(accounts, "accounts.person.bank_account_added.v1")
        assert (added_event["person_id"], added_event["bank_account_id"], added_event["account_no"]) == (
            wang["id"], account["id"], CARD)
        [closed_event] = outbox(accounts, "accounts.person.bank_account_closed.v1")
        assert (closed_event["bank_account_id"], closed_event["reason"]) == (account["id"], "本人申请更换银行卡")

        listed = (await accounts.get(url, headers=clerk)).json()
        assert [(a["kind"], a["status"]) for a in listed] == [("bank_account", "closed"), ("ss_card", "active")]
        history = (await accounts.get(f"/persons/{wang['id']}/history", headers=clerk)).json()
        assert [(h["entity_type"], h["action"]) for h in history] == [
            ("person", "register"), ("person_bank_account", "add"), ("person_bank_account", "add"),
            ("person_bank_account", "close")]
        assert history[3]["changes"] == {"status": ["active", "closed"]} and history[3]["reason"] == "本人申请更换银行卡"


async def test_numbers_are_masked_by_role(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        wang = await register(accounts, clerk)
        assert (await accounts.post(f"/persons/{wang['id']}/bank-accounts", json=account_body(),
                                    headers=clerk)).status_code == 201
        for role, card in [("agency_clerk", CARD), ("agency_reviewer", CARD),
                           ("agency_approver", mask_bank_account(CARD)), ("internal_auditor", mask_bank_account(CARD))]:
            headers = auth(role, region=REGION)
            person = (await accounts.get(f"/persons/{wang['id']}", headers=headers)).json()
            # Every role allowed to read persons works with the full citizen id (kernel pii.CITIZEN_ID_READERS).
            assert person["citizen_id"] == WANG_ID, role
            assert person["bank_accounts"][0]["account_no"] == card, role
            assert (await accounts.get(f"/persons/{wang['id']}/bank-accounts", headers=headers)).json()[0][
                "account_no"] == card
            history = (await accounts.get(f"/persons/{wang['id']}/history", headers=headers)).json()
            assert history[1]["changes"]["account_no"] == [None, card], role
        # Roles outside the registry never see it at all.
        for role in ("oversight_officer", "cashier", "public"):
            response = await accounts.get(f"/persons/{wang['id']}", headers=auth(role, region=REGION))
            assert response.status_code == 403, role
    assert mask_citizen_id(WANG_ID).count("*") == 8


async def test_life_status_correction_needs_a_second_person_and_changes_everything_at_once(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="zhang")
    # The same user holding both roles: acting as reviewer on their own request is still refused.
    zhang_as_reviewer = auth("agency_clerk", "agency_reviewer", region=REGION, subject="zhang")
    reviewer = auth("agency_reviewer", region=REGION, subject="li")
    today = clock.china_today()
    async with start_service("accounts") as accounts:
        wang = await register(accounts, clerk)
        base = f"/persons/{wang['id']}/life-status-corrections"
        assert (await accounts.post(f"/persons/{wang['id']}/bank-accounts", json=account_body(),
                                    headers=clerk)).status_code == 201

        bad = [
            ({"new_status": "deceased", "death_date": (today + timedelta(days=1)).isoformat()}, "DEATH_DATE_IN_FUTURE"),
            ({"new_status": "deceased"}, "DEATH_DATE_REQUIRED"),
            ({"new_status": "deceased", "death_date": "1980-01-01"}, "DEATH_DATE_BEFORE_BIRTH"),
            ({"new_status": "imprisoned"}, "IMPRISONMENT_DATE_REQUIRED"),
            ({"new_status": "imprisoned", "imprisoned_from": (today + timedelta(days=3)).isoformat()},
             "IMPRISONMENT_DATE_IN_FUTURE"),
            ({"new_status": "imprisoned", "imprisoned_from": "2020-05-01", "imprisoned_until": "2020-04-01"},
             "IMPRISONMENT_END_BEFORE_START"),
            ({"new_status": "alive", "death_date": "2020-01-01"}, "DEATH_DATE_NOT_APPLICABLE"),
            ({"new_status": "resurrected"}, "VALIDATION_ERROR"),
        ]
        for body, code in bad:
            response = await accounts.post(base, json={"reason": "民政部门核实", **body}, headers=clerk)
            assert (response.status_code, error_code(response)) == (422, code), (body, response.text)
        # the person already has that life status: a conflict with the stored state, as when it is approved
        unchanged = await accounts.post(base, json={"reason": "民政部门核实", "new_status": "alive"}, headers=clerk)
        assert (unchanged.status_code, error_code(unchanged)) == (409, "CORRECTION_CHANGES_NOTHING"), unchanged.text
        no_reason = await accounts.post(base, json={"new_status": "deceased", "death_date": "2024-03-01"}, headers=clerk)
        assert no_reason.status_code == 422

        requested = await accounts.post(base, json={"new_status": "deceased", "death_date": "2024-03-01",
                                                    "reason": "家属持死亡证明申报", "evidence": "死亡医学证明 No.123"},
                                        headers=clerk)
        assert requested.status_code == 201, requested.text
        correction = requested.json()
        assert (correction["status"], correction["requested_by"], correction["decided_by"]) == ("requested", "zhang", None)
        pending = await accounts.post(base, json={"new_status": "imprisoned", "imprisoned_from": "2024-01-01",
                                                  "reason": "x"}, headers=clerk)
        assert pending.status_code == 409 and error_code(pending) == "CORRECTION_ALREADY_PENDING"
        # Requesting changes nothing yet.
        assert person_row(accounts, wang["id"]).life_status == "alive"
        assert outbox(accounts, "accounts.person.life_status_changed.v1") == []

        approve = f"{base}/{correction['id']}/approve"
        own = await accounts.post(approve, json={}, headers=zhang_as_reviewer)
        assert own.status_code == 403 and error_code(own) == "SAME_PERSON_CANNOT_APPROVE"
        own_reject = await accounts.post(f"{base}/{correction['id']}/reject", json={"reason": "撤回"},
                                         headers=zhang_as_reviewer)
        assert own_reject.status_code == 403 and error_code(own_reject) == "SAME_PERSON_CANNOT_APPROVE"
        as_clerk = await accounts.post(approve, json={}, headers=auth("agency_clerk", region=REGION, subject="li"))
        assert as_clerk.status_code == 403 and error_code(as_clerk) == "FORBIDDEN"
        elsewhere = await accounts.post(approve, json={}, headers=auth("agency_reviewer", region=OTHER_DISTRICT))
        assert elsewhere.status_code == 403 and error_code(elsewhere) == "OUT_OF_REGION"
        assert person_row(accounts, wang["id"]).life_status == "alive"

        approved = await accounts.post(approve, json={"reason": "证明材料齐全"}, headers=reviewer)
        assert approved.status_code == 200, approved.text
        assert (approved.json()["status"], approved.json()["decided_by"], approved.json()["decision_reason"]) == (
            "approved", "li", "证明材料齐全")
        again = await accounts.post(approve, json={}, headers=reviewer)
        assert again.status_code == 409 and error_code(again) == "CORRECTION_ALREADY_DECIDED"

        person = (await accounts.get(f"/persons/{wang['id']}", headers=clerk)).json()
        assert (person["life_status"], person["death_date"], person["version"]) == ("deceased", "2024-03-01", 2)
        with Session(engine_of(accounts)) as session:
            [life_event] = session.execute(select(LifeEvent).where(LifeEvent.person_id == wang["id"])).scalars().all()
        assert (life_event.kind, life_event.event_date, life_event.source, life_event.source_ref) == (
            "corrected", date(2024, 3, 1), "correction", correction["id"])
        [event] = outbox(accounts, "accounts.person.life_status_changed.v1")
        assert (event["life_status"], event["previous_status"], event["death_date"], event["source"],
                event["source_ref"], event["citizen_id"]) == (
            "deceased", "alive", "2024-03-01", "correction", correction["id"], WANG_ID)
        assert event["_actor"] == {"id": "li", "role": "agency_reviewer"}

        history = (await accounts.get(f"/persons/{wang['id']}/history", headers=clerk)).json()
        assert [(h["entity_type"], h["action"], h["changed_by"]) for h in history] == [
            ("person", "register", "zhang"), ("person_bank_account", "add", "zhang"),
            ("life_status_correction", "request", "zhang"), ("person", "life_status_change", "li"),
            ("life_status_correction", "approve", "li")]
        assert history[3]["changes"] == {"life_status": ["alive", "deceased"], "death_date": [None, "2024-03-01"]}
        assert history[3]["reason"] == f"correction {correction['id']}"
        auditor = auth("internal_auditor")
        entries = (await accounts.get("/audit/entries", params={"entity_id": wang["id"]}, headers=auditor)).json()
        assert [e["action"] for e in entries] == ["person.register", "person.life_status_change"]
        assert (await accounts.get("/audit/verify", headers=auditor)).json()["ok"] is True

        # A dead person gets no new payment account; the correction list shows the decision.
        refused = await accounts.post(f"/persons/{wang['id']}/bank-accounts", json=account_body(make_card(5)),
                                      headers=clerk)
        assert refused.status_code == 409 and error_code(refused) == "PERSON_DECEASED"
        listed = (await accounts.get(base, headers=auth("agency_approver", region=REGION))).json()
        assert [c["status"] for c in listed] == ["approved"]


async def test_the_corrections_queue_lists_every_persons_requests_of_my_area(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="zhang")
    other_clerk = auth("agency_clerk", region=REGION, subject="zhao")
    far_clerk = auth("agency_clerk", region=OTHER_DISTRICT, subject="qian")
    reviewer = auth("agency_reviewer", region=REGION, subject="li")
    async with start_service("accounts") as accounts:
        wang = await register(accounts, clerk)
        liu = await register(accounts, clerk, citizen_id=make_citizen_id(7, born=date(1970, 3, 2)), name="刘洋")
        far = await register(accounts, far_clerk, citizen_id=make_citizen_id(8, born=date(1971, 3, 2)), name="远方",
                             region=OTHER_DISTRICT)

        async def request(person: dict, headers: dict, **body) -> dict:  # noqa: ANN001
            made = await accounts.post(f"/persons/{person['id']}/life-status-corrections", headers=headers,
                                       json={"reason": "民政部门核实", **body})
            assert made.status_code == 201, made.text
            return made.json()

        dead = await request(wang, clerk, new_status="deceased", death_date="2024-03-01")
        jailed = await request(liu, other_clerk, new_status="imprisoned", imprisoned_from="2024-01-10")
        await request(far, far_clerk, new_status="deceased", death_date="2024-02-01")

        queue = await accounts.get("/life-status-corrections", headers=reviewer)
        assert queue.status_code == 200, queue.text
        items = queue.json()["items"]
        assert [i["id"] for i in items] == [jailed["id"], dead["id"]]  # newest first, none of the other district
        assert (items[1]["person_name"], items[1]["current_life_status"], items[1]["requested_by"]) == \
            ("王大明", "alive", "zhang")
        page = (await accounts.get("/life-status-corrections", params={"limit": 1}, headers=reviewer)).json()
        assert [i["id"] for i in page["items"]] == [jailed["id"]] and page["next_cursor"]
        rest = (await accounts.get("/life-status-corrections", params={"after": page["next_cursor"]},
                                   headers=reviewer)).json()
        assert [i["id"] for i in rest["items"]] == [dead["id"]] and rest["next_cursor"] is None
        mine_left_out = (await accounts.get("/life-status-corrections", params={"exclude_mine": "true"},
                                            headers=clerk)).json()
        assert [i["id"] for i in mine_left_out["items"]] == [jailed["id"]]
        deaths = (await accounts.get("/life-status-corrections", params={"new_status": "deceased"},
                                     headers=reviewer)).json()
        assert [i["id"] for i in deaths["items"]] == [dead["id"]]

        approved = await accounts.post(f"/persons/{wang['id']}/life-status-corrections/{dead['id']}/approve",
                                       json={"reason": "核实无误"}, headers=reviewer)
        assert approved.status_code == 200, approved.text
        waiting = (await accounts.get("/life-status-corrections", headers=reviewer)).json()
        assert [i["id"] for i in waiting["items"]] == [jailed["id"]]  # decided: out of the queue
        decided = (await accounts.get("/life-status-corrections", params={"status": "approved"},
                                      headers=reviewer)).json()
        assert [(i["id"], i["decided_by"]) for i in decided["items"]] == [(dead["id"], "li")]
        everything = (await accounts.get("/life-status-corrections", params={"status": "all"},
                                         headers=reviewer)).json()
        assert len(everything["items"]) == 2

        for bad in ({"status": "pending"}, {"new_status": "resurrected"}, {"limit": 0}, {"after": "x" * 40}):
            refused = await accounts.get("/life-status-corrections", params=bad, headers=reviewer)
            assert (refused.status_code, error_code(refused)) == (422, "VALIDATION_ERROR"), bad
        for role in ("cashier", "tax_system", "finance_officer"):
            assert (await accounts.get("/life-status-corrections", headers=auth(role, region=REGION))).status_code \
                == 403, role


async def test_a_rejected_correction_changes_nothing(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="zhang")
    reviewer = auth("agency_reviewer", region=REGION, subject="li")
    async with start_service("accounts") as accounts:
        wang = await register(accounts, clerk)
        base = f"/persons/{wang['id']}/life-status-corrections"
        correction = (await accounts.post(base, json={"new_status": "imprisoned", "imprisoned_from": "2024-01-10",
                                                      "reason": "法院判决"}, headers=clerk)).json()
        reject = f"{base}/{correction['id']}/reject"
        no_reason = await accounts.post(reject, json={}, headers=reviewer)
        assert no_reason.status_code == 422 and error_code(no_reason) == "DECISION_REASON_REQUIRED"
        rejected = await accounts.post(reject, json={"reason": "判决书与本人不符"}, headers=reviewer)
        assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
        late = await accounts.post(f"{base}/{correction['id']}/approve", json={}, headers=reviewer)
        assert late.status_code == 409 and error_code(late) == "CORRECTION_ALREADY_DECIDED"
        unknown = await accounts.post(f"{base}/nope/approve", json={}, headers=reviewer)
        assert unknown.status_code == 404 and error_code(unknown) == "CORRECTION_NOT_FOUND"

        row = person_row(accounts, wang["id"])
        assert (row.life_status, row.imprisoned_from, row.version) == ("alive", None, 1)
        assert outbox(accounts, "accounts.person.life_status_changed.v1") == []
        with Session(engine_of(accounts)) as session:
            assert session.execute(select(LifeEvent)).first() is None
        # Now a new request may be made (the previous one is decided).
        imprisoned = await accounts.post(base, json={"new_status": "imprisoned", "imprisoned_from": "2024-01-10",
                                                     "imprisoned_until": "2030-01-09", "reason": "法院判决"},
                                         headers=clerk)
        assert imprisoned.status_code == 201
        approved = await accounts.post(f"{base}/{imprisoned.json()['id']}/approve", json={}, headers=reviewer)
        assert approved.status_code == 200
        row = person_row(accounts, wang["id"])
        assert (row.life_status, row.imprisoned_from, row.imprisoned_until) == (
            "imprisoned", date(2024, 1, 10), date(2030, 1, 9))
        with Session(engine_of(accounts)) as session:
            [life_event] = session.execute(select(LifeEvent)).scalars().all()
        assert (life_event.event_date, life_event.until_date) == (date(2024, 1, 10), date(2030, 1, 9))


async def test_apply_life_status_contract_for_the_exchange_feed(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        wang = await register(accounts, clerk)
        engine = engine_of(accounts)
        with context.trace(actor=Actor(id="partner.mz", role="partner_system")), Session(engine) as session:
            person = session.get(Person, wang["id"])
            with pytest.raises(DomainError) as refused:
                apply_life_status(session, person, new_status="deceased",
                                  death_date=clock.china_today() + timedelta(days=1), source="exchange", source_ref="r0")
            assert refused.value.code == "DEATH_DATE_IN_FUTURE" and refused.value.status == 422
            assert not session.new and not session.dirty  # nothing written on a refusal
            with pytest.raises(ValueError):
                apply_life_status(session, person, new_status="alive", source="hearsay", source_ref="r0")

            changes = apply_life_status(session, person, new_status="imprisoned", imprisoned_from=date(2023, 1, 1),
                                        source="exchange", source_ref="r1")
            assert changes == {"life_status": ["alive", "imprisoned"], "imprisoned_from": [None, "2023-01-01"]}
            session.commit()  # the caller commits
            assert apply_life_status(session, person, new_status="imprisoned", imprisoned_from=date(2023, 1, 1),
                                     source="exchange", source_ref="r1-again") == {}
            released = apply_life_status(session, person, new_status="alive", imprisoned_from=person.imprisoned_from,
                                         imprisoned_until=date(2024, 1, 1), source="exchange", source_ref="r2")
            assert released == {"life_status": ["imprisoned", "alive"], "imprisoned_until": [None, "2024-01-01"]}
            session.rollback()  # not committed: nothing of it stays
        row = person_row(accounts, wang["id"])
        assert (row.life_status, row.imprisoned_from, row.imprisoned_until, row.version) == (
            "imprisoned", date(2023, 1, 1), None, 2)
        [event] = outbox(accounts, "accounts.person.life_status_changed.v1")
        assert (event["source"], event["source_ref"], event["previous_status"], event["_actor"]["id"]) == (
            "exchange", "r1", "alive", "partner.mz")
        with Session(engine) as session:
            rows = session.execute(select(ChangeHistory).where(ChangeHistory.entity_id == wang["id"])
                                   .order_by(ChangeHistory.version)).scalars().all()
            assert [(r.version, r.action, r.reason) for r in rows] == [
                (1, "register", None), (2, "life_status_change", "exchange r1")]
            assert json.loads(rows[1].changes)["life_status"] == ["alive", "imprisoned"]
            assert session.execute(select(LifeEvent)).first() is None  # the caller writes its own LifeEvent
            assert len(session.execute(select(OutboxMessage)).all()) == 2


async def test_life_status_writes_collect_many_changes_and_write_them_as_apply_life_status_would(start_service, auth):
    """The bulk writer (the exchange's partner batches) and ``apply_life_status`` (a batch of one) are one code: the
    same checks and no-op, and per change the same row, history row, audit entry and event; a flush writes them in
    one statement per table, and a person changed twice sees the first change."""
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        wang = await register(accounts, clerk)
        li = await register(accounts, clerk, citizen_id=make_citizen_id(8, sex="F"), name="李小红")
        engine = engine_of(accounts)
        statements: list[str] = []

        def watch(_conn, _cursor, statement, *_args):  # noqa: ANN001
            statements.append(head(statement))

        with context.trace(actor=Actor(id="partner.mz", role="partner_system")), Session(engine) as session:
            person, other = session.get(Person, wang["id"]), session.get(Person, li["id"])
            writes = LifeStatusWrites(session)
            with pytest.raises(DomainError) as refused:
                writes.change(other, new_status="deceased", death_date=clock.china_today() + timedelta(days=1),
                              source="exchange", source_ref="r0")
            assert refused.value.code == "DEATH_DATE_IN_FUTURE"
            assert writes.change(person, new_status="imprisoned", imprisoned_from=date(2023, 1, 1),
                                 source="exchange", source_ref="r1") == {
                "life_status": ["alive", "imprisoned"], "imprisoned_from": [None, "2023-01-01"]}
            assert writes.change(person, new_status="imprisoned", imprisoned_from=date(2023, 1, 1),
                                 source="exchange", source_ref="r1-again") == {}
            assert writes.change(person, new_status="alive", imprisoned_from=person.imprisoned_from,
                                 imprisoned_until=date(2024, 1, 1), source="exchange", source_ref="r2") == {
                "life_status": ["imprisoned", "alive"], "imprisoned_until": [None, "2024-01-01"]}
            writes.change(other, new_status="deceased", death_date=date(2024, 3, 1), source="exchange",
                          source_ref="r3")
            assert not session.dirty  # the in-memory rows are current, the writes wait for flush
            event.listen(engine, "before_cursor_execute", watch)
            writes.flush()
            event.remove(engine, "before_cursor_execute", watch)
            session.commit()
        assert [s for s in statements if s.startswith(("INSERT", "UPDATE person"))] == [
            "UPDATE person SET", "INSERT INTO change_history", "INSERT INTO audit_log", "INSERT INTO outbox",
            "INSERT INTO archive_item"]  # the exchange's records filed into the dossiers (electronic archive)

        row = person_row(accounts, wang["id"])
        assert (row.life_status, row.imprisoned_from, row.imprisoned_until, row.version) == (
            "alive", date(2023, 1, 1), date(2024, 1, 1), 3)
        assert (person_row(accounts, li["id"]).life_status, person_row(accounts, li["id"]).version) == ("deceased", 2)
        with Session(engine) as session:
            history = session.execute(select(ChangeHistory).where(ChangeHistory.action == "life_status_change")
                                      .order_by(ChangeHistory.id)).scalars().all()
            assert [(h.entity_id, h.version, h.reason, h.changed_by) for h in history] == [
                (wang["id"], 2, "exchange r1", "partner.mz"), (wang["id"], 3, "exchange r2", "partner.mz"),
                (li["id"], 2, "exchange r3", "partner.mz")]
            audit = session.execute(select(AuditEntry).where(AuditEntry.action == "person.life_status_change")
                                    .order_by(AuditEntry.seq)).scalars().all()
            assert [(a.entity_id, a.reason, json.loads(a.detail)["version"]) for a in audit] == [
                (wang["id"], "exchange r1", 2), (wang["id"], "exchange r2", 3), (li["id"], "exchange r3", 2)]
        events = outbox(accounts, "accounts.person.life_status_changed.v1")
        assert [(e["person_id"], e["source_ref"], e["previous_status"], e["life_status"]) for e in events] == [
            (wang["id"], "r1", "alive", "imprisoned"), (wang["id"], "r2", "imprisoned", "alive"),
            (li["id"], "r3", "alive", "deceased")]
        assert verify_chain(engine).ok

async def test_search_by_citizen_id_name_and_employer_within_the_region(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    city_reviewer = auth("agency_reviewer", region=CITY)
    async with start_service("accounts") as accounts:
        wang = await register(accounts, clerk)
        wang2 = await register(accounts, clerk, citizen_id=make_citizen_id(7), name="王小二")
        li = await register(accounts, clerk, citizen_id=make_citizen_id(8, sex="F"), name="李小红")
        zhao = await register(accounts, auth("agency_clerk", region=OTHER_DISTRICT), citizen_id=make_citizen_id(9),
                              name="王五", region=OTHER_DISTRICT)
        employer = (await accounts.post("/employers", json={"uscc": make_uscc(1), "name": "青城机械厂",
                                                            "region": REGION}, headers=clerk)).json()
        now = clock.utc_now()
        with Session(engine_of(accounts)) as session:
            other = Employer(id="emp-other", uscc=make_uscc(2), name="别家", region=REGION, registered_at=now,
                             registered_by="seed")
            session.add(other)
            session.flush()
            for i, (person_id, employer_id, fund, status) in enumerate([
                (wang["id"], employer["id"], "PEN_EMP", "active"),
                (wang["id"], employer["id"], "UNEMP", "active"),  # two funds, listed once
                (li["id"], employer["id"], "UNEMP", "stopped"),  # left the employer
                (wang2["id"], "emp-other", "UNEMP", "active"),
            ]):
                session.add(Enrolment(id=f"enr-{i}", person_id=person_id, fund=fund, fund_group=fund if fund == "UNEMP"
                                      else "PENSION", employer_id=employer_id, start_period=202401, status=status,
                                      created_at=now, created_by="seed"))
            session.commit()

        async def ids(headers, **params) -> set[str]:  # noqa: ANN001
            response = await accounts.get("/persons", params=params, headers=headers)
            assert response.status_code == 200, response.text
            return {p["id"] for p in response.json()["items"]}

        assert await ids(clerk, citizen_id=WANG_ID.lower()) == {wang["id"]}
        assert await ids(clerk, name="王") == {wang["id"], wang2["id"]}
        assert await ids(city_reviewer, name="王") == {wang["id"], wang2["id"], zhao["id"]}
        assert await ids(clerk, employer_id=employer["id"]) == {wang["id"]}
        assert await ids(clerk, employer_id="emp-other") == {wang2["id"]}
        assert await ids(clerk, employer_id=employer["id"], name="李") == set()
        assert await ids(clerk, citizen_id=zhao["citizen_id"]) == set()  # another district's person
        assert await ids(auth("internal_auditor", region=OTHER_DISTRICT)) == {zhao["id"]}

        page = (await accounts.get("/persons", params={"limit": 2}, headers=clerk)).json()
        rest = (await accounts.get("/persons", params={"limit": 2, "after": page["next_cursor"]}, headers=clerk)).json()
        assert len(page["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
        assert {p["id"] for p in page["items"] + rest["items"]} == {wang["id"], wang2["id"], li["id"]}
        assert "bank_accounts" not in page["items"][0]

        elsewhere = await accounts.get(f"/persons/{zhao['id']}", headers=clerk)
        assert elsewhere.status_code == 403 and error_code(elsewhere) == "OUT_OF_REGION"
        for path in ("history", "bank-accounts", "life-status-corrections"):
            response = await accounts.get(f"/persons/{zhao['id']}/{path}", headers=clerk)
            assert response.status_code == 403, path
        missing = await accounts.get("/persons/nope", headers=clerk)
        assert missing.status_code == 404 and error_code(missing) == "PERSON_NOT_FOUND"
