"""Arrears and late fees: the rule as pure functions (0.05 % a day on the outstanding principal from the day
after the due date, half-up once per segment), arrears per line and employer as of a day, employers in arrears
paginated, notices with the computation document and ArrearsNoticeIssued, the rate from the parameters."""

import json
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlmodel import Session

from services.collection.arrears import latefee
from services.collection.models import ArrearsNotice, ContributionParameters
from services.kernel import clock
from services.kernel.events import new_event_id
from services.kernel.models import AuditEntry
from tests.support.registry import engine_of, error_code, outbox
from tests.support.payments import (
    DUE, EMPLOYER_FEN, INDIVIDUAL_FEN, add_assessment, add_employer, add_persons, count, pay, post, supersede,
)

RATE = Decimal("0.0005")
NOTICE = "collection.arrears.notice_issued.v1"

# -- the rule, pure --------------------------------------------------------------------------------------------------


@pytest.mark.unit
def test_the_hand_computed_example():
    # 1 304.67 yuan due 2026-02-15, paid 2026-03-17: 13 days of February + 17 of March = 30 days;
    # 1 304.67 × 0.0005 × 30 = 19.57005 → 19.57 yuan.
    assert latefee.days_between(date(2026, 2, 15), date(2026, 3, 17)) == 30
    assert latefee.segment_fee(130_467, RATE, 30) == 1_957
    state = latefee.LineState(principal_fen=130_467, due_date=date(2026, 2, 15))
    settlement, overpaid = latefee.settle(state, 130_467 + 1_957, date(2026, 3, 17), RATE)
    assert (settlement.segment.days, settlement.principal_paid_fen, settlement.fee_accrued_fen,
            settlement.fee_paid_fen, overpaid) == (30, 130_467, 1_957, 1_957, 0)
    assert settlement.after.settled
    assert settlement.segment.explain() == \
        "2026-02-15 次日起至 2026-03-17：1 304.67 元 × 0.0005 × 30 天 = 19.57005 元 → 19.57 元（四舍五入到分）"


@pytest.mark.unit
def test_days_count_from_the_day_after_the_due_date_and_never_go_negative():
    due = date(2026, 1, 31)
    assert latefee.days_between(due, due) == 0
    assert latefee.days_between(due, date(2026, 2, 1)) == 1
    assert latefee.days_between(due, date(2026, 1, 1)) == 0
    assert latefee.days_between(date(2024, 2, 28), date(2024, 3, 1)) == 2  # a leap year's 29 February counts


@pytest.mark.unit
def test_rounding_is_half_up_once_per_segment_not_per_day():
    # 10.00 yuan × 0.05 % = half a fen a day: rounded per day it would be 1 fen a day (30 fen); once: 15 fen.
    assert latefee.segment_fee(1_000, RATE, 30) == 15
    assert latefee.segment_fee(1_000, RATE, 1) == 1  # exactly half a fen rounds up
    assert latefee.segment_fee(999, RATE, 1) == 0  # 0.4995 fen rounds down
    assert latefee.segment_fee(0, RATE, 365) == 0


@pytest.mark.unit
def test_principal_first_then_fee_then_overpayment_and_segments_follow_the_payments():
    state = latefee.LineState(principal_fen=130_467, due_date=date(2026, 2, 15))
    first, over = latefee.settle(state, 50_000, date(2026, 3, 17), RATE)
    assert (first.principal_before_fen, first.principal_paid_fen, first.fee_accrued_fen, first.fee_paid_fen, over) == \
        (130_467, 50_000, 1_957, 0, 0)
    # the next segment starts the day after the payment, on the principal left
    second, over = latefee.settle(first.after, 80_467 + 1_000, date(2026, 4, 16), RATE)
    assert (second.segment.start, second.segment.days, second.principal_before_fen) == (date(2026, 3, 17), 30, 80_467)
    assert (second.fee_accrued_fen, second.fee_outstanding_before_fen, second.fee_paid_fen) == (1_207, 3_164, 1_000)
    # no principal left: no more fee accrues; the rest of the fee, then an overpayment
    third, over = latefee.settle(second.after, 3_000, date(2026, 6, 1), RATE)
    assert (third.fee_accrued_fen, third.fee_paid_fen, over) == (0, 2_164, 836)
    assert third.after.settled
    # as of a later day, nothing is owed; as of a day between, the open segment is shown
    assert latefee.arrears_as_of(third.after, date(2026, 12, 31), RATE).total_fen == 0
    between = latefee.arrears_as_of(first.after, date(2026, 3, 27), RATE)
    assert (between.open_segment.days, between.open_segment.fee_fen, between.fee_outstanding_fen) == (10, 402, 1_957 + 402)
    assert between.days_late == 40


