"""Oversight's independent ledger: events → aggregate cells (R1–R6), exact under supersession, re-issued payments and
out-of-order receipts; events published on a real nats-server reach a running oversight's cells; a rebuild from the
streams gives the same figures.

The handler tests feed envelopes straight into the ledger's handlers (as the consumer would, one transaction each);
the service tests publish on JetStream as the producing services' outbox relays do."""

import asyncio
from datetime import date

from alembic import command
from sqlalchemy import text
from sqlmodel import Session

from services.contracts import benefits as ben
from services.contracts import collection as col
from services.kernel.db import make_engine
from services.kernel.events import EventPayload
from services.kernel.migrations import alembic_config
from services.kernel.service_app import merge_consumer_specs
from services.oversight import models
from services.oversight.app import SPEC
from services.oversight.ledger.handlers import LEDGER_HANDLERS
from services.oversight.ledger.models import (
    LedgerAssessment,
    LedgerEmployerPeriod,
    LedgerEmployerPeriodAgency,
    LedgerFlaggedTransaction,
    LedgerFundMonthOut,
    LedgerFundPeriod,
    LedgerFundPeriodAgency,
    LedgerRemittance,
    LedgerRetainedLine,
    LedgerSettledLine,
)
from services.oversight.rebuild import rebuild_ledger
from services.oversight.reconciliation import service
from services.oversight.reconciliation.cells import r1_cells, r2_cells
from services.oversight.reconciliation.report import report_json
from tests.support.e2e import wait_for
from tests.support.oversight import (
    MED, PEN, allocation, approved, assessment, collected, posted, publish, receipt, registered, remitted, retained,
    settled, superseded, transaction,
)
from tests.support.oversight import engine, feed  # noqa: F401 - fixtures

SOURCES = {"collection": "collection", "accounts": "accounts", "benefits": "benefits"}


# -- event builders (amounts in fen) ---------------------------------------------------------------------------------


# -- handler-level ---------------------------------------------------------------------------------------------------


def test_a_thousand_line_event_costs_one_row_per_cell(feed):
    lines = [(PEN if i % 2 else MED, 202401, f"e{i % 10}", 1000 + i, 400, 5 if i % 100 == 0 else 0)
             for i in range(1000)]
    feed(collected(*lines))
    feed(posted(*[(f, p, e, er, ind) for f, p, e, er, ind, _ in lines[:600]]),
         posted(*[(f, p, e, er, ind) for f, p, e, er, ind, _ in lines[600:]], prefix="q"))
    assert feed.count(LedgerFundPeriod) == feed.count(LedgerFundPeriodAgency) == 2
    assert feed.count(LedgerEmployerPeriod) == feed.count(LedgerEmployerPeriodAgency) == 10
    pen, pen_posted = feed.get(LedgerFundPeriod, 202401, PEN), feed.get(LedgerFundPeriodAgency, 202401, PEN)
    odd = [line for line in lines if line[0] == PEN]
    assert pen.tax_principal_fen == sum(er + ind for _, _, _, er, ind, _ in odd) == pen_posted.agency_fen
    assert pen.tax_late_fee_fen == 0 and pen.tax_lines == pen_posted.agency_lines == 500
    med = feed.get(LedgerFundPeriod, 202401, MED)
    assert med.tax_late_fee_fen == 50  # ten lines with 5 fen each
    employer, employer_posted = (feed.get(model, 202401, MED, "e0")
                                 for model in (LedgerEmployerPeriod, LedgerEmployerPeriodAgency))
    expected = sum(er + ind for f, _, e, er, ind, _ in lines if e == "e0")
    assert (employer.tax_principal_fen, employer_posted.agency_fen, employer.tax_late_fee_fen) == (
        expected, expected, 50)


def test_collected_lines_without_an_employer_share_one_cell(feed):
    feed(collected((PEN, 202401, None, 100, 50, 0), (PEN, 202401, None, 200, 50, 0)))
    row = feed.get(LedgerEmployerPeriod, 202401, PEN, "")
    assert row.tax_principal_fen == 400


