"""Tax collection: the tax bureau's payment batches checked line by line, matched to assessment lines and
settled principal first, then late fee; refused methods (002 四), idempotent re-posts, conflicts, duplicate vouchers,
CSV in UTF-8 and GBK, unmatched lines kept and resolved, events in parts of at most 1 000 lines, 10 000 lines fast."""

import asyncio
import hashlib
import json
import time
from datetime import date

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select, text
from sqlmodel import Session

from services.collection.models import (
    AssessmentLine,
    LateFeeCharge,
    TaxPayment,
    TaxPaymentBatch,
)
from services.collection.payments.schemas import BatchValues, CheckedLine, TaxPaymentLine, quick_line
from services.collection.payments.service import _content_hash
from services.kernel import clock
from services.kernel.models import AuditEntry
from services.kernel.money import yuan_to_fen
from services.kernel.periods import add_months, period_of
from tests.support.e2e import wait_for
from tests.support.registry import engine_of, error_code, make_uscc, outbox
from tests.support.payments import (
    DUE, EMPLOYER_FEN, INDIVIDUAL_FEN, add_assessment, add_employer, add_persons, citizen_id, count, pay, post,
    tax_headers,
)

COLLECTED = "collection.payments.collected.v2"
REJECTED = "collection.payments.rejected.v1"

# -- helpers ---------------------------------------------------------------------------------------------------------


def line_row(client, line_id: str) -> AssessmentLine:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        return session.get(AssessmentLine, line_id)


def charges_of(client, line_id: str) -> list[LateFeeCharge]:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        return list(session.execute(select(LateFeeCharge).where(LateFeeCharge.assessment_line_id == line_id)
                                    .order_by(LateFeeCharge.id)).scalars())


def assert_lines_carry_their_charges(client) -> None:  # noqa: ANN001
    """Every assessment line's paid figures are the sums of its charges, so a line with both at zero has none
    (``arrears.states._may_have_charges``: a batch does not look such lines up in ``late_fee_charge``)."""
    charge = LateFeeCharge.__table__.c
    with Session(engine_of(client)) as session:
        sums = {line_id: (int(p), int(f)) for line_id, p, f in session.execute(
            select(charge.assessment_line_id, func.sum(charge.principal_paid_fen), func.sum(charge.fee_paid_fen))
            .group_by(charge.assessment_line_id)).all()}
        lines = session.execute(select(AssessmentLine.id, AssessmentLine.paid_principal_fen,
                                       AssessmentLine.paid_late_fee_fen)).all()
    assert sums and all(sums.get(line_id, (0, 0)) == (p, f) for line_id, p, f in lines)


def codes(result: dict) -> dict[str, str]:
    return {r["tax_line_id"]: r["code"] for r in result["rejections"]}


# -- settlement ------------------------------------------------------------------------------------------------------


async def test_a_person_line_settles_principal_then_the_late_fee_to_the_paid_date(start_service, settings):
    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        [(person_id, cid)] = add_persons(client, [1])
        _, [line_id] = add_assessment(client, employer_id, 202601, DUE, [(person_id, "PEN_EMP", EMPLOYER_FEN, INDIVIDUAL_FEN)])

        response = await post(client, settings, [pay("T-1", payer_uscc=uscc, citizen_id=cid, employer_amount="869.78",
                                                     individual_amount="434.89", late_fee_amount="19.57",
                                                     paid_date="2026-03-17")])
        assert response.status_code == 201, response.text
        result = response.json()
        assert (result["lines"], result["accepted"], result["matched"], result["unmatched"], result["rejected"]) == \
            (1, 1, 1, 0, 0)

        [charge] = charges_of(client, line_id)
        assert (charge.days_late, charge.principal_before_fen, charge.principal_paid_fen, charge.fee_accrued_fen,
                charge.fee_paid_fen) == (30, 130_467, 130_467, 1_957, 1_957)
        line = line_row(client, line_id)
        assert (line.status, line.paid_principal_fen, line.paid_late_fee_fen) == ("paid", 130_467, 1_957)

        [event] = outbox(client, COLLECTED)
        assert (event["part"], event["parts"], event["batch_id"]) == (1, 1, result["id"])
        [collected] = event["lines"]
        assert collected["match_status"] == "matched" and collected["assessment_line_id"] == line_id
        assert (collected["employer_fen"], collected["individual_fen"], collected["late_fee_fen"]) == (86_978, 43_489, 1_957)
        assert collected["person_id"] == person_id and collected["employer_id"] == employer_id

        detail = await client.get(f"/tax-payments/{collected['payment_id']}", headers=tax_headers(settings))
        assert detail.status_code == 200, detail.text
        assert detail.json()["charges"][0]["fee_accrued"] == "19.57"
        assert outbox(client, REJECTED) == []