@pytest.mark.unit
def test_many_lines_settle_all_principal_before_any_fee():
    due, paid = date(2026, 2, 15), date(2026, 3, 17)
    states = [latefee.LineState(principal_fen=10_000, due_date=due), latefee.LineState(principal_fen=20_000, due_date=due)]
    allocation = latefee.settle_many(states, 30_000 + 100, paid, RATE)  # fees: 150 and 300
    assert [s.principal_paid_fen for s in allocation.settlements] == [10_000, 20_000]
    assert [s.fee_paid_fen for s in allocation.settlements] == [100, 0]
    assert allocation.overpaid_fen == 0


@pytest.mark.unit
def test_settle_one_gives_settles_figures_for_every_kind_of_state():
    due = date(2026, 2, 15)
    states = [latefee.LineState(principal_fen=p, due_date=due, paid_principal_fen=paid, fee_accrued_fen=accrued,
                                fee_paid_fen=fee_paid, accrued_through=through)
              for p in (0, 1, 130_467) for paid in (0, 1, 130_467, 200_000) for accrued in (0, 1_957)
              for fee_paid in (0, 1_000, 3_000) for through in (None, date(2026, 1, 1), date(2026, 3, 17))]
    for state in states:
        for amount in (0, 1, 50_000, 130_467, 132_424, 500_000):
            for paid_on in (date(2026, 1, 10), due, date(2026, 3, 17), date(2026, 6, 1)):
                settlement, overpaid = latefee.settle(state, amount, paid_on, RATE)
                one = latefee.settle_one(state, amount, paid_on, RATE)
                assert one == (settlement.after, settlement.segment.start, settlement.segment.days,
                               settlement.principal_before_fen, settlement.principal_paid_fen,
                               settlement.fee_accrued_fen, settlement.fee_outstanding_before_fen,
                               settlement.fee_paid_fen, overpaid), (state, amount, paid_on)
    with pytest.raises(ValueError):
        latefee.settle_one(states[0], -1, due, RATE)


@pytest.mark.unit
def test_a_back_dated_payment_adds_no_days():
    state = latefee.LineState(principal_fen=10_000, due_date=date(2026, 2, 15), accrued_through=date(2026, 4, 1))
    settlement, _ = latefee.settle(state, 1_000, date(2026, 3, 1), RATE)
    assert settlement.segment.days == 0 and settlement.fee_accrued_fen == 0


@pytest.mark.unit
@pytest.mark.parametrize("value", [0.0005, "abc", "-0.0005", "1", "NaN"])
def test_rates_are_decimal_fractions(value):
    with pytest.raises((TypeError, ValueError)):
        latefee.parse_rate(value)


# -- the API ---------------------------------------------------------------------------------------------------------


