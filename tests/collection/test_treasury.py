"""Fund bank accounts and the FINANCE leg: the account registry, treasury remittances and their receipt
within 10 Chinese working days (000 二(二)), allocations, interest, the usage rules of 000 二(四)1 on every movement
(refused by hand, flagged from a bank statement), the income account's month-end zero, idempotency and roles."""

import asyncio
from datetime import date, timedelta

import chinese_calendar
import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from services.collection.models import BankTransaction, FundBankAccount
from services.collection.treasury import rules, workdays
from services.kernel import clock
from services.kernel.citations import is_canonical
from services.kernel import workdays as kernel_workdays
from services.kernel.clock import china_today
from services.kernel.models import AuditEntry
from services.kernel.periods import period_of
from services.kernel.settings import Settings
from tests.support.registry import engine_of, error_code, outbox
from tests.support.collection import account_no

OPENED = "2020-01-06"


# -- helpers ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def finance(auth):  # noqa: ANN001, ANN201
    return auth("finance_officer", subject="fin.li")


@pytest.fixture
def accountant(auth):  # noqa: ANN001, ANN201
    return auth("accountant", subject="acct.wang")


def keyed(headers: dict, key: str | None) -> dict:
    return {**headers, "Idempotency-Key": key} if key is not None else headers


async def register(client, headers, kind: str, fund: str, expect: int = 201, **extra) -> dict:  # noqa: ANN001
    body = {"kind": kind, "fund": fund, "bank_name": "中国工商银行呼和浩特分行", "account_no": account_no(kind, fund),
            "opened_on": OPENED, "opening_approval_ref": f"内财社〔2020〕{len(fund)}号",
            "annual_inspection_due": "2027-03-31", **extra}
    response = await client.post("/treasury/accounts", headers=headers, json=body)
    assert response.status_code == expect, response.text
    return response.json()


async def setup_accounts(client, finance, accountant, funds=("PEN_RES", "UNEMP")) -> dict:  # noqa: ANN001
    """special, income and expenditure accounts for each fund: {(kind, fund): account}."""
    found = {}
    for fund in funds:
        found[("special", fund)] = (await register(client, finance, "special", fund))["account"]
        for kind in ("income", "expenditure"):
            found[(kind, fund)] = (await register(client, accountant, kind, fund))["account"]
    return found


async def remit(client, headers, voucher: str, amount: str, remitted_on: str, fund: str = "PEN_RES",  # noqa: ANN001
                period: int = 202609, expect: int = 201) -> dict:
    response = await client.post("/treasury/remittances", headers=headers, json={
        "fund": fund, "period": period, "amount": amount, "remitted_on": remitted_on, "voucher_no": voucher})
    assert response.status_code == expect, response.text
    return response.json()


async def receive(client, headers, remittance_id: str, amount: str, value_date: str, key: str,  # noqa: ANN001
                  expect: int = 201):
    response = await client.post("/treasury/receipts", headers=keyed(headers, key), json={
        "remittance_id": remittance_id, "amount": amount, "value_date": value_date})
    assert response.status_code == expect, response.text
    return response


async def move(client, headers, account: dict, direction: str, amount: str,  # noqa: ANN001
               counterparty: str, purpose: str, key: str | None, value_date: str = "2026-10-12",
               counterparty_account: dict | None = None, reference: str | None = None, expect: int = 201):
    body = {"account_id": account["id"], "direction": direction, "amount": amount, "counterparty": counterparty,
            "purpose": purpose, "value_date": value_date, "reference": reference}
    if counterparty_account is not None:
        body["counterparty_account_id"] = counterparty_account["id"]
    response = await client.post("/treasury/transactions", headers=keyed(headers, key), json=body)
    assert response.status_code == expect, response.text
    return response


async def allocate(client, headers, fund: str, amount: str, key: str, expect: int = 201,  # noqa: ANN001
                   value_date: str = "2026-10-15"):
    response = await client.post("/treasury/allocations", headers=keyed(headers, key), json={
        "fund": fund, "amount": amount, "payroll_reference": f"payroll-{fund}-202610", "value_date": value_date})
    assert response.status_code == expect, response.text
    return response


async def statement(client, headers, account: dict, lines: list[dict], expect: int = 201):  # noqa: ANN001
    response = await client.post("/treasury/bank-statements", headers=headers,
                                 json={"account_id": account["id"], "statement_ref": "stmt-1", "lines": lines})
    assert response.status_code == expect, response.text
    return response


async def balance(client, headers, account: dict) -> str:  # noqa: ANN001
    return (await client.get(f"/treasury/accounts/{account['id']}", headers=headers)).json()["balance"]


