"""Fund budgets (002 二(三)、二(四)、三(一)、三(二)、三(三)): the line items, the approval chain with a different
person at each step, adjustments that change the budget only when approved, monthly execution from oversight's
ledger against time progress with early warnings (a planted deviation and an exact near-miss), final accounts with
ledger actuals and entered items, and who may do what."""

from decimal import Decimal


import pytest

from services.kernel import clock
from services.oversight.budget.items import EXPENDITURE_ITEMS, INCOME_ITEMS
from services.oversight.budget.service import judge
from tests.support.oversight import PEN, Feed, posted, settled
from tests.support.oversight import LINES, YEAR, approved_budget, call
from tests.support.oversight import people  # noqa: F401 - fixtures

TEN = Decimal(10)


def error(response) -> str:  # noqa: ANN001
    return response.json()["error"]["code"]


# -- the approval chain ----------------------------------------------------------------------------------------------


async def test_line_items_and_the_approval_chain_with_distinct_persons(start_service, people, auth):
    async with start_service("oversight") as client:
        items = await call(client, "GET", "/budget/items", people["auditor"])
        assert [i["item"] for i in items if i["side"] == "income"] == list(INCOME_ITEMS)
        assert [i["item"] for i in items if i["side"] == "expenditure"] == list(EXPENDITURE_ITEMS)
        assert {i["item"] for i in items if i["from_ledger"]} == {"contributions", "benefits"}

        # Amounts are yuan strings (floats and sub-fen amounts refused), items from the catalogue, never negative.
        for lines, code in (({"contributions": 1.5}, "INVALID_AMOUNT"), ({"contributions": "1.005"}, "INVALID_AMOUNT"),
                            ({"salaries": "1.00"}, "UNKNOWN_ITEM"), ({"interest": "-1.00"}, "NEGATIVE_AMOUNT")):
            r = await client.post("/budget", json={"fund": PEN, "year": YEAR, "lines": lines},
                                  headers=people["drafter"])
            assert r.status_code == 422 and error(r) == code, r.text
        budget = await call(client, "POST", "/budget", people["drafter"],
                            {"fund": PEN, "year": YEAR, "lines": LINES, "note": "2024年度预算草案"}, expected=201)
        assert budget["status"] == "draft" and budget["version"] == 0 and budget["fund_name"] == "企业职工基本养老保险基金"
        assert len(budget["lines"]) == 13
        amounts = {ln["item"]: ln["amount"] for ln in budget["lines"]}
        assert amounts["interest"] == "12345.67" and amounts["other_income"] == "0.00"
        assert budget["totals"] == {"income": "1512345.67", "expenditure": "1251000.00", "surplus": "261345.67"}
        r = await client.post("/budget", json={"fund": PEN, "year": YEAR}, headers=people["agency"])
        assert r.status_code == 409 and error(r) == "BUDGET_EXISTS"

        base = f"/budget/{PEN}/{YEAR}"
        # Not yet submitted: finance cannot review; the draft can still be changed by the agency.
        r = await client.post(f"{base}/review", json={}, headers=people["reviewer"])
        assert r.status_code == 409 and error(r) == "INVALID_BUDGET_STATUS"
        changed = await call(client, "PUT", f"{base}/lines", people["agency"], {"lines": {"interest": "20000.00"}})
        assert {ln["item"]: ln["amount"] for ln in changed["lines"]}["interest"] == "20000.00"
        await call(client, "POST", f"{base}/submit", people["drafter"])
        r = await client.put(f"{base}/lines", json={"lines": {"interest": "1.00"}}, headers=people["drafter"])
        assert r.status_code == 409 and error(r) == "INVALID_BUDGET_STATUS"

        # The drafter cannot review, even holding a finance role too.
        both = auth("accountant", "finance_officer", subject="acc.zhang")
        r = await client.post(f"{base}/review", json={}, headers=both)
        assert r.status_code == 403 and error(r) == "SAME_PERSON"
        # Roles: the agency and oversight cannot review.
        for who in ("drafter", "officer", "auditor"):
            assert (await client.post(f"{base}/review", json={}, headers=people[who])).status_code == 403

        # Returned with a reason, back to draft, submitted again.
        returned = await call(client, "POST", f"{base}/return", people["reviewer"], {"reason": "利息收入测算偏高"})
        assert returned["status"] == "draft" and returned["returned_reason"] == "利息收入测算偏高"
        assert returned["submitted_by"] is None
        await call(client, "POST", f"{base}/submit", people["agency"])
        reviewed = await call(client, "POST", f"{base}/review", people["reviewer"], {"note": "复审通过"})
        assert (reviewed["status"], reviewed["reviewed_by"]) == ("reviewed", "fin.li")

        approval = {"approval_ref": "人大批准〔2024〕1号", "approved_on": "2024-01-15"}
        # The reviewer cannot approve too, nor can the submitter; the approval cannot be dated in the future.
        r = await client.post(f"{base}/approve", json=approval, headers=people["reviewer"])
        assert r.status_code == 403 and error(r) == "SAME_PERSON"
        r = await client.post(f"{base}/approve", json=approval,
                              headers=auth("finance_officer", "agency_approver", subject="agency.qian"))
        assert r.status_code == 403 and error(r) == "SAME_PERSON"
        r = await client.post(f"{base}/approve", json={**approval, "approved_on": "2999-01-01"},
                              headers=people["approver"])
        assert r.status_code == 422 and error(r) == "DATE_IN_FUTURE"
        approved = await call(client, "POST", f"{base}/approve", people["approver"], approval)
        assert (approved["status"], approved["version"], approved["approved_by"], approved["approval_ref"]) == \
            ("approved", 1, "fin.wang", "人大批准〔2024〕1号")
        assert all(ln["approved"] == ln["amount"] for ln in approved["lines"])
        assert {approved["created_by"], approved["submitted_by"], approved["reviewed_by"], approved["approved_by"]} \
            == {"acc.zhang", "agency.qian", "fin.li", "fin.wang"}

        # Approved: no more direct changes, no second approval.
        r = await client.put(f"{base}/lines", json={"lines": {"interest": "1.00"}}, headers=people["drafter"])
        assert r.status_code == 409
        r = await client.post(f"{base}/approve", json=approval, headers=auth("finance_officer", subject="fin.zhao"))
        assert r.status_code == 409 and error(r) == "INVALID_BUDGET_STATUS"

        # Readers: oversight, auditors, finance, the agency's accountant and approver; not a clerk.
        for who in ("officer", "auditor", "reviewer", "drafter", "agency"):
            assert (await client.get(base, headers=people[who])).status_code == 200
        assert (await client.get(base, headers=people["clerk"])).status_code == 403
        assert (await client.post("/budget", json={"fund": "UNEMP", "year": YEAR},
                                  headers=people["officer"])).status_code == 403
        listed = await call(client, "GET", "/budget?year=2024", people["officer"])
        assert [b["fund"] for b in listed] == [PEN]

        entries = await call(client, "GET", f"/audit/entries?entity_id={budget['id']}", people["auditor"])
        assert [(e["action"], e["actor_id"]) for e in entries] == [
            ("budget.drafted", "acc.zhang"), ("budget.lines_set", "agency.qian"), ("budget.submitted", "acc.zhang"),
            ("budget.returned", "fin.li"), ("budget.submitted", "agency.qian"), ("budget.reviewed", "fin.li"),
            ("budget.approved", "fin.wang")]


