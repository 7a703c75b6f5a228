"""Recovery of overpayments (001 第二十九条(四)、第二十九条(五)): notices (automatic and by hand), repayments by the
cashier with a business key (idempotent), offsets against later payments, one-off benefits and the individual account
where the rules allow, never more than owed, and escalation after the deadline."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import Session

from services.benefits.models import Claim, Overpayment, PayrollLine, Recovery, RecoveryNotice
from services.benefits.recovery.service import offsets_for_lines
from services.kernel import clock
from services.kernel.events import new_event_id
from services.kernel.periods import add_months, period_of
from tests.support.registry import engine_of, error_code, outbox
from tests.support.benefits import day_in
from tests.support.benefits_mirror import REGION, add_person, apply, events, get, grant, life, payroll_line, rows

TODAY = clock.china_today()
NOW_PERIOD = period_of(TODAY)


def deceased_with_overpayments(client, serial: int, *, months: int = 2, amount_fen: int = 300_000,  # noqa: ANN001
                               region: str = REGION) -> tuple[str, str]:
    """A pensioner paid ``months`` months after the month of death; the death event found them. Returns (person,
    notice)."""
    person_id = add_person(client, serial, region=region)
    pension = grant(client, person_id, monthly_fen=amount_fen)
    death_month = add_months(NOW_PERIOD, -(months + 1))
    for n in range(1, months + 1):
        payroll_line(client, pension, add_months(death_month, n), amount_fen=amount_fen)
    apply(client, life(person_id, "deceased", death_date=day_in(death_month, 20)))
    [notice] = rows(client, RecoveryNotice, RecoveryNotice.person_id == person_id)
    return person_id, notice.id


async def test_repayments_are_idempotent_never_exceed_what_is_owed_and_close_the_notice(start_service, auth):
    cashier = auth("cashier", region=REGION, subject="cashier.sun")
    async with start_service("benefits") as benefits:
        person_id, notice_id = deceased_with_overpayments(benefits, 61)  # 6 000.00 owed
        url = f"/recovery/notices/{notice_id}/repayments"

        no_key = await benefits.post(url, json={"amount": "1000.00"}, headers=cashier)
        assert no_key.status_code == 422 and error_code(no_key) == "IDEMPOTENCY_KEY_REQUIRED"
        clerk_tries = await benefits.post(url, json={"amount": "1000.00"}, headers={
            **auth("agency_clerk", region=REGION), "Idempotency-Key": "K1"})
        assert clerk_tries.status_code == 403

        body = {"amount": "1000.00", "paid_on": TODAY.isoformat(), "reference": "BANK-0001"}
        first = await benefits.post(url, json=body, headers={**cashier, "Idempotency-Key": "K1"})
        assert first.status_code == 201, first.text
        assert (first.json()["notice"]["recovered"], first.json()["notice"]["remaining"], first.json()["replayed"]) == (
            "1000.00", "5000.00", False)
        again = await benefits.post(url, json=body, headers={**cashier, "Idempotency-Key": "K1"})
        assert again.status_code == 200 and again.json()["replayed"] is True
        assert again.json()["recovery"]["id"] == first.json()["recovery"]["id"]
        other = await benefits.post(url, json={**body, "amount": "1500.00"}, headers={**cashier, "Idempotency-Key": "K1"})
        assert other.status_code == 409 and error_code(other) == "IDEMPOTENCY_KEY_REUSED"
        too_much = await benefits.post(url, json={"amount": "5000.01"}, headers={**cashier, "Idempotency-Key": "K2"})
        assert too_much.status_code == 409 and error_code(too_much) == "OVER_RECOVERY"
        bad = await benefits.post(url, json={"amount": 12.5}, headers={**cashier, "Idempotency-Key": "K3"})
        assert bad.status_code == 422  # a float has already lost the fen
        zero = await benefits.post(url, json={"amount": "0"}, headers={**cashier, "Idempotency-Key": "K3"})
        assert zero.status_code == 422
        derived = await benefits.post(url, json={"amount": "1.00"}, headers={**cashier, "Idempotency-Key": "a#b"})
        assert derived.status_code == 422 and error_code(derived) == "INVALID_IDEMPOTENCY_KEY"
        elsewhere = await benefits.post(url, json={"amount": "1.00"}, headers={
            **auth("cashier", region="150103"), "Idempotency-Key": "K4"})
        assert elsewhere.status_code == 403 and error_code(elsewhere) == "OUT_OF_REGION"

        # two cashiers at once, each for 3 000.00 of the 5 000.00 left: only one is recorded
        racing = await asyncio.gather(*[
            benefits.post(url, json={"amount": "3000.00"}, headers={**cashier, "Idempotency-Key": f"R{n}"})
            for n in (1, 2)])
        assert sorted(r.status_code for r in racing) == [201, 409]
        rest = await benefits.post(url, json={"amount": "2000.00"}, headers={**cashier, "Idempotency-Key": "K5"})
        assert rest.status_code == 201 and rest.json()["notice"]["status"] == "recovered"
        closed = await benefits.post(url, json={"amount": "0.01"}, headers={**cashier, "Idempotency-Key": "K6"})
        assert closed.status_code == 409 and error_code(closed) == "RECOVERY_NOTICE_CLOSED"

        notice = get(benefits, RecoveryNotice, notice_id)
        assert (notice.amount_fen, notice.recovered_fen, notice.status) == (600_000, 600_000, "recovered")
        assert sum(r.amount_fen for r in rows(benefits, Recovery)) == 600_000
        recorded = events(benefits, "benefits.recovery.recorded.v1")
        assert [(e["method"], e["amount_fen"], e["remaining_fen"]) for e in recorded] == [
            ("repayment", 100_000, 500_000), ("repayment", 300_000, 200_000), ("repayment", 200_000, 0)]
        detail = (await benefits.get(f"/recovery/notices/{notice_id}", headers=cashier)).json()
        assert [r["reference"] for r in detail["recoveries"]][0] == "BANK-0001"
        listed = (await benefits.get("/recovery/notices", params={"person_id": person_id, "status": "recovered"},
                                     headers=auth("internal_auditor", region=REGION))).json()
        assert [n["id"] for n in listed["items"]] == [notice_id]


async def test_a_notice_by_hand_gathers_open_overpayments(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    async with start_service("benefits") as benefits:
        person_id, auto_notice = deceased_with_overpayments(benefits, 62, months=1)
        nothing = await benefits.post("/recovery/notices", json={"person_id": person_id}, headers=clerk)
        assert nothing.status_code == 409 and error_code(nothing) == "NO_OPEN_OVERPAYMENTS"
        # an overpayment found by hand-checking (e.g. an oversight case) is recorded and gathered by a clerk
        pension = grant(benefits, person_id)
        line = payroll_line(benefits, pension, add_months(NOW_PERIOD, -1), amount_fen=123_456)
        with Session(engine_of(benefits)) as session:
            session.add(Overpayment(id=new_event_id(), person_id=person_id, payroll_line_id=line,
                                    period=add_months(NOW_PERIOD, -1),
                                    amount_fen=123_456, reason="manual_finding", found_at=clock.utc_now()))
            session.commit()
        open_ = (await benefits.get("/recovery/overpayments", params={"person_id": person_id, "open_only": True},
                                    headers=clerk)).json()
        assert [o["amount"] for o in open_["items"]] == ["1234.56"]
        issued = await benefits.post("/recovery/notices", json={"person_id": person_id}, headers=clerk)
        assert issued.status_code == 201, issued.text
        notice = issued.json()
        assert (notice["amount"], notice["deadline"], notice["issued_by"], notice["status"]) == (
            "1234.56", (TODAY + timedelta(days=30)).isoformat(), "clerk.li", "open")
        assert notice["id"] != auto_notice and [o["payroll_line_id"] for o in notice["overpayments"]] == [line]
        unknown = await benefits.post("/recovery/notices", json={"person_id": "nobody"}, headers=clerk)
        assert unknown.status_code == 404 and error_code(unknown) == "PERSON_NOT_FOUND"


async def test_offsets_follow_the_rules_and_never_exceed_the_payment_or_the_debt(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    accountant = auth("accountant", region=REGION, subject="acct.wang")
    async with start_service("benefits") as benefits:
        # imprisoned for two months, paid meanwhile, released: 4 000.00 owed; payments resume
        person_id = add_person(benefits, 63)
        pension = grant(benefits, person_id, monthly_fen=200_000)
        start = add_months(NOW_PERIOD, -3)
        for n in (1, 2):
            payroll_line(benefits, pension, add_months(start, n), amount_fen=200_000)
        apply(benefits, life(person_id, "imprisoned", imprisoned_from=day_in(start, 2)))
        apply(benefits, life(person_id, "alive", "imprisoned", imprisoned_from=day_in(start, 2),
                             imprisoned_until=day_in(add_months(start, 2), 28)))
        [notice] = rows(benefits, RecoveryNotice)
        assert (notice.amount_fen, get(benefits, type(notice), notice.id).status) == (400_000, "open")
        url = f"/recovery/notices/{notice.id}/offsets"
        next_month = payroll_line(benefits, pension, add_months(NOW_PERIOD, 1), status="pending", amount_fen=200_000)
        paid_already = payroll_line(benefits, pension, NOW_PERIOD, amount_fen=200_000)

        cashier = await benefits.post(url, json={"method": "payroll_offset", "amount": "1.00", "reference": next_month},
                                      headers=auth("cashier", region=REGION))
        assert cashier.status_code == 403
        wrong_role = await benefits.post(url, json={"method": "payroll_offset", "amount": "1.00",
                                                    "reference": next_month}, headers=accountant)
        assert wrong_role.status_code == 403 and error_code(wrong_role) == "FORBIDDEN"
        paid = await benefits.post(url, json={"method": "payroll_offset", "amount": "100.00",
                                              "reference": paid_already}, headers=clerk)
        assert paid.status_code == 409 and error_code(paid) == "OFFSET_NOT_ALLOWED"
        above = await benefits.post(url, json={"method": "payroll_offset", "amount": "2000.01",
                                               "reference": next_month}, headers=clerk)
        assert above.status_code == 409 and error_code(above) == "OFFSET_EXCEEDS_PAYMENT"
        offset = await benefits.post(url, json={"method": "payroll_offset", "amount": "1500.00",
                                                "reference": next_month}, headers=clerk)
        assert offset.status_code == 201, offset.text
        assert offset.json()["notice"]["remaining"] == "2500.00"
        repeat = await benefits.post(url, json={"method": "payroll_offset", "amount": "1500.00",
                                                "reference": next_month}, headers=clerk)
        assert repeat.status_code == 200 and repeat.json()["replayed"] is True
        changed = await benefits.post(url, json={"method": "payroll_offset", "amount": "400.00",
                                                 "reference": next_month}, headers=clerk)
        assert changed.status_code == 409 and error_code(changed) == "IDEMPOTENCY_KEY_REUSED"
        with Session(engine_of(benefits)) as session:
            assert offsets_for_lines(session, [next_month, paid_already]) == {next_month: 150_000}

        # an approved one-off benefit of the person
        with Session(engine_of(benefits)) as session:
            claim = Claim(id=new_event_id(), person_id=person_id, kind="one_off", fund="PEN_EMP",
                          importance="ordinary", region=REGION, status="approved", effective_period=NOW_PERIOD,
                          one_off_amount_fen=300_000, computation="{}", verification="{}",
                          submitted_at=clock.utc_now(), submitted_by="test")
            session.add(claim)
            session.commit()
            claim_id = claim.id
        over = await benefits.post(url, json={"method": "one_off_offset", "amount": "2500.01", "reference": claim_id},
                                   headers=clerk)
        assert over.status_code == 409 and error_code(over) == "OVER_RECOVERY"
        one_off = await benefits.post(url, json={"method": "one_off_offset", "amount": "2000.00",
                                                 "reference": claim_id}, headers=clerk)
        assert one_off.status_code == 201 and one_off.json()["notice"]["remaining"] == "500.00"

        # the individual account pays out only on death
        alive = await benefits.post(url, json={"method": "individual_account", "amount": "500.00",
                                               "reference": "entry-1"}, headers=accountant)
        assert alive.status_code == 409 and error_code(alive) == "OFFSET_NOT_ALLOWED"
        request = await benefits.post(f"/recovery/notices/{notice.id}/individual-account-requests", json={},
                                      headers=clerk)
        assert request.status_code == 409 and error_code(request) == "OFFSET_NOT_ALLOWED"
        assert [e["method"] for e in events(benefits, "benefits.recovery.recorded.v1")] == [
            "payroll_offset", "one_off_offset"]


async def test_a_deceased_persons_individual_account_is_requested_then_offset(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    accountant = auth("accountant", region=REGION, subject="acct.wang")
    async with start_service("benefits") as benefits:
        _person_id, notice_id = deceased_with_overpayments(benefits, 64, months=1)
        requested = await benefits.post(f"/recovery/notices/{notice_id}/individual-account-requests",
                                        json={"note": "家属同意以个人账户余额抵扣"}, headers=clerk)
        assert requested.status_code == 201, requested.text
        assert (requested.json()["remaining"], requested.json()["withdrawal_idempotency_key"]) == (
            "3000.00", f"recovery-{notice_id}")
        by_clerk = await benefits.post(f"/recovery/notices/{notice_id}/offsets", headers=clerk, json={
            "method": "individual_account", "amount": "3000.00", "reference": "entry-9"})
        assert by_clerk.status_code == 403 and error_code(by_clerk) == "FORBIDDEN"
        offset = await benefits.post(f"/recovery/notices/{notice_id}/offsets", headers=accountant, json={
            "method": "individual_account", "amount": "3000.00", "reference": "entry-9"})
        assert offset.status_code == 201, offset.text
        assert offset.json()["notice"]["status"] == "recovered"
        [recovery] = rows(benefits, Recovery)
        assert (recovery.method, recovery.reference, recovery.recorded_by) == ("individual_account", "entry-9",
                                                                               "acct.wang")
        actions = [e["action"] for e in (await benefits.get("/audit/entries", params={"entity_type": "recovery_notice"},
                                                            headers=auth("internal_auditor"))).json()]
        assert actions == ["recovery_notice.issue", "recovery.individual_account_request", "recovery.individual_account"]


async def test_notices_past_their_deadline_with_money_remaining_escalate(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    cashier = auth("cashier", region=REGION)
    async with start_service("benefits") as benefits:
        _, overdue = deceased_with_overpayments(benefits, 71)
        _, repaid = deceased_with_overpayments(benefits, 72, months=1)
        _, not_due = deceased_with_overpayments(benefits, 73)
        _, elsewhere = deceased_with_overpayments(benefits, 74, region="150103")
        with Session(engine_of(benefits)) as session:
            session.execute(update(RecoveryNotice).where(RecoveryNotice.id.in_([overdue, repaid, elsewhere]))
                            .values(deadline=TODAY - timedelta(days=1)))
            session.commit()
        paid = await benefits.post(f"/recovery/notices/{repaid}/repayments", json={"amount": "3000.00"},
                                   headers={**cashier, "Idempotency-Key": "all"})
        assert paid.status_code == 201 and paid.json()["notice"]["status"] == "recovered"
        partly = await benefits.post(f"/recovery/notices/{overdue}/repayments", json={"amount": "100.00"},
                                     headers={**cashier, "Idempotency-Key": "part"})
        assert partly.status_code == 201

        on_deadline = (await benefits.post("/recovery/escalations", json={"as_of": (TODAY - timedelta(days=1))
                                                                          .isoformat()}, headers=clerk)).json()
        assert on_deadline["escalated"] == []  # the deadline day itself is still in time
        escalated = await benefits.post("/recovery/escalations", json={"as_of": TODAY.isoformat()}, headers=clerk)
        assert escalated.status_code == 200, escalated.text
        assert [(n["id"], n["status"], n["remaining"]) for n in escalated.json()["escalated"]] == [
            (overdue, "escalated", "5900.00")]
        [event] = events(benefits, "benefits.recovery.escalated.v1")
        assert (event["notice_id"], event["remaining_fen"], event["deadline"]) == (
            overdue, 590_000, (TODAY - timedelta(days=1)).isoformat())
        again = (await benefits.post("/recovery/escalations", json={"as_of": TODAY.isoformat()}, headers=clerk)).json()
        assert again["escalated"] == []
        future = await benefits.post("/recovery/escalations", json={"as_of": (TODAY + timedelta(days=1)).isoformat()},
                                     headers=clerk)
        assert future.status_code == 422
        assert get(benefits, RecoveryNotice, not_due).status == "open"
        assert get(benefits, RecoveryNotice, elsewhere).status == "open"  # another district's clerk escalates it

        # money still comes in after escalation, never more than owed
        late = await benefits.post(f"/recovery/notices/{overdue}/repayments", json={"amount": "5900.00"},
                                   headers={**cashier, "Idempotency-Key": "late"})
        assert late.status_code == 201 and late.json()["notice"]["status"] == "recovered"


async def test_a_line_in_a_bank_file_that_fails_is_withdrawn_from_the_notice(start_service):
    from services.benefits.models import PayrollLine  # noqa: PLC0415
    from services.benefits.recovery.service import withdraw_overpayment  # noqa: PLC0415
    from services.kernel.errors import Conflict  # noqa: PLC0415

    async with start_service("benefits") as benefits:
        person_id = add_person(benefits, 81)
        pension = grant(benefits, person_id, monthly_fen=200_000)
        death_month = add_months(NOW_PERIOD, -3)
        paid = payroll_line(benefits, pension, add_months(death_month, 1), amount_fen=200_000)
        in_file = payroll_line(benefits, pension, add_months(death_month, 2), status="in_file", amount_fen=200_000)
        apply(benefits, life(person_id, "deceased", death_date=day_in(death_month, 20)))
        [notice] = rows(benefits, RecoveryNotice)
        assert notice.amount_fen == 400_000
        with Session(engine_of(benefits)) as session:  # the bank returns the line: the account was closed
            session.get(PayrollLine, in_file).status = "failed"
            assert withdraw_overpayment(session, in_file, "银行退回：账户已销户").payroll_line_id == in_file
            assert withdraw_overpayment(session, in_file, "again") is None  # nothing left to withdraw
            session.commit()
        assert [o.payroll_line_id for o in rows(benefits, Overpayment)] == [paid]
        assert (get(benefits, RecoveryNotice, notice.id).amount_fen, get(benefits, RecoveryNotice, notice.id).status) \
            == (200_000, "open")
        with Session(engine_of(benefits)) as session:
            notice_row = session.get(RecoveryNotice, notice.id)
            notice_row.recovered_fen = 150_000  # recovered partly meanwhile
            session.commit()
        with Session(engine_of(benefits)) as session:  # withdrawing the other would leave less owed than recovered
            with pytest.raises(Conflict) as refused:
                withdraw_overpayment(session, paid, "x")
            assert refused.value.code == "OVERPAYMENT_ALREADY_RECOVERED"


# -- an offset against a payroll line that is then held back ---------------------------------------------------------


@pytest.mark.parametrize("another_line", [True, False], ids=["file_made", "nothing_to_pay"])
async def test_an_offset_against_a_line_held_back_is_reversed_and_the_notice_reopened(start_service, auth,
                                                                                      another_line):
    """A payroll offset recovers only what is deducted from a payment (001 第二十九条(五): 恢复发放后…定期待遇…抵扣). When
    the line it was taken from is held back as the bank file is made, nothing was deducted from anything: the offset is
    reversed (kept, with its reason), the notice owes it again and, fully recovered before, is open again."""
    from tests.support.benefits import add_account, lines_of  # noqa: PLC0415

    clerk = auth("agency_clerk", region=REGION, subject="clerk.li")
    cashier = auth("cashier", region=REGION, subject="cashier.sun")
    async with start_service("benefits") as benefits:
        # imprisoned two months, paid meanwhile, released: 4 000.00 owed; payments resume this month
        person_id = add_person(benefits, 91)
        add_account(benefits, person_id, 91, holder="领取人91")
        pension = grant(benefits, person_id, monthly_fen=200_000)
        start = add_months(NOW_PERIOD, -3)
        for n in (1, 2):
            payroll_line(benefits, pension, add_months(start, n), amount_fen=200_000)
        apply(benefits, life(person_id, "imprisoned", imprisoned_from=day_in(start, 2)))
        apply(benefits, life(person_id, "alive", "imprisoned", imprisoned_from=day_in(start, 2),
                             imprisoned_until=day_in(add_months(start, 2), 28)))
        [notice] = rows(benefits, RecoveryNotice)
        assert notice.amount_fen == 400_000
        if another_line:  # someone else paid normally in the same run
            other = add_person(benefits, 92)
            add_account(benefits, other, 92, holder="领取人92")
            grant(benefits, other, monthly_fen=100_000)

        # this month's payroll, approved and funded: the pension's line is pending
        run = await benefits.post("/payroll/runs", json={"fund": "PEN_EMP", "period": NOW_PERIOD}, headers=clerk)
        assert run.status_code == 201, run.text
        run_id = run.json()["run"]["id"]
        assert (await benefits.post(f"/payroll/runs/{run_id}/approve",
                                    headers=auth("agency_approver", region=REGION))).status_code == 200
        assert (await benefits.post(f"/payroll/runs/{run_id}/funding-request",
                                    headers=auth("accountant", region=REGION))).status_code == 201
        [line] = [ln.id for ln in lines_of(benefits, run_id) if ln.person_id == person_id]

        # 1 500.00 offset against it, the other 2 500.00 repaid: the notice is recovered
        url = f"/recovery/notices/{notice.id}"
        offset = await benefits.post(f"{url}/offsets", headers=clerk,
                                     json={"method": "payroll_offset", "amount": "1500.00", "reference": line})
        assert offset.status_code == 201, offset.text
        repaid = await benefits.post(f"{url}/repayments", json={"amount": "2500.00"},
                                     headers={**cashier, "Idempotency-Key": "REPAID-1"})
        assert repaid.status_code == 201 and repaid.json()["notice"]["status"] == "recovered"

        # imprisoned again before the bank file: the line is held back, so nothing is deducted from any payment
        apply(benefits, life(person_id, "imprisoned", imprisoned_from=day_in(NOW_PERIOD, 1)))
        issued = await benefits.post(f"/payroll/runs/{run_id}/bank-files", headers=cashier)
        if another_line:
            assert issued.status_code == 201, issued.text
            assert (issued.json()["file"]["lines"], issued.json()["file"]["total"],
                    issued.json()["file"]["offset_total"]) == (1, "1000.00", "0.00")
        else:
            assert issued.status_code == 409 and error_code(issued) == "NOTHING_TO_PAY"
        held = get(benefits, PayrollLine, line)
        assert (held.status, held.failure_reason[:5]) == ("withheld", "HELD_")

        # the offset did not recover anything: the notice owes it again and is open again
        reopened = get(benefits, RecoveryNotice, notice.id)
        assert (reopened.recovered_fen, reopened.status) == (250_000, "open")
        # the offset is kept, reversed with its reason, never deleted
        [kept] = rows(benefits, Recovery, Recovery.method == "payroll_offset")
        assert (kept.amount_fen, kept.reference, kept.status) == (150_000, line, "reversed")
        assert kept.reversed_at is not None and kept.reversal_reason.startswith(held.failure_reason.split()[0])
        with Session(engine_of(benefits)) as session:
            assert offsets_for_lines(session, [line]) == {}
        # oversight is told: a negative RecoveryRecorded naming the reversed recovery
        recorded = events(benefits, "benefits.recovery.recorded.v1")
        assert [(e["method"], e["amount_fen"], e["remaining_fen"], e["reversal"]) for e in recorded] == [
            ("payroll_offset", 150_000, 250_000, False), ("repayment", 250_000, 0, False),
            ("payroll_offset", -150_000, 150_000, True)]
        assert recorded[-1]["recovery_id"] == kept.id and recorded[-1]["reason"].startswith("HELD_")
        assert outbox(benefits, "benefits.recovery.recorded.v1")[-1]["_actor"]["id"] == "cashier.sun"
        # R5 still sees the whole line held back, no offset
        [retained] = events(benefits, "benefits.payroll.retained.v1")
        assert [h["payroll_line_id"] for h in retained["held_back"]] == [line]
        assert (retained["held_back_fen"], retained["offset_fen"], retained["offsets"]) == (200_000, 0, [])

        detail = (await benefits.get(url, headers=clerk)).json()
        assert (detail["recovered"], detail["remaining"], detail["status"]) == ("2500.00", "1500.00", "open")
        assert [(r["method"], r["status"]) for r in detail["recoveries"]] == [
            ("payroll_offset", "reversed"), ("repayment", "recorded")]
        actions = [e["action"] for e in (await benefits.get("/audit/entries", params={
            "entity_type": "recovery_notice", "entity_id": notice.id}, headers=auth("internal_auditor"))).json()]
        assert actions[-1] == "recovery.reverse"
        # asking for the file again changes nothing; the debt can be recovered again for real
        assert (await benefits.post(f"/payroll/runs/{run_id}/bank-files", headers=cashier)).status_code == (
            200 if another_line else 409)
        assert len(events(benefits, "benefits.recovery.recorded.v1")) == 3
        rest = await benefits.post(f"{url}/repayments", json={"amount": "1500.00"},
                                   headers={**cashier, "Idempotency-Key": "REPAID-2"})
        assert rest.status_code == 201 and rest.json()["notice"]["status"] == "recovered"


async def test_a_reversal_reopens_an_escalated_notice_as_escalated_and_reverses_nothing_twice(start_service):
    from services.benefits.recovery.service import reverse_payroll_offsets  # noqa: PLC0415

    async with start_service("benefits") as benefits:
        person_id = add_person(benefits, 93)
        pension = grant(benefits, person_id, monthly_fen=200_000)
        line = payroll_line(benefits, pension, NOW_PERIOD, status="pending", amount_fen=200_000)
        with Session(engine_of(benefits)) as session:  # escalated, then recovered in full by an offset on that line
            at = clock.utc_now()
            notice = RecoveryNotice(id=new_event_id(), person_id=person_id, amount_fen=200_000, recovered_fen=200_000,
                                    deadline=TODAY - timedelta(days=40), status="recovered", issued_at=at,
                                    issued_by="clerk.li", escalated_at=at)
            session.add(notice)
            session.flush()
            session.add(Recovery(id=new_event_id(), notice_id=notice.id, method="payroll_offset", amount_fen=200_000,
                                 idempotency_key=f"payroll_offset#{notice.id}#{line}", reference=line,
                                 recorded_at=clock.utc_now(), recorded_by="clerk.li"))
            session.commit()
            notice_id = notice.id
        for expected in (1, 0):
            with Session(engine_of(benefits)) as session:
                reversed_ = reverse_payroll_offsets(session, {line: "HELD_IMPRISONED 审批后获知人员服刑，服刑期间停发"})
                session.commit()
                assert len(reversed_) == expected
        notice = get(benefits, RecoveryNotice, notice_id)
        assert (notice.recovered_fen, notice.status) == (0, "escalated")
        [recovery] = rows(benefits, Recovery)
        assert recovery.status == "reversed" and recovery.reversal_reason.startswith("HELD_IMPRISONED")
        assert [(e["amount_fen"], e["remaining_fen"], e["reversal"]) for e in
                events(benefits, "benefits.recovery.recorded.v1")] == [(-200_000, 200_000, True)]
