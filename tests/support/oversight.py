"""Oversight factories: events fed to the ledger and the mirror, approved budgets, registered employers,
whistleblowing callers."""

from datetime import date

import httpx
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from services.contracts import accounts as acc
from services.contracts import benefits as ben
from services.contracts import collection as col
from services.kernel import clock
from services.kernel.db import make_engine
from services.kernel.events import EventActor, EventEnvelope, EventPayload, build_envelope
from services.kernel.migrations import upgrade_database
from services.oversight import models
from services.oversight.ledger.handlers import LEDGER_HANDLERS
from services.oversight.whistleblowing.ratelimit import TokenBucket
from tests.support.apps import bearer
from tests.support.exchange import make_uscc


async def register_employers(accounts: httpx.AsyncClient, settings, serials) -> None:  # noqa: ANN001
    clerk = bearer(settings, "agency_clerk", region="150102", subject="clerk.zhang")
    for serial in serials:
        response = await accounts.post("/employers", headers=clerk, json={
            "uscc": make_uscc(serial), "name": f"呼和浩特市测试{serial}有限公司", "region": "150102"})
        assert response.status_code == 201, response.text


PEN, MED, UNEMP = "PEN_EMP", "INJURY", "UNEMP"  # Fund values (services.contracts.codes); MED names the second fund


def collected(*lines: tuple, batch: str = "b1", part: int = 1, parts: int = 1, paid: date = date(2024, 1, 20),
              prefix: str = "p") -> col.PaymentsCollected:
    """``lines``: (fund, period, employer_id, employer_fen, individual_fen, late_fee_fen)."""
    return col.PaymentsCollected(batch_id=batch, part=part, parts=parts, lines=[
        col.CollectedLine(payment_id=f"{prefix}{i}", tax_line_id=f"t-{prefix}{i}", payer_uscc=None,
                          employer_id=employer, person_id=f"person{i}", citizen_id=None, fund=fund, period=period,
                          employer_fen=er, individual_fen=ind, late_fee_fen=fee, method="bank_transfer",
                          voucher_no=f"v{prefix}{i}", paid_date=paid, assessment_line_id=None,
                          match_status="matched")
        for i, (fund, period, employer, er, ind, fee) in enumerate(lines)])


def posted(*lines: tuple, batch: str = "b1", prefix: str = "p") -> acc.ContributionsPosted:
    """``lines``: (fund, period, employer_id, employer_fen, individual_fen)."""
    return acc.ContributionsPosted(source_batch_id=batch, lines=[
        acc.PostedLine(payment_id=f"{prefix}{i}", person_id=f"person{i}", employer_id=employer, fund=fund,
                       period=period, employer_fen=er, individual_fen=ind, credited_fen=0, entry_id=None)
        for i, (fund, period, employer, er, ind) in enumerate(lines)])


def assessment(assessment_id: str, employer: str | None, period: int, *lines: tuple, part: int = 1, parts: int = 1,
               supersedes: str | None = None) -> col.AssessmentIssued:
    """``lines``: (fund, employer_fen, individual_fen)."""
    return col.AssessmentIssued(
        assessment_id=assessment_id, employer_id=employer, period=period, due_date=date(2024, 2, 15),
        supersedes_id=supersedes, part=part, parts=parts, employer_total_fen=0, individual_total_fen=0,
        lines=[col.AssessedLine(line_id=f"{assessment_id}-{part}-{i}", person_id=f"person{i}", fund=fund,
                                declared_base_fen=500000, base_fen=500000, clamp=None, employer_fen=er,
                                individual_fen=ind) for i, (fund, er, ind) in enumerate(lines)])


def superseded(assessment_id: str, by: str, employer: str | None, period: int) -> col.AssessmentSuperseded:
    return col.AssessmentSuperseded(assessment_id=assessment_id, superseded_by_id=by, employer_id=employer,
                                    period=period, reason="更正")


