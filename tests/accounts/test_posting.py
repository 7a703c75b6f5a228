"""Agency posting (AGENCY leg): collected lines from collection.payments.collected are posted to
individual accounts and contribution months, or held in suspense with a reason; idempotent on redelivery; the
suspense list is retried after the registry was fixed, or dismissed; a 1 000-line event is timed."""

import json
import time
from datetime import date, timedelta

import nats
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from services.accounts.ledger import service as ledger_service
from services.accounts.models import (
    AccountEntry,
    ContributionMonth,
    Enrolment,
    IndividualAccount,
    Person,
    PostingSuspense,
)
from services.accounts.posting import service as posting
from services.contracts.collection import (
    CollectedLine,
    PaymentsCollected,
    PaymentsRejected,
    RejectedLine,
    TreasuryRemitted,
)
from services.kernel import clock, context
from services.kernel.events import EventActor, EventPayload, build_envelope, new_event_id
from services.kernel.models import DeadLetter, InboxMessage
from tests.support.registry import (
    OTHER_DISTRICT,
    REGION,
    engine_of,
    error_code,
    make_citizen_id,
    make_uscc,
    outbox,
)
from tests.support.accounts import add_employer, add_person
from tests.support.e2e import wait_for

SYSTEM = context.Actor(id="system:accounts", role="system")
PAST = 202401  # a period in the past, whatever today is

# -- helpers ---------------------------------------------------------------------------------------------------------


def line(payment_id: str, *, fund: str = "PEN_EMP", period: int = PAST, person_id: str | None = None,
         citizen_id: str | None = None, employer_id: str | None = None, employer_fen: int = 128_000,
         individual_fen: int = 64_000, payer_uscc: str | None = None, **extra) -> CollectedLine:
    return CollectedLine(
        payment_id=payment_id, tax_line_id=f"tax-{payment_id}", payer_uscc=payer_uscc, employer_id=employer_id,
        person_id=person_id, citizen_id=citizen_id, fund=fund, period=period, employer_fen=employer_fen,
        individual_fen=individual_fen, late_fee_fen=extra.pop("late_fee_fen", 0), method="bank_withholding",
        voucher_no=f"V-{payment_id}", paid_date=date(2024, 2, 10), assessment_line_id=None,
        match_status="matched", **extra)


def collected(lines: list[CollectedLine], batch_id: str = "batch-1") -> PaymentsCollected:
    return PaymentsCollected(batch_id=batch_id, part=1, parts=1, lines=lines)


def add_enrolment(client, person_id: str, fund: str, employer_id: str | None, start: int = 202301,  # noqa: ANN001
                  end: int | None = None, status: str = "active") -> str:
    enrolment = Enrolment(id=new_event_id(), person_id=person_id, fund=fund,
                          fund_group="PENSION" if fund.startswith("PEN") else fund, employer_id=employer_id,
                          start_period=start, end_period=end, status=status, created_at=clock.utc_now(),
                          created_by="test")
    with Session(engine_of(client), expire_on_commit=False) as session:
        session.add(enrolment)
        session.commit()
    return enrolment.id


def credits(client) -> list[dict]:  # noqa: ANN001
    """The credits a posting reported, oldest first: entries of ``accounts.account.credited.v2`` events (a posting is
    a bulk path and reports no per-person v1 event)."""
    assert outbox(client, "accounts.account.credited.v1") == []
    return [entry for event in outbox(client, "accounts.account.credited.v2") for entry in event["entries"]]


def post_directly(client, payload: PaymentsCollected, event_id: str | None = None):  # noqa: ANN001, ANN201
    """What the consumer does with one event, in one transaction (without the bus)."""
    with Session(engine_of(client), expire_on_commit=False) as session, context.trace(actor=SYSTEM):
        result = posting.post_collected(session, payload, event_id=event_id or new_event_id())
        session.commit()
    return result


def envelope_of(payload: EventPayload):  # noqa: ANN201
    return build_envelope(payload, source="collection", subject="batch", actor=EventActor(id="system:collection"),
                          correlation_id=None, causation_id=None)


