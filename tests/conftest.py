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
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.kernel import clock
from services.kernel.settings import SERVICES, Settings
from sifund.natsd import NatsCluster, NatsServer
from tests.support.apps import TEST_PRIVATE_KEY, TEST_PUBLIC_KEY, bearer, running_app
from tests.support.log_scan import pytest_sessionfinish  # noqa: F401 (hook: the run fails on a personal number in a log file)
from tests.support.apps import POSTGRES_URL

# make test-dates (or a developer rehearsing an instant) pins another clock than the default above.
AT_A_CHOSEN_INSTANT = os.environ["SIFUND_TEST_CLOCK"] != "2026-12-03T09:30:00+08:00"

clock.anchor()


# The fault suite (tests/chaos) runs a whole platform per round for minutes: `make test-cluster` and `make chaos`
# run it, `make test` does not.
collect_ignore = [] if os.environ.get("SIFUND_CHAOS") else ["chaos"]
# tests/browser drives Chromium: make test-browser (infra/browser/run-tests.sh sets SIFUND_BROWSER), not make test.
if not os.environ.get("SIFUND_BROWSER"):
    collect_ignore.append("browser")

UNIT_LANE = "a unit test (pytest -m unit, make test-unit) runs without NATS, app or database"


@pytest.fixture(autouse=True)
def _unit_lane_guard(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test marked ``unit`` that starts a nats-server or asks for the databases fails: the lane stays quick."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(*_args, **_kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError(f"{UNIT_LANE}: it started a nats-server")

    monkeypatch.setattr(NatsServer, "start", refuse)
    monkeypatch.setattr(NatsCluster, "start", refuse)
    if "database_urls" in request.fixturenames:
        raise AssertionError(f"{UNIT_LANE}: it asks for the databases (fixture database_urls)")


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


@pytest.fixture
def start_service(settings: Settings):
    """``async with start_service("accounts") as client:`` runs a service in-process with its lifespan."""
    from sifund import services as catalogue
    from services.kernel.service_app import create_service_app

    def _start(name: str, settings_override: Settings | None = None):
        return running_app(create_service_app(catalogue.spec(name), settings_override or settings))

    return _start


@pytest.fixture
def auth(settings: Settings):
    """``auth("agency_clerk")`` → headers with a valid token for that role (default region 150100)."""

    def _auth(*roles: str, **options) -> dict[str, str]:
        return bearer(settings, *roles, **options)

    return _auth


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked ``once`` starts its platform as an operator does (``sifund up`` with the embedded SQLite and the
    real clock: its child processes get no SIFUND_* variable from the test run) or pins its own SQLite: it runs
    exactly the same under ``make test-postgres`` and ``make test-dates``, so those skip it and ``make test`` runs it."""
    if not (POSTGRES_URL or AT_A_CHOSEN_INSTANT):
        return
    why = "PostgreSQL" if POSTGRES_URL else "the chosen clock"
    skip = pytest.mark.skip(reason=f"marked once: runs the embedded default with the real clock, not {why}; "
                                   "make test runs it")
    for item in items:
        if item.get_closest_marker("once"):
            item.add_marker(skip)
