"""A month of activity with planted problems, through the gateway, with accounts,
collection, benefits and oversight under uvicorn and one real nats-server between them. Oversight learns everything
from the streams (and the gateway's identity reports its sweep pulls); it must find exactly the planted problems,
each as one case with the right rule id, and nothing else — and its reconciliation report must show exactly the
planted cells as not matched, in JSON and in the Excel workbook.

The month: contribution period 2026-09 (due 2026-10-15), collected by the tax bureau on 2026-10-12, remitted to the
treasury on 2026-10-16 and received in the fiscal special accounts; a pension paid for 2026-10 and 2026-11 out of the
PEN_EMP expenditure account after finance's allocations. Employer 甲 pays everything; 乙 pays nothing (arrears are
collection's to pursue, not a discrepancy between the legs).

The planted problems and the finding each must produce:

====  ==========================================================  =========================================
rule  what happened                                                where it comes from
====  ==========================================================  =========================================
S15   a tax line missing in finance: the PEN_EMP remittance        R1 PEN_EMP × 202609 ``mismatch``
      leaves out 孙八's line (the receipt equals the remittance,    (FINANCE − TAX = − that line)
      so R3 is matched)
S12   a late treasury remittance: UNEMP's remittance of            R3 ``late`` (deadline 2026-10-30, the 10th
      2026-10-16 reaches the special account on 2026-11-03          working day, 000 二(二))
S01   a pension paid after death: 刘福 died on 2026-10-08; the      benefits.payments.settled + the death
      death record arrives after 2026-11 was paid                  (2026-10, the death month, is payable)
S03   a duplicate enrolment: a legacy import brings 周九's          accounts.enrolment.duplicate_found
      resident pension 2024-01…2026-03, overlapping his employee
      pension from 2026-01
S06   a large payment without the extra review: benefits'          benefits.claim.decided / entitlement
      parameter set has its large-amount threshold at 80 000.00    .granted above oversight's 50 000.00
      (misconfigured); a 60 000.00 one-off injury payment is       (001 第十八条)
      approved at three levels but no 大额复核
S18   a segregation-of-duties violation, injected on the bus as    benefits.claim.decided twice by one user
      benefits' events (benefits itself refuses to record one):
      one reviewer deciding two levels of one claim
====  ==========================================================  =========================================

Everything is driven through the gateway except three things the services have no API for, each said where it is
done: the pensioner's contribution history before these systems (rows written into accounts' and benefits' databases,
as tests/benefits does), and the injected S18 events (published on JetStream as benefits would).
"""

import io
import socket
import time
from contextlib import AsyncExitStack
from datetime import date
from decimal import Decimal

import httpx
import openpyxl
from sqlmodel import Session

from gateway.app import create_app as create_gateway
from services.accounts.models import ContributionMonth
from services.benefits.models import ContributionIndex
from services.benefits.payroll import bankfile
from services.contracts import benefits as ben
from services.kernel import clock
from services.kernel.events import new_event_id
from services.kernel.periods import add_months, months_between
from services.kernel.service_app import create_service_app
from services.oversight.reconciliation.excel import SHEET_NAMES
from sifund import services as catalogue
from tests.support.registry import make_card, make_citizen_id
from tests.support.exchange import partner_headers
from tests.support.accounts import ENROLMENT_HEADER, csv_bytes
from tests.support.benefits import benefit_document
from tests.support.collection import document as contribution_document
from tests.support.payments import tax_headers
from tests.support.collection import account_no
from tests.support.apps import bearer
from tests.support.e2e import bank_headers
from tests.support.e2e import DISTRICT, citizen_id, eventually, uscc
from tests.support.gateway import serve
from tests.support.oversight import publish

CITY = "150100"
PERIOD = 202609
OCTOBER, NOVEMBER = 202610, 202611
PAID_ON = "2026-10-12"
REMITTED_ON = "2026-10-16"
AS_OF = "2026-11-25"
FUNDS = ("PEN_EMP", "UNEMP", "INJURY")

# Employer 甲 (4 persons) pays; 乙 (2 persons) does not. Every declared base is inside [4 800.00, 24 000.00]
# (average wage 8 000.00 × 0.6 / × 3): a base outside it would be an S10 finding.
STAFF_A = [("19850101", 11, "张三", "6000.00"), ("19870505", 22, "李四", "8000.00"),
           ("19900909", 31, "王五", "10000.00"), ("19880303", 35, "孙八", "12000.00")]
