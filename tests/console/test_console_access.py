"""The console's access rules, without a browser, on a real platform (four services and the gateway under uvicorn,
one nats-server, the demo users): every route needs a login except the public pages and the login page; the menu
of each role holds exactly the screens whose every API route admits the role (read here from the services' own
OpenAPI, independently of the console), a screen outside it is refused (403); CSRF on every POST; the session
cookie is httpOnly, SameSite=Strict and opaque; logout revokes the refresh token; an expired session goes back to
the login page with ``next``."""

import re

import httpx
import pytest
from starlette.routing import Mount

from gateway.app import create_app as create_gateway
from gateway.console.menu import PUBLIC_SCREENS, SCREENS, SCREENS_BY_KEY, RoutePolicies
from gateway.console.session import COOKIE, SessionCodec
from gateway.identity.service import STAFF_ROLES
from services.kernel.openapi import api_routes
from services.kernel.service_app import create_service_app
from services.kernel.settings import SERVICES
from sifund import services as catalogue
from tests.support.console import console_sign_in, csrf_of

# A console page makes several gateway calls (up to five OpenAPI documents on a cold policy cache): on a loaded
# machine (load 40 on 2 cores was seen) one page can take longer than httpx's usual 30 s.
LOADED_MACHINE_TIMEOUT = 180.0
SAMPLE_PATH_VALUES = {"month": "202611", "fund": "PEN_EMP", "case_id": "no-such-case", "action": "close",
                      "claim_id": "no-such-claim", "person_id": "no-such-person", "employer_id": "no-such-employer",
                      "job_id": "no-such-job", "sweep_id": "no-such-sweep", "year": "2026", "report_id": "no-such-report",
                      "inspection_id": "no-such-inspection", "incident_id": "no-such-incident",
                      "object_id": "no-such-object", "step": "close",
                      "kind": "person", "username": "nobody", "role": "cashier",
                      "correction_id": "no-such-correction", "name": "receipt", "run_id": "no-such-run",
                      "file_id": "no-such-file", "adjustment_id": "no-such-adjustment",
                      "dossier_id": "no-such-dossier", "sample_id": "no-such-sample", "sampled_id": "no-such-item",
                      "export_id": "no-such-export"}


# The platform (conftest.py) is shared by the package's modules; SQLite whatever the run, hence `once`.
pytestmark = pytest.mark.once


@pytest.fixture
def settings(platform):
    return platform.settings


def console_routes(gateway) -> list[tuple[str, str, str | None]]:  # noqa: ANN001
    """(method, /console path, screen key or None) of every route of the console app."""
    mount = next(r for r in gateway.routes if isinstance(r, Mount) and r.path == "/console")
    found = []
    for path, route in api_routes(mount.app.app):  # mount.app: the console behind its OwnScope wrapper
        keys = [getattr(d.call, "screen_key", "unset") for d in route.dependant.dependencies]
        keys += [getattr(sub.call, "screen_key", "unset") for d in route.dependant.dependencies
                 for sub in d.dependencies]
        declared = [k for k in keys if k != "unset"]
        assert declared, f"console route {route.path} declares neither a screen nor an open page"
        for method in route.methods:
            found.append((method, "/console" + path, declared[0]))
    return found


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PATH_VALUES[m.group(1)], path)


def independent_policies(settings) -> RoutePolicies:  # noqa: ANN001
    """The policies from the apps' own OpenAPI documents, built in this process (not through the console)."""
    documents = {name: create_service_app(catalogue.spec(name), settings).openapi() for name in SERVICES}
    documents["gateway"] = create_gateway(settings).openapi()
    return RoutePolicies.from_documents(documents)


async def test_every_console_route_requires_login_except_the_public_pages(platform, settings):
    routes = console_routes(create_gateway(settings))
    assert {key for _, _, key in routes} == set(SCREENS_BY_KEY) | {None}  # None: the login and logout pages
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=LOADED_MACHINE_TIMEOUT) as browser:
        for method, path, key in routes:
            url = concrete(path)
            if method == "POST":
                response = await browser.post(url, data={"anything": "x"})
                assert response.status_code == 403, (url, response.status_code)  # no CSRF token: refused first
                continue
            response = await browser.get(url)
            if key is None or key in PUBLIC_SCREENS:
                assert response.status_code in (200, 404, 422), (url, response.status_code)
                assert response.status_code != 303
            else:
                assert response.status_code == 303, (url, response.status_code)
                assert response.headers["location"].startswith("/console/login?next=%2Fconsole%2F"), url


