"""Benefits' registry mirror: persons, payment accounts and life status from ACCOUNTS and EXCHANGE, the
contribution index from COLLECTION; through real events end to end, and handler by handler (idempotent, stale
events skipped, missing entities waited for, every type on each stream handled or ignored)."""

import asyncio
from datetime import date, timedelta
from fractions import Fraction

import pytest
from sqlalchemy import select
from sqlmodel import Session

from services.benefits.models import (
    AverageWage,
    BeneficiaryAccount,
    BeneficiaryPerson,
    AverageWage,
    ContributionIndex,
    Entitlement,
    MirroredAssessment,
)
from services.benefits.registry import handlers, index
from services.contracts import accounts as ae
from services.contracts import collection as ce
from services.kernel import clock
from services.kernel.events import EVENT_TYPES, EventEnvelope, new_event_id
from tests.support.registry import engine_of, error_code, make_card
from tests.support.exchange import citizen_id as make_citizen_id
from tests.support.exchange import partner_headers, upload
from tests.support.benefits_mirror import BORN, REGION, apply, envelope, events, get, grant, life, rows, wait_for

CITY = "150100"


# -- helpers ---------------------------------------------------------------------------------------------------------


def registered(serial: int, name: str, *, region: str = REGION, person_id: str | None = None) -> EventEnvelope:
    born = BORN
    return envelope(ae.PersonRegistered(person_id=person_id or f"p{serial}", citizen_id=make_citizen_id(serial),
                                        name=name, sex="M", birth_date=born, region=region, household_type="urban",
                                        registered_at=clock.utc_now()))


# -- the catalogue ---------------------------------------------------------------------------------------------------


def test_every_type_on_the_three_streams_is_handled_or_deliberately_ignored():
    for consumer, prefix in ((handlers.ACCOUNTS_CONSUMER, "accounts."), (handlers.EXCHANGE_CONSUMER, "exchange."),
                             (handlers.COLLECTION_CONSUMER, "collection.")):
        on_stream = {t for t in EVENT_TYPES if t.startswith(prefix)}
        assert on_stream == set(consumer.handlers) | set(consumer.ignores), consumer.stream
        assert not set(consumer.handlers) & set(consumer.ignores)
    assert [c.stream for c in (handlers.ACCOUNTS_CONSUMER, handlers.EXCHANGE_CONSUMER, handlers.COLLECTION_CONSUMER)] \
        == ["ACCOUNTS", "EXCHANGE", "COLLECTION"]


# -- end to end: accounts API → ACCOUNTS / EXCHANGE streams → benefits' tables ---------------------------------------