async def test_arrears_line_by_line_as_of_a_day(start_service, settings, auth):
    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        (p1, c1), (p2, _c2) = add_persons(client, [1, 2])
        _, lines = add_assessment(client, employer_id, 202601, DUE, [
            (p1, "PEN_EMP", EMPLOYER_FEN, INDIVIDUAL_FEN), (p2, "PEN_EMP", 1_000, 0), (p2, "UNEMP", 500, 500)])
        # p1 pays 500.00 on 2026-03-17 (30 days on 1 304.67 → 19.57 charged, unpaid)
        paid = await post(client, settings, [pay("A-1", payer_uscc=uscc, citizen_id=c1, employer_amount="500.00",
                                                 paid_date="2026-03-17")])
        assert paid.json()["matched"] == 1

        clerk = auth("agency_clerk")
        response = await client.get("/arrears", params={"employer_id": employer_id, "as_of": "2026-03-27"},
                                    headers=clerk)
        assert response.status_code == 200, response.text
        report = response.json()
        assert (report["as_of"], report["daily_rate"], report["rate_source"]) == ("2026-03-27", "0.0005", "default")
        [employer] = report["employers"]
        assert employer["uscc"] == uscc and employer["line_count"] == 3
        by_line = {x["assessment_line_id"]: x for x in employer["lines"]}
        first = by_line[lines[0]]
        # 804.67 outstanding; 19.57 charged at the payment; 10 more days on 804.67 = 4.02335 → 4.02
        assert (first["principal"], first["principal_paid"], first["principal_outstanding"]) == \
            ("1304.67", "500.00", "804.67")
        assert (first["days_late"], first["fee_unpaid_before"], first["late_fee"], first["total"]) == \
            (40, "19.57", "23.59", "828.26")
        assert first["open_segment"] == {
            "from_date": "2026-03-17", "through": "2026-03-27", "days": 10, "principal": "804.67", "rate": "0.0005",
            "exact_fee": "4.02335", "fee": "4.02",
            "explanation": "2026-03-17 次日起至 2026-03-27：804.67 元 × 0.0005 × 10 天 = 4.02335 元 → 4.02 元（四舍五入到分）"}
        [step] = first["payments"]
        assert (step["paid_date"], step["days"], step["principal_before"], step["fee_accrued"], step["principal_paid"],
                step["fee_paid"]) == ("2026-03-17", 30, "1304.67", "19.57", "500.00", "0.00")
        # 10.00 for 40 days: 1 000 × 0.0005 × 40 = 20 fen; 10.00 (UNEMP) likewise 0.20
        second = by_line[lines[1]]
        assert (second["principal_outstanding"], second["late_fee"], second["days_late"]) == ("10.00", "0.20", 40)
        assert employer["principal_outstanding"] == "824.67" and employer["late_fee"] == "23.99"
        assert employer["total"] == "848.66"
        assert employer["by_fund"] == [
            {"fund": "PEN_EMP", "lines": 2, "principal_outstanding": "814.67", "late_fee": "23.79", "total": "838.46"},
            {"fund": "UNEMP", "lines": 1, "principal_outstanding": "10.00", "late_fee": "0.20", "total": "10.20"}]
        assert (report["principal_outstanding"], report["late_fee"], report["total"]) == ("824.67", "23.99", "848.66")

        # Before the payment, p1's line is in arrears on the whole principal; on the due date nothing is.
        before = await client.get("/arrears", params={"employer_id": employer_id, "as_of": "2026-03-01"},
                                  headers=auth("internal_auditor"))
        first_before = next(x for x in before.json()["employers"][0]["lines"] if x["assessment_line_id"] == lines[0])
        assert (first_before["principal_outstanding"], first_before["days_late"], first_before["late_fee"],
                first_before["payments"]) == ("1304.67", 14, "9.13", [])  # 130 467 × 0.0005 × 14 = 913.269
        on_due = await client.get("/arrears", params={"employer_id": employer_id, "as_of": DUE.isoformat()},
                                  headers=clerk)
        assert on_due.json()["employers"] == [] and on_due.json()["total"] == "0.00"

        for role in ("agency_reviewer", "accountant"):
            assert (await client.get("/arrears", params={"employer_id": employer_id}, headers=auth(role))).status_code == 200
        for role in ("tax_system", "cashier", "oversight_officer"):
            assert (await client.get("/arrears", headers=auth(role))).status_code == 403