async def test_partial_payments_settle_principal_first_then_fee_segment_by_segment(start_service, settings):
    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        [(person_id, cid)] = add_persons(client, [1])
        _, [line_id] = add_assessment(client, employer_id, 202601, DUE, [(person_id, "PEN_EMP", EMPLOYER_FEN, INDIVIDUAL_FEN)])

        # 1) 500.00 on 2026-03-17: the 30-day segment charges 19.57 on 1 304.67; all 500.00 goes to principal.
        first = await post(client, settings, [pay("P-1", payer_uscc=uscc, citizen_id=cid, employer_amount="500.00",
                                                  paid_date="2026-03-17")])
        assert first.json()["matched"] == 1
        # 2) 814.67 on 2026-04-16: 30 more days on 804.67 → 80 467 × 0.0005 × 30 = 1 207.005 → 12.07;
        #    804.67 settles the principal, 10.00 goes to the 31.64 of late fee; 21.64 stays owed.
        second = await post(client, settings, [pay("P-2", payer_uscc=uscc, citizen_id=cid, employer_amount="804.67",
                                                   late_fee_amount="10.00", paid_date="2026-04-16")])
        assert second.json()["matched"] == 1
        c1, c2 = charges_of(client, line_id)
        assert (c1.days_late, c1.principal_before_fen, c1.principal_paid_fen, c1.fee_accrued_fen, c1.fee_paid_fen) == \
            (30, 130_467, 50_000, 1_957, 0)
        assert (c2.days_late, c2.principal_before_fen, c2.principal_paid_fen, c2.fee_accrued_fen, c2.fee_paid_fen) == \
            (30, 80_467, 80_467, 1_207, 1_000)
        line = line_row(client, line_id)
        assert (line.status, line.paid_principal_fen, line.paid_late_fee_fen) == ("open", 130_467, 1_000)
        with Session(engine_of(client)) as session:
            note = session.execute(select(TaxPayment.match_note).where(TaxPayment.tax_line_id == "P-2")).scalar_one()
        assert "LATE_FEE_OUTSTANDING" in note and "21.64" in note

        # 3) the fee alone, 25.00 on 2026-05-01: no new days (no principal left), 21.64 paid, 3.36 overpaid.
        third = await post(client, settings, [pay("P-3", payer_uscc=uscc, citizen_id=cid, late_fee_amount="25.00",
                                                  paid_date="2026-05-01")])
        assert third.json()["matched"] == 1
        c3 = charges_of(client, line_id)[2]
        assert (c3.principal_before_fen, c3.principal_paid_fen, c3.fee_accrued_fen, c3.fee_paid_fen) == (0, 0, 0, 2_164)
        assert line_row(client, line_id).status == "paid"
        with Session(engine_of(client)) as session:
            note = session.execute(select(TaxPayment.match_note).where(TaxPayment.tax_line_id == "P-3")).scalar_one()
        assert "OVERPAID" in note and "3.36" in note

        # 4) once settled, another payment for the line is kept unmatched (a suspected double payment).
        fourth = await post(client, settings, [pay("P-4", payer_uscc=uscc, citizen_id=cid, employer_amount="1.00",
                                                   paid_date="2026-05-02")])
        assert fourth.json()["unmatched"] == 1
        assert fourth.json()["unmatched_lines"][0]["note"].startswith("ALREADY_SETTLED")
        assert_lines_carry_their_charges(client)


async def test_a_payment_before_the_due_date_has_no_late_fee(start_service, settings):
    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        [(person_id, cid)] = add_persons(client, [1])
        _, [line_id] = add_assessment(client, employer_id, 202601, DUE, [(person_id, "UNEMP", 1_000, 1_000)])
        response = await post(client, settings, [pay("E-1", payer_uscc=uscc, citizen_id=cid, fund="UNEMP",
                                                     employer_amount="10.00", individual_amount="10.00",
                                                     paid_date="2026-02-15")])
        assert response.json()["matched"] == 1
        [charge] = charges_of(client, line_id)
        assert (charge.days_late, charge.fee_accrued_fen) == (0, 0)
        assert line_row(client, line_id).status == "paid"


async def test_only_a_payment_dated_before_days_already_charged_is_noted_backdated(start_service, settings):
    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        [(person_id, cid)] = add_persons(client, [1])
        add_assessment(client, employer_id, 202601, DUE, [(person_id, "PEN_EMP", EMPLOYER_FEN, INDIVIDUAL_FEN)])
        # Early (before the due date): nothing was charged, so nothing is backdated.
        await post(client, settings, [pay("B-1", payer_uscc=uscc, citizen_id=cid, employer_amount="100.00",
                                          paid_date="2026-02-10")])
        # Late: 30 days charged through 2026-03-17.
        await post(client, settings, [pay("B-2", payer_uscc=uscc, citizen_id=cid, employer_amount="100.00",
                                          paid_date="2026-03-17")])
        # Dated before 2026-03-17: no day is charged twice, and the payment says so.
        await post(client, settings, [pay("B-3", payer_uscc=uscc, citizen_id=cid, employer_amount="100.00",
                                          paid_date="2026-03-01")])
        with Session(engine_of(client)) as session:
            notes = dict(session.execute(select(TaxPayment.tax_line_id, TaxPayment.match_note)).all())
        assert "BACKDATED" not in (notes["B-1"] or "") and "BACKDATED" not in (notes["B-2"] or "")
        assert "BACKDATED" in notes["B-3"] and "2026-03-17" in notes["B-3"]


async def test_employer_level_lines_match_by_totals(start_service, settings):
    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        people = add_persons(client, [1, 2])
        _, line_ids = add_assessment(client, employer_id, 202601, DUE, [
            (people[0][0], "PEN_EMP", 80_000, 40_000), (people[1][0], "PEN_EMP", 40_000, 20_000),
            (people[0][0], "UNEMP", 500, 500)])
        # Less than the 1 800.00 owed in PEN_EMP: not spread over persons; kept for a reviewer.
        partial = await post(client, settings, [pay("EL-1", payer_uscc=uscc, employer_amount="1000.00",
                                                     paid_date="2026-02-10")])
        assert partial.json()["unmatched"] == 1
        assert partial.json()["unmatched_lines"][0]["note"].startswith("PARTIAL_EMPLOYER_PAYMENT")
        assert charges_of(client, line_ids[0]) == []

        # The whole 1 800.00 on time: both PEN_EMP lines settled, the UNEMP line untouched.
        full = await post(client, settings, [pay("EL-2", payer_uscc=uscc, employer_amount="1200.00",
                                                  individual_amount="600.00", paid_date="2026-02-12")])
        assert full.json()["matched"] == 1
        assert [line_row(client, i).status for i in line_ids] == ["paid", "paid", "open"]
        assert [c.principal_paid_fen for i in line_ids[:2] for c in charges_of(client, i)] == [120_000, 60_000]
        [event] = [e for e in outbox(client, COLLECTED) if e["lines"][0]["tax_line_id"] == "EL-2"]
        assert event["lines"][0]["match_status"] == "matched" and event["lines"][0]["assessment_line_id"] is None
        assert_lines_carry_their_charges(client)

        # A payment's detail lists the charges it wrote: both lines' for the employer-level one, none unmatched.
        detail = await client.get(f"/tax-payments/{event['lines'][0]['payment_id']}", headers=tax_headers(settings))
        assert [(c["assessment_line_id"], c["principal_paid"]) for c in detail.json()["charges"]] == \
            [(line_ids[0], "1200.00"), (line_ids[1], "600.00")]
        unmatched_id = partial.json()["unmatched_lines"][0]["payment_id"]
        detail = await client.get(f"/tax-payments/{unmatched_id}", headers=tax_headers(settings))
        assert detail.status_code == 200 and detail.json()["charges"] == []


