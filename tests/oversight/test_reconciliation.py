"""Reconciliation R1–R6 (OVERSIGHT.md): every status of every check with a planted case, the cells the suspicion
engine reads, month close with a late event shown as a post-close adjustment, the JSON report and the workbook, and
who may read and close."""

import io
import json
from datetime import date

import openpyxl
import pytest
from sqlmodel import Session

from services.kernel import context, workdays
from services.kernel.db import unit_of_work
from services.kernel.settings import Settings
from services.oversight.reconciliation import service
from services.oversight.reconciliation.cells import Cell, compute_cells, r1_status, r2_status, r3_status, r5_status
from services.oversight.reconciliation.service import unmatched_cells
from tests.support.e2e import wait_for
from tests.support.oversight import (  # noqa: F401 - fixtures
    MED, PEN, UNEMP, Feed, allocation, approved, assessment, collected, engine, feed, posted, publish, receipt,
    registered, remitted, retained, settled, superseded, transaction,
)

INJ, MAT = "PEN_GOV", "PEN_RES"  # two more funds (Fund values, services.contracts.codes); MED is INJURY
AS_OF = date(2024, 12, 31)


def cells_of(feed: Feed, month: int, check: str, as_of: date = AS_OF) -> dict[tuple, Cell]:
    with Session(feed.engine) as session:
        return {tuple(c.key.values()): c for c in compute_cells(session, month, as_of=as_of)[check]}


def status_map(cells: dict[tuple, Cell]) -> dict[tuple, str]:
    return {key: cell.status for key, cell in cells.items()}


# -- R1 --------------------------------------------------------------------------------------------------------------


def test_r1_every_status(feed):
    p = 202403
    feed(
        # matched: 15.00 principal + 0.20 late fee collected, remitted and received; 15.00 posted
        collected((PEN, p, "e1", 1000, 500, 20), prefix="pen"), posted((PEN, p, "e1", 1000, 500), prefix="pen"),
        remitted("rp", PEN, p, 1520, date(2024, 4, 2)), receipt("tp", "rp", PEN, p, 1520, date(2024, 4, 8)),
        # mismatch: finance received 0.10 less than collected
        collected((MED, p, "e1", 1000, 0, 0), prefix="med"), posted((MED, p, "e1", 1000, 0), prefix="med"),
        remitted("rm", MED, p, 1000, date(2024, 4, 2)), receipt("tm", "rm", MED, p, 990, date(2024, 4, 8)),
        # missing_finance: collected and posted, nothing in the special account
        collected((UNEMP, p, "e1", 300, 100, 0), prefix="un"), posted((UNEMP, p, "e1", 300, 100), prefix="un"),
        # missing_agency: collected and received, the agency posted nothing
        collected((INJ, p, "e1", 200, 0, 0), prefix="inj"),
        remitted("ri", INJ, p, 200, date(2024, 4, 2)), receipt("ti", "ri", INJ, p, 200, date(2024, 4, 8)),
        # missing_tax: the agency posted and finance received what the bureau never reported
        posted((MAT, p, "e1", 700, 0), prefix="mat"),
        remitted("rt", MAT, p, 700, date(2024, 4, 2)), receipt("tt", "rt", MAT, p, 700, date(2024, 4, 8)),
    )
    cells = cells_of(feed, p, "R1")
    assert status_map(cells) == {(PEN, p): "matched", (MED, p): "mismatch", (UNEMP, p): "missing_finance",
                                 (INJ, p): "missing_agency", (MAT, p): "missing_tax"}
    pen = cells[(PEN, p)]
    assert pen.amounts == {"tax": 1520, "finance": 1520, "agency": 1500, "tax_principal": 1500, "tax_late_fee": 20}
    med = cells[(MED, p)]
    assert (med.amounts["tax"], med.amounts["finance"], med.amounts["agency"]) == (1000, 990, 1000)
    assert med.differences == {"finance_minus_tax": -10, "agency_minus_tax_principal": 0}
    assert med.difference_fen == -10 and med.suspicion == "S15" and med.clause == "000 二(二)"
    assert cells[(UNEMP, p)].difference_fen == -400