def transaction_count(client) -> int:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        return session.execute(select(func.count()).select_from(BankTransaction)).scalar_one()


def cached_balances_hold(client) -> None:  # noqa: ANN001
    """Every account's cached balance equals the sum of its movements."""
    with Session(engine_of(client)) as session:
        for account in session.execute(select(FundBankAccount)).scalars():
            rows = session.execute(select(BankTransaction).where(BankTransaction.account_id == account.id)).scalars()
            assert account.balance_fen == sum(r.amount_fen if r.direction == "in" else -r.amount_fen for r in rows)


def nth_working_day_after(day: date, n: int) -> date:
    while n:
        day += timedelta(days=1)
        n -= chinese_calendar.is_workday(day)
    return day


# -- the registry ----------------------------------------------------------------------------------------------------


async def test_accounts_are_registered_once_per_kind_and_fund_with_an_event(start_service, finance, accountant):
    async with start_service("collection") as client:
        special = await register(client, finance, "special", "PEN_EMP")
        assert (special["replayed"], special["account"]["status"], special["account"]["balance"],
                special["account"]["created_by"]) == (False, "open", "0.00", "fin.li")
        # the same registration again returns the original; another account for the same kind and fund is refused
        again = await register(client, finance, "special", "PEN_EMP", expect=200)
        assert again["account"]["id"] == special["account"]["id"] and again["replayed"] is True
        other = await client.post("/treasury/accounts", headers=finance, json={
            "kind": "special", "fund": "PEN_EMP", "bank_name": "中国银行", "account_no": "99990000111122",
            "opened_on": OPENED, "opening_approval_ref": "财社〔2020〕9号", "annual_inspection_due": "2027-03-31"})
        assert other.status_code == 409 and error_code(other) == "ACCOUNT_EXISTS"
        taken = await client.post("/treasury/accounts", headers=accountant, json={
            "kind": "income", "fund": "UNEMP", "bank_name": "中国银行", "account_no": account_no("special", "PEN_EMP"),
            "opened_on": OPENED, "opening_approval_ref": "x", "annual_inspection_due": "2027-03-31"})
        assert taken.status_code == 409 and error_code(taken) == "ACCOUNT_NO_TAKEN"
        bad = await client.post("/treasury/accounts", headers=accountant, json={
            "kind": "income", "fund": "MEDICAL", "bank_name": "b", "account_no": "12AB", "opened_on": OPENED,
            "opening_approval_ref": "x", "annual_inspection_due": "2019-01-01"})
        assert bad.status_code == 422
        events = outbox(client, "collection.bank_account.registered.v1")
        assert [(e["kind"], e["fund"], e["_actor"]["role"]) for e in events] == [
            ("special", "PEN_EMP", "finance_officer")]


async def test_overdue_annual_inspections_are_listed_and_cleared_by_an_inspection(start_service, finance, accountant,
                                                                                 auth):
    async with start_service("collection") as client:
        overdue = (await register(client, accountant, "income", "PEN_RES",
                                  annual_inspection_due="2026-03-31"))["account"]
        await register(client, accountant, "expenditure", "PEN_RES", annual_inspection_due="2099-03-31")
        assert overdue["inspection_overdue"] is True
        auditor = auth("internal_auditor")
        listed = (await client.get("/treasury/accounts", params={"overdue": "true"}, headers=auditor)).json()
        assert [a["id"] for a in listed] == [overdue["id"]]
        assert len((await client.get("/treasury/accounts", params={"overdue": "false"}, headers=auditor)).json()) == 1
        inspected_on = clock.china_today() - timedelta(days=30)  # a year ahead of an inspection a month ago
        inspected = await client.post(f"/treasury/accounts/{overdue['id']}/annual-inspections", headers=accountant,
                                      json={"inspected_on": inspected_on.isoformat(),
                                            "next_due": (inspected_on + timedelta(days=365)).isoformat(),
                                            "reference": "年检 2026-17"})
        assert inspected.status_code == 200, inspected.text
        assert inspected.json()["inspection_overdue"] is False
        assert (await client.get("/treasury/accounts", params={"overdue": "true"}, headers=auditor)).json() == []