# -- refusals --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "label"), [("cash", "现金"), ("cash_cheque", "现金支票"),
                                               ("post_dated_bill", "远期票据"), ("securities", "有价证券"),
                                               ("现金", "现金")])
async def test_refused_payment_methods_are_rejected_and_reported(start_service, settings, method, label):
    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        [(person_id, cid)] = add_persons(client, [1])
        add_assessment(client, employer_id, 202601, DUE, [(person_id, "PEN_EMP", 10_000, 5_000)])
        response = await post(client, settings, [
            pay("M-1", payer_uscc=uscc, citizen_id=cid, employer_amount="100.00", individual_amount="50.00",
                method=method),
            pay("M-2", payer_uscc=uscc, citizen_id=cid, employer_amount="1.00", method="ss_card", voucher_no="V-2"),
        ])
        assert response.status_code == 201, response.text
        result = response.json()
        assert (result["accepted"], result["rejected"]) == (1, 1)
        [rejection] = result["rejections"]
        assert (rejection["line_no"], rejection["tax_line_id"], rejection["code"]) == (1, "M-1", "REFUSED_PAYMENT_METHOD")
        assert label in rejection["message"] and "002 四" in rejection["message"]

        [event] = outbox(client, REJECTED)  # oversight's S17 reads this
        [line] = event["lines"]
        assert (line["code"], line["method"], line["payer_uscc"], line["fund"], line["period"], line["amount_fen"]) == \
            ("REFUSED_PAYMENT_METHOD", "cash" if method == "现金" else method, uscc, "PEN_EMP", 202601, 15_000)
        assert count(client, TaxPayment, TaxPayment.tax_line_id == "M-1") == 0


async def test_a_batch_over_10_000_lines_is_refused_whole(start_service, settings):
    async with start_service("collection") as client:
        lines = [pay(f"B-{i}", citizen_id=citizen_id(i), employer_amount="1.00") for i in range(10_001)]
        response = await post(client, settings, lines)
        assert response.status_code == 413
        assert error_code(response) == "BATCH_TOO_LARGE"
        assert count(client, TaxPayment) == 0 and count(client, TaxPaymentBatch) == 0
        assert outbox(client) == []
        empty = await post(client, settings, [])
        assert empty.status_code == 422


async def test_bad_lines_are_rejected_with_their_code_and_the_good_lines_applied(start_service, settings):
    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        gone_id, gone_uscc = add_employer(client, 2, status="deregistered")
        [(person_id, cid)] = add_persons(client, [1])
        _, [line_id] = add_assessment(client, employer_id, 202601, DUE, [(person_id, "PEN_EMP", 10_000, 0)])
        base = {"payer_uscc": uscc, "citizen_id": cid}
        response = await post(client, settings, [
            pay("OK", **base, employer_amount="100.00"),
            pay("NEG", **base, employer_amount="-1.00"),
            pay("FRAC", **base, employer_amount="1.005"),
            pay("FLOAT", **base, employer_amount=1.5),
            pay("TEXT", **base, individual_amount="一百"),
            pay("ZERO", **base),
            pay("FUND", **base, fund="MEDICAL", employer_amount="1.00"),
            pay("FUTURE", **base, period=add_months(period_of(clock.china_today()), 1), employer_amount="1.00"),
            pay("PAIDLATER", **base, paid_date="2099-01-01", employer_amount="1.00"),
            pay("GONE", payer_uscc=gone_uscc, employer_amount="1.00"),
            pay("USCC", payer_uscc=uscc[:-1] + ("0" if uscc[-1] != "0" else "1"), employer_amount="1.00"),
            pay("CID", citizen_id=cid[:-1] + ("0" if cid[-1] != "0" else "1"), employer_amount="1.00"),
            pay("NOPAYER", employer_amount="1.00"),
            pay("PERIOD", **base, period=202613, employer_amount="1.00"),
            pay("DATE", **base, paid_date="2026-02-30", employer_amount="1.00"),
            pay("METHOD", **base, method="barter", employer_amount="1.00"),
            {k: v for k, v in pay("MISSING", **base, employer_amount="1.00").items() if k != "voucher_no"},
            pay("EXTRA", **base, employer_amount="1.00", remark="x"),
            "not an object",
        ])
        assert response.status_code == 201, response.text
        result = response.json()
        assert (result["lines"], result["accepted"], result["matched"], result["rejected"]) == (19, 1, 1, 18)
        assert codes(result) == {
            "NEG": "NEGATIVE_AMOUNT", "FRAC": "INVALID_AMOUNT", "FLOAT": "INVALID_AMOUNT", "TEXT": "INVALID_AMOUNT",
            "ZERO": "ZERO_AMOUNT", "FUND": "UNKNOWN_FUND", "FUTURE": "FUTURE_PERIOD",
            "PAIDLATER": "PAID_DATE_IN_FUTURE", "GONE": "EMPLOYER_DEREGISTERED", "USCC": "INVALID_USCC",
            "CID": "INVALID_CITIZEN_ID", "NOPAYER": "MISSING_PAYER", "PERIOD": "INVALID_PERIOD",
            "DATE": "INVALID_DATE", "METHOD": "UNKNOWN_PAYMENT_METHOD", "MISSING": "MISSING_FIELD",
            "EXTRA": "UNKNOWN_FIELD", None: "INVALID_LINE",
        }
        assert [r["line_no"] for r in result["rejections"]] == list(range(2, 20))
        assert all(r["message"] for r in result["rejections"])
        assert line_row(client, line_id).status == "paid"
        rejected_events = outbox(client, REJECTED)
        assert sum(len(e["lines"]) for e in rejected_events) == 18

        # The summary keeps every rejection and the TAX-leg totals of the batch.
        summary = await client.get(f"/tax-payments/batches/{result['id']}", headers=tax_headers(settings))
        assert summary.status_code == 200, summary.text
        body = summary.json()
        assert body["rejected"] == 18 and len(body["rejections"]) == 18
        assert body["totals"] == [{"fund": "PEN_EMP", "period": 202601, "lines": 1, "employer_amount": "100.00",
                                   "individual_amount": "0.00", "late_fee_amount": "0.00"}]
        assert body["open_unmatched"] == 0
        other_bureau = await client.get(f"/tax-payments/batches/{result['id']}",
                                        headers=tax_headers(settings, "tax.other"))
        assert other_bureau.status_code == 404
        listed = await client.get("/tax-payments/batches", headers=tax_headers(settings))
        assert [b["id"] for b in listed.json()["items"]] == [result["id"]]
        with Session(engine_of(client)) as session:
            entry = session.execute(select(AuditEntry).where(AuditEntry.entity_id == result["id"])).scalar_one()
        assert entry.action == "tax_payment_batch.receive" and json.loads(entry.detail)["rejected"] == 18


