"""Enrolments: the rules, transfers, suspend/resume/stop, the database's second line of defence, and the
online verification API other services call before granting a claim."""

from datetime import date

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from services.accounts.enrolments import rules
from services.accounts.enrolments import service as enrolment_service
from services.accounts.models import ContributionMonth, Employer, Enrolment, Person
from services.kernel import clock
from services.kernel.errors import Conflict, DomainError
from tests.support.registry import (
    OTHER_DISTRICT,
    REGION,
    engine_of,
    error_code,
    make_citizen_id,
    outbox,
)
from tests.support.accounts import add_employer, add_person, set_deceased

# -- helpers ---------------------------------------------------------------------------------------------------------


def set_employer_status(client, employer_id: str, status: str) -> None:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        employer = session.get(Employer, employer_id)
        employer.status = status
        session.add(employer)
        session.commit()


def enrolment_rows(client, person_id: str) -> list[Enrolment]:  # noqa: ANN001
    with Session(engine_of(client), expire_on_commit=False) as session:
        return list(session.execute(
            select(Enrolment).where(Enrolment.person_id == person_id).order_by(Enrolment.start_period)
        ).scalars())


async def enrol(client, headers, person_id: str, fund: str, employer_id: str | None, start: int,  # noqa: ANN001
                expect: int = 201):  # noqa: ANN201
    body = {"person_id": person_id, "fund": fund, "start_period": start}
    if employer_id is not None:
        body["employer_id"] = employer_id
    response = await client.post("/enrolments", json=body, headers=headers)
    assert response.status_code == expect, response.text
    return response.json() if expect == 201 else response


@pytest.fixture
def clerk(auth):  # noqa: ANN001, ANN201
    return auth("agency_clerk", region=REGION, subject="clerk.li")


# -- the pure rules --------------------------------------------------------------------------------------------------


def _row(fund: str, status: str = "active", start: int = 202401, end: int | None = None, **kw) -> Enrolment:
    return Enrolment(id=kw.get("id", f"e-{fund}-{status}"), person_id="p", fund=fund,
                     fund_group="PENSION" if fund.startswith("PEN") else fund, employer_id=kw.get("employer_id"),
                     start_period=start, end_period=end, status=status, created_at=clock.utc_now(),
                     created_by="t")


@pytest.mark.unit
def test_rules_name_the_broken_rule():
    alive = Person(id="p", citizen_id="x", name="n", sex="M", birth_date=date(1985, 1, 1), region=REGION,
                   registered_at=clock.utc_now(), registered_by="t")
    active_employer = Employer(id="e", uscc="u", name="n", region=REGION, status="active",
                               registered_at=clock.utc_now(), registered_by="t")
    codes = {}
    for label, kwargs in {
        "unknown fund": dict(fund="MEDICAL", employer=active_employer, active=[]),
        "no employer": dict(fund="UNEMP", employer=None, active=[]),
        "res with employer": dict(fund="PEN_RES", employer=active_employer, active=[]),
        "twice": dict(fund="UNEMP", employer=active_employer, active=[_row("UNEMP")]),
        "second pension": dict(fund="PEN_RES", employer=None, active=[_row("PEN_EMP")]),
        "suspended holds its place": dict(fund="PEN_EMP", employer=active_employer,
                                          active=[_row("PEN_EMP", "suspended")]),
    }.items():
        with pytest.raises(DomainError) as raised:
            rules.check_new_enrolment(person=alive, **kwargs)
        codes[label] = (raised.value.code, raised.value.status)
    assert codes == {
        "unknown fund": ("UNKNOWN_FUND", 422),
        "no employer": ("EMPLOYER_REQUIRED", 422),
        "res with employer": ("EMPLOYER_NOT_ALLOWED", 422),
        "twice": ("ALREADY_ENROLLED", 409),
        "second pension": ("DUPLICATE_PENSION", 409),
        "suspended holds its place": ("ALREADY_ENROLLED", 409),
    }
    # a stopped enrolment holds nothing; another fund group is independent
    rules.check_new_enrolment(person=alive, fund="PEN_EMP", employer=active_employer,
                              active=[_row("PEN_RES", "stopped", end=202312), _row("UNEMP")])
    with pytest.raises(Conflict) as overlap:
        rules.check_no_overlap("PEN_EMP", 202312, [_row("PEN_RES", "stopped", start=202001, end=202312)])
    assert overlap.value.code == "ENROLMENT_PERIOD_OVERLAP"
    rules.check_no_overlap("PEN_EMP", 202401, [_row("PEN_RES", "stopped", start=202001, end=202312)])
    assert rules.transfer_close_period(_row("UNEMP", start=202303), 202501) == 202412
    with pytest.raises(DomainError) as early:
        rules.transfer_close_period(_row("UNEMP", start=202303), 202303)
    assert early.value.code == "INVALID_TRANSFER_PERIOD"