# -- adjustments -----------------------------------------------------------------------------------------------------


async def test_adjustments_change_the_budget_only_when_approved(start_service, people, auth):
    async with start_service("oversight") as client:
        base = f"/budget/{PEN}/{YEAR}"
        await call(client, "POST", "/budget", people["drafter"], {"fund": PEN, "year": YEAR, "lines": LINES},
                   expected=201)
        change = {"lines": {"benefits": "1350000.00", "fiscal_subsidy": "300000.00"},
                  "reason": "国家调整基本养老金标准（重大政策因素）"}
        r = await client.post(f"{base}/adjustments", json=change, headers=people["drafter"])
        assert r.status_code == 409 and error(r) == "BUDGET_NOT_APPROVED"
        await call(client, "POST", f"{base}/submit", people["drafter"])
        await call(client, "POST", f"{base}/review", people["reviewer"])
        await call(client, "POST", f"{base}/approve", people["approver"],
                   {"approval_ref": "人大批准〔2024〕1号", "approved_on": "2024-01-15"})

        r = await client.post(f"{base}/adjustments", json={"lines": {"benefits": "1200000.00"}, "reason": "x"},
                              headers=people["drafter"])
        assert r.status_code == 422 and error(r) == "NO_CHANGE"
        adjustment = await call(client, "POST", f"{base}/adjustments", people["agency"], change, expected=201)
        aid = adjustment["id"]
        # Only the changed item is kept, with the amounts before and after.
        assert [(ln["item"], ln["before"], ln["after"], ln["change"]) for ln in adjustment["lines"]] == [
            ("benefits", "1200000.00", "1350000.00", "150000.00")]
        assert adjustment["seq"] == 1 and adjustment["base_version"] == 1 and adjustment["status"] == "draft"
        r = await client.post(f"{base}/adjustments", json={"lines": {"interest": "1.00"}, "reason": "y"},
                              headers=people["drafter"])
        assert r.status_code == 409 and error(r) == "ADJUSTMENT_OPEN"

        async def benefits() -> tuple[str, int]:
            body = await call(client, "GET", base, people["officer"])
            return {ln["item"]: ln["amount"] for ln in body["lines"]}["benefits"], body["version"]

        path = f"{base}/adjustments/{aid}"
        await call(client, "POST", f"{path}/submit", people["agency"])
        assert await benefits() == ("1200000.00", 1)
        r = await client.post(f"{path}/review", json={}, headers=auth("finance_officer", "agency_approver",
                                                                      subject="agency.qian"))
        assert r.status_code == 403 and error(r) == "SAME_PERSON"
        await call(client, "POST", f"{path}/review", people["reviewer"])
        assert await benefits() == ("1200000.00", 1)  # reviewed is not approved
        approval = {"approval_ref": "人大常委会批准调整〔2024〕7号", "approved_on": "2024-06-20"}
        r = await client.post(f"{path}/approve", json=approval, headers=people["reviewer"])
        assert r.status_code == 403 and error(r) == "SAME_PERSON"
        assert (await client.post(f"{path}/approve", json=approval, headers=people["drafter"])).status_code == 403
        done = await call(client, "POST", f"{path}/approve", people["approver"], approval)
        assert (done["status"], done["applied_version"]) == ("approved", 2)
        assert await benefits() == ("1350000.00", 2)
        shown = await call(client, "GET", base, people["auditor"])
        line = next(ln for ln in shown["lines"] if ln["item"] == "benefits")
        assert (line["amount"], line["approved"]) == ("1350000.00", "1200000.00")  # the original is kept
        assert shown["adjustments"] == 1 and shown["open_adjustment"] is None

        # A second adjustment, withdrawn by the agency: the budget does not move.
        second = await call(client, "POST", f"{base}/adjustments", people["drafter"],
                            {"lines": {"interest": "15000.00"}, "reason": "利率下调"}, expected=201)
        assert second["seq"] == 2 and second["base_version"] == 2
        assert (await client.post(f"{base}/adjustments/{second['id']}/withdraw",
                                  headers=people["reviewer"])).status_code == 403
        withdrawn = await call(client, "POST", f"{base}/adjustments/{second['id']}/withdraw", people["drafter"])
        assert withdrawn["status"] == "withdrawn"
        r = await client.post(f"{base}/adjustments/{second['id']}/submit", headers=people["drafter"])
        assert r.status_code == 409
        history = await call(client, "GET", f"{base}/adjustments", people["officer"])
        assert [(a["seq"], a["status"]) for a in history] == [(1, "approved"), (2, "withdrawn")]
        assert (await client.get(f"{base}/adjustments", headers=people["clerk"])).status_code == 403

        entries = await call(client, "GET", f"/audit/entries?entity_id={aid}", people["auditor"])
        assert [e["action"] for e in entries] == ["budget_adjustment.drafted", "budget_adjustment.submitted",
                                                  "budget_adjustment.reviewed", "budget_adjustment.approved"]
        budget_entries = await call(client, "GET", f"/audit/entries?entity_id={shown['id']}", people["auditor"])
        assert budget_entries[-1]["action"] == "budget.adjusted"


