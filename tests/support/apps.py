"""The test signing key, a service app running in-process (``running_app``) and bearer headers for any roles."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager

from services.kernel.auth import TokenClaims, generate_key_pair, issue_token
from services.kernel.settings import Settings
from tests.support.log_scan import pytest_sessionfinish  # noqa: F401 (hook: the run fails on a personal number in a log file)

# One signing key for the test session, passed to every service through its settings (as PEM text).
TEST_PRIVATE_KEY, TEST_PUBLIC_KEY = generate_key_pair()


@asynccontextmanager
async def running_app(app) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ANN001
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


def bearer(settings: Settings, *roles: str, region: str = "150100", subject: str | None = None,
           unit: str = "测试单位", **token_options) -> dict[str, str]:
    """Authorization header for a caller holding ``roles`` in ``region``."""
    claims = TokenClaims(subject=subject or f"test_{'_'.join(roles) or 'nobody'}", kind="user", roles=roles,
                         name="测试", unit=unit, region=region)
    token, _ = issue_token(settings, claims, **token_options)
    return {"Authorization": f"Bearer {token}"}


POSTGRES_URL = os.environ.get("SIFUND_TEST_POSTGRES_URL")