# -- enrol -----------------------------------------------------------------------------------------------------------


async def test_enrol_list_and_event(start_service, clerk, auth):
    async with start_service("accounts") as accounts:
        person_id, _ = add_person(accounts)
        employer_id = add_employer(accounts)
        pension = await enrol(accounts, clerk, person_id, "PEN_EMP", employer_id, 202401)
        unemp = await enrol(accounts, clerk, person_id, "UNEMP", employer_id, 202401)
        assert (pension["status"], pension["start_period"], pension["end_period"], pension["version"]) == \
            ("active", 202401, None, 1)
        assert pension["created_by"] == "clerk.li"

        reviewer = auth("agency_reviewer", region="150100")
        listed = (await accounts.get(f"/enrolments/by-person/{person_id}", headers=reviewer)).json()
        assert {e["fund"] for e in listed["items"]} == {"PEN_EMP", "UNEMP"} and listed["next_cursor"] is None
        by_employer = (await accounts.get(f"/enrolments/by-employer/{employer_id}", params={"fund": "UNEMP"},
                                          headers=reviewer)).json()
        assert [e["id"] for e in by_employer["items"]] == [unemp["id"]]
        one = await accounts.get(f"/enrolments/{pension['id']}", headers=reviewer)
        assert one.status_code == 200 and one.json()["fund"] == "PEN_EMP"

        [opened, _] = outbox(accounts, "accounts.enrolment.enrolled.v1")
        assert (opened["enrolment_id"], opened["person_id"], opened["fund"], opened["employer_id"],
                opened["start_period"]) == (pension["id"], person_id, "PEN_EMP", employer_id, 202401)
        history = (await accounts.get(f"/enrolments/{pension['id']}/history", headers=reviewer)).json()
        assert history[0]["action"] == "open" and history[0]["changes"]["fund"] == [None, "PEN_EMP"]
        assert (await accounts.get("/audit/verify", headers=auth("internal_auditor"))).json()["ok"] is True


async def test_enrolled_twice_and_duplicate_pension_are_conflicts(start_service, clerk):
    async with start_service("accounts") as accounts:
        person_id, _ = add_person(accounts)
        employer_id = add_employer(accounts)
        await enrol(accounts, clerk, person_id, "PEN_EMP", employer_id, 202401)

        twice = await enrol(accounts, clerk, person_id, "PEN_EMP", employer_id, 202406, expect=409)
        assert error_code(twice) == "ALREADY_ENROLLED"
        gov = await enrol(accounts, clerk, person_id, "PEN_GOV", employer_id, 202406, expect=409)
        assert error_code(gov) == "DUPLICATE_PENSION"
        resident = await enrol(accounts, clerk, person_id, "PEN_RES", None, 202406, expect=409)
        assert error_code(resident) == "DUPLICATE_PENSION"
        assert len(enrolment_rows(accounts, person_id)) == 1
        assert len(outbox(accounts, "accounts.enrolment.enrolled.v1")) == 1

        # the other way round: a resident pension excludes the employee schemes
        other_id, _ = add_person(accounts, 2)
        await enrol(accounts, clerk, other_id, "PEN_RES", None, 202401)
        refused = await enrol(accounts, clerk, other_id, "PEN_EMP", employer_id, 202401, expect=409)
        assert error_code(refused) == "DUPLICATE_PENSION"
        # funds outside the pension group are independent
        await enrol(accounts, clerk, other_id, "UNEMP", employer_id, 202401)


