"""The gateway's FastAPI app. Run with ``uvicorn --factory gateway.app:create_app``."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from gateway import docs, health, proxy, verification
from gateway.console.app import create_console
from gateway.guard import GuardMiddleware
from gateway.identity.conflicts import seed_default_rules
from gateway.identity.endpoints import auth_router, identity_router
from gateway.identity.models import metadata as identity_metadata
from gateway.keepalive import KeepAliveTransport
from gateway.relay import DirectRelay
from gateway.upstream import Upstreams, open_client
from services.kernel.auth import TokenVerifier, enforce_route_policies, public
from services.kernel.db import make_engine, unit_of_work
from services.kernel.docs_pages import mount_assets
from services.kernel.errors import install_error_handlers
from services.kernel.logging import configure_logging
from services.kernel.metrics import request_meter
from services.kernel.migrations import upgrade_database
from services.kernel.service_app import audit_router
from services.kernel.settings import Settings, get_settings
from services.kernel.web import (
    NO_FRAMEWORK_TELEMETRY,
    OptionsMiddleware,
    RequestMiddleware,
)


def _open_identity_store(settings: Settings):  # noqa: ANN202
    engine = make_engine(settings.database_url("gateway"))
    upgrade_database(engine, "gateway", identity_metadata)
    with unit_of_work(engine) as session:
        seed_default_rules(session)
    return engine


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, service="gateway")
    # httpx logs every upstream call at INFO ("HTTP Request: GET …"): a second line per forwarded request beside
    # uvicorn's access line, with the same method, path and status. Its warnings and errors still show.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = await anyio.to_thread.run_sync(_open_identity_store, settings)
        try:
            transport = KeepAliveTransport()
            async with open_client(settings, transport) as client:
                app.state.upstream = client
                app.state.direct_relay = DirectRelay.of(client, transport)  # /api/<service>/… (gateway/relay.py)
                yield
        finally:
            app.state.engine.dispose()

    app = FastAPI(
        title="sifund gateway",
        description="社会保险基金管理与监督平台的统一入口: `/auth/token` issues tokens, `/identity/…` administers "
        "users and roles, `/api/<service>/…` is routed to the service (which checks the token and role itself).",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # /docs is the gateway's index of every service's documentation (gateway/docs.py)
        redoc_url=None,
        **NO_FRAMEWORK_TELEMETRY,
    )
    app.state.settings = settings
    app.state.upstreams = Upstreams(settings)
    app.state.token_verifier = TokenVerifier(settings)
    # Innermost first. /api/<service>/… relayed without the router (proxy.ProxyFastPath); OPTIONS of the gateway's
    # own routes answered after the guard; the guard sees the request id (RequestMiddleware, with metrics, security
    # headers and CORS, added last: outermost).
    app.add_middleware(proxy.ProxyFastPath)
    app.add_middleware(OptionsMiddleware)
    app.add_middleware(GuardMiddleware, settings=settings)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(docs.router)
    mount_assets(app)
    app.include_router(auth_router)
    app.include_router(identity_router)
    app.include_router(audit_router())
    app.include_router(verification.router)  # the public page that verifies official documents

    @app.get("/", include_in_schema=False, dependencies=[public()])
    async def root() -> RedirectResponse:
        return RedirectResponse("/console/", status_code=307)

    # The console (gateway/console): pages that call the routes above with the signed-in user's own token.
    app.mount("/console", create_console(app, settings))
    app.include_router(proxy.router)  # last: the catch-all
    enforce_route_policies(app)
    app.add_middleware(RequestMiddleware, meter=request_meter(app, "gateway", settings), cors={
        "allow_origins": settings.cors_origins,
        "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        "allow_headers": ["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID", "X-Correlation-ID"],
        "expose_headers": ["X-Request-ID", "Retry-After"],
        "max_age": 600,
    })
    return app
