"""The first vertical slice: an employer registered in accounts reaches oversight through JetStream."""


from stdnum.cn import uscc as uscc_mod
from tests.support.e2e import REGION, VALID_USCC, employer, wait_for


def make_uscc(serial: int) -> str:
    body = f"91110000{serial:09d}"
    return body + uscc_mod.calc_check_digit(body)


async def test_registered_employer_reaches_oversight(start_service, auth):
    clerk = auth("agency_clerk", region=REGION, subject="clerk.zhang")
    async with start_service("accounts") as accounts, start_service("oversight") as oversight:
        response = await accounts.post("/employers", json=employer(), headers=clerk)
        assert response.status_code == 201, response.text
        registered = response.json()
        assert registered["region"] == REGION and response.headers["x-request-id"]

        async def mirrored():
            r = await oversight.get("/mirror/employers", params={"uscc": VALID_USCC}, headers=auth("oversight_officer"))
            return r.json()

        rows = await wait_for(mirrored)
        assert rows[0]["employer_id"] == registered["id"]
        assert rows[0]["name"] == "呼和浩特市某某有限公司"

        auditor = auth("internal_auditor")
        head = (await accounts.get("/audit/head", headers=auditor)).json()
        assert head["seq"] == 1
        assert (await accounts.get("/audit/verify", headers=auditor)).json()["ok"] is True
        [entry] = (await accounts.get("/audit/entries", headers=auditor)).json()
        assert (entry["actor_id"], entry["actor_role"], entry["action"]) == ("clerk.zhang", "agency_clerk", "employer.register")
        assert entry["request_id"] == response.headers["x-request-id"]


async def test_invalid_input_is_refused_with_a_stable_code(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        bad = VALID_USCC[:-1] + ("0" if VALID_USCC[-1] != "0" else "1")
        response = await accounts.post("/employers", json=employer(uscc=bad), headers=clerk)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "INVALID_USCC"
        assert "校验位" in response.json()["error"]["message"]

        short = await accounts.post("/employers", json=employer(uscc="9111"), headers=clerk)
        assert short.status_code == 422 and short.json()["error"]["code"] == "INVALID_USCC"

        region = await accounts.post("/employers", json=employer(region="159999"), headers=clerk)
        assert region.status_code == 422 and region.json()["error"]["code"] == "INVALID_REGION_CODE"

        missing_name = await accounts.post("/employers", json={"uscc": VALID_USCC, "region": REGION}, headers=clerk)
        assert missing_name.status_code == 422
        assert missing_name.json()["error"]["code"] == "VALIDATION_ERROR"
        assert (await accounts.get("/admin/outbox", headers=auth("it_admin"))).json()["backlog"] == 0


async def test_duplicate_registration_is_a_conflict_and_emits_nothing(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        first = await accounts.post("/employers", json=employer(name="甲公司"), headers=clerk)
        assert first.status_code == 201
        second = await accounts.post("/employers", json=employer(name="乙公司"), headers=clerk)
        assert second.status_code == 409
        assert second.json()["error"]["code"] == "EMPLOYER_ALREADY_REGISTERED"
        assert (await accounts.get("/audit/head", headers=auth("internal_auditor"))).json()["seq"] == 1
        assert (await accounts.get("/admin/outbox", headers=auth("it_admin"))).json()["backlog"] in (0, 1)


async def test_a_district_clerk_cannot_act_on_another_district(start_service, auth):
    xincheng = auth("agency_clerk", region="150102")
    huimin = auth("agency_clerk", region="150103")
    city_reviewer = auth("agency_reviewer", region="150100")
    async with start_service("accounts") as accounts:
        refused = await accounts.post("/employers", json=employer(region="150102"), headers=huimin)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "OUT_OF_REGION"
        created = (await accounts.post("/employers", json=employer(region="150102"), headers=xincheng)).json()
        assert (await accounts.get(f"/employers/{created['id']}", headers=huimin)).status_code == 403
        assert (await accounts.get(f"/employers/{created['id']}", headers=city_reviewer)).status_code == 200
        assert (await accounts.get("/employers", headers=huimin)).json()["items"] == []
        assert len((await accounts.get("/employers", headers=city_reviewer)).json()["items"]) == 1


async def test_employer_listing_pages_with_a_cursor(start_service, auth):
    clerk = auth("agency_clerk", region=REGION)
    async with start_service("accounts") as accounts:
        for i in range(5):
            r = await accounts.post("/employers", json=employer(uscc=make_uscc(i + 1), name=f"单位{i}"), headers=clerk)
            assert r.status_code == 201
        page1 = (await accounts.get("/employers", params={"limit": 3}, headers=clerk)).json()
        assert len(page1["items"]) == 3 and page1["next_cursor"]
        page2 = (await accounts.get("/employers", params={"limit": 3, "after": page1["next_cursor"]},
                                    headers=clerk)).json()
        assert len(page2["items"]) == 2 and page2["next_cursor"] is None
        ids = [e["id"] for e in page1["items"] + page2["items"]]
        assert len(set(ids)) == 5
        missing = await accounts.get("/employers/nope", headers=clerk)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "EMPLOYER_NOT_FOUND"