async def test_employer_rules_and_bad_input(start_service, clerk):
    async with start_service("accounts") as accounts:
        person_id, _ = add_person(accounts)
        employer_id = add_employer(accounts)
        suspended_id = add_employer(accounts, 2)
        deregistered_id = add_employer(accounts, 3)
        set_employer_status(accounts, suspended_id, "suspended")
        set_employer_status(accounts, deregistered_id, "deregistered")

        for bad_employer in (suspended_id, deregistered_id):
            refused = await enrol(accounts, clerk, person_id, "PEN_EMP", bad_employer, 202401, expect=409)
            assert error_code(refused) == "EMPLOYER_NOT_ACTIVE"
        assert "已注销" in refused.json()["error"]["message"]

        with_employer = await enrol(accounts, clerk, person_id, "PEN_RES", employer_id, 202401, expect=422)
        assert error_code(with_employer) == "EMPLOYER_NOT_ALLOWED"
        without = await enrol(accounts, clerk, person_id, "INJURY", None, 202401, expect=422)
        assert error_code(without) == "EMPLOYER_REQUIRED"
        unknown = await enrol(accounts, clerk, person_id, "MEDICAL", employer_id, 202401, expect=422)
        assert error_code(unknown) == "UNKNOWN_FUND"
        bad_period = await enrol(accounts, clerk, person_id, "UNEMP", employer_id, 202413, expect=422)
        assert error_code(bad_period) == "INVALID_PERIOD"
        no_person = await enrol(accounts, clerk, "nobody", "UNEMP", employer_id, 202401, expect=404)
        assert error_code(no_person) == "PERSON_NOT_FOUND"
        no_employer = await enrol(accounts, clerk, person_id, "UNEMP", "nothing", 202401, expect=404)
        assert error_code(no_employer) == "EMPLOYER_NOT_FOUND"
        extra = await accounts.post("/enrolments", headers=clerk, json={
            "person_id": person_id, "fund": "UNEMP", "employer_id": employer_id, "start_period": 202401, "x": 1})
        assert extra.status_code == 422

        dead_id, _ = add_person(accounts, 2, life_status="deceased")
        dead = await enrol(accounts, clerk, dead_id, "PEN_RES", None, 202401, expect=409)
        assert error_code(dead) == "PERSON_DECEASED"

        assert enrolment_rows(accounts, person_id) == [] and enrolment_rows(accounts, dead_id) == []
        assert outbox(accounts, "accounts.enrolment.enrolled.v1") == []


async def test_region_and_role_checks(start_service, clerk, auth):
    async with start_service("accounts") as accounts:
        person_id, _ = add_person(accounts)
        employer_id = add_employer(accounts)
        elsewhere = auth("agency_clerk", region=OTHER_DISTRICT)
        refused = await enrol(accounts, elsewhere, person_id, "PEN_RES", None, 202401, expect=403)
        assert error_code(refused) == "OUT_OF_REGION"
        other_person, _ = add_person(accounts, 2, region=OTHER_DISTRICT)
        cross = await enrol(accounts, clerk, other_person, "UNEMP", employer_id, 202401, expect=403)
        assert error_code(cross) == "OUT_OF_REGION"
        accountant = auth("accountant", region=REGION)
        assert (await enrol(accounts, accountant, person_id, "PEN_RES", None, 202401, expect=403))
        created = await enrol(accounts, clerk, person_id, "PEN_RES", None, 202401)
        assert (await accounts.get(f"/enrolments/{created['id']}", headers=elsewhere)).status_code == 403
        assert (await accounts.get(f"/enrolments/by-person/{person_id}", headers=elsewhere)).status_code == 403


# -- transfer --------------------------------------------------------------------------------------------------------


