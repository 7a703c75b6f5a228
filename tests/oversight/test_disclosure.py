"""Public disclosure (003 二.4): income, expenditure and balance per fund and month, open to anyone
without a token, only for months the supervisor closed, frozen at the close (a later event does not change what was
published), with fund-level sums only — no person, employer, account or staff member in the answer."""

import json

from tests.support.oversight import approved_budget, people  # noqa: F401 - fixture
from tests.support.oversight import PEN, UNEMP, Feed, posted, settled

YEAR = 2024

ALLOWED_KEYS = {"year", "month", "months", "funds", "fund", "fund_name", "income", "expenditure", "period_surplus",
                "accumulated_balance",
                "totals", "basis", "year_to_date", "budget", "approved_on", "approval_ref", "adjustments"}


def keys(value: object) -> set[str]:
    if isinstance(value, dict):
        found = set(value)
        for key, child in value.items():
            if key != "basis":  # explanatory texts keyed by figure name
                found |= keys(child)
        return found
    if isinstance(value, list):
        return set().union(*(keys(v) for v in value)) if value else set()
    return set()


def month_of_events(feed: Feed, m: int) -> None:
    p = YEAR * 100 + m
    # two employers, persons with their ids on every line: none of it may reach the public
    feed(posted((PEN, p, "employer-a", 16_000 * m, 8_000 * m), (PEN, p, "employer-b", 3_200, 1_600),
                (UNEMP, p, "employer-a", 500, 200), prefix=f"m{m}-", batch=f"b{m}"),
         settled(f"f{m}", f"run{m}", PEN, p, (f"pl{m}", 20_000, "paid"), (f"pf{m}", 777, "failed")))


async def test_public_figures_for_closed_months_only_and_frozen(start_service, people, auth):  # noqa: F811
    officer = people["officer"]
    async with start_service("oversight") as client:
        feed = Feed(client.app.state.engine)
        for m in (1, 2, 3):
            month_of_events(feed, m)

        # Nothing closed yet: nothing published (the latest closed month is none), without any token.
        empty = await client.get("/disclosure/funds")
        assert empty.status_code == 200 and empty.json()["months"] == []
        r = await client.get(f"/disclosure/funds/{PEN}/{YEAR}")
        assert r.status_code == 404 and r.json()["error"]["code"] == "NOTHING_DISCLOSED"

        for m in (1, 2):
            closed = await client.post(f"/reconciliation/months/{YEAR * 100 + m}/close", json={}, headers=officer)
            assert closed.status_code == 201, closed.text

        # By default the latest closed month, and the answer names it
        latest = (await client.get("/disclosure/funds")).json()
        assert [m["month"] for m in latest["months"]] == [202402]
        assert (latest["year"], latest["month"]) == (YEAR, 202402)
        # the month's surplus and the fund's balance accumulated over the closed months, each labelled
        assert [(f["fund"], f["period_surplus"], f["accumulated_balance"]) for f in latest["months"][0]["funds"]] == [
            (PEN, "328.00", "416.00"), (UNEMP, "7.00", "14.00")]
        assert latest["months"][0]["totals"]["accumulated_balance"] == "430.00"
        assert "当期收支结余" in latest["basis"]["period_surplus"] and "累计结余" in latest["basis"]["accumulated_balance"]
        year = await client.get("/disclosure/funds", params={"year": YEAR})
        assert year.status_code == 200
        body = year.json()
        assert [m["month"] for m in body["months"]] == [202401, 202402]  # 202403 is past but open: not shown
        january = body["months"][0]
        assert january["funds"] == [
            {"fund": PEN, "fund_name": "企业职工基本养老保险基金", "income": "288.00", "expenditure": "200.00",
             "period_surplus": "88.00", "accumulated_balance": "88.00"},
            {"fund": UNEMP, "fund_name": "失业保险基金", "income": "7.00", "expenditure": "0.00", "period_surplus": "7.00",
             "accumulated_balance": "7.00"}]
        assert january["totals"] == {"income": "295.00", "expenditure": "200.00", "period_surplus": "95.00",
                                     "accumulated_balance": "95.00"}
        assert (body["year"], body["month"]) == (YEAR, None)

        one = await client.get("/disclosure/funds", params={"year": YEAR, "month": 2})
        assert [f["income"] for f in one.json()["months"][0]["funds"]] == ["528.00", "7.00"]
        r = await client.get("/disclosure/funds", params={"year": YEAR, "month": 3})
        assert r.status_code == 404 and r.json()["error"]["code"] == "MONTH_NOT_DISCLOSED"
        r = await client.get("/disclosure/funds", params={"month": 1})
        assert r.status_code == 422 and r.json()["error"]["code"] == "YEAR_REQUIRED"
        assert (await client.get("/disclosure/funds", params={"year": 1999})).status_code == 422

        # A late posting for January arrives after the close: the published figure does not move.
        feed(posted((PEN, 202401, "employer-c", 100_000, 0), prefix="late"))
        again = (await client.get("/disclosure/funds", params={"year": YEAR, "month": 1})).json()
        assert again["months"][0]["funds"][0]["income"] == "288.00"

        # One fund's year: the closed months with running year-to-date figures.
        fund = (await client.get(f"/disclosure/funds/{PEN}/{YEAR}")).json()
        assert [(m["month"], m["income"], m["expenditure"], m["period_surplus"], m["accumulated_balance"],
                 m["year_to_date"]) for m in fund["months"]] == [
            (202401, "288.00", "200.00", "88.00", "88.00",
             {"income": "288.00", "expenditure": "200.00", "period_surplus": "88.00"}),
            (202402, "528.00", "200.00", "328.00", "416.00",
             {"income": "816.00", "expenditure": "400.00", "period_surplus": "416.00"})]
        assert fund["totals"] == {"income": "816.00", "expenditure": "400.00", "period_surplus": "416.00"}
        assert fund["budget"] is None  # no approved budget

        # A draft budget stays internal; the approved one is public.
        await client.post("/budget", json={"fund": UNEMP, "year": YEAR, "lines": {"contributions": "90.00"}},
                          headers=people["drafter"])
        assert (await client.get(f"/disclosure/funds/{UNEMP}/{YEAR}")).json()["budget"] is None
        await approved_budget(client, people)
        budget = (await client.get(f"/disclosure/funds/{PEN}/{YEAR}")).json()["budget"]
        assert (budget["income"], budget["expenditure"], budget["period_surplus"], budget["adjustments"]) == \
            ("1512345.67", "1251000.00", "261345.67", 0)

        # No personal or per-employer data, no staff: only fund-level keys and figures.
        answers = [body, one.json(), fund, (await client.get(f"/disclosure/funds/{PEN}/{YEAR}")).json()]
        for answer in answers:
            assert keys(answer) <= ALLOWED_KEYS, keys(answer) - ALLOWED_KEYS
            text = json.dumps(answer, ensure_ascii=False)
            for secret in ("person", "employer-", "pl1", "officer", "acc.zhang", "fin.", "run1", "e1"):
                assert secret not in text, secret

        # Public: any caller, with or without a token, reads the same; nobody can write.
        assert (await client.get("/disclosure/funds", params={"year": YEAR}, headers=people["clerk"])).json() == body
        assert (await client.post("/disclosure/funds", json={})).status_code == 405