# -- idempotency and vouchers ----------------------------------------------------------------------------------------


async def test_the_same_line_again_is_a_no_op_and_other_content_a_conflict(start_service, settings):
    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        [(person_id, cid)] = add_persons(client, [1])
        _, [line_id] = add_assessment(client, employer_id, 202601, DUE, [(person_id, "PEN_EMP", 10_000, 5_000)])
        line = pay("I-1", payer_uscc=uscc, citizen_id=cid, employer_amount="100.00", individual_amount="50.00")
        first = await post(client, settings, [line])
        assert first.json()["accepted"] == 1

        # The same content, written differently ("100" for "100.00", the Chinese label of the method) → duplicate.
        again = await post(client, settings, [{**line, "employer_amount": "100", "method": "银行转账"}])
        assert again.status_code == 201
        assert (again.json()["accepted"], again.json()["duplicates"], again.json()["rejected"]) == (0, 1, 0)
        assert again.json()["duplicate_lines"][0]["tax_line_id"] == "I-1"
        assert count(client, TaxPayment) == 1 and len(charges_of(client, line_id)) == 1
        assert len(outbox(client, COLLECTED)) == 1  # a duplicate is not collected twice

        changed = await post(client, settings, [{**line, "employer_amount": "99.00"}])
        assert codes(changed.json()) == {"I-1": "TAX_LINE_CONFLICT"}
        with Session(engine_of(client)) as session:
            stored = session.execute(select(TaxPayment).where(TaxPayment.tax_line_id == "I-1")).scalar_one()
        assert stored.employer_fen == 10_000

        # Twice in one batch: the same content is a duplicate, other content a conflict.
        both = await post(client, settings, [pay("I-2", citizen_id=cid, employer_amount="1.00", voucher_no="W"),
                                             pay("I-2", citizen_id=cid, employer_amount="1.00", voucher_no="W"),
                                             pay("I-2", citizen_id=cid, employer_amount="2.00", voucher_no="W")])
        assert (both.json()["accepted"], both.json()["duplicates"], both.json()["rejected"]) == (1, 1, 1)
        assert codes(both.json()) == {"I-2": "TAX_LINE_CONFLICT"}


async def test_a_voucher_of_another_payer_is_a_duplicate_voucher(start_service, settings):
    async with start_service("collection") as client:
        _, uscc_a = add_employer(client, 1)
        _, uscc_b = add_employer(client, 2)
        [(_, cid)] = add_persons(client, [1])
        first = await post(client, settings, [pay("V-1", payer_uscc=uscc_a, employer_amount="1.00", voucher_no="VCH-9"),
                                              # one voucher for several lines of the same payer is fine
                                              pay("V-2", payer_uscc=uscc_a, fund="UNEMP", employer_amount="1.00",
                                                  voucher_no="VCH-9")])
        assert first.json()["accepted"] == 2
        second = await post(client, settings, [
            pay("V-3", payer_uscc=uscc_b, employer_amount="1.00", voucher_no="VCH-9"),
            pay("V-4", citizen_id=cid, employer_amount="1.00", voucher_no="VCH-9"),
            pay("V-5", payer_uscc=uscc_b, employer_amount="1.00", voucher_no="VCH-10"),
            pay("V-6", citizen_id=cid, employer_amount="1.00", voucher_no="VCH-10"),  # in-batch: VCH-10 is B's now
        ])
        assert codes(second.json()) == {"V-3": "DUPLICATE_VOUCHER", "V-4": "DUPLICATE_VOUCHER",
                                        "V-6": "DUPLICATE_VOUCHER"}
        assert second.json()["accepted"] == 1


# -- CSV -------------------------------------------------------------------------------------------------------------

CSV_HEADER = "税务明细编号,统一社会信用代码,公民身份号码,险种,费款所属期,单位缴费金额,个人缴费金额,滞纳金,缴费方式,票证号码,缴费日期"


async def test_a_gbk_csv_batch_is_read_with_chinese_headers_and_row_numbers(start_service, settings):
    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        [(person_id, cid)] = add_persons(client, [1])
        _, [line_id] = add_assessment(client, employer_id, 202601, DUE, [(person_id, "PEN_EMP", EMPLOYER_FEN, INDIVIDUAL_FEN)])
        text = "\r\n".join([
            CSV_HEADER,
            f"C-1,{uscc},{cid},PEN_EMP,202601,869.78,434.89,19.57,银行代扣,完税-001,2026-03-17",
            f"C-2,{uscc},,PEN_EMP,202601,1.00,0,,现金,完税-002,2026-03-17",
            f"C-3,{uscc},{cid},PEN_EMP,202601,-5,0,,online,完税-003,2026-03-17",
        ]) + "\r\n"
        files = {"file": ("缴费明细.csv", text.encode("gbk"), "text/csv")}
        response = await client.post("/tax-payments/batches/csv", files=files, headers=tax_headers(settings))
        assert response.status_code == 201, response.text
        result = response.json()
        assert (result["source_format"], result["matched"], result["rejected"]) == ("csv", 1, 2)
        assert {(r["line_no"], r["code"]) for r in result["rejections"]} == \
            {(3, "REFUSED_PAYMENT_METHOD"), (4, "NEGATIVE_AMOUNT")}
        [charge] = charges_of(client, line_id)
        assert (charge.days_late, charge.fee_accrued_fen, charge.fee_paid_fen) == (30, 1_957, 1_957)

        # The same line as JSON is the same line: a duplicate.
        again = await post(client, settings, [pay("C-1", payer_uscc=uscc, citizen_id=cid, employer_amount="869.78",
                                                  individual_amount="434.89", late_fee_amount="19.57",
                                                  method="bank_withholding", voucher_no="完税-001",
                                                  paid_date="2026-03-17")])
        assert again.json()["duplicates"] == 1


