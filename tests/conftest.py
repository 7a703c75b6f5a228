"""Test harness: a real nats-server per test (free port, temporary store) and a real database per service.

Databases are SQLite files under the test's temporary directory, or, when ``SIFUND_TEST_POSTGRES_URL`` is set
(``make test-postgres``), fresh PostgreSQL databases created for the test and dropped after it.
"""

import os

# The suite runs on a pinned clock (services/kernel/clock.py), so no test depends on the day it runs: a China
# working-day morning. `make test-dates` runs it at other instants by setting SIFUND_TEST_CLOCK itself. Set before
# any platform module is imported; anchored once here so the subprocesses of e2e and launcher tests (which inherit
# the environment) read the same running clock.
os.environ.setdefault("SIFUND_TEST_CLOCK", "2026-12-03T09:30:00+08:00")
os.environ.pop("SIFUND_TEST_CLOCK_ANCHORED_AT", None)  # a stale anchor from an outer shell would shift the pin

import uuid  # noqa: E402
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.kernel import clock
from services.kernel.auth import TokenClaims, generate_key_pair, issue_token
from services.kernel.settings import SERVICES, Settings
from sifund.natsd import NatsServer
from tests.log_scan import pytest_sessionfinish  # noqa: F401 (hook: the run fails on a personal number in a log file)

clock.anchor()

# One signing key for the test session, passed to every service through its settings (as PEM text).
TEST_PRIVATE_KEY, TEST_PUBLIC_KEY = generate_key_pair()

POSTGRES_URL = os.environ.get("SIFUND_TEST_POSTGRES_URL")

# The fault suite (tests/chaos) runs a whole platform per round for minutes: `make test-cluster` and `make chaos`
# run it, `make test` does not.
collect_ignore = [] if os.environ.get("SIFUND_CHAOS") else ["chaos"]


@pytest.fixture
def nats_server(tmp_path: Path):
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()


class PostgresDatabases:
    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.created: list[str] = []
        self.engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")

    def create(self, label: str) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}_{label}"
        with self.engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.engine.connect() as conn:
            for name in self.created:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.engine.dispose()


@pytest.fixture
def database_urls(tmp_path: Path) -> dict[str, str]:
    """One database URL per service (and the gateway), on the backend under test."""
    names = [*SERVICES, "gateway"]
    if not POSTGRES_URL:
        yield {n: f"sqlite:///{tmp_path / f'{n}.db'}" for n in names}
        return
    databases = PostgresDatabases(POSTGRES_URL)
    try:
        yield {n: databases.create(n) for n in names}
    finally:
        databases.drop_all()


@pytest.fixture
def make_settings(tmp_path: Path, database_urls: dict[str, str]) -> Callable[..., Settings]:
    def _make(nats_url: str, **overrides) -> Settings:
        values = {f"{n}_database_url": url for n, url in database_urls.items()}
        values.update(
            data_dir=tmp_path / "var",
            nats_url=nats_url,
            consumer_retry_delay_seconds=0.05,
            outbox_poll_seconds=0.05,
            stream_duplicate_window_seconds=120.0,
            jwt_private_key=TEST_PRIVATE_KEY,
            jwt_public_key=TEST_PUBLIC_KEY,
        )
        values.update(overrides)
        return Settings(**values)

    return _make


@pytest.fixture
def settings(make_settings, nats_server: NatsServer) -> Settings:
    return make_settings(nats_server.url)


@asynccontextmanager
async def running_app(app) -> AsyncIterator[httpx.AsyncClient]:  # noqa: ANN001
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
def start_service(settings: Settings):
    """``async with start_service("accounts") as client:`` runs a service in-process with its lifespan."""
    from sifund import services as catalogue
    from services.kernel.service_app import create_service_app

    def _start(name: str, settings_override: Settings | None = None):
        return running_app(create_service_app(catalogue.spec(name), settings_override or settings))

    return _start


def bearer(settings: Settings, *roles: str, region: str = "150100", subject: str | None = None,
           unit: str = "测试单位", **token_options) -> dict[str, str]:
    """Authorization header for a caller holding ``roles`` in ``region``."""
    claims = TokenClaims(subject=subject or f"test_{'_'.join(roles) or 'nobody'}", kind="user", roles=roles,
                         name="测试", unit=unit, region=region)
    token, _ = issue_token(settings, claims, **token_options)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def auth(settings: Settings):
    """``auth("agency_clerk")`` → headers with a valid token for that role (default region 150100)."""

    def _auth(*roles: str, **options) -> dict[str, str]:
        return bearer(settings, *roles, **options)

    return _auth
