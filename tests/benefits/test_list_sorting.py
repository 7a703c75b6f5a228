"""Benefits' lists sorted by the server (services.kernel.paging.SortKeys): claims and background jobs accept their
keys and refuse another with 422 SORT_KEY_UNKNOWN; a cursor of another sort is refused, never misread."""

from tests.support.registry import error_code


async def test_claims_and_jobs_take_a_sort_key_and_refuse_an_unknown_one(start_service, auth):
    reviewer, cashier = auth("agency_reviewer"), auth("cashier")
    async with start_service("benefits") as benefits:
        for path, headers, key, unknown in (("/claims", reviewer, "-submitted_at", "computation"),
                                            ("/jobs", cashier, "kind", "params")):
            listed = await benefits.get(path, headers=headers, params={"sort": key})
            assert listed.status_code == 200 and listed.json()["items"] == [], listed.text
            refused = await benefits.get(path, headers=headers, params={"sort": unknown})
            assert refused.status_code == 422 and error_code(refused) == "SORT_KEY_UNKNOWN", refused.text
            foreign = await benefits.get(path, headers=headers, params={"sort": key, "after": "no-such-cursor"})
            assert foreign.status_code == 422 and error_code(foreign) == "SORT_CURSOR_INVALID", foreign.text
