"""Eligibility upkeep: a death or an imprisonment reported by a partner department suspends every active
benefit of the person at once and turns what was already paid for later months into overpayments with a recovery
notice (001 第二十七条、第二十九条(四)); a release resumes; the yearly survival cycle notifies, suspends and a
certification resumes (001 第二十六条)."""

from datetime import date, timedelta

from sqlalchemy import select
from sqlmodel import Session

from services.benefits.models import (
    BeneficiaryPerson,
    Entitlement,
    Overpayment,
    RecoveryNotice,
    SurvivalCertification,
    SurvivalNotice,
)
from services.kernel import clock
from services.kernel.events import new_event_id
from services.kernel.models import InboxMessage
from services.kernel.periods import add_months, period_of
from tests.support.registry import engine_of, error_code
from tests.support.exchange import partner_headers, upload
from tests.support.benefits_mirror import (
    REGION, add_person, apply, events, get, grant, life, payroll_line, rows, wait_for,
)
from tests.support.exchange import citizen_id as make_citizen_id
from tests.support.benefits import day_in

TODAY = clock.china_today()


def status_of(client, entitlement_id: str) -> tuple[str, str | None]:  # noqa: ANN001
    e = get(client, Entitlement, entitlement_id)
    return e.status, e.suspended_reason


def applied(client, *event_types: str) -> bool:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        seen = list(session.execute(select(InboxMessage.event_type)).scalars())
    return all(t in seen for t in event_types)


async def register(accounts, clerk, serial: int, name: str) -> str:  # noqa: ANN001
    response = await accounts.post("/persons", json={"citizen_id": make_citizen_id(serial), "name": name,
                                                     "region": REGION}, headers=clerk)
    assert response.status_code == 201, response.text
    return response.json()["id"]


# -- death (through accounts' exchange feed, real events) ------------------------------------------------------------