@pytest.mark.unit
def test_r1_status_rule_table():
    assert r1_status(tax=0, finance=0, agency=5, tax_principal=0) == "missing_tax"
    assert r1_status(tax=5, finance=0, agency=0, tax_principal=5) == "missing_finance"  # the first leg missing
    assert r1_status(tax=5, finance=5, agency=4, tax_principal=5) == "mismatch"
    assert r1_status(tax=6, finance=6, agency=5, tax_principal=5) == "matched"  # late fee: not the agency's


# -- R2 --------------------------------------------------------------------------------------------------------------


def test_r2_every_status_and_arrears(feed):
    p = 202403
    feed(
        assessment("a1", "e1", p, (PEN, 2000, 1000)), assessment("a2", "e2", p, (PEN, 1000, 500)),
        assessment("a3", "e3", p, (PEN, 800, 400)), assessment("a4", "e4", p, (PEN, 600, 300)),
        # e1 pays a third: TAX = AGENCY, the rest is arrears (matched: the legs agree)
        collected((PEN, p, "e1", 1000, 0, 0), (PEN, p, "e2", 1000, 500, 0), (PEN, p, "e3", 800, 400, 0), prefix="c"),
        posted((PEN, p, "e1", 1000, 0), prefix="c"),
        posted((PEN, p, "e2", 1000, 400), prefix="d"),  # e2: the agency posted 1.00 less: mismatch
        # e3: collected, never posted: missing_agency; e4: posted without any collection: missing_tax
        posted((PEN, p, "e4", 600, 300), prefix="e"),
    )
    cells = cells_of(feed, p, "R2")
    assert status_map(cells) == {("e1", PEN, p): "matched", ("e2", PEN, p): "mismatch",
                                 ("e3", PEN, p): "missing_agency", ("e4", PEN, p): "missing_tax"}
    e1 = cells[("e1", PEN, p)]
    assert e1.amounts == {"assessed": 3000, "tax": 1000, "agency": 1000, "tax_late_fee": 0, "arrears": 2000}
    assert cells[("e2", PEN, p)].difference_fen == -100
    # a correction lowers e1's assessment: the superseded figure leaves the cell
    feed(superseded("a1", "a1b", "e1", p), assessment("a1b", "e1", p, (PEN, 1200, 600), supersedes="a1"))
    assert cells_of(feed, p, "R2")[("e1", PEN, p)].amounts["arrears"] == 800
    assert r2_status(0, 0) == "matched"  # assessed, nothing collected: arrears only


# -- R3 --------------------------------------------------------------------------------------------------------------


