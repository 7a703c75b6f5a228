"""Collection's registry mirror: kept from the ACCOUNTS stream, idempotent, every accounts type handled
or ignored; through real events end to end, and handler by handler."""

import asyncio
from datetime import date

import pytest
from sqlalchemy import select
from sqlmodel import Session

from services.collection.models import RegistryEmployer, RegistryEnrolment, RegistryPerson
from services.collection.registry import handlers
from services.collection.registry.schemas import RegistryEnrolmentOut, RegistryEnrolmentPage
from services.contracts import accounts as ae
from services.kernel import clock, context
from services.kernel.events import EVENT_TYPES, EventActor, EventEnvelope, EventPayload, build_envelope
from tests.support.registry import engine_of, error_code, make_citizen_id, make_uscc
from tests.support.collection import REGION


async def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05):  # noqa: ANN001, ANN201
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def rows(client, model):  # noqa: ANN001, ANN201
    with Session(engine_of(client), expire_on_commit=False) as session:
        return list(session.execute(select(model)).scalars())


# -- end to end: accounts API → ACCOUNTS stream → collection's tables -------------------------------------------------


async def test_registrations_through_the_accounts_api_reach_collections_registry(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    async with start_service("accounts") as accounts, start_service("collection") as collection:
        employers = []
        for serial in (1, 2):
            r = await accounts.post("/employers", json={"uscc": make_uscc(serial), "name": f"单位{serial}",
                                                        "region": REGION, "industry_risk_class": 4}, headers=clerk)
            assert r.status_code == 201, r.text
            employers.append(r.json()["id"])
        person = await accounts.post("/persons", json={"citizen_id": make_citizen_id(7), "name": "张三",
                                                       "region": REGION}, headers=clerk)
        assert person.status_code == 201, person.text
        person_id = person.json()["id"]
        enrolments = {}
        for fund in ("PEN_EMP", "UNEMP"):
            r = await accounts.post("/enrolments", json={"person_id": person_id, "fund": fund,
                                                         "employer_id": employers[0], "start_period": 202401},
                                    headers=clerk)
            assert r.status_code == 201, r.text
            enrolments[fund] = r.json()["id"]

        def mirrored():  # noqa: ANN202
            found = {e.enrolment_id for e in rows(collection, RegistryEnrolment)}
            return set(enrolments.values()) <= found

        await wait_for(mirrored)
        [mirrored_person] = rows(collection, RegistryPerson)
        assert (mirrored_person.person_id, mirrored_person.name, mirrored_person.life_status) == (
            person_id, "张三", "alive")
        by_id = {e.employer_id: e for e in rows(collection, RegistryEmployer)}
        assert by_id[employers[0]].industry_risk_class == 4 and by_id[employers[0]].status == "active"

        # a transfer, a suspension, an employer update and a deregistration follow
        moved = await accounts.post(f"/enrolments/{enrolments['PEN_EMP']}/transfer",
                                    json={"employer_id": employers[1], "start_period": 202407}, headers=clerk)
        assert moved.status_code == 201, moved.text
        new_pension = moved.json()["opened"]["id"]
        suspended = await accounts.post(f"/enrolments/{enrolments['UNEMP']}/suspend", json={"reason": "停薪留职"},
                                        headers=clerk)
        assert suspended.status_code == 200, suspended.text
        renamed = await accounts.patch(f"/employers/{employers[0]}", json={"name": "单位一（更名）",
                                                                          "industry_risk_class": 6}, headers=clerk)
        assert renamed.status_code == 200, renamed.text
        stopped = await accounts.post(f"/enrolments/{enrolments['UNEMP']}/stop",
                                      json={"end_period": 202406, "reason": "离职"}, headers=clerk)
        assert stopped.status_code == 200, stopped.text
        gone = await accounts.post(f"/employers/{employers[0]}/deregister", json={"reason": "歇业"}, headers=clerk)
        assert gone.status_code == 200, gone.text

        def settled():  # noqa: ANN202
            employer = {e.employer_id: e for e in rows(collection, RegistryEmployer)}[employers[0]]
            return employer.status == "deregistered" and employer

        employer = await wait_for(settled)
        assert (employer.name, employer.industry_risk_class) == ("单位一（更名）", 6)
        state = {e.enrolment_id: e for e in rows(collection, RegistryEnrolment)}
        old_pension = state[enrolments["PEN_EMP"]]
        assert (old_pension.status, old_pension.end_period) == ("stopped", 202406)
        assert (state[new_pension].employer_id, state[new_pension].start_period, state[new_pension].status) == (
            employers[1], 202407, "active")
        assert (state[enrolments["UNEMP"]].status, state[enrolments["UNEMP"]].end_period) == ("stopped", 202406)

        # the read endpoints, for agency roles in the area
        reader = auth("agency_reviewer", region=REGION)
        got = await collection.get(f"/registry/employers/{employers[1]}", headers=reader)
        assert got.status_code == 200 and got.json()["uscc"] == make_uscc(2)
        listed = (await collection.get(f"/registry/employers/{employers[1]}/enrolments", headers=reader)).json()
        assert [(e["fund"], e["name"], e["citizen_id"]) for e in listed["items"]] == [
            ("PEN_EMP", "张三", make_citizen_id(7))]
        masked = (await collection.get(f"/registry/employers/{employers[1]}/enrolments",
                                       headers=auth("accountant", region=REGION))).json()
        assert "*" in masked["items"][0]["citizen_id"]
        whole = (await collection.get(f"/registry/employers/{employers[0]}/enrolments", headers=reader)).json()
        paged, after = [], None
        while True:
            page = (await collection.get(f"/registry/employers/{employers[0]}/enrolments", headers=reader,
                                         params={"limit": 1, **({"after": after} if after else {})})).json()
            paged, after = paged + page["items"], page["next_cursor"]
            if after is None:
                break
        assert len(whole["items"]) >= 2 and whole["next_cursor"] is None and paged == whole["items"]
        # the page written directly is the model's JSON, the citizen id shown or masked for each role
        citizen_of = {p.person_id: p.citizen_id for p in rows(collection, RegistryPerson)}
        for role in ("agency_reviewer", "accountant"):
            for limit in (1, 100):
                raw = await collection.get(f"/registry/employers/{employers[0]}/enrolments", headers=auth(
                    role, region=REGION), params={"limit": limit})
                body = raw.json()
                with context.trace(actor=context.Actor(id="t", role=role, region=REGION)):
                    model = RegistryEnrolmentPage(next_cursor=body["next_cursor"], items=[
                        RegistryEnrolmentOut(**{**item, "citizen_id": citizen_of.get(item["person_id"])})
                        for item in body["items"]])
                    assert raw.content == model.model_dump_json().encode()
        elsewhere = await collection.get(f"/registry/employers/{employers[1]}", headers=auth("agency_clerk",
                                                                                              region="150103"))
        assert elsewhere.status_code == 403 and error_code(elsewhere) == "OUT_OF_REGION"
        assert (await collection.get("/admin/dead-letters", headers=auth("it_admin"))).json() == []


# -- handler by handler ----------------------------------------------------------------------------------------------


def envelope(payload: EventPayload) -> EventEnvelope:
    return build_envelope(payload, source="accounts", subject="test", actor=EventActor(id="clerk", role="agency_clerk"),
                          correlation_id=None, causation_id=None)


def apply(client, *envelopes: EventEnvelope) -> None:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        for env in envelopes:
            handlers.HANDLERS[env.type](session, env)
        session.commit()


def test_every_accounts_event_type_is_handled_or_deliberately_ignored():
    accounts_types = {t for t in EVENT_TYPES if t.startswith("accounts.")}
    assert accounts_types == set(handlers.HANDLERS) | set(handlers.IGNORED)
    assert not set(handlers.HANDLERS) & set(handlers.IGNORED)
    assert handlers.ACCOUNTS_CONSUMER.stream == "ACCOUNTS"


async def test_handlers_merge_by_id_skip_stale_events_and_wait_for_missing_entities(start_service):
    now = clock.utc_now()
    async with start_service("collection") as collection:
        registered = envelope(ae.EmployerRegistered(employer_id="e1", uscc=make_uscc(1), name="甲", region=REGION,
                                                    registered_at=now, industry_risk_class=2))
        updated = envelope(ae.EmployerUpdated(employer_id="e1", version=2, changes={"name": ["甲", "甲二"]}))
        apply(collection, registered, updated)
        apply(collection, registered)  # a replay of the older registration does not undo the update
        [employer] = rows(collection, RegistryEmployer)
        assert (employer.name, employer.industry_risk_class, employer.source_event_id) == ("甲二", 2, updated.id)

        imported = envelope(ae.EmployersImported(import_job_id="j", employers=[
            ae.ImportedEmployer(employer_id=f"i{n}", uscc=make_uscc(100 + n), name=f"导入{n}", region=REGION,
                                unit_type="enterprise", industry_risk_class=1) for n in range(1000)]))
        apply(collection, imported, imported)  # twice: merged, not inserted twice
        assert len(rows(collection, RegistryEmployer)) == 1001

        status = envelope(ae.EmployerStatusChanged(employer_id="i7", uscc=make_uscc(107), status="suspended",
                                                   previous_status="active", effective_date=clock.china_today(), reason="x"))
        apply(collection, status)
        assert {e.employer_id: e.status for e in rows(collection, RegistryEmployer)}["i7"] == "suspended"

        # persons: registration, import, update, life status
        person = envelope(ae.PersonRegistered(person_id="p1", citizen_id=make_citizen_id(1), name="李四", sex="M",
                                              birth_date=date(1985, 6, 15), region=REGION, household_type="urban",
                                              registered_at=now))
        persons = envelope(ae.PersonsImported(import_job_id="j", persons=[
            ae.ImportedPerson(person_id="p2", citizen_id=make_citizen_id(2), name="王五", sex="M",
                              birth_date=date(1985, 6, 15), region=REGION, household_type="rural")]))
        died = envelope(ae.PersonLifeStatusChanged(person_id="p2", citizen_id=make_citizen_id(2), life_status="deceased",
                                                   previous_status="alive", death_date=date(2025, 3, 1),
                                                   source="exchange", source_ref="r1"))
        renamed = envelope(ae.PersonUpdated(person_id="p1", version=2, changes={"name": ["李四", "李肆"],
                                                                               "phone": [None, "13800138000"]}))
        apply(collection, person, persons, died, renamed)
        by_person = {p.person_id: p for p in rows(collection, RegistryPerson)}
        assert (by_person["p1"].name, by_person["p2"].life_status) == ("李肆", "deceased")

        # enrolments: opened, imported, transferred, suspended, resumed, stopped
        opened = envelope(ae.EnrolmentOpened(enrolment_id="n1", person_id="p1", fund="PEN_EMP", employer_id="e1",
                                             start_period=202401))
        batch = envelope(ae.EnrolmentsImported(import_job_id="j", enrolments=[
            ae.ImportedEnrolment(enrolment_id="n2", person_id="p1", fund="UNEMP", employer_id="e1",
                                 start_period=202001, end_period=None, status="active"),
            ae.ImportedEnrolment(enrolment_id="n3", person_id="p2", fund="PEN_EMP", employer_id="e1",
                                 start_period=201501, end_period=202012, status="stopped")]))
        transferred = envelope(ae.EnrolmentTransferred(person_id="p1", fund="PEN_EMP", from_enrolment_id="n1",
                                                       from_employer_id="e1", to_enrolment_id="n4", to_employer_id="i1",
                                                       closed_period=202406, start_period=202407))
        suspended = envelope(ae.EnrolmentSuspended(enrolment_id="n2", person_id="p1", fund="UNEMP", reason="x"))
        resumed = envelope(ae.EnrolmentResumed(enrolment_id="n2", person_id="p1", fund="UNEMP"))
        apply(collection, opened, batch, transferred, suspended)
        state = {e.enrolment_id: e for e in rows(collection, RegistryEnrolment)}
        assert (state["n1"].status, state["n1"].end_period) == ("stopped", 202406)
        assert (state["n4"].employer_id, state["n4"].start_period, state["n4"].status) == ("i1", 202407, "active")
        assert (state["n2"].status, state["n3"].status, state["n3"].end_period) == ("suspended", "stopped", 202012)
        apply(collection, resumed)
        apply(collection, suspended)  # stale: older than the resume that already applied
        stopped = envelope(ae.EnrolmentStopped(enrolment_id="n2", person_id="p1", fund="UNEMP", end_period=202412,
                                               reason="离职"))
        apply(collection, stopped)
        n2 = {e.enrolment_id: e for e in rows(collection, RegistryEnrolment)}["n2"]
        assert (n2.status, n2.end_period) == ("stopped", 202412)

        # an event about an entity not mirrored yet waits (the consumer retries it, then dead-letters it)
        for early in (ae.EmployerUpdated(employer_id="ghost", version=2, changes={"name": ["a", "b"]}),
                      ae.EnrolmentStopped(enrolment_id="ghost", person_id="p", fund="UNEMP", end_period=202401,
                                          reason="x"),
                      ae.PersonUpdated(person_id="ghost", version=2, changes={})):
            with pytest.raises(handlers.MirrorGap):
                apply(collection, envelope(early))