async def test_transfer_closes_the_old_enrolment_the_month_before_and_opens_the_new(start_service, clerk, auth):
    async with start_service("accounts") as accounts:
        person_id, citizen_id = add_person(accounts)
        old_employer = add_employer(accounts)
        new_employer = add_employer(accounts, 2)
        first = await enrol(accounts, clerk, person_id, "PEN_EMP", old_employer, 202203)

        response = await accounts.post(f"/enrolments/{first['id']}/transfer", headers=clerk,
                                       json={"employer_id": new_employer, "start_period": 202501})
        assert response.status_code == 201, response.text
        closed, opened = response.json()["closed"], response.json()["opened"]
        assert (closed["id"], closed["status"], closed["end_period"], closed["version"]) == \
            (first["id"], "stopped", 202412, 2)
        assert (opened["status"], opened["start_period"], opened["employer_id"], opened["transferred_from"]) == \
            ("active", 202501, new_employer, first["id"])
        rows = enrolment_rows(accounts, person_id)
        assert [(r.status, r.start_period, r.end_period) for r in rows] == \
            [("stopped", 202203, 202412), ("active", 202501, None)]
        # both rows were written by the one transaction: same instant for the close and the open
        assert rows[0].updated_at == rows[1].created_at

        [event] = outbox(accounts, "accounts.enrolment.transferred.v1")
        assert (event["from_enrolment_id"], event["from_employer_id"], event["to_enrolment_id"],
                event["to_employer_id"], event["closed_period"], event["start_period"]) == \
            (first["id"], old_employer, opened["id"], new_employer, 202412, 202501)

        # verification sees continuous enrolment since the first employer
        verifier = auth("agency_reviewer", region=REGION)
        answer = (await accounts.get("/verification/enrolment", headers=verifier, params={
            "citizen_id": citizen_id, "fund": "PEN_EMP", "period": 202507})).json()
        assert (answer["enrolled"], answer["enrolment_id"], answer["since_period"], answer["employer_id"]) == \
            (True, opened["id"], 202203, new_employer)
        before = (await accounts.get("/verification/enrolment", headers=verifier, params={
            "citizen_id": citizen_id, "fund": "PEN_EMP", "period": 202412})).json()
        assert (before["enrolment_id"], before["status"], before["employer_id"]) == \
            (first["id"], "stopped", old_employer)


async def test_transfer_refusals_leave_everything_as_it_was(start_service, clerk):
    async with start_service("accounts") as accounts:
        person_id, _ = add_person(accounts)
        employer_id = add_employer(accounts)
        gone = add_employer(accounts, 2, status="deregistered")
        elsewhere = add_employer(accounts, 3)
        first = await enrol(accounts, clerk, person_id, "UNEMP", employer_id, 202403)

        async def transfer(body: dict, expect: int, code: str) -> None:
            r = await accounts.post(f"/enrolments/{first['id']}/transfer", headers=clerk, json=body)
            assert r.status_code == expect, r.text
            assert error_code(r) == code

        await transfer({"employer_id": gone, "start_period": 202501}, 409, "EMPLOYER_NOT_ACTIVE")
        await transfer({"employer_id": employer_id, "start_period": 202501}, 409, "SAME_EMPLOYER")
        await transfer({"employer_id": elsewhere, "start_period": 202403}, 422, "INVALID_TRANSFER_PERIOD")
        await transfer({"employer_id": "missing", "start_period": 202501}, 404, "EMPLOYER_NOT_FOUND")
        [row] = enrolment_rows(accounts, person_id)
        assert (row.status, row.end_period, row.version) == ("active", None, 1)
        assert outbox(accounts, "accounts.enrolment.transferred.v1") == []

        resident_id, _ = add_person(accounts, 2)
        resident = await enrol(accounts, clerk, resident_id, "PEN_RES", None, 202401)
        r = await accounts.post(f"/enrolments/{resident['id']}/transfer", headers=clerk,
                                json={"employer_id": elsewhere, "start_period": 202501})
        assert r.status_code == 409 and error_code(r) == "TRANSFER_NOT_APPLICABLE"

        await accounts.post(f"/enrolments/{first['id']}/stop", headers=clerk,
                            json={"end_period": 202412, "reason": "离职"})
        await transfer({"employer_id": elsewhere, "start_period": 202501}, 409, "ENROLMENT_NOT_ACTIVE")
        missing = await accounts.post("/enrolments/nope/transfer", headers=clerk,
                                      json={"employer_id": elsewhere, "start_period": 202501})
        assert missing.status_code == 404 and error_code(missing) == "ENROLMENT_NOT_FOUND"


# -- suspend, resume, stop -------------------------------------------------------------------------------------------