async def publish(nats_url: str, envelope, msg_id: str | None = None) -> None:  # noqa: ANN001
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(envelope.type, envelope.to_bytes(), headers={"Nats-Msg-Id": msg_id or envelope.id})
    finally:
        await nc.close()


async def applied(client, event_id: str) -> None:  # noqa: ANN001
    async def done() -> bool:
        with Session(engine_of(client)) as session:
            return session.get(InboxMessage, event_id) is not None

    await wait_for(done, timeout=20)


def balance(client, person_id: str) -> int | None:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        account = session.get(IndividualAccount, person_id)
        return account.balance_fen if account else None


def entries(client, person_id: str | None = None) -> list[AccountEntry]:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        query = select(AccountEntry).order_by(AccountEntry.period, AccountEntry.id)
        if person_id:
            query = query.where(AccountEntry.person_id == person_id)
        return list(session.execute(query).scalars())


def months(client, person_id: str) -> list[tuple[str, int, str | None]]:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        rows = session.execute(select(ContributionMonth).where(ContributionMonth.person_id == person_id)
                               .order_by(ContributionMonth.fund, ContributionMonth.period)).scalars()
        return [(m.fund, m.period, m.employer_id) for m in rows]


def suspense(client) -> dict[str, PostingSuspense]:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        return {r.payment_id: r for r in session.execute(select(PostingSuspense)).scalars()}


def posted_lines(client) -> list[dict]:  # noqa: ANN001
    return [ln for e in outbox(client, "accounts.contributions.posted.v2") for ln in e["lines"]]


def held_lines(client) -> list[dict]:  # noqa: ANN001
    return [ln for e in outbox(client, "accounts.contributions.held.v1") for ln in e["lines"]]


def assert_ledger_holds(client, person_id: str) -> None:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        assert ledger_service.rederive_balance(session, person_id) == session.get(IndividualAccount,
                                                                                  person_id).balance_fen


# -- through the bus -------------------------------------------------------------------------------------------------