async def test_a_utf8_csv_with_field_names_and_a_wrong_header_set(start_service, settings):
    async with start_service("collection") as client:
        _, uscc = add_employer(client)
        good = ("tax_line_id,payer_uscc,fund,period,employer_amount,individual_amount,method,voucher_no,paid_date\n"
                f"U-1,{uscc},UNEMP,202601,10.00,0.00,online,VU-1,2026-02-01\n")
        ok = await client.post("/tax-payments/batches/csv", files={"file": ("a.csv", good.encode("utf-8-sig"))},
                               headers=tax_headers(settings))
        assert ok.status_code == 201, ok.text
        assert ok.json()["accepted"] == 1 and ok.json()["unmatched"] == 1  # no assessment for it: kept

        wrong = "税务明细编号,险种,金额\nW-1,PEN_EMP,1.00\n"
        refused = await client.post("/tax-payments/batches/csv", files={"file": ("b.csv", wrong.encode("gbk"))},
                                    headers=tax_headers(settings))
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["code"] == "IMPORT_COLUMNS_INVALID"
        assert "费款所属期" in error["message"] and "缴费方式" in error["message"]
        assert set(error["details"]["missing_fields"]) == {"period", "employer_amount", "individual_amount", "method",
                                                           "voucher_no", "paid_date"}
        assert count(client, TaxPaymentBatch) == 1


# -- unmatched and review --------------------------------------------------------------------------------------------


async def test_a_person_line_is_matched_to_the_one_open_line_of_its_payer(start_service, settings):
    """A person's (fund, period) line of another employer is no match for this payer's payment; two open lines of
    two employers are ambiguous without a payer; the payer's own line is settled (tests/collection: the one-line
    case is decided without building candidate lists)."""
    async with start_service("collection") as client:
        first_id, first_uscc = add_employer(client, 1)
        second_id, _ = add_employer(client, 2)
        _, third_uscc = add_employer(client, 3)
        [(person_id, cid), (other_id, other_cid)] = add_persons(client, [1, 2])
        _, [first_line, _] = add_assessment(client, first_id, 202601, DUE, [
            (person_id, "PEN_EMP", EMPLOYER_FEN, INDIVIDUAL_FEN), (other_id, "PEN_EMP", EMPLOYER_FEN, INDIVIDUAL_FEN)])
        add_assessment(client, second_id, 202601, DUE, [(other_id, "PEN_EMP", EMPLOYER_FEN, INDIVIDUAL_FEN)])
        response = await post(client, settings, [
            pay("P-1", payer_uscc=third_uscc, citizen_id=cid, employer_amount="869.78", individual_amount="434.89"),
            pay("P-2", citizen_id=other_cid, employer_amount="869.78", individual_amount="434.89"),
            pay("P-3", payer_uscc=first_uscc, citizen_id=cid, employer_amount="869.78", individual_amount="434.89"),
            pay("P-4", payer_uscc=first_uscc, citizen_id=cid, employer_amount="1.00"),
        ])
        assert response.status_code == 201, response.text
        result = response.json()
        notes = {u["tax_line_id"]: u["note"].split(":")[0] for u in result["unmatched_lines"]}
        assert notes == {"P-1": "NO_ASSESSMENT_LINE", "P-2": "AMBIGUOUS", "P-4": "ALREADY_SETTLED"}
        assert (result["matched"], result["unmatched"]) == (1, 3)
        assert line_row(client, first_line).status == "paid"
        assert [c.principal_paid_fen for c in charges_of(client, first_line)] == [EMPLOYER_FEN + INDIVIDUAL_FEN]