def test_supersession_takes_the_old_assessment_out_in_any_order(feed):
    feed(assessment("a1", "e1", 202401, (PEN, 1600, 800), (MED, 800, 200), part=1, parts=2))
    assert feed.get(LedgerEmployerPeriod, 202401, PEN, "e1").assessed_fen == 2400
    # the correction arrives (superseded, then the new assessment) before the old one's second part
    feed(superseded("a1", "a2", "e1", 202401))
    feed(assessment("a2", "e1", 202401, (PEN, 1700, 850), (MED, 800, 200), supersedes="a1"))
    feed(assessment("a1", "e1", 202401, (PEN, 1600, 800), part=2, parts=2))  # late part of a1: not counted
    assert feed.get(LedgerEmployerPeriod, 202401, PEN, "e1").assessed_fen == 2550
    assert feed.get(LedgerEmployerPeriod, 202401, MED, "e1").assessed_fen == 1000
    old = feed.get(LedgerAssessment, "a1", PEN)
    assert (old.assessed_fen, old.lines, old.superseded) == (4800, 2, True)
    feed(superseded("a1", "a2", "e1", 202401))  # said again: nothing more comes out
    assert feed.get(LedgerEmployerPeriod, 202401, PEN, "e1").assessed_fen == 2550
    # a correction that names what it supersedes is enough on its own (its AssessmentSuperseded not seen yet)
    feed(assessment("b1", "e2", 202401, (PEN, 1000, 500)),
         assessment("b2", "e2", 202401, (PEN, 1200, 600), supersedes="b1"))
    assert feed.get(LedgerEmployerPeriod, 202401, PEN, "e2").assessed_fen == 1800
    feed(superseded("b1", "b2", "e2", 202401))
    assert feed.get(LedgerEmployerPeriod, 202401, PEN, "e2").assessed_fen == 1800


def test_a_failed_payment_paid_after_reissue_counts_once_as_paid_whatever_the_order(feed):
    feed(settled("f1", "r1", PEN, 202401, ("l1", 300000, "paid"), ("l2", 250000, "failed")))
    row = feed.get(LedgerFundMonthOut, 202401, PEN)
    assert (row.paid_fen, row.returned_fen, row.paid_lines, row.returned_lines) == (300000, 250000, 1, 1)
    feed(settled("f2", "r1", PEN, 202401, ("l2", 250000, "paid")))  # re-issued to the corrected account
    row = feed.get(LedgerFundMonthOut, 202401, PEN)
    assert (row.paid_fen, row.returned_fen, row.paid_lines, row.returned_lines) == (550000, 0, 2, 0)
    assert feed.get(LedgerSettledLine, "l2").file_id == "f2"
    # the bank's failure of another line reported after its payment (out of order): paid stands
    feed(settled("f3", "r1", PEN, 202401, ("l3", 100, "paid")), settled("f4", "r1", PEN, 202401, ("l3", 100, "failed")))
    row = feed.get(LedgerFundMonthOut, 202401, PEN)
    assert (row.paid_fen, row.returned_fen) == (550100, 0)


def test_held_back_and_offset_lines_count_once_per_payroll_line(feed):
    event = retained("r1", PEN, 202401, held=(("h1", 300000, "HELD_SUSPENDED"), ("h2", 200000, "HELD_DECEASED")),
                     offsets=(("o1", 300000, 50000), ("o2", 300000, 300000)))
    feed(event)
    row = feed.get(LedgerFundMonthOut, 202401, PEN)
    assert (row.held_back_fen, row.held_back_lines, row.offset_fen, row.offset_lines) == (500000, 2, 350000, 2)
    line = feed.get(LedgerRetainedLine, "o2")
    assert (line.kind, line.amount_fen, line.fully_offset, line.run_id) == ("offset", 300000, True, "r1")
    assert feed.get(LedgerRetainedLine, "h2").reason == "HELD_DECEASED"
    # the same event delivered again under another id (the inbox cannot tell), and a part repeating one line
    feed(event, retained("r1", PEN, 202401, held=(("h1", 300000, "HELD_SUSPENDED"), ("h3", 100000, "HELD_ENDED")),
                         part=2, parts=2))
    row = feed.get(LedgerFundMonthOut, 202401, PEN)
    assert (row.held_back_fen, row.held_back_lines, row.offset_fen, row.offset_lines) == (600000, 3, 350000, 2)
    assert feed.count(LedgerRetainedLine) == 5
    # the bank's figures of the same month are untouched; settled lines are kept apart
    assert (row.paid_fen, row.returned_fen, row.approved_fen) == (0, 0, 0)


