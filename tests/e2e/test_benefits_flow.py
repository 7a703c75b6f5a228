"""The money-out flow (待遇) through the gateway, with accounts, collection and benefits under
uvicorn and a real nats-server between them.

1. A retirement claim (basic_pension) for 张建国, who has 15 years of contribution history and an individual account
   balance, is submitted by a clerk, verified online (benefits asks accounts over HTTP with the clerk's token), and
   decided at three levels by three different people (初审 reviewer.wu, 复审 reviewer.zheng, 审批 approver.wang); the
   same person at two levels is refused. The monthly pension equals the hand calculation below. A second pensioner,
   李秀英 (a woman in a worker post, 50), is granted the same way so that the payroll has two beneficiaries.
2. The payroll of 2026-07 is computed (clerk), approved by another person, funded (accountant), a bank file issued
   (cashier) into each person's own account; the bank's result file (bank_system client) reports 李秀英's payment
   failed; her account is corrected in accounts (old one closed, new one added; benefits mirrors both), the line is
   re-issued in a second file and paid. Nothing is paid twice. 2026-08 is then paid to both.
3. A death record for 张建国 (died 2026-07-20) uploaded by the civil-affairs partner system suspends his benefit in
   benefits (mirrored from accounts' events), and the 2026-08 payment already made becomes an overpayment on a
   recovery notice; 2026-07 (the month of death) is not an overpayment, and 2026-09 pays 李秀英 alone.

How the contribution history is built (the cheapest honest way):

- contribution index (benefits): 2026-01…2026-06 (6 months) go through collection — the accountant proposes the
  contribution parameters (average wage 8 000.00), another person approves them, the clerk declares each month and
  collection assesses it; benefits mirrors the approved parameters and the PEN_EMP assessment lines into its
  contribution index from the COLLECTION stream (waited for). The 174 earlier months (2011-07…2025-12, before these
  services existed) are **inserted directly as ContributionIndex rows into benefits' database**;
- contribution months and individual account balance (accounts): **every one of the 180 months is posted through the
  accounts ledger API** (``POST /individual-accounts/{person}/contributions``, accountant, one idempotent posting per
  month with the 8 % individual part), which credits the individual account and records the ContributionMonth row
  that accounts' online verification counts. No interest is credited (no 记账利率 is set), so the balance is the plain
  sum of the postings.

Everything else — persons, enrolments, payment accounts, parameters, claims, decisions, payroll, bank files and
results, the death record — goes through the gateway's APIs.
"""

import asyncio
import hashlib
import json
import time
from collections import Counter
from contextlib import AsyncExitStack
from datetime import date
from decimal import Decimal

from sqlalchemy import create_engine, func, select
from sqlmodel import Session

from services.benefits.models import BankFileLine, ContributionIndex
from services.benefits.payroll import bankfile
from services.kernel.events import new_event_id
from services.kernel.periods import add_months, months_between
from services.kernel.service_app import create_service_app
from sifund import services as catalogue
from tests.support.registry import make_card, make_citizen_id
from tests.support.exchange import partner_headers
from tests.support.benefits import benefit_document
from tests.support.collection import document as contribution_document
from tests.support.apps import bearer
from tests.support.archives import PURPOSE, export_package, unzipped, zipped
from tests.support.e2e import DISTRICT, eventually, uscc
from tests.support.gateway import gateway_client, serve
from tests.support.e2e import bank_headers

CITY = "150100"  # the pooling region: both parameter sets are configured for it
FUND = "PEN_EMP"
EFFECTIVE = 202607  # first month of both pensions
JULY, AUGUST, SEPTEMBER = 202607, 202608, 202609
DEATH_DATE = "2026-07-20"

CLERK, CLERK_2 = "clerk.zhou", "clerk.qin"
REVIEWER_1, REVIEWER_2, APPROVER = "reviewer.wu", "reviewer.zheng", "approver.wang"
PAYROLL_APPROVER = "approver.feng"

# The history segments: (first period, last period, average monthly wage of the year, fen). The last segment is the
# one assessed through collection (its wage is the approved contribution parameters' 8 000.00).
HISTORY = [(201107, 202012, 500_000), (202101, 202512, 700_000)]
COLLECTED = (202601, 202606, 800_000)

# The two pensioners. Bases per segment in fen (history, history, collection — declared; 李秀英's 4 000.00 is below
# the floor 4 800.00 = 0.6 × 8 000.00 and is assessed on the floor).
PEOPLE = {
    "张建国": {"born": date(1966, 6, 15), "sex": "M", "serial": 61, "bases": (400_000, 1_050_000, 1_200_000),
             "declared": "12000.00", "card": ("ss_card", 9101)},
    "李秀英": {"born": date(1976, 3, 8), "sex": "F", "serial": 62, "bases": (300_000, 420_000, 480_000),
             "declared": "4000.00", "card": ("bank_account", 9102), "post_type": "worker"},
}

