"""The first vertical slice: an employer registered in accounts reaches oversight through JetStream."""

import asyncio

from stdnum.cn import uscc as uscc_mod

VALID_USCC = "91110000600037341L"


def make_uscc(serial: int) -> str:
    body = f"91110000{serial:09d}"
    return body + uscc_mod.calc_check_digit(body)


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def test_registered_employer_reaches_oversight(start_service):
    async with start_service("accounts") as accounts, start_service("oversight") as oversight:
        response = await accounts.post("/employers", json={"uscc": VALID_USCC, "name": "呼和浩特市某某有限公司"})
        assert response.status_code == 201, response.text
        employer = response.json()
        assert response.headers["x-request-id"]

        async def mirrored():
            r = await oversight.get("/mirror/employers", params={"uscc": VALID_USCC})
            return r.json()

        rows = await wait_for(mirrored)
        assert rows[0]["employer_id"] == employer["id"]
        assert rows[0]["name"] == "呼和浩特市某某有限公司"

        head = (await accounts.get("/audit/head")).json()
        assert head["seq"] == 1
        assert (await accounts.get("/audit/verify")).json()["ok"] is True


async def test_invalid_uscc_is_refused_with_a_stable_code(start_service):
    async with start_service("accounts") as accounts:
        bad = VALID_USCC[:-1] + ("0" if VALID_USCC[-1] != "0" else "1")
        response = await accounts.post("/employers", json={"uscc": bad, "name": "某公司"})
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "INVALID_USCC"
        assert "校验位" in response.json()["error"]["message"]

        short = await accounts.post("/employers", json={"uscc": "9111", "name": "某公司"})
        assert short.status_code == 422 and short.json()["error"]["code"] == "INVALID_USCC"

        missing_name = await accounts.post("/employers", json={"uscc": VALID_USCC})
        assert missing_name.status_code == 422
        assert missing_name.json()["error"]["code"] == "VALIDATION_ERROR"
        assert (await accounts.get("/admin/outbox")).json()["backlog"] == 0


async def test_duplicate_registration_is_a_conflict_and_emits_nothing(start_service):
    async with start_service("accounts") as accounts:
        first = await accounts.post("/employers", json={"uscc": VALID_USCC, "name": "甲公司"})
        assert first.status_code == 201
        second = await accounts.post("/employers", json={"uscc": VALID_USCC, "name": "乙公司"})
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "EMPLOYER_ALREADY_REGISTERED"
        assert (await accounts.get("/audit/head")).json()["seq"] == 1


async def test_employer_listing_pages_with_a_cursor(start_service):
    async with start_service("accounts") as accounts:
        for i in range(5):
            r = await accounts.post("/employers", json={"uscc": make_uscc(i + 1), "name": f"单位{i}"})
            assert r.status_code == 201
        page1 = (await accounts.get("/employers", params={"limit": 3})).json()
        assert len(page1["items"]) == 3 and page1["next_cursor"]
        page2 = (await accounts.get("/employers", params={"limit": 3, "after": page1["next_cursor"]})).json()
        assert len(page2["items"]) == 2 and page2["next_cursor"] is None
        ids = [e["id"] for e in page1["items"] + page2["items"]]
        assert len(set(ids)) == 5
        missing = await accounts.get("/employers/nope")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "EMPLOYER_NOT_FOUND"