def test_r3_every_status_on_the_chinese_calendar(feed):
    # 2024-09-27 (Fri): the 10th working day after it is 2024-10-16 — 9-29 (a Sunday) and 10-12 (a Saturday) are
    # make-up working days, 10-1 … 10-7 the National Day holiday. A weekday count would say 10-11.
    on = date(2024, 9, 27)
    feed(
        remitted("ok", PEN, 202408, 1000, on), receipt("t-ok", "ok", PEN, 202408, 1000, date(2024, 10, 16)),
        remitted("late", MED, 202408, 1000, on), receipt("t-late", "late", MED, 202408, 1000, date(2024, 10, 17)),
        remitted("split", UNEMP, 202408, 1000, on),
        receipt("t-s1", "split", UNEMP, 202408, 600, date(2024, 10, 8)),
        receipt("t-s2", "split", UNEMP, 202408, 400, date(2024, 10, 21)),  # the rest after the deadline: late
        remitted("none", INJ, 202408, 1000, on),  # nothing received
        remitted("part", MAT, 202408, 1000, on), receipt("t-p", "part", MAT, 202408, 300, date(2024, 9, 30)),
        remitted("over", PEN, 202408, 1000, date(2024, 9, 2)),
        receipt("t-o", "over", PEN, 202408, 1200, date(2024, 9, 5)),  # from a bank statement: above the remittance
        receipt("t-u", "unknown", PEN, 202408, 500, date(2024, 9, 10)),  # no remittance heard of
    )
    within = cells_of(feed, 202409, "R3", as_of=date(2024, 10, 16))
    assert status_map(within) == {("ok",): "matched", ("late",): "late", ("split",): "late",
                                  ("none",): "missing_finance", ("part",): "missing_finance",
                                  ("over",): "mismatch", ("unknown",): "missing_tax"}
    assert within[("ok",)].detail["deadline"] == date(2024, 10, 16)
    assert within[("late",)].detail["days_late"] == 1 and within[("late",)].suspicion == "S12"
    assert within[("part",)].amounts == {"remitted": 1000, "received": 300, "unreceived": 700}
    after = cells_of(feed, 202409, "R3", as_of=date(2024, 10, 17))
    assert (after[("none",)].status, after[("part",)].status) == ("late", "late")
    assert after[("none",)].detail["days_late"] == 1
    assert r3_status(1000, 1000, date(2027, 3, 1), None, date(2027, 3, 1)) == "matched"  # calendar lacks the year


# -- R4 --------------------------------------------------------------------------------------------------------------


def test_r4_income_account_closing_balance(feed):
    feed(
        registered("inc-pen", "income", PEN), registered("inc-med", "income", MED),
        registered("inc-idle", "income", UNEMP), registered("inc-new", "income", INJ, opened_on=date(2024, 5, 1)),
        transaction("i1", account="inc-pen", kind="income", fund=PEN, direction="in", amount=5000,
                    counterparty="payer", purpose="receipt", on=date(2024, 3, 5)),
        transaction("i2", account="inc-pen", kind="income", fund=PEN, direction="out", amount=5000,
                    counterparty="special", purpose="transfer", on=date(2024, 3, 29), counterparty_fund=PEN),
        transaction("i3", account="inc-med", kind="income", fund=MED, direction="in", amount=3000,
                    counterparty="payer", purpose="receipt", on=date(2024, 3, 30)),
        transaction("i4", account="inc-med", kind="income", fund=MED, direction="out", amount=3000,
                    counterparty="special", purpose="transfer", on=date(2024, 4, 1), counterparty_fund=MED),
    )
    march = cells_of(feed, 202403, "R4")
    assert status_map(march) == {("inc-pen", 202403): "matched", ("inc-med", 202403): "mismatch",
                                 ("inc-idle", 202403): "matched"}  # inc-new was not open yet
    med = march[("inc-med", 202403)]
    assert (med.amounts["closing_balance"], med.difference_fen, med.suspicion, med.clause) == \
        (3000, 3000, "S13", "000 二(四)1")
    april = cells_of(feed, 202404, "R4")
    assert april[("inc-med", 202404)].status == "matched" and april[("inc-med", 202404)].amounts["out"] == 3000


# -- R5 --------------------------------------------------------------------------------------------------------------