async def test_an_account_closes_only_empty_and_then_takes_no_movements(start_service, finance, accountant):
    async with start_service("collection") as client:
        accounts = await setup_accounts(client, finance, accountant, funds=("PEN_RES",))
        income = accounts[("income", "PEN_RES")]
        await move(client, accountant, income, "in", "10.00", "payer", "receipt", "c-1")
        refused = await client.post(f"/treasury/accounts/{income['id']}/close", headers=accountant,
                                    json={"reason": "撤并"})
        assert refused.status_code == 409 and error_code(refused) == "ACCOUNT_NOT_EMPTY"
        await move(client, accountant, income, "out", "10.00", "special", "transfer", "t-1",
                   counterparty_account=accounts[("special", "PEN_RES")])
        closed = await client.post(f"/treasury/accounts/{income['id']}/close", headers=accountant,
                                   json={"reason": "撤并", "approval_ref": "备案 2026-3"})
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        late = await move(client, accountant, income, "in", "1.00", "payer", "receipt", "c-2", expect=409)
        assert error_code(late) == "ACCOUNT_CLOSED"
        # the bank says it happened anyway: recorded, flagged
        flagged = (await statement(client, accountant, income, [
            {"bank_line_id": "L1", "value_date": "2026-11-03", "direction": "in", "amount": "1.00",
             "counterparty": "payer", "purpose": "receipt"}])).json()
        assert flagged["flagged"] == 1 and "已销户" in flagged["transactions"][0]["violation"]


# -- remittances and receipts ----------------------------------------------------------------------------------------


@pytest.mark.unit
def test_the_treasury_deadline_counts_chinese_working_days():
    deadline = workdays.treasury_deadline(date(2026, 9, 30)).day
    assert deadline == nth_working_day_after(date(2026, 9, 30), 10)
    # National Day (1–7 October 2026) is off and a make-up Saturday counts: mid-October, not a plain weekday count
    assert date(2026, 10, 14) < deadline <= date(2026, 10, 20)
    unknown = workdays.treasury_deadline(date(2099, 12, 28))
    assert unknown.day is None and "2099" in unknown.note


async def test_a_receipt_after_ten_working_days_is_recorded_and_marked_late(start_service, finance, accountant):
    async with start_service("collection") as client:
        await setup_accounts(client, finance, accountant, funds=("PEN_RES",))
        remittance = (await remit(client, finance, "V-0930", "3000.00", "2026-09-30"))["remittance"]
        deadline = nth_working_day_after(date(2026, 9, 30), 10)
        assert remittance["deadline"] == deadline.isoformat() and remittance["status"] == "overdue"
        on_time = (await receive(client, finance, remittance["id"], "1000.00", deadline.isoformat(), "r-1")).json()
        assert (on_time["transaction"]["late"], on_time["transaction"]["deadline"],
                on_time["transaction"]["period"]) == (False, deadline.isoformat(), 202609)
        next_day = nth_working_day_after(deadline, 1)
        late = (await receive(client, finance, remittance["id"], "2000.00", next_day.isoformat(), "r-2")).json()
        assert late["transaction"]["late"] is True and late["transaction"]["status"] == "accepted"
        assert late["balance"] == "3000.00"
        state = (await client.get(f"/treasury/remittances/{remittance['id']}", headers=finance)).json()
        assert (state["received"], state["unreceived"], state["status"]) == ("3000.00", "0.00", "received")
        events = outbox(client, "collection.bank_transaction.recorded.v1")
        assert [(e["counterparty"], e["purpose"], e["remittance_id"], e["period"], e["amount_fen"]) for e in events] \
            == [("treasury", "receipt", remittance["id"], 202609, 100000), ("treasury", "receipt", remittance["id"],
                                                                            202609, 200000)]
        assert outbox(client, "collection.treasury.remitted.v1")[0]["voucher_no"] == "V-0930"


