"""Builds a service's FastAPI app: database (migrated at start-up), bus, outbox relay, consumers, health, and the
operator endpoints every service has (dead letters, outbox backlog, audit chain)."""

import asyncio
import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Protocol, TypeVar

import anyio
import httpx
import structlog
from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, MetaData, select, text
from sqlmodel import Session

from services.kernel import archives, audit, context, workdays
from services.kernel.auth import TokenVerifier, allow, enforce_route_policies, public
from services.kernel.bus import Bus
from services.kernel.db import RequestSessions, make_engine, never_waits, snapshot_session
from services.kernel.errors import NotFound, install_error_handlers
from services.kernel.logging import configure_logging
from services.kernel.metrics import request_meter
from services.kernel.inbox import EventConsumer, Handler, dead_letters_as_dicts
from services.kernel.migrations import upgrade_database
from services.kernel.models import AuditEntry, DeadLetter, OutboxMessage
from services.kernel.outbox import OutboxRelay, outbox_backlog
from services.kernel.pii import can_read_all_personal_data, redact
from services.kernel.settings import Settings, activate, get_settings
from services.kernel.docs_pages import install_docs
from services.kernel.strict import RowId
from services.kernel.web import (
    NO_FRAMEWORK_TELEMETRY,
    RequestMiddleware,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ConsumerSpec:
    """What a service consumes from one stream: handlers per event type, and the types it deliberately ignores."""

    stream: str
    handlers: dict[str, Handler]
    ignores: frozenset[str] = frozenset()
    # The subject filters (event types, NATS wildcards) the server delivers; empty: the whole stream. A service
    # that ignores a stream's bulk families names the families it needs, and the rest never reaches it (no
    # transfer, decode or inbox row per ignored event). Any type under these filters is still handled, ignored
    # or dead-lettered.
    subjects: frozenset[str] = frozenset()


def merge_consumer_specs(specs: list[ConsumerSpec]) -> list[ConsumerSpec]:
    """One durable consumer per stream, however many domain packages listen to it: handlers of the same type run
    in declaration order inside the same transaction; a type any package handles is not ignored."""
    by_stream: dict[str, list[ConsumerSpec]] = {}
    for spec in specs:
        by_stream.setdefault(spec.stream, []).append(spec)
    merged = []
    for stream, group in by_stream.items():
        handlers: dict[str, list[Handler]] = {}
        for spec in group:
            for event_type, handler in spec.handlers.items():
                handlers.setdefault(event_type, []).append(handler)
        ignores = frozenset().union(*(spec.ignores for spec in group)) - handlers.keys()
        # One package that needs the whole stream gets the whole stream for every package.
        subjects = frozenset() if any(not spec.subjects for spec in group) else frozenset().union(
            *(spec.subjects for spec in group))
        merged.append(ConsumerSpec(stream=stream, handlers={t: _chain(hs) for t, hs in handlers.items()},
                                   ignores=ignores, subjects=subjects))
    return merged


def _chain(handlers: list[Handler]) -> Handler:
    if len(handlers) == 1:
        return handlers[0]

    def run_all(session: Session, envelope) -> None:  # noqa: ANN001
        for handler in handlers:
            handler(session, envelope)

    return run_all


class BackgroundTask(Protocol):
    """Work a service runs beside its requests (e.g. a scheduler): started after the bus, the relay and the
    consumers, stopped before them."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    title: str
    description: str
    metadata: MetaData
    routers: list[APIRouter] = field(default_factory=list)
    consumers: list[ConsumerSpec] = field(default_factory=list)
    # Factories called in the lifespan with the app (its state holds engine, bus, http, settings); each task is
    # also kept in ``app.state.background[<index>]`` in declaration order.
    background: list[Callable[[FastAPI], BackgroundTask]] = field(default_factory=list)
    # Where the archive items filed in this service's transactions go (services/kernel/archives.py).
    archive: archives.Filing | None = None


# -- dependencies ----------------------------------------------------------------------------------------------------


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


READ_METHODS = frozenset({"GET", "HEAD"})


async def get_session(request: Request) -> Session:
    """The request's session. A GET or HEAD only reads: a snapshot session (``services.kernel.db``), which never
    waits for writers nor holds them up. Any other method: the request's unit of work, committed once when the
    endpoint has returned and its response is serialised, rolled back if it raised. Admitted and closed by the app's
    ``RequestSessions`` (no deadlock on the pool however many requests come at once)."""
    sessions = request_sessions(request.app)
    stack = _function_stack(request)
    if request.method in READ_METHODS:
        session = await sessions.open_snapshot()
        stack.push_async_callback(sessions.close_snapshot, session)
        return session
    return await stack.enter_async_context(sessions.unit_of_work())


async def get_write_session(request: Request) -> Session:
    """The request's unit of work whatever its method: for a GET that must record something (e.g. who read it)."""
    return await _function_stack(request).enter_async_context(request_sessions(request.app).unit_of_work())


def _function_stack(request: Request) -> AsyncExitStack:
    """The exit stack FastAPI closes once the endpoint has returned and its response is serialised, before the
    response is sent: what a function-scoped ``yield`` dependency's exit runs in. The session dependencies put
    their closing (the commit, the rollback) there themselves instead of being ``yield`` dependencies, which cost
    FastAPI two context managers, a cancel scope and a checkpoint per request (a tenth of a cheap read's CPU,
    bench/gateway_reads.py). The exit stack sees the endpoint's exception as a ``yield`` dependency would."""
    stack = request.scope.get("fastapi_function_astack")
    if not isinstance(stack, AsyncExitStack):
        raise RuntimeError("the request's session needs FastAPI's function-scoped dependency exit stack")
    return stack


def request_sessions(app: FastAPI) -> RequestSessions:
    """The app's ``RequestSessions``, made on first use for the engine it has then."""
    sessions = getattr(app.state, "request_sessions", None)
    if sessions is None or sessions.engine is not app.state.engine:
        if sessions is not None:
            sessions.close()
        sessions = app.state.request_sessions = RequestSessions(app.state.engine)
    return sessions


T = TypeVar("T")


async def read_by_key(session: Session, read: Callable[..., T], *args: Any) -> T:
    """``read(*args)`` for an ``async def`` endpoint that reads a few rows by key, e.g. one employer by id.

    On a SQLite snapshot session (a GET's ``SessionDep``) it runs on the event loop: such a read takes microseconds
    and never waits for a writer (``services.kernel.db.never_waits``), which costs less than the two thread hops of
    a plain ``def`` endpoint (the endpoint, then its response model, each in a worker thread) — most of a cheap
    read's CPU (bench/gateway_reads.py). Anything else — a unit of work, which may wait for SQLite's write lock, or
    PostgreSQL, where every statement is a round trip — runs in a worker thread as a ``def`` endpoint would.
    Only for reads bounded by an index lookup: a listing, a search or a report stays a plain ``def`` endpoint."""
    if never_waits(session):
        return read(*args)
    return await anyio.to_thread.run_sync(read, *args)


EngineDep = Annotated[Engine, Depends(get_engine)]
# The closing (the commit) runs before the response is sent (``_function_stack``), so a failed commit answers an
# error instead of a 2xx for something not stored.
SessionDep = Annotated[Session, Depends(get_session)]
WriteSessionDep = Annotated[Session, Depends(get_write_session)]


# -- the app ---------------------------------------------------------------------------------------------------------


def create_service_app(spec: ServiceSpec, settings: Settings | None = None) -> FastAPI:
    # Event handlers, rules and jobs, which have no request to ask, read this app's settings through get_settings().
    settings = activate(settings or get_settings())
    configure_logging(settings.log_level, service=spec.name)
    workdays.configure(settings)  # deadlines in working days read this app's calendar file

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url(spec.name), pool_size=settings.database_pool_size,
                             max_overflow=settings.database_pool_overflow,
                             pool_timeout=settings.database_pool_timeout_seconds,
                             sqlite_cache_mb=settings.sqlite_cache_mb, sqlite_wal_pages=settings.sqlite_wal_pages)
        await anyio.to_thread.run_sync(upgrade_database, engine, spec.name, spec.metadata)
        if spec.archive is not None:
            archives.attach(engine, spec.name, spec.archive)
        app.state.migrated = True  # /health/ready
        bus = Bus(settings.nats_server_url, client_name=spec.name,
                  duplicate_window=settings.stream_duplicate_window_seconds, replicas=settings.nats_replicas)
        retention = settings.outbox_retention_hours
        relay = OutboxRelay(engine, bus, batch_size=settings.outbox_batch_size, poll_seconds=settings.outbox_poll_seconds,
                            retention=None if retention is None else timedelta(hours=retention))
        consumers = {
            c.stream: EventConsumer(
                service=spec.name, stream=c.stream, engine=engine, bus=bus, handlers=c.handlers,
                ignores=c.ignores, subjects=c.subjects, batch_size=settings.consumer_batch_size,
                max_attempts=settings.consumer_max_attempts, retry_delay=settings.consumer_retry_delay_seconds,
                gap_patience=settings.consumer_gap_patience_seconds,
                ack_wait=settings.consumer_ack_wait_seconds,
                transaction_seconds=settings.consumer_transaction_seconds,
                transaction_events=settings.consumer_transaction_events,
            )
            for c in merge_consumer_specs(spec.consumers)
        }
        app.state.settings, app.state.engine, app.state.bus = settings, engine, bus
        app.state.relay, app.state.consumers = relay, consumers
        # One HTTP client per process for synchronous calls to other services (online verification, 004), with the
        # internal timeout: shorter than the gateway's, so a dependency's outage is answered before the gateway's 504.
        internal = settings.internal_call_timeout_seconds
        app.state.http = httpx.AsyncClient(
            timeout=httpx.Timeout(internal, connect=min(internal, settings.gateway_connect_timeout_seconds)),
            trust_env=False,
        )
        await bus.start()
        await relay.start()
        for consumer in consumers.values():
            await consumer.start()
        app.state.background = []
        for factory in spec.background:
            task = factory(app)
            await task.start()
            app.state.background.append(task)
        if settings.gc_freeze_after_startup:
            gc.collect()
            gc.freeze()
        log.info("service.started", service=spec.name, database=engine.url.render_as_string(hide_password=True),
                 gc_frozen=gc.get_freeze_count())
        try:
            yield
        finally:
            for task in reversed(app.state.background):
                await task.stop()
            for consumer in consumers.values():
                await consumer.stop()
            await relay.stop()
            await bus.close()
            await app.state.http.aclose()
            archives.detach(engine)
            if (sessions := getattr(app.state, "request_sessions", None)) is not None:
                sessions.close()
            engine.dispose()
            log.info("service.stopped", service=spec.name)

    # /docs and /redoc on local assets instead of FastAPI's CDN pages.
    # redirect_slashes=False: a redirect would name this service's own address, unreachable behind the gateway.
    app = FastAPI(title=spec.title, description=spec.description, version="0.1.0", lifespan=lifespan,
                  docs_url=None, redoc_url=None, redirect_slashes=False, **NO_FRAMEWORK_TELEMETRY)
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(settings)
    install_error_handlers(app)
    app.include_router(_health_router(spec.name))
    app.include_router(_operations_router())
    app.include_router(audit_router())
    for router in spec.routers:
        app.include_router(router)
    install_docs(app, spec.title)
    enforce_route_policies(app)
    # Metrics, request context, security headers and OPTIONS in one pass (services.kernel.web.RequestMiddleware).
    app.add_middleware(RequestMiddleware, meter=request_meter(app, spec.name, settings), answer_options=True,
                       access_log=settings.service_access_log)
    return app