def test_r5_every_status(feed):
    p = 202403
    feed(
        # matched: approved 5 500.00, allocated the same, 3 000.00 paid and 2 500.00 returned by the bank
        approved("run-pen", PEN, p, 550000, 2), allocation("al-pen", PEN, 550000, date(2024, 3, 20)),
        settled("f-pen", "run-pen", PEN, p, ("l1", 300000, "paid"), ("l2", 250000, "failed")),
        # mismatch: finance allocated less than approved
        approved("run-med", MED, p, 100000), allocation("al-med", MED, 90000, date(2024, 3, 20)),
        settled("f-med", "run-med", MED, p, ("m1", 100000, "paid")),
        # missing_finance: approved, no allocation
        approved("run-un", UNEMP, p, 70000),
        # missing_agency: an allocation no approved payroll explains
        allocation("al-inj", INJ, 40000, date(2024, 3, 20)),
        # bank results outstanding: approved = allocated, nothing settled yet → a difference (mismatch)
        approved("run-mat", MAT, p, 80000), allocation("al-mat", MAT, 80000, date(2024, 3, 21)),
    )
    cells = cells_of(feed, p, "R5")
    assert status_map(cells) == {(PEN, p): "matched", (MED, p): "mismatch", (UNEMP, p): "missing_finance",
                                 (INJ, p): "missing_agency", (MAT, p): "mismatch"}
    assert cells[(PEN, p)].amounts == {"approved": 550000, "allocated": 550000, "accounted": 550000, "bank": 550000,
                                       "paid": 300000, "returned": 250000, "held_back": 0, "offset": 0}
    assert cells[(MED, p)].differences == {"allocated_minus_approved": -10000, "accounted_minus_approved": 0}
    assert cells[(MAT, p)].difference_fen == -80000
    # the failed payment re-issued and paid: still matched, paid once
    feed(settled("f-pen-2", "run-pen", PEN, p, ("l2", 250000, "paid")))
    pen = cells_of(feed, p, "R5")[(PEN, p)]
    assert (pen.status, pen.amounts["paid"], pen.amounts["returned"]) == ("matched", 550000, 0)
    assert r5_status(0, 0, 0) == "matched"


def test_r5_held_back_and_offset_lines_balance_the_approved_payroll(feed):
    """Benefits' first bank file holds back lines suspended since approval and deducts recovery offsets: approved =
    paid + returned + held back + offset (payroll/service.py). Without those figures the cell would not balance."""
    p = 202403
    feed(
        # PEN: 4 lines of 3 000.00: one paid in full, one paid net of a 500.00 offset, one held back, one offset in full
        approved("run-pen", PEN, p, 1200000, 4), allocation("al-pen", PEN, 1200000, date(2024, 3, 20)),
        settled("f-pen", "run-pen", PEN, p, ("l1", 300000, "paid"), ("l2", 250000, "paid")),
        # MED: the held-back line reported short by 100.00 (what benefits would never send): a mismatch
        approved("run-med", MED, p, 500000, 2), allocation("al-med", MED, 500000, date(2024, 3, 20)),
        settled("f-med", "run-med", MED, p, ("m1", 300000, "failed")),
        retained("run-med", MED, p, held=(("m2", 190000, "HELD_IMPRISONED"),)),
    )
    pen_before = cells_of(feed, p, "R5")[(PEN, p)]
    assert (pen_before.status, pen_before.differences["accounted_minus_approved"]) == ("mismatch", -650000)
    event = retained("run-pen", PEN, p, held=(("l3", 300000, "HELD_SUSPENDED"),),
                     offsets=(("l2", 300000, 50000), ("l4", 300000, 300000)))
    feed(event)
    cells = cells_of(feed, p, "R5")
    assert status_map(cells) == {(PEN, p): "matched", (MED, p): "mismatch"}
    pen = cells[(PEN, p)]
    assert pen.amounts == {"approved": 1200000, "allocated": 1200000, "accounted": 1200000, "bank": 550000,
                           "paid": 550000, "returned": 0, "held_back": 300000, "offset": 350000}
    assert (pen.detail["held_back_lines"], pen.detail["offset_lines"], pen.difference_fen) == (1, 2, 0)
    med = cells[(MED, p)]
    assert (med.amounts["accounted"], med.differences, med.difference_fen) == \
        (490000, {"allocated_minus_approved": 0, "accounted_minus_approved": -10000}, -10000)
    # redelivered (under another envelope id): counted once, still matched
    feed(event)
    again = cells_of(feed, p, "R5")[(PEN, p)]
    assert (again.status, again.amounts) == ("matched", pen.amounts)
    # an over-reported offset does not balance either
    feed(retained("run-pen", PEN, p, offsets=(("l5", 100, 100),)))
    assert cells_of(feed, p, "R5")[(PEN, p)].status == "mismatch"
    assert r5_status(1000, 1000, 1000) == "matched" and r5_status(1000, 1000, 900) == "mismatch"


