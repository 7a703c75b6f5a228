"""Identity and the guard through the gateway's HTTP API: tokens, administration, lockout, rate and size limits,
CORS, and the audit of mutating requests."""

import pytest

from gateway.identity.admin import create_demo
from tests.support.apps import bearer


@pytest.fixture
def gateway_settings(make_settings, nats_server):
    return make_settings(nats_server.url, login_max_failures=3)


def credentials(created: list[dict]) -> dict[str, str]:
    return {c["username"]: c["password"] for c in created}


async def token(gateway, username: str, password: str) -> dict[str, str]:  # noqa: ANN001
    response = await gateway.post("/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_password_and_client_grants_and_refresh(gateway_settings, start_gateway):
    demo = credentials(create_demo(gateway_settings))
    async with start_gateway(gateway_settings) as gateway:
        response = await gateway.post("/auth/token", data={"username": "demo_agency_clerk",
                                                           "password": demo["demo_agency_clerk"]})
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "bearer" and body["roles"] == ["agency_clerk"] and body["expires_in"] == 900
        me = await gateway.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.json()["subject"] == "demo_agency_clerk" and me.json()["region"] == gateway_settings.region

        refreshed = await gateway.post("/auth/token", data={"grant_type": "refresh_token",
                                                            "refresh_token": body["refresh_token"]})
        assert refreshed.status_code == 200 and refreshed.json()["refresh_token"] != body["refresh_token"]

        client = await gateway.post("/auth/token", data={"grant_type": "client_credentials", "client_id": "demo_tax",
                                                         "client_secret": demo["demo_tax"]})
        assert client.status_code == 200 and client.json()["roles"] == ["tax_system"]

        wrong = await gateway.post("/auth/token", data={"username": "demo_agency_clerk", "password": "nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "UNAUTHENTICATED"
        unsupported = await gateway.post("/auth/token", data={"grant_type": "implicit"})
        assert unsupported.status_code == 400 and unsupported.json()["error"]["code"] == "INVALID_GRANT"


async def test_lockout_through_the_api(gateway_settings, start_gateway):
    demo = credentials(create_demo(gateway_settings))
    async with start_gateway(gateway_settings) as gateway:
        for _ in range(3):
            r = await gateway.post("/auth/token", data={"username": "demo_cashier", "password": "Wrong-Password-1"})
            assert r.status_code == 401
        locked = await gateway.post("/auth/token", data={"username": "demo_cashier",
                                                         "password": demo["demo_cashier"]})
        unknown = await gateway.post("/auth/token", data={"username": "no_such_user",
                                                          "password": demo["demo_cashier"]})
        # A locked account is answered as a wrong password (no ACCOUNT_LOCKED revealing the name)
        assert locked.status_code == unknown.status_code == 401
        assert locked.json() == unknown.json()
        assert locked.json()["error"]["code"] == "UNAUTHENTICATED" and "ACCOUNT_LOCKED" not in locked.text
        assert locked.headers.get("www-authenticate") == unknown.headers.get("www-authenticate")
        admin = await token(gateway, "demo_it_admin", demo["demo_it_admin"])
        unlocked = await gateway.post("/identity/users/demo_cashier/unlock", json={"reason": "本人电话核实"},
                                      headers=admin)
        assert unlocked.status_code == 200
        await token(gateway, "demo_cashier", demo["demo_cashier"])


async def test_administration_refuses_incompatible_duties(gateway_settings, start_gateway):
    demo = credentials(create_demo(gateway_settings))
    async with start_gateway(gateway_settings) as gateway:
        admin = await token(gateway, "demo_it_admin", demo["demo_it_admin"])
        created = await gateway.post("/identity/users", headers=admin, json={
            "username": "li.kuaiji", "display_name": "李会计", "unit": "市社保中心", "region": "150100",
            "password": "Ledger-Keeper-9"})
        assert created.status_code == 201, created.text
        granted = await gateway.post("/identity/users/li.kuaiji/roles", headers=admin,
                                     json={"role": "accountant", "reason": "任职文件2026-12"})
        assert [r["role"] for r in granted.json()["roles"]] == ["accountant"]
        refused = await gateway.post("/identity/users/li.kuaiji/roles", headers=admin,
                                     json={"role": "cashier", "reason": "兼任"})
        assert refused.status_code == 409
        error = refused.json()["error"]
        assert error["code"] == "ROLE_CONFLICT" and "会计与出纳岗位不相容" in error["message"]
        assert error["details"] == {"rule": "ACCOUNTANT_CASHIER", "held_role": "accountant", "requested_role": "cashier"}

        weak = await gateway.post("/identity/users", headers=admin, json={
            "username": "wang.wu", "display_name": "王五", "unit": "u", "region": "150100", "password": "short"})
        assert weak.status_code == 422 and weak.json()["error"]["code"] == "PASSWORD_TOO_WEAK"
        bad_region = await gateway.post("/identity/users", headers=admin, json={
            "username": "wang.wu", "display_name": "王五", "unit": "u", "region": "999999",
            "password": "Ledger-Keeper-9"})
        assert bad_region.json()["error"]["code"] == "INVALID_REGION_CODE"

        clerk = await token(gateway, "demo_agency_clerk", demo["demo_agency_clerk"])
        forbidden = await gateway.post("/identity/users/li.kuaiji/roles", headers=clerk,
                                       json={"role": "agency_clerk", "reason": "x"})
        assert forbidden.status_code == 403

        rules = await gateway.get("/identity/conflict-rules", headers=admin)
        assert {r["code"] for r in rules.json()} == {"BUSINESS_FINANCE", "BUSINESS_IT", "ACCOUNTANT_CASHIER",
                                                     "OPERATING_OVERSIGHT"}

        client = await gateway.post("/identity/clients", headers=admin, json={
            "client_id": "bank_icbc", "name": "工商银行代发", "role": "bank_system", "region": "150100"})
        assert client.status_code == 201 and len(client.json()["client_secret"]) > 30


async def test_system_clients_are_listed_without_their_secrets(gateway_settings, start_gateway):
    demo = credentials(create_demo(gateway_settings))
    async with start_gateway(gateway_settings) as gateway:
        admin = await token(gateway, "demo_it_admin", demo["demo_it_admin"])
        created = await gateway.post("/identity/clients", headers=admin, json={
            "client_id": "bank.ccb", "name": "建设银行", "role": "bank_system", "region": "150102"})
        assert created.status_code == 201
        secret = created.json()["client_secret"]
        before = (await gateway.get("/identity/clients", headers=admin, params={"role": "bank_system"})).json()
        ccb = next(c for c in before if c["client_id"] == "bank.ccb")
        assert (ccb["name"], ccb["roles"], ccb["region"], ccb["disabled"], ccb["created_by"], ccb["last_token_at"]) \
            == ("建设银行", ["bank_system"], "150102", False, "demo_it_admin", None)
        assert {c["roles"][0] for c in before} == {"bank_system"}
        granted = await gateway.post("/auth/token", data={"grant_type": "client_credentials", "client_id": "bank.ccb",
                                                          "client_secret": secret})
        assert granted.status_code == 200
        listing = await gateway.get("/identity/clients", headers=admin, params={"limit": 500})
        assert listing.status_code == 200
        assert secret not in listing.text and "secret" not in listing.text  # neither the secret nor its hash
        ids = [c["client_id"] for c in listing.json()]
        assert ids == sorted(ids) and "demo_tax" in ids
        assert next(c for c in listing.json() if c["client_id"] == "bank.ccb")["last_token_at"] is not None
        page = (await gateway.get("/identity/clients", headers=admin, params={"after": "bank.ccb", "limit": 1})).json()
        assert [c["client_id"] for c in page] == [ids[ids.index("bank.ccb") + 1]]

        clerk = await token(gateway, "demo_agency_clerk", demo["demo_agency_clerk"])
        refused = await gateway.get("/identity/clients", headers=clerk)
        assert refused.status_code == 403
        auditor = await token(gateway, "demo_internal_auditor", demo["demo_internal_auditor"])
        assert (await gateway.get("/identity/clients", headers=auditor)).status_code == 200
        for bad in ({"role": "agency_clerk"}, {"status": "gone"}, {"limit": 0}, {"after": "Not Valid!"}):
            invalid = await gateway.get("/identity/clients", headers=admin, params=bad)
            assert invalid.status_code == 422, bad


async def test_mutating_requests_are_audited_in_the_gateway_chain(gateway_settings, start_gateway):
    demo = credentials(create_demo(gateway_settings))
    async with start_gateway(gateway_settings) as gateway:
        admin = await token(gateway, "demo_it_admin", demo["demo_it_admin"])
        await gateway.post("/identity/users/demo_cashier/disable", json={"reason": "离职"}, headers=admin)
        await gateway.post("/identity/users/nobody/disable", json={"reason": "离职"}, headers=admin)
        auditor = await token(gateway, "demo_internal_auditor", demo["demo_internal_auditor"])
        entries = (await gateway.get("/audit/entries", params={"limit": 1000}, headers=auditor)).json()
        requests = [e for e in entries if e["action"] == "http.request"]
        disable = [e for e in requests if e["entity_id"] == "POST /identity/users/demo_cashier/disable"]
        assert disable and disable[0]["actor_id"] == "demo_it_admin" and '"status":200' in disable[0]["detail"]
        refused = [e for e in requests if e["entity_id"] == "POST /identity/users/nobody/disable"]
        assert refused and '"result":"refused"' in refused[0]["detail"]
        assert any(e["action"] == "user.disable" and e["reason"] == "离职" for e in entries)
        assert (await gateway.get("/audit/verify", headers=auditor)).json()["ok"] is True


async def test_token_endpoint_is_rate_limited_per_ip(make_settings, nats_server, start_gateway):
    settings = make_settings(nats_server.url, rate_limit_token_per_ip_per_minute=3)
    async with start_gateway(settings) as gateway:
        codes = [(await gateway.post("/auth/token", data={"username": "x", "password": "y"})).status_code
                 for _ in range(4)]
        assert codes[:3] == [401, 401, 401]
        limited = await gateway.post("/auth/token", data={"username": "x", "password": "y"})
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "RATE_LIMITED"
        assert int(limited.headers["retry-after"]) >= 1


async def test_each_principal_is_rate_limited(make_settings, nats_server, start_gateway):
    settings = make_settings(nats_server.url, rate_limit_per_principal_per_minute=5)
    async with start_gateway(settings) as gateway:
        alice, bob = bearer(settings, "it_admin", subject="alice"), bearer(settings, "it_admin", subject="bob")
        codes = [(await gateway.get("/identity/conflict-rules", headers=alice)).status_code for _ in range(6)]
        assert codes[:5] == [200] * 5 and codes[5] == 429
        assert (await gateway.get("/identity/conflict-rules", headers=bob)).status_code == 200


async def test_oversized_requests_are_refused(make_settings, nats_server, start_gateway):
    settings = make_settings(nats_server.url, max_request_bytes=1000)
    async with start_gateway(settings) as gateway:
        declared = await gateway.post("/identity/users", content=b"x" * 2000,
                                      headers={"Content-Type": "application/json"})
        assert declared.status_code == 413 and declared.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"

        async def chunks():
            for _ in range(5):
                yield b"y" * 400

        streamed = await gateway.post("/identity/users", content=chunks(),
                                      headers={"Content-Type": "application/json", **bearer(settings, "it_admin")})
        assert streamed.status_code == 413
        # A read's body is held to the same limit; within it the read passes (the guard relays it untouched).
        declared_read = await gateway.request("GET", "/identity/conflict-rules", content=b"z" * 2000,
                                              headers=bearer(settings, "it_admin"))
        assert declared_read.status_code == 413
        read = await gateway.request("GET", "/identity/conflict-rules", content=b"z" * 10,
                                     headers=bearer(settings, "it_admin"))
        assert read.status_code == 200


async def test_a_file_for_a_job_may_be_larger_than_a_request(make_settings, nats_server, start_gateway):
    """Imports and tax-line files run as jobs: their bodies are a month of a city, limited by max_upload_bytes."""
    settings = make_settings(nats_server.url, max_request_bytes=1000, max_upload_bytes=5000)
    async with start_gateway(settings) as gateway:
        headers = {"Content-Type": "text/csv", **bearer(settings, "clerk")}
        for path in ("/api/accounts/imports/persons", "/api/collection/tax-payments/files"):
            passed = await gateway.post(path, content=b"x" * 2000, headers=headers)
            assert passed.status_code != 413, path  # on to the service (whatever it answers)
            refused = await gateway.post(path, content=b"x" * 6000, headers=headers)
            assert refused.status_code == 413 and refused.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
        ordinary = await gateway.post("/api/accounts/employers", content=b"x" * 2000, headers=headers)
        assert ordinary.status_code == 413
        assert (await gateway.get("/api/accounts/imports/persons", headers=headers)).status_code != 413


async def test_a_bad_token_is_turned_away_at_the_gateway(gateway_settings, start_gateway):
    async with start_gateway(gateway_settings) as gateway:
        r = await gateway.get("/api/accounts/employers", headers={"Authorization": "Bearer forged"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_cors_for_front_end_apps(gateway_settings, start_gateway):
    async with start_gateway(gateway_settings) as gateway:
        allowed = await gateway.options("/auth/token", headers={
            "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization"})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
        other = await gateway.options("/auth/token", headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in other.headers
