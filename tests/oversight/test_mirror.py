"""Oversight's mirror: every accounts.* and exchange.* event lands in oversight's own tables, idempotently and
tolerant of order, and officers read it under /mirror. The end-to-end test runs accounts and oversight on a real
nats-server; the handler tests feed envelopes straight into the handlers (twice, late, out of order)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from services.contracts import accounts as ev
from services.kernel.db import make_engine
from services.kernel.events import EventActor, EventPayload, build_envelope
from services.kernel.migrations import upgrade_database
from services.oversight import models
from services.oversight.mirror.handlers import ACCOUNTS_HANDLERS, EXCHANGE_HANDLERS
from services.oversight.models import (
    MirroredAccountEntry,
    MirroredAccountYear,
    MirroredAgencyLine,
    MirroredBankAccount,
    MirroredBusinessRegistration,
    MirroredDuplicateEnrolment,
    MirroredEmployer,
    MirroredEnrolment,
    MirroredLifeEvent,
    MirroredPerson,
)
from tests.support.exchange import citizen_id, make_uscc, partner_headers, upload
from tests.support.e2e import wait_for

REGION = "150102"
T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


# -- end to end ------------------------------------------------------------------------------------------------------


async def test_registry_and_partner_data_reach_the_oversight_mirror(start_service, settings, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.zhang")
    officer = auth("oversight_officer", subject="officer.wang")
    partner = partner_headers(settings)
    async with start_service("accounts") as accounts, start_service("oversight") as oversight:
        assert {"ACCOUNTS", "EXCHANGE"} <= set(oversight.app.state.consumers)  # other packages add theirs
        employer = (await accounts.post("/employers", headers=clerk, json={
            "uscc": make_uscc(1), "name": "呼和浩特市甲有限公司", "region": REGION})).json()
        persons = {}
        for serial, name in ((1, "王建国"), (2, "李秀英"), (3, "赵大海")):
            r = await accounts.post("/persons", headers=clerk,
                                    json={"citizen_id": citizen_id(serial), "name": name, "region": REGION})
            assert r.status_code == 201, r.text
            persons[serial] = r.json()
        wang, li = persons[1], persons[2]
        enrolment = await accounts.post("/enrolments", headers=clerk, json={
            "person_id": wang["id"], "fund": "PEN_EMP", "employer_id": employer["id"], "start_period": 202401})
        assert enrolment.status_code == 201, enrolment.text
        credit = await accounts.post(f"/individual-accounts/{wang['id']}/contributions",
                                     headers={**auth("accountant"), "Idempotency-Key": "pay-1"},
                                     json={"amount": "640.00", "period": 202401})
        assert credit.status_code == 201, credit.text

        died = await upload(accounts, partner, "death", [
            {"record_id": "1", "citizen_id": wang["citizen_id"], "name": "王建国", "death_date": "2024-03-02"}])
        assert died.json()["applied"] == 1, died.text
        jailed = await upload(accounts, partner, "imprisonment", [
            {"record_id": "7", "citizen_id": li["citizen_id"], "name": "李秀英", "imprisoned_from": "2024-02-01",
             "imprisoned_until": "2027-01-31"}], batch_key="FY-1")
        assert jailed.json()["applied"] == 1, jailed.text
        business = await upload(accounts, partner_headers(settings, "partner.scjg"), "business_registration", [
            {"record_id": "s1", "uscc": make_uscc(1), "name": "呼和浩特市甲有限公司", "registered_on": "2023-12-01"},
            {"record_id": "s2", "uscc": make_uscc(2), "name": "呼和浩特市乙有限公司", "registered_on": "2024-01-05"},
        ], batch_key="SC-1")
        assert business.status_code == 201, business.text

        async def person(serial: int, **expected) -> dict | None:
            r = await oversight.get("/mirror/persons", params={"citizen_id": citizen_id(serial)}, headers=officer)
            items = r.json()["items"]
            return items[0] if items and all(items[0][k] == v for k, v in expected.items()) else None

        mirrored_wang = await wait_for(lambda: person(1, life_status="deceased"), timeout=20)
        assert (mirrored_wang["death_date"], mirrored_wang["name"], mirrored_wang["birth_date"]) == \
            ("2024-03-02", "王建国", "1960-03-01")
        assert mirrored_wang["citizen_id"] == citizen_id(1)  # officers work with full numbers
        assert mirrored_wang["life_status_source"] == "exchange" and mirrored_wang["placeholder"] is False
        mirrored_li = await wait_for(lambda: person(2, life_status="imprisoned"), timeout=20)
        assert (mirrored_li["imprisoned_from"], mirrored_li["imprisoned_until"]) == ("2024-02-01", "2027-01-31")
        assert (await person(3))["life_status"] == "alive"

        async def life_events() -> list:
            r = await oversight.get("/mirror/life-events", headers=officer)
            items = r.json()["items"]
            return items if len(items) == 2 else []

        events = await wait_for(life_events, timeout=20)
        assert sorted((e["kind"], e["person_id"], e["event_date"], e["source"], e["record_id"]) for e in events) == [
            ("died", wang["id"], "2024-03-02", "partner.mzj", "1"),
            ("imprisoned", li["id"], "2024-02-01", "partner.mzj", "7")]

        async def registrations() -> list:
            items = (await oversight.get("/mirror/business-registrations", headers=officer)).json()["items"]
            return items if len(items) == 2 else []

        regs = {r["uscc"]: r for r in await wait_for(registrations, timeout=20)}
        assert regs[make_uscc(1)]["employer_id"] == employer["id"]
        assert regs[make_uscc(1)]["social_insurance_registered"] is True
        assert regs[make_uscc(2)]["social_insurance_registered"] is False
        overdue = (await oversight.get("/mirror/business-registrations", headers=officer,
                                       params={"unregistered": True, "overdue_days": 30})).json()["items"]
        assert [r["uscc"] for r in overdue] == [make_uscc(2)]  # the S11 candidates
        not_yet = (await oversight.get("/mirror/business-registrations", headers=officer, params={
            "unregistered": True, "overdue_days": 30, "as_of": "2024-01-20"})).json()["items"]
        assert not_yet == []  # registered with market regulation on 2024-01-05: still within its 30 days

        detail = (await oversight.get(f"/mirror/persons/{wang['id']}", headers=officer)).json()
        assert [(e["fund"], e["employer_id"], e["status"], e["start_period"]) for e in detail["enrolments"]] == \
            [("PEN_EMP", employer["id"], "active", 202401)]
        assert [e["kind"] for e in detail["life_events"]] == ["died"]
        assert [(y["year"], y["credited_fen"], y["entries"], y["balance_fen"]) for y in detail["account_years"]] == \
            [(2024, 64000, 1, 64000)]
        enrolments = (await oversight.get("/mirror/enrolments", params={"citizen_id": citizen_id(1)},
                                          headers=officer)).json()["items"]
        assert [e["enrolment_id"] for e in enrolments] == [enrolment.json()["id"]]
        employers = (await oversight.get("/mirror/employers", params={"uscc": make_uscc(1)}, headers=officer)).json()
        assert employers[0]["status"] == "active" and employers[0]["unit_type"] == "enterprise"

        assert (await oversight.get("/admin/dead-letters", headers=auth("it_admin"))).json() == []
        assert oversight.app.state.consumers["EXCHANGE"].name == "oversight-EXCHANGE"
        missing = await oversight.get("/mirror/persons/nope", headers=officer)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "MIRRORED_PERSON_NOT_FOUND"
        assert (await oversight.get("/mirror/persons", headers=clerk)).status_code == 403


# -- handlers: idempotent and order-tolerant -------------------------------------------------------------------------


@pytest.fixture
def engine(database_urls):
    engine = make_engine(database_urls["oversight"])
    upgrade_database(engine, "oversight", models.metadata)
    yield engine
    engine.dispose()


class Feed:
    """Applies payloads as the consumer would, each in its own transaction, with a chosen event time."""

    def __init__(self, engine):  # noqa: ANN001
        self.engine = engine

    def __call__(self, payload: EventPayload, at: datetime = T0, subject: str = "x") -> None:
        envelope = build_envelope(payload, source="accounts", subject=subject, actor=EventActor(id="t"),
                                  correlation_id=None, causation_id=None).model_copy(update={"time": at})
        handler = {**ACCOUNTS_HANDLERS, **EXCHANGE_HANDLERS}[envelope.type]
        with Session(self.engine) as session:
            handler(session, envelope)
            session.commit()

    def get(self, model, key):  # noqa: ANN001, ANN201
        with Session(self.engine) as session:
            return session.get(model, key)

    def count(self, model) -> int:  # noqa: ANN001
        with Session(self.engine) as session:
            return session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def feed(engine) -> Feed:  # noqa: ANN001
    return Feed(engine)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_employer_events_before_the_registration_leave_a_placeholder_it_completes(feed):
    feed(ev.EmployerUpdated(employer_id="e1", version=3, changes={"name": ["甲公司", "甲有限公司"],
                                                                  "contact_phone": [None, "0471-1234567"]}), at(3))
    feed(ev.EmployerStatusChanged(employer_id="e1", uscc=make_uscc(1), status="suspended", previous_status="active",
                                  effective_date=date(2026, 2, 1), reason="停业"), at(4))
    row = feed.get(MirroredEmployer, "e1")
    assert (row.placeholder, row.name, row.uscc, row.status, row.version) == \
        (True, "甲有限公司", make_uscc(1), "suspended", 3)

    registration = ev.EmployerRegistered(employer_id="e1", uscc=make_uscc(1), name="甲公司", region=REGION,
                                         registered_at=at(0), industry_risk_class=3)
    for _ in range(2):  # late, and then once more
        feed(registration, at(0))
        row = feed.get(MirroredEmployer, "e1")
        assert (row.placeholder, row.name, row.region, row.industry_risk_class, row.status, row.version) == \
            (False, "甲有限公司", REGION, 3, "suspended", 3)
    feed(ev.EmployerUpdated(employer_id="e1", version=2, changes={"name": ["甲公司", "旧名"]}), at(2))  # stale
    feed(ev.EmployerStatusChanged(employer_id="e1", uscc=make_uscc(1), status="active", previous_status="suspended",
                                  effective_date=date(2026, 1, 15), reason="旧"), at(1))  # older than the suspension
    row = feed.get(MirroredEmployer, "e1")
    assert (row.name, row.status, row.status_reason) == ("甲有限公司", "suspended", "停业")
    feed(ev.EmployersImported(import_job_id="j1", employers=[ev.ImportedEmployer(
        employer_id="e2", uscc=make_uscc(2), name="乙", region=REGION, unit_type="enterprise",
        industry_risk_class=1)]), at(5))
    assert feed.get(MirroredEmployer, "e2").import_job_id == "j1"


def test_person_life_status_is_ordered_by_event_time_and_fields_by_version(feed):
    cid = citizen_id(1)
    feed(ev.PersonLifeStatusChanged(person_id="p1", citizen_id=cid, life_status="deceased", previous_status="alive",
                                    death_date=date(2026, 1, 3), source="exchange", source_ref="r1"), at(10))
    feed(ev.PersonRegistered(person_id="p1", citizen_id=cid, name="王", sex="M", birth_date=date(1960, 3, 1),
                             region=REGION, household_type="urban", registered_at=at(0)), at(0))
    row = feed.get(MirroredPerson, "p1")
    assert (row.placeholder, row.name, row.life_status, row.death_date) == (False, "王", "deceased", date(2026, 1, 3))
    feed(ev.PersonLifeStatusChanged(person_id="p1", citizen_id=cid, life_status="imprisoned", previous_status="alive",
                                    imprisoned_from=date(2025, 1, 1), source="exchange", source_ref="r0"), at(5))
    assert feed.get(MirroredPerson, "p1").life_status == "deceased"  # the later fact stands
    feed(ev.PersonUpdated(person_id="p1", version=4, changes={"name": ["王", "王建国"], "phone": [None, "139"]}), at(11))
    feed(ev.PersonUpdated(person_id="p1", version=3, changes={"name": ["王", "王某"]}), at(9))
    assert (feed.get(MirroredPerson, "p1").name, feed.get(MirroredPerson, "p1").version) == ("王建国", 4)
    feed(ev.PersonsImported(import_job_id="j1", persons=[ev.ImportedPerson(
        person_id="p1", citizen_id=cid, name="王旧", sex="M", birth_date=date(1960, 3, 1), region=REGION,
        household_type="urban")]), at(12))
    assert feed.get(MirroredPerson, "p1").name == "王建国"  # an import (version 1) does not undo an update

    feed(ev.PersonBankAccountClosed(person_id="p1", bank_account_id="b1", reason="销户"), at(3))
    feed(ev.PersonBankAccountAdded(person_id="p1", bank_account_id="b1", kind="bank_account", bank_name="工行",
                                   account_no="6222020000000000018", holder_name="王建国"), at(1))
    account = feed.get(MirroredBankAccount, "b1")
    assert (account.status, account.holder_name, account.placeholder) == ("closed", "王建国", False)


def test_enrolment_transitions_tolerate_order(feed):
    feed(ev.EnrolmentSuspended(enrolment_id="n1", person_id="p1", fund="PEN_EMP", reason="停薪留职"), at(2))
    feed(ev.EnrolmentOpened(enrolment_id="n1", person_id="p1", fund="PEN_EMP", employer_id="e1",
                            start_period=202401), at(1))
    row = feed.get(MirroredEnrolment, "n1")
    assert (row.status, row.employer_id, row.start_period, row.placeholder) == ("suspended", "e1", 202401, False)
    feed(ev.EnrolmentResumed(enrolment_id="n1", person_id="p1", fund="PEN_EMP"), at(3))
    feed(ev.EnrolmentTransferred(person_id="p1", fund="PEN_EMP", from_enrolment_id="n1", from_employer_id="e1",
                                 to_enrolment_id="n2", to_employer_id="e2", closed_period=202405,
                                 start_period=202406), at(4))
    old, new = feed.get(MirroredEnrolment, "n1"), feed.get(MirroredEnrolment, "n2")
    assert (old.status, old.status_reason, old.end_period, old.transferred_to) == ("stopped", "transferred", 202405, "n2")
    assert (new.status, new.employer_id, new.start_period, new.transferred_from) == ("active", "e2", 202406, "n1")
    feed(ev.EnrolmentStopped(enrolment_id="n2", person_id="p1", fund="PEN_EMP", end_period=202412,
                             reason="死亡"), at(6))
    feed(ev.EnrolmentResumed(enrolment_id="n2", person_id="p1", fund="PEN_EMP"), at(5))  # late
    assert (feed.get(MirroredEnrolment, "n2").status, feed.get(MirroredEnrolment, "n2").end_period) == \
        ("stopped", 202412)
    feed(ev.EnrolmentsImported(import_job_id="j1", enrolments=[ev.ImportedEnrolment(
        enrolment_id="n3", person_id="p2", fund="PEN_RES", employer_id=None, start_period=201001, end_period=201512,
        status="stopped")]), at(7))
    assert feed.get(MirroredEnrolment, "n3").end_period == 201512
    report = ev.DuplicateEnrolmentFound(person_id="p2", citizen_id=citizen_id(2), funds=["PEN_RES", "PEN_EMP"],
                                        overlap_from=201301, overlap_to=201512, import_job_id="j1")
    feed(report, at(8))
    feed(report, at(9))
    assert feed.count(MirroredDuplicateEnrolment) == 1


def test_postings_count_once_and_the_balance_follows_event_time(feed):
    credit = ev.AccountCredited(person_id="p1", entry_id="a1", entry_type="contribution", amount_fen=64000,
                                balance_fen=64000, year=2024, period=202401, idempotency_key="k1")
    feed(credit, at(1))
    feed(credit, at(1))  # the same posting under another event id
    feed(ev.AccountDebited(person_id="p1", entry_id="a3", entry_type="withdrawal", amount_fen=100000,
                           balance_fen=28000, year=2024, idempotency_key="k3"), at(3))
    feed(ev.AccountCredited(person_id="p1", entry_id="a2", entry_type="contribution", amount_fen=64000,
                            balance_fen=128000, year=2024, period=202402, idempotency_key="k2"), at(2))  # late
    totals = feed.get(MirroredAccountYear, "p1:2024")
    assert (totals.credited_fen, totals.debited_fen, totals.entries, totals.balance_fen) == (128000, 100000, 3, 28000)
    assert feed.count(MirroredAccountEntry) == 3
    assert feed.get(MirroredAccountEntry, "a3").amount_fen == -100000


def test_agency_lines_a_posting_supersedes_a_hold(feed):
    held = ev.ContributionsHeld(source_batch_id="b1", lines=[ev.HeldLine(
        payment_id="pay1", fund="PEN_EMP", period=202401, citizen_id=citizen_id(1), person_id=None, amount_fen=96000,
        reason_code="PERSON_NOT_FOUND", reason="无此人")])
    posted = ev.ContributionsPosted(source_batch_id="b2", lines=[ev.PostedLine(
        payment_id="pay1", person_id="p1", employer_id="e1", fund="PEN_EMP", period=202401, employer_fen=128000,
        individual_fen=64000, credited_fen=64000, entry_id="a1")])
    feed(held, at(1))
    assert feed.get(MirroredAgencyLine, "pay1").status == "held"
    feed(posted, at(2))
    feed(held, at(1))  # redelivered late
    line = feed.get(MirroredAgencyLine, "pay1")
    assert (line.status, line.person_id, line.employer_fen, line.held_fen, line.reason_code) == \
        ("posted", "p1", 128000, 0, None)


def test_partner_facts_are_merged_by_their_natural_key(feed):
    died = ev.PersonDied(person_id="p1", citizen_id=citizen_id(1), death_date=date(2024, 3, 2), source="partner.mzj",
                         record_id="1")
    feed(died, at(1))
    feed(died, at(2))
    feed(ev.PersonCremated(person_id="p1", citizen_id=citizen_id(1), cremation_date=date(2024, 3, 5),
                           source="partner.mzj", record_id="1"), at(3))
    feed(ev.PersonImprisoned(person_id="p2", citizen_id=citizen_id(2), imprisoned_from=date(2024, 1, 1),
                             source="partner.fy", record_id="9"), at(4))
    feed(ev.PersonReleased(person_id="p2", citizen_id=citizen_id(2), released_on=date(2025, 1, 1),
                           source="partner.sfj", record_id="9"), at(5))
    assert feed.count(MirroredLifeEvent) == 4

    unregistered = ev.BusinessRegistered(uscc=make_uscc(5), name="丙公司", registered_on=date(2024, 1, 5),
                                         source="partner.scjg", record_id="s1")
    feed(unregistered, at(6))
    feed(unregistered.model_copy(update={"employer_id": "e5"}), at(7))  # matched later by a reviewer
    feed(unregistered, at(6))  # and the first one redelivered
    assert feed.count(MirroredBusinessRegistration) == 1
    with Session(feed.engine) as session:
        assert session.execute(select(MirroredBusinessRegistration.employer_id)).scalar_one() == "e5"


# -- bulk events applied as sets: the same result as one line at a time ----------------------------------------------


def _credit(entry_id: str, person_id: str, amount: int, balance: int, *, year: int = 2024) -> ev.CreditedEntry:
    return ev.CreditedEntry(person_id=person_id, entry_id=entry_id, entry_type="contribution", amount_fen=amount,
                            balance_fen=balance, year=year, period=year * 100 + 1, idempotency_key=f"k-{entry_id}")


def test_a_credited_batch_moves_each_cell_once_with_its_last_balance_and_counts_a_repeated_entry_once(feed):
    feed(ev.AccountCredited(person_id="p1", entry_id="a0", entry_type="contribution", amount_fen=1000,
                            balance_fen=1000, year=2024, period=202401, idempotency_key="k-a0"), at(1))
    feed(ev.AccountsCredited(entries=[
        _credit("a0", "p1", 1000, 1000),  # posted already as v1: not counted again
        _credit("a1", "p1", 2000, 3000), _credit("a2", "p1", 3000, 6000),
        _credit("a2", "p1", 3000, 6000),  # the same entry twice in one event
        _credit("b1", "p2", 500, 500), _credit("b2", "p2", 700, 700, year=2025)]), at(2))
    p1, p2, p2next = (feed.get(MirroredAccountYear, k) for k in ("p1:2024", "p2:2024", "p2:2025"))
    assert (p1.credited_fen, p1.entries, p1.balance_fen) == (6000, 3, 6000)
    assert (p2.credited_fen, p2.entries, p2.balance_fen, p2next.balance_fen) == (500, 1, 500, 700)
    assert feed.count(MirroredAccountEntry) == 5

    # An older batch arriving late: its new entries count, the balance stays the later one's.
    feed(ev.AccountsCredited(entries=[_credit("a3", "p1", 100, 100), _credit("c1", "p3", 900, 900)]), at(0))
    p1, p3 = feed.get(MirroredAccountYear, "p1:2024"), feed.get(MirroredAccountYear, "p3:2024")
    assert (p1.credited_fen, p1.entries, p1.balance_fen) == (6100, 4, 6000)
    assert (p3.credited_fen, p3.entries, p3.balance_fen) == (900, 1, 900)
    # A debit in the same cell, later: the balance follows it.
    feed(ev.AccountDebited(person_id="p1", entry_id="a4", entry_type="withdrawal", amount_fen=600, balance_fen=5500,
                           year=2024, idempotency_key="k-a4"), at(3))
    p1 = feed.get(MirroredAccountYear, "p1:2024")
    assert (p1.credited_fen, p1.debited_fen, p1.entries, p1.balance_fen) == (6100, 600, 5, 5500)


def _posted(payment_id: str, employer_fen: int, *, batch: str = "b2") -> ev.PostedLine:
    return ev.PostedLine(payment_id=payment_id, person_id="p1", employer_id="e1", fund="PEN_EMP", period=202401,
                         employer_fen=employer_fen, individual_fen=100, credited_fen=100, entry_id=f"e-{payment_id}")


def _held(payment_id: str, amount: int) -> ev.HeldLine:
    return ev.HeldLine(payment_id=payment_id, fund="PEN_EMP", period=202401, citizen_id=citizen_id(1), person_id=None,
                       amount_fen=amount, reason_code="PERSON_NOT_FOUND", reason="无此人")


def test_agency_batches_mix_new_and_mirrored_lines_and_a_line_twice_in_one_event_ends_as_its_last(feed):
    feed(ev.ContributionsHeld(source_batch_id="b1", lines=[_held("h1", 300), _held("h2", 400), _held("h2", 450)]),
         at(1))
    assert (feed.get(MirroredAgencyLine, "h2").status, feed.get(MirroredAgencyLine, "h2").held_fen) == ("held", 450)
    feed(ev.ContributionsPosted(source_batch_id="b2", lines=[
        _posted("h1", 200), _posted("n1", 500), _posted("n1", 600)]), at(2))  # one held, one new (twice)
    h1, h2, n1 = (feed.get(MirroredAgencyLine, k) for k in ("h1", "h2", "n1"))
    assert (h1.status, h1.employer_fen, h1.held_fen, h1.reason_code, h1.citizen_id, h1.source_batch_id) == \
        ("posted", 200, 0, None, citizen_id(1), "b2")
    assert (h2.status, n1.status, n1.employer_fen, n1.citizen_id) == ("held", "posted", 600, None)
    # A later hold of a posted line changes nothing; the held and new lines beside it are held.
    feed(ev.ContributionsHeld(source_batch_id="b3", lines=[_held("n1", 1), _held("h2", 460), _held("x1", 70)]),
         at(3))
    n1, h2, x1 = (feed.get(MirroredAgencyLine, k) for k in ("n1", "h2", "x1"))
    assert (n1.status, n1.employer_fen, n1.held_fen, n1.source_batch_id) == ("posted", 600, 0, "b2")
    assert (h2.status, h2.held_fen, h2.source_batch_id, x1.status, x1.employer_fen) == ("held", 460, "b3", "held", 0)
    assert feed.count(MirroredAgencyLine) == 4


def _person(person_id: str, name: str) -> ev.ImportedPerson:
    return ev.ImportedPerson(person_id=person_id, citizen_id=citizen_id(int(person_id[1:])), name=name, sex="F",
                             birth_date=date(1970, 1, 1), region=REGION, household_type="urban")


def test_imports_fill_placeholders_keep_later_facts_and_take_a_repeated_row_in_order(feed):
    feed(ev.PersonLifeStatusChanged(person_id="p1", citizen_id=citizen_id(1), life_status="deceased",
                                    previous_status="alive", death_date=date(2026, 1, 3), source="exchange",
                                    source_ref="r1"), at(5))
    feed(ev.PersonUpdated(person_id="p2", version=3, changes={"name": ["旧", "新名"]}), at(5))
    feed(ev.PersonsImported(import_job_id="j1", persons=[
        _person("p1", "甲"), _person("p2", "乙"), _person("p3", "丙"), _person("p3", "丙二")]), at(1))
    p1, p2, p3 = (feed.get(MirroredPerson, k) for k in ("p1", "p2", "p3"))
    assert (p1.placeholder, p1.name, p1.life_status, p1.import_job_id) == (False, "甲", "deceased", "j1")
    assert (p2.placeholder, p2.name, p2.version, p2.sex) == (False, "新名", 3, "F")  # the update was newer
    assert (p3.name, p3.life_status, p3.version) == ("丙二", "alive", 1)

    feed(ev.EnrolmentSuspended(enrolment_id="n1", person_id="p1", fund="PEN_EMP", reason="停薪留职"), at(5))
    feed(ev.EnrolmentsImported(import_job_id="j2", enrolments=[
        ev.ImportedEnrolment(enrolment_id="n1", person_id="p1", fund="PEN_EMP", employer_id="e1",
                             start_period=202001, end_period=None, status="active"),
        ev.ImportedEnrolment(enrolment_id="n2", person_id="p2", fund="UNEMP", employer_id="e1",
                             start_period=202001, end_period=None, status="active"),
        ev.ImportedEnrolment(enrolment_id="n2", person_id="p2", fund="UNEMP", employer_id="e2",
                             start_period=202101, end_period=202112, status="stopped")]), at(1))
    n1, n2 = feed.get(MirroredEnrolment, "n1"), feed.get(MirroredEnrolment, "n2")
    assert (n1.placeholder, n1.status, n1.employer_id, n1.start_period, n1.import_job_id) == \
        (False, "suspended", "e1", 202001, "j2")
    # The second line of n2 meets the row its first line made: facts stay, the status (same event time) follows.
    assert (n2.employer_id, n2.start_period, n2.status, n2.end_period) == ("e1", 202001, "stopped", 202112)

    feed(ev.EmployerStatusChanged(employer_id="e1", uscc=make_uscc(1), status="suspended", previous_status="active",
                                  effective_date=date(2026, 2, 1), reason="停业"), at(5))
    feed(ev.EmployersImported(import_job_id="j3", employers=[ev.ImportedEmployer(
        employer_id=f"e{i}", uscc=make_uscc(i), name=f"单位{i}", region=REGION, unit_type="enterprise",
        industry_risk_class=1) for i in (1, 2, 2)]), at(1))
    e1, e2 = feed.get(MirroredEmployer, "e1"), feed.get(MirroredEmployer, "e2")
    assert (e1.placeholder, e1.name, e1.status, e1.import_job_id) == (False, "单位1", "suspended", "j3")
    assert (e2.placeholder, e2.status, e2.version) == (False, "active", 1)
    assert feed.count(MirroredEmployer) == 2


def test_a_row_the_transaction_already_loaded_reads_what_a_later_event_of_the_batch_wrote(engine):
    """Handlers write with Core statements; an ORM instance an earlier handler of the same batch loaded (the rules
    read the mirror) must not keep the values from before."""
    handlers = {**ACCOUNTS_HANDLERS, **EXCHANGE_HANDLERS}

    def apply(session: Session, payload: EventPayload, minutes: int) -> None:
        envelope = build_envelope(payload, source="accounts", subject="x", actor=EventActor(id="t"),
                                  correlation_id=None, causation_id=None).model_copy(update={"time": at(minutes)})
        handlers[envelope.type](session, envelope)

    with Session(engine) as session:
        apply(session, ev.PersonsImported(import_job_id="j1", persons=[_person("p1", "甲")]), 1)
        apply(session, ev.ContributionsHeld(source_batch_id="b1", lines=[_held("h1", 300)]), 1)
        apply(session, ev.AccountsCredited(entries=[_credit("a1", "p1", 100, 100)]), 1)
        person, line = session.get(MirroredPerson, "p1"), session.get(MirroredAgencyLine, "h1")
        year = session.get(MirroredAccountYear, "p1:2024")
        assert (person.name, line.status, year.entries) == ("甲", "held", 1)
        apply(session, ev.PersonUpdated(person_id="p1", version=2, changes={"name": ["甲", "甲二"]}), 2)
        apply(session, ev.ContributionsPosted(source_batch_id="b2", lines=[_posted("h1", 200)]), 2)
        apply(session, ev.AccountsCredited(entries=[_credit("a2", "p1", 100, 200)]), 2)
        assert (person.name, person.version, line.status, line.employer_fen, year.entries, year.balance_fen) == \
            ("甲二", 2, "posted", 200, 2, 200)
        session.commit()