def remitted(remittance_id: str, fund: str, period: int, amount: int, on: date) -> col.TreasuryRemitted:
    return col.TreasuryRemitted(remittance_id=remittance_id, fund=fund, period=period, amount_fen=amount,
                                remitted_on=on, voucher_no=f"GK-{remittance_id}")


def transaction(transaction_id: str, *, account: str, kind: str, fund: str, direction: str, amount: int,
                counterparty: str, purpose: str, on: date, counterparty_fund: str | None = None,
                remittance_id: str | None = None, period: int | None = None, status: str = "accepted",
                violation: str | None = None, source: str = "manual") -> col.BankTransactionRecorded:
    return col.BankTransactionRecorded(
        transaction_id=transaction_id, account_id=account, account_kind=kind, fund=fund, direction=direction,
        amount_fen=amount, counterparty=counterparty, counterparty_fund=counterparty_fund, purpose=purpose,
        remittance_id=remittance_id, period=period, value_date=on, source=source, status=status,
        violation=violation)


def receipt(transaction_id: str, remittance_id: str, fund: str, period: int | None, amount: int,
            on: date) -> col.BankTransactionRecorded:
    return transaction(transaction_id, account=f"special-{fund}", kind="special", fund=fund, direction="in",
                       amount=amount, counterparty="treasury", purpose="receipt", on=on, counterparty_fund=fund,
                       remittance_id=remittance_id, period=period)


def allocation(transaction_id: str, fund: str, amount: int, on: date) -> col.BankTransactionRecorded:
    return transaction(transaction_id, account=f"expenditure-{fund}", kind="expenditure", fund=fund, direction="in",
                       amount=amount, counterparty="special", purpose="allocation", on=on, counterparty_fund=fund)


def registered(account_id: str, kind: str, fund: str, opened_on: date = date(2020, 1, 1)) -> col.BankAccountRegistered:
    return col.BankAccountRegistered(account_id=account_id, kind=kind, fund=fund, bank_name="工商银行",
                                     opened_on=opened_on, annual_inspection_due=date(2025, 1, 1))


def approved(run_id: str, fund: str, period: int, total: int, lines: int = 1) -> ben.PayrollApproved:
    return ben.PayrollApproved(run_id=run_id, fund=fund, period=period, lines=lines, total_fen=total,
                               approved_by="approver.li")


def settled(file_id: str, run_id: str, fund: str, period: int, *lines: tuple) -> ben.PaymentsSettled:
    """``lines``: (payroll_line_id, amount_fen, result)."""
    return ben.PaymentsSettled(file_id=file_id, run_id=run_id, fund=fund, period=period, part=1, parts=1, lines=[
        ben.SettledPayment(payroll_line_id=line_id, person_id=f"person-{line_id}", amount_fen=amount, period=period,
                           result=result, reason="账户已销户" if result == "failed" else None)
        for line_id, amount, result in lines])


def retained(run_id: str, fund: str, period: int, *, held: tuple = (), offsets: tuple = (), file_id: str | None = "f1",
             part: int = 1, parts: int = 1) -> ben.PayrollLinesRetained:
    """``held``: (payroll_line_id, amount_fen, reason); ``offsets``: (payroll_line_id, amount_fen, offset_fen)."""
    return ben.PayrollLinesRetained(
        run_id=run_id, fund=fund, period=period, file_id=file_id, part=part, parts=parts,
        held_back_lines=len(held), held_back_fen=sum(a for _, a, _ in held), offset_lines=len(offsets),
        offset_fen=sum(o for _, _, o in offsets),
        held_back=[ben.HeldBackLine(payroll_line_id=line_id, person_id=f"person-{line_id}", amount_fen=amount,
                                    reason=reason) for line_id, amount, reason in held],
        offsets=[ben.OffsetLine(payroll_line_id=line_id, person_id=f"person-{line_id}", amount_fen=amount,
                                offset_fen=offset, fully_offset=offset == amount)
                 for line_id, amount, offset in offsets])