# -- execution and early warning -------------------------------------------------------------------------------------


@pytest.mark.unit
def test_judge_is_exact_at_the_threshold():
    # 42 of 120 after 3 months: 35 % against 25 % — exactly 10 points: not beyond the line.
    assert judge(42, 120, 3, threshold=TEN).kind is None
    assert judge(43, 120, 3, threshold=TEN).kind == "over"
    assert judge(17, 120, 3, threshold=TEN).kind == "under"  # 14.17 %: −10.83
    assert judge(18, 120, 3, threshold=TEN).kind is None  # 15 %: exactly −10
    assert judge(5, 0, 3, threshold=TEN).kind == "unbudgeted"
    assert judge(0, 0, 3, threshold=TEN).kind is None


async def test_monthly_execution_against_time_progress_with_early_warning(start_service, people):
    fen = 100  # per yuan
    async with start_service("oversight") as client:
        feed = Feed(client.app.state.engine)
        base = f"/budget/{PEN}/{YEAR}"
        await call(client, "POST", "/budget", people["drafter"], {"fund": PEN, "year": YEAR, "lines": LINES},
                   expected=201)
        r = await client.get(f"{base}/execution?month=3", headers=people["officer"])
        assert r.status_code == 409 and error(r) == "BUDGET_NOT_APPROVED"
        await call(client, "POST", f"{base}/submit", people["drafter"])
        await call(client, "POST", f"{base}/review", people["reviewer"])
        await call(client, "POST", f"{base}/approve", people["approver"],
                   {"approval_ref": "人大批准〔2024〕1号", "approved_on": "2024-01-15"})

        # Contributions: 100 000.00 a month (the budget is 1 200 000.00): exactly on time progress.
        # Benefits: 100 000 + 100 000 + 220 000 in Q1 (35 % against 25 %: exactly 10 points, the near-miss), then
        # 200 000 in April (51.67 % against 33.33 %: 18.33 points over: the planted deviation).
        for m in (1, 2, 3):
            period = YEAR * 100 + m
            feed(posted((PEN, period, "e1", 60_000 * fen, 40_000 * fen), prefix=f"c{m}-",
                        batch=f"b{m}"))
        for m, amount in ((1, 100_000), (2, 100_000), (3, 220_000), (4, 200_000)):
            period = YEAR * 100 + m
            feed(settled(f"f{m}", f"run{m}", PEN, period, (f"l{m}", amount * fen, "paid"),
                         (f"l{m}-x", 999 * fen, "failed")))  # a returned payment is not expenditure
        # Another fund's money and another year's do not count.
        feed(posted(("UNEMP", 202402, "e1", 500_000 * fen, 0), prefix="u"),
             posted((PEN, 202312, "e1", 900_000 * fen, 0), prefix="old"))

        q1 = await call(client, "GET", f"{base}/execution?month=3", people["auditor"])
        assert (q1["month"], q1["time_progress"], q1["threshold"], q1["budget_version"]) == (202403, "25.00", "10.00", 1)
        items = {i["item"]: i for i in q1["items"]}
        assert (items["contributions"]["actual"], items["contributions"]["execution"],
                items["contributions"]["deviation"], items["contributions"]["warning"]) == \
            ("300000.00", "25.00", "0.00", False)
        assert (items["benefits"]["actual"], items["benefits"]["execution"], items["benefits"]["deviation"],
                items["benefits"]["warning"]) == ("420000.00", "35.00", "10.00", False)
        assert q1["warnings"] == []
        months = items["benefits"]["months"]
        assert [(m["month"], m["actual"], m["cumulative"], m["execution"], m["time_progress"]) for m in months] == [
            (202401, "100000.00", "100000.00", "8.33", "8.33"), (202402, "100000.00", "200000.00", "16.67", "16.67"),
            (202403, "220000.00", "420000.00", "35.00", "25.00")]
        assert "fiscal_subsidy" in q1["not_from_ledger"] and q1["open_months"] == [202401, 202402, 202403]

        # A tighter threshold (query) turns the near-miss into a warning.
        tight = await call(client, "GET", f"{base}/execution?month=3&threshold=9.99", people["officer"])
        assert [(w["item"], w["kind"], w["deviation"]) for w in tight["warnings"]] == [("benefits", "over", "10.00")]

        april = await call(client, "GET", f"{base}/execution?month=4", people["officer"])
        assert april["time_progress"] == "33.33"
        warnings = april["warnings"]
        assert [(w["item"], w["kind"], w["month"], w["execution"], w["deviation"]) for w in warnings] == [
            ("benefits", "over", 202404, "51.67", "18.33")]
        assert "超过预警线 10 个百分点" in warnings[0]["message"]
        items = {i["item"]: i for i in april["items"]}
        assert (items["contributions"]["execution"], items["contributions"]["deviation"],
                items["contributions"]["warning"]) == ("25.00", "-8.33", False)  # behind, within the line
        # By June nothing more came in: contributions 25 % against 50 % — behind by 25 points; benefits at
        # 51.67 % have been caught up by time.
        june = await call(client, "GET", f"{base}/execution?month=6", people["officer"])
        assert [(w["item"], w["kind"], w["deviation"]) for w in june["warnings"]] == [
            ("contributions", "under", "-25.00")]

        # A month the supervisor closed is marked closed.
        closed = await client.post("/reconciliation/months/202401/close", json={}, headers=people["officer"])
        assert closed.status_code == 201, closed.text
        again = await call(client, "GET", f"{base}/execution?month=2", people["officer"])
        assert [m["closed"] for m in again["items"][0]["months"]] == [True, False]
        assert again["open_months"] == [202402]

        r = await client.get(f"{base}/execution?month=13", headers=people["officer"])
        assert r.status_code == 422
        assert (await client.get(f"{base}/execution?month=3", headers=people["clerk"])).status_code == 403
        r = await client.get(f"/budget/UNEMP/{YEAR}/execution?month=3", headers=people["officer"])
        assert r.status_code == 404 and error(r) == "BUDGET_NOT_FOUND"


