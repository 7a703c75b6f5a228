"""Security headers on every response of the gateway and the services, API
documentation on self-hosted assets only (rendered by a real headless browser under the policy), and OPTIONS
answered with the methods a path accepts."""

import asyncio
import re
import shutil
import subprocess
from urllib.parse import urljoin

import httpx
import pytest

from services.accounts.app import create_app as create_accounts_app
from services.kernel.settings import SERVICES

VALID_USCC = "91110000600037341L"
EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def assert_secure(response: httpx.Response, *, cacheable: bool = False) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get_list(name) == [value], (name, response.request.url)
    [csp] = response.headers.get_list("content-security-policy")
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert "server" not in response.headers, response.request.url
    if not cacheable:
        assert response.headers.get_list("cache-control") == ["no-store"], response.request.url


async def test_every_response_carries_the_security_headers(settings, make_settings, nats_server, serve_app,
                                                           start_gateway, auth):
    clerk = auth("agency_clerk")
    async with serve_app(create_accounts_app(settings)) as accounts_url:
        async with httpx.AsyncClient(base_url=accounts_url, trust_env=False) as direct:
            # the service itself under uvicorn: success, refusal, validation error, not found
            assert_secure(await direct.get("/health"))
            assert_secure(await direct.get("/employers", headers=clerk))
            assert_secure(await direct.get("/employers"))
            assert_secure(await direct.post("/employers", json={"uscc": "bad"}, headers=clerk))
            assert_secure(await direct.get("/no/such/path"))
        async with start_gateway(make_settings(nats_server.url, accounts_url=accounts_url)) as gateway:
            token = await gateway.post("/auth/token", data={"grant_type": "password", "username": "nobody",
                                                            "password": "wrong password!"})
            assert token.status_code in (400, 401)
            assert_secure(token)
            created = await gateway.post("/api/accounts/employers", headers=clerk,
                                         json={"uscc": VALID_USCC, "name": "某公司", "region": "150102"})
            assert created.status_code == 201
            assert_secure(created)  # proxied: the service's headers, each once
            assert_secure(await gateway.get("/api/accounts/employers", headers=clerk))
            assert_secure(await gateway.get("/api/payroll/x"))
            assert_secure(await gateway.get("/identity/users"))
            preflight = await gateway.options("/api/accounts/employers", headers={
                "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"})
            assert preflight.status_code == 200
            assert_secure(preflight)


def _references(html: str) -> list[str]:
    return re.findall(r'(?:src|href|spec-url)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)


async def _check_docs_page(client: httpx.AsyncClient, path: str) -> None:
    page = await client.get(path)
    assert page.status_code == 200, path
    assert_secure(page)
    assert not re.search(r"https?://|//[a-z]", page.text, re.IGNORECASE), f"{path} refers to another host"
    references = _references(page.text)
    assert references, path
    for reference in references:
        assert reference.startswith("/"), (path, reference)
        if reference.startswith("/docs-assets/"):
            asset = await client.get(reference)
            assert asset.status_code == 200 and len(asset.content) > 1000, reference
            assert_secure(asset, cacheable=True)


async def test_docs_pages_use_only_self_hosted_assets(settings, make_settings, nats_server, serve_app,
                                                      start_gateway):
    async with serve_app(create_accounts_app(settings)) as accounts_url:
        async with httpx.AsyncClient(base_url=accounts_url, trust_env=False) as direct:
            for path in ("/docs", "/redoc"):
                await _check_docs_page(direct, path)
            assert (await direct.get("/docs/oauth2-redirect")).status_code == 200
        async with start_gateway(make_settings(nats_server.url, accounts_url=accounts_url)) as gateway:
            for path in ("/docs/gateway", "/redoc", *(f"/docs/{s}" for s in SERVICES),
                         *(f"/redoc/{s}" for s in SERVICES)):
                await _check_docs_page(gateway, path)
            index = await gateway.get("/docs")
            assert_secure(index)
            assert "redoc/accounts" in index.text


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


async def _render(url: str) -> tuple[str, list[str]]:
    process = await asyncio.create_subprocess_exec(
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
        "--virtual-time-budget=10000", "--dump-dom", url, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    console = [line for line in err.decode(errors="replace").splitlines() if "CONSOLE" in line]
    return out.decode(errors="replace"), console


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine")
async def test_docs_render_in_a_browser_under_the_policy(settings, make_settings, nats_server, serve_app):
    """Swagger UI and ReDoc of a service and of the gateway really render with the Content-Security-Policy on (no
    script, style or worker refused); only ReDoc's "powered by" logo on cdn.redoc.ly is refused, as it should."""
    from gateway.app import create_app as create_gateway

    async with serve_app(create_accounts_app(settings)) as accounts_url, \
            serve_app(create_gateway(make_settings(nats_server.url, accounts_url=accounts_url))) as gateway_url:
        for base, path in [(accounts_url, "/docs"), (accounts_url, "/redoc"), (gateway_url, "/docs/accounts"),
                           (gateway_url, "/redoc")]:
            dom, console = await _render(urljoin(base, path))
            refused = [line for line in console if "Content Security Policy" in line
                       and "cdn.redoc.ly" not in line]
            assert refused == [], (path, refused)
            if path.startswith("/docs"):
                assert 'class="opblock' in dom, f"Swagger UI did not render {path}"
            else:
                assert "api-content" in dom, f"ReDoc did not render {path}"


async def test_options_answers_with_the_allowed_methods(settings, make_settings, nats_server, serve_app,
                                                        start_gateway):
    async with serve_app(create_accounts_app(settings)) as accounts_url:
        async with httpx.AsyncClient(base_url=accounts_url, trust_env=False) as direct:
            employers = await direct.options("/employers")
            assert employers.status_code == 204
            assert employers.headers["allow"] == "GET, OPTIONS, POST"
            assert_secure(employers)
            one = await direct.options("/employers/some-id")
            assert one.status_code == 204 and "GET" in one.headers["allow"] and "POST" not in one.headers["allow"]
            assert (await direct.options("/no/such/path")).status_code == 404
        async with start_gateway(make_settings(nats_server.url, accounts_url=accounts_url)) as gateway:
            token = await gateway.options("/auth/token")
            assert token.status_code == 204 and token.headers["allow"] == "OPTIONS, POST"
            proxied = await gateway.options("/api/accounts/employers")
            assert proxied.status_code == 204 and proxied.headers["allow"] == "GET, OPTIONS, POST"
            assert (await gateway.options("/no/such/path")).status_code == 404