async def test_collected_payments_are_posted_once_through_the_bus(start_service, settings, auth):
    async with start_service("accounts") as accounts:
        employer = add_employer(accounts)
        anna, _ = add_person(accounts, 1)
        bo, bo_citizen = add_person(accounts, 2)
        for fund in ("PEN_EMP", "UNEMP", "INJURY"):
            add_enrolment(accounts, anna, fund, employer)
        add_enrolment(accounts, bo, "PEN_GOV", employer)
        unknown = make_citizen_id(9)
        payload = collected([
            line("p1", person_id=anna, employer_id=employer),
            line("p2", fund="UNEMP", person_id=anna, employer_id=employer, employer_fen=2_000, individual_fen=2_000),
            line("p3", fund="INJURY", person_id=anna, employer_id=employer, employer_fen=1_600, individual_fen=0),
            line("p4", fund="PEN_GOV", citizen_id=bo_citizen, payer_uscc=make_uscc(1), individual_fen=50_000),
            line("p5", fund="INJURY", employer_id=employer, employer_fen=9_900, individual_fen=0),  # employer-level
            line("p6", citizen_id=unknown, employer_id=employer),
        ])
        envelope = envelope_of(payload)
        await accounts.app.state.bus.wait_ready(10)
        await publish(settings.nats_server_url, envelope)
        await applied(accounts, envelope.id)

        assert balance(accounts, anna) == 64_000 and balance(accounts, bo) == 50_000
        [entry] = entries(accounts, anna)
        assert (entry.entry_type, entry.amount_fen, entry.period, entry.year, entry.idempotency_key,
                entry.reference, entry.posted_by) == ("contribution", 64_000, PAST, 2024, "posting:p1", "p1",
                                                      "system:accounts")
        assert months(accounts, anna) == [("INJURY", PAST, employer), ("PEN_EMP", PAST, employer),
                                          ("UNEMP", PAST, employer)]
        assert months(accounts, bo) == [("PEN_GOV", PAST, employer)]  # the payer found by its USCC
        assert_ledger_holds(accounts, anna)

        posted = {ln["payment_id"]: ln for ln in posted_lines(accounts)}
        assert set(posted) == {"p1", "p2", "p3", "p4", "p5"}
        assert (posted["p1"]["credited_fen"], posted["p1"]["entry_id"]) == (64_000, entry.id)
        p2 = posted["p2"]
        assert (p2["credited_fen"], p2["entry_id"], p2["individual_fen"]) == (0, None, 2000)
        assert posted["p5"] == {"payment_id": "p5", "person_id": None, "employer_id": employer, "fund": "INJURY",
                                "period": PAST, "employer_fen": 9_900, "individual_fen": 0, "credited_fen": 0,
                                "entry_id": None}
        [event] = outbox(accounts, "accounts.contributions.posted.v2")
        assert event["source_batch_id"] == "batch-1" and event["_actor"]["id"] == "system:accounts"
        [held] = held_lines(accounts)
        assert (held["payment_id"], held["reason_code"], held["amount_fen"], held["citizen_id"]) == \
            ("p6", "PERSON_NOT_FOUND", 192_000, unknown)
        credited = credits(accounts)
        assert sorted((c["person_id"], c["amount_fen"], c["balance_fen"], c["idempotency_key"]) for c in credited) == \
            sorted([(anna, 64_000, 64_000, "posting:p1"), (bo, 50_000, 50_000, "posting:p4")])
        row = suspense(accounts)["p6"]
        assert (row.status, row.reason_code, row.batch_id, row.source_event_id, row.employer_fen) == \
            ("held", "PERSON_NOT_FOUND", "batch-1", envelope.id, 128_000)
        # the line read as a struct, kept as the (object form's) model writes it
        assert row.line == CollectedLine(**dict(payload.lines[5])).model_dump_json()

        # The same event delivered again (past JetStream's de-duplication): the inbox absorbs it.
        await publish(settings.nats_server_url, envelope, msg_id=f"{envelope.id}-again")
        # The same payments in a new event (collection sent them again): the keys and the suspense absorb them.
        again = envelope_of(payload)
        await publish(settings.nats_server_url, again)
        await applied(accounts, again.id)
        # A family accounts does not need is not delivered at all (the durable's subject filter); a type of the
        # payments family it does not need is delivered and ignored, not dead-lettered. Published in this order, the
        # second one applied means the first would have been delivered before it.
        not_delivered = envelope_of(TreasuryRemitted(remittance_id="r1", fund="PEN_EMP", period=PAST, amount_fen=1,
                                                     remitted_on=date(2024, 2, 1), voucher_no="T1"))
        await publish(settings.nats_server_url, not_delivered)
        ignored = envelope_of(PaymentsRejected(batch_id="batch-9", lines=[RejectedLine(
            tax_line_id="t9", line_no=1, code="CASH_NOT_ALLOWED", message="现金缴费不予受理", method="cash")]))
        await publish(settings.nats_server_url, ignored)
        await applied(accounts, ignored.id)
        with Session(engine_of(accounts)) as session:
            assert session.get(InboxMessage, not_delivered.id) is None

        assert balance(accounts, anna) == 64_000 and balance(accounts, bo) == 50_000
        assert len(entries(accounts)) == 2 and len(suspense(accounts)) == 1
        assert len(credits(accounts)) == 2
        assert len(held_lines(accounts)) == 1  # still held for the same reason: not reported again
        # Lines without a credit sent again are reported posted again (keyed by payment id downstream).
        repeated = [ln["payment_id"] for e in outbox(accounts, "accounts.contributions.posted.v2")[1:]
                    for ln in e["lines"]]
        assert sorted(repeated) == ["p2", "p3", "p5"]
        with Session(engine_of(accounts)) as session:
            assert session.execute(select(func.count()).select_from(DeadLetter)).scalar_one() == 0
            assert session.execute(select(func.count()).select_from(InboxMessage)).scalar_one() == 3
        audit = (await accounts.get("/audit/entries", headers=auth("internal_auditor"),
                                    params={"entity_type": "payment_batch"})).json()
        assert [json.loads(a["detail"])["posted"] for a in audit] == [5, 3]
        assert json.loads(audit[0]["detail"])["entries_sha256"]
        assert (await accounts.get("/audit/verify", headers=auth("internal_auditor"))).json()["ok"] is True