# -- R6 --------------------------------------------------------------------------------------------------------------


def test_r6_cross_fund_and_flagged_movements(feed):
    feed(
        transaction("x1", account="sp-pen", kind="special", fund=PEN, direction="out", amount=500,
                    counterparty="expenditure", purpose="allocation", on=date(2024, 3, 9), counterparty_fund=MED,
                    status="flagged", violation="U7（000 二(一)“…”）不同险种基金之间不得划转资金：本账户属 PEN_EMP，对方属 MED_EMP",
                    source="bank_statement"),
        transaction("x2", account="inc-pen", kind="income", fund=PEN, direction="out", amount=700,
                    counterparty="other", purpose="payment", on=date(2024, 3, 10), status="flagged",
                    violation="U1（000 二(四)1“…”）收入户只能向本险种财政专户划转资金", source="bank_statement"),
        transaction("x3", account="inc-med", kind="income", fund=MED, direction="out", amount=900,
                    counterparty="special", purpose="transfer", on=date(2024, 3, 11), counterparty_fund=MED),
    )
    cells = cells_of(feed, 202403, "R6")
    assert status_map(cells) == {("x1",): "mismatch", ("x2",): "mismatch", (MED, 202403): "matched"}
    assert (cells[("x1",)].suspicion, cells[("x1",)].detail["counterparty_fund"]) == ("S14", MED)
    assert (cells[("x2",)].suspicion, cells[("x2",)].detail["usage_rule"]) == ("S16", "U1")
    assert cells[("x1",)].clause == "000 二(一)" and cells[("x1",)].amounts == {"amount": 500}


# -- the suspicion engine's view -------------------------------------------------------------------------------------


def test_unmatched_cells_are_rule_friendly(feed):
    p = 202403
    feed(collected((PEN, p, "e1", 1000, 0, 0)), remitted("r9", MED, p, 100, date(2024, 3, 1)),
         registered("inc", "income", PEN),
         transaction("i9", account="inc", kind="income", fund=PEN, direction="in", amount=10, counterparty="payer",
                     purpose="receipt", on=date(2024, 3, 1)),
         posted((MED, p, "e2", 50, 0)))
    with Session(feed.engine) as session:
        found = unmatched_cells(session, p, as_of=date(2024, 6, 1))
    assert [(c.check, c.status, c.suspicion) for c in found] == [
        ("R1", "missing_tax", "S15"), ("R1", "missing_finance", "S15"),
        ("R2", "missing_tax", "S15"), ("R2", "missing_agency", "S15"),
        ("R3", "late", "S12"), ("R4", "mismatch", "S13")]
    r2 = found[3]
    assert (r2.key, r2.fund, r2.period, r2.amounts["tax"], r2.post_close) == \
        ({"employer_id": "e1", "fund": PEN, "period": p}, PEN, p, 1000, None)


def test_close_freezes_and_later_events_are_post_close_adjustments(feed):
    p = 202403
    feed(collected((PEN, p, "e1", 1000, 0, 0)), posted((PEN, p, "e1", 1000, 0)))
    with unit_of_work(feed.engine) as session, context.trace(actor=context.Actor(id="officer.wang",
                                                                                 role="oversight_officer")):
        close = service.close_month(session, p, note="2024年3月月结")
        assert (close.cells, close.unmatched) == (2, 1)  # R1 missing_finance, R2 matched; nothing else yet
    feed(remitted("r1", PEN, p, 1000, date(2024, 4, 1)), receipt("t1", "r1", PEN, p, 1000, date(2024, 4, 3)))
    with Session(feed.engine) as session:
        report = service.month_report(session, p, as_of=AS_OF)
        [r1] = report.cells["R1"]
        assert (r1.status, r1.amounts["finance"]) == ("missing_finance", 0)  # the snapshot stands
        [adjustment] = report.adjustments
        assert (adjustment.check, adjustment.changed, adjustment.delta) == ("R1", ["status", "amounts"],
                                                                            {"finance": 1000})
        assert adjustment.now.status == "matched"
        assert unmatched_cells(session, p, as_of=AS_OF) == []  # now every cell agrees