def test_a_receipt_before_its_remittance_and_finance_by_the_remittances_period(feed):
    feed(receipt("tx1", "r1", PEN, None, 40000, date(2024, 2, 6)))
    row = feed.get(LedgerRemittance, "r1")
    assert (row.amount_fen, row.received_fen, row.month, row.last_receipt_on) == (None, 40000, 202402, date(2024, 2, 6))
    feed(remitted("r1", PEN, 202401, 100000, date(2024, 1, 31)))
    row = feed.get(LedgerRemittance, "r1")
    assert (row.amount_fen, row.month, row.period, row.deadline) == (100000, 202401, 202401, date(2024, 2, 19))
    feed(receipt("tx2", "r1", PEN, 202401, 60000, date(2024, 2, 2)))
    row = feed.get(LedgerRemittance, "r1")
    assert (row.received_fen, row.receipts, row.first_receipt_on, row.last_receipt_on) == \
        (100000, 2, date(2024, 2, 2), date(2024, 2, 6))
    # the first receipt named no period and came before the remittance: its value-date month; the second the period
    assert feed.get(LedgerFundPeriod, 202402, PEN).finance_fen == 40000
    assert feed.get(LedgerFundPeriod, 202401, PEN).finance_fen == 60000


def test_cross_fund_and_flagged_movements_are_kept_for_r6(feed):
    feed(transaction("x1", account="special-PEN", kind="special", fund=PEN, direction="out", amount=500,
                     counterparty="expenditure", purpose="allocation", on=date(2024, 1, 9), counterparty_fund=MED,
                     status="flagged", violation="U7（000 二(一)…）不同险种基金之间不得划转资金"),
         transaction("x2", account="income-PEN", kind="income", fund=PEN, direction="out", amount=700,
                     counterparty="other", purpose="payment", on=date(2024, 1, 10), status="flagged",
                     violation="U1（000 二(四)1…）收入户只能向本险种财政专户划转资金", source="bank_statement"),
         transaction("x3", account="income-PEN", kind="income", fund=PEN, direction="out", amount=900,
                     counterparty="special", purpose="transfer", on=date(2024, 1, 11), counterparty_fund=PEN))
    assert feed.count(LedgerFlaggedTransaction) == 2
    assert feed.get(LedgerFlaggedTransaction, "x1").cross_fund is True
    assert feed.get(LedgerFlaggedTransaction, "x2").cross_fund is False


# -- a running oversight on a real nats-server -----------------------------------------------------------------------