# -- every reason a line is held ---------------------------------------------------------------------------------------


async def test_every_line_that_cannot_be_posted_is_held_with_its_reason(start_service):
    async with start_service("accounts") as accounts:
        employer = add_employer(accounts, 1)
        other_employer = add_employer(accounts, 2)
        alive, alive_citizen = add_person(accounts, 1)
        add_enrolment(accounts, alive, "PEN_EMP", employer)
        _, other_citizen = add_person(accounts, 2)
        no_unemp, _ = add_person(accounts, 3)
        add_enrolment(accounts, no_unemp, "PEN_EMP", employer)
        dead, _ = add_person(accounts, 4, life_status="deceased")  # died 2025-03-01
        add_enrolment(accounts, dead, "PEN_EMP", employer, status="stopped", end=202503)
        settled, _ = add_person(accounts, 5)
        add_enrolment(accounts, settled, "PEN_EMP", employer)
        with Session(engine_of(accounts)) as session:  # an account settled by a withdrawal
            session.add(IndividualAccount(person_id=settled, balance_fen=0, status="closed",
                                          opened_at=clock.utc_now()))
            session.flush()
            for key, amount in (("c", 100), ("w", -100)):
                session.add(AccountEntry(id=new_event_id(), person_id=settled, amount_fen=amount, year=2023,
                                         period=202301, entry_type="contribution" if amount > 0 else "withdrawal",
                                         idempotency_key=f"settled-{key}", posted_at=clock.utc_now(),
                                         posted_by="t"))
            session.commit()
        stopped, _ = add_person(accounts, 6)
        add_enrolment(accounts, stopped, "UNEMP", employer, start=202301, end=202306, status="stopped")
        suspended, _ = add_person(accounts, 7)
        add_enrolment(accounts, suspended, "UNEMP", employer, status="suspended")

        post_directly(accounts, collected([line("already", person_id=alive, employer_id=employer, period=202312)],
                                          batch_id="b0"))
        lines = {
            "UNKNOWN_FUND": line("l1", fund="MEDICAL", person_id=alive),
            "INVALID_PERIOD": line("l2", person_id=alive, period=202413),
            "PERIOD_IN_FUTURE": line("l3", person_id=alive, period=209901),
            "NEGATIVE_AMOUNT": line("l4", person_id=alive, individual_fen=-1),
            "PERSON_NOT_FOUND": line("l5", citizen_id=make_citizen_id(99), employer_id=employer),
            "CITIZEN_ID_MISMATCH": line("l6", person_id=alive, citizen_id=other_citizen),
            "NO_ENROLMENT": line("l7", fund="UNEMP", person_id=no_unemp, employer_id=employer),
            "EMPLOYER_MISMATCH": line("l8", person_id=alive, employer_id=other_employer),
            "PERSON_DECEASED": line("l9", person_id=dead, period=202504),
            "ACCOUNT_CLOSED": line("l10", person_id=settled, employer_id=employer),
            "EMPLOYER_NOT_FOUND": line("l11", fund="INJURY", payer_uscc=make_uscc(77), individual_fen=0),
            "INDIVIDUAL_PART_WITHOUT_PERSON": line("l12", employer_id=employer),
            "ALREADY_POSTED_DIFFERENTLY": line("already", person_id=alive, period=202312, individual_fen=1),
        }
        postable = [
            line("ok1", person_id=dead, period=202503),  # the month of death is still a month of contributions
            line("ok2", fund="UNEMP", person_id=stopped, period=202306, individual_fen=500),  # stopped, covers
            line("ok3", fund="UNEMP", person_id=suspended, period=202402, individual_fen=500),  # suspended, covers
            line("ok4", person_id=alive, citizen_id=alive_citizen, employer_id=employer),
        ]
        result = post_directly(accounts, collected([*lines.values(), *postable, line("ok4", person_id=alive)],
                                                   batch_id="b1"))
        assert (result.lines, result.posted, result.held, result.skipped) == (18, 4, 13, 1)
        held = suspense(accounts)
        assert {code: held[ln.payment_id].reason_code for code, ln in lines.items()} == {c: c for c in lines}
        assert all(r.status == "held" and r.batch_id == "b1" for r in held.values())
        assert {ln["reason_code"] for ln in held_lines(accounts)} == set(lines)
        assert result.held_by_reason == {code: 1 for code in lines}
        # outside the window of a stopped enrolment there is none
        post_directly(accounts, collected([line("l13", fund="UNEMP", person_id=stopped, period=202307)], "b2"))
        assert suspense(accounts)["l13"].reason_code == "NO_ENROLMENT"
        # nothing was credited for a held line; the postable ones were
        assert balance(accounts, alive) == 128_000 and balance(accounts, dead) == 64_000
        assert balance(accounts, settled) == 0 and len(entries(accounts, settled)) == 2
        assert months(accounts, stopped) == [("UNEMP", 202306, employer)]
        assert months(accounts, no_unemp) == []
        [b1_posted] = [e for e in outbox(accounts, "accounts.contributions.posted.v2") if e["source_batch_id"] == "b1"]
        assert sorted(ln["payment_id"] for ln in b1_posted["lines"]) == ["ok1", "ok2", "ok3", "ok4"]
        reason = held["l9"].reason
        assert "2025-03-01" in reason and "202504" in reason


