"""A platform for the console's tests: the four services and the gateway (with the console) under uvicorn on loopback,
one real nats-server, the demo users (one per staff role) in the gateway's identity store; and a browser-like client
that signs in through the console's login form."""

import asyncio
import re
from datetime import date
from pathlib import Path
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from collections.abc import AsyncIterator

import httpx

from gateway.app import create_app as create_gateway
from gateway.identity.admin import create_demo
from services.kernel.service_app import create_service_app
from services.kernel.settings import SERVICES, Settings
from sifund import services as catalogue
from tests.support.apps import TEST_PRIVATE_KEY, TEST_PUBLIC_KEY
from tests.support.gateway import serve

# The browser suite's planted discrepancy: a tax line on this fund that finance never receives.
PLANTED_FUND = "UNEMP"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class ConsolePlatform:
    gateway_url: str
    passwords: dict[str, str] = field(default_factory=dict)  # demo user name → password
    settings: object = None

    def user_of(self, role: str) -> tuple[str, str]:
        username = f"demo_{role}"
        return username, self.passwords[username]


def platform_settings(directory: Path, nats_url: str, **overrides) -> Settings:
    """Settings as tests/conftest.py's make_settings writes them, for a platform shared by a module's tests (SQLite
    files under ``directory``)."""
    values = {f"{n}_database_url": f"sqlite:///{directory / f'{n}.db'}" for n in [*SERVICES, "gateway"]}
    values.update(data_dir=directory / "var", nats_url=nats_url, consumer_retry_delay_seconds=0.05,
                  outbox_poll_seconds=0.05, jwt_private_key=TEST_PRIVATE_KEY, jwt_public_key=TEST_PUBLIC_KEY)
    return Settings(**{**values, **overrides})


@asynccontextmanager
async def console_platform(make_settings, nats_url: str) -> AsyncIterator[ConsolePlatform]:  # noqa: ANN001
    """``make_settings(nats_url, **overrides)``: the fixture of tests/conftest.py, or platform_settings bound to a
    directory."""
    async with AsyncExitStack() as stack:
        urls = {}
        base = make_settings(nats_url)
        for name in SERVICES:
            settings = make_settings(nats_url, **{f"{n}_url": u for n, u in urls.items()})
            urls[name] = await stack.enter_async_context(serve(create_service_app(catalogue.spec(name), settings)))
        gateway_settings = make_settings(nats_url, **{f"{n}_url": u for n, u in urls.items()})
        gateway_url = await stack.enter_async_context(serve(create_gateway(gateway_settings)))
        created = create_demo(gateway_settings)
        yield ConsolePlatform(gateway_url, {c["username"]: c["password"] for c in created if c["kind"] == "user"},
                              base)


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, html[:500]
    return found.group(1)


async def console_sign_in(client: httpx.AsyncClient, username: str, password: str,
                          next_path: str = "/console/") -> httpx.Response:
    """The login form, as a browser submits it (the CSRF field from the page, the cookie kept by the client)."""
    form = await client.get("/console/login", params={"next": next_path})
    return await client.post("/console/login", data={"csrf_token": csrf_of(form.text), "username": username,
                                                     "password": password, "next": next_path})


async def api_headers(platform: ConsolePlatform, role: str) -> dict[str, str]:
    """The bearer header of the role's demo user, for a test's own calls to the API (not through the console)."""
    username, password = platform.user_of(role)
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=180.0) as api:
        token = (await api.post("/auth/token", data={"username": username, "password": password})).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


async def plan_inspection(platform: ConsolePlatform, planned_on: date, target_unit: str, scope: str) -> str:
    """An inspection planned through the API by the oversight officer (its team: the officer and one more), its
    console page's path."""
    username, _ = platform.user_of("oversight_officer")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=180.0) as api:
        planned = await api.post("/api/oversight/inspections", headers=await api_headers(
            platform, "oversight_officer"), json={
            "target_unit": target_unit, "target_level": "lower_level", "scope": scope,
            "planned_on": planned_on.isoformat(), "members": [
                {"inspector_id": username, "name": "监督员甲", "leader": True},
                {"inspector_id": "inspector-2", "name": "监督员乙"}]})
    assert planned.status_code == 201, planned.text
    return f"/console/oversight/inspections/{planned.json()['id']}"


async def staff_user(platform: ConsolePlatform, username: str, role: str) -> tuple[str, str]:
    """One more staff user with ``role``, created and granted by the IT administrator through the API (a second
    person of the same role, for a step the API wants taken by another); its user name and password."""
    password = "Second-Person-2026!"
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=180.0) as api:
        admin = await api_headers(platform, "it_admin")
        user = {"username": username, "display_name": username, "unit": "演示单位", "region": "150102",
                "password": password}
        created = await api.post("/identity/users", headers=admin, json=user)
        assert created.status_code == 201, created.text
        granted = await api.post(f"/identity/users/{username}/roles", headers=admin,
                                 json={"role": role, "reason": "任职文件"})
        assert granted.status_code == 201, granted.text
    return username, password


JOB_PATIENCE_SECONDS = 60.0


async def followed_to_the_end(browser: httpx.AsyncClient, url: str) -> str:
    """The job page, asked again as htmx does while it says it polls, until it no longer does."""
    deadline = asyncio.get_running_loop().time() + JOB_PATIENCE_SECONDS
    while True:
        page = await browser.get(url, headers={"HX-Request": "true"})
        assert page.status_code == 200, page.text[:300]
        if 'hx-trigger="every 2s"' not in page.text:
            return page.text
        assert asyncio.get_running_loop().time() < deadline, page.text[:500]
        await asyncio.sleep(0.2)