# -- the API: JSON, workbook, close, roles ---------------------------------------------------------------------------


def month_events(p: int) -> list:
    return [
        collected((PEN, p, "e1", 16000, 8000, 0), (PEN, p, "e2", 3200, 1600, 0), (MED, p, "e1", 8000, 2000, 0)),
        posted((PEN, p, "e1", 16000, 8000), (PEN, p, "e2", 3200, 1600), (MED, p, "e1", 8000, 2000)),
        remitted("r1", PEN, p, 28800, date(2024, 3, 4)), receipt("t1", "r1", PEN, p, 28800, date(2024, 3, 6)),
        remitted("r2", MED, p, 10000, date(2024, 3, 4)),
        receipt("t2", "r2", MED, p, 9000, date(2024, 3, 6)),  # finance short by 10.00: R1 mismatch, R3 late
        approved("run1", PEN, p, 130000, 3), allocation("al1", PEN, 130000, date(2024, 3, 25)),
        settled("f1", "run1", PEN, p, ("l1", 90000, "paid")),
        retained("run1", PEN, p, held=(("l2", 30000, "HELD_SUSPENDED"),), offsets=(("l3", 10000, 10000),)),
    ]


async def test_report_workbook_close_and_roles(start_service, auth):
    officer = auth("oversight_officer", subject="officer.wang")
    auditor = auth("internal_auditor", subject="auditor.zhao")
    p = 202403
    async with start_service("oversight") as oversight:
        await publish(oversight, *month_events(p))

        async def ready() -> dict | None:
            body = (await oversight.get(f"/reconciliation/months/{p}", headers=officer)).json()
            summary = {c["check"]: c["summary"] for c in body["checks"]}
            wanted = {"R1": {"matched": 1, "mismatch": 1}, "R2": {"matched": 3}, "R3": {"matched": 1, "late": 1},
                      "R5": {"matched": 1}}
            return body if all(summary[c][s] == n for c, counts in wanted.items() for s, n in counts.items()) \
                else None

        body = await wait_for(ready, timeout=30)
        assert body["figures"] == "live" and body["closed"] is None and body["unmatched"] == 2
        checks = {c["check"]: c for c in body["checks"]}
        assert [(c["key"]["fund"], c["status"]) for c in checks["R1"]["cells"]] == [(MED, "mismatch"),
                                                                                   (PEN, "matched")]
        med = checks["R1"]["cells"][0]
        assert med["amounts"]["finance"] == "90.00" and med["difference"] == "-10.00" and med["suspicion"] == "S15"
        assert checks["R2"]["listed"] == "discrepancies" and checks["R2"]["cells"] == []
        assert [(c["key"]["remittance_id"], c["status"]) for c in checks["R3"]["cells"]] == [("r1", "matched"),
                                                                                           ("r2", "late")]
        r5 = checks["R5"]["cells"][0]
        assert (r5["amounts"]["bank"], r5["amounts"]["held_back"], r5["amounts"]["offset"]) == \
            ("900.00", "300.00", "100.00")

        # the workbook: a summary and one sheet per check with its discrepancies
        response = await oversight.get(f"/reconciliation/months/{p}.xlsx", headers=auditor)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
        book = openpyxl.load_workbook(io.BytesIO(response.content))
        assert book.sheetnames == ["概要", "R1 三方对账", "R2 单位对账", "R3 国库划款时限", "R4 收入户月末余额",
                                   "R5 基金支出", "R6 基金间划转与违规"]
        summary = [row for row in book["概要"].iter_rows(values_only=True)]
        r1_row = next(row for row in summary if row[0] == "R1")
        assert r1_row[4:6] == (2, 1) and r1_row[6] == 1  # cells, matched, mismatch
        r1_sheet = list(book["R1 三方对账"].iter_rows(values_only=True))
        assert r1_sheet[0][:4] == ("险种 fund", "所属期 period", "状态 status", "税务 TAX")
        assert r1_sheet[1][:3] == (MED, p, "不符 (mismatch)") and float(r1_sheet[1][3]) == 100.0
        assert float(r1_sheet[1][6]) == 90.0 and float(r1_sheet[1][8]) == -10.0
        r2_sheet = list(book["R2 单位对账"].iter_rows(values_only=True))
        assert "相符 3 个未列出" in r2_sheet[0][0] and len(r2_sheet) == 2
        r3_sheet = list(book["R3 国库划款时限"].iter_rows(values_only=True))
        assert [row[6] for row in r3_sheet[1:]] == ["相符 (matched)", "逾期 (late)"]
        header, row = list(book["R5 基金支出"].iter_rows(values_only=True))
        r5_row = dict(zip(header, row, strict=True))
        assert r5_row["状态 status"] == "相符 (matched)"
        assert [float(r5_row[h]) for h in ("核准发放 approved", "银行+停发+抵扣 accounted", "银行确认 bank",
                                           "停发 held back", "抵扣 offset", "(银行+停发+抵扣)−核准")] == \
            [1300.0, 1300.0, 900.0, 300.0, 100.0, 0.0]

        # who may do what
        clerk = auth("agency_clerk")
        assert (await oversight.get(f"/reconciliation/months/{p}", headers=clerk)).status_code == 403
        assert (await oversight.get(f"/reconciliation/months/{p}", headers=auditor)).status_code == 200
        refused = await oversight.post(f"/reconciliation/months/{p}/close", headers=auditor, json={})
        assert refused.status_code == 403
        assert (await oversight.post("/reconciliation/months/209901/close", headers=officer)).json()["error"][
            "code"] == "MONTH_NOT_OVER"
        bad = await oversight.get("/reconciliation/months/202413", headers=officer)
        assert bad.status_code == 422

        closed = await oversight.post(f"/reconciliation/months/{p}/close", headers=officer,
                                      json={"note": "三月月结"})
        assert closed.status_code == 201, closed.text
        assert (closed.json()["closed_by"], closed.json()["unmatched"]) == ("officer.wang", 2)
        again = await oversight.post(f"/reconciliation/months/{p}/close", headers=officer, json={})
        assert again.status_code == 409 and again.json()["error"]["code"] == "MONTH_ALREADY_CLOSED"

        # finance's missing 10.00 arrives after the close: shown beside the snapshot, not folded in
        await publish(oversight, receipt("t3", "r2", MED, p, 1000, date(2024, 4, 2)))

        async def adjusted() -> dict | None:
            body = (await oversight.get(f"/reconciliation/months/{p}", headers=officer)).json()
            return body if body["post_close_adjustments"] else None

        body = await wait_for(adjusted, timeout=30)
        assert body["figures"] == "snapshot" and body["closed"]["note"] == "三月月结"
        r1 = {c["key"]["fund"]: c for c in body["checks"][0]["cells"]}
        assert (r1[MED]["status"], r1[MED]["amounts"]["finance"]) == ("mismatch", "90.00")
        adjustments = {(a["check"], tuple(a["key"].values())): a for a in body["post_close_adjustments"]}
        assert set(adjustments) == {("R1", (MED, p)), ("R3", ("r2",))}
        r1_adj = adjustments[("R1", (MED, p))]
        assert (r1_adj["snapshot"]["status"], r1_adj["now"]["status"], r1_adj["delta"]) == \
            ("mismatch", "matched", {"finance": "10.00"})
        r3_adj = adjustments[("R3", ("r2",))]  # received in full, but after the deadline: still late
        assert (r3_adj["changed"], r3_adj["now"]["status"]) == (["amounts"], "late")

        book = openpyxl.load_workbook(io.BytesIO(
            (await oversight.get(f"/reconciliation/months/{p}.xlsx", headers=officer)).content))
        rows = list(book["月结后调整"].iter_rows(values_only=True))
        assert rows[1][:5] == ("R1", f"fund={MED}, period={p}", "status, amounts", "mismatch", "matched")
        assert "finance +10.00" in rows[1][5]
        audit = (await oversight.get("/audit/entries", headers=officer,
                                     params={"entity_type": "reconciliation_month"})).json()
        assert [(e["action"], e["actor_id"], e["reason"]) for e in audit] == [
            ("reconciliation.month_closed", "officer.wang", "三月月结")]