async def test_a_transferred_out_account_is_reopened_by_a_new_contribution(start_service):
    async with start_service("accounts") as accounts:
        employer = add_employer(accounts)
        person, _ = add_person(accounts)
        add_enrolment(accounts, person, "PEN_EMP", employer)
        post_directly(accounts, collected([line("a", person_id=person, period=202301)]))
        with Session(engine_of(accounts)) as session:
            account = session.get(IndividualAccount, person)
            session.add(AccountEntry(id=new_event_id(), person_id=person, amount_fen=-64_000, year=2023, period=None,
                                     entry_type="transfer_out", idempotency_key="out", posted_at=clock.utc_now(),
                                     posted_by="t"))
            account.balance_fen, account.status = 0, "closed"
            session.add(account)
            session.commit()
        post_directly(accounts, collected([line("b", person_id=person, period=202302),
                                           line("c", person_id=person, period=202303, individual_fen=1)]))
        with Session(engine_of(accounts)) as session:
            account = session.get(IndividualAccount, person)
            assert (account.status, account.balance_fen, account.version) == ("open", 64_001, 5)
        credited = credits(accounts)
        assert [(c["amount_fen"], c["balance_fen"]) for c in credited] == [(64_000, 64_000), (64_000, 64_000),
                                                                           (1, 64_001)]
        assert_ledger_holds(accounts, person)


# -- the suspense list over HTTP ---------------------------------------------------------------------------------------


