"""Pension individual accounts: exact ledger, idempotent postings, no negative balance, statements,
interest rates and the yearly interest run (rule in services/accounts/ledger/interest.py)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from pydantic_core import PydanticCustomError
from sqlalchemy import func, insert, select
from sqlmodel import Session

from services.accounts.ledger import interest
from services.accounts.ledger import service as ledger_service
from services.accounts.models import AccountEntry, ContributionMonth, IndividualAccount, InterestRate, Person
from services.kernel import clock, context
from services.kernel.audit import verify_chain
from services.kernel.events import new_event_id
from services.kernel.models import AuditEntry
from tests.support.registry import OTHER_DISTRICT, REGION, engine_of, error_code, make_citizen_id, outbox
from tests.support.accounts import add_employer, add_person, set_deceased

# -- the interest rule, pure ----------------------------------------------------------------------------------------


@pytest.mark.unit
def test_interest_rule_is_exact_and_rounds_half_up_once():
    rate = Decimal("0.0262")
    assert interest.yearly_interest_fen(rate=rate, opening_balance_fen=100_000, movements=[]) == 2620
    # money of month m earns (12 - m)/12 of the year: January 11/12, December nothing
    assert interest.yearly_interest_fen(rate=Decimal("0.12"), opening_balance_fen=0, movements=[(1200, 202501)]) == 132
    assert interest.yearly_interest_fen(rate=Decimal("0.12"), opening_balance_fen=0, movements=[(1200, 202512)]) == 0
    # exactly half a fen rounds up; just under stays down
    assert interest.yearly_interest_fen(rate=Decimal("0.01"), opening_balance_fen=50, movements=[]) == 1
    assert interest.yearly_interest_fen(rate=Decimal("0.01"), opening_balance_fen=49, movements=[]) == 0
    assert interest.yearly_interest_fen(rate=Decimal("0.01"), opening_balance_fen=0, movements=[(150, 202508)]) == 1
    assert interest.yearly_interest_fen(rate=Decimal("0.01"), opening_balance_fen=0, movements=[(149, 202508)]) == 0
    # repeating thirds never round like a half: 100 × 0.01 × 10/12 = 0.8333… → 1; 100 × 0.01 × 2/12 = 0.1666… → 0
    assert interest.yearly_interest_fen(rate=Decimal("0.01"), opening_balance_fen=0, movements=[(100, 202502)]) == 1
    assert interest.yearly_interest_fen(rate=Decimal("0.01"), opening_balance_fen=0, movements=[(100, 202510)]) == 0
    # one rounding per account, not per movement: 3 × 0.4 fen = 1.2 fen → 1 (per-line rounding would give 0)
    three = [(160, 202507), (160, 202507), (160, 202507)]  # each 160 × 0.01 × 5/12 = 0.666…; together 2.0
    assert interest.yearly_interest_fen(rate=Decimal("0.01"), opening_balance_fen=0, movements=three) == 2
    # a debit lowers the interest for the months it is gone; the result is never negative
    assert interest.yearly_interest_fen(rate=Decimal("0.12"), opening_balance_fen=1200,
                                        movements=[(-1200, 202507)]) == 84  # 1200 × 12 % × 7/12
    assert interest.yearly_interest_fen(rate=Decimal("0.12"), opening_balance_fen=0,
                                        movements=[(1200, 202512), (-1200, 202511)]) == 0
    with pytest.raises(TypeError):
        interest.yearly_interest_fen(rate=0.0262, opening_balance_fen=1, movements=[])  # type: ignore[arg-type]


@pytest.mark.unit
@pytest.mark.parametrize("value", [0.0262, 1, "abc", "-0.01", "1", "0.123456789", "NaN", "Infinity", None])
def test_rates_are_decimal_strings_only(value):
    with pytest.raises(PydanticCustomError) as refused:
        interest.parse_rate(value)
    assert refused.value.type == "INVALID_RATE"


@pytest.mark.unit
def test_rates_parse_exactly():
    assert interest.parse_rate(" 0.0262 ") == Decimal("0.0262")
    assert interest.rate_text(interest.parse_rate("0.02620")) == "0.02620"
    assert interest.parse_rate("0") == 0


# -- helpers ---------------------------------------------------------------------------------------------------------


@pytest.fixture
def accountant(auth):  # noqa: ANN001, ANN201
    return auth("accountant", region="150100", subject="acct.wang")


def keyed(headers: dict, key: str | None) -> dict:
    return {**headers, "Idempotency-Key": key} if key is not None else headers


async def contribute(client, headers, person_id: str, amount: str, period: int, key: str,  # noqa: ANN001, ANN201
                     expect: int = 201, **extra):
    response = await client.post(f"/individual-accounts/{person_id}/contributions", headers=keyed(headers, key),
                                 json={"amount": amount, "period": period, **extra})
    assert response.status_code == expect, response.text
    return response


async def post(client, headers, person_id: str, what: str, body: dict, key: str | None,  # noqa: ANN001, ANN201
               expect: int = 201):
    response = await client.post(f"/individual-accounts/{person_id}/{what}", headers=keyed(headers, key), json=body)
    assert response.status_code == expect, response.text
    return response


def entries_of(client, person_id: str) -> list[AccountEntry]:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        return list(session.execute(
            select(AccountEntry).where(AccountEntry.person_id == person_id).order_by(AccountEntry.posted_at)
        ).scalars())


def cached_balance(client, person_id: str) -> int:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        return session.get(IndividualAccount, person_id).balance_fen


def assert_ledger_holds(client, person_id: str) -> None:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        derived = ledger_service.rederive_balance(session, person_id)
    assert derived == cached_balance(client, person_id)
    assert sum(e.amount_fen for e in entries_of(client, person_id)) == cached_balance(client, person_id)


# -- postings --------------------------------------------------------------------------------------------------------


async def test_first_contribution_opens_the_account_and_replays_are_idempotent(start_service, accountant, auth):
    async with start_service("accounts") as accounts:
        person_id, _ = add_person(accounts)
        employer_id = add_employer(accounts)
        first = (await contribute(accounts, accountant, person_id, "640.00", 202401, "pay-202401-001",
                                  employer_id=employer_id, reference="voucher-1")).json()
        assert (first["balance"], first["account_status"], first["replayed"]) == ("640.00", "open", False)
        assert (first["entry"]["entry_type"], first["entry"]["amount"], first["entry"]["period"],
                first["entry"]["year"], first["entry"]["posted_by"]) == ("contribution", "640.00", 202401, 2024,
                                                                         "acct.wang")
        # the same key and content again: the original entry, 200, nothing posted
        replay = await contribute(accounts, accountant, person_id, "640.00", 202401, "pay-202401-001", expect=200,
                                  employer_id=employer_id, reference="voucher-1")
        assert replay.json()["replayed"] is True and replay.json()["entry"]["id"] == first["entry"]["id"]
        assert replay.json()["balance"] == "640.00"
        # the same key with other content is refused
        for changed in ({"amount": "641.00"}, {"period": 202402}, {"reference": "voucher-2"}, {"fund": "PEN_GOV"}):
            body = {"amount": "640.00", "period": 202401, "employer_id": employer_id, "reference": "voucher-1",
                    **changed}
            r = await accounts.post(f"/individual-accounts/{person_id}/contributions",
                                    headers=keyed(accountant, "pay-202401-001"), json=body)
            assert r.status_code == 409 and error_code(r) == "IDEMPOTENCY_KEY_REUSED", (changed, r.text)
        other_id, _ = add_person(accounts, 2)
        other = await contribute(accounts, accountant, other_id, "640.00", 202401, "pay-202401-001", expect=409)
        assert error_code(other) == "IDEMPOTENCY_KEY_REUSED"

        await contribute(accounts, accountant, person_id, "0.01", 202402, "pay-202402-001")
        assert len(entries_of(accounts, person_id)) == 2 and cached_balance(accounts, person_id) == 64001
        assert_ledger_holds(accounts, person_id)
        credited = outbox(accounts, "accounts.account.credited.v1")
        assert [(e["amount_fen"], e["balance_fen"], e["period"], e["idempotency_key"]) for e in credited] == \
            [(64000, 64000, 202401, "pay-202401-001"), (1, 64001, 202402, "pay-202402-001")]
        with Session(engine_of(accounts)) as session:
            months = session.execute(select(ContributionMonth).where(ContributionMonth.person_id == person_id)
                                     .order_by(ContributionMonth.period)).scalars().all()
            assert [(m.fund, m.period, m.employer_id, m.source) for m in months] == \
                [("PEN_EMP", 202401, employer_id, "posting"), ("PEN_EMP", 202402, None, "posting")]

        reader = auth("agency_clerk", region=REGION)
        account = (await accounts.get(f"/individual-accounts/{person_id}", headers=reader)).json()
        assert (account["balance"], account["status"], account["version"]) == ("640.01", "open", 3)
        page = (await accounts.get(f"/individual-accounts/{person_id}/entries", headers=reader,
                                   params={"limit": 1})).json()
        assert len(page["items"]) == 1 and page["next_cursor"]
        assert (await accounts.get("/audit/verify", headers=auth("internal_auditor"))).json()["ok"] is True


async def test_bad_postings_are_refused_and_write_nothing(start_service, accountant, auth):
    async with start_service("accounts") as accounts:
        person_id, _ = add_person(accounts)
        url = f"/individual-accounts/{person_id}/contributions"

        async def refused(body: dict, key: str | None, code: str, status: int = 422,
                          headers: dict | None = None) -> None:
            r = await accounts.post(url, headers=keyed(headers or accountant, key), json=body)
            assert r.status_code == status, r.text
            assert error_code(r) == code, r.text

        good = {"amount": "100.00", "period": 202401}
        await refused(good, None, "IDEMPOTENCY_KEY_REQUIRED")
        await refused(good, "   ", "IDEMPOTENCY_KEY_REQUIRED")
        await refused(good, "k" * 201, "INVALID_IDEMPOTENCY_KEY")
        await refused(good, f"interest:2024:{person_id}", "IDEMPOTENCY_KEY_RESERVED")
        await refused({"amount": 100.1, "period": 202401}, "k1", "INVALID_AMOUNT")  # a JSON float
        await refused({"amount": "100.001", "period": 202401}, "k1", "INVALID_AMOUNT")
        await refused({"amount": "0", "period": 202401}, "k1", "INVALID_AMOUNT")
        await refused({"amount": "-5.00", "period": 202401}, "k1", "INVALID_AMOUNT")
        await refused({"amount": "100.00", "period": 202413}, "k1", "INVALID_PERIOD")
        await refused({"amount": "100.00", "period": 209901}, "k1", "PERIOD_IN_FUTURE")
        await refused({"amount": "100.00", "period": 202401, "fund": "UNEMP"}, "k1", "VALIDATION_ERROR")
        r = await accounts.post("/individual-accounts/nobody/contributions", headers=keyed(accountant, "k1"),
                                json=good)
        assert r.status_code == 404 and error_code(r) == "PERSON_NOT_FOUND"
        await refused(good, "k1", "FORBIDDEN", 403, auth("agency_clerk", region=REGION))
        await refused(good, "k1", "OUT_OF_REGION", 403, auth("accountant", region=OTHER_DISTRICT))
        with Session(engine_of(accounts)) as session:
            assert session.get(IndividualAccount, person_id) is None
            assert session.execute(select(func.count()).select_from(AccountEntry)).scalar_one() == 0
        assert outbox(accounts, "accounts.account.credited.v1") == []


async def test_debits_never_overdraw_and_withdrawal_closes_the_account(start_service, accountant, auth):
    async with start_service("accounts") as accounts:
        person_id, _ = add_person(accounts)
        no_account = await post(accounts, accountant, person_id, "transfers-out", {"document_ref": "ZY-1"}, "t0",
                                expect=404)
        assert error_code(no_account) == "ACCOUNT_NOT_FOUND"
        await contribute(accounts, accountant, person_id, "100.00", 202401, "c1")
        transfer_in = await post(accounts, accountant, person_id, "transfers-in",
                                 {"amount": "2345.67", "document_ref": "ZR-2026-001", "from_region": "110105"}, "ti1")
        assert transfer_in.json()["balance"] == "2445.67"
        assert transfer_in.json()["entry"]["reference"] == "ZR-2026-001"

        too_much = await post(accounts, accountant, person_id, "transfers-out",
                              {"amount": "2445.68", "document_ref": "ZY-2026-001"}, "to1", expect=409)
        assert error_code(too_much) == "INSUFFICIENT_BALANCE"
        partial = await post(accounts, accountant, person_id, "transfers-out",
                             {"amount": "445.67", "document_ref": "ZY-2026-001", "to_region": "110105"}, "to1")
        assert (partial.json()["balance"], partial.json()["account_status"]) == ("2000.00", "open")
        assert partial.json()["entry"]["amount"] == "-445.67"
        [debited] = outbox(accounts, "accounts.account.debited.v1")
        assert (debited["amount_fen"], debited["balance_fen"], debited["entry_type"]) == (44567, 200000, "transfer_out")
        # the refused debit left nothing behind
        assert [e.idempotency_key for e in entries_of(accounts, person_id)] == ["c1", "ti1", "to1"]

        not_dead = await post(accounts, accountant, person_id, "withdrawals",
                              {"reason": "death", "reference": "SW-1"}, "w1", expect=409)
        assert error_code(not_dead) == "PERSON_NOT_DECEASED"
        set_deceased(accounts, person_id)
        withdrawal = await post(accounts, accountant, person_id, "withdrawals",
                                {"reason": "death", "reference": "SW-1", "note": "继承人领取"}, "w1")
        assert (withdrawal.json()["balance"], withdrawal.json()["account_status"],
                withdrawal.json()["entry"]["amount"]) == ("0.00", "closed", "-2000.00")
        again = await post(accounts, accountant, person_id, "withdrawals",
                           {"reason": "death", "reference": "SW-1", "note": "继承人领取"}, "w1", expect=200)
        assert again.json()["replayed"] is True and again.json()["entry"]["id"] == withdrawal.json()["entry"]["id"]
        for what, body, key in (
            ("contributions", {"amount": "1.00", "period": 202402}, "c2"),
            ("transfers-in", {"amount": "1.00", "document_ref": "ZR-2"}, "ti2"),
            ("transfers-out", {"document_ref": "ZY-2"}, "to2"),
            ("withdrawals", {"reason": "settlement", "reference": "JS-1"}, "w2"),
        ):
            closed = await post(accounts, accountant, person_id, what, body, key, expect=409)
            assert error_code(closed) == "ACCOUNT_CLOSED"
        assert_ledger_holds(accounts, person_id)
        assert cached_balance(accounts, person_id) == 0


async def test_whole_transfer_out_closes_until_money_comes_back(start_service, accountant, auth):
    async with start_service("accounts") as accounts:
        person_id, _ = add_person(accounts)
        await contribute(accounts, accountant, person_id, "300.00", 202401, "c1")
        out = await post(accounts, accountant, person_id, "transfers-out", {"document_ref": "ZY-9"}, "to1")
        assert (out.json()["balance"], out.json()["account_status"], out.json()["entry"]["amount"]) == \
            ("0.00", "closed", "-300.00")
        # a replay of a whole-balance transfer does not take the (now zero) balance again
        replay = await post(accounts, accountant, person_id, "transfers-out", {"document_ref": "ZY-9"}, "to1",
                            expect=200)
        assert replay.json()["entry"]["amount"] == "-300.00"
        back = await post(accounts, accountant, person_id, "transfers-in",
                          {"amount": "300.00", "document_ref": "ZR-9"}, "ti1")
        assert (back.json()["balance"], back.json()["account_status"]) == ("300.00", "open")
        reader = auth("internal_auditor")
        history = (await accounts.get(f"/individual-accounts/{person_id}/verify", headers=reader)).json()
        assert history == {"person_id": person_id, "cached_balance": "300.00", "derived_balance": "300.00",
                           "entries": 3, "consistent": True}


async def test_verify_reports_a_cache_that_drifted(start_service, accountant, auth):
    async with start_service("accounts") as accounts:
        person_id, _ = add_person(accounts)
        await contribute(accounts, accountant, person_id, "12.34", 202401, "c1")
        with Session(engine_of(accounts)) as session:
            account = session.get(IndividualAccount, person_id)
            account.balance_fen = 999
            session.add(account)
            session.commit()
            assert ledger_service.rederive_balance(session, person_id) == 1234
        report = (await accounts.get(f"/individual-accounts/{person_id}/verify", headers=accountant)).json()
        assert (report["cached_balance"], report["derived_balance"], report["consistent"]) == \
            ("9.99", "12.34", False)
        missing = await accounts.get("/individual-accounts/nobody/verify", headers=accountant)
        assert missing.status_code == 404


# -- interest --------------------------------------------------------------------------------------------------------


async def test_interest_rates_are_set_as_decimal_strings(start_service, accountant, auth):
    async with start_service("accounts") as accounts:
        for body, code in (({"rate": 0.0262}, "INVALID_RATE"), ({"rate": 2}, "INVALID_RATE"),
                           ({"rate": "2.5%"}, "INVALID_RATE"), ({"rate": "1.5"}, "INVALID_RATE"),
                           ({}, "VALIDATION_ERROR")):
            r = await accounts.put("/individual-accounts/interest-rates/2024", headers=accountant, json=body)
            assert r.status_code == 422 and error_code(r) == code, r.text
        r = await accounts.put("/individual-accounts/interest-rates/2024", headers=accountant, json={"rate": "0.0262"})
        assert r.status_code == 200 and (r.json()["rate"], r.json()["set_by"]) == ("0.0262", "acct.wang")
        r = await accounts.put("/individual-accounts/interest-rates/2024", headers=accountant, json={"rate": "0.0263"})
        assert r.json()["rate"] == "0.0263"
        clerk = auth("agency_clerk", region=REGION)
        assert (await accounts.put("/individual-accounts/interest-rates/2024", headers=clerk,
                                   json={"rate": "0.03"})).status_code == 403
        assert (await accounts.put("/individual-accounts/interest-rates/1800", headers=accountant,
                                   json={"rate": "0.03"})).status_code == 422
        listed = (await accounts.get("/individual-accounts/interest-rates", headers=clerk)).json()
        assert [(r["year"], r["rate"]) for r in listed] == [(2024, "0.0263")]


async def test_yearly_interest_run_is_exact_idempotent_and_statements_add_up(start_service, accountant, auth,
                                                                             monkeypatch):
    monkeypatch.setattr(ledger_service, "INTEREST_BATCH_SIZE", 2)  # several batches with three accounts
    async with start_service("accounts") as accounts:
        a, _ = add_person(accounts, 1)
        b, _ = add_person(accounts, 2)
        c, _ = add_person(accounts, 3)
        await contribute(accounts, accountant, b, "1.50", 202308, "b-202308")  # 150 × 1 % × 4/12 = 0.5 fen → 1
        await contribute(accounts, accountant, c, "1.49", 202308, "c-202308")  # 0.4966… fen → 0
        await contribute(accounts, accountant, a, "1000.00", 202401, "a-202401")
        await contribute(accounts, accountant, a, "500.00", 202406, "a-202406")
        await contribute(accounts, accountant, a, "300.00", 202412, "a-202412")
        await contribute(accounts, accountant, a, "200.00", 202503, "a-202503")

        async def set_rate(year: int, rate: str) -> None:
            r = await accounts.put(f"/individual-accounts/interest-rates/{year}", headers=accountant,
                                   json={"rate": rate})
            assert r.status_code == 200, r.text

        async def run(year: int, expect: int = 200) -> dict:
            r = await accounts.post("/individual-accounts/interest-runs", headers=accountant, json={"year": year})
            assert r.status_code == expect, r.text
            return r.json()

        assert error_code(await accounts.post("/individual-accounts/interest-runs", headers=accountant,
                                              json={"year": 2023})) == "INTEREST_RATE_NOT_SET"
        await set_rate(2023, "0.01")
        await set_rate(2024, "0.0262")
        await set_rate(2025, "0.0232")
        this_year = clock.china_today().year
        await set_rate(this_year, "0.02")
        not_ended = await accounts.post("/individual-accounts/interest-runs", headers=accountant,
                                        json={"year": this_year})
        assert not_ended.status_code == 409 and error_code(not_ended) == "YEAR_NOT_ENDED"

        r2023 = await run(2023)
        assert (r2023["accounts"], r2023["credited"], r2023["zero_interest"], r2023["total_interest"],
                r2023["batches"]) == (3, 1, 2, "0.01", 2)
        r2024 = await run(2024)
        # A: 2.62 % × (100000 × 11 + 50000 × 6 + 30000 × 0)/12 = 3056.67 fen → 3057; B: 151 × 2.62 % = 3.96 → 4;
        # C: 149 × 2.62 % = 3.90 → 4
        assert (r2024["credited"], r2024["total_interest"]) == (3, "30.65")
        again = await run(2024)
        assert (again["credited"], again["already_credited"], again["total_interest"]) == (0, 3, "0.00")
        r2025 = await run(2025)
        # A: 2.32 % × (183057 × 12 + 20000 × 9)/12 = 4594.92 → 4595; B: 155 × 2.32 % = 3.60 → 4; C: 153 → 3.55 → 4
        assert (r2025["credited"], r2025["total_interest"]) == (3, "46.03")
        late = await run(2023)  # every account already has 2023 interest or a later year's
        assert (late["credited"], late["already_credited"], late["skipped_later_interest"]) == (0, 1, 2)

        interest_of = {p: [(e.year, e.amount_fen) for e in entries_of(accounts, p) if e.entry_type == "interest"]
                       for p in (a, b, c)}
        assert interest_of == {a: [(2024, 3057), (2025, 4595)], b: [(2023, 1), (2024, 4), (2025, 4)],
                               c: [(2024, 4), (2025, 4)]}
        for p, balance in ((a, 207652), (b, 159), (c, 157)):
            assert cached_balance(accounts, p) == balance
            assert_ledger_holds(accounts, p)
        keys = [e.idempotency_key for e in entries_of(accounts, a) if e.entry_type == "interest"]
        assert keys == [f"interest:2024:{a}", f"interest:2025:{a}"]
        # The runs report their credits in bulk (v2), never one v1 event per account.
        assert [e for e in outbox(accounts, "accounts.account.credited.v1") if e["entry_type"] == "interest"] == []
        reported = [(c["person_id"], c["year"], c["amount_fen"], c["idempotency_key"])
                    for e in outbox(accounts, "accounts.account.credited.v2") for c in e["entries"]]
        assert sorted(reported) == sorted((p, year, fen, f"interest:{year}:{p}")
                                          for p, found in interest_of.items() for year, fen in found)

        changed = await accounts.put("/individual-accounts/interest-rates/2024", headers=accountant,
                                     json={"rate": "0.03"})
        assert changed.status_code == 409 and error_code(changed) == "INTEREST_ALREADY_CREDITED"
        same = await accounts.put("/individual-accounts/interest-rates/2024", headers=accountant,
                                  json={"rate": "0.02620"})
        assert same.status_code == 200 and same.json()["rate"] == "0.0262"

        reader = auth("agency_reviewer", region=REGION)
        s2024 = (await accounts.get(f"/individual-accounts/{a}/statement", params={"year": 2024},
                                    headers=reader)).json()
        assert (s2024["opening_balance"], s2024["total_credits"], s2024["total_debits"], s2024["interest"],
                s2024["closing_balance"], s2024["interest_rate"]) == \
            ("0.00", "1830.57", "0.00", "30.57", "1830.57", "0.0262")
        assert [(e["entry_type"], e["amount"]) for e in s2024["entries"]] == [
            ("contribution", "1000.00"), ("contribution", "500.00"), ("contribution", "300.00"),
            ("interest", "30.57")]
        s2025 = (await accounts.get(f"/individual-accounts/{a}/statement", params={"year": 2025},
                                    headers=reader)).json()
        assert (s2025["opening_balance"], s2025["total_credits"], s2025["closing_balance"]) == \
            ("1830.57", "245.95", "2076.52")
        # statements chain: each year's closing balance is the next year's opening; the last one is the balance
        s2026 = (await accounts.get(f"/individual-accounts/{a}/statement", params={"year": 2026},
                                    headers=reader)).json()
        assert s2026["opening_balance"] == s2026["closing_balance"] == "2076.52" and s2026["entries"] == []
        for statement in (s2024, s2025):
            total = sum(Decimal(e["amount"]) for e in statement["entries"])
            assert Decimal(statement["opening_balance"]) + total == Decimal(statement["closing_balance"])

        forbidden = await accounts.post("/individual-accounts/interest-runs", headers=auth("agency_clerk"),
                                        json={"year": 2025})
        assert forbidden.status_code == 403
        assert (await accounts.get("/audit/verify", headers=auth("internal_auditor"))).json()["ok"] is True


async def test_an_interest_run_of_more_than_a_thousand_accounts_reports_v2_events_of_a_thousand(start_service):
    """2 500 accounts in one transaction: ceil(2 500 / 1 000) = 3 credited.v2 events; every credit once with the
    balance after it; balances exact; one audit entry per credit and the chain verifies."""
    n, year = 2500, 2024
    async with start_service("accounts") as accounts:
        engine = engine_of(accounts)
        now = clock.utc_now()
        persons = [{"id": new_event_id(), "citizen_id": make_citizen_id(i, born=date(1970, 1, 1) + timedelta(days=i)),
                    "name": f"人员{i}", "sex": "M", "birth_date": date(1970, 1, 1) + timedelta(days=i),
                    "nationality": "CHN", "household_type": "urban", "region": REGION, "life_status": "alive",
                    "registered_at": now, "registered_by": "t", "version": 1} for i in range(n)]
        opening = {p["id"]: 10_000 + 7 * i for i, p in enumerate(persons)}
        with Session(engine) as session:
            session.execute(insert(Person.__table__), persons)
            session.execute(insert(IndividualAccount.__table__), [
                {"person_id": p, "balance_fen": fen, "status": "open", "opened_at": now, "version": 1}
                for p, fen in opening.items()])
            session.execute(insert(AccountEntry.__table__), [
                {"id": new_event_id(), "person_id": p, "entry_type": "contribution", "amount_fen": fen,
                 "year": year - 1, "period": (year - 1) * 100 + 6, "idempotency_key": f"seed:{p}",
                 "posted_at": now, "posted_by": "t"} for p, fen in opening.items()])
            session.add(InterestRate(year=year, rate="0.03", set_at=now, set_by="t"))
            session.commit()
        with context.trace(actor=context.Actor(id="t.accountant", role="accountant", region=REGION)):
            run = ledger_service.run_interest(engine, year, batch_size=n)
        assert (run.accounts, run.credited, run.batches) == (n, n, 1)
        events = [e for e in outbox(accounts) if e["type"].startswith("accounts.account.")]
        assert [(e["type"], len(e["entries"])) for e in events] == [("accounts.account.credited.v2", 1000)] * 2 + [
            ("accounts.account.credited.v2", 500)]
        reported = {c["person_id"]: c for e in events for c in e["entries"]}
        assert len(reported) == n
        for p, fen in opening.items():
            expected = interest.yearly_interest_fen(rate=Decimal("0.03"), opening_balance_fen=fen, movements=[])
            c = reported[p]
            assert (c["amount_fen"], c["balance_fen"], c["entry_type"], c["idempotency_key"], c["period"]) == \
                (expected, fen + expected, "interest", f"interest:{year}:{p}", None)
            assert cached_balance(accounts, p) == fen + expected
        assert_ledger_holds(accounts, persons[-1]["id"])
        with Session(engine) as session:
            audited = session.execute(select(func.count()).select_from(AuditEntry)
                                      .where(AuditEntry.action == "individual_account.interest")).scalar_one()
            assert session.get(IndividualAccount, persons[0]["id"]).version == 2
        assert audited == n
        assert verify_chain(engine).ok
        with context.trace(actor=context.Actor(id="t.accountant", role="accountant", region=REGION)):
            assert ledger_service.run_interest(engine, year).already_credited == n  # credits and reports nothing
        assert len([e for e in outbox(accounts) if e["type"].startswith("accounts.account.")]) == 3


async def test_interest_run_covers_only_open_accounts_of_the_callers_area(start_service, accountant, auth):
    async with start_service("accounts") as accounts:
        here, _ = add_person(accounts, 1)
        there, _ = add_person(accounts, 2, region=OTHER_DISTRICT)
        gone, _ = add_person(accounts, 3)
        for person, key in ((here, "h"), (there, "t"), (gone, "g")):
            await contribute(accounts, accountant, person, "1000.00", 202401, key)
        await post(accounts, accountant, gone, "withdrawals", {"reason": "settlement", "reference": "JS-1"}, "gw")
        await accounts.put("/individual-accounts/interest-rates/2024", headers=accountant, json={"rate": "0.03"})
        district = auth("accountant", region=REGION)
        result = (await accounts.post("/individual-accounts/interest-runs", headers=district,
                                      json={"year": 2024})).json()
        assert (result["accounts"], result["credited"], result["total_interest"]) == (1, 1, "27.50")  # 3 % × 11/12
        city = (await accounts.post("/individual-accounts/interest-runs", headers=accountant,
                                    json={"year": 2024})).json()
        assert (city["accounts"], city["credited"], city["already_credited"]) == (2, 1, 1)
        assert cached_balance(accounts, gone) == 0


async def test_concurrent_postings_neither_double_nor_overdraw(start_service, accountant):
    """Requests run in parallel worker threads (truly concurrent transactions on PostgreSQL)."""
    import asyncio  # noqa: PLC0415

    async with start_service("accounts") as accounts:
        person_id, _ = add_person(accounts)
        same_key = await asyncio.gather(*[
            accounts.post(f"/individual-accounts/{person_id}/contributions", headers=keyed(accountant, "once"),
                          json={"amount": "500.00", "period": 202401})
            for _ in range(8)
        ])
        assert sorted(r.status_code for r in same_key) == [200] * 7 + [201]
        assert len({r.json()["entry"]["id"] for r in same_key}) == 1
        assert cached_balance(accounts, person_id) == 50000

        debits = await asyncio.gather(*[
            accounts.post(f"/individual-accounts/{person_id}/transfers-out", headers=keyed(accountant, f"out-{i}"),
                          json={"amount": "150.00", "document_ref": f"ZY-{i}"})
            for i in range(8)
        ])
        statuses = sorted(r.status_code for r in debits)
        assert statuses == [201] * 3 + [409] * 5
        assert {error_code(r) for r in debits if r.status_code == 409} == {"INSUFFICIENT_BALANCE"}
        assert cached_balance(accounts, person_id) == 5000
        assert_ledger_holds(accounts, person_id)