def _health_router(service: str) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/health", summary="Database and bus status", dependencies=[public()])
    async def health(request: Request) -> JSONResponse:
        state = request.app.state
        checks: dict[str, Any] = {}
        try:
            backlog = await anyio.to_thread.run_sync(_database_check, state.engine)
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001
            backlog = None
            checks["database"] = f"error: {type(exc).__name__}"
        checks["bus"] = "ok" if state.bus.connected else "disconnected"
        ok = all(v == "ok" for v in checks.values())
        body = {"service": service, "status": "ok" if ok else "degraded", "checks": checks, "outbox_backlog": backlog}
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/health/live", summary="The process answers (liveness probe)", dependencies=[public()])
    def live() -> dict:
        return {"service": service, "status": "ok"}

    @router.get("/health/ready", summary="Database reachable, migrations done, NATS connected (readiness probe)",
                dependencies=[public()])
    async def ready(request: Request) -> JSONResponse:
        state = request.app.state
        checks = {"migrations": "ok" if getattr(state, "migrated", False) else "pending",
                  "bus": "ok" if state.bus.connected else "disconnected"}
        try:
            await anyio.to_thread.run_sync(_database_check, state.engine)
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["database"] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"service": service, "status": "ok" if ok else "not ready", "checks": checks},
                            status_code=200 if ok else 503)

    return router