def month_events() -> list[EventPayload]:
    """A small month with a case of every status."""
    return [
        registered("income-PEN", "income", PEN), registered("special-PEN", "special", PEN),
        assessment("a1", "e1", 202401, (PEN, 16000, 8000), (MED, 8000, 2000)),
        assessment("a2", "e2", 202401, (PEN, 3200, 1600)),
        collected((PEN, 202401, "e1", 16000, 8000, 120), (MED, 202401, "e1", 8000, 2000, 0),
                  (PEN, 202401, "e2", 3200, 1600, 0)),
        posted((PEN, 202401, "e1", 16000, 8000), (MED, 202401, "e1", 8000, 2000)),  # e2's line held
        remitted("r1", PEN, 202401, 28920, date(2024, 1, 30)),  # R3 belongs to the month remitted
        receipt("t1", "r1", PEN, 202401, 28920, date(2024, 2, 5)),
        remitted("r2", MED, 202401, 10000, date(2024, 1, 30)),  # never received: late
        transaction("t2", account="income-PEN", kind="income", fund=PEN, direction="in", amount=5000,
                    counterparty="payer", purpose="receipt", on=date(2024, 1, 15)),
        # 9 000.00 approved = 3 000.00 paid (3 500.00 less 500.00 offset) + 2 500.00 returned + 1 500.00 held back
        # + 1 500.00 offset in full
        approved("run1", PEN, 202401, 900000, 4),
        allocation("t3", PEN, 900000, date(2024, 1, 25)),
        retained("run1", PEN, 202401, held=(("l3", 150000, "HELD_SUSPENDED"),),
                 offsets=(("l1", 350000, 50000), ("l4", 150000, 150000))),
        settled("f1", "run1", PEN, 202401, ("l1", 300000, "paid"), ("l2", 250000, "failed")),
        col.PaymentsRejected(batch_id="b9", lines=[col.RejectedLine(  # ignored by the ledger
            tax_line_id="z", line_no=1, code="REFUSED_PAYMENT_METHOD", message="现金", method="cash")]),
        ben.SurvivalCertified(person_id="person1", channel="face", certified_on=date(2024, 1, 3)),  # ignored
    ]


def statuses(body: dict) -> dict[str, list[tuple]]:
    return {c["check"]: sorted((tuple(cell["key"].values()), cell["status"]) for cell in c["cells"])
            for c in body["checks"]}


async def test_events_on_the_bus_reach_the_cells_and_a_rebuild_gives_the_same_figures(start_service, auth):
    officer = auth("oversight_officer", subject="officer.wang")
    async with start_service("oversight") as oversight:
        assert {"COLLECTION", "ACCOUNTS", "BENEFITS", "EXCHANGE"} <= set(oversight.app.state.consumers)
        sent = await publish(oversight, *month_events())
        # the same event published again (JetStream's duplicate window drops it) counts once
        bus = oversight.app.state.bus
        await bus.js.publish(sent[4].type, sent[4].to_bytes(), headers={"Nats-Msg-Id": sent[4].id})

        expected = {
            "R1": [((MED, 202401), "missing_finance"), ((PEN, 202401), "mismatch")],
            "R2": [(("e1", MED, 202401), "matched"), (("e1", PEN, 202401), "matched"),
                   (("e2", PEN, 202401), "missing_agency")],
            "R3": [(("r1",), "matched"), (("r2",), "late")],
            "R4": [(("income-PEN", 202401), "mismatch")],
            "R5": [((PEN, 202401), "matched")],
            "R6": [((PEN, 202401), "matched")],
        }

        async def report() -> dict | None:
            r = await oversight.get("/reconciliation/months/202401", headers=officer,
                                    params={"as_of": "2024-03-01", "include_matched": True})
            return r.json() if statuses(r.json()) == expected else None

        before = await wait_for(report, timeout=30)
        r1 = {c["key"]["fund"]: c for c in before["checks"][0]["cells"]}
        assert r1[PEN]["amounts"] == {"tax": "289.20", "finance": "289.20", "agency": "240.00",
                                      "tax_principal": "288.00", "tax_late_fee": "1.20"}
        assert r1[PEN]["differences"] == {"finance_minus_tax": "0.00", "agency_minus_tax_principal": "-48.00"}
        [r5] = next(c for c in before["checks"] if c["check"] == "R5")["cells"]
        assert r5["amounts"] == {"approved": "9000.00", "allocated": "9000.00", "accounted": "9000.00",
                                 "bank": "5500.00", "paid": "3000.00", "returned": "2500.00", "held_back": "1500.00",
                                 "offset": "2000.00"}
        assert r5["differences"] == {"allocated_minus_approved": "0.00", "accounted_minus_approved": "0.00"}
        assert (await oversight.get("/admin/dead-letters", headers=auth("it_admin"))).json() == []

        result = await rebuild_ledger(oversight.app)
        assert result.streams["COLLECTION"].applied == 10 and result.streams["COLLECTION"].not_applied == 0
        assert result.streams["ACCOUNTS"].applied == 1 and result.streams["BENEFITS"].applied == 3
        after = (await oversight.get("/reconciliation/months/202401", headers=officer,
                                     params={"as_of": "2024-03-01", "include_matched": True})).json()
        assert {k: v for k, v in after.items() if k != "generated_at"} == \
            {k: v for k, v in before.items() if k != "generated_at"}

        # the consumers run again after the rebuild: a late posting of e2's line lands in its cell
        await publish(oversight, posted((PEN, 202401, "e2", 3200, 1600), prefix="late"))

        async def e2_matched() -> bool:
            body = (await oversight.get("/reconciliation/months/202401", headers=officer,
                                        params={"as_of": "2024-03-01"})).json()
            return not [c for c in body["checks"][1]["cells"] if c["key"]["employer_id"] == "e2"]

        await wait_for(e2_matched, timeout=30)


