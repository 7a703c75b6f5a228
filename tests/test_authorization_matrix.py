"""Authorisation matrix: every route of every service and of the gateway, against no token, broken tokens
and a token for each role, compared with the policy the route declares in its OpenAPI document. A new route without
a policy cannot even start (enforce_route_policies); one whose guard disagrees with its declaration fails here."""

import base64
import json
from datetime import timedelta

import pytest

from gateway.app import create_app as create_gateway
from services.kernel.auth import ROLES, TokenClaims, generate_key_pair, issue_token
from services.kernel.service_app import create_service_app
from services.kernel.settings import SERVICES, Settings
from sifund import services as catalogue
from tests.support.apps import bearer, running_app

ROLE_NAMES = sorted(r for r in ROLES if r != "public")
COMPONENTS = [*SERVICES, "gateway"]


def build(component: str, settings: Settings):  # noqa: ANN201
    if component == "gateway":
        return create_gateway(settings)
    return create_service_app(catalogue.spec(component), settings)


def operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [(method.upper(), path, op) for path, ops in spec["paths"].items() for method, op in ops.items()]


def concrete(path: str, op: dict) -> str:
    for param in op.get("parameters", []):
        if param["in"] == "path":
            value = "1" if param.get("schema", {}).get("type") == "integer" else "x"
            path = path.replace("{" + param["name"] + "}", value)
    return path


def broken_tokens(settings: Settings) -> dict[str, dict[str, str]]:
    claims = TokenClaims(subject="mallory", kind="user", roles=tuple(ROLE_NAMES), region="150100")
    expired, _ = issue_token(settings, claims, lifetime=timedelta(seconds=-5))
    other_private, _ = generate_key_pair()
    foreign, _ = issue_token(settings.model_copy(update={"jwt_private_key": other_private}), claims)
    genuine, _ = issue_token(settings, TokenClaims(subject="eve", kind="user", roles=("agency_clerk",), region="150100"))
    header, payload, signature = genuine.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["roles"] = ROLE_NAMES  # privilege escalation attempt with the original signature
    forged_payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    refresh, _ = issue_token(settings, claims, token_type="refresh", lifetime=timedelta(hours=1))
    return {
        "no token": {},
        "expired": {"Authorization": f"Bearer {expired}"},
        "signed with another key": {"Authorization": f"Bearer {foreign}"},
        "tampered": {"Authorization": f"Bearer {header}.{forged_payload}.{signature}"},
        "refresh token as access": {"Authorization": f"Bearer {refresh}"},
        "not a jwt": {"Authorization": "Bearer not-a-token"},
    }


async def call(client, method: str, path: str, headers: dict):  # noqa: ANN001
    kwargs = {"headers": headers}
    if method in ("POST", "PUT", "PATCH"):
        kwargs["json"] = {}
    return await client.request(method, path, **kwargs)


@pytest.mark.parametrize("component", COMPONENTS)
async def test_every_route_enforces_its_declared_policy(component, make_settings, nats_server):
    settings = make_settings(nats_server.url, rate_limit_token_per_ip_per_minute=10_000,
                             rate_limit_per_ip_per_minute=100_000, rate_limit_per_principal_per_minute=100_000)
    bad = broken_tokens(settings)
    async with running_app(build(component, settings)) as client:
        spec = (await client.get("/openapi.json")).json()
        ops = operations(spec)
        assert ops, "no routes?"
        checked = 0
        for method, path, op in ops:
            roles = op.get("x-sifund-roles")
            is_public = op.get("x-sifund-public", False)
            assert roles or is_public, f"{component} {method} {path} declares no policy"
            url = concrete(path, op)
            if is_public:
                response = await call(client, method, url, {})
                assert response.status_code not in (401, 403), f"{component} {method} {path} is public but refused"
                continue
            for label, headers in bad.items():
                response = await call(client, method, url, headers)
                assert response.status_code == 401, f"{component} {method} {path} with {label}: {response.status_code}"
                assert response.json()["error"]["code"] == "UNAUTHENTICATED"
            for role in ROLE_NAMES:
                response = await call(client, method, url, bearer(settings, role, region="150100"))
                if role in roles:
                    assert response.status_code not in (401, 403), \
                        f"{component} {method} {path} refused {role}: {response.text}"
                    required_query = any(p["in"] == "query" and p.get("required") for p in op.get("parameters", []))
                    if method == "GET" and "{" not in path and not required_query:
                        assert 200 <= response.status_code < 300, f"{component} GET {path} as {role}: {response.text}"
                else:
                    assert response.status_code == 403, f"{component} {method} {path} let {role} in: {response.status_code}"
                    assert response.json()["error"]["code"] == "FORBIDDEN"
                checked += 1
        assert checked > 0