async def test_unmatched_lines_are_kept_listed_and_resolved_by_a_reviewer(start_service, settings, auth):
    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        [(person_id, cid), (other_id, other_cid)] = add_persons(client, [1, 2])
        _, [line_id] = add_assessment(client, employer_id, 202601, DUE, [(person_id, "PEN_EMP", EMPLOYER_FEN, INDIVIDUAL_FEN)])
        stranger = citizen_id(99)
        response = await post(client, settings, [
            # the bureau wrote the wrong period: nothing assessed for 202512
            pay("N-1", payer_uscc=uscc, citizen_id=cid, period=202512, employer_amount="869.78",
                individual_amount="434.89", paid_date="2026-03-17"),
            pay("N-2", citizen_id=stranger, employer_amount="1.00"),  # not registered here
            pay("N-3", payer_uscc=make_uscc(77), employer_amount="1.00"),  # employer not registered
            pay("N-4", citizen_id=other_cid, fund="UNEMP", employer_amount="1.00"),
        ])
        result = response.json()
        assert (result["accepted"], result["unmatched"], result["matched"]) == (4, 4, 0)
        notes = {u["tax_line_id"]: u["note"].split(":")[0] for u in result["unmatched_lines"]}
        assert notes == {"N-1": "NO_ASSESSMENT_LINE", "N-2": "PERSON_NOT_REGISTERED", "N-3": "PAYER_NOT_REGISTERED",
                         "N-4": "NO_ASSESSMENT_LINE"}
        [event] = outbox(client, COLLECTED)  # the TAX leg counts them all: the money was collected
        assert [x["match_status"] for x in event["lines"]] == ["unmatched"] * 4

        reviewer = auth("agency_reviewer")
        page = await client.get("/tax-payments/unmatched", params={"limit": 3}, headers=reviewer)
        assert page.status_code == 200, page.text
        assert [p["tax_line_id"] for p in page.json()["items"]] == ["N-1", "N-2", "N-3"]
        rest = await client.get("/tax-payments/unmatched", params={"limit": 3, "after": page.json()["next_cursor"]},
                                headers=reviewer)
        assert [p["tax_line_id"] for p in rest.json()["items"]] == ["N-4"] and rest.json()["next_cursor"] is None
        n1 = page.json()["items"][0]
        assert n1["citizen_id"] == cid  # a reviewer reads the full number

        masked = await client.get("/tax-payments/unmatched", params={"limit": 1}, headers=auth("accountant"))
        assert masked.json()["items"][0]["citizen_id"] == cid[:6] + "********" + cid[-4:]

        n4 = rest.json()["items"][0]
        wrong_fund = await client.post(f"/tax-payments/{n4['id']}/resolve",
                                       json={"assessment_line_id": line_id, "note": "试图跨险种"}, headers=reviewer)
        assert wrong_fund.status_code == 409 and error_code(wrong_fund) == "FUND_MISMATCH"
        clerk = await client.post(f"/tax-payments/{n1['id']}/resolve",
                                  json={"assessment_line_id": line_id, "note": "x"}, headers=auth("agency_clerk"))
        assert clerk.status_code == 403

        resolved = await client.post(f"/tax-payments/{n1['id']}/resolve",
                                     json={"assessment_line_id": line_id, "note": "税务所属期填报错误，应为202601"},
                                     headers=reviewer)
        assert resolved.status_code == 200, resolved.text
        body = resolved.json()
        assert body["match_status"] == "resolved" and body["assessment_line_id"] == line_id
        assert "RESOLVED" in body["match_note"] and "LATE_FEE_OUTSTANDING" in body["match_note"]
        [charge] = body["charges"]
        assert (charge["days_late"], charge["principal_paid"], charge["fee_accrued"], charge["fee_paid"]) == \
            (30, "1304.67", "19.57", "0.00")
        line = line_row(client, line_id)
        assert (line.status, line.paid_principal_fen, line.paid_late_fee_fen) == ("open", 130_467, 0)

        twice = await client.post(f"/tax-payments/{n1['id']}/resolve",
                                  json={"assessment_line_id": line_id, "note": "again"}, headers=reviewer)
        assert twice.status_code == 409 and error_code(twice) == "PAYMENT_NOT_UNMATCHED"
        left = await client.get("/tax-payments/unmatched", headers=reviewer)
        assert [p["tax_line_id"] for p in left.json()["items"]] == ["N-2", "N-3", "N-4"]
        with Session(engine_of(client)) as session:
            entry = session.execute(select(AuditEntry).where(AuditEntry.action == "tax_payment.resolve")).scalar_one()
        assert entry.entity_id == n1["id"] and entry.reason.startswith("税务所属期")
        assert_lines_carry_their_charges(client)


async def test_a_person_with_lines_at_two_employers_is_matched_by_the_paying_employer(start_service, settings):
    async with start_service("collection") as client:
        first_id, first_uscc = add_employer(client, 1)
        second_id, _ = add_employer(client, 2)
        [(person_id, cid)] = add_persons(client, [1])
        _, [line_a] = add_assessment(client, first_id, 202601, DUE, [(person_id, "PEN_EMP", 1_000, 500)])
        _, [line_b] = add_assessment(client, second_id, 202601, DUE, [(person_id, "PEN_EMP", 2_000, 1_000)])
        named = await post(client, settings, [pay("A-1", payer_uscc=first_uscc, citizen_id=cid, employer_amount="15.00")])
        assert named.json()["matched"] == 1
        assert (line_row(client, line_a).status, line_row(client, line_b).status) == ("paid", "open")
        anonymous = await post(client, settings, [pay("A-2", citizen_id=cid, employer_amount="30.00", voucher_no="X")])
        assert anonymous.json()["matched"] == 1  # only one line of the person is still open
        assert line_row(client, line_b).status == "paid"


# -- volume ----------------------------------------------------------------------------------------------------------


async def test_10_000_lines_in_one_transaction_with_events_in_parts_of_1_000(start_service, settings):
    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        people = add_persons(client, range(10_000))
        add_assessment(client, employer_id, 202601, DUE, [(p, "PEN_EMP", 40_000, 20_000) for p, _ in people])
        lines = [pay(f"L-{i:05d}", payer_uscc=uscc, citizen_id=cid, employer_amount="400.00",
                     individual_amount="200.00", late_fee_amount="3.90", voucher_no=f"V-{i // 100}",
                     paid_date="2026-02-28")
                 for i, (_, cid) in enumerate(people)]
        lines[17]["method"] = "cash"
        started = time.perf_counter()
        response = await post(client, settings, lines)
        elapsed = time.perf_counter() - started
        assert response.status_code == 201, response.text
        result = response.json()
        assert (result["lines"], result["accepted"], result["matched"], result["rejected"]) == (10_000, 9_999, 9_999, 1)
        print(f"10 000 payment lines: {elapsed:.2f} s")

        events = outbox(client, COLLECTED)
        assert [(e["part"], e["parts"]) for e in events] == [(i, 10) for i in range(1, 11)]
        assert all(len(e["lines"]) <= 1_000 for e in events)
        assert sum(len(e["lines"]) for e in events) == 9_999
        assert len({x["payment_id"] for e in events for x in e["lines"]}) == 9_999
        assert count(client, LateFeeCharge) == 9_999
        assert count(client, AssessmentLine, AssessmentLine.status == "paid") == 9_999
        # 13 days late at 0.05 %: 60 000 × 0.0005 × 13 = 390 fen accrued on each line, and paid
        with Session(engine_of(client)) as session:
            accrued, paid = session.execute(select(func.sum(LateFeeCharge.fee_accrued_fen),
                                                   func.sum(LateFeeCharge.fee_paid_fen))).one()
        assert accrued == paid == 390 * 9_999
        assert count(client, AssessmentLine, AssessmentLine.status == "open") == 1

        started = time.perf_counter()
        again = await post(client, settings, lines)
        print(f"10 000 lines re-posted: {time.perf_counter() - started:.2f} s")
        assert (again.json()["duplicates"], again.json()["rejected"]) == (9_999, 1)