async def test_suspend_resume_stop(start_service, clerk):
    async with start_service("accounts") as accounts:
        person_id, _ = add_person(accounts)
        employer_id = add_employer(accounts)
        enrolment = await enrol(accounts, clerk, person_id, "PEN_EMP", employer_id, 202401)
        url = f"/enrolments/{enrolment['id']}"

        suspended = await accounts.post(f"{url}/suspend", headers=clerk, json={"reason": "停薪留职"})
        assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
        again = await accounts.post(f"{url}/suspend", headers=clerk, json={"reason": "x"})
        assert again.status_code == 409 and error_code(again) == "ENROLMENT_NOT_ACTIVE"
        no_reason = await accounts.post(f"{url}/suspend", headers=clerk, json={})
        assert no_reason.status_code == 422
        # a suspended enrolment still holds its place: resume it, do not enrol again
        blocked = await enrol(accounts, clerk, person_id, "PEN_RES", None, 202406, expect=409)
        assert error_code(blocked) == "DUPLICATE_PENSION" and "恢复" in blocked.json()["error"]["message"]

        # resuming at an employer that has meanwhile been suspended is refused
        set_employer_status(accounts, employer_id, "suspended")
        refused = await accounts.post(f"{url}/resume", headers=clerk)
        assert refused.status_code == 409 and error_code(refused) == "EMPLOYER_NOT_ACTIVE"
        set_employer_status(accounts, employer_id, "active")
        resumed = await accounts.post(f"{url}/resume", headers=clerk, json={"reason": "复工"})
        assert resumed.status_code == 200 and resumed.json()["status"] == "active"
        not_suspended = await accounts.post(f"{url}/resume", headers=clerk)
        assert not_suspended.status_code == 409 and error_code(not_suspended) == "ENROLMENT_NOT_SUSPENDED"

        early = await accounts.post(f"{url}/stop", headers=clerk, json={"end_period": 202312, "reason": "离职"})
        assert early.status_code == 422 and error_code(early) == "INVALID_END_PERIOD"
        stopped = await accounts.post(f"{url}/stop", headers=clerk, json={"end_period": 202406, "reason": "离职"})
        assert stopped.status_code == 200
        assert (stopped.json()["status"], stopped.json()["end_period"], stopped.json()["stop_reason"],
                stopped.json()["version"]) == ("stopped", 202406, "离职", 4)  # opened, suspended, resumed, stopped
        twice = await accounts.post(f"{url}/stop", headers=clerk, json={"end_period": 202406, "reason": "离职"})
        assert twice.status_code == 409 and error_code(twice) == "ENROLMENT_STOPPED"

        # a new pension may not cover months the stopped one covered; it may start the month after
        overlap = await enrol(accounts, clerk, person_id, "PEN_RES", None, 202406, expect=409)
        assert error_code(overlap) == "ENROLMENT_PERIOD_OVERLAP"
        await enrol(accounts, clerk, person_id, "PEN_RES", None, 202407)

        types = [e["type"].split(".")[2] for e in outbox(accounts) if e["type"].startswith("accounts.enrolment.")]
        assert types == ["enrolled", "suspended", "resumed", "stopped", "enrolled"]
        [stop_event] = outbox(accounts, "accounts.enrolment.stopped.v1")
        assert (stop_event["end_period"], stop_event["reason"]) == (202406, "离职")

        # a deceased person is not resumed
        second, _ = add_person(accounts, 2)
        unemp = await enrol(accounts, clerk, second, "UNEMP", employer_id, 202401)
        await accounts.post(f"/enrolments/{unemp['id']}/suspend", headers=clerk, json={"reason": "病休"})
        set_deceased(accounts, second)
        dead = await accounts.post(f"/enrolments/{unemp['id']}/resume", headers=clerk)
        assert dead.status_code == 409 and error_code(dead) == "PERSON_DECEASED"


async def test_the_database_index_is_the_second_line_of_defence(start_service, clerk, monkeypatch):
    """Two concurrent enrolments can both pass the rule check; the partial unique index stops the second, and the
    caller gets the same 409 the rule would have given, with nothing written."""
    async with start_service("accounts") as accounts:
        person_id, _ = add_person(accounts)
        employer_id = add_employer(accounts)
        await enrol(accounts, clerk, person_id, "PEN_EMP", employer_id, 202401)
        # Simulate the race: the rule check sees nothing open (as a concurrent transaction would).
        monkeypatch.setattr(enrolment_service.rules, "check_new_enrolment", lambda **_: None)
        twice = await enrol(accounts, clerk, person_id, "PEN_EMP", employer_id, 202401, expect=409)
        assert error_code(twice) == "ALREADY_ENROLLED"
        other = await enrol(accounts, clerk, person_id, "PEN_GOV", employer_id, 202401, expect=409)
        assert error_code(other) == "DUPLICATE_PENSION"
        assert len(enrolment_rows(accounts, person_id)) == 1
        assert len(outbox(accounts, "accounts.enrolment.enrolled.v1")) == 1