# -- final accounts --------------------------------------------------------------------------------------------------


async def test_final_accounts_from_the_ledger_and_entered_items(start_service, people, auth):
    async with start_service("oversight") as client:
        feed = Feed(client.app.state.engine)
        base = f"/budget/{PEN}/{YEAR}"
        await call(client, "POST", "/budget", people["drafter"], {"fund": PEN, "year": YEAR, "lines": LINES},
                   expected=201)
        r = await client.post(f"{base}/final-accounts", json={}, headers=people["drafter"])
        assert r.status_code == 409 and error(r) == "BUDGET_NOT_APPROVED"
        await call(client, "POST", f"{base}/submit", people["drafter"])
        await call(client, "POST", f"{base}/review", people["reviewer"])
        await call(client, "POST", f"{base}/approve", people["approver"],
                   {"approval_ref": "人大批准〔2024〕1号", "approved_on": "2024-01-15"})
        # The year's ledger: contributions 1 100 000.00 over the year, benefits 1 260 000.50.
        for m in range(1, 12):
            feed(posted((PEN, YEAR * 100 + m, "e1", 6_000_000, 4_000_000), prefix=f"c{m}-", batch=f"b{m}"))
        feed(settled("f1", "run1", PEN, 202406, ("l1", 60_000_000, "paid")),
             settled("f2", "run2", PEN, 202412, ("l2", 66_000_050, "paid")),
             settled("f3", "run3", PEN, 202501, ("l3", 1_000_000, "paid")))  # next year's

        r = await client.post(f"{base}/final-accounts", json={"entered": {"contributions": "1.00"}},
                              headers=people["drafter"])
        assert r.status_code == 422 and error(r) == "LEDGER_ITEM_NOT_ENTERED"
        entered = {"fiscal_subsidy": "310000.00", "interest": "11000.10", "non_benefit": "900.00"}
        final = await call(client, "POST", f"{base}/final-accounts", people["drafter"],
                           {"entered": entered, "note": "2024年度决算草案"}, expected=201)
        lines = {ln["item"]: ln for ln in final["lines"]}
        assert (lines["contributions"]["source"], lines["contributions"]["actual"], lines["contributions"]["budget"],
                lines["contributions"]["variance"], lines["contributions"]["execution"]) == \
            ("ledger", "1100000.00", "1200000.00", "-100000.00", "91.67")
        assert (lines["benefits"]["actual"], lines["benefits"]["variance"]) == ("1260000.50", "60000.50")
        assert (lines["fiscal_subsidy"]["source"], lines["fiscal_subsidy"]["actual"],
                lines["fiscal_subsidy"]["variance"]) == ("entered", "310000.00", "10000.00")
        assert lines["transfer_out"]["actual"] == "0.00" and lines["transfer_out"]["variance"] == "-50000.00"
        assert lines["other_income"]["execution"] is None  # nothing budgeted
        assert final["totals"]["actual"] == {"income": "1421000.10", "expenditure": "1260900.50",
                                             "surplus": "160099.60"}
        assert final["totals"]["budget"] == {"income": "1512345.67", "expenditure": "1251000.00",
                                             "surplus": "261345.67"}
        assert final["totals"]["variance"]["surplus"] == "-101246.07"
        assert final["status"] == "draft" and final["budget_version"] == 1 and len(final["open_months"]) == 12

        # An adjustment approved after the draft: the draft no longer matches the budget and cannot be submitted.
        adjustment = await call(client, "POST", f"{base}/adjustments", people["drafter"],
                                {"lines": {"transfer_out": "60000.00"}, "reason": "跨省转移人数增加"}, expected=201)
        path = f"{base}/adjustments/{adjustment['id']}"
        await call(client, "POST", f"{path}/submit", people["drafter"])
        await call(client, "POST", f"{path}/review", people["reviewer"])
        await call(client, "POST", f"{path}/approve", people["approver"],
                   {"approval_ref": "人大常委会批准调整〔2024〕9号", "approved_on": "2024-11-20"})
        r = await client.post(f"{base}/final-accounts/submit", headers=people["drafter"])
        assert r.status_code == 409 and error(r) == "BUDGET_CHANGED"

        # Redrawn while a draft (against the adjusted budget, an entered figure corrected); then the chain, each
        # step a different person.
        redrawn = await call(client, "POST", f"{base}/final-accounts", people["agency"],
                             {"entered": {**entered, "interest": "11000.00"}}, expected=201)
        assert redrawn["id"] == final["id"] and redrawn["note"] == "2024年度决算草案"
        assert redrawn["budget_version"] == 2
        lines = {ln["item"]: ln for ln in redrawn["lines"]}
        assert lines["interest"]["actual"] == "11000.00"
        assert (lines["transfer_out"]["budget"], lines["transfer_out"]["variance"]) == ("60000.00", "-60000.00")
        await call(client, "POST", f"{base}/final-accounts/submit", people["drafter"])
        r = await client.post(f"{base}/final-accounts", json={}, headers=people["drafter"])
        assert r.status_code == 409 and error(r) == "INVALID_BUDGET_STATUS"
        r = await client.post(f"{base}/adjustments", json={"lines": {"interest": "1.00"}, "reason": "x"},
                              headers=people["drafter"])
        assert r.status_code == 409 and error(r) == "FINAL_ACCOUNTS_STARTED"
        await call(client, "POST", f"{base}/final-accounts/review", people["reviewer"])
        approval = {"approval_ref": "人大常委会批准决算〔2025〕3号", "approved_on": "2025-06-30"}
        r = await client.post(f"{base}/final-accounts/approve", json=approval, headers=people["reviewer"])
        assert r.status_code == 403 and error(r) == "SAME_PERSON"
        done = await call(client, "POST", f"{base}/final-accounts/approve", people["approver"], approval)
        assert (done["status"], done["approved_by"]) == ("approved", "fin.wang")
        shown = await call(client, "GET", f"{base}/final-accounts", people["officer"])
        assert shown["status"] == "approved" and shown["totals"] == redrawn["totals"]
        assert (await client.get(f"{base}/final-accounts", headers=people["clerk"])).status_code == 403
        assert (await client.post(f"{base}/final-accounts", json={}, headers=people["officer"])).status_code == 403

        # The year must be over.
        this_year = clock.china_today().year
        await approved_budget(client, people, fund="UNEMP", year=this_year)
        r = await client.post(f"/budget/UNEMP/{this_year}/final-accounts", json={}, headers=people["drafter"])
        assert r.status_code == 422 and error(r) == "YEAR_NOT_OVER"
        r = await client.get(f"/budget/UNEMP/{this_year}/final-accounts", headers=people["officer"])
        assert r.status_code == 404 and error(r) == "FINAL_ACCOUNTS_NOT_FOUND"