def envelope_of(payload: EventPayload) -> EventEnvelope:
    source = payload.event_type.split(".", 1)[0]
    return build_envelope(payload, source=source, subject="x", actor=EventActor(id="test", role="system"),
                          correlation_id=None, causation_id=None)


@pytest.fixture
def engine(database_urls):
    engine = make_engine(database_urls["oversight"])
    upgrade_database(engine, "oversight", models.metadata)
    yield engine
    engine.dispose()


class Feed:
    """Applies payloads through the ledger's handlers as the consumer would, each in its own transaction."""

    def __init__(self, engine):  # noqa: ANN001
        self.engine = engine

    def __call__(self, *payloads: EventPayload) -> None:
        for payload in payloads:
            envelope = envelope_of(payload)
            with Session(self.engine) as session:
                LEDGER_HANDLERS[envelope.type](session, envelope)
                session.commit()

    def get(self, model, *key):  # noqa: ANN001, ANN201
        with Session(self.engine) as session:
            return session.get(model, key if len(key) > 1 else key[0])

    def count(self, model) -> int:  # noqa: ANN001
        with Session(self.engine) as session:
            return session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.fixture
def feed(engine) -> Feed:  # noqa: ANN001
    return Feed(engine)


async def publish(client, *payloads: EventPayload) -> list[EventEnvelope]:  # noqa: ANN001
    bus = client.app.state.bus
    assert await bus.wait_ready(timeout=10)
    sent = []
    for payload in payloads:
        envelope = envelope_of(payload)
        await bus.js.publish(envelope.type, envelope.to_bytes(), headers={"Nats-Msg-Id": envelope.id})
        sent.append(envelope)
    return sent


YEAR = 2024


TODAY = clock.china_today().isoformat()


@pytest.fixture
def people(auth):
    return {
        "drafter": auth("accountant", subject="acc.zhang"),
        "agency": auth("agency_approver", subject="agency.qian"),
        "reviewer": auth("finance_officer", subject="fin.li"),
        "approver": auth("finance_officer", subject="fin.wang"),
        "officer": auth("oversight_officer", subject="officer.sun"),
        "auditor": auth("internal_auditor", subject="auditor.zhao"),
        "clerk": auth("agency_clerk", subject="clerk.zhou"),
    }


LINES = {"contributions": "1200000.00", "fiscal_subsidy": "300000.00", "interest": "12345.67",
         "benefits": "1200000.00", "non_benefit": "1000.00", "transfer_out": "50000.00"}


async def call(client, method: str, path: str, headers: dict, body: dict | None = None,  # noqa: ANN001
               expected: int = 200) -> dict:
    r = await client.request(method, path, headers=headers, json=body)
    assert r.status_code == expected, r.text
    return r.json()


async def approved_budget(client, people: dict, fund: str = PEN, year: int = YEAR,  # noqa: ANN001
                          lines: dict | None = None) -> dict:
    await call(client, "POST", "/budget", people["drafter"], {"fund": fund, "year": year, "lines": lines or LINES},
               expected=201)
    base = f"/budget/{fund}/{year}"
    await call(client, "POST", f"{base}/submit", people["drafter"])
    await call(client, "POST", f"{base}/review", people["reviewer"], {"note": "复审通过"})
    return await call(client, "POST", f"{base}/approve", people["approver"],
                      {"approval_ref": f"人大批准〔{year}〕1号", "approved_on": TODAY})


def anonymous(**overrides) -> dict:
    body = {"anonymous": True, "subject_name": "某街道社保所", "category": "collection", "title": "少缴社保费",
            "content": "单位按最低基数申报缴费。"}
    body.update(overrides)
    return body


def unlimited(client) -> None:  # noqa: ANN001
    """These tests file many reports from one address; the per-IP limit has its own test."""
    client.app.state.whistleblowing_intake_limiter = TokenBucket(burst=1000, per_hour=1000)