async def test_the_remittance_record_shows_its_deadline_and_how_late_it_was(start_service, finance, accountant):
    """A receipt in full on the 12th working day is ``received`` and late: the finance officer's own record shows the deadline (000 二(二)), whether it was missed and by how
    many working days."""
    remitted_on = date(2026, 9, 30)
    deadline = nth_working_day_after(remitted_on, 10)
    async with start_service("collection") as client:
        await setup_accounts(client, finance, accountant, funds=("PEN_RES",))
        late = (await remit(client, finance, "V-L", "3000.00", remitted_on.isoformat()))["remittance"]
        timely = (await remit(client, finance, "V-T", "500.00", remitted_on.isoformat()))["remittance"]
        waiting = (await remit(client, finance, "V-W", "700.00", remitted_on.isoformat()))["remittance"]
        await receive(client, finance, late["id"], "1000.00", deadline.isoformat(), "l-1")
        await receive(client, finance, late["id"], "2000.00", nth_working_day_after(remitted_on, 12).isoformat(),
                      "l-2")
        await receive(client, finance, timely["id"], "500.00", deadline.isoformat(), "t-1")

        async def record(remittance: dict) -> dict:
            return (await client.get(f"/treasury/remittances/{remittance['id']}", headers=finance)).json()

        state = await record(late)
        assert (state["status"], state["lateness"], state["late"], state["working_days_late"]) == (
            "received", "late", True, 2)
        assert state["deadline"] == deadline.isoformat() and state["deadline_clause"].startswith("000 二(二)")
        assert state["last_receipt_on"] == nth_working_day_after(remitted_on, 12).isoformat()
        on_time = await record(timely)
        assert (on_time["status"], on_time["lateness"], on_time["late"], on_time["working_days_late"]) == (
            "received", "on_time", False, 0)
        # nothing received, the deadline long past: late, counted up to today (unknown once today is in a year the
        # calendar does not hold)
        open_one = await record(waiting)
        so_far = kernel_workdays.working_days_after(deadline, china_today())
        assert (open_one["status"], open_one["lateness"], open_one["late"]) == ("overdue", "late", True)
        assert (open_one["working_days_late"], open_one["lateness_note"]) == (so_far.count, so_far.note)
        listed = (await client.get("/treasury/remittances", headers=finance)).json()
        rows = listed["items"] if isinstance(listed, dict) else listed
        assert {r["voucher_no"]: r["working_days_late"] for r in rows}["V-L"] == 2


@pytest.mark.unit
def test_remittance_lateness_is_unknown_when_the_calendar_does_not_know_the_year(tmp_path):
    kernel_workdays.configure(Settings(workday_calendar_file=None))
    try:
        unknown = workdays.remittance_lateness(date(2031, 3, 3), in_full=True, last_receipt_on=date(2031, 3, 20),
                                               today=date(2031, 4, 1))
        assert (unknown.lateness, unknown.late, unknown.working_days_late, unknown.deadline.day) == (
            "unknown", None, None, None) and "2031" in unknown.note
        not_due = workdays.remittance_lateness(date(2026, 9, 30), in_full=False, last_receipt_on=None,
                                               today=date(2026, 10, 9))
        assert (not_due.lateness, not_due.late, not_due.working_days_late) == ("not_due", False, 0)
        # the deadline is known (2026) but the count reaches a year not covered: late, by an unknown count
        crossing = workdays.remittance_lateness(date(2026, 12, 10), in_full=True, last_receipt_on=date(2031, 1, 6),
                                                today=date(2031, 1, 7))
        assert (crossing.lateness, crossing.late, crossing.working_days_late) == ("late", True, None)
        assert crossing.note and "SIFUND_WORKDAY_CALENDAR_FILE" in crossing.note
    finally:
        kernel_workdays.configure(None)


async def test_a_receipt_above_the_unreceived_amount_is_refused_by_hand_and_flagged_from_a_statement(
        start_service, finance, accountant):
    async with start_service("collection") as client:
        accounts = await setup_accounts(client, finance, accountant, funds=("PEN_RES",))
        remittance = (await remit(client, finance, "V-1", "1000.00", "2026-10-09"))["remittance"]
        await receive(client, finance, remittance["id"], "600.00", "2026-10-12", "r-1")
        over = await receive(client, finance, remittance["id"], "400.01", "2026-10-13", "r-2", expect=409)
        assert error_code(over) == "OVER_RECEIPT" and "400.00" in over.json()["error"]["message"]
        before = await receive(client, finance, remittance["id"], "1.00", "2026-10-08", "r-3", expect=422)
        assert error_code(before) == "RECEIPT_BEFORE_REMITTANCE"
        await receive(client, finance, remittance["id"], "400.00", "2026-10-13", "r-4")
        assert transaction_count(client) == 2
        # a statement line receiving more of it: it happened, so it is kept, flagged
        flagged = (await statement(client, finance, accounts[("special", "PEN_RES")], [
            {"bank_line_id": "S1", "value_date": "2026-10-14", "direction": "in", "amount": "5.00",
             "counterparty": "treasury", "purpose": "receipt", "remittance_voucher_no": "V-1"}])).json()
        line = flagged["transactions"][0]
        assert (line["status"], line["source"], flagged["balance"]) == ("flagged", "bank_statement", "1005.00")
        assert "超过缴款凭证 V-1 未到账金额 0.00 元" in line["violation"]