def _database_check(engine: Engine) -> int:
    # A snapshot read: health must answer while a long import holds the write lock.
    with snapshot_session(engine) as session:
        session.execute(text("SELECT 1"))
        return outbox_backlog(session)


# Dead letters and the outbox are run by IT operations; audit chains are read by internal control and oversight.
OPERATORS = allow("it_admin")
AUDITORS = allow("internal_auditor", "oversight_officer")


def _operations_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/admin/dead-letters", summary="Events a consumer could not apply", dependencies=[OPERATORS])
    def list_dead_letters(
        request: Request,
        consumer: str | None = None,
        include_replayed: bool = False,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict]:
        with snapshot_session(request.app.state.engine) as session:
            query = select(DeadLetter).order_by(DeadLetter.id).limit(limit)
            if consumer:
                query = query.where(DeadLetter.consumer == consumer)
            if not include_replayed:
                query = query.where(DeadLetter.replayed_at.is_(None))
            return dead_letters_as_dicts(session.execute(query).scalars())

    @router.post("/admin/dead-letters/{letter_id}/replay", summary="Apply a dead-lettered event again",
                 dependencies=[OPERATORS])
    def replay_dead_letter(request: Request, letter_id: Annotated[RowId, Path()]) -> dict:
        with snapshot_session(request.app.state.engine) as session:
            letter = session.get(DeadLetter, letter_id)
            if letter is None:
                raise NotFound("DEAD_LETTER_NOT_FOUND", "死信记录不存在")
            stream = letter.stream
        consumer = request.app.state.consumers.get(stream)
        if consumer is None:
            raise NotFound("CONSUMER_NOT_FOUND", "该服务没有此流的消费者")
        return consumer.replay(letter_id, operator=context.actor_id())

    @router.get("/admin/outbox", summary="Events not yet published", dependencies=[OPERATORS])
    def outbox_status(request: Request) -> dict:
        with snapshot_session(request.app.state.engine) as session:
            oldest = session.execute(
                select(OutboxMessage.created_at, OutboxMessage.last_error)
                .where(OutboxMessage.published_at.is_(None)).order_by(OutboxMessage.seq).limit(1)
            ).first()
            return {
                "backlog": outbox_backlog(session),
                "oldest_unpublished_at": oldest[0] if oldest else None,
                "last_error": oldest[1] if oldest else None,
                "published_by_this_process": request.app.state.relay.published_total,
                "pruned_by_this_process": request.app.state.relay.pruned_total,
            }

    return router