async def test_a_rebuild_leaves_events_not_yet_consumed_to_the_live_consumer(start_service):
    """Events the live consumer has not applied yet (here: published while it is paused) are not replayed; the
    consumer applies them once it resumes, so nothing is counted twice."""
    async with start_service("oversight") as oversight:
        await publish(oversight, collected((PEN, 202401, "e1", 100, 0, 0)))

        async def applied() -> bool:
            with Session(oversight.app.state.engine) as session:
                row = session.get(LedgerFundPeriod, (202401, PEN))
                return row is not None and row.tax_principal_fen == 100

        await wait_for(applied, timeout=30)
        consumer = oversight.app.state.consumers["COLLECTION"]
        await consumer.stop()
        await publish(oversight, collected((PEN, 202401, "e1", 10, 0, 0), prefix="n"))
        await asyncio.sleep(0.3)
        result = await rebuild_ledger(oversight.app)
        assert (result.streams["COLLECTION"].applied, result.streams["COLLECTION"].not_applied) == (1, 1)
        with Session(oversight.app.state.engine) as session:
            assert session.get(LedgerFundPeriod, (202401, PEN)).tax_principal_fen == 100

        async def both() -> bool:
            with Session(oversight.app.state.engine) as session:
                return session.get(LedgerFundPeriod, (202401, PEN)).tax_principal_fen == 110

        await wait_for(both, timeout=30)


def test_the_ledger_consumers_cover_their_streams():
    merged = {spec.stream: spec for spec in merge_consumer_specs(SPEC.consumers)}
    for event_type in LEDGER_HANDLERS:
        stream = {"collection": "COLLECTION", "accounts": "ACCOUNTS", "benefits": "BENEFITS"}[event_type.split(".")[0]]
        assert event_type in merged[stream].handlers


def test_month_report_reads_cells_not_lines(feed, engine):
    """10 000 collected lines in 10 events make 2 R1 cells and 10 R2 cells; the report reads those."""
    for batch in range(10):
        feed(collected(*[(PEN if i % 2 else MED, 202401, f"e{i % 10}", 100, 50, 0) for i in range(1000)],
                       batch=f"b{batch}", prefix=f"b{batch}-"))
    with Session(engine) as session:
        body = report_json(service.month_report(session, 202401, as_of=date(2024, 3, 1)), include_matched=True)
    r1 = body["checks"][0]
    assert r1["summary"]["cells"] == 2 and r1["cells"][0]["amounts"]["tax"] == "7500.00"
    assert body["checks"][1]["summary"] == {"cells": 10, "matched": 0, "mismatch": 0, "missing_tax": 0,
                                            "missing_finance": 0, "missing_agency": 10, "late": 0}