async def test_concurrent_receipts_cannot_together_exceed_the_remittance(start_service, finance, accountant):
    async with start_service("collection") as client:
        await setup_accounts(client, finance, accountant, funds=("PEN_RES",))
        remittance = (await remit(client, finance, "V-C", "1000.00", "2026-10-09"))["remittance"]

        async def attempt(key: str):  # noqa: ANN202
            return await client.post("/treasury/receipts", headers=keyed(finance, key), json={
                "remittance_id": remittance["id"], "amount": "600.00", "value_date": "2026-10-12"})

        results = await asyncio.gather(*(attempt(f"c-{i}") for i in range(4)))
        assert sorted(r.status_code for r in results) == [201, 409, 409, 409]
        assert {error_code(r) for r in results if r.status_code == 409} == {"OVER_RECEIPT"}
        state = (await client.get(f"/treasury/remittances/{remittance['id']}", headers=finance)).json()
        assert (state["received"], state["unreceived"]) == ("600.00", "400.00")
        cached_balances_hold(client)


async def test_remittance_vouchers_are_unique(start_service, finance):
    async with start_service("collection") as client:
        first = await remit(client, finance, "V-9", "10.00", "2026-10-09")
        again = await remit(client, finance, "V-9", "10.00", "2026-10-09", expect=200)
        assert again["remittance"]["id"] == first["remittance"]["id"] and again["replayed"] is True
        other = await client.post("/treasury/remittances", headers=finance, json={
            "fund": "PEN_RES", "period": 202609, "amount": "10.01", "remitted_on": "2026-10-09", "voucher_no": "V-9"})
        assert other.status_code == 409 and error_code(other) == "VOUCHER_REUSED"
        floaty = await client.post("/treasury/remittances", headers=finance, json={
            "fund": "PEN_RES", "period": 202609, "amount": 10.5, "remitted_on": "2026-10-09", "voucher_no": "V-10"})
        assert floaty.status_code == 422 and error_code(floaty) == "INVALID_AMOUNT"
        assert len(outbox(client, "collection.treasury.remitted.v1")) == 1


# -- allocations, interest and a clean month -------------------------------------------------------------------------


async def test_an_allocation_is_two_legs_in_one_transaction(start_service, finance, accountant):
    async with start_service("collection") as client:
        accounts = await setup_accounts(client, finance, accountant, funds=("PEN_RES", "UNEMP"))
        remittance = (await remit(client, finance, "V-1", "5000.00", "2026-10-09"))["remittance"]
        await receive(client, finance, remittance["id"], "5000.00", "2026-10-12", "r-1")
        body = (await allocate(client, finance, "PEN_RES", "3000.00", "alloc-202610")).json()
        assert (body["special_balance"], body["expenditure_balance"]) == ("2000.00", "3000.00")
        assert (body["out_leg"]["direction"], body["out_leg"]["counterparty"], body["out_leg"]["account_kind"]) == \
            ("out", "expenditure", "special")
        assert (body["in_leg"]["direction"], body["in_leg"]["counterparty"], body["in_leg"]["idempotency_key"]) == \
            ("in", "special", "alloc-202610#in")
        events = outbox(client, "collection.bank_transaction.recorded.v1")[1:]
        assert [(e["account_kind"], e["direction"], e["purpose"], e["amount_fen"]) for e in events] == [
            ("special", "out", "allocation", 300000), ("expenditure", "in", "allocation", 300000)]
        # more than the special account holds: neither leg is recorded
        count = transaction_count(client)
        short = await allocate(client, finance, "PEN_RES", "2000.01", "alloc-2", expect=409)
        assert error_code(short) == "INSUFFICIENT_BALANCE" and transaction_count(client) == count
        assert await balance(client, finance, accounts[("expenditure", "PEN_RES")]) == "3000.00"
        # an allocation is two-legged: not through the one-leg endpoint
        one_leg = await move(client, finance, accounts[("special", "PEN_RES")], "out", "1.00", "expenditure",
                             "allocation", "x-1", counterparty_account=accounts[("expenditure", "PEN_RES")],
                             expect=422)
        assert error_code(one_leg) == "USE_ALLOCATIONS"
        cached_balances_hold(client)


