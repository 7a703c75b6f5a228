"""No spurious 502 after a service's 500. uvicorn closes a keep-alive connection after an unhandled
exception, a moment after the 500 went out (once the traceback is logged); a request the gateway writes on that
connection in the meantime is never read. Here the upstream is a real uvicorn server in its own thread (as a
separate process would be) whose error log is held until the gateway has written its next request, which makes the
moment deterministic instead of a race."""

import logging
import threading
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from gateway.app import create_app as create_gateway
from gateway.upstream import safe_to_retry
from services.kernel.errors import install_error_handlers
from services.kernel.web import RequestMiddleware
from tests.support.gateway import _Upstream, uvicorn_in_thread


class _HeldErrorLog(logging.Handler):
    """Holds uvicorn's "Exception in ASGI application" record (and so the connection close that follows it) until
    ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go_on = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Exception in ASGI application"):
            self.go_on.wait(timeout=15)
            self.go_on.clear()


@asynccontextmanager
async def gateway_in_front(make_settings, nats_server, upstream_url: str, held: _HeldErrorLog):  # noqa: ANN001
    """The gateway (in-process) routing ``accounts`` to the upstream; the held error log is released once the
    gateway has written a request to ``/items``."""
    app = create_gateway(make_settings(nats_server.url, accounts_url=upstream_url))
    # The gateway's logging set-up gives uvicorn's loggers to the root handler and drops their own handlers: hold
    # the upstream's error log again after it.
    logging.getLogger("uvicorn.error").addHandler(held)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        async def hold_until_written(name: str, head: bytes) -> None:
            if name == "http11.send_request_body.complete" and b" /items " in head.split(b"\r\n", 1)[0]:
                held.go_on.set()

        app.state.direct_relay.transport.observer = hold_until_written
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


@contextmanager
def held_error_log() -> Iterator[_HeldErrorLog]:
    handler = _HeldErrorLog()
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        handler.go_on.set()
        logger.removeHandler(handler)


async def test_requests_after_a_crash_are_not_answered_502(make_settings, nats_server, auth):
    upstream = _Upstream()
    with held_error_log() as held, uvicorn_in_thread(upstream.app) as url:
        async with gateway_in_front(make_settings, nats_server, url, held) as gateway:
            outcomes = []
            for n, (method, headers) in enumerate([
                ("GET", {}), ("PUT", {}), ("DELETE", {}), ("POST", {"Idempotency-Key": "k-1"}),
            ] * 3):
                crashed = await gateway.post("/api/accounts/crash", content=b"line\n" * 100)
                assert crashed.status_code == 500
                response = await gateway.request(method, "/api/accounts/items", headers=headers,
                                                 content=f"valid {n}".encode() if method != "GET" else None)
                outcomes.append(response.status_code)
            assert outcomes == [200] * 12
            # each valid request applied exactly once
            assert [m for m, _ in upstream.applied] == ["GET", "PUT", "DELETE", "POST"] * 3
            assert [b for m, b in upstream.applied if m != "GET"] == [
                f"valid {n}".encode() for n in range(12) if n % 4]


async def test_a_post_without_idempotency_key_is_never_sent_twice(make_settings, nats_server):
    upstream = _Upstream()
    with held_error_log() as held, uvicorn_in_thread(upstream.app) as url:
        async with gateway_in_front(make_settings, nats_server, url, held) as gateway:
            assert (await gateway.post("/api/accounts/crash", content=b"x")).status_code == 500
            response = await gateway.post("/api/accounts/items", content=b"not idempotent")
            # The gateway cannot know whether the service read it: it says so rather than guessing.
            assert response.status_code == 502
            assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
            assert upstream.applied == []


def test_the_retry_rule():
    assert all(safe_to_retry(m, {}) for m in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "get"))
    assert not safe_to_retry("POST", {})
    assert not safe_to_retry("PATCH", {"idempotency-key": "k"})
    assert safe_to_retry("POST", {"idempotency-key": "k"})
    assert not safe_to_retry("POST", {"idempotency-key": ""})


async def test_a_retry_reaches_a_service_that_refused_the_first_connection(make_settings, nats_server):
    """A connection that could not be opened carried nothing: a safe request is sent again."""
    upstream = _Upstream()
    with uvicorn_in_thread(upstream.app) as url:
        app = create_gateway(make_settings(nats_server.url, accounts_url=url))
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
            refused = {"left": 1}

            async def refuse_first_connect(name: str, _head: bytes) -> None:
                if name == "connection.connect_tcp.started" and refused["left"]:
                    refused["left"] -= 1
                    raise httpx.ConnectError("refused (test)")

            app.state.direct_relay.transport.observer = refuse_first_connect
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                         base_url="http://gateway") as gateway:
                assert (await gateway.get("/api/accounts/items")).status_code == 200
                assert refused["left"] == 0


def _app_that_crashes() -> FastAPI:
    app = FastAPI()
    app.add_middleware(RequestMiddleware)
    install_error_handlers(app)

    @app.get("/crash")
    async def crash() -> dict:
        raise RuntimeError("unexpected")

    @app.get("/ok")
    async def ok() -> dict:
        return {"ok": True}

    return app


async def test_a_service_answers_an_unexpected_error_with_500_and_keeps_the_connection(serve_app):
    """The services' side of §3: an unhandled exception becomes a structured 500 and uvicorn keeps the connection
    open (it closes it only when the exception escapes the app), so there is no closing connection to write into."""
    async with serve_app(_app_that_crashes()) as url:
        opened = []

        async def count_connections(name: str, _info: dict) -> None:
            if name == "connection.connect_tcp.started":
                opened.append(name)

        async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
            for _ in range(3):
                crashed = await client.get("/crash", extensions={"trace": count_connections})
                assert crashed.status_code == 500
                assert crashed.json()["error"]["code"] == "INTERNAL_ERROR"
                assert crashed.headers["x-request-id"] == crashed.json()["error"]["details"]["request_id"]
                assert (await client.get("/ok", extensions={"trace": count_connections})).status_code == 200
        assert len(opened) == 1