@pytest.mark.unit
def test_a_figure_missing_from_an_older_snapshot_counts_as_zero_not_as_an_adjustment():
    """R5 gained held-back and offset figures: a month closed before that is not 'adjusted' by their appearance."""
    def r5(status: str, **amounts: int) -> Cell:
        return Cell(check="R5", key={"fund": "PEN_EMP", "month": 202401}, status=status, month=202401,
                    fund="PEN_EMP", period=202401, amounts=amounts)

    old = r5("matched", approved=550000, paid=550000)
    assert service.adjustments({"R5": [old]}, {"R5": [r5("matched", approved=550000, paid=550000, held_back=0)]}) == []
    [changed] = service.adjustments({"R5": [old]}, {"R5": [r5("mismatch", approved=550000, paid=550000,
                                                               held_back=1000)]})
    assert (changed.changed, changed.delta) == (["status", "amounts"], {"held_back": 1000})


def test_r3_asks_the_calendar_again_for_a_year_supplied_after_the_remittance(feed, tmp_path):
    """A remittance in a year the calendar did not know has no deadline; once the operator supplies the year (the
    State Council's notice, services/kernel/workdays.py), the report judges it."""
    on = date(2031, 9, 26)  # a synthetic year
    feed(remitted("r31", PEN, 203108, 1000, on), receipt("t31", "r31", PEN, 203108, 1000, date(2031, 10, 16)))
    before = cells_of(feed, 203109, "R3", as_of=date(2031, 10, 20))[("r31",)]
    assert (before.status, before.detail["deadline"]) == ("matched", None) and "2031" in before.detail["note"]
    calendar = tmp_path / "calendar.json"
    calendar.write_text(json.dumps({"2031": {
        "source": "测试用虚构安排（非官方）", "holidays": ["2031-01-01", "2031-10-01/2031-10-07"],
        "workdays": ["2031-09-28", "2031-10-11"]}}, ensure_ascii=False), encoding="utf-8")
    workdays.configure(Settings(workday_calendar_file=calendar))
    try:
        after = cells_of(feed, 203109, "R3", as_of=date(2031, 10, 20))[("r31",)]
    finally:
        workdays.configure(None)
    # Counted after Friday 9-26: 9-28 (make-up Sunday) 1, 9-29 2, 9-30 3, (10-1 … 10-7 off) 10-8 4, 10-9 5, 10-10 6,
    # 10-11 (make-up Saturday) 7, 10-13 8, 10-14 9, 10-15 10; received 10-16: one day late.
    assert (after.status, after.detail["deadline"], after.detail["days_late"]) == ("late", date(2031, 10, 15), 1)


def test_workbook_cells_carry_text_with_control_characters():
    """A voucher or bank line id with a control character (stored by collection as received) cannot go into a
    workbook as it is: the month's workbook shows the character as U+FFFD and is complete."""
    import io

    from openpyxl import Workbook, load_workbook

    from services.oversight.reconciliation import excel

    book = Workbook(write_only=True)
    sheet = book.create_sheet("R3")
    sheet.append([excel._plain("V\x0b01"), excel._plain("行\x00号"), excel._plain(12)])
    buffer = io.BytesIO()
    book.save(buffer)
    row = next(load_workbook(io.BytesIO(buffer.getvalue())).active.iter_rows(values_only=True))
    assert row == ("V\ufffd01", "行\ufffd号", 12)