async def test_a_month_of_allowed_movements_and_the_income_account_month_end(start_service, finance, accountant,
                                                                            auth):
    async with start_service("collection") as client:
        accounts = await setup_accounts(client, finance, accountant, funds=("PEN_RES", "UNEMP"))
        income, special = accounts[("income", "PEN_RES")], accounts[("special", "PEN_RES")]
        expenditure = accounts[("expenditure", "PEN_RES")]
        # residents pay into the income account; the accountant transfers to the special account, finance records it
        await move(client, accountant, income, "in", "500.00", "payer", "receipt", "c-1", value_date="2026-10-10")
        await move(client, accountant, income, "in", "0.35", "interest", "interest", "i-1", value_date="2026-10-20")
        await move(client, accountant, income, "out", "300.00", "special", "transfer", "t-1", value_date="2026-10-31",
                   counterparty_account=special)
        await move(client, finance, special, "in", "300.00", "income", "transfer", "t-1-in", value_date="2026-10-31",
                   counterparty_account=income)
        interest = await client.post(f"/treasury/accounts/{special['id']}/interest", headers=keyed(finance, "si-1"),
                                     json={"amount": "1.20", "value_date": "2026-10-21", "reference": "结息单 10"})
        assert interest.status_code == 201 and interest.json()["transaction"]["counterparty_fund"] == "PEN_RES"
        await allocate(client, finance, "PEN_RES", "250.00", "alloc-1", value_date="2026-10-25")
        await move(client, accountant, expenditure, "out", "240.00", "beneficiary", "payment", "p-1",
                   value_date="2026-10-26", reference="payroll-PEN_RES-202610 授权 17")
        await move(client, accountant, expenditure, "in", "40.00", "beneficiary", "return", "ret-1",
                   value_date="2026-10-28", reference="退回 授权 18")
        await move(client, accountant, expenditure, "out", "50.00", "special", "return", "ret-2",
                   value_date="2026-10-29", reference="结余退回", counterparty_account=special)
        await move(client, finance, special, "out", "1.20", "treasury", "return", "tr-1", value_date="2026-10-30",
                   reference="退库 2026-4")
        assert transaction_count(client) == 11
        assert outbox(client, "collection.bank_transaction.recorded.v1")[-1]["status"] == "accepted"

        auditor = auth("internal_auditor")
        october = (await client.get("/treasury/income-accounts/month-end", params={"month": 202610},
                                    headers=auditor)).json()
        assert (october["month_end"], october["checked"]) == ("2026-10-31", 2)
        assert [(a["fund"], a["closing_balance"]) for a in october["non_zero"]] == [("PEN_RES", "200.35")]
        await move(client, accountant, income, "out", "200.35", "special", "transfer", "t-2", value_date="2026-11-02",
                   counterparty_account=special)
        november = (await client.get("/treasury/income-accounts/month-end", params={"month": 202611},
                                     headers=accountant)).json()
        assert november["non_zero"] == []
        # October is still what it was: the month end counts value dates, not recording dates
        again = (await client.get("/treasury/income-accounts/month-end", params={"month": 202610},
                                  headers=accountant)).json()
        assert [a["closing_balance"] for a in again["non_zero"]] == ["200.35"]
        # a month that has not ended has no month end to check yet
        running = await client.get("/treasury/income-accounts/month-end", params={"month": period_of(china_today())},
                                   headers=accountant)
        assert running.status_code == 422 and error_code(running) == "MONTH_NOT_OVER"
        cached_balances_hold(client)


# -- the usage rules: one case per rule, refused by hand and flagged from a statement --------------------------------

# rule → (account (kind, fund), keeper, direction, counterparty, counterparty account (kind, fund) | None, purpose,
# reference)
RULE_CASES = {
    "U1": (("income", "PEN_RES"), "accountant", "out", "beneficiary", None, "payment", "授权 1"),
    "U2": (("income", "PEN_RES"), "accountant", "in", "other", None, "other", None),
    "U3": (("expenditure", "PEN_RES"), "accountant", "in", "payer", None, "receipt", None),
    "U4": (("expenditure", "PEN_RES"), "accountant", "out", "other", None, "other", "差旅费"),
    "U5": (("special", "PEN_RES"), "finance_officer", "out", "beneficiary", None, "payment", "某文件"),
    "U6": (("special", "PEN_RES"), "finance_officer", "in", "payer", None, "receipt", None),
    "U7": (("income", "PEN_RES"), "accountant", "out", "special", ("special", "UNEMP"), "transfer", None),
}


@pytest.mark.unit
def test_every_rule_has_a_case_and_a_clause():
    assert set(RULE_CASES) == set(rules.RULES_BY_ID)
    for rule in rules.RULES:
        assert is_canonical(rule.clause) and rule.clause.startswith("000 二") and rule.seed_text