def test_r1_and_r2_read_the_agency_leg_from_its_own_rows(feed, engine):
    """The AGENCY leg of an R1 or R2 cell is a row of its own (the ACCOUNTS consumer never waits for COLLECTION's
    row lock): a posting that arrives before the collected batch still makes the cells, and the rows read as one."""
    feed(posted((PEN, 202401, "e1", 100, 50)))
    with Session(engine) as session:
        (r1,), (r2,) = r1_cells(session, 202401), r2_cells(session, 202401)
    assert (r1.status, r1.amounts["agency"], r1.amounts["tax"], r1.detail["agency_lines"]) == ("missing_tax", 150, 0, 1)
    assert (r2.key, r2.status, r2.amounts) == ({"employer_id": "e1", "fund": PEN, "period": 202401}, "missing_tax",
                                               {"assessed": 0, "tax": 0, "agency": 150, "tax_late_fee": 0, "arrears": 0})
    assert feed.count(LedgerFundPeriod) == feed.count(LedgerEmployerPeriod) == 0
    feed(collected((PEN, 202401, "e1", 100, 50, 0)))
    with Session(engine) as session:
        (r1,), (r2,) = r1_cells(session, 202401), r2_cells(session, 202401)
    assert (r1.amounts["agency"], r1.amounts["tax_principal"], r1.detail) == (
        150, 150, {"tax_lines": 1, "agency_lines": 1, "finance_receipts": 0})
    assert (r2.status, r2.amounts["tax"], r2.amounts["agency"]) == ("matched", 150, 150)


AT = {"at": "2026-01-01 00:00:00"}


def test_the_migrations_move_the_agency_leg_and_back(database_urls):
    """Revisions 977a03bb30fa and dfd92455c37c copy the AGENCY figures of ``ledger_fund_period`` and
    ``ledger_employer_period`` into their own rows and drop the columns; the downgrades put them back (a cell known
    only to the AGENCY leg gets a row)."""
    engine = make_engine(database_urls["oversight"])
    config = alembic_config(engine, "oversight", models.metadata)
    try:
        command.upgrade(config, "oversight@449be005fb97")
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO ledger_fund_period (period, fund, tax_principal_fen, agency_fen, agency_lines, updated_at)"
                " VALUES (202401, 'PEN_EMP', 100, 90, 3, :at), (202401, 'UNEMP', 50, 0, 0, :at)"), AT)
            connection.execute(text(
                "INSERT INTO ledger_employer_period (period, fund, employer_key, tax_principal_fen, agency_fen, "
                "updated_at) VALUES (202401, 'PEN_EMP', 'e1', 100, 90, :at), (202401, 'UNEMP', 'e1', 50, 0, :at)"), AT)
        command.upgrade(config, "heads")
        with engine.begin() as connection:
            assert connection.execute(text(
                "SELECT period, fund, agency_fen, agency_lines FROM ledger_fund_period_agency")).all() == [
                (202401, "PEN_EMP", 90, 3)]
            assert connection.execute(text(
                "SELECT period, fund, employer_key, agency_fen FROM ledger_employer_period_agency")).all() == [
                (202401, "PEN_EMP", "e1", 90)]
            connection.execute(text("INSERT INTO ledger_fund_period_agency (period, fund, agency_fen, agency_lines, "
                                    "updated_at) VALUES (202402, 'PEN_EMP', 7, 1, :at)"), AT)
            connection.execute(text("INSERT INTO ledger_employer_period_agency (period, fund, employer_key, "
                                    "agency_fen, updated_at) VALUES (202402, 'PEN_EMP', '', 7, :at)"), AT)
        command.downgrade(config, "oversight@449be005fb97")
        with engine.connect() as connection:
            assert connection.execute(text(
                "SELECT period, fund, tax_principal_fen, agency_fen, agency_lines FROM ledger_fund_period "
                "ORDER BY period, fund")).all() == [
                (202401, "PEN_EMP", 100, 90, 3), (202401, "UNEMP", 50, 0, 0), (202402, "PEN_EMP", 0, 7, 1)]
            assert connection.execute(text(
                "SELECT period, fund, employer_key, tax_principal_fen, agency_fen FROM ledger_employer_period "
                "ORDER BY period, fund")).all() == [
                (202401, "PEN_EMP", "e1", 100, 90), (202401, "UNEMP", "e1", 50, 0), (202402, "PEN_EMP", "", 0, 7)]
    finally:
        engine.dispose()