async def test_a_person_and_a_bank_account_registered_in_accounts_reach_benefits_and_a_death_suspends(
        start_service, settings, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    async with start_service("accounts") as accounts, start_service("benefits") as benefits:
        citizen_id = make_citizen_id(11)
        person = await accounts.post("/persons", json={"citizen_id": citizen_id, "name": "王建国", "region": REGION},
                                     headers=clerk)
        assert person.status_code == 201, person.text
        person_id = person.json()["id"]
        account = await accounts.post(f"/persons/{person_id}/bank-accounts", headers=clerk, json={
            "kind": "bank_account", "bank_name": "中国工商银行呼和浩特分行", "account_no": make_card(11),
            "holder_name": "王建国"})
        assert account.status_code == 201, account.text
        account_id = account.json()["id"]

        mirrored = await wait_for(lambda: get(benefits, BeneficiaryAccount, account_id))
        assert (mirrored.person_id, mirrored.account_no, mirrored.holder_name, mirrored.status) == (
            person_id, make_card(11), "王建国", "active")
        row = get(benefits, BeneficiaryPerson, person_id)
        assert (row.citizen_id, row.name, row.sex, row.birth_date, row.region, row.life_status) == (
            citizen_id, "王建国", "M", BORN, REGION, "alive")

        got = await benefits.get(f"/registry/persons/{person_id}", headers=clerk)
        assert got.status_code == 200, got.text
        assert got.json()["citizen_id"] == citizen_id
        assert [(a["account_no"], a["payable"]) for a in got.json()["accounts"]] == [(make_card(11), True)]
        masked = (await benefits.get(f"/registry/persons/{person_id}", headers=auth("accountant", region=REGION))).json()
        assert "*" in masked["citizen_id"] and "*" in masked["accounts"][0]["account_no"]
        elsewhere = await benefits.get(f"/registry/persons/{person_id}", headers=auth("agency_clerk", region="150103"))
        assert elsewhere.status_code == 403 and error_code(elsewhere) == "OUT_OF_REGION"
        missing = await benefits.get("/registry/persons/nobody", headers=clerk)
        assert missing.status_code == 404 and error_code(missing) == "PERSON_NOT_FOUND"

        # a pension is being paid; the civil affairs bureau reports the death
        entitlement_id = grant(benefits, person_id)
        death = clock.china_today().replace(day=1) - timedelta(days=40)
        reported = await upload(accounts, partner_headers(settings), "death", [
            {"record_id": "D-1", "citizen_id": citizen_id, "name": "王建国", "death_date": death.isoformat()}])
        assert reported.status_code == 201 and reported.json()["applied"] == 1, reported.text

        def suspended():  # noqa: ANN202
            e = get(benefits, Entitlement, entitlement_id)
            return e.status == "suspended" and e

        entitlement = await wait_for(suspended)
        assert entitlement.suspended_reason == "deceased"
        # both facts (accounts' life status change and the partner's death record) arrive; one suspension
        await wait_for(lambda: len(rows(benefits, BeneficiaryPerson, BeneficiaryPerson.death_date.is_not(None))) == 1)
        row = get(benefits, BeneficiaryPerson, person_id)
        assert (row.life_status, row.death_date) == ("deceased", death)

        closed = await accounts.post(f"/persons/{person_id}/bank-accounts/{account_id}/close",
                                     json={"reason": "本人死亡"}, headers=clerk)
        assert closed.status_code == 200, closed.text
        await wait_for(lambda: get(benefits, BeneficiaryAccount, account_id).status == "closed")

        async def settled() -> bool:
            with Session(engine_of(benefits)) as session:
                from services.kernel.models import InboxMessage  # noqa: PLC0415
                seen = set(session.execute(select(InboxMessage.event_type)).scalars())
            return {"exchange.person.died.v1", "accounts.person.life_status_changed.v1"} <= seen

        deadline = asyncio.get_running_loop().time() + 20
        while not await settled():
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        suspensions = events(benefits, "benefits.entitlement.suspended.v1")
        assert [(s["entitlement_id"], s["reason"], s["since"]) for s in suspensions] == [
            (entitlement_id, "deceased", death.isoformat())]
        assert (await benefits.get("/admin/dead-letters", headers=auth("it_admin"))).json() == []


# -- handler by handler ----------------------------------------------------------------------------------------------


async def test_persons_merge_by_id_stale_events_are_skipped_and_missing_persons_waited_for(start_service):
    async with start_service("benefits") as benefits:
        first = registered(1, "李四")
        imported = envelope(ae.PersonsImported(import_job_id="j", persons=[
            ae.ImportedPerson(person_id=f"i{n}", citizen_id=make_citizen_id(2000 + n),
                              name=f"导入{n}", sex="M", birth_date=date(1950, 1, 1), region=REGION,
                              household_type="rural") for n in range(1000)]))
        apply(benefits, first, imported, imported)  # twice: merged, not inserted twice
        assert len(rows(benefits, BeneficiaryPerson)) == 1001

        died = life("p1", "deceased", death_date=date(2024, 3, 2))
        apply(benefits, died)
        apply(benefits, first)  # a replay of the older registration does not undo the death
        person = get(benefits, BeneficiaryPerson, "p1")
        assert (person.life_status, person.death_date, person.source_event_id) == ("deceased", date(2024, 3, 2),
                                                                                   died.id)
        corrected = life("p1", "alive", "deceased")  # built after `died`, so newer: a correction
        stale = envelope(ae.PersonDied(person_id="p1", citizen_id="x", death_date=date(2024, 3, 1), source="mzj",
                                       record_id="1"))
        apply(benefits, corrected)
        assert get(benefits, BeneficiaryPerson, "p1").life_status == "alive"
        # an EXCHANGE event older than the row's state (stamped before the correction) would not apply: simulate
        # one by stamping the row with a later id first
        with Session(engine_of(benefits)) as session:
            row = session.get(BeneficiaryPerson, "p1")
            row.source_event_id = new_event_id()
            session.add(row)
            session.commit()
        apply(benefits, stale)
        assert get(benefits, BeneficiaryPerson, "p1").life_status == "alive"

        # cremation without a death: deceased, dated at the cremation; a later death record refines the date
        apply(benefits, registered(2, "赵六"),
              envelope(ae.PersonCremated(person_id="p2", citizen_id="x", cremation_date=date(2024, 5, 6),
                                         source="mzj", record_id="c")))
        assert (get(benefits, BeneficiaryPerson, "p2").life_status, get(benefits, BeneficiaryPerson, "p2").death_date) \
            == ("deceased", date(2024, 5, 6))
        apply(benefits, envelope(ae.PersonDied(person_id="p2", citizen_id="x", death_date=date(2024, 5, 1),
                                               source="wjw", record_id="d")))
        assert get(benefits, BeneficiaryPerson, "p2").death_date == date(2024, 5, 1)
        apply(benefits, envelope(ae.PersonCremated(person_id="p2", citizen_id="x", cremation_date=date(2024, 5, 8),
                                                   source="mzj", record_id="c2")))
        assert get(benefits, BeneficiaryPerson, "p2").death_date == date(2024, 5, 1)  # a known death stays

        # imprisonment and release keep the served period on the row
        apply(benefits, registered(3, "周杰"),
              envelope(ae.PersonImprisoned(person_id="p3", citizen_id="x", imprisoned_from=date(2024, 2, 1),
                                           imprisoned_until=None, source="sfj", record_id="a")))
        assert get(benefits, BeneficiaryPerson, "p3").life_status == "imprisoned"
        apply(benefits, envelope(ae.PersonReleased(person_id="p3", citizen_id="x", released_on=date(2024, 8, 31),
                                                   source="sfj", record_id="r")))
        jailed = get(benefits, BeneficiaryPerson, "p3")
        assert (jailed.life_status, jailed.imprisoned_from, jailed.imprisoned_until) == (
            "alive", date(2024, 2, 1), date(2024, 8, 31))

        # accounts: added, closed, a replayed `added` does not reopen
        added = envelope(ae.PersonBankAccountAdded(person_id="p3", bank_account_id="b1", kind="ss_card",
                                                   bank_name="社保卡", account_no=make_card(3), holder_name="周杰"))
        apply(benefits, added, envelope(ae.PersonBankAccountClosed(person_id="p3", bank_account_id="b1", reason="挂失")))
        apply(benefits, added)
        assert get(benefits, BeneficiaryAccount, "b1").status == "closed"

        # events about persons or accounts not mirrored yet wait (retried, then dead-lettered)
        for early in (life("ghost", "deceased", death_date=date(2024, 1, 1)),
                      envelope(ae.PersonDied(person_id="ghost", citizen_id="x", death_date=date(2024, 1, 1),
                                             source="s", record_id="r")),
                      envelope(ae.PersonBankAccountClosed(person_id="p3", bank_account_id="ghost", reason="x"))):
            with pytest.raises(handlers.MirrorGap):
                apply(benefits, early)


# -- the contribution index ------------------------------------------------------------------------------------------


def parameters(valid_from: int, wage_fen: int, *, region: str = CITY, parameters_id: str | None = None) -> EventEnvelope:
    return envelope(ce.ParametersApproved(parameters_id=parameters_id or new_event_id(), region=region,
                                          valid_from=valid_from, document={"average_monthly_wage_fen": wage_fen}),
                    source="collection")


def assessed(assessment_id: str, period: int, lines: list[tuple[str, str, int]], *,
             supersedes_id: str | None = None, part: int = 1, parts: int = 1) -> EventEnvelope:
    return envelope(ce.AssessmentIssued(
        assessment_id=assessment_id, employer_id="e1", period=period, due_date=date(2024, 7, 15),
        supersedes_id=supersedes_id, part=part, parts=parts, employer_total_fen=0, individual_total_fen=0,
        lines=[ce.AssessedLine(line_id=new_event_id(), person_id=p, fund=f, declared_base_fen=b, base_fen=b,
                               clamp=None, employer_fen=0, individual_fen=0) for p, f, b in lines]),
        source="collection")


def index_of(client, person_id: str) -> dict[tuple[str, int], tuple[int, int]]:  # noqa: ANN001
    return {(r.fund, r.period): (r.base_fen, r.average_wage_fen)
            for r in rows(client, ContributionIndex, ContributionIndex.person_id == person_id)}


async def test_pension_lines_are_indexed_with_the_average_wage_in_force_and_corrections_replace_them(
        start_service, auth):
    async with start_service("benefits") as benefits:
        apply(benefits, registered(1, "张三"), registered(2, "李四"),
              registered(3, "王五", region="150203"))  # 包头市: no parameters mirrored for it
        wages = parameters(202301, 700_000)
        apply(benefits, wages, parameters(202401, 800_000), parameters(202407, 900_000, region="150000"),
              parameters(202401, 850_000, region="150102"))
        apply(benefits, wages)  # a replay mirrors nothing twice
        first = new_event_id()
        apply(benefits, assessed(first, 202406, [("p1", "PEN_EMP", 600_000), ("p1", "UNEMP", 600_000),
                                                 ("p2", "PEN_EMP", 1_000_000)]))
        # the district's own set (150102) is more specific than the city's
        assert index_of(benefits, "p1") == {("PEN_EMP", 202406): (600_000, 850_000)}
        assert index_of(benefits, "p2") == {("PEN_EMP", 202406): (1_000_000, 850_000)}
        apply(benefits, assessed(new_event_id(), 202312, [("p1", "PEN_GOV", 500_000)]))
        assert index_of(benefits, "p1")[("PEN_GOV", 202312)] == (500_000, 700_000)  # the city's set of 2023

        # a correction: p1's base changes, p2 is dropped; the new assessment arrives before the supersession
        second = new_event_id()
        corrected = assessed(second, 202406, [("p1", "PEN_EMP", 650_000)], supersedes_id=first)
        superseded = envelope(ce.AssessmentSuperseded(assessment_id=first, superseded_by_id=second, employer_id="e1",
                                                      period=202406, reason="基数更正"), source="collection")
        apply(benefits, corrected, superseded)
        assert index_of(benefits, "p1")[("PEN_EMP", 202406)] == (650_000, 850_000)
        assert ("PEN_EMP", 202406) not in index_of(benefits, "p2")
        # a late copy of the superseded assessment changes nothing; nor does the supersession again
        apply(benefits, assessed(first, 202406, [("p2", "PEN_EMP", 1_000_000)]), superseded)
        assert ("PEN_EMP", 202406) not in index_of(benefits, "p2")
        assert index_of(benefits, "p1")[("PEN_EMP", 202406)] == (650_000, 850_000)

        # a line older than the row does not replace it (ids are time-ordered)
        with Session(engine_of(benefits)) as session:
            row = session.execute(select(ContributionIndex).where(ContributionIndex.person_id == "p1",
                                                                  ContributionIndex.fund == "PEN_EMP")).scalar_one()
            newest = row.assessment_line_id
        stale = assessed(new_event_id(), 202406, [("p1", "PEN_EMP", 1)])
        stale.data["lines"][0][0] = "00000000-0000-7000-8000-000000000000"  # line_id, a compact line's first value
        apply(benefits, stale)
        assert index_of(benefits, "p1")[("PEN_EMP", 202406)] == (650_000, 850_000)
        assert rows(benefits, ContributionIndex, ContributionIndex.assessment_line_id == newest)

        # unknown person, or no set in force for the person's region or period: retried later
        for early in (assessed(new_event_id(), 202406, [("ghost", "PEN_EMP", 1)]),
                      assessed(new_event_id(), 202406, [("p3", "PEN_EMP", 1)]),
                      assessed(new_event_id(), 202201, [("p1", "PEN_EMP", 1)])):
            with pytest.raises(handlers.MirrorGap):
                apply(benefits, early)

        # the record the claims computation reads, and its endpoint
        with Session(engine_of(benefits)) as session:
            record = index.contribution_record(session, "p1", "PEN_EMP")
            assert (record.months, record.index_sum) == (1, Fraction(650_000, 850_000))
        reader = auth("agency_reviewer", region=REGION)
        got = (await benefits.get("/registry/persons/p1/contribution-index", params={"fund": "PEN_EMP"},
                                  headers=reader)).json()
        assert (got["months"], got["index_sum"], got["items"][0]["base"], got["items"][0]["average_wage"]) == (
            1, "0.764706", "6500.00", "8500.00")
        # the mirrored parameter sets and the replaced assessment are rows of their own
        assert len(rows(benefits, AverageWage)) == 4
        assert [m.status for m in rows(benefits, MirroredAssessment)].count("superseded") == 1


async def test_the_index_through_collection_declarations_and_a_correction(start_service, auth):
    from tests.support.collection import declare  # noqa: PLC0415
    from tests.support.collection import add_employer, add_people, approved_parameters  # noqa: PLC0415

    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    async with start_service("collection") as collection, start_service("benefits") as benefits:
        await approved_parameters(collection, auth, valid_from=202401)  # 8 000.00 yuan, city level
        employer_id = add_employer(collection)
        people = add_people(collection, employer_id, 2, funds=("PEN_EMP", "UNEMP"))
        for n, (person_id, citizen_id) in enumerate(people):
            apply(benefits, envelope(ae.PersonRegistered(
                person_id=person_id, citizen_id=citizen_id, name=f"职工{n + 1}", sex="M", birth_date=date(1985, 1, 1),
                region=REGION, household_type="urban", registered_at=clock.utc_now())))
        (zhang, _), (li, _) = people
        first = await declare(collection, clerk, employer_id, [{"person_id": zhang, "base": "5432.10"},
                                                               {"person_id": li, "base": "30000.00"}], period=202406)
        await wait_for(lambda: len(rows(benefits, ContributionIndex)) == 2)
        assert index_of(benefits, zhang) == {("PEN_EMP", 202406): (543_210, 800_000)}
        assert index_of(benefits, li) == {("PEN_EMP", 202406): (2_400_000, 800_000)}  # the clamped base (cap)

        corrected = await collection.post(f"/assessments/{first['assessment']['id']}/supersede", headers=clerk, json={
            "lines": [{"person_id": zhang, "base": "6000.00"}], "reason": "李四不属于本单位"})
        assert corrected.status_code == 201, corrected.text
        await wait_for(lambda: index_of(benefits, zhang).get(("PEN_EMP", 202406)) == (600_000, 800_000)
                       and not index_of(benefits, li))
        assert (await benefits.get("/admin/dead-letters", headers=auth("it_admin"))).json() == []
