"""Through the gateway with the right roles — register an employer and 3 persons, enrol them,
transfer one, upload a death record for another; status, enrolments and events reflect it, and oversight has
mirrored it. Accounts and oversight run under uvicorn; the gateway proxies to them over HTTP."""

from contextlib import AsyncExitStack


from services.kernel.service_app import create_service_app
from sifund import services as catalogue
from tests.support.apps import bearer
from tests.support.gateway import gateway_client, serve
from tests.support.e2e import DISTRICT, citizen_id, eventually, uscc


async def test_registry_flow_through_the_gateway(settings, make_settings, nats_server):
    async with AsyncExitStack() as stack:
        urls = {name: await stack.enter_async_context(serve(create_service_app(catalogue.spec(name), settings)))
                for name in ("accounts", "oversight")}
        gateway = await stack.enter_async_context(gateway_client(make_settings(
            nats_server.url, accounts_url=urls["accounts"], oversight_url=urls["oversight"])))
        clerk = bearer(settings, "agency_clerk", region="150100", subject="clerk.wang")
        officer = bearer(settings, "oversight_officer", region="150100", subject="officer.li")
        partner = bearer(settings, "partner_system", region="150100", subject="civil_affairs")

        async def post(path, body, headers, expected=201):  # noqa: ANN001, ANN202
            response = await gateway.post(f"/api/accounts{path}", json=body, headers=headers)
            assert response.status_code == expected, f"{path}: {response.text}"
            return response.json()

        first = await post("/employers", {"uscc": uscc(1), "name": "甲有限公司", "region": DISTRICT,
                                          "industry_risk_class": 2}, clerk)
        second = await post("/employers", {"uscc": uscc(2), "name": "乙有限公司", "region": DISTRICT}, clerk)
        people = [await post("/persons", {"citizen_id": citizen_id(birth, serial), "name": name, "region": DISTRICT},
                             clerk)
                  for birth, serial, name in (("19850101", 11, "张三"), ("19870505", 22, "李四"), ("19900909", 31, "王五"))]
        enrolments = [await post("/enrolments", {"person_id": p["id"], "fund": "PEN_EMP", "employer_id": first["id"],
                                                 "start_period": 202601}, clerk) for p in people]

        # A second pension scheme for the same person is refused.
        refused = await gateway.post("/api/accounts/enrolments", headers=clerk, json={
            "person_id": people[2]["id"], "fund": "PEN_RES", "start_period": 202601})
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "DUPLICATE_PENSION"

        await post(f"/enrolments/{enrolments[0]['id']}/transfer",
                           {"employer_id": second["id"], "start_period": 202607, "reason": "调动"}, clerk)
        death = await post("/exchange/batches", {"batch_key": "MZ-2026-11-001", "kind": "death", "records": [
            {"record_id": "r1", "citizen_id": people[1]["citizen_id"], "name": "李四", "death_date": "2026-10-01"},
            {"record_id": "r2", "citizen_id": citizen_id("19860101", 41), "name": "不在册", "death_date": "2026-10-02"},
        ]}, partner)
        assert (death["applied"], death["unmatched"]) == (1, 1)
        again = await gateway.post("/api/accounts/exchange/batches", headers=partner, json={
            "batch_key": "MZ-2026-11-001", "kind": "death", "records": [
                {"record_id": "r1", "citizen_id": people[1]["citizen_id"], "name": "李四", "death_date": "2026-10-01"},
                {"record_id": "r2", "citizen_id": citizen_id("19860101", 41), "name": "不在册",
                 "death_date": "2026-10-02"}]})
        assert again.status_code == 200 and again.json()["duplicate_upload"] is True

        # The registry reflects it.
        deceased = (await gateway.get(f"/api/accounts/persons/{people[1]['id']}", headers=clerk)).json()
        assert (deceased["life_status"], deceased["death_date"]) == ("deceased", "2026-10-01")
        history = (await gateway.get(f"/api/accounts/enrolments/by-person/{people[0]['id']}", headers=clerk)).json()
        by_status = {e["status"]: e for e in history["items"]}
        assert by_status["stopped"]["end_period"] == 202606 and by_status["stopped"]["employer_id"] == first["id"]
        assert by_status["active"]["start_period"] == 202607 and by_status["active"]["employer_id"] == second["id"]

        # Oversight has mirrored it, from events alone.
        async def mirrored(person_id):  # noqa: ANN001, ANN202
            return await gateway.get(f"/api/oversight/mirror/persons/{person_id}", headers=officer)

        dead = await eventually(lambda: mirrored(people[1]["id"]),
                                lambda r: r.status_code == 200 and r.json()["life_status"] == "deceased")
        assert "died" in [e["kind"] for e in dead.json()["life_events"]]
        transferred = await eventually(lambda: mirrored(people[0]["id"]),
                                       lambda r: r.status_code == 200 and len(r.json()["enrolments"]) == 2)
        assert sorted(e["status"] for e in transferred.json()["enrolments"]) == ["active", "stopped"]
        employers = (await gateway.get("/api/oversight/mirror/employers", headers=officer)).json()
        assert {e["employer_id"] for e in employers} == {first["id"], second["id"]}