async def test_held_lines_are_listed_retried_after_the_fix_and_dismissed(start_service, auth):
    reviewer = auth("agency_reviewer", region=REGION, subject="rev.zhao")
    accountant = auth("accountant", region="150100", subject="acct.wang")
    async with start_service("accounts") as accounts:
        employer = add_employer(accounts)
        newcomer = make_citizen_id(11)
        late, _ = add_person(accounts, 12)
        elsewhere, _ = add_person(accounts, 13, region=OTHER_DISTRICT)
        post_directly(accounts, collected([
            line("n1", citizen_id=newcomer, employer_id=employer),
            line("n2", citizen_id=newcomer, employer_id=employer, period=202402),
            line("e1", fund="UNEMP", person_id=late, employer_id=employer, individual_fen=500),
            line("x1", person_id=elsewhere, employer_id=employer),
            line("d1", citizen_id=make_citizen_id(14), employer_id=employer),
        ], batch_id="tax-batch-7"))

        # reading: reviewers, accountants and internal control; nobody else
        for role in ("agency_clerk", "cashier", "oversight_officer"):
            r = await accounts.get("/postings/suspense", headers=auth(role))
            assert r.status_code == 403, role
        assert (await accounts.post("/postings/suspense/retry", json={},
                                    headers=auth("internal_auditor"))).status_code == 403
        page = (await accounts.get("/postings/suspense", headers=auth("internal_auditor"),
                                   params={"reason_code": "PERSON_NOT_FOUND", "limit": 2})).json()
        assert [i["payment_id"] for i in page["items"]] == ["n1", "n2"] and page["next_cursor"]
        rest = (await accounts.get("/postings/suspense", headers=reviewer,
                                   params={"reason_code": "PERSON_NOT_FOUND", "after": page["next_cursor"]})).json()
        assert [i["payment_id"] for i in rest["items"]] == ["d1"] and rest["next_cursor"] is None
        first = page["items"][0]
        assert (first["individual_amount"], first["employer_amount"], first["citizen_id"], first["batch_id"]) == \
            ("640.00", "1280.00", newcomer, "tax-batch-7")
        masked = (await accounts.get(f"/postings/suspense/{first['id']}", headers=accountant)).json()
        assert masked["citizen_id"] != newcomer and "*" in masked["citizen_id"]  # accountants see it masked
        bad = await accounts.get("/postings/suspense", headers=reviewer, params={"reason_code": "NOPE"})
        assert bad.status_code == 422
        summary = (await accounts.get("/postings/suspense/summary", headers=reviewer)).json()
        assert {(s["reason_code"], s["lines"]) for s in summary} == {("PERSON_NOT_FOUND", 3), ("NO_ENROLMENT", 2)}

        # not fixed yet: still held, the attempt counted, no event again
        r = await accounts.post(f"/postings/suspense/{first['id']}/retry", json={}, headers=reviewer)
        assert r.status_code == 200 and r.json()["outcome"] == "held" and r.json()["line"]["attempts"] == 1
        assert len(held_lines(accounts)) == 5

        # the registry is fixed: the person registered and enrolled
        with Session(engine_of(accounts)) as session:
            person = Person(id=new_event_id(), citizen_id=newcomer, name="新参保", sex="M",
                            birth_date=date(1985, 6, 15), region=REGION, registered_at=clock.utc_now(),
                            registered_by="t")
            session.add(person)
            session.commit()
            newcomer_id = person.id
        add_enrolment(accounts, newcomer_id, "PEN_EMP", employer)
        r = await accounts.post(f"/postings/suspense/{first['id']}/retry", json={"note": "已补办参保登记"},
                                headers=reviewer)
        assert r.status_code == 200, r.text
        done = r.json()["line"]
        assert r.json()["outcome"] == "posted"
        assert (done["status"], done["resolved_by"], done["note"], done["person_id"]) == \
            ("posted", "rev.zhao", "已补办参保登记", newcomer_id)
        assert balance(accounts, newcomer_id) == 64_000
        [entry] = entries(accounts, newcomer_id)
        assert (done["entry_id"], entry.posted_by, entry.idempotency_key) == (entry.id, "rev.zhao", "posting:n1")
        again = await accounts.post(f"/postings/suspense/{first['id']}/retry", json={}, headers=reviewer)
        assert again.status_code == 409 and error_code(again) == "SUSPENSE_LINE_RESOLVED"

        # retry all: n2 posts now, e1 once enrolled; x1 is outside the district reviewer's area; d1 stays held
        add_enrolment(accounts, late, "UNEMP", employer)
        add_enrolment(accounts, elsewhere, "PEN_EMP", employer)
        result = (await accounts.post("/postings/suspense/retry", json={"note": "批量重试"}, headers=reviewer)).json()
        assert result == {"tried": 4, "posted": 2, "still_held": 1, "out_of_region": 1, "credited": "640.00",
                          "held_by_reason": {"PERSON_NOT_FOUND": 1}}
        x1 = suspense(accounts)["x1"]
        assert x1.status == "held" and x1.attempts == 0
        one = await accounts.post(f"/postings/suspense/{x1.id}/retry", json={}, headers=reviewer)
        assert one.status_code == 403 and error_code(one) == "OUT_OF_REGION"
        by_city = await accounts.post("/postings/suspense/retry", json={"reason_code": "NO_ENROLMENT"},
                                      headers=accountant)
        assert by_city.json()["posted"] == 1
        assert months(accounts, late) == [("UNEMP", PAST, employer)]
        posted = {ln["payment_id"]: e["source_batch_id"] for e in outbox(accounts, "accounts.contributions.posted.v2")
                  for ln in e["lines"]}
        assert posted == {"n1": "tax-batch-7", "n2": "tax-batch-7", "e1": "tax-batch-7", "x1": "tax-batch-7"}

        # dismiss with a note
        d1 = suspense(accounts)["d1"]
        no_note = await accounts.post(f"/postings/suspense/{d1.id}/dismiss", json={}, headers=reviewer)
        assert no_note.status_code == 422
        r = await accounts.post(f"/postings/suspense/{d1.id}/dismiss", json={"note": "税务退费，不记账"}, headers=reviewer)
        assert r.status_code == 200 and (r.json()["status"], r.json()["note"]) == ("dismissed", "税务退费，不记账")
        twice = await accounts.post(f"/postings/suspense/{d1.id}/dismiss", json={"note": "x"}, headers=reviewer)
        assert twice.status_code == 409
        missing = await accounts.post("/postings/suspense/nope/retry", json={}, headers=reviewer)
        assert missing.status_code == 404 and error_code(missing) == "SUSPENSE_LINE_NOT_FOUND"
        dismissed = (await accounts.get("/postings/suspense", headers=reviewer, params={"status": "dismissed"})).json()
        assert [i["payment_id"] for i in dismissed["items"]] == ["d1"]

        # collection sends the batch again: nothing is posted twice, the dismissed line stays dismissed
        before = len(outbox(accounts))
        result = post_directly(accounts, collected([line("n1", citizen_id=newcomer, employer_id=employer),
                                                    line("d1", citizen_id=make_citizen_id(14))], "tax-batch-7"))
        assert (result.posted, result.skipped) == (0, 2) and len(outbox(accounts)) == before
        assert balance(accounts, newcomer_id) == 128_000
        assert (await accounts.get("/audit/verify", headers=auth("internal_auditor"))).json()["ok"] is True


