"""The money-in flow (征缴) through the gateway, with accounts and collection under uvicorn and a
real nats-server between them.

The agency's accountant proposes the rates and bases and another person (the approver) approves them; the clerk
registers two employers and five persons in accounts and enrols them in PEN_EMP, UNEMP and INJURY; collection's
registry mirror receives them from the ACCOUNTS stream (waited for); each employer declares 2026-09 and is assessed;
the tax bureau's system (a client token) posts employer A's payments — and a cash line, refused — but not B's;
finance registers the special accounts, records the treasury remittances and their receipts; accounts posts the
collected lines from the COLLECTION stream (waited for).

Then: individual accounts hold exactly the individual pension parts; for every fund of 2026-09 the three legs agree
(TAX = FINANCE = AGENCY); employer B is in arrears with the late fee hand-computed to the fen; a movement that breaks a
usage rule of the special account is refused.

How each leg is read:

- TAX: ``GET /api/collection/tax-payments/batches/{id}`` (the batch summary's totals per fund × period: the lines the
  bureau reported collected and collection accepted), as the tax bureau's client;
- FINANCE: ``GET /api/collection/treasury/transactions?account_id=<special account>`` — the receipts (purpose
  ``receipt``) into each fund's special account whose remittance is for the period, as the finance officer;
- AGENCY: accounts has no posting-summary endpoint, so the lines of the ``accounts.contributions.posted.v1`` events are
  read from the accounts outbox (each row checked published to JetStream), summed per fund × period; their grand
  total is cross-checked against the ``contributions.post`` audit entries read through the gateway
  (``/api/accounts/audit/entries``, internal auditor) and the pension credits against the individual accounts'
  ledger entries (``/api/accounts/individual-accounts/{person}/entries``). The agency posts principal (employer and
  individual parts), not late fees; A paid before the due date, so no late fee is in any leg.
"""

import json
from contextlib import AsyncExitStack
from decimal import Decimal

from sqlalchemy import create_engine, select
from sqlmodel import Session

from services.kernel.events import plain_data
from services.kernel.models import OutboxMessage
from services.kernel.service_app import create_service_app
from sifund import services as catalogue
from tests.support.collection import document
from tests.support.payments import tax_headers
from tests.support.collection import account_no
from tests.support.apps import bearer
from tests.support.e2e import DISTRICT, citizen_id, eventually, uscc
from tests.support.gateway import gateway_client, serve

CITY = "150100"  # the pooling region: the parameter sets are configured for it
PERIOD = 202609
DUE = "2026-10-15"  # due_day 15 of the following month (the default document)
PAID_ON = "2026-10-12"  # A pays before the due date: no late fee
AS_OF = "2026-11-14"  # 30 days after the due date
FUNDS = ("PEN_EMP", "UNEMP", "INJURY")
POSTED = "accounts.contributions.posted.v2"

# Average wage 8 000.00 → floor 4 800.00, cap 24 000.00 (base_floor_ratio 0.6, base_cap_ratio 3.0).
EMPLOYER_A = [  # (birth date, serial, name, declared base)
    ("19850101", 11, "张三", "6523.35"),
    ("19870505", 22, "李四", "4000.00"),  # below the floor: assessed on 4 800.00
    ("19900909", 31, "王五", "30000.00"),  # above the cap: assessed on 24 000.00
]
EMPLOYER_B = [
    ("19880808", 41, "赵六", "6004.16"),
    ("19920202", 52, "钱七", "5000.00"),
]
# The individual pension part (8 %) of each of A's persons, rounded half-up once:
#   张三 652 335 fen × 0.08 = 52 186.8 → 52 187 fen = 521.87
#   李四 480 000 fen × 0.08 = 38 400 fen = 384.00 (the floor)
#   王五 2 400 000 fen × 0.08 = 192 000 fen = 1 920.00 (the cap)
CREDITS = {"张三": "521.87", "李四": "384.00", "王五": "1920.00"}


def _fen(amount: str | Decimal) -> int:
    return int(Decimal(amount) * 100)


def _yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