async def test_employers_in_arrears_are_listed_with_totals_and_a_cursor(start_service, settings, auth):
    async with start_service("collection") as client:
        employers = []
        for serial in range(1, 5):
            employer_id, uscc = add_employer(client, serial)
            [(person_id, cid)] = add_persons(client, [serial])
            add_assessment(client, employer_id, 202601, DUE, [(person_id, "PEN_EMP", 10_000 * serial, 0)])
            employers.append((employer_id, uscc, cid))
        # the third pays in full on time: not in arrears
        _, uscc3, cid3 = employers[2]
        await post(client, settings, [pay("E-3", payer_uscc=uscc3, citizen_id=cid3, employer_amount="300.00")])

        clerk = auth("agency_clerk")
        page = await client.get("/arrears/employers", params={"as_of": "2026-03-17", "limit": 2}, headers=clerk)
        assert page.status_code == 200, page.text
        expected = sorted(e[0] for i, e in enumerate(employers) if i != 2)
        seen = [x["employer_id"] for x in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        while cursor:
            more = await client.get("/arrears/employers", params={"as_of": "2026-03-17", "limit": 2, "after": cursor},
                                    headers=clerk)
            seen += [x["employer_id"] for x in more.json()["items"]]
            cursor = more.json()["next_cursor"]
        assert seen == expected
        first = next(x for x in page.json()["items"] if x["employer_id"] == employers[0][0])
        # 100.00 × 0.0005 × 30 = 1.50
        assert (first["lines"], first["principal_outstanding"], first["late_fee"], first["total"],
                first["oldest_due_date"]) == (1, "100.00", "1.50", "101.50", "2026-02-15")

        # Without employer_id, /arrears pages through employers the same way.
        report = await client.get("/arrears", params={"as_of": "2026-03-17", "limit": 10}, headers=clerk)
        assert [e["employer_id"] for e in report.json()["employers"]] == expected
        assert report.json()["principal_outstanding"] == "700.00"  # 100 + 200 + 400


async def test_a_correction_keeps_the_payments_of_the_line_it_replaces(start_service, settings, auth):
    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        [(person_id, cid)] = add_persons(client, [1])
        old_id, [old_line] = add_assessment(client, employer_id, 202601, DUE, [(person_id, "PEN_EMP", 100_000, 0)])
        await post(client, settings, [pay("C-1", payer_uscc=uscc, citizen_id=cid, employer_amount="1000.00",
                                          paid_date="2026-03-17")])  # 30 days on 1 000.00: 15.00 charged, unpaid
        # the base was higher: 1 200.00; the 1 000.00 paid stays paid
        _, [new_line] = supersede(client, old_id, employer_id, 202601, DUE, [(person_id, "PEN_EMP", 120_000, 0)])
        response = await client.get("/arrears", params={"employer_id": employer_id, "as_of": "2026-03-27"},
                                    headers=auth("agency_clerk"))
        [line] = response.json()["employers"][0]["lines"]
        assert line["assessment_line_id"] == new_line
        # Replayed on the corrected principal: the 1 200.00 was due on 2026-02-15, so the first 30 days are charged
        # on 1 200.00 (18.00, not the 15.00 charged on 1 000.00 then); 200.00 left; 10 days on it = 1.00.
        assert line["corrects"] == [old_line]
        assert (line["principal_outstanding"], line["fee_unpaid_before"], line["late_fee"]) == ("200.00", "18.00", "19.00")
        [step] = line["payments"]
        assert (step["days"], step["principal_before"], step["fee_accrued"], step["principal_paid"]) == \
            (30, "1200.00", "18.00", "1000.00")

        # The rest, with the fee, settles the new line.
        settled = await post(client, settings, [pay("C-2", payer_uscc=uscc, citizen_id=cid, employer_amount="200.00",
                                                    late_fee_amount="19.00", paid_date="2026-03-27",
                                                    voucher_no="V-C-2")])
        assert settled.json()["matched"] == 1
        after = await client.get("/arrears", params={"employer_id": employer_id, "as_of": "2026-04-30"},
                                 headers=auth("agency_clerk"))
        assert after.json()["employers"] == []


async def test_the_rate_comes_from_the_approved_parameters(start_service, settings, auth):
    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        [(person_id, _)] = add_persons(client, [1])
        add_assessment(client, employer_id, 202601, DUE, [(person_id, "PEN_EMP", 100_000, 0)])
        with Session(engine_of(client)) as session:
            session.add(ContributionParameters(
                id="params-2026", region=settings.region, valid_from=202603,
                document=json.dumps({"late_fee_daily_rate": "0.001"}), status="approved", reason="test",
                proposed_at=clock.utc_now(), proposed_by="a", decided_at=clock.utc_now(), decided_by="b"))
            session.commit()
        clerk = auth("agency_clerk")
        february = await client.get("/arrears", params={"employer_id": employer_id, "as_of": "2026-02-25"},
                                    headers=clerk)
        assert (february.json()["daily_rate"], february.json()["rate_source"], february.json()["late_fee"]) == \
            ("0.0005", "default", "5.00")  # 1 000.00 × 0.0005 × 10
        march = await client.get("/arrears", params={"employer_id": employer_id, "as_of": "2026-03-07"}, headers=clerk)
        assert (march.json()["daily_rate"], march.json()["rate_source"], march.json()["late_fee"]) == \
            ("0.001", "parameters:params-2026", "20.00")  # 1 000.00 × 0.001 × 20


async def test_a_notice_records_the_computation_and_is_published(start_service, settings, auth):
    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        [(person_id, cid)] = add_persons(client, [1])
        add_assessment(client, employer_id, 202601, DUE, [(person_id, "PEN_EMP", EMPLOYER_FEN, INDIVIDUAL_FEN)])
        clerk = auth("agency_clerk", subject="clerk.li")
        response = await client.post("/arrears/notices", json={"employer_id": employer_id, "as_of": "2026-03-17"},
                                     headers=clerk)
        assert response.status_code == 201, response.text
        notice = response.json()
        assert (notice["principal_outstanding"], notice["late_fee"], notice["total"], notice["lines"]) == \
            ("1304.67", "19.57", "1324.24", 1)
        document = notice["document"]
        assert document["title"] == "社会保险费催缴通知" and "社会保险法》第八十六条" in document["legal_basis"]
        assert document["employer"]["uscc"] == uscc and document["daily_rate"] == "0.0005"
        [line] = document["lines"]
        assert line["open_segment"]["explanation"] == \
            "2026-02-15 次日起至 2026-03-17：1 304.67 元 × 0.0005 × 30 天 = 19.57005 元 → 19.57 元（四舍五入到分）"

        [event] = outbox(client, NOTICE)
        assert (event["notice_id"], event["employer_id"], event["as_of"], event["principal_fen"], event["late_fee_fen"],
                event["lines"]) == (notice["id"], employer_id, "2026-03-17", 130_467, 1_957, 1)
        assert event["_actor"]["id"] == "clerk.li"
        with Session(engine_of(client)) as session:
            entry = session.get(ArrearsNotice, notice["id"])
            assert entry.issued_by == "clerk.li"
            audit = session.execute(select(AuditEntry).where(AuditEntry.entity_id == notice["id"])).scalar_one()
        assert audit.action == "arrears_notice.issue"

        reader = auth("internal_auditor")
        again = await client.get(f"/arrears/notices/{notice['id']}", headers=reader)
        assert again.status_code == 200 and again.json()["document"] == document
        listed = await client.get("/arrears/notices", params={"employer_id": employer_id}, headers=reader)
        assert [n["id"] for n in listed.json()["items"]] == [notice["id"]]

        # refusals
        reviewer = await client.post("/arrears/notices", json={"employer_id": employer_id}, headers=auth("agency_reviewer"))
        assert reviewer.status_code == 403
        future = await client.post("/arrears/notices", json={"employer_id": employer_id, "as_of": "2099-01-01"},
                                   headers=clerk)
        assert future.status_code == 422 and error_code(future) == "AS_OF_IN_FUTURE"
        unknown = await client.post("/arrears/notices", json={"employer_id": new_event_id()}, headers=clerk)
        assert unknown.status_code == 404
        elsewhere = await client.post("/arrears/notices", json={"employer_id": employer_id},
                                      headers=auth("agency_clerk", region="150200"))
        assert elsewhere.status_code == 403 and error_code(elsewhere) == "OUT_OF_REGION"
        nothing = await client.post("/arrears/notices", json={"employer_id": employer_id, "as_of": "2026-02-15"},
                                    headers=clerk)
        assert nothing.status_code == 409 and error_code(nothing) == "NO_ARREARS"
        assert count(client, ArrearsNotice) == 1