async def test_a_death_suspends_at_once_and_lines_paid_after_the_death_month_become_a_recovery_notice(
        start_service, settings, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    async with start_service("accounts") as accounts, start_service("benefits") as benefits:
        person_id = await register(accounts, clerk, 21, "赵大海")
        await wait_for(lambda: get(benefits, BeneficiaryPerson, person_id))
        pension = grant(benefits, person_id, monthly_fen=312_345)
        other = grant(benefits, person_id, kind="injury", fund="INJURY", monthly_fen=100_000)
        one_off = grant(benefits, person_id, kind="one_off", fund="PEN_EMP", monthly_fen=0, one_off_fen=2_000_000)
        death_month = add_months(period_of(TODAY), -4)
        death = day_in(death_month, 10)
        same_month = payroll_line(benefits, pension, death_month, amount_fen=312_345)  # payable: alive that month
        after = payroll_line(benefits, pension, add_months(death_month, 1), amount_fen=312_345)
        in_file = payroll_line(benefits, pension, add_months(death_month, 2), status="in_file", amount_fen=312_345)
        pending = payroll_line(benefits, pension, add_months(death_month, 3), status="pending", amount_fen=312_345)
        failed = payroll_line(benefits, other, add_months(death_month, 1), status="failed", amount_fen=100_000)
        injury_paid = payroll_line(benefits, other, add_months(death_month, 2), amount_fen=100_000)
        payroll_line(benefits, one_off, add_months(death_month, 1), amount_fen=2_000_000)  # a death benefit

        reported = await upload(accounts, partner_headers(settings), "death", [
            {"record_id": "D-7", "citizen_id": make_citizen_id(21), "name": "赵大海", "death_date": death.isoformat()}])
        assert reported.status_code == 201 and reported.json()["applied"] == 1, reported.text

        await wait_for(lambda: applied(benefits, "exchange.person.died.v1", "accounts.person.life_status_changed.v1"))
        assert status_of(benefits, pension) == ("suspended", "deceased")
        assert status_of(benefits, other) == ("suspended", "deceased")
        overpaid = {o.payroll_line_id: o for o in rows(benefits, Overpayment)}
        assert set(overpaid) == {after, in_file, injury_paid}
        assert {o.reason for o in overpaid.values()} == {"paid_after_death"}
        assert same_month not in overpaid and pending not in overpaid and failed not in overpaid
        [notice] = rows(benefits, RecoveryNotice)
        assert (notice.person_id, notice.amount_fen, notice.recovered_fen, notice.status, notice.issued_by) == (
            person_id, 2 * 312_345 + 100_000, 0, "open", "system:benefits")
        assert notice.deadline == TODAY + timedelta(days=30)
        assert {o.recovery_notice_id for o in overpaid.values()} == {notice.id}

        # one suspension per entitlement, one finding per line, one notice, although two events reported the death
        assert sorted(e["entitlement_id"] for e in events(benefits, "benefits.entitlement.suspended.v1")) == sorted(
            [pension, other, one_off])
        found = events(benefits, "benefits.overpayment.found.v1")
        assert sorted((f["payroll_line_id"], f["amount_fen"]) for f in found) == sorted(
            [(after, 312_345), (in_file, 312_345), (injury_paid, 100_000)])
        [issued] = events(benefits, "benefits.recovery.notice_issued.v1")
        assert (issued["notice_id"], issued["amount_fen"], sorted(issued["overpayment_ids"])) == (
            notice.id, 724_690, sorted(o.id for o in overpaid.values()))

        reader = auth("agency_reviewer", region=REGION)
        status = (await benefits.get(f"/eligibility/persons/{person_id}", headers=reader)).json()
        assert (status["life_status"], status["death_date"]) == ("deceased", death.isoformat())
        assert {(e["id"], e["status"]) for e in status["entitlements"]} >= {(pension, "suspended")}
        detail = (await benefits.get(f"/recovery/notices/{notice.id}", headers=reader)).json()
        assert (detail["amount"], detail["remaining"], len(detail["overpayments"])) == ("7246.90", "7246.90", 3)
        # a dead person cannot be certified alive
        refused = await benefits.post("/eligibility/survival-certifications", headers=clerk, json={
            "person_id": person_id, "channel": "face", "certified_on": TODAY.isoformat()})
        assert refused.status_code == 409 and error_code(refused) == "PERSON_DECEASED"
        assert (await benefits.get("/admin/dead-letters", headers=auth("it_admin"))).json() == []


# -- imprisonment and release ----------------------------------------------------------------------------------------


async def test_imprisonment_suspends_and_finds_lines_paid_inside_it_and_release_resumes(start_service, settings, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    async with start_service("accounts") as accounts, start_service("benefits") as benefits:
        person_id = await register(accounts, clerk, 31, "周杰")
        await wait_for(lambda: get(benefits, BeneficiaryPerson, person_id))
        pension = grant(benefits, person_id)
        overdue = grant(benefits, person_id, kind="injury", fund="INJURY", status="suspended",
                        suspended_reason="survival_overdue")
        start = add_months(period_of(TODAY), -4)
        first_month = payroll_line(benefits, pension, start)  # payable: the month the sentence began
        inside = [payroll_line(benefits, pension, add_months(start, n)) for n in (1, 2)]
        pending = payroll_line(benefits, pension, add_months(start, 3), status="pending")

        partner = partner_headers(settings, "partner.sfj")
        jailed = await upload(accounts, partner, "imprisonment", [
            {"record_id": "a1", "citizen_id": make_citizen_id(31), "name": "周杰",
             "imprisoned_from": day_in(start, 5).isoformat()}], batch_key="SF-1")
        assert jailed.json()["applied"] == 1, jailed.text
        await wait_for(lambda: applied(benefits, "exchange.person.imprisoned.v1"))
        await wait_for(lambda: status_of(benefits, pension) == ("suspended", "imprisoned"))
        assert status_of(benefits, overdue) == ("suspended", "survival_overdue")  # stays as it was
        overpaid = {o.payroll_line_id: o.reason for o in rows(benefits, Overpayment)}
        assert overpaid == {inside[0]: "paid_during_imprisonment", inside[1]: "paid_during_imprisonment"}
        assert first_month not in overpaid and pending not in overpaid
        [notice] = rows(benefits, RecoveryNotice)
        assert notice.amount_fen == 600_000

        released = await upload(accounts, partner, "release", [
            {"record_id": "r1", "citizen_id": make_citizen_id(31), "name": "周杰", "released_on": TODAY.isoformat()}],
            batch_key="SF-2")
        assert released.json()["applied"] == 1, released.text
        await wait_for(lambda: status_of(benefits, pension) == ("active", None))
        await wait_for(lambda: applied(benefits, "exchange.person.released.v1"))
        assert status_of(benefits, overdue) == ("suspended", "survival_overdue")  # only a certification resumes it
        [resumed] = events(benefits, "benefits.entitlement.resumed.v1")
        assert (resumed["entitlement_id"], resumed["reason"]) == (pension, "released")
        person = get(benefits, BeneficiaryPerson, person_id)
        assert (person.life_status, person.imprisoned_from, person.imprisoned_until) == (
            "alive", day_in(start, 5), TODAY)
        assert len(rows(benefits, Overpayment)) == 2 and len(rows(benefits, RecoveryNotice)) == 1  # nothing twice
        assert (await benefits.get("/admin/dead-letters", headers=auth("it_admin"))).json() == []


async def test_a_correction_back_to_alive_resumes_and_effects_apply_once(start_service):
    async with start_service("benefits") as benefits:
        person_id = add_person(benefits, 41)
        pension = grant(benefits, person_id)
        line = payroll_line(benefits, pension, add_months(period_of(TODAY), -1))
        died = life(person_id, "deceased", death_date=day_in(add_months(period_of(TODAY), -2), 3))
        apply(benefits, died)
        apply(benefits, died)  # applied twice (the inbox would stop it; the handler is idempotent too)
        assert status_of(benefits, pension) == ("suspended", "deceased")
        assert [o.payroll_line_id for o in rows(benefits, Overpayment)] == [line]
        assert len(rows(benefits, RecoveryNotice)) == 1
        assert len(events(benefits, "benefits.entitlement.suspended.v1")) == 1
        apply(benefits, life(person_id, "alive", "deceased"))  # an approved correction: the death was wrong
        assert status_of(benefits, pension) == ("active", None)
        assert [e["reason"] for e in events(benefits, "benefits.entitlement.resumed.v1")] == ["life_status_corrected"]


# -- survival certification ------------------------------------------------------------------------------------------


def certify_directly(client, person_id: str, on: date, channel: str = "app") -> None:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        session.add(SurvivalCertification(id=new_event_id(), person_id=person_id, channel=channel,
                                          certified_on=on, recorded_at=clock.utc_now(), recorded_by="test"))
        session.commit()


async def test_survival_overdue_notice_then_suspension_then_certification_resumes(start_service, settings, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    long_ago = clock.utc_now() - timedelta(days=800)
    async with start_service("benefits") as benefits:
        never = add_person(benefits, 51, name="从未认证")
        stale = add_person(benefits, 52, name="认证过期")
        recent = add_person(benefits, 53, name="近期认证")
        new = add_person(benefits, 54, name="新领待遇")
        paused = add_person(benefits, 55, name="已暂停")
        dead = add_person(benefits, 56, name="已死亡", life_status="deceased", death_date=TODAY - timedelta(days=5))
        other_area = add_person(benefits, 57, name="外区", region="150103")
        entitlements = {p: grant(benefits, p, created_at=long_ago) for p in (never, stale, recent, other_area)}
        entitlements[new] = grant(benefits, new, created_at=clock.utc_now() - timedelta(days=30))
        grant(benefits, paused, created_at=long_ago, status="suspended", suspended_reason="manual")
        certify_directly(benefits, stale, TODAY - timedelta(days=460))
        certify_directly(benefits, recent, TODAY - timedelta(days=90))

        first_day = TODAY - timedelta(days=40)
        sweep = await benefits.post("/eligibility/survival-sweeps", json={"as_of": first_day.isoformat()},
                                    headers=clerk)
        assert sweep.status_code == 200, sweep.text
        assert (sweep.json()["notices_issued"], sweep.json()["notices_expired"]) == (2, 0)
        notices = {n.person_id: n for n in rows(benefits, SurvivalNotice)}
        assert set(notices) == {never, stale}  # not the recent, the new, the paused, the dead, another district
        assert {(n.issued_on, n.respond_by, n.status) for n in notices.values()} == {
            (first_day, first_day + timedelta(days=30), "open")}
        again = (await benefits.post("/eligibility/survival-sweeps", json={"as_of": first_day.isoformat()},
                                     headers=clerk)).json()
        assert (again["notices_issued"], again["notices_expired"]) == (0, 0)
        listed = (await benefits.get("/eligibility/survival-notices", params={"status": "open"},
                                     headers=auth("agency_reviewer", region=REGION))).json()
        assert {n["person_id"] for n in listed["items"]} == {never, stale}

        # the response time runs out: both suspended
        today = (await benefits.post("/eligibility/survival-sweeps", json={"as_of": TODAY.isoformat()},
                                     headers=clerk)).json()
        assert (today["notices_expired"], today["entitlements_suspended"], today["notices_issued"]) == (2, 2, 0)
        assert status_of(benefits, entitlements[never]) == ("suspended", "survival_overdue")
        assert status_of(benefits, entitlements[stale]) == ("suspended", "survival_overdue")
        assert status_of(benefits, entitlements[recent]) == ("active", None)
        suspended = events(benefits, "benefits.entitlement.suspended.v1")
        assert {(s["person_id"], s["reason"]) for s in suspended} == {(never, "survival_overdue"),
                                                                       (stale, "survival_overdue")}
        assert {n.status for n in rows(benefits, SurvivalNotice)} == {"suspended"}

        # a face certification at the counter resumes
        certified = await benefits.post("/eligibility/survival-certifications", headers=clerk, json={
            "person_id": never, "channel": "face", "certified_on": TODAY.isoformat()})
        assert certified.status_code == 201, certified.text
        body = certified.json()
        assert (body["created"], body["notices_closed"], body["resumed_entitlement_ids"]) == (
            True, 1, [entitlements[never]])
        assert status_of(benefits, entitlements[never]) == ("active", None)
        repeat = await benefits.post("/eligibility/survival-certifications", headers=clerk, json={
            "person_id": never, "channel": "face", "certified_on": TODAY.isoformat()})
        assert repeat.status_code == 200 and repeat.json()["created"] is False
        assert [(r["entitlement_id"], r["reason"]) for r in events(benefits, "benefits.entitlement.resumed.v1")] == [
            (entitlements[never], "survival_certified")]
        [event] = events(benefits, "benefits.survival.certified.v1")
        assert (event["person_id"], event["channel"], event["certified_on"]) == (never, "face", TODAY.isoformat())

        # a partner's data match resumes the other; its problems are listed line by line
        partner = partner_headers(settings, "partner.wjw")
        batch = await benefits.post("/eligibility/survival-certifications/batches", headers=partner, json={
            "batch_key": "WJW-1", "records": [
                {"citizen_id": make_citizen_id(52), "certified_on": TODAY.isoformat()},
                {"citizen_id": make_citizen_id(52), "certified_on": TODAY.isoformat()},
                {"citizen_id": make_citizen_id(900), "certified_on": TODAY.isoformat()},
                {"citizen_id": "110105199001011234", "certified_on": TODAY.isoformat()},
                {"citizen_id": make_citizen_id(56), "certified_on": TODAY.isoformat()},
                {"citizen_id": make_citizen_id(53), "certified_on": (TODAY + timedelta(days=2)).isoformat()}]})
        assert batch.status_code == 201, batch.text
        result = batch.json()
        assert (result["total"], result["recorded"], result["duplicates"], result["unmatched"], result["conflicts"],
                result["invalid"]) == (6, 1, 1, 1, 1, 2)
        assert [(p["line_no"], p["status"], p["code"]) for p in result["problems"]] == [
            (2, "duplicate", None), (3, "unmatched", "PERSON_NOT_FOUND"), (4, "invalid", "INVALID_CITIZEN_ID"),
            (5, "conflict", "PERSON_DECEASED"), (6, "invalid", "DATE_IN_FUTURE")]
        assert status_of(benefits, entitlements[stale]) == ("active", None)
        [matched] = rows(benefits, SurvivalCertification, SurvivalCertification.person_id == stale,
                         SurvivalCertification.channel == "data_match")
        assert matched.recorded_by == "partner.wjw"

        # who may record what
        not_match = await benefits.post("/eligibility/survival-certifications", headers=partner, json={
            "person_id": recent, "channel": "app", "certified_on": TODAY.isoformat()})
        assert not_match.status_code == 403 and error_code(not_match) == "CHANNEL_NOT_ALLOWED"
        elsewhere = await benefits.post("/eligibility/survival-certifications", headers=clerk, json={
            "person_id": other_area, "channel": "on_site", "certified_on": TODAY.isoformat()})
        assert elsewhere.status_code == 403 and error_code(elsewhere) == "OUT_OF_REGION"
        future = await benefits.post("/eligibility/survival-certifications", headers=clerk, json={
            "person_id": recent, "channel": "app", "certified_on": (TODAY + timedelta(days=1)).isoformat()})
        assert future.status_code == 422 and error_code(future) == "DATE_IN_FUTURE"
        future_sweep = await benefits.post("/eligibility/survival-sweeps", headers=clerk,
                                           json={"as_of": (TODAY + timedelta(days=1)).isoformat()})
        assert future_sweep.status_code == 422

        status = (await benefits.get(f"/eligibility/persons/{never}", headers=clerk)).json()
        assert (status["last_certified_on"], status["open_notice"]) == (TODAY.isoformat(), None)
        history = (await benefits.get(f"/eligibility/persons/{stale}/survival-certifications", headers=clerk)).json()
        assert [(c["channel"], c["certified_on"]) for c in history] == [
            ("data_match", TODAY.isoformat()), ("app", (TODAY - timedelta(days=460)).isoformat())]
        # a certified person is not notified again; the other district's clerk sweeps only that district
        later = (await benefits.post("/eligibility/survival-sweeps", json={"as_of": TODAY.isoformat()},
                                     headers=clerk)).json()
        assert later["notices_issued"] == 0
        theirs = (await benefits.post("/eligibility/survival-sweeps", json={"as_of": TODAY.isoformat()},
                                      headers=auth("agency_clerk", region="150103"))).json()
        assert theirs["notices_issued"] == 1
        assert get(benefits, SurvivalNotice, theirs["notice_ids"][0]).person_id == other_area
        assert rows(benefits, SurvivalNotice, SurvivalNotice.person_id == dead) == []