# -- volume ------------------------------------------------------------------------------------------------------------


def _thousand_persons(client, employer_id: str, n: int) -> list[str]:  # noqa: ANN001
    now = clock.utc_now()
    persons, enrolments = [], []
    for i in range(n):
        born = date(1970, 1, 1) + timedelta(days=i)
        persons.append({"id": new_event_id(), "citizen_id": make_citizen_id(i, born=born), "name": f"人员{i}",
                        "sex": "M", "birth_date": born, "nationality": "CHN", "household_type": "urban",
                        "region": REGION, "life_status": "alive", "registered_at": now, "registered_by": "t",
                        "version": 1})
        enrolments.append({"id": new_event_id(), "person_id": persons[-1]["id"], "fund": "PEN_EMP",
                           "fund_group": "PENSION", "employer_id": employer_id, "start_period": 202001,
                           "status": "active", "created_at": now, "created_by": "t", "version": 1})
    with Session(engine_of(client)) as session:
        session.execute(Person.__table__.insert(), persons)
        session.execute(Enrolment.__table__.insert(), enrolments)
        session.commit()
    return [p["id"] for p in persons]


async def test_a_thousand_line_event_posts_in_one_pass(start_service):
    async with start_service("accounts") as accounts:
        employer = add_employer(accounts)
        person_ids = _thousand_persons(accounts, employer, 1000)
        timings = []
        for period in (202401, 202402):  # first: every account opened; then: every account credited again
            payload = collected([line(f"{period}-{i}", person_id=p, period=period, employer_id=employer,
                                      individual_fen=60_000 + i) for i, p in enumerate(person_ids)],
                                batch_id=f"big-{period}")
            started = time.perf_counter()
            result = post_directly(accounts, payload)
            timings.append(time.perf_counter() - started)
            assert (result.posted, result.held, result.entries) == (1000, 0, 1000)
        print(f"\n1 000-line PaymentsCollected on SQLite: {timings[0]:.3f} s opening 1 000 accounts, "
              f"{timings[1]:.3f} s crediting existing ones")
        with Session(engine_of(accounts)) as session:
            assert session.execute(select(func.count()).select_from(AccountEntry)).scalar_one() == 2000
            assert session.execute(select(func.count()).select_from(ContributionMonth)).scalar_one() == 2000
            total = session.execute(select(func.sum(IndividualAccount.balance_fen))).scalar_one()
            assert total == 2 * sum(60_000 + i for i in range(1000))
            assert session.get(IndividualAccount, person_ids[7]).version == 3
        assert balance(accounts, person_ids[7]) == 2 * 60_007
        assert_ledger_holds(accounts, person_ids[999])
        posted = outbox(accounts, "accounts.contributions.posted.v2")
        assert [len(e["lines"]) for e in posted] == [1000, 1000]
        assert [len(e["entries"]) for e in outbox(accounts, "accounts.account.credited.v2")] == [1000, 1000]
        assert len({c["entry_id"] for c in credits(accounts)}) == 2000


