"""The remittances list sorted by the server (services.kernel.paging.SortKeys): by amount both ways across pages
(the cursor in X-Next-Cursor), ties by id, and 422 SORT_KEY_UNKNOWN for a key the list does not admit."""

from tests.support.registry import error_code


async def test_remittances_sort_by_amount_across_pages_and_refuse_an_unknown_key(start_service, auth):
    finance = auth("finance_officer", subject="fin.li")
    async with start_service("collection") as client:
        for n, amount in enumerate(("300.00", "100.00", "300.00", "200.00")):
            response = await client.post("/treasury/remittances", headers=finance, json={
                "fund": "PEN_RES", "period": 202609, "amount": amount, "remitted_on": "2026-10-09",
                "voucher_no": f"SORT-{n}"})
            assert response.status_code == 201, response.text

        async def walk(sort: str) -> list[tuple[str, str]]:
            shown, cursor = [], None
            while True:
                params = {"sort": sort, "limit": 3, **({"after": cursor} if cursor else {})}
                response = await client.get("/treasury/remittances", headers=finance, params=params)
                assert response.status_code == 200, response.text
                shown += [(r["amount"], r["id"]) for r in response.json()]
                cursor = response.headers.get("X-Next-Cursor")
                if cursor is None:
                    return shown

        ascending = await walk("amount")
        assert [a for a, _ in ascending] == ["100.00", "200.00", "300.00", "300.00"]
        assert ascending[2][1] < ascending[3][1]  # the tie by id
        assert await walk("-amount") == list(reversed(ascending))

        unknown = await client.get("/treasury/remittances", headers=finance, params={"sort": "-lateness"})
        assert unknown.status_code == 422 and error_code(unknown) == "SORT_KEY_UNKNOWN"
        assert "amount" in unknown.json()["error"]["details"]["allowed"]
        malformed = await client.get("/treasury/remittances", headers=finance, params={"sort": "amount;drop"})
        assert malformed.status_code == 422
