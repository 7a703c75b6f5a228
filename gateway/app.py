"""The gateway's FastAPI app. Run with ``uvicorn --factory gateway.app:create_app``."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from gateway import docs, health, proxy
from gateway.upstream import open_client
from services.kernel.errors import install_error_handlers
from services.kernel.settings import Settings, get_settings
from services.kernel.web import RequestContextMiddleware


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_client(settings) as client:
            app.state.upstream = client
            yield

    app = FastAPI(
        title="sifund gateway",
        description="社会保险基金管理与监督平台的统一入口: `/api/<service>/…` is routed to the service.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # /docs is the gateway's index of every service's documentation (gateway/docs.py)
        redoc_url=None,
    )
    app.state.settings = settings
    app.add_middleware(RequestContextMiddleware)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(docs.router)
    app.include_router(proxy.router)
    return app
