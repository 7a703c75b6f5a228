"""The registry's lists sorted by the server (services.kernel.paging.SortKeys): persons by name across pages (the
next_cursor handed back), employers by name, imports by time; 422 SORT_KEY_UNKNOWN for a key a list does not admit
(a citizen id is no sort key: it would leak an order of masked numbers)."""

from tests.support.accounts import cid, full_employer, person_body
from tests.support.registry import error_code


async def walk(client, path: str, headers: dict, sort: str, **params) -> list[dict]:  # noqa: ANN001
    shown, cursor = [], None
    while True:
        query = {"sort": sort, "limit": 2, **params, **({"after": cursor} if cursor else {})}
        response = await client.get(path, headers=headers, params=query)
        assert response.status_code == 200, response.text
        shown += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return shown


async def test_persons_employers_and_imports_sort_on_the_server(start_service, auth):
    clerk = auth("agency_clerk", subject="clerk.li")
    async with start_service("accounts") as accounts:
        for serial, name in ((31, "排序乙"), (32, "排序甲"), (33, "排序丙"), (34, "排序甲")):
            response = await accounts.post("/persons", headers=clerk, json=person_body(cid(serial), name))
            assert response.status_code == 201, response.text
        for serial in (7, 5, 6):
            response = await accounts.post("/employers", headers=clerk, json=full_employer(serial))
            assert response.status_code == 201, response.text

        by_name = await walk(accounts, "/persons", clerk, "-name", name="排序")
        assert [p["name"] for p in by_name] == ["排序甲", "排序甲", "排序乙", "排序丙"]  # code points, descending
        assert by_name[0]["id"] > by_name[1]["id"]  # the tie by id, descending too
        assert [p["id"] for p in await walk(accounts, "/persons", clerk, "name", name="排序")] == [
            p["id"] for p in reversed(by_name)]
        employers = await walk(accounts, "/employers", clerk, "name")
        assert [e["name"] for e in employers] == sorted(e["name"] for e in employers) and len(employers) == 3
        assert (await accounts.get("/imports", headers=clerk, params={"sort": "-created_at"})).status_code == 200

        for path, key in (("/persons", "citizen_id"), ("/employers", "contact_phone"), ("/imports", "mode")):
            refused = await accounts.get(path, headers=clerk, params={"sort": key})
            assert refused.status_code == 422 and error_code(refused) == "SORT_KEY_UNKNOWN", (path, refused.text)