async def test_each_role_sees_exactly_the_screens_its_api_admits(platform, settings):
    policies = independent_policies(settings)
    for role in sorted(STAFF_ROLES):
        expected = {s.key for s in SCREENS if s.in_menu and all(policies.admits(r, [role]) for r in s.routes)}
        async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=LOADED_MACHINE_TIMEOUT) as browser:
            signed_in = await console_sign_in(browser, *platform.user_of(role))
            assert signed_in.status_code == 303, signed_in.text[:300]
            home = await browser.get("/console/")
            assert home.status_code == 200, home.text[:300]
            shown = set(re.findall(r'data-screen="(\w+)"', home.text))
            assert shown == expected, role
            for screen in SCREENS:
                if screen.key in PUBLIC_SCREENS or not screen.in_menu:
                    continue
                response = await browser.get(screen.href)
                if screen.key in expected:
                    assert response.status_code == 200, (role, screen.key, response.text[:300])
                else:
                    assert response.status_code == 403, (role, screen.key)
                    assert "无权访问" in response.text


async def test_the_menu_and_the_independent_policies_agree_on_who_gets_what(settings):
    """Every screen's routes exist in the published documents (a renamed route would hide a screen for all)."""
    policies = independent_policies(settings)
    for screen in SCREENS:
        for route in screen.routes:
            assert route in policies.policies, (screen.key, route)
    supervisors = policies.menu(["oversight_officer"])
    assert "reconciliation" in {s.key for _, screens in supervisors for s in screens}
    clerks = {s.key for _, screens in policies.menu(["agency_clerk"]) for s in screens}
    assert not clerks & {"reconciliation", "users"}


async def test_login_refusals_csrf_cookie_and_logout(platform):
    username, password = platform.user_of("oversight_officer")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=LOADED_MACHINE_TIMEOUT) as browser:
        wrong = await console_sign_in(browser, username, "not-the-password")
        assert wrong.status_code == 401 and "用户名或密码错误" in wrong.text
        form = await browser.get("/console/login")
        forged = await browser.post("/console/login", data={"csrf_token": "forged", "username": username,
                                                            "password": password})
        assert forged.status_code == 403
        signed_in = await browser.post("/console/login", data={
            "csrf_token": csrf_of(form.text), "username": username, "password": password,
            "next": "https://evil.example/"})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/console/"  # no open redirect
        cookie = next(h for h in signed_in.headers.get_list("set-cookie") if h.startswith(COOKIE + "="))
        attributes = cookie.lower()
        assert "httponly" in attributes and "samesite=strict" in attributes and "path=/console" in attributes
        value = browser.cookies[COOKIE]
        assert "eyJ" not in value  # the JWTs are encrypted in the cookie, not readable from it

        session = SessionCodec(platform.settings).loads(value)
        refresh_token = session.refresh_token
        assert session.signed_in and "oversight_officer" in session.roles

        home = await browser.get("/console/")
        no_csrf = await browser.post("/console/logout")
        assert no_csrf.status_code == 403
        out = await browser.post("/console/logout", data={"csrf_token": csrf_of(home.text)})
        assert out.status_code == 303 and out.headers["location"] == "/console/login"
        assert (await browser.get("/console/")).status_code == 303
        reuse = await browser.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": refresh_token})
        assert reuse.status_code == 401  # revoked at logout


async def test_an_expired_session_is_refreshed_then_sent_to_login_with_next(platform):
    username, password = platform.user_of("oversight_officer")
    codec = SessionCodec(platform.settings)
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=LOADED_MACHINE_TIMEOUT) as browser:
        await console_sign_in(browser, username, password)
        session = codec.loads(browser.cookies[COOKIE])
        session.access_expires_at = 0  # the access token is due: refreshed transparently
        browser.cookies.set(COOKIE, codec.dumps(session), domain="127.0.0.1", path="/console")
        page = await browser.get("/console/oversight/cases")  # two calls in parallel: one rotation
        assert page.status_code == 200, page.headers
        refreshed = codec.loads(browser.cookies[COOKIE])
        assert refreshed.refresh_token != session.refresh_token and refreshed.access_expires_at > 0

        refreshed.access_expires_at, refreshed.refresh_token = 0, "expired-or-revoked"
        browser.cookies.set(COOKIE, codec.dumps(refreshed), domain="127.0.0.1", path="/console")
        again = await browser.get("/console/oversight/cases?severity=high")
        assert again.status_code == 303
        assert again.headers["location"] == "/console/login?next=%2Fconsole%2Foversight%2Fcases%3Fseverity%3Dhigh"
        back = await console_sign_in(browser, username, password, next_path="/console/oversight/cases?severity=high")
        assert back.headers["location"] == "/console/oversight/cases?severity=high"