# -- the hand calculation ----------------------------------------------------------------------------------------------
# Benefit parameters: prior-year average monthly wage W = 8 500.00 yuan = 850 000 fen, 1 % per year of contribution.
# Contribution months (accounts, 2011-07…2026-06): 114 + 60 + 6 = 180 → 15 years.
#
# 张建国 (man, born 1966-06-15: 60 on 2026-07-01 → 计发月数 139)
#   index  114 × (4 000 ÷ 5 000 = 0.8) + 60 × (10 500 ÷ 7 000 = 1.5) + 6 × (12 000 ÷ 8 000 = 1.5)
#        = 91.2 + 90 + 9 = 190.2;  average index = 190.2 ÷ 180 = 1.0566…
#   基础养老金 = (W + W × 190.2/180) ÷ 2 × 15 × 1 % = 850 000 × 370.2/360 × 0.15 = 47 200 500 ÷ 360
#             = 131 112.5 fen → 131 113 fen (half-up, once: exactly half a fen rounds up)
#   individual account: 8 % of each month's base, posted monthly
#             114 × 320.00 + 60 × 840.00 + 6 × 960.00 = 36 480 + 50 400 + 5 760 = 92 640.00 yuan
#   个人账户养老金 = 9 264 000 ÷ 139 = 66 647.48… fen → 66 647 fen
#   monthly pension = 131 113 + 66 647 = 197 760 fen = 1 977.60 yuan
#
# 李秀英 (woman in a worker post, born 1976-03-08: 50 on 2026-07-01 → 计发月数 195)
#   index  114 × (3 000 ÷ 5 000) + 60 × (4 200 ÷ 7 000) + 6 × (4 800 ÷ 8 000) = 180 × 0.6 = 108; average 0.6
#   基础养老金 = 850 000 × (1 + 0.6) ÷ 2 × 15 × 1 % = 102 000 fen (exact)
#   individual account  114 × 240.00 + 60 × 336.00 + 6 × 384.00 = 27 360 + 20 160 + 2 304 = 49 824.00 yuan
#   个人账户养老金 = 4 982 400 ÷ 195 = 25 550.769… fen → 25 551 fen
#   monthly pension = 102 000 + 25 551 = 127 551 fen = 1 275.51 yuan
EXPECTED = {
    "张建国": {"index_sum": "190.2", "basic_exact": "131112.5", "basic": 131_113, "balance": "92640.00",
             "account_exact": {"value": "66647.4820143885…", "exact": "9264000/139"}, "account": 66_647,
             "divisor": 139, "age": 60, "monthly_fen": 197_760, "monthly": "1977.60"},
    "李秀英": {"index_sum": "108", "basic_exact": "102000", "basic": 102_000, "balance": "49824.00",
             "account_exact": {"value": "25550.7692307692…", "exact": "332160/13"}, "account": 25_551,
             "divisor": 195, "age": 50, "monthly_fen": 127_551, "monthly": "1275.51"},
}
POSTING_LANES = 8  # concurrent ledger postings (each is its own transaction in accounts)
RUN_TOTAL = "3253.11"  # 1 977.60 + 1 275.51


def periods(first: int, last: int) -> list[int]:
    return [add_months(first, i) for i in range(months_between(first, last))]


def _fen(amount: str) -> int:
    return int(Decimal(amount) * 100)


def _yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def step(claim: dict, name: str):  # noqa: ANN201
    return next(s["value"] for s in claim["computation"]["steps"] if s["step"] == name)


