"""Prometheus metrics of every process (README, "Operations: metrics and logs").

``request_meter(app, component)`` — given to the app's ``RequestMiddleware`` (services.kernel.web), the outermost —
counts every request by route template, method and status with its latency, and answers ``GET /metrics`` itself. ``/metrics`` is no route of the app: it is not in the OpenAPI documents, the gateway's
proxy cannot reach it (see ``MetricsAccess``), and a refused caller gets the app's ordinary 404.

What a scrape shows:

* counters and histograms kept in this module (HTTP, relay failures, business counters). When uvicorn runs several
  workers, ``PROMETHEUS_MULTIPROC_DIR`` (set by ``sifund up`` per child, see ``multiprocess_environment``) makes
  them shared through prometheus_client's multiprocess mode, and the process metrics are reported per worker pid;
  without it each process keeps its own registry (one process per port, as the services run).
* figures read at scrape time (no second bookkeeping to drift): the outbox backlog and the age of its oldest row, the
  dead letters, each durable consumer's pending / ack-pending / redelivered counts from JetStream, this process's
  relay and consumer totals, and what a service registers with ``register_database_probe`` (oversight's cases,
  incidents and reconciliation cells), cached for ``metrics_database_refresh_seconds``.

Business counters are counted after the commit that stored the fact (``count_after_commit``): a rolled-back
transaction counts nothing.
"""

import asyncio
import hmac
import ipaddress
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import structlog
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, ProcessCollector,
                               generate_latest)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Engine, event, func, select
from sqlmodel import Session
from starlette.types import Scope, Send

from services.kernel.db import snapshot_session
from services.kernel.models import DeadLetter, OutboxMessage
from services.kernel.settings import SERVICES, Settings

log = structlog.get_logger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH = "/metrics"
UNMATCHED_ROUTE = "<unmatched>"
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# -- what the code counts --------------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter("sifund_http_requests_total", "HTTP requests answered, by route template, method and status",
                        ["component", "route", "method", "status"])