async def test_a_pass_of_more_than_a_thousand_credits_reports_them_in_v2_events_of_a_thousand(start_service):
    """2 500 credits in one pass (1 250 persons, two months each): ceil(2 500 / 1 000) = 3 credited.v2 events, every
    entry once, each with the balance after it; the balances are exact."""
    async with start_service("accounts") as accounts:
        employer = add_employer(accounts)
        person_ids = _thousand_persons(accounts, employer, 1250)
        items = [posting.Item(line=line(f"{period}-{i}", person_id=p, period=period, employer_id=employer,
                                        individual_fen=10_000 + i + period % 100), batch_id="big")
                 for period in (202401, 202402) for i, p in enumerate(person_ids)]
        with Session(engine_of(accounts)) as session, context.trace(actor=SYSTEM):
            result = posting.post_items(session, items, source_event_id=new_event_id())
            session.commit()
        assert (result.posted, result.entries, result.accounts_opened) == (2500, 2500, 1250)
        events = [e for e in outbox(accounts) if e["type"].startswith("accounts.account.")]
        assert [(e["type"], len(e["entries"])) for e in events] == [("accounts.account.credited.v2", 1000)] * 2 + [
            ("accounts.account.credited.v2", 500)]
        reported = credits(accounts)
        with Session(engine_of(accounts)) as session:
            stored = {e.id: e for e in session.execute(select(AccountEntry)).scalars()}
            balances = dict(session.execute(select(IndividualAccount.person_id, IndividualAccount.balance_fen)).all())
        assert sorted(c["entry_id"] for c in reported) == sorted(stored)
        running: dict[str, int] = {}
        for c in reported:  # in the order reported, each entry's balance is the one after it
            entry = stored[c["entry_id"]]
            assert (c["person_id"], c["amount_fen"], c["period"], c["idempotency_key"], c["entry_type"]) == \
                (entry.person_id, entry.amount_fen, entry.period, entry.idempotency_key, "contribution")
            running[c["person_id"]] = running.get(c["person_id"], 0) + c["amount_fen"]
            assert c["balance_fen"] == running[c["person_id"]]
        assert running == balances
        assert balances[person_ids[3]] == (10_000 + 3 + 1) + (10_000 + 3 + 2)
        assert sum(balances.values()) == sum(item.line.individual_fen for item in items)
        assert_ledger_holds(accounts, person_ids[1249])


@pytest.mark.unit
def test_events_are_split_at_a_thousand_lines():
    assert [len(c) for c in posting._chunks(list(range(2500)), posting.EVENT_LINES)] == [1000, 1000, 500]


@pytest.mark.unit
@pytest.mark.parametrize("enrolment, period, covered", [
    (dict(start_period=202401, end_period=None, status="active"), 202401, True),
    (dict(start_period=202401, end_period=None, status="active"), 202312, False),
    (dict(start_period=202401, end_period=None, status="suspended"), 202406, True),
    (dict(start_period=202401, end_period=202403, status="stopped"), 202403, True),
    (dict(start_period=202401, end_period=202403, status="stopped"), 202404, False),
    (dict(start_period=202401, end_period=None, status="stopped"), 202402, False),
])
def test_the_covering_rule_is_the_verification_rule(enrolment, period, covered):
    row = Enrolment(id="e", person_id="p", fund="PEN_EMP", fund_group="PENSION", created_at=clock.utc_now(),
                    created_by="t", **enrolment)
    assert posting.covers(row, period) is covered