async def test_listing_pages_with_a_cursor(start_service, clerk):
    async with start_service("accounts") as accounts:
        employer_id = add_employer(accounts)
        for i in range(5):
            person_id, _ = add_person(accounts, i + 1)
            await enrol(accounts, clerk, person_id, "UNEMP", employer_id, 202401)
        page1 = (await accounts.get(f"/enrolments/by-employer/{employer_id}", params={"limit": 3},
                                    headers=clerk)).json()
        assert len(page1["items"]) == 3 and page1["next_cursor"]
        page2 = (await accounts.get(f"/enrolments/by-employer/{employer_id}",
                                    params={"limit": 3, "after": page1["next_cursor"]}, headers=clerk)).json()
        assert len(page2["items"]) == 2 and page2["next_cursor"] is None
        assert len({e["id"] for e in page1["items"] + page2["items"]}) == 5
        stopped = (await accounts.get(f"/enrolments/by-employer/{employer_id}", params={"status": "stopped"},
                                      headers=clerk)).json()
        assert stopped["items"] == []
        bad = await accounts.get(f"/enrolments/by-employer/{employer_id}", params={"status": "odd"}, headers=clerk)
        assert bad.status_code == 422


# -- online verification ---------------------------------------------------------------------------------------------


async def test_enrolment_verification_answers(start_service, clerk, auth):
    async with start_service("accounts") as accounts:
        person_id, citizen_id = add_person(accounts)
        employer_id = add_employer(accounts)
        enrolment = await enrol(accounts, clerk, person_id, "UNEMP", employer_id, 202403)
        await accounts.post(f"/enrolments/{enrolment['id']}/stop", headers=clerk,
                            json={"end_period": 202508, "reason": "劳动合同到期"})
        approver = auth("agency_approver", region="150100")

        async def ask(**params) -> dict:
            r = await accounts.get("/verification/enrolment", params=params, headers=approver)
            assert r.status_code == 200, r.text
            return r.json()

        during = await ask(citizen_id=citizen_id, fund="UNEMP", period=202508)
        assert (during["person_found"], during["enrolled"], during["enrolment_id"], during["since_period"],
                during["employer_id"], during["status"], during["life_status"], during["person_id"]) == \
            (True, True, enrolment["id"], 202403, employer_id, "stopped", "alive", person_id)
        for period in (202402, 202509):
            outside = await ask(citizen_id=citizen_id, fund="UNEMP", period=period)
            assert (outside["person_found"], outside["enrolled"], outside["enrolment_id"]) == (True, False, None)
        other_fund = await ask(citizen_id=citizen_id, fund="PEN_EMP", period=202405)
        assert other_fund["enrolled"] is False

        # an unregistered citizen id (or none at all) is simply not enrolled
        stranger = await ask(citizen_id=make_citizen_id(77), fund="UNEMP", period=202405)
        assert (stranger["person_found"], stranger["enrolled"]) == (False, False)
        assert (await ask())["enrolled"] is False

        set_deceased(accounts, person_id)
        assert (await ask(citizen_id=citizen_id, fund="UNEMP", period=202405))["life_status"] == "deceased"

        async def refused(params: dict, headers: dict = approver) -> tuple[int, str]:
            r = await accounts.get("/verification/enrolment", params=params, headers=headers)
            return r.status_code, error_code(r)

        bad_id = citizen_id[:-1] + ("0" if citizen_id[-1] != "0" else "1")
        assert await refused({"citizen_id": bad_id, "fund": "UNEMP"}) == (422, "INVALID_CITIZEN_ID")
        assert await refused({"citizen_id": citizen_id}) == (422, "FUND_REQUIRED")
        assert await refused({"citizen_id": citizen_id, "fund": "MEDICAL"}) == (422, "UNKNOWN_FUND")
        assert await refused({"citizen_id": citizen_id, "fund": "UNEMP", "period": 202500}) == (422, "INVALID_PERIOD")
        other_district = auth("agency_clerk", region=OTHER_DISTRICT)
        assert await refused({"citizen_id": citizen_id, "fund": "UNEMP"}, other_district) == (403, "OUT_OF_REGION")
        assert await refused({"citizen_id": citizen_id, "fund": "UNEMP"}, auth("accountant")) == (403, "FORBIDDEN")