HTTP_LATENCY = Histogram("sifund_http_request_duration_seconds", "Time to answer an HTTP request (until the body "
                         "is sent), by route template and method", ["component", "route", "method"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
OUTBOX_PUBLISH_FAILURES = Counter("sifund_outbox_publish_failures_total",
                                  "Outbox relay batches that stopped short (JetStream refused or did not confirm)",
                                  ["component"])
TAX_LINES = Counter("sifund_tax_lines_total", "Tax bureau payment lines received, by outcome (accepted | "
                    "duplicate | rejected) and rejection code", ["outcome", "code"])
POSTINGS = Counter("sifund_postings_total", "Contribution lines the agency posted to individual and employer "
                   "accounts (posted) or held in suspense (held)", ["outcome"])
PAYROLL_LINES = Counter("sifund_payroll_lines_total", "Payroll lines the bank reported, by result (paid | failed)",
                        ["outcome"])


_PENDING = "sifund_metrics_pending"


def count_after_commit(session: Session, counter: Counter, amount: float = 1, **labels: str) -> None:
    """Add ``amount`` to ``counter`` once ``session``'s transaction has committed: nothing if it rolls back, nor
    if the savepoint it was counted in does (a consumer retrying a batch event by event counts each event once)."""
    if amount <= 0:
        return
    if not event.contains(session, "after_commit", _count_pending):
        event.listen(session, "after_commit", _count_pending)
        event.listen(session, "after_soft_rollback", _forget_rolled_back)
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((transaction, counter.labels(**labels) if labels else counter,
                                                  amount))


def count_tax_lines(session: Session, *, accepted: int, duplicates: int, rejected: Iterable[Any]) -> None:
    """A tax bureau batch's lines: accepted, duplicates, and the rejected ones by their ``code``."""
    count_after_commit(session, TAX_LINES, accepted, outcome="accepted", code="")
    count_after_commit(session, TAX_LINES, duplicates, outcome="duplicate", code="")
    by_code: dict[str, int] = {}
    for line in rejected:
        by_code[line.code] = by_code.get(line.code, 0) + 1
    for code, count in by_code.items():
        count_after_commit(session, TAX_LINES, count, outcome="rejected", code=code)


def _count_pending(session: Session) -> None:
    if session.get_nested_transaction() is not None:  # a savepoint released: the outer transaction may still fail
        return
    for _transaction, child, amount in session.info.pop(_PENDING, []):
        child.inc(amount)


def _forget_rolled_back(session: Session, previous_transaction: Any) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        session.info[_PENDING] = [p for p in pending if not _within(p[0], previous_transaction)]


def _within(transaction: Any, ancestor: Any) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


# -- figures read from a service's database at scrape time ----------------------------------------------------------

DatabaseProbe = Callable[[Session], Iterable[Metric]]
_probes: dict[str, list[DatabaseProbe]] = {}


def register_database_probe(service: str) -> Callable[[DatabaseProbe], DatabaseProbe]:
    """Decorator: ``probe(session)`` yields metric families read from ``service``'s database; run in a thread on a
    snapshot session at most every ``metrics_database_refresh_seconds``."""

    def register(probe: DatabaseProbe) -> DatabaseProbe:
        if probe not in _probes.setdefault(service, []):
            _probes[service].append(probe)
        return probe

    return register


def _outbox_and_dead_letters(session: Session, component: str) -> Iterator[Metric]:
    backlog, oldest = session.execute(
        select(func.count(), func.min(OutboxMessage.created_at)).where(OutboxMessage.published_at.is_(None))).one()
    yield _gauge("sifund_outbox_backlog", "Outbox rows not yet published to JetStream", component, backlog)
    age = 0.0
    if oldest is not None:
        from services.kernel import clock  # noqa: PLC0415 - the kernel clock (tests shift it)
        stamp = oldest if oldest.tzinfo else oldest.replace(tzinfo=clock.utc_now().tzinfo)
        age = max(0.0, (clock.utc_now() - stamp).total_seconds())
    yield _gauge("sifund_outbox_oldest_unpublished_age_seconds",
                 "Age of the oldest outbox row not yet published (0 when none)", component, age)
    letters = GaugeMetricFamily("sifund_dead_letters", "Dead-lettered events not replayed, by consumer",
                                labels=["component", "consumer"])
    rows = session.execute(select(DeadLetter.consumer, func.count()).where(DeadLetter.replayed_at.is_(None))
                           .group_by(DeadLetter.consumer)).all()
    for consumer, count in rows:
        letters.add_metric([component, consumer], count)
    yield letters


def _gauge(name: str, documentation: str, component: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["component"])
    family.add_metric([component], value)
    return family


# -- access to /metrics ---------------------------------------------------------------------------------------------


class MetricsAccess:
    """Who may read ``/metrics``: a direct caller (no ``X-Forwarded-For``/``Forwarded``: the gateway sets the former
    on everything it proxies, so ``/api/<service>/metrics`` is refused by the service) from
    ``metrics_allowed_networks`` (default loopback), or any direct caller presenting ``metrics_token``."""

    def __init__(self, settings: Settings):
        self.networks = [ipaddress.ip_network(n, strict=False) for n in settings.metrics_allowed_networks]
        token = settings.metrics_token.get_secret_value() if settings.metrics_token else ""
        self.expected = f"Bearer {token}".encode() if token else None

    def allows(self, scope: Scope) -> bool:
        headers = dict(scope.get("headers") or [])
        if b"x-forwarded-for" in headers or b"forwarded" in headers:
            return False
        if self.expected is not None and hmac.compare_digest(headers.get(b"authorization", b""), self.expected):
            return True
        client = scope.get("client")
        try:
            address = ipaddress.ip_address(client[0]) if client else None
        except ValueError:
            return False
        return address is not None and any(address in network for network in self.networks)


# -- the middleware -------------------------------------------------------------------------------------------------


def route_template(scope: Scope) -> str:
    """The matched route's template (``/persons/{person_id}``), the gateway's proxy route with a known service
    filled in (``/api/accounts/{path:path}``); ``<unmatched>`` for a path no route matched (bounded labels)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if path is None:
        # A proxy that relays /api/<service>/… without the router (the gateway's fast path) still gets its label.
        parts = scope["path"].split("/", 3)
        if len(parts) > 2 and parts[1] == "api" and parts[2] in SERVICES:
            return f"/api/{parts[2]}/{{path:path}}"
        return UNMATCHED_ROUTE
    service = (scope.get("path_params") or {}).get("service")
    if service in SERVICES and "{service}" in path:
        path = path.replace("{service}", service)
    return path


class RequestMeter:
    """Counts and times one app's requests and answers its ``/metrics`` (for services.kernel.web.RequestMiddleware,
    which calls it around every request)."""

    def __init__(self, component: str, exporter: "Exporter"):
        self.component = component
        self.exporter = exporter
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def answers_scrape(self, scope: Scope) -> bool:
        return scope["path"] == METRICS_PATH and scope["method"] == "GET" and self.exporter.access.allows(scope)

    async def respond(self, send: Send) -> None:
        await self.exporter.respond(send)

    def record(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in HTTP_METHODS else "OTHER"  # any token is a method
        key = (route_template(scope), method, status)
        children = self._children.get(key)
        if children is None:  # labels() costs a lock and a tuple per call: looked up once per combination
            route, method, _ = key
            children = self._children[key] = (HTTP_REQUESTS.labels(self.component, route, method, str(status)),
                                              HTTP_LATENCY.labels(self.component, route, method))
        children[0].inc()
        children[1].observe(seconds)


# -- the exposition -------------------------------------------------------------------------------------------------


@dataclass
class _Cached:
    families: list[Metric] = field(default_factory=list)
    at: float = float("-inf")


class Exporter:
    """Builds the text a scrape gets for one app (``app.state`` holds engine, relay, consumers, bus)."""

    def __init__(self, app: Any, component: str, settings: Settings):
        self.app = app
        self.component = component
        self.settings = settings
        self.access = MetricsAccess(settings)
        self._probes = _Cached()
        self._lock = asyncio.Lock()

    async def respond(self, send: Send) -> None:
        body = await self.render()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", CONTENT_TYPE_LATEST.encode()),
                                (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})

    async def render(self) -> bytes:
        families: list[Metric] = []
        state = self.app.state
        engine: Engine | None = getattr(state, "engine", None)
        if engine is not None and hasattr(state, "relay"):  # a service (the gateway has no outbox)
            families += await anyio.to_thread.run_sync(self._read_database, engine)
            families += self._process_totals(state)
            families += await self._consumer_state(state)
        registry = _process_registry()
        return await anyio.to_thread.run_sync(generate_latest, _Families(registry, families))

    def _read_database(self, engine: Engine) -> list[Metric]:
        with snapshot_session(engine) as session:
            families = list(_outbox_and_dead_letters(session, self.component))
            probes = _probes.get(self.component, [])
            if probes and time.monotonic() - self._probes.at >= self.settings.metrics_database_refresh_seconds:
                fresh: list[Metric] = []
                for probe in probes:
                    try:
                        fresh += list(probe(session))
                    except Exception as exc:  # noqa: BLE001 - one failing probe must not blank the scrape
                        log.warning("metrics.probe_failed", probe=probe.__name__, error=str(exc) or type(exc).__name__)
                self._probes = _Cached(fresh, time.monotonic())
            session.rollback()
        return families + self._probes.families

    def _process_totals(self, state: Any) -> list[Metric]:
        published = CounterMetricFamily("sifund_outbox_published", "Outbox rows this process's relay published "
                                        "(since it started)", labels=["component"])
        published.add_metric([self.component], getattr(state.relay, "published_total", 0))
        applied = CounterMetricFamily("sifund_consumer_events_applied", "Events this process's consumer applied "
                                      "(since it started)", labels=["component", "consumer"])
        dead = CounterMetricFamily("sifund_consumer_dead_lettered", "Events this process's consumer dead-lettered "
                                   "(since it started)", labels=["component", "consumer"])
        for consumer in state.consumers.values():
            applied.add_metric([self.component, consumer.name], getattr(consumer, "applied_total", 0))
            dead.add_metric([self.component, consumer.name], getattr(consumer, "dead_lettered_total", 0))
        connected = _gauge("sifund_bus_connected", "1 while this process is connected to NATS", self.component,
                           1.0 if state.bus.connected else 0.0)
        return [published, applied, dead, connected]

    async def _consumer_state(self, state: Any) -> list[Metric]:
        labels = ["component", "consumer", "stream"]
        pending = GaugeMetricFamily("sifund_consumer_pending", "Messages of the stream not yet delivered to the "
                                    "durable consumer (JetStream num_pending)", labels=labels)
        ack_pending = GaugeMetricFamily("sifund_consumer_ack_pending", "Messages delivered and not yet acknowledged "
                                        "(JetStream num_ack_pending)", labels=labels)
        redelivered = GaugeMetricFamily("sifund_consumer_redelivered", "Messages delivered more than once and not "
                                        "yet acknowledged (JetStream num_redelivered)", labels=labels)
        js = state.bus.js
        for consumer in state.consumers.values():
            if js is None or not state.bus.connected:
                break
            try:
                info = await asyncio.wait_for(js.consumer_info(consumer.stream, consumer.name), timeout=2.0)
            except Exception as exc:  # noqa: BLE001 - not created yet, NATS away: the scrape still answers
                log.debug("metrics.consumer_info_failed", consumer=consumer.name, error=str(exc) or type(exc).__name__)
                continue
            values = [self.component, consumer.name, consumer.stream]
            pending.add_metric(values, info.num_pending or 0)
            ack_pending.add_metric(values, info.num_ack_pending or 0)
            redelivered.add_metric(values, info.num_redelivered or 0)
        return [pending, ack_pending, redelivered]


class _Families:
    """What ``generate_latest`` reads: the process-wide registry, then the families of this scrape."""

    def __init__(self, registry: Any, families: list[Metric]):
        self.registry = registry
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
        yield from self.families


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def _process_registry() -> Any:
    if multiprocess_dir() is None:
        return REGISTRY  # this process's counters, plus the process, platform and gc collectors
    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry)
    registry.register(_WorkerProcesses(multiprocess_dir()))
    return registry


_PID_IN_FILE = re.compile(r"_(\d+)\.db$")


class _WorkerProcesses:
    """Multiprocess mode: ``process_*`` of every live process that wrote metrics (uvicorn's workers), by pid."""

    def __init__(self, directory: str):
        self.directory = Path(directory)

    def collect(self) -> Iterator[Metric]:
        pids = sorted({int(m.group(1)) for p in self.directory.glob("*.db") if (m := _PID_IN_FILE.search(p.name))})
        merged: dict[str, Metric] = {}
        for pid in pids:
            if not Path(f"/proc/{pid}").exists():
                continue
            for family in ProcessCollector(pid=lambda pid=pid: pid, registry=None).collect():
                target = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                for sample in family.samples:
                    target.add_sample(sample.name, {**sample.labels, "pid": str(pid)}, sample.value)
        yield from merged.values()


def multiprocess_environment(directory: Path) -> dict[str, str]:
    """The environment of a child that may run several uvicorn workers: an empty directory of its own for the
    shared metric files (emptied at every start: counters of a previous run must not be added in)."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    return {MULTIPROC_ENV: str(directory)}


def request_meter(app: Any, component: str, settings: Settings | None = None) -> RequestMeter:
    """The meter of this app's requests and its ``/metrics`` (given to the app's RequestMiddleware)."""
    settings = settings or app.state.settings
    if component != "gateway":
        OUTBOX_PUBLISH_FAILURES.labels(component)  # exported as 0 from the start: an alert's rate needs a baseline
    return RequestMeter(component, Exporter(app, component, settings))


def record_publish_failure(component: str) -> None:
    OUTBOX_PUBLISH_FAILURES.labels(component).inc()


def scrape_targets(children: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Prometheus file-based service discovery (``file_sd_configs``) for ``(process name, base URL)`` pairs: one
    group per process, labelled ``process`` (``accounts-2``) and ``service`` (``accounts``)."""
    return [{"targets": [url.split("://", 1)[-1]], "labels": {"process": name, "service": name.split("-")[0]}}
            for name, url in children]