async def test_a_batch_that_loses_a_race_is_rolled_back_whole(start_service, settings, monkeypatch):
    """Two batches carrying the same line id at once: the unique index stops the second, and nothing of it stays."""
    from services.collection.payments import service  # noqa: PLC0415

    async with start_service("collection") as client:
        employer_id, uscc = add_employer(client)
        [(person_id, cid), (other_id, other_cid)] = add_persons(client, [1, 2])
        _, [line_id, other_line] = add_assessment(client, employer_id, 202601, DUE, [
            (person_id, "PEN_EMP", 10_000, 0), (other_id, "PEN_EMP", 10_000, 0)])
        first = await post(client, settings, [pay("R-1", payer_uscc=uscc, citizen_id=cid, employer_amount="100.00")])
        assert first.json()["matched"] == 1
        before = (count(client, TaxPaymentBatch), count(client, LateFeeCharge), len(outbox(client)))

        monkeypatch.setattr(service, "_existing_lines", lambda session, ids: {})  # as if R-1 were not committed yet
        raced = await post(client, settings, [
            pay("R-2", payer_uscc=uscc, citizen_id=other_cid, employer_amount="100.00"),
            pay("R-1", payer_uscc=uscc, citizen_id=cid, employer_amount="100.00")])
        assert raced.status_code == 409 and error_code(raced) == "TAX_BATCH_CONCURRENT"
        assert (count(client, TaxPaymentBatch), count(client, LateFeeCharge), len(outbox(client))) == before
        assert line_row(client, other_line).status == "open"
        assert count(client, TaxPayment, TaxPayment.tax_line_id == "R-2") == 0


async def _waiting_for_the_settlement_lock(client, n: int) -> bool:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        return session.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                               ).scalar_one() == n


async def test_two_batches_settling_one_line_at_once_settle_it_once(start_service, settings, auth):
    """PostgreSQL: the settlers of a period queue up on its advisory lock (``payments.settling``) rather than on row
    locks of the lines. With the lock held, two batches paying the same line in full and a reviewer's resolve of an
    unmatched payment pointing at it all wait; let go, the line is settled once and the others find it settled."""
    from services.collection.payments import settling  # noqa: PLC0415

    async with start_service("collection") as client:
        if engine_of(client).dialect.name != "postgresql":
            pytest.skip("SQLite's writer holds the whole database (make test-postgres)")
        employer_id, uscc = add_employer(client)
        [(person_id, cid)] = add_persons(client, [1])
        _, [line_id] = add_assessment(client, employer_id, 202601, DUE, [(person_id, "PEN_EMP", 10_000, 0)])
        unmatched = (await post(client, settings, [pay("U-1", payer_uscc=uscc, citizen_id=cid, period=202512,
                                                      employer_amount="100.00")])).json()
        assert unmatched["unmatched"] == 1
        with Session(engine_of(client)) as session:
            payment_id = session.execute(select(TaxPayment.id).where(TaxPayment.tax_line_id == "U-1")).scalar_one()

        with Session(engine_of(client)) as blocker:
            settling.lock_periods(blocker, [202601])
            batches = [asyncio.ensure_future(post(client, settings, [
                pay(f"C-{i}", payer_uscc=uscc, citizen_id=cid, employer_amount="100.00")])) for i in (1, 2)]
            resolve = asyncio.ensure_future(client.post(
                f"/tax-payments/{payment_id}/resolve", headers=auth("agency_reviewer"),
                json={"assessment_line_id": line_id, "note": "复核：缴费期别填错"}))
            await wait_for(lambda: _waiting_for_the_settlement_lock(client, 3))
            assert not any(task.done() for task in (*batches, resolve))
            blocker.rollback()
        results = [(await task).json() for task in batches]
        resolved = await resolve

    assert resolved.status_code in (200, 409), resolved.text
    settlers = sum(r["matched"] for r in results) + (resolved.status_code == 200)
    [charge] = charges_of(client, line_id)
    assert settlers == 1 and charge.principal_paid_fen == 10_000 and line_row(client, line_id).status == "paid"
    if charge.tax_payment_id != payment_id:
        assert error_code(resolved) == "ASSESSMENT_LINE_SETTLED"
    assert_lines_carry_their_charges(client)


async def test_batches_of_one_period_settle_other_persons_lines_at_once(start_service, settings):
    """PostgreSQL: a batch of person-level payments holds the (period, person, fund) keys it pays and its period
    only in share mode (``payments.settling.lock_lines``). With one person's key held, a batch paying another person
    of the same period settles at once; one paying that person waits, and so does an employer-level payment (the
    persons of an employer's lines are not known before they are read: it holds the whole period). Let go, each
    line is settled once."""
    from services.collection.payments import settling  # noqa: PLC0415

    async with start_service("collection") as client:
        if engine_of(client).dialect.name != "postgresql":
            pytest.skip("SQLite's writer holds the whole database (make test-postgres)")
        employer_id, uscc = add_employer(client)
        [(held, held_cid), (other, other_cid), (third, _)] = add_persons(client, [1, 2, 3])
        _, line_ids = add_assessment(client, employer_id, 202601, DUE, [
            (held, "PEN_EMP", 10_000, 0), (other, "PEN_EMP", 10_000, 0), (third, "UNEMP", 10_000, 0)])

        with Session(engine_of(client)) as blocker:
            settling.lock_lines(blocker, [(202601, held, "PEN_EMP")])
            at_once = (await post(client, settings, [pay("O-1", payer_uscc=uscc, citizen_id=other_cid,
                                                         employer_amount="100.00")])).json()
            assert at_once["matched"] == 1 and line_row(client, line_ids[1]).status == "paid"
            waiting = [asyncio.ensure_future(post(client, settings, [line])) for line in (
                pay("H-1", payer_uscc=uscc, citizen_id=held_cid, employer_amount="100.00"),
                pay("E-1", payer_uscc=uscc, fund="UNEMP", employer_amount="100.00"))]
            await wait_for(lambda: _waiting_for_the_settlement_lock(client, 2))
            assert not any(task.done() for task in waiting)
            blocker.rollback()
        results = [(await task).json() for task in waiting]

    assert [r["matched"] for r in results] == [1, 1]
    assert [line_row(client, i).status for i in line_ids] == ["paid", "paid", "paid"]
    assert [[c.principal_paid_fen for c in charges_of(client, i)] for i in line_ids] == [[10_000]] * 3
    assert_lines_carry_their_charges(client)