@pytest.mark.parametrize("rule_id", sorted(RULE_CASES))
async def test_a_usage_rule_violation_is_refused_by_hand_and_flagged_from_a_bank_statement(
        rule_id, start_service, finance, accountant):
    (kind, fund), keeper, direction, counterparty, other, purpose, reference = RULE_CASES[rule_id]
    headers = finance if keeper == "finance_officer" else accountant
    async with start_service("collection") as client:
        accounts = await setup_accounts(client, finance, accountant, funds=("PEN_RES", "UNEMP"))
        account = accounts[(kind, fund)]
        other_account = accounts[other] if other else None
        # by hand: 409 with the rule and its clause, nothing recorded, the refusal kept in the audit chain
        refused = await move(client, headers, account, direction, "100.00", counterparty, purpose, f"k-{rule_id}",
                             counterparty_account=other_account, reference=reference, expect=409)
        error = refused.json()["error"]
        assert error["code"] == "USAGE_RULE_VIOLATION"
        assert rule_id in [v["rule"] for v in error["details"]["violations"]]
        assert rules.RULES_BY_ID[rule_id].clause in error["message"]
        assert transaction_count(client) == 0 and await balance(client, headers, account) == "0.00"
        with Session(engine_of(client)) as session:
            refusal = session.execute(
                select(AuditEntry).where(AuditEntry.action == "bank_transaction.refused")).scalar_one()
        assert refusal.entity_id == account["id"] and rule_id in refusal.reason
        # from the bank: it already happened, so it is recorded, flagged, and the event carries the violation
        line = {"bank_line_id": f"B-{rule_id}", "value_date": "2026-10-12", "direction": direction, "amount": "100.00",
                "counterparty": counterparty, "purpose": purpose, "reference": reference}
        if other_account:
            line["counterparty_account_no"] = other_account["account_no"]
        imported = (await statement(client, headers, account, [line])).json()
        recorded = imported["transactions"][0]
        assert (imported["recorded"], imported["flagged"], recorded["status"], recorded["source"]) == \
            (1, 1, "flagged", "bank_statement")
        assert recorded["violation"].startswith(rule_id) or f"；{rule_id}" in recorded["violation"]
        assert rules.RULES_BY_ID[rule_id].seed_text in recorded["violation"]
        assert imported["balance"] == ("100.00" if direction == "in" else "-100.00")
        event = outbox(client, "collection.bank_transaction.recorded.v1")[-1]
        assert (event["status"], event["source"], event["transaction_id"]) == ("flagged", "bank_statement",
                                                                               recorded["id"])
        assert rule_id in event["violation"]
        flagged = (await client.get("/treasury/transactions", params={"status": "flagged"}, headers=headers)).json()
        assert [t["id"] for t in flagged["items"]] == [recorded["id"]]


async def test_cross_fund_money_is_flagged_on_both_legs_and_an_unregistered_account_counts_as_other(
        start_service, finance, accountant):
    async with start_service("collection") as client:
        accounts = await setup_accounts(client, finance, accountant, funds=("PEN_RES", "UNEMP"))
        # the UNEMP expenditure account receives from the PEN_RES special account (S14)
        crossed = (await statement(client, accountant, accounts[("expenditure", "UNEMP")], [
            {"bank_line_id": "X1", "value_date": "2026-10-12", "direction": "in", "amount": "10.00",
             "counterparty": "special", "counterparty_account_no": accounts[("special", "PEN_RES")]["account_no"],
             "purpose": "allocation"}])).json()["transactions"][0]
        assert crossed["violation"].startswith("U7") and crossed["counterparty_fund"] == "PEN_RES"
        # a line claiming to come from "the special account" of an unknown number: other, so U3 too
        unknown = (await statement(client, accountant, accounts[("expenditure", "PEN_RES")], [
            {"bank_line_id": "X2", "value_date": "2026-10-12", "direction": "in", "amount": "10.00",
             "counterparty": "special", "counterparty_account_no": "622200001111", "purpose": "allocation"}]
        )).json()["transactions"][0]
        assert unknown["counterparty"] == "other" and "U3" in unknown["violation"]
        assert "622200001111 不是已登记的社保基金账户" in unknown["violation"]
        # an expenditure account's return through the original channel needs the agency's authorisation
        unauthorised = await move(client, accountant, accounts[("expenditure", "PEN_RES")], "in", "5.00",
                                  "beneficiary", "return", "r-0", expect=409)
        assert "缺少经办机构授权" in unauthorised.json()["error"]["message"]


# -- idempotency -----------------------------------------------------------------------------------------------------