def audit_router() -> APIRouter:
    """Read access to this component's audit hash chain (services and the gateway alike)."""
    router = APIRouter(tags=["audit"])

    @router.get("/audit/head", summary="Head of this service's audit hash chain", dependencies=[AUDITORS])
    def audit_head(request: Request) -> dict:
        with snapshot_session(request.app.state.engine) as session:
            return audit.chain_head(session)

    @router.get("/audit/verify", summary="Recompute the audit hash chain", dependencies=[AUDITORS])
    async def audit_verify(request: Request) -> dict:
        result = await anyio.to_thread.run_sync(audit.verify_chain, request.app.state.engine)
        return result.as_dict()

    @router.get("/audit/entries", summary="Audit entries after a sequence number", dependencies=[AUDITORS])
    def audit_entries(
        request: Request,
        after_seq: Annotated[RowId, Query()] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        entity_type: str | None = None,
        entity_id: str | None = None,
    ) -> list[dict]:
        with snapshot_session(request.app.state.engine) as session:
            query = select(AuditEntry).where(AuditEntry.seq > after_seq).order_by(AuditEntry.seq).limit(limit)
            if entity_type:
                query = query.where(AuditEntry.entity_type == entity_type)
            if entity_id:
                query = query.where(AuditEntry.entity_id == entity_id)
            entries = [e.model_dump() for e in session.execute(query).scalars()]
        # Entries keep the full values (their hashes cover them); what a reader sees is masked unless their role
        # may see both citizen ids and bank accounts. Verification (/audit/verify) works on the stored values.
        if not can_read_all_personal_data():
            for entry in entries:
                entry["detail"] = redact(entry["detail"])
                entry["reason"] = redact(entry["reason"]) if entry["reason"] else entry["reason"]
        return entries

    return router


async def wait_idle(app: FastAPI, timeout: float = 10.0) -> None:
    """Test and bench helper: wait until this app's outbox is empty."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        with snapshot_session(app.state.engine) as session:
            if outbox_backlog(session) == 0:
                return
        await asyncio.sleep(0.05)
    raise TimeoutError("outbox did not drain")