# -- the plain-line shortcut -----------------------------------------------------------------------------------------

_VARIANTS = {
    "tax_line_id": [" T-1 ", "T" * 64, "T" * 65, "", "  ", "T\x00", "Ｔ-1", 12, None],
    "payer_uscc": [make_uscc(3), make_uscc(3).lower(), f" {make_uscc(3)} ", make_uscc(3)[:-1] + "0", "", None],
    "citizen_id": [citizen_id(5), citizen_id(7).lower(), " " + citizen_id(5), "150121197001010000", "", None, 1],
    "fund": ["pen_emp", " UNEMP ", "X" * 11, "", "险种", 3],
    "period": [202601, "202601", 202613, "20261", 2026.01, True, " 202601", None],
    "employer_amount": ["869.78", "869.7", "869.789", "-1.00", "-0", 100, 1.5, "1e2", "1,000", "", None, True,
                        "99999999999999", "9999999999999", "1000000000000", "1000000000000.01", "0869.78", "869.",
                        ".78", " 869.78", "869.78 ", "８６９.78", "869.0", "1E2", "+1.00"],
    "individual_amount": ["0", "0.00", "434.89", 0, "434.9", "00"],
    "late_fee_amount": ["19.57", "0.00", None, "-0.01", "19.5", "0"],
    "method": ["bank_transfer", " Online ", "SS_CARD", "银行代扣", "cheque", "x" * 31, ""],
    "voucher_no": ["V-1", " V-1 ", "V" * 65, "", "票证1"],
    "paid_date": ["2026-02-10", "2026-2-10", "2026-02-30", "1899-12-31", 20260210, None],
}


@pytest.mark.unit
def test_a_plain_line_is_checked_as_the_model_checks_it():
    """``quick_line`` answers only lines the model accepts, with the model's values; everything else it leaves to
    the model (which words the refusal), so the codes and messages of refused lines are the model's."""
    # a field added to the model must be added to the shortcut too
    in_fen = {"employer_amount": "employer_fen", "individual_amount": "individual_fen",
              "late_fee_amount": "late_fee_fen"}
    assert {in_fen.get(name, name) for name in TaxPaymentLine.model_fields} == set(CheckedLine._fields)
    assert set(TaxPaymentLine.model_fields) == set(_VARIANTS)
    base = pay("T-1", payer_uscc=make_uscc(3), citizen_id=citizen_id(5), employer_amount="869.78",
               individual_amount="434.89")
    cases = [base, {**base, "extra": 1}, {k: v for k, v in base.items() if k != "late_fee_amount"},
             {k: v for k, v in base.items() if k != "voucher_no"},
             {k: v for k, v in base.items() if k not in ("payer_uscc", "citizen_id")},
             {**base, "payer_uscc": None, "citizen_id": None},
             {**base, "employer_amount": "0", "individual_amount": "0.00", "late_fee_amount": "0"}]
    cases += [{**base, name: value} for name, values in _VARIANTS.items() for value in values]
    cases += [{**base, "payer_uscc": None}, {**base, "citizen_id": None}]
    quick = 0
    seen = BatchValues()  # one batch's remembered values: every case twice, in both orders
    for raw in cases:
        try:
            expected = CheckedLine.of(TaxPaymentLine.model_validate(raw))
        except ValidationError:
            expected = None
        got = quick_line(raw)
        assert quick_line(raw, seen) == got and quick_line(raw, seen) == got, raw
        if got is None:
            continue  # the model decides (and words any refusal)
        quick += 1
        assert expected is not None, f"the shortcut accepted a line the model refuses: {raw}"
        assert got == expected, raw
        model = TaxPaymentLine.model_validate(raw)
        for name, fen in in_fen.items():
            assert type(getattr(got, fen)) is int and getattr(got, fen) == yuan_to_fen(getattr(model, name)), raw
    assert quick >= 30  # the plain forms do take the shortcut
    for raw in reversed(cases):
        assert quick_line(raw, seen) == quick_line(raw), raw


@pytest.mark.unit
def test_the_content_hash_is_the_json_text_it_always_was():
    """Stored hashes are compared with those of lines sent again: the hashed text must stay ``json.dumps``'s."""
    lines = []
    for raw in (pay("T-\"1\"\\é", citizen_id=citizen_id(5), employer_amount="1.00"),
                pay("T-2", payer_uscc=make_uscc(3), employer_amount="869.78", individual_amount="434.89",
                    voucher_no="V/\u2028", method="online")):
        lines.append(quick_line(raw) or CheckedLine.of(TaxPaymentLine.model_validate(raw)))
    # Whatever a line may carry: quotes, backslashes and control characters are escaped as json.dumps escapes them.
    lines += [CheckedLine(f"T-{n}{odd}", None, "11010519491231002X", "PEN_EMP", 202601, 100, 0, 0, "online",
                          f"V{odd}", date(2026, 2, 1)) for n, odd in enumerate(('"', "\\", "\x01", "\n", "\x7f", ""))]
    for line in lines:
        text = json.dumps([line.tax_line_id, line.payer_uscc or "", line.citizen_id or "", line.fund, str(line.period),
                           str(line.employer_fen), str(line.individual_fen), str(line.late_fee_fen), line.method,
                           line.voucher_no, line.paid_date.isoformat()], ensure_ascii=False)
        assert _content_hash(line) == hashlib.sha256(text.encode()).hexdigest()