async def test_contribution_months_are_counted_from_the_table(start_service, auth):
    async with start_service("accounts") as accounts:
        person_id, citizen_id = add_person(accounts)
        with Session(engine_of(accounts)) as session:
            for period in (202311, 202312, 202401, 202402, 202405):
                session.add(ContributionMonth(person_id=person_id, fund="PEN_EMP", period=period, source="import",
                                              recorded_at=clock.utc_now()))
            session.add(ContributionMonth(person_id=person_id, fund="UNEMP", period=202401, source="import",
                                          recorded_at=clock.utc_now()))
            session.commit()
        clerk = auth("agency_clerk", region=REGION)

        async def months(**params) -> dict:
            r = await accounts.get("/verification/contribution-months", params=params, headers=clerk)
            assert r.status_code == 200, r.text
            return r.json()

        everything = await months(citizen_id=citizen_id, fund="PEN_EMP")
        assert (everything["months"], everything["first_period"], everything["last_period"]) == (5, 202311, 202405)
        until = await months(citizen_id=citizen_id, fund="PEN_EMP", until=202401)
        assert (until["months"], until["first_period"], until["last_period"], until["until"]) == \
            (3, 202311, 202401, 202401)
        assert (await months(citizen_id=citizen_id, fund="UNEMP"))["months"] == 1
        none = await months(citizen_id=citizen_id, fund="INJURY")
        assert (none["months"], none["first_period"], none["last_period"]) == (0, None, None)
        stranger = await months(citizen_id=make_citizen_id(55), fund="PEN_EMP")
        assert (stranger["person_found"], stranger["months"]) == (False, 0)

        # a posting credits the account and records its month once, however many postings the month has
        accountant = auth("accountant", region=REGION)
        for key, amount in (("c-202406-a", "100.00"), ("c-202406-b", "20.00")):
            r = await accounts.post(f"/individual-accounts/{person_id}/contributions", headers={
                **accountant, "Idempotency-Key": key}, json={"amount": amount, "period": 202406, "fund": "PEN_EMP"})
            assert r.status_code == 201, r.text
        assert (await months(citizen_id=citizen_id, fund="PEN_EMP"))["months"] == 6
        with Session(engine_of(accounts)) as session:
            assert session.execute(select(func.count()).select_from(ContributionMonth).where(
                ContributionMonth.period == 202406)).scalar_one() == 1
        bad = await accounts.get("/verification/contribution-months", headers=clerk,
                                 params={"citizen_id": citizen_id, "fund": "PEN_EMP", "until": 202413})
        assert bad.status_code == 422 and error_code(bad) == "INVALID_PERIOD"


async def test_concurrent_enrolments_leave_one(start_service, clerk):
    """Parallel requests (worker threads; truly concurrent transactions on PostgreSQL): one enrolment, the others
    get the rule's 409 whether the rule check or the unique index stopped them."""
    import asyncio  # noqa: PLC0415

    async with start_service("accounts") as accounts:
        person_id, _ = add_person(accounts)
        employer_id = add_employer(accounts)
        funds = ["PEN_EMP", "PEN_EMP", "PEN_GOV", "PEN_EMP", "PEN_GOV", "PEN_EMP"]
        responses = await asyncio.gather(*[
            accounts.post("/enrolments", headers=clerk, json={"person_id": person_id, "fund": fund,
                                                              "employer_id": employer_id, "start_period": 202401})
            for fund in funds
        ])
        assert sorted(r.status_code for r in responses) == [201] + [409] * 5
        assert {error_code(r) for r in responses if r.status_code == 409} <= {"ALREADY_ENROLLED", "DUPLICATE_PENSION"}
        assert len(enrolment_rows(accounts, person_id)) == 1
        assert len(outbox(accounts, "accounts.enrolment.enrolled.v1")) == 1