async def test_benefits_flow_through_the_gateway(settings, make_settings, nats_server):  # noqa: PLR0915
    timings: dict[str, float] = {}
    started = mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        timings[name] = round(now - mark, 2)
        mark = now

    async with AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(serve(create_service_app(catalogue.spec(name), settings)))
                for name in ("accounts", "collection")}
        # Benefits verifies claims online with accounts (app.state.http → accounts_url).
        urls["benefits"] = await stack.enter_async_context(serve(create_service_app(
            catalogue.spec("benefits"), make_settings(nats_server.url, accounts_url=urls["accounts"]))))
        gateway = await stack.enter_async_context(gateway_client(make_settings(
            nats_server.url, **{f"{name}_url": url for name, url in urls.items()})))
        benefits_db = create_engine(settings.database_url("benefits"))
        stack.callback(benefits_db.dispose)

        def staff(role: str, subject: str, region: str = CITY) -> dict[str, str]:
            return bearer(settings, role, region=region, subject=subject)

        clerk = staff("agency_clerk", CLERK, DISTRICT)
        accountant = staff("accountant", "acct.li")
        approver = staff("agency_approver", APPROVER)
        cashier = staff("cashier", "cashier.sun")
        reviewer_1, reviewer_2 = staff("agency_reviewer", REVIEWER_1), staff("agency_reviewer", REVIEWER_2)
        auditor = staff("internal_auditor", "audit.zhou")
        bank = bank_headers(settings)
        partner = partner_headers(settings, subject="civil_affairs")

        async def call(method: str, path: str, headers: dict, expected: int = 200, **kwargs):  # noqa: ANN202
            response = await gateway.request(method, f"/api{path}", headers=headers, **kwargs)
            assert response.status_code == expected, f"{method} {path}: {response.status_code} {response.text}"
            return response.json() if response.headers.get("content-type", "").startswith("application/json") \
                else response.text

        async def refused(method: str, path: str, headers: dict, status: int, code: str, **kwargs) -> dict:
            body = await call(method, path, headers, status, **kwargs)
            assert body["error"]["code"] == code, body
            return body

        lap("start-up")

        # -- 1. parameters: contribution parameters (collection) and benefit parameters (benefits), each proposed by
        #       the accountant and approved by another person --------------------------------------------------------
        proposed = await call("POST", "/collection/parameters", accountant, 201, json={
            "region": CITY, "valid_from": COLLECTED[0], "document": contribution_document(COLLECTED[2]),
            "reason": "2026 年度费率基数"})
        await call("POST", f"/collection/parameters/{proposed['id']}/approve", approver, json={"reason": "同意"})
        proposed = await call("POST", "/benefits/parameters", accountant, 201, json={
            "region": CITY, "valid_from": 202601, "document": benefit_document(average_monthly_wage_fen=850_000),
            "reason": "2026 年度待遇计发参数"})
        await refused("POST", f"/benefits/parameters/{proposed['id']}/approve",
                      staff("agency_approver", "acct.li"), 403, "SAME_PERSON_CANNOT_APPROVE", json={"reason": "同意"})
        await call("POST", f"/benefits/parameters/{proposed['id']}/approve", approver, json={"reason": "同意"})

        # -- 2. the registry (accounts): an employer, two persons enrolled in PEN_EMP since 2011-07, a payment account
        #       each; benefits and collection mirror them from the ACCOUNTS stream ----------------------------------
        employer = await call("POST", "/accounts/employers", clerk, 201, json={
            "uscc": uscc(601), "name": "呼和浩特机械厂", "region": DISTRICT})
        persons: dict[str, dict] = {}
        for name, p in PEOPLE.items():
            # Born in 土默特左旗 (150121): its code has no start year (新城区's starts in 1983, after their births).
            cid = make_citizen_id(p["serial"], born=p["born"], sex=p["sex"], area="150121")
            person = await call("POST", "/accounts/persons", clerk, 201, json={
                "citizen_id": cid, "name": name, "region": DISTRICT})
            await call("POST", "/accounts/enrolments", clerk, 201, json={
                "person_id": person["id"], "fund": FUND, "employer_id": employer["id"],
                "start_period": HISTORY[0][0]})
            kind, card_serial = p["card"]
            account = await call("POST", f"/accounts/persons/{person['id']}/bank-accounts", clerk, 201, json={
                "kind": kind, "bank_name": "中国工商银行呼和浩特分行", "account_no": make_card(card_serial),
                "holder_name": name})
            persons[name] = {**person, "citizen_id": cid, "account": account}
        zhang, li = persons["张建国"], persons["李秀英"]

        async def mirrored_person(person_id: str) -> dict:
            return await eventually(lambda: gateway.get(f"/api/benefits/registry/persons/{person_id}", headers=clerk),
                                    lambda r: r.status_code == 200 and r.json()["accounts"], timeout=30)

        for person in persons.values():
            row = (await mirrored_person(person["id"])).json()
            assert (row["life_status"], row["region"]) == ("alive", DISTRICT)
            assert [(a["bank_account_id"], a["status"], a["payable"]) for a in row["accounts"]] == [
                (person["account"]["id"], "active", True)]
        assert (await call("GET", f"/benefits/registry/persons/{li['id']}", clerk))["sex"] == "F"
        await eventually(lambda: gateway.get(f"/api/collection/registry/employers/{employer['id']}/enrolments",
                                             headers=clerk),
                         lambda r: r.status_code == 200 and len(r.json()["items"]) == 2, timeout=30)
        lap("parameters and registry")

        # -- 3. contribution history ---------------------------------------------------------------------------------
        # 2026-01…2026-06 through collection: declared and assessed; benefits mirrors the PEN_EMP lines.
        assessed: dict[tuple[str, int], dict] = {}
        for period in periods(COLLECTED[0], COLLECTED[1]):
            issued = await call("POST", f"/collection/employers/{employer['id']}/declarations", clerk, 201, json={
                "period": period, "lines": [{"person_id": persons[name]["id"], "base": p["declared"]}
                                            for name, p in PEOPLE.items()]})
            detail = await call("GET", f"/collection/assessments/{issued['assessment']['id']}", clerk)
            for line in detail["items"]:
                assessed[(line["person_id"], period)] = line
        assert {(ln["fund"], ln["base"], ln["individual_amount"]) for k, ln in assessed.items() if k[0] == li["id"]} \
            == {(FUND, "4800.00", "384.00")}  # declared 4 000.00, assessed on the floor
        assert {(ln["fund"], ln["base"], ln["individual_amount"]) for k, ln in assessed.items()
                if k[0] == zhang["id"]} == {(FUND, "12000.00", "960.00")}

        lap("6 declarations")
        # 2011-07…2025-12, before these systems: ContributionIndex rows written straight into benefits' database.
        with Session(benefits_db) as session:
            for name, p in PEOPLE.items():
                for (first, last, wage), base in zip(HISTORY, p["bases"], strict=False):
                    session.add_all(ContributionIndex(person_id=persons[name]["id"], fund=FUND, period=period,
                                                      base_fen=base, average_wage_fen=wage,
                                                      assessment_line_id=new_event_id(), assessment_id=new_event_id())
                                    for period in periods(first, last))
            session.commit()

        # Every month's individual part posted to the individual account through accounts' ledger API (which also
        # records the ContributionMonth that the online verification counts); the collected months post exactly
        # the individual amount collection assessed. Each posting is its own idempotent transaction: the first one
        # of each person opens the account, the other 358 go in a few concurrent lanes.
        postings: list[tuple[str, int, str]] = []  # (person, period, individual part in yuan)
        for name, p in PEOPLE.items():
            person_id = persons[name]["id"]
            months = [(person_id, period, _yuan(base * 8 // 100))
                      for (first, last, _wage), base in zip(HISTORY, p["bases"], strict=False)
                      for period in periods(first, last)]
            months += [(person_id, period, assessed[(person_id, period)]["individual_amount"])
                       for period in periods(COLLECTED[0], COLLECTED[1])]
            assert len(months) == 180
            postings += months
        lanes = asyncio.Semaphore(POSTING_LANES)

        async def post_contribution(person_id: str, period: int, amount: str) -> None:
            async with lanes:
                await call("POST", f"/accounts/individual-accounts/{person_id}/contributions",
                           {**accountant, "Idempotency-Key": f"contribution:{person_id}:{period}"}, 201,
                           json={"amount": amount, "period": period, "fund": FUND, "employer_id": employer["id"],
                                 "reference": f"个人缴费 {period}"})

        opening = {}
        for posting in postings:
            opening.setdefault(posting[0], posting)
        for posting in opening.values():
            await post_contribution(*posting)
        await asyncio.gather(*(post_contribution(*posting) for posting in postings
                               if posting not in opening.values()))
        for name, person in persons.items():
            account = await call("GET", f"/accounts/individual-accounts/{person['id']}", clerk)
            assert (account["balance"], account["status"]) == (EXPECTED[name]["balance"], "open")
            assert (await call("GET", f"/accounts/individual-accounts/{person['id']}/verify", clerk))["consistent"]
        lap("360 ledger postings")

        # Benefits' index: 174 rows inserted + 6 mirrored from collection's assessments (wage 8 000.00).
        for name in PEOPLE:
            index = (await eventually(
                lambda name=name: gateway.get(f"/api/benefits/registry/persons/{persons[name]['id']}"
                                              "/contribution-index", headers=clerk),
                lambda r: r.status_code == 200 and r.json()["months"] == 180, timeout=30)).json()
            collected = [m for m in index["items"] if m["period"] >= COLLECTED[0]]
            assert [m["period"] for m in collected] == periods(COLLECTED[0], COLLECTED[1])
            assert {(m["average_wage"], m["assessment_line_id"]) for m in collected} == {
                ("8000.00", assessed[(persons[name]["id"], m["period"])]["id"]) for m in collected}
            assert Decimal(index["index_sum"]) == Decimal(EXPECTED[name]["index_sum"])
        lap("contribution index mirrored")

        # -- 4. the retirement claims: verified online, three levels by three different people ----------------------
        async def decide(claim_id: str, headers: dict, expected: int = 200, **extra):  # noqa: ANN202
            return await call("POST", f"/benefits/claims/{claim_id}/decisions", headers, expected,
                              json={"decision": "approve", "reason": "材料齐全，同意", **extra})

        claims: dict[str, dict] = {}
        for name, p in PEOPLE.items():
            body = {"kind": "basic_pension", "person_id": persons[name]["id"], "effective_period": EFFECTIVE,
                    "note": "本人申请按月领取基本养老金"}
            if "post_type" in p:
                body["post_type"] = p["post_type"]
            claim = await call("POST", "/benefits/claims", clerk, 201, json=body)
            want = EXPECTED[name]
            assert claim["status"] == "in_review" and claim["blocked_checks"] == [], claim
            # online verification: accounts answered for the clerk (enrolment, 180 months, the balance)
            verification = claim["verification"]
            assert verification["source"] == "accounts" and all(c["ok"] for c in verification["checks"])
            assert (verification["enrolment"]["enrolled"], verification["enrolment"]["person_id"]) == (
                True, persons[name]["id"])
            assert (verification["contribution_months"]["months"], verification["months_until"]) == (180, 202606)
            assert verification["individual_account"]["balance"] == want["balance"]
            # the computation, step by step, against the hand calculation
            inputs = claim["computation"]["inputs"]
            assert (inputs["average_monthly_wage_fen"], inputs["contribution_months"], inputs["index_months"],
                    inputs["account_balance_fen"], inputs["account_divisor"], inputs["retirement_age"]) == (
                850_000, 180, 180, _fen(want["balance"]), want["divisor"], want["age"])
            assert step(claim, "index_sum") == want["index_sum"]
            assert step(claim, "contribution_years") == "15"
            assert step(claim, "basic_pension_exact") == want["basic_exact"]
            assert step(claim, "basic_pension_fen") == want["basic"]
            assert step(claim, "account_pension_exact") == want["account_exact"]
            assert step(claim, "account_pension_fen") == want["account"]
            assert (claim["monthly_amount_fen"], claim["monthly_amount"]) == (want["monthly_fen"], want["monthly"])
            assert claim["monthly_amount_fen"] == want["basic"] + want["account"]
            assert (claim["importance"], claim["large_amount"], claim["age_at_effective"]) == (
                "important", False, want["age"])
            assert [(lv["level"], lv["role"]) for lv in claim["levels"]] == [
                ("first_review", "agency_reviewer"), ("second_review", "agency_reviewer"),
                ("approval", "agency_approver")]

            first = await decide(claim["id"], reviewer_1)
            assert (first["status"], first["next_level"]) == ("in_review", "second_review")
            # the same person at a second level is refused, whatever roles they hold
            await refused("POST", f"/benefits/claims/{claim['id']}/decisions", reviewer_1, 403,
                          "SAME_PERSON_TWO_LEVELS", json={"decision": "approve", "reason": "复审同意"})
            await refused("POST", f"/benefits/claims/{claim['id']}/decisions",
                          bearer(settings, "agency_reviewer", "agency_approver", region=CITY, subject=REVIEWER_1),
                          403, "SAME_PERSON_TWO_LEVELS", json={"decision": "approve", "reason": "审批同意"})
            second = await decide(claim["id"], reviewer_2, level="second_review")
            assert second["next_level"] == "approval"
            await refused("POST", f"/benefits/claims/{claim['id']}/decisions",
                          bearer(settings, "agency_approver", region=CITY, subject=REVIEWER_2), 403,
                          "SAME_PERSON_TWO_LEVELS", json={"decision": "approve", "reason": "审批同意"})
            final = await decide(claim["id"], approver, level="approval")
            assert (final["status"], final["next_level"]) == ("approved", None) and final["entitlement_id"]
            assert [(d["level"], d["decided_by"], d["role"]) for d in final["decisions"]] == [
                ("first_review", REVIEWER_1, "agency_reviewer"), ("second_review", REVIEWER_2, "agency_reviewer"),
                ("approval", APPROVER, "agency_approver")]
            claims[name] = final

        for name, person in persons.items():
            status = await call("GET", f"/benefits/eligibility/persons/{person['id']}", clerk)
            assert [(e["id"], e["status"], e["monthly_amount"], e["start_period"]) for e in status["entitlements"]] \
                == [(claims[name]["entitlement_id"], "active", EXPECTED[name]["monthly"], EFFECTIVE)]
        lap("claims")

        # -- 5. payroll 2026-07: run, approval by another person, funding, bank file, a failure, re-issue ------------
        computed = await call("POST", "/benefits/payroll/runs", clerk, 201, json={"fund": FUND, "period": JULY})
        run = july = computed["run"]
        assert (run["status"], run["lines"], run["total"], run["withheld_lines"]) == ("computed", 2, RUN_TOTAL, 0)
        await refused("POST", f"/benefits/payroll/runs/{run['id']}/approve",
                      bearer(settings, "agency_approver", region=CITY, subject=CLERK), 403,
                      "SAME_PERSON_CANNOT_APPROVE")
        payroll_approver = staff("agency_approver", PAYROLL_APPROVER)
        approved = await call("POST", f"/benefits/payroll/runs/{run['id']}/approve", payroll_approver)
        assert (approved["status"], approved["approved_by"]) == ("approved", PAYROLL_APPROVER)
        await refused("POST", f"/benefits/payroll/runs/{run['id']}/bank-files", cashier, 409, "FUNDING_NOT_REQUESTED")
        funding = await call("POST", f"/benefits/payroll/runs/{run['id']}/funding-request", accountant, 201)
        assert funding["amount"] == RUN_TOTAL
        issued = await call("POST", f"/benefits/payroll/runs/{run['id']}/bank-files", cashier, 201)
        first_file = issued["file"]
        assert (first_file["sequence"], first_file["lines"], first_file["total"], issued["held_back"]) == (
            1, 2, RUN_TOTAL, [])

        lines = {ln["person_id"]: ln for ln in (await call("GET", f"/benefits/payroll/runs/{run['id']}/lines",
                                                           cashier))["items"]}
        zhang_line, li_line = lines[zhang["id"]], lines[li["id"]]

        # The bank downloads the file and checks it as a bank would; each line pays the person's own account.
        content = await call("GET", f"/benefits/payroll/bank-files/{first_file['id']}/content", bank)
        parsed = bankfile.parse_payment_file(content)
        assert (parsed.file_id, parsed.run_id, parsed.fund, parsed.period, parsed.sequence, parsed.total_fen,
                parsed.checksum) == (first_file["id"], run["id"], FUND, JULY, 1, _fen(RUN_TOTAL),
                                     first_file["checksum"])
        assert sorted((ln.payroll_line_id, ln.account_no, ln.holder_name, ln.amount_fen) for ln in parsed.lines) == \
            sorted([(zhang_line["id"], make_card(PEOPLE["张建国"]["card"][1]), "张建国", EXPECTED["张建国"]["monthly_fen"]),
                    (li_line["id"], make_card(PEOPLE["李秀英"]["card"][1]), "李秀英", EXPECTED["李秀英"]["monthly_fen"])])
        line_no = {ln.payroll_line_id: ln.line_no for ln in parsed.lines}

        # The bank's result file: 张建国 paid, 李秀英's account closed at the bank.
        results = bankfile.render_result_file(first_file["id"], parsed.checksum, [
            bankfile.ResultLine(line_no[zhang_line["id"]], zhang_line["id"], "paid", None),
            bankfile.ResultLine(line_no[li_line["id"]], li_line["id"], "failed", "账户已销户")])
        applied = await call("POST", f"/benefits/payroll/bank-files/{first_file['id']}/results",
                             {**bank, "Content-Type": "text/csv"}, content=results.encode())
        assert (applied["applied"], applied["paid_lines"], applied["paid_total"], applied["failed_lines"],
                applied["returned_total"], applied["run_status"]) == (
            2, 1, EXPECTED["张建国"]["monthly"], 1, EXPECTED["李秀英"]["monthly"], "approved")
        # The same result file again changes nothing; another result for a settled line is refused.
        again = await call("POST", f"/benefits/payroll/bank-files/{first_file['id']}/results",
                           {**bank, "Content-Type": "text/csv"}, content=results.encode())
        assert (again["applied"], again["unchanged"]) == (0, 2)
        await refused("POST", f"/benefits/payroll/bank-files/{first_file['id']}/results",
                      {**bank, "Content-Type": "text/csv"}, 409, "BANK_RESULT_CONFLICT",
                      content=bankfile.render_result_file(first_file["id"], parsed.checksum, [
                          bankfile.ResultLine(line_no[li_line["id"]], li_line["id"], "paid", None)]).encode())
        # Nothing to re-issue into until her account is corrected.
        await refused("POST", f"/benefits/payroll/runs/{run['id']}/reissue", cashier, 409, "NO_CORRECTED_ACCOUNT")

        # The correction, in accounts: the old account closed, a new one added; benefits mirrors both.
        await call("POST", f"/accounts/persons/{li['id']}/bank-accounts/{li['account']['id']}/close", clerk,
                   json={"reason": "银行回盘：账户已销户"})
        new_account = await call("POST", f"/accounts/persons/{li['id']}/bank-accounts", clerk, 201, json={
            "kind": "bank_account", "bank_name": "中国农业银行呼和浩特分行", "account_no": make_card(9103),
            "holder_name": "李秀英"})
        corrected = (await eventually(
            lambda: gateway.get(f"/api/benefits/registry/persons/{li['id']}", headers=clerk),
            lambda r: {(a["bank_account_id"], a["status"]) for a in r.json()["accounts"]} == {
                (li["account"]["id"], "closed"), (new_account["id"], "active")}, timeout=30)).json()
        assert {a["bank_account_id"]: a["payable"] for a in corrected["accounts"]} == {
            li["account"]["id"]: False, new_account["id"]: True}

        # The gateway's audit chain holds the correction with who made it (its path, with two ids, is longer than
        # the chain's entity id column and is kept whole in the detail).
        close_path = f"/api/accounts/persons/{li['id']}/bank-accounts/{li['account']['id']}/close"
        routes = (await gateway.get("/audit/entries", headers=auditor,
                                    params={"entity_type": "route", "limit": 1000})).json()
        closing = [e for e in routes if json.loads(e["detail"]).get("path") == close_path]
        assert [(e["actor_id"], e["entity_id"][:60], json.loads(e["detail"])["status"]) for e in closing] == [
            (CLERK, f"POST {close_path}"[:60], 200)]

        reissued = await call("POST", f"/benefits/payroll/runs/{run['id']}/reissue", cashier, 201)
        second_file = reissued["file"]
        assert (second_file["sequence"], second_file["lines"], second_file["total"], reissued["not_reissued"]) == (
            2, 1, EXPECTED["李秀英"]["monthly"], [])
        parsed_2 = bankfile.parse_payment_file(
            await call("GET", f"/benefits/payroll/bank-files/{second_file['id']}/content", bank))
        assert [(ln.payroll_line_id, ln.account_no, ln.holder_name, ln.amount_fen) for ln in parsed_2.lines] == [
            (li_line["id"], make_card(9103), "李秀英", EXPECTED["李秀英"]["monthly_fen"])]
        paid = await call("POST", f"/benefits/payroll/bank-files/{second_file['id']}/results",
                          {**bank, "Content-Type": "text/csv"}, content=bankfile.render_result_file(
                              second_file["id"], parsed_2.checksum,
                              [bankfile.ResultLine(1, li_line["id"], "paid", None)]).encode())
        assert (paid["paid_lines"], paid["file_status"], paid["run_status"]) == (1, "settled", "paid")

        # Nothing paid twice: the run is paid, each line once, the files add up to the approved total exactly.
        await refused("POST", f"/benefits/payroll/runs/{run['id']}/reissue", cashier, 409, "NOTHING_TO_REISSUE")
        replayed = await call("POST", f"/benefits/payroll/runs/{run['id']}/bank-files", cashier)
        assert (replayed["replayed"], replayed["file"]["id"]) == (True, first_file["id"])
        final = await call("GET", f"/benefits/payroll/runs/{run['id']}", auditor)
        assert (final["status"], final["by_status"]) == ("paid", {"paid": {"lines": 2, "total": RUN_TOTAL}})
        files = await call("GET", f"/benefits/payroll/runs/{run['id']}/bank-files", auditor)
        assert [(f["sequence"], f["status"], f["paid_lines"], f["paid_total"], f["failed_lines"], f["returned_total"])
                for f in files] == [(1, "settled", 1, EXPECTED["张建国"]["monthly"], 1, EXPECTED["李秀英"]["monthly"]),
                                    (2, "settled", 1, EXPECTED["李秀英"]["monthly"], 0, "0.00")]
        assert sum(_fen(f["paid_total"]) for f in files) == _fen(RUN_TOTAL)
        with Session(benefits_db) as session:
            paid_per_line = dict(session.execute(
                select(BankFileLine.payroll_line_id, func.count()).where(BankFileLine.result == "paid")
                .group_by(BankFileLine.payroll_line_id)).all())
        assert paid_per_line == {zhang_line["id"]: 1, li_line["id"]: 1}
        assert (await call("GET", f"/benefits/payroll/runs/{run['id']}/verify", auditor))["ok"] is True
        frozen = await call("POST", "/benefits/payroll/runs", clerk, json={"fund": FUND, "period": JULY})
        assert (frozen["frozen"], frozen["run"]["status"]) == (True, "paid")
        lap("payroll 2026-07 (failure, correction, re-issue)")

        # -- 6. payroll 2026-08: both paid (李秀英 into her corrected account) ------------------------------------
        august = (await call("POST", "/benefits/payroll/runs", staff("agency_clerk", CLERK_2, DISTRICT), 201,
                             json={"fund": FUND, "period": AUGUST}))["run"]
        assert (august["lines"], august["total"]) == (2, RUN_TOTAL)
        await call("POST", f"/benefits/payroll/runs/{august['id']}/approve", payroll_approver)
        await call("POST", f"/benefits/payroll/runs/{august['id']}/funding-request", accountant, 201)
        august_file = (await call("POST", f"/benefits/payroll/runs/{august['id']}/bank-files", cashier, 201))["file"]
        parsed_8 = bankfile.parse_payment_file(
            await call("GET", f"/benefits/payroll/bank-files/{august_file['id']}/content", bank))
        assert {ln.holder_name: ln.account_no for ln in parsed_8.lines} == {
            "张建国": make_card(9101), "李秀英": make_card(9103)}
        settled = await call("POST", f"/benefits/payroll/bank-files/{august_file['id']}/results", bank, json={
            "checksum": parsed_8.checksum,
            "lines": [{"line_no": ln.line_no, "payroll_line_id": ln.payroll_line_id, "result": "paid"}
                      for ln in parsed_8.lines]})
        assert (settled["paid_lines"], settled["paid_total"], settled["run_status"]) == (2, RUN_TOTAL, "paid")
        august_lines = {ln["person_id"]: ln for ln in (await call(
            "GET", f"/benefits/payroll/runs/{august['id']}/lines", auditor))["items"]}
        lap("payroll 2026-08")

        # -- 7. 张建国 died on 2026-07-20: the civil-affairs record reaches benefits through accounts' events ---------
        death = await call("POST", "/accounts/exchange/batches", partner, 201, json={
            "batch_key": "MZ-2026-08-017", "kind": "death", "records": [
                {"record_id": "D-1", "citizen_id": zhang["citizen_id"], "name": "张建国", "death_date": DEATH_DATE}]})
        assert death["applied"] == 1, death

        suspended = await eventually(
            lambda: gateway.get(f"/api/benefits/eligibility/persons/{zhang['id']}", headers=clerk),
            lambda r: r.status_code == 200 and r.json()["entitlements"][0]["status"] == "suspended", timeout=30)
        status = suspended.json()
        assert (status["life_status"], status["death_date"]) == ("deceased", DEATH_DATE)
        [entitlement] = status["entitlements"]
        assert (entitlement["id"], entitlement["suspended_reason"]) == (claims["张建国"]["entitlement_id"], "deceased")
        mirror = await call("GET", f"/benefits/registry/persons/{zhang['id']}", clerk)
        assert (mirror["life_status"], mirror["death_date"]) == ("deceased", DEATH_DATE)
        other = await call("GET", f"/benefits/eligibility/persons/{li['id']}", clerk)
        assert [e["status"] for e in other["entitlements"]] == ["active"]

        # The August payment (the month after the death month) is an overpayment on a recovery notice; July is not.
        notices = await call("GET", "/benefits/recovery/notices", clerk, params={"person_id": zhang["id"]})
        [notice] = notices["items"]
        assert (notice["amount"], notice["recovered"], notice["remaining"], notice["status"]) == (
            EXPECTED["张建国"]["monthly"], "0.00", EXPECTED["张建国"]["monthly"], "open")
        detail = await call("GET", f"/benefits/recovery/notices/{notice['id']}", clerk)
        assert [(o["payroll_line_id"], o["period"], o["amount"], o["reason"]) for o in detail["overpayments"]] == [
            (august_lines[zhang["id"]]["id"], AUGUST, EXPECTED["张建国"]["monthly"], "paid_after_death")]
        assert detail["recoveries"] == []
        overpayments = await call("GET", "/benefits/recovery/overpayments", clerk, params={"person_id": zhang["id"]})
        assert [o["payroll_line_id"] for o in overpayments["items"]] == [august_lines[zhang["id"]]["id"]]
        assert (await call("GET", "/benefits/recovery/notices", clerk, params={"person_id": li["id"]}))["items"] == []

        # September pays 李秀英 alone: the suspended pension is not in the run.
        september = (await call("POST", "/benefits/payroll/runs", clerk, 201,
                                json={"fund": FUND, "period": SEPTEMBER}))["run"]
        assert (september["lines"], september["total"], september["withheld_lines"]) == (
            1, EXPECTED["李秀英"]["monthly"], 0)
        [only] = (await call("GET", f"/benefits/payroll/runs/{september['id']}/lines", auditor))["items"]
        assert only["person_id"] == li["id"]
        assert (await call("GET", "/benefits/admin/dead-letters", staff("it_admin", "it.ma"))) == []
        assert (await call("GET", "/benefits/audit/verify", auditor))["ok"] is True
        lap("death, suspension, recovery notice")

        # -- 8. the archive: 张建国's dossier in accounts lists every act of his — registration and enrolment filed by
        #       accounts, the three claim decisions and the two approved payroll lines sent by benefits, the death
        #       record — with its retention class; it exports as a package whose manifest verifies, and a tampered
        #       package fails naming the file (004 第7项) ----------------------------------------------------------
        # Two documents about him: the recovery notice (benefits) and his account statement (accounts), each filed
        # through the documents registry's hook with its number and hash.
        recovery_pdf = await gateway.post(f"/api/benefits/documents/recovery-notices/{notice['id']}", headers=clerk)
        statement_pdf = await gateway.post(f"/api/accounts/documents/account-statements/{zhang['id']}", headers=clerk)
        assert (recovery_pdf.status_code, statement_pdf.status_code) == (201, 201), recovery_pdf.text
        expected_types = Counter({"person_registration": 1, "enrolment": 1, "claim_decision": 3, "payroll_line": 2,
                                  "exchange_record": 1, "issued_document": 2})

        async def dossier_items() -> list[dict]:
            found = await call("GET", "/accounts/archives/dossiers", clerk, params={"subject_id": zhang["id"]})
            return (await call("GET", f"/accounts/archives/dossiers/{found['items'][0]['id']}/items", clerk,
                               params=PURPOSE))["items"]

        items = await eventually(dossier_items, lambda found: Counter(i["item_type"] for i in found) == expected_types,
                                 timeout=30)
        dossier_id = (await call("GET", "/accounts/archives/dossiers", clerk,
                                 params={"registration_number": zhang["citizen_id"]}))["items"][0]["id"]
        # Pension decisions, payroll lines and the recovery notice: permanent while the attachment's pension row is
        # unconfirmed (services/accounts/archives/retention.py); the account statement as 个人账户管理材料.
        classes = {(i["item_type"], i["source"]): (i["retention_class"], i["retention_years"]) for i in items}
        assert classes == {("person_registration", "accounts"): ("long", 100), ("enrolment", "accounts"): ("long", 100),
                           ("claim_decision", "benefits"): ("permanent", None),
                           ("payroll_line", "benefits"): ("permanent", None),
                           ("exchange_record", "accounts"): ("long", 50),
                           ("issued_document", "benefits"): ("permanent", None),
                           ("issued_document", "accounts"): ("long", 100)}
        filed = {i["source"]: i["references"] for i in items if i["item_type"] == "issued_document"}
        assert filed["benefits"]["document_sha256"] == recovery_pdf.headers["x-document-sha256"]
        assert filed["accounts"]["document_sha256"] == statement_pdf.headers["x-document-sha256"]
        assert [(i["level"], i["decided_by"]) for i in items if i["item_type"] == "claim_decision"] == [
            ("first_review", REVIEWER_1), ("second_review", REVIEWER_2), ("approval", APPROVER)]
        assert {i["references"]["run_id"] for i in items if i["item_type"] == "payroll_line"} == {
            july["id"], august["id"]}
        # What the internal control's risk categories read (accounts' internal_control.risk).
        assert {(i["references"]["claim_kind"], i["references"]["early_retirement"], i["references"]["back_payment"])
                for i in items if i["item_type"] == "claim_decision"} == {("basic_pension", "false", "false")}
        assert all(i["references"]["amount_fen"].isdigit() for i in items if i["item_type"] == "payroll_line")
        assert all(i["audit_seq"] and len(i["audit_hash"]) == 64 for i in items)
        employer_dossier = (await call("GET", "/accounts/archives/dossiers", clerk,
                                       params={"subject_id": employer["id"]}))["items"][0]
        assert employer_dossier["registration_number"] == uscc(601)

        # The export is a job (202); its result names where the one who exported it downloads the package.
        exported, _ = await export_package(gateway, dossier_id, clerk, prefix="/api/accounts")
        files = unzipped(exported)
        manifest = json.loads(files["manifest.json"])
        assert manifest["item_count"] == len(items) and {"归档文件目录.pdf", "备考表.pdf"} <= set(files)
        # accounts holds the bytes of the statement it issued, not those of benefits' notice
        [statement_file] = [name for name in files if name.startswith("documents/")]
        assert files[statement_file] == statement_pdf.content
        assert all(hashlib.sha256(files[name]).hexdigest() == digest for name, digest in manifest["files"].items())

        async def verified(data: bytes) -> dict:
            return await call("POST", "/accounts/archives/packages/verification", auditor,
                              files={"file": ("dossier.zip", data, "application/zip")})

        assert (await verified(exported))["result"] == "genuine"
        tampered = dict(files, **{"items/00003.json": files["items/00003.json"].replace("同意".encode(), "驳回".encode())})
        verdict = await verified(zipped(tampered))
        assert (verdict["result"], verdict["altered_files"]) == ("altered", ["items/00003.json"])
        uses = (await call("GET", "/accounts/archives/access-register", auditor,
                           params={"dossier_id": dossier_id}))["items"]
        assert (uses[0]["actor_id"], uses[0]["action"], uses[0]["purpose"]) == (CLERK, "export", PURPOSE["purpose"])
        lap("archive")

    timings["total"] = round(time.perf_counter() - started, 2)
    print(f"\nbenefits flow timings (s): {timings}")