async def test_keys_replay_the_original_and_refuse_other_content(start_service, finance, accountant):
    async with start_service("collection") as client:
        accounts = await setup_accounts(client, finance, accountant, funds=("PEN_RES",))
        income = accounts[("income", "PEN_RES")]
        first = (await move(client, accountant, income, "in", "80.00", "payer", "receipt", "pay-1")).json()
        again = (await move(client, accountant, income, "in", "80.00", "payer", "receipt", "pay-1", expect=200)).json()
        assert again["replayed"] is True and again["transaction"]["id"] == first["transaction"]["id"]
        assert again["balance"] == "80.00" and transaction_count(client) == 1
        other = await move(client, accountant, income, "in", "80.01", "payer", "receipt", "pay-1", expect=409)
        assert error_code(other) == "IDEMPOTENCY_KEY_REUSED"
        missing = await move(client, accountant, income, "in", "1.00", "payer", "receipt", None, expect=422)
        assert error_code(missing) == "IDEMPOTENCY_KEY_REQUIRED"
        derived = await move(client, accountant, income, "in", "1.00", "payer", "receipt", "a#in", expect=422)
        assert error_code(derived) == "INVALID_IDEMPOTENCY_KEY"

        remittance = (await remit(client, finance, "V-1", "100.00", "2026-10-09"))["remittance"]
        await receive(client, finance, remittance["id"], "100.00", "2026-10-12", "rec-1")
        await receive(client, finance, remittance["id"], "100.00", "2026-10-12", "rec-1", expect=200)
        await allocate(client, finance, "PEN_RES", "60.00", "alloc-1")
        replay = (await allocate(client, finance, "PEN_RES", "60.00", "alloc-1", expect=200)).json()
        assert replay["replayed"] is True and replay["expenditure_balance"] == "60.00"
        changed = await allocate(client, finance, "PEN_RES", "61.00", "alloc-1", expect=409)
        assert error_code(changed) == "IDEMPOTENCY_KEY_REUSED"

        lines = [{"bank_line_id": f"L{i}", "value_date": "2026-10-13", "direction": "in", "amount": "1.00",
                  "counterparty": "payer", "purpose": "receipt"} for i in range(3)]
        await statement(client, accountant, income, lines)
        replayed = (await statement(client, accountant, income, lines, expect=200)).json()
        assert (replayed["recorded"], replayed["replayed"], replayed["balance"]) == (0, 3, "83.00")
        lines[1]["amount"] = "2.00"
        conflict = await statement(client, accountant, income, lines, expect=409)
        assert error_code(conflict) == "IDEMPOTENCY_KEY_REUSED" and "L1" in conflict.json()["error"]["message"]
        assert transaction_count(client) == 1 + 1 + 2 + 3
        cached_balances_hold(client)


# -- roles -----------------------------------------------------------------------------------------------------------


async def test_special_accounts_are_finances_and_agency_accounts_the_accountants(start_service, finance, accountant,
                                                                                  auth):
    async with start_service("collection") as client:
        wrong = await register(client, accountant, "special", "PEN_RES", expect=403)
        assert wrong["error"]["code"] == "FORBIDDEN"
        assert (await register(client, finance, "income", "PEN_RES", expect=403))["error"]["code"] == "FORBIDDEN"
        accounts = await setup_accounts(client, finance, accountant, funds=("PEN_RES",))
        special, income = accounts[("special", "PEN_RES")], accounts[("income", "PEN_RES")]
        assert error_code(await move(client, accountant, special, "in", "1.00", "interest", "interest", "a-1",
                                     expect=403)) == "FORBIDDEN"
        assert error_code(await move(client, finance, income, "in", "1.00", "payer", "receipt", "a-2",
                                     expect=403)) == "FORBIDDEN"
        refused = await client.post(f"/treasury/accounts/{income['id']}/interest", headers=keyed(finance, "a-3"),
                                    json={"amount": "1.00", "value_date": "2026-10-12"})
        assert refused.status_code == 403
        cashier = auth("cashier")
        assert (await client.get("/treasury/accounts", headers=cashier)).status_code == 200
        assert (await client.post("/treasury/remittances", headers=accountant, json={})).status_code == 403
        await move(client, cashier, income, "in", "1.00", "payer", "receipt", "a-4", expect=403)
        assert (await client.get("/treasury/transactions", headers=auth("internal_auditor"))).status_code == 200
        assert (await client.get("/treasury/accounts", headers=auth("oversight_officer"))).status_code == 403
        # someone holding both roles acts as the account's keeper: events and audit name the right role
        both = auth("accountant", "finance_officer", subject="both.zhao")
        await move(client, both, special, "in", "1.00", "interest", "interest", "a-5")
        assert outbox(client, "collection.bank_transaction.recorded.v1")[-1]["_actor"] == {
            "id": "both.zhao", "role": "finance_officer"}
        assert transaction_count(client) == 1