STAFF_B = [("19880808", 41, "赵六", "6004.16"), ("19920202", 52, "周九", "5000.00")]
MISSING_IN_FINANCE = "孙八"  # whose PEN_EMP tax line the finance leg lacks

# The pensioner: 刘福, born 1966-05-20 (60 in 2026-10), contributions 2011-01…2026-09 (189 months) before these
# systems, individual account 60 000.00 (transferred in).
PENSIONER = {"name": "刘福", "born": date(1966, 5, 20), "serial": 71, "card": 9171}
HISTORY = (201101, 202609, 600_000, 700_000)  # first, last, base (fen), average wage (fen)
DEATH_DATE = "2026-10-08"

LARGE_ONE_OFF = "60000.00"  # above oversight's 50 000.00 (S06), below benefits' misconfigured 80 000.00
BENEFITS_THRESHOLD_FEN = 8_000_000

PLANTED = {"S15", "S12", "S01", "S03", "S06", "S18"}


def _fen(amount: str | Decimal) -> int:
    return int(Decimal(amount) * 100)


def _yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}"


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def periods(first: int, last: int) -> list[int]:
    return [add_months(first, i) for i in range(months_between(first, last))]


async def test_a_month_with_planted_problems_finds_exactly_them(settings, make_settings, nats_server):  # noqa: PLR0915
    started = time.perf_counter()
    async with AsyncExitStack() as stack:
        apps, urls = {}, {}
        for name in ("accounts", "collection"):
            apps[name] = create_service_app(catalogue.spec(name), settings)
            urls[name] = await stack.enter_async_context(serve(apps[name]))
        apps["benefits"] = create_service_app(catalogue.spec("benefits"),
                                              make_settings(nats_server.url, accounts_url=urls["accounts"]))
        urls["benefits"] = await stack.enter_async_context(serve(apps["benefits"]))
        # Oversight's sweep pulls the gateway's identity reports (S18 roles, S20) and accounts' audit entries (S19):
        # it needs the gateway's address before the gateway, which needs oversight's, starts.
        gateway_port = unused_port()
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        apps["oversight"] = create_service_app(catalogue.spec("oversight"), make_settings(
            nats_server.url, accounts_url=urls["accounts"], gateway_url=gateway_url))
        urls["oversight"] = await stack.enter_async_context(serve(apps["oversight"]))
        await stack.enter_async_context(serve(create_gateway(make_settings(
            nats_server.url, **{f"{name}_url": url for name, url in urls.items()})), port=gateway_port))
        gateway = await stack.enter_async_context(httpx.AsyncClient(base_url=gateway_url, timeout=30))

        def staff(role: str, subject: str, region: str = CITY) -> dict[str, str]:
            return bearer(settings, role, region=region, subject=subject)

        clerk = staff("agency_clerk", "clerk.wang", DISTRICT)
        accountant = staff("accountant", "acct.li")
        approver = staff("agency_approver", "approver.zhao")
        payroll_approver = staff("agency_approver", "approver.feng")
        reviewer_1, reviewer_2 = staff("agency_reviewer", "reviewer.wu"), staff("agency_reviewer", "reviewer.zheng")
        cashier = staff("cashier", "cashier.sun")
        finance = staff("finance_officer", "fin.sun")
        officer = staff("oversight_officer", "jd.chen")
        tax, bank, partner = tax_headers(settings), bank_headers(settings), partner_headers(settings, "civil_affairs")

        async def call(method: str, path: str, headers: dict, expected: int = 200, **kwargs):  # noqa: ANN202
            response = await gateway.request(method, f"/api{path}", headers=headers, **kwargs)
            assert response.status_code == expected, f"{method} {path}: {response.status_code} {response.text}"
            kind = response.headers.get("content-type", "")
            return response.json() if kind.startswith("application/json") else response

        # -- 1. parameters: contributions (collection) and benefits, each proposed and approved by two people ------
        proposed = await call("POST", "/collection/parameters", accountant, 201, json={
            "region": CITY, "valid_from": 202601, "document": contribution_document(), "reason": "2026 年度费率基数"})
        await call("POST", f"/collection/parameters/{proposed['id']}/approve", approver, json={"reason": "同意"})
        proposed = await call("POST", "/benefits/parameters", accountant, 201, json={
            "region": CITY, "valid_from": 202601, "reason": "2026 年度待遇计发参数",
            "document": benefit_document(large_amount_threshold_fen=BENEFITS_THRESHOLD_FEN)})
        await call("POST", f"/benefits/parameters/{proposed['id']}/approve", approver, json={"reason": "同意"})

        # -- 2. the registry: two employers, their staff in three funds from 2026-01, the pensioner ----------------
        employers = {
            "A": await call("POST", "/accounts/employers", clerk, 201, json={
                "uscc": uscc(701), "name": "甲制造有限公司", "region": DISTRICT, "industry_risk_class": 2}),
            "B": await call("POST", "/accounts/employers", clerk, 201, json={
                "uscc": uscc(702), "name": "乙商贸有限公司", "region": DISTRICT, "industry_risk_class": 1}),
        }
        persons: dict[str, dict] = {}
        for key, people in (("A", STAFF_A), ("B", STAFF_B)):
            for birth, serial, name, _base in people:
                cid = citizen_id(birth, serial)
                person = await call("POST", "/accounts/persons", clerk, 201, json={
                    "citizen_id": cid, "name": name, "region": DISTRICT})
                persons[name] = {**person, "citizen_id": cid, "employer": key}
                for fund in FUNDS:
                    await call("POST", "/accounts/enrolments", clerk, 201, json={
                        "person_id": person["id"], "fund": fund, "employer_id": employers[key]["id"],
                        "start_period": 202601})
        # 刘福: born in 土默特左旗 (150121, a code without a start year), enrolled in PEN_EMP at 甲 since 2011-01.
        liu_cid = make_citizen_id(PENSIONER["serial"], born=PENSIONER["born"], area="150121")
        liu = await call("POST", "/accounts/persons", clerk, 201, json={
            "citizen_id": liu_cid, "name": PENSIONER["name"], "region": DISTRICT})
        await call("POST", "/accounts/enrolments", clerk, 201, json={
            "person_id": liu["id"], "fund": "PEN_EMP", "employer_id": employers["A"]["id"], "start_period": HISTORY[0]})
        await call("POST", f"/accounts/persons/{liu['id']}/bank-accounts", clerk, 201, json={
            "kind": "ss_card", "bank_name": "中国工商银行呼和浩特分行", "account_no": make_card(PENSIONER["card"]),
            "holder_name": PENSIONER["name"]})
        # 189 months before these systems: accounts' contribution months and benefits' index rows written directly
        # (there is no API for history older than the platform); the balance arrives as a transfer-in.
        with Session(apps["accounts"].state.engine) as session:
            session.add_all(ContributionMonth(person_id=liu["id"], fund="PEN_EMP", period=p,
                                              employer_id=employers["A"]["id"], source="import",
                                              recorded_at=clock.utc_now()) for p in periods(HISTORY[0], HISTORY[1]))
            session.commit()
        await call("POST", f"/accounts/individual-accounts/{liu['id']}/transfers-in",
                   {**accountant, "Idempotency-Key": f"in:{liu['id']}"}, 201,
                   json={"amount": "60000.00", "document_ref": "转移接续-2026-071", "from_region": "110105"})
        await eventually(lambda: gateway.get(f"/api/benefits/registry/persons/{liu['id']}", headers=clerk),
                         lambda r: r.status_code == 200 and r.json()["accounts"], timeout=30)
        with Session(apps["benefits"].state.engine) as session:
            session.add_all(ContributionIndex(person_id=liu["id"], fund="PEN_EMP", period=p, base_fen=HISTORY[2],
                                              average_wage_fen=HISTORY[3], assessment_line_id=new_event_id(),
                                              assessment_id=new_event_id())
                            for p in periods(HISTORY[0], HISTORY[1]))
            session.commit()
        for key, people in (("A", STAFF_A), ("B", STAFF_B)):
            await eventually(
                lambda key=key: gateway.get(
                    f"/api/collection/registry/employers/{employers[key]['id']}/enrolments", headers=clerk),
                lambda r, n=len(people) + (1 if key == "A" else 0): r.status_code == 200 and len(
                    r.json()["items"]) == 3 * len(people) + (1 if key == "A" else 0), timeout=30)

        # -- 3. declarations of 2026-09 and the tax bureau's collection of 甲's ----------------------------------
        issued = {}
        for key, people in (("A", STAFF_A), ("B", STAFF_B)):
            result = await call("POST", f"/collection/employers/{employers[key]['id']}/declarations", clerk, 201,
                                json={"period": PERIOD, "lines": [{"person_id": persons[name]["id"], "base": base}
                                                                  for _b, _s, name, base in people]})
            issued[key] = (await call("GET", f"/collection/assessments/{result['assessment']['id']}", clerk,
                                      params={"limit": 1000}))["items"]
        citizen_of = {p["id"]: p["citizen_id"] for p in persons.values()}
        lines, tax_fen = [], {fund: 0 for fund in FUNDS}
        line_fen: dict[tuple[str, str], int] = {}
        for ln in issued["A"]:
            fen = _fen(ln["employer_amount"]) + _fen(ln["individual_amount"])
            tax_fen[ln["fund"]] += fen
            if ln["fund"] == "INJURY":
                continue
            line_fen[(ln["person_id"], ln["fund"])] = fen
            lines.append({"tax_line_id": f"SW-{len(lines) + 1:04d}", "payer_uscc": uscc(701),
                          "citizen_id": citizen_of[ln["person_id"]], "fund": ln["fund"], "period": PERIOD,
                          "employer_amount": ln["employer_amount"], "individual_amount": ln["individual_amount"],
                          "method": "bank_withholding", "voucher_no": "PZ-A-202609", "paid_date": PAID_ON})
        lines.append({"tax_line_id": "SW-INJ", "payer_uscc": uscc(701), "fund": "INJURY", "period": PERIOD,
                      "employer_amount": _yuan(tax_fen["INJURY"]), "individual_amount": "0.00",
                      "method": "bank_transfer", "voucher_no": "PZ-A-202609", "paid_date": PAID_ON})
        batch = await call("POST", "/collection/tax-payments/batches", tax, 201, json={"lines": lines})
        assert (batch["accepted"], batch["matched"], batch["rejected"]) == (len(lines), len(lines), 0), batch

        # -- 4. finance: special accounts, the remittances and their receipts (two of them planted) -----------------
        special = {}
        for i, fund in enumerate(FUNDS):
            special[fund] = (await call("POST", "/collection/treasury/accounts", finance, 201, json={
                "kind": "special", "fund": fund, "bank_name": "中国工商银行呼和浩特分行",
                "account_no": account_no("special", fund), "opened_on": "2020-01-06",
                "opening_approval_ref": f"内财社〔2020〕{i + 1}号", "annual_inspection_due": "2027-03-31"}))["account"]
        # The expenditure account is the agency's (支出户, opened by its accountant).
        await call("POST", "/collection/treasury/accounts", accountant, 201, json={
            "kind": "expenditure", "fund": "PEN_EMP", "bank_name": "中国工商银行呼和浩特分行",
            "account_no": account_no("expenditure", "PEN_EMP"), "opened_on": "2020-01-06",
            "opening_approval_ref": "内财社〔2020〕9号", "annual_inspection_due": "2027-03-31"})
        missing_fen = line_fen[(persons[MISSING_IN_FINANCE]["id"], "PEN_EMP")]
        remitted_fen = {"PEN_EMP": tax_fen["PEN_EMP"] - missing_fen, "UNEMP": tax_fen["UNEMP"],
                        "INJURY": tax_fen["INJURY"]}
        received_on = {"PEN_EMP": "2026-10-19", "UNEMP": "2026-11-03", "INJURY": "2026-10-20"}  # UNEMP: late
        remittances = {}
        for fund in FUNDS:
            remittances[fund] = (await call("POST", "/collection/treasury/remittances", finance, 201, json={
                "fund": fund, "period": PERIOD, "amount": _yuan(remitted_fen[fund]), "remitted_on": REMITTED_ON,
                "voucher_no": f"GK-{fund}-202609"}))["remittance"]
            await call("POST", "/collection/treasury/receipts", {**finance, "Idempotency-Key": f"R-{fund}"}, 201,
                       json={"remittance_id": remittances[fund]["id"], "amount": _yuan(remitted_fen[fund]),
                             "value_date": received_on[fund], "reference": f"BK-{fund}"})

        # -- 5. a pension: claim, three levels, payroll of 2026-10 and 2026-11, allocations, bank results ----------
        async def decide(claim_id: str, headers: dict, level: str | None = None) -> dict:
            body = {"decision": "approve", "reason": "材料齐全，同意", **({"level": level} if level else {})}
            return await call("POST", f"/benefits/claims/{claim_id}/decisions", headers, json=body)

        async def approve_at_three_levels(claim_id: str) -> dict:
            await decide(claim_id, reviewer_1)
            await decide(claim_id, reviewer_2, "second_review")
            return await decide(claim_id, approver, "approval")

        pension = await call("POST", "/benefits/claims", clerk, 201, json={
            "kind": "basic_pension", "person_id": liu["id"], "effective_period": OCTOBER,
            "note": "本人申请按月领取基本养老金"})
        assert pension["status"] == "in_review" and pension["blocked_checks"] == [], pension
        assert pension["large_amount"] is False
        granted = await approve_at_three_levels(pension["id"])
        assert granted["status"] == "approved" and granted["entitlement_id"]
        monthly_fen = pension["monthly_amount_fen"]

        paid_lines = {}
        for period, allocated_on in ((OCTOBER, "2026-10-26"), (NOVEMBER, "2026-11-10")):
            run = (await call("POST", "/benefits/payroll/runs", clerk, 201, json={"fund": "PEN_EMP",
                                                                                   "period": period}))["run"]
            assert (run["lines"], _fen(run["total"])) == (1, monthly_fen), run
            await call("POST", f"/benefits/payroll/runs/{run['id']}/approve", payroll_approver)
            await call("POST", f"/benefits/payroll/runs/{run['id']}/funding-request", accountant, 201)
            await call("POST", "/collection/treasury/allocations", {**finance, "Idempotency-Key": f"AL-{period}"}, 201,
                       json={"fund": "PEN_EMP", "amount": run["total"], "value_date": allocated_on,
                             "payroll_reference": run["id"]})
            file = (await call("POST", f"/benefits/payroll/runs/{run['id']}/bank-files", cashier, 201))["file"]
            content = (await call("GET", f"/benefits/payroll/bank-files/{file['id']}/content", bank)).text
            parsed = bankfile.parse_payment_file(content)
            settled = await call("POST", f"/benefits/payroll/bank-files/{file['id']}/results", bank, json={
                "checksum": parsed.checksum, "lines": [
                    {"line_no": ln.line_no, "payroll_line_id": ln.payroll_line_id, "result": "paid"}
                    for ln in parsed.lines]})
            assert (settled["paid_lines"], settled["run_status"]) == (1, "paid"), settled
            paid_lines[period] = parsed.lines[0].payroll_line_id

        # -- 6. the rest of the planted problems ---------------------------------------------------------------------
        # S01: 刘福 died on 2026-10-08; the civil-affairs record arrives after 2026-11 was paid.
        death = await call("POST", "/accounts/exchange/batches", partner, 201, json={
            "batch_key": "MZ-2026-11-031", "kind": "death", "records": [
                {"record_id": "D-1", "citizen_id": liu_cid, "name": PENSIONER["name"], "death_date": DEATH_DATE}]})
        assert death["applied"] == 1, death

        # S03: a legacy import of resident-pension history overlapping 周九's employee pension (2026-01 on).
        zhou = persons["周九"]
        imported = await call("POST", "/accounts/imports/enrolments", clerk, 201, files={"file": (
            "legacy.csv", csv_bytes(ENROLMENT_HEADER, [[zhou["citizen_id"], "PEN_RES", "", "202401", "202603",
                                                       "终止缴费"]]), "text/csv")})
        assert (imported["accepted_rows"], imported["reported_overlaps"]) == (1, 1), imported

        # S06: a 60 000.00 one-off injury payment (伤残补助金) approved at the ordinary three levels: benefits'
        # threshold (80 000.00) did not ask for 大额复核, oversight's (50 000.00, 001 第十八条) does.
        injured = persons["王五"]
        await call("POST", f"/accounts/persons/{injured['id']}/bank-accounts", clerk, 201, json={
            "kind": "bank_account", "bank_name": "中国农业银行呼和浩特分行", "account_no": make_card(9131),
            "holder_name": "王五"})
        await eventually(lambda: gateway.get(f"/api/benefits/registry/persons/{injured['id']}", headers=clerk),
                         lambda r: r.status_code == 200 and r.json()["accounts"], timeout=30)
        lump = await call("POST", "/benefits/claims", clerk, 201, json={
            "kind": "injury", "person_id": injured["id"], "effective_period": NOVEMBER, "one_off_amount": LARGE_ONE_OFF,
            "documents": [{"kind": "一次性伤残补助金核定表", "reference": "呼工核〔2026〕12号"}]})
        assert lump["status"] == "in_review" and lump["large_amount"] is False, lump
        lump_final = await approve_at_three_levels(lump["id"])
        assert "large_amount_review" not in [d["level"] for d in lump_final["decisions"]]

        # S18: injected — one reviewer at two levels of one claim, as benefits would publish it (benefits refuses it
        # through its API: SAME_PERSON_TWO_LEVELS).
        forged = new_event_id()
        li_si = persons["李四"]["id"]
        await publish(
            _AppClient(apps["oversight"]),
            ben.ClaimSubmitted(claim_id=forged, person_id=li_si, kind="injury", fund="INJURY", importance="important",
                               status="in_review", blocked_reason=None, effective_period=NOVEMBER,
                               monthly_amount_fen=320_000, one_off_amount_fen=None, large_amount=False,
                               age_at_effective=39, back_payment_months=None),
            ben.ClaimDecided(claim_id=forged, person_id=li_si, level="first_review", decision="approve",
                             decided_by="reviewer.gao", role="agency_reviewer", claim_status="in_review"),
            ben.ClaimDecided(claim_id=forged, person_id=li_si, level="second_review", decision="approve",
                             decided_by="reviewer.gao", role="agency_reviewer", claim_status="in_review"),
        )

        # -- 7. oversight: wait for the streams, sweep, and count the cases ----------------------------------------
        async def cases() -> list[dict]:
            return (await call("GET", "/oversight/cases", officer, params={"limit": 200}))["items"]

        await eventually(cases, lambda items: {c["rule_id"] for c in items} >= {"S01", "S03", "S06", "S18"},
                         timeout=30)
        months = [PERIOD, OCTOBER, NOVEMBER]

        async def reconciled() -> dict:
            return await call("GET", f"/oversight/reconciliation/months/{OCTOBER}", officer, params={"as_of": AS_OF})

        def r5_paid(report: dict) -> bool:
            [r5] = [c for c in report["checks"] if c["check"] == "R5"]
            return any(cell["status"] == "matched" for cell in r5["cells"])

        await eventually(reconciled, r5_paid, timeout=30)
        sweep = await call("POST", "/oversight/rules/sweeps", officer, 201, json={"as_of": AS_OF, "months": months})
        assert sweep["status"] == "done", sweep
        again = await call("POST", "/oversight/rules/sweeps", officer, 201, json={"as_of": AS_OF, "months": months})
        assert sum(r.get("created", 0) for r in again["rules"].values()) == 0, again  # nothing found twice

        found = await cases()
        by_rule: dict[str, list[dict]] = {}
        for case in found:
            by_rule.setdefault(case["rule_id"], []).append(case)
        assert {rule: len(items) for rule, items in by_rule.items()} == {rule: 1 for rule in PLANTED}, [
            (c["rule_id"], c["fact_key"], c["title"]) for c in found]
        [s01], [s03], [s06], [s18] = by_rule["S01"], by_rule["S03"], by_rule["S06"], by_rule["S18"]
        [s15], [s12] = by_rule["S15"], by_rule["S12"]
        assert s01["fact_key"] == f"S01:{liu['id']}:{NOVEMBER}"
        assert s03["person_id"] == zhou["id"]
        assert s06["fact_key"] == f"S06:{lump['id']}"
        assert s18["fact_key"] == f"S18:claim:{forged}:reviewer.gao"
        assert "R1" in s15["fact_key"] and "PEN_EMP" in s15["fact_key"] and str(PERIOD) in s15["fact_key"], s15
        assert "R3" in s12["fact_key"] and remittances["UNEMP"]["id"] in s12["fact_key"], s12
        # -- 8. the reconciliation report: exactly the planted cells are not matched (JSON) ------------------------
        async def report(month: int) -> dict:
            return await call("GET", f"/oversight/reconciliation/months/{month}", officer,
                              params={"as_of": AS_OF, "include_matched": True})

        reports = {month: await report(month) for month in months}
        unmatched = {month: sorted((chk["check"], cell["status"], tuple(sorted(cell["key"].items())))
                                   for chk in rep["checks"] for cell in chk["cells"] if cell["status"] != "matched")
                     for month, rep in reports.items()}
        assert unmatched == {
            PERIOD: [("R1", "mismatch", (("fund", "PEN_EMP"), ("period", PERIOD)))],
            OCTOBER: [("R3", "late", (("remittance_id", remittances["UNEMP"]["id"]),))],
            NOVEMBER: [],
        }
        assert [rep["unmatched"] for rep in reports.values()] == [1, 1, 0]

        def cells(month: int, check: str) -> list[dict]:
            return next(c["cells"] for c in reports[month]["checks"] if c["check"] == check)

        r1 = {cell["fund"]: cell for cell in cells(PERIOD, "R1")}
        assert r1["PEN_EMP"]["amounts"] == {
            "tax": _yuan(tax_fen["PEN_EMP"]), "tax_principal": _yuan(tax_fen["PEN_EMP"]), "tax_late_fee": "0.00",
            "finance": _yuan(remitted_fen["PEN_EMP"]), "agency": _yuan(tax_fen["PEN_EMP"])}
        assert r1["PEN_EMP"]["difference"] == _yuan(-missing_fen) == "-2880.00"  # 孙八: 12 000.00 × (16 % + 8 %)
        assert {fund: cell["status"] for fund, cell in r1.items()} == {
            "PEN_EMP": "mismatch", "UNEMP": "matched", "INJURY": "matched"}
        # R2: 甲's cells agree; 乙's show their arrears (assessed, nothing collected) and still agree between legs.
        r2 = {(cell["key"]["employer_id"], cell["fund"]): cell for cell in cells(PERIOD, "R2")}
        assert len(r2) == 6 and {cell["status"] for cell in r2.values()} == {"matched"}
        b_assessed = {fund: sum(_fen(ln["employer_amount"]) + _fen(ln["individual_amount"])
                                for ln in issued["B"] if ln["fund"] == fund) for fund in FUNDS}
        assert {fund: r2[(employers["B"]["id"], fund)]["amounts"]["arrears"] for fund in FUNDS} == {
            fund: _yuan(b_assessed[fund]) for fund in FUNDS}
        late = next(cell for cell in cells(OCTOBER, "R3") if cell["status"] == "late")
        assert (late["detail"]["deadline"], late["detail"]["last_receipt_on"], late["amounts"]["unreceived"]) == (
            "2026-10-30", "2026-11-03", "0.00")  # 10 working days after 2026-10-16 (000 二(二))
        assert {cell["key"]["remittance_id"]: cell["status"] for cell in cells(OCTOBER, "R3")} == {
            remittances["PEN_EMP"]["id"]: "matched", remittances["UNEMP"]["id"]: "late",
            remittances["INJURY"]["id"]: "matched"}
        for month in (OCTOBER, NOVEMBER):  # money out: approved = allocated = paid, each month
            [r5] = cells(month, "R5")
            assert (r5["status"], r5["amounts"]["approved"], r5["amounts"]["allocated"], r5["amounts"]["paid"]) == (
                "matched", _yuan(monthly_fen), _yuan(monthly_fen), _yuan(monthly_fen))

        # … and the same cells in the Excel workbook a supervisor files.
        def sheet_rows(content: bytes, check: str) -> list[dict]:
            book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
            rows = [list(r) for r in book[SHEET_NAMES[check]].iter_rows(values_only=True)]
            header_at = next(i for i, r in enumerate(rows) if r and str(r[0]).startswith(("险种", "缴款", "单位")))
            return [dict(zip(rows[header_at], r, strict=False)) for r in rows[header_at + 1:]]

        september_book = (await call("GET", f"/oversight/reconciliation/months/{PERIOD}.xlsx", officer,
                                     params={"as_of": AS_OF})).content
        r1_rows = {row["险种 fund"]: row for row in sheet_rows(september_book, "R1")}
        assert {fund: row["状态 status"] for fund, row in r1_rows.items()} == {
            "PEN_EMP": "不符 (mismatch)", "UNEMP": "相符 (matched)", "INJURY": "相符 (matched)"}
        assert (Decimal(str(r1_rows["PEN_EMP"]["税务 TAX"])), Decimal(str(r1_rows["PEN_EMP"]["财政 FINANCE"])),
                Decimal(str(r1_rows["PEN_EMP"]["财政−税务"]))) == (
            Decimal(_yuan(tax_fen["PEN_EMP"])), Decimal(_yuan(remitted_fen["PEN_EMP"])), Decimal("-2880.00"))
        assert sheet_rows(september_book, "R2") == []  # discrepancies only: none
        october_book = (await call("GET", f"/oversight/reconciliation/months/{OCTOBER}.xlsx", officer,
                                   params={"as_of": AS_OF})).content
        r3_rows = {row["缴款记录 remittance"]: row["状态 status"] for row in sheet_rows(october_book, "R3")}
        assert r3_rows == {remittances["PEN_EMP"]["id"]: "相符 (matched)", remittances["UNEMP"]["id"]: "逾期 (late)",
                           remittances["INJURY"]["id"]: "相符 (matched)"}

        # -- 9. month close (月结), then finance remits the missing line: a post-close adjustment, not a rewrite ---
        closed = await call("POST", f"/oversight/reconciliation/months/{PERIOD}/close", officer, 201,
                            json={"note": "2026 年 9 月对账月结"})
        assert (closed["closed_by"], closed["unmatched"]) == ("jd.chen", 1)
        remedy = (await call("POST", "/collection/treasury/remittances", finance, 201, json={
            "fund": "PEN_EMP", "period": PERIOD, "amount": _yuan(missing_fen), "remitted_on": "2026-11-24",
            "voucher_no": "GK-PEN_EMP-202609-补"}))["remittance"]
        await call("POST", "/collection/treasury/receipts", {**finance, "Idempotency-Key": "R-PEN_EMP-remedy"}, 201,
                   json={"remittance_id": remedy["id"], "amount": _yuan(missing_fen), "value_date": AS_OF,
                         "reference": "BK-PEN_EMP-补"})
        after = await eventually(lambda: report(PERIOD), lambda rep: rep["post_close_adjustments"], timeout=30)
        assert after["figures"] == "snapshot"
        assert next(cell for cell in after["checks"][0]["cells"] if cell["fund"] == "PEN_EMP")["status"] == "mismatch"
        [adjustment] = after["post_close_adjustments"]
        assert (adjustment["check"], adjustment["key"], adjustment["snapshot"]["status"], adjustment["now"]["status"],
                adjustment["delta"]) == ("R1", {"fund": "PEN_EMP", "period": PERIOD}, "mismatch", "matched",
                                         {"finance": _yuan(missing_fen)})
        book = openpyxl.load_workbook(io.BytesIO((await call(
            "GET", f"/oversight/reconciliation/months/{PERIOD}.xlsx", officer, params={"as_of": AS_OF})).content))
        assert [r[0] for r in book["月结后调整"].iter_rows(min_row=2, values_only=True)] == ["R1"]
        # The fact happened: the S15 case stays for the supervisor to close; a sweep now opens nothing new.
        last = await call("POST", "/oversight/rules/sweeps", officer, 201,
                          json={"as_of": AS_OF, "months": [*months]})
        assert sum(r.get("created", 0) for r in last["rules"].values()) == 0, last
        assert len(await cases()) == len(PLANTED)
        assert await call("GET", "/oversight/admin/dead-letters", staff("it_admin", "it.ma")) == []
        print(f"\noversight scenario: {len(found)} cases, {time.perf_counter() - started:.1f} s")


class _AppClient:
    """What tests.support.oversight.publish needs of a client: the app (its bus)."""

    def __init__(self, app) -> None:  # noqa: ANN001
        self.app = app