async def test_a_tampered_cookie_is_an_anonymous_session(platform):
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=LOADED_MACHINE_TIMEOUT) as browser:
        browser.cookies.set(COOKIE, "gAAAAAB" + "x" * 200, domain="127.0.0.1", path="/console")
        assert (await browser.get("/console/")).status_code == 303


async def test_security_headers_admit_the_console(platform):
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=LOADED_MACHINE_TIMEOUT) as browser:
        page = await browser.get("/console/public/disclosure")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert page.headers["cache-control"] == "no-store"
        for src in re.findall(r'<script src="([^"]+)"', page.text):
            asset = await browser.get(src)
            assert asset.status_code == 200 and "javascript" in asset.headers["content-type"], src
            assert asset.headers.get("cache-control") != "no-store"
        root = await browser.get("/")
        assert root.status_code == 307 and root.headers["location"] == "/console/"


async def _open_case(platform, fact: str) -> str:  # noqa: ANN001
    """A case opened by hand, issued to the demo users' unit (a unit's staff see only their unit's cases)."""
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=LOADED_MACHINE_TIMEOUT) as api:
        username, password = platform.user_of("oversight_officer")
        token = (await api.post("/auth/token", data={"username": username, "password": password})).json()
        opened = await api.post("/api/oversight/cases", headers={"Authorization": f"Bearer {token['access_token']}"},
                                json={"fact_key": fact, "severity": "high", "subject_type": "employer", "unit": "演示社保经办机构",
                                      "subject_id": "E-1", "title": "控制台测试案件", "seed_clause": "001 第二十九条",
                                      "amount_fen": 123456789})
        assert opened.status_code in (200, 201), opened.text
        return opened.json()["id"]


async def test_a_case_page_shows_its_timeline_and_offers_actions_by_role(platform):
    case_id = await _open_case(platform, "console-roles")
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=LOADED_MACHINE_TIMEOUT) as auditor:
        await console_sign_in(auditor, *platform.user_of("internal_auditor"))
        listing = await auditor.get("/console/oversight/cases")
        assert listing.status_code == 200 and "控制台测试案件" in listing.text and "1,234,567.89" in listing.text
        page = await auditor.get(f"/console/oversight/cases/{case_id}")
        assert page.status_code == 200 and 'id="case-timeline"' in page.text and "已下发" in page.text
        assert "investigate-form" not in page.text  # the auditor reads; only an officer's token may investigate
        refused = await auditor.post(f"/console/oversight/cases/{case_id}/investigate",
                                     data={"csrf_token": csrf_of(page.text), "note": "越权"})
        assert refused.status_code == 403


async def test_a_form_typed_when_the_session_expired_is_posted_after_login(platform):
    case_id = await _open_case(platform, "console-expired")
    username, password = platform.user_of("oversight_officer")
    codec = SessionCodec(platform.settings)
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=LOADED_MACHINE_TIMEOUT) as browser:
        await console_sign_in(browser, username, password)
        page = await browser.get(f"/console/oversight/cases/{case_id}")
        assert "investigate-form" in page.text
        session = codec.loads(browser.cookies[COOKIE])
        session.access_expires_at, session.refresh_token = 0, "expired-or-revoked"
        browser.cookies.set(COOKIE, codec.dumps(session), domain="127.0.0.1", path="/console")
        typed = "电话核实单位负责人，已调取工资表"
        expired = await browser.post(f"/console/oversight/cases/{case_id}/investigate",
                                     data={"csrf_token": csrf_of(page.text), "note": typed})
        assert expired.status_code == 401 and "登录已过期" in expired.text
        carried = re.search(r'name="carried" value="([^"]+)"', expired.text).group(1)
        assert typed not in expired.text  # sealed, not echoed in clear
        login = await browser.post("/console/login", data={
            "csrf_token": csrf_of(expired.text), "username": username, "password": password,
            "next": re.search(r'name="next" value="([^"]+)"', expired.text).group(1), "carried": carried})
        assert login.status_code == 200 and "data-resubmit" in login.text and typed in login.text
        action = re.search(r'<form method="post" action="([^"]+)" data-resubmit', login.text).group(1)
        assert action == f"/console/oversight/cases/{case_id}/investigate"
        fields = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', login.text))
        posted = await browser.post(action, data=fields)
        assert posted.status_code == 303
        detail = await browser.get(posted.headers["location"])
        assert "核查中" in detail.text and typed in detail.text