async def test_money_in_flow_through_the_gateway(settings, make_settings, nats_server):
    async with AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(serve(create_service_app(catalogue.spec(name), settings)))
                for name in ("accounts", "collection")}
        gateway = await stack.enter_async_context(gateway_client(make_settings(
            nats_server.url, accounts_url=urls["accounts"], collection_url=urls["collection"])))
        clerk = bearer(settings, "agency_clerk", region=DISTRICT, subject="clerk.wang")
        accountant = bearer(settings, "accountant", region=CITY, subject="acct.li")
        approver = bearer(settings, "agency_approver", region=CITY, subject="approver.zhao")
        finance = bearer(settings, "finance_officer", region=CITY, subject="fin.sun")
        auditor = bearer(settings, "internal_auditor", region=CITY, subject="audit.zhou")
        tax = tax_headers(settings)

        async def call(method: str, path: str, headers: dict, expected: int = 200, **kwargs):  # noqa: ANN202
            response = await gateway.request(method, f"/api{path}", headers=headers, **kwargs)
            assert response.status_code == expected, f"{method} {path}: {response.status_code} {response.text}"
            return response.json()

        # -- 1. rates and bases: proposed by the accountant, approved by someone else -----------------------------
        proposed = await call("POST", "/collection/parameters", accountant, 201, json={
            "region": CITY, "valid_from": 202601, "document": document(), "reason": "2026 年度费率基数"})
        self_approval = await gateway.post(f"/api/collection/parameters/{proposed['id']}/approve",
                                           headers=bearer(settings, "agency_approver", region=CITY,
                                                          subject="acct.li"), json={"reason": "同意"})
        assert self_approval.status_code == 403, self_approval.text  # the proposer cannot approve their own set
        assert self_approval.json()["error"]["code"] == "SAME_PERSON_CANNOT_APPROVE"
        approved = await call("POST", f"/collection/parameters/{proposed['id']}/approve", approver,
                              json={"reason": "同意"})
        assert (approved["status"], approved["decided_by"]) == ("approved", "approver.zhao")

        # -- 2. the registry: two employers, five persons, enrolled in three funds (accounts API) ------------------
        employers = {
            "A": await call("POST", "/accounts/employers", clerk, 201, json={
                "uscc": uscc(101), "name": "甲制造有限公司", "region": DISTRICT, "industry_risk_class": 2}),
            "B": await call("POST", "/accounts/employers", clerk, 201, json={
                "uscc": uscc(102), "name": "乙商贸有限公司", "region": DISTRICT, "industry_risk_class": 1}),
        }
        persons: dict[str, dict] = {}  # name → person
        for key, staff in (("A", EMPLOYER_A), ("B", EMPLOYER_B)):
            for birth, serial, name, _base in staff:
                person = await call("POST", "/accounts/persons", clerk, 201, json={
                    "citizen_id": citizen_id(birth, serial), "name": name, "region": DISTRICT})
                persons[name] = person
                for fund in FUNDS:
                    await call("POST", "/accounts/enrolments", clerk, 201, json={
                        "person_id": person["id"], "fund": fund, "employer_id": employers[key]["id"],
                        "start_period": 202601})

        async def mirrored(key: str, staff: list) -> None:
            async def enrolments():  # noqa: ANN202
                return await gateway.get(f"/api/collection/registry/employers/{employers[key]['id']}/enrolments",
                                         headers=clerk)

            await eventually(enrolments, lambda r: r.status_code == 200 and len(r.json()["items"]) == 3 * len(staff),
                             timeout=30)

        await mirrored("A", EMPLOYER_A)
        await mirrored("B", EMPLOYER_B)

        # -- 3. declarations and assessments ------------------------------------------------------------------------
        issued = {}
        for key, staff in (("A", EMPLOYER_A), ("B", EMPLOYER_B)):
            result = await call("POST", f"/collection/employers/{employers[key]['id']}/declarations", clerk, 201,
                                json={"period": PERIOD, "lines": [{"person_id": persons[name]["id"], "base": base}
                                                                  for _b, _s, name, base in staff]})
            assert result["assessment"]["due_date"] == DUE and result["assessment"]["lines"] == 3 * len(staff)
            detail = await call("GET", f"/collection/assessments/{result['assessment']['id']}", clerk,
                                params={"limit": 1000})
            issued[key] = detail["items"]
        assert len(issued["A"]) == 9 and len(issued["B"]) == 6
        by_person_fund = {(ln["person_id"], ln["fund"]): ln for ln in issued["A"] + issued["B"]}
        for name, credit in CREDITS.items():
            assert by_person_fund[(persons[name]["id"], "PEN_EMP")]["individual_amount"] == credit
        assert by_person_fund[(persons["李四"]["id"], "PEN_EMP")]["base"] == "4800.00"
        assert by_person_fund[(persons["王五"]["id"], "PEN_EMP")]["base"] == "24000.00"

        # -- 4. the tax bureau posts A's payments: person lines for PEN_EMP and UNEMP, one employer-level INJURY line
        citizen_of = {persons[name]["id"]: citizen_id(birth, serial) for birth, serial, name, _ in EMPLOYER_A}
        lines = []
        for ln in issued["A"]:
            if ln["fund"] == "INJURY":
                continue
            lines.append({"tax_line_id": f"SW-{len(lines) + 1:04d}", "payer_uscc": uscc(101),
                          "citizen_id": citizen_of[ln["person_id"]], "fund": ln["fund"], "period": PERIOD,
                          "employer_amount": ln["employer_amount"], "individual_amount": ln["individual_amount"],
                          "method": "bank_withholding", "voucher_no": "PZ-A-202609", "paid_date": PAID_ON})
        injury_a = sum(_fen(ln["employer_amount"]) for ln in issued["A"] if ln["fund"] == "INJURY")
        lines.append({"tax_line_id": "SW-0007", "payer_uscc": uscc(101), "fund": "INJURY", "period": PERIOD,
                      "employer_amount": _yuan(injury_a), "individual_amount": "0.00", "method": "bank_transfer",
                      "voucher_no": "PZ-A-202609", "paid_date": PAID_ON})
        # B's cash: refused whatever else it says (002 四), so it is in no leg.
        lines.append({"tax_line_id": "SW-0008", "payer_uscc": uscc(102), "fund": "PEN_EMP", "period": PERIOD,
                      "employer_amount": "100.00", "individual_amount": "0.00", "method": "cash",
                      "voucher_no": "PZ-B-CASH", "paid_date": PAID_ON})
        batch = await call("POST", "/collection/tax-payments/batches", tax, 201, json={"lines": lines})
        assert (batch["lines"], batch["accepted"], batch["matched"], batch["rejected"]) == (8, 7, 7, 1)
        assert batch["rejections"][0]["code"] == "REFUSED_PAYMENT_METHOD"
        summary = await call("GET", f"/collection/tax-payments/batches/{batch['id']}", tax)
        tax_leg = {(t["fund"], t["period"]): _fen(t["employer_amount"]) + _fen(t["individual_amount"])
                   + _fen(t["late_fee_amount"]) for t in summary["totals"]}
        assert all(_fen(t["late_fee_amount"]) == 0 for t in summary["totals"])
        assessed_a = {fund: sum(_fen(ln["employer_amount"]) + _fen(ln["individual_amount"])
                                for ln in issued["A"] if ln["fund"] == fund) for fund in FUNDS}
        assert tax_leg == {(fund, PERIOD): assessed_a[fund] for fund in FUNDS}
        a_lines = (await call("GET", "/collection/assessments", clerk,
                              params={"employer_id": employers["A"]["id"], "period": PERIOD}))["items"]
        a_detail = await call("GET", f"/collection/assessments/{a_lines[0]['id']}", clerk, params={"limit": 1000})
        assert {ln["status"] for ln in a_detail["items"]} == {"paid"}

        # -- 5. finance: special accounts, the bureau's remittances to the treasury, their receipts --------------
        special = {}
        for fund in FUNDS:
            registered = await call("POST", "/collection/treasury/accounts", finance, 201, json={
                "kind": "special", "fund": fund, "bank_name": "中国工商银行呼和浩特分行",
                "account_no": account_no("special", fund), "opened_on": "2020-01-06",
                "opening_approval_ref": f"内财社〔2020〕{FUNDS.index(fund) + 1}号",
                "annual_inspection_due": "2027-03-31"})
            special[fund] = registered["account"]
        for fund in FUNDS:
            remitted = (await call("POST", "/collection/treasury/remittances", finance, 201, json={
                "fund": fund, "period": PERIOD, "amount": _yuan(tax_leg[(fund, PERIOD)]), "remitted_on": "2026-10-16",
                "voucher_no": f"GK-{fund}-202609"}))["remittance"]
            # PEN_EMP arrives in two parts (sum of receipts), the others at once; all within 10 working days.
            parts = ([tax_leg[(fund, PERIOD)] - 100_000, 100_000] if fund == "PEN_EMP" else [tax_leg[(fund, PERIOD)]])
            for i, amount in enumerate(parts):
                await call("POST", "/collection/treasury/receipts", {**finance, "Idempotency-Key": f"R-{fund}-{i}"},
                           201, json={"remittance_id": remitted["id"], "amount": _yuan(amount),
                                      "value_date": f"2026-10-2{i}", "reference": f"BK-{fund}-{i}"})
            after = await call("GET", f"/collection/treasury/remittances/{remitted['id']}", finance)
            assert (after["status"], after["unreceived"]) == ("received", "0.00")

        # A usage-rule violation through the gateway: the special account pays a beneficiary directly (U5: it may
        # only allocate to the expenditure account of its fund, or return to the treasury with a reference).
        balance_before = (await call("GET", f"/collection/treasury/accounts/{special['PEN_EMP']['id']}", finance)
                          )["balance"]
        refused = await gateway.post("/api/collection/treasury/transactions",
                                     headers={**finance, "Idempotency-Key": "U5-direct-payment"}, json={
                                         "account_id": special["PEN_EMP"]["id"], "direction": "out",
                                         "amount": "1000.00", "counterparty": "beneficiary", "purpose": "payment",
                                         "value_date": "2026-10-23", "reference": "直接支付待遇"})
        assert refused.status_code == 409, refused.text
        error = refused.json()["error"]
        assert error["code"] == "USAGE_RULE_VIOLATION" and "000 二" in error["message"]
        assert "U5" in [v["rule"] for v in error["details"]["violations"]]
        assert (await call("GET", f"/collection/treasury/accounts/{special['PEN_EMP']['id']}", finance)
                )["balance"] == balance_before == _yuan(tax_leg[("PEN_EMP", PERIOD)])

        finance_leg: dict[tuple[str, int], int] = {}
        for fund in FUNDS:
            page = await call("GET", "/collection/treasury/transactions", finance,
                              params={"account_id": special[fund]["id"], "limit": 1000})
            for t in page["items"]:
                if (t["direction"], t["purpose"], t["status"], t["period"]) == ("in", "receipt", "accepted", PERIOD):
                    assert t["late"] is False and t["deadline"] == "2026-10-30"  # 10 working days
                    finance_leg[(fund, t["period"])] = finance_leg.get((fund, t["period"]), 0) + _fen(t["amount"])

        # -- 6. the agency's posting, from the COLLECTION stream ----------------------------------------------------
        accounts_db = create_engine(settings.database_url("accounts"))
        stack.callback(accounts_db.dispose)

        async def posted_events() -> list[OutboxMessage]:
            with Session(accounts_db) as session:
                return list(session.execute(select(OutboxMessage).where(OutboxMessage.event_type == POSTED)
                                            .order_by(OutboxMessage.seq)).scalars())

        rows = await eventually(posted_events,
                                lambda rs: sum(len(json.loads(r.envelope)["data"]["lines"]) for r in rs) == 7
                                and all(r.published_at is not None for r in rs), timeout=30)
        posted = [ln for r in rows for ln in plain_data(POSTED, json.loads(r.envelope)["data"])["lines"]]
        assert len({ln["payment_id"] for ln in posted}) == batch["accepted"] == 7  # every stored line, once
        [employer_level] = [ln for ln in posted if ln["fund"] == "INJURY"]
        assert (employer_level["person_id"], employer_level["employer_id"], employer_level["credited_fen"]) == (
            None, employers["A"]["id"], 0)
        agency_leg: dict[tuple[str, int], int] = {}
        for ln in posted:
            agency_leg[(ln["fund"], ln["period"])] = (agency_leg.get((ln["fund"], ln["period"]), 0)
                                                      + ln["employer_fen"] + ln["individual_fen"])
        held = await call("GET", "/accounts/postings/suspense/summary", auditor)
        assert held == []

        # Cross-checks of the AGENCY leg through the gateway: the audit entries of the posting pass …
        audit = await call("GET", "/accounts/audit/entries", auditor,
                           params={"entity_type": "payment_batch", "entity_id": batch["id"], "limit": 1000})
        posting_passes = [json.loads(e["detail"]) if isinstance(e["detail"], str) else e["detail"]
                          for e in audit if e["action"] == "contributions.post"]
        assert sum(p["posted"] for p in posting_passes) == 7 and sum(p["held"] for p in posting_passes) == 0
        assert sum(p["employer_fen"] + p["individual_fen"] for p in posting_passes) == sum(agency_leg.values())
        assert sum(p["employer_level"] for p in posting_passes) == 1  # the INJURY line

        # … and the individual accounts: exactly the individual pension part of each of A's persons, nothing else.
        credited_total = 0
        for name, credit in CREDITS.items():
            person_id = persons[name]["id"]
            account = await call("GET", f"/accounts/individual-accounts/{person_id}", clerk)
            assert (account["balance"], account["status"]) == (credit, "open")
            entries = (await call("GET", f"/accounts/individual-accounts/{person_id}/entries", clerk))["items"]
            assert [(e["entry_type"], e["amount"], e["period"]) for e in entries] == [("contribution", credit, PERIOD)]
            assert (await call("GET", f"/accounts/individual-accounts/{person_id}/verify", clerk))["consistent"]
            credited_total += _fen(credit)
        assert credited_total == sum(ln["credited_fen"] for ln in posted)
        assert credited_total == sum(_fen(ln["individual_amount"]) for ln in issued["A"] if ln["fund"] == "PEN_EMP")
        for name in ("赵六", "钱七"):  # B has not paid: nothing credited
            missing = await gateway.get(f"/api/accounts/individual-accounts/{persons[name]['id']}", headers=clerk)
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "ACCOUNT_NOT_FOUND"

        # -- 7. the three legs agree for every fund of the period ----------------------------------------------------
        assert set(tax_leg) == set(finance_leg) == set(agency_leg) == {(fund, PERIOD) for fund in FUNDS}
        for key in tax_leg:
            assert tax_leg[key] == finance_leg[key] == agency_leg[key], (key, tax_leg[key], finance_leg[key],
                                                                        agency_leg[key])

        # -- 8. B did not pay: arrears and the late fee, 30 days after the due date ----------------------------------
        # 赵六, PEN_EMP, base 6 004.16 yuan = 600 416 fen:
        #   employer part   600 416 × 0.16 = 96 066.56 → 96 067 fen
        #   individual part 600 416 × 0.08 = 48 033.28 → 48 033 fen
        #   principal       96 067 + 48 033 = 144 100 fen = 1 441.00 yuan
        #   days            2026-10-15 (due) → 2026-11-14: 30 days
        #   late fee        144 100 × 0.0005 × 30 = 2 161.5 fen → 2 162 fen (half-up, once) = 21.62 yuan
        # Its other lines: UNEMP 3 002 + 3 002 = 6 004 fen → 6 004 × 0.015 = 90.06 → 90 fen;
        #   INJURY (class 1, 0.2 %) 1 200.832 → 1 201 fen → 1 201 × 0.015 = 18.015 → 18 fen.
        # 钱七, base 5 000.00: PEN_EMP 80 000 + 40 000 = 120 000 fen → 1 800 fen;
        #   UNEMP 2 500 + 2 500 = 5 000 fen → 75 fen; INJURY 1 000 fen → 15 fen.
        # B: principal 144 100 + 6 004 + 1 201 + 120 000 + 5 000 + 1 000 = 277 305 fen = 2 773.05 yuan;
        #    late fee 2 162 + 90 + 18 + 1 800 + 75 + 15 = 4 160 fen = 41.60 yuan (a sum of rounded lines).
        report = await call("GET", "/collection/arrears", clerk,
                            params={"employer_id": employers["B"]["id"], "as_of": AS_OF})
        assert report["daily_rate"] == "0.0005"
        [b] = report["employers"]
        zhao = next(ln for ln in b["lines"] if ln["person_id"] == persons["赵六"]["id"] and ln["fund"] == "PEN_EMP")
        assert (zhao["principal"], zhao["principal_outstanding"], zhao["days_late"]) == ("1441.00", "1441.00", 30)
        assert (zhao["open_segment"]["days"], zhao["open_segment"]["principal"]) == (30, "1441.00")
        assert Decimal(zhao["open_segment"]["exact_fee"]) == Decimal("21.615")
        assert (zhao["late_fee"], zhao["total"]) == ("21.62", "1462.62")
        fees = {(ln["person_id"], ln["fund"]): ln["late_fee"] for ln in b["lines"]}
        assert fees == {
            (persons["赵六"]["id"], "PEN_EMP"): "21.62", (persons["赵六"]["id"], "UNEMP"): "0.90",
            (persons["赵六"]["id"], "INJURY"): "0.18", (persons["钱七"]["id"], "PEN_EMP"): "18.00",
            (persons["钱七"]["id"], "UNEMP"): "0.75", (persons["钱七"]["id"], "INJURY"): "0.15",
        }
        assert (b["line_count"], b["principal_outstanding"], b["late_fee"], b["total"]) == (
            6, "2773.05", "41.60", "2814.65")
        in_arrears = await call("GET", "/collection/arrears/employers", clerk, params={"as_of": AS_OF})
        assert [e["employer_id"] for e in in_arrears["items"]] == [employers["B"]["id"]]  # A paid in time
        # A clerk of another district (回民区) reads neither B's arrears nor B in the list.
        huimin = bearer(settings, "agency_clerk", region="150103", subject="clerk.ma")
        elsewhere = await gateway.get("/api/collection/arrears", headers=huimin,
                                      params={"employer_id": employers["B"]["id"], "as_of": AS_OF})
        assert elsewhere.status_code == 403 and elsewhere.json()["error"]["code"] == "OUT_OF_REGION"
        assert (await call("GET", "/collection/arrears/employers", huimin, params={"as_of": AS_OF}))["items"] == []
