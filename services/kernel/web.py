"""HTTP mechanics shared by the services and the gateway: request ids into the trace context, an unexpected error
answered as a structured 500 on a connection that stays usable."""

import inspect
import json
import random
import re
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog
from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kernel import context
from services.kernel.errors import error_body
from services.kernel.logging import log_access

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "x-request-id"
CORRELATION_ID_HEADER = "x-correlation-id"
_REQUEST_ID, _CORRELATION_ID = REQUEST_ID_HEADER.encode(), CORRELATION_ID_HEADER.encode()


def _valid_id(value: str | None) -> str | None:
    if value and len(value) <= 64 and all(c.isalnum() or c in "-_." for c in value):
        return value
    return None


async def _internal_error(send: Send, request_id: str) -> None:
    body = json.dumps(error_body("INTERNAL_ERROR", "服务内部错误，请稍后重试或联系运维人员",
                                 {"request_id": request_id}), ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": 500, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


# -- the framework -------------------------------------------------------------------------------------------------

# FastAPI's native OpenTelemetry instrumentation, off: the platform measures itself (services/kernel/metrics.py) and
# configures no OpenTelemetry provider, yet FastAPI asks OpenTelemetry's global providers (an environment lookup)
# on every request to learn that it has nothing to do. Older FastAPI has no such instrumentation and no argument.
NO_FRAMEWORK_TELEMETRY = ({"telemetry": {"tracing": False, "metrics": False, "logs": False}}
                          if "telemetry" in inspect.signature(FastAPI.__init__).parameters else {})


# -- security headers ------------------------------------------------------------------------------------------------

# One policy for every response of the platform: everything from the component's own origin, nothing framed. Styles
# may be inline (Swagger UI and ReDoc set style attributes), ReDoc renders in a blob: worker, icons are data: URIs.
# An HTML page with inline scripts allows each by its hash (services/kernel/docs_pages.page). The console
# (gateway/console) works under it unchanged: its scripts are files of its own origin, none inline, and htmx runs with
# allowEval off; ECharts draws on a canvas.
_CSP_DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "font-src": "'self' data:",
    "worker-src": "'self' blob:",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def csp_with_scripts(script_sources: list[str]) -> str:
    directives = {**_CSP_DIRECTIVES, "script-src": " ".join(["'self'", *script_sources])}
    return "; ".join(f"{name} {value}" for name, value in directives.items())


CONTENT_SECURITY_POLICY = csp_with_scripts([])
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
)
# Tokens and personal data must not stay in a browser's or a proxy's cache: every response is ``no-store`` unless
# it says otherwise, except the static documentation assets.
STATIC_PREFIXES = ("/docs-assets/", "/console/static/")


# -- OPTIONS ---------------------------------------------------------------------------------------------------------


def _route_table(app) -> list[tuple[re.Pattern[str], frozenset[str] | None]]:  # noqa: ANN001
    """(path pattern, methods) of every route of ``app`` (None for a mount), built once per app. FastAPI keeps
    included routers nested, so the routes are walked as the route-policy check walks them (kernel.auth)."""
    table = getattr(app.state, "allowed_methods_table", None)
    if table is not None:
        return table
    try:
        from fastapi.routing import iter_route_contexts  # noqa: PLC0415
    except ImportError:  # older FastAPI: app.routes is already flat
        pairs = [(getattr(r, "path", ""), r) for r in app.routes]
    else:
        pairs = [(rc.path or getattr(rc.original_route, "path", ""), rc.original_route)
                 for rc in iter_route_contexts(app.routes)]
    table = []
    for path, route in pairs:
        if isinstance(route, Mount):
            table.append((re.compile(re.escape(path.rstrip("/")) + "(/.*)?$"), None))
        elif getattr(route, "methods", None):
            table.append((compile_path(path)[0], frozenset(route.methods)))
    app.state.allowed_methods_table = table
    return table


def allowed_methods(scope: Scope) -> set[str] | None:
    """The methods the app's routes accept at this path, OPTIONS included; None when no route matches (404 as
    usual) or when a matching one handles OPTIONS itself (the gateway's proxy, a mount)."""
    methods: set[str] = set()
    for pattern, route_methods in _route_table(scope["app"]):
        if not pattern.match(scope["path"]):
            continue
        if route_methods is None or "OPTIONS" in route_methods:
            return None
        methods |= route_methods
    return (methods | {"OPTIONS"}) if methods else None


class OptionsMiddleware:
    """``OPTIONS <path>`` answers 204 with ``Allow`` listing the methods the path's routes accept (RFC 9110
    §9.3.7) instead of 405. CORS preflights are left to the CORS middleware (the gateway's)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = {k.lower() for k, _ in scope.get("headers", [])}
            methods = None if b"access-control-request-method" in headers else allowed_methods(scope)
            if methods is not None:
                await send({"type": "http.response.start", "status": 204,
                            "headers": [(b"allow", ", ".join(sorted(methods)).encode())]})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)


# -- the request middleware ------------------------------------------------------------------------------------------


class RequestMeter(Protocol):
    """What the request middleware asks of the metrics (services.kernel.metrics.RequestMeter)."""

    def answers_scrape(self, scope: Scope) -> bool: ...

    async def respond(self, send: Send) -> None: ...

    def record(self, scope: Scope, status: int, seconds: float) -> None: ...


_IDS = "sifund.request_ids"  # the scope key under which the CORS path hands the request ids inwards


class RequestMiddleware:
    """What every request of a service or the gateway goes through, in one pass and one wrapper of ``send``
    (five stacked middlewares cost more than the service's own work on a cheap read, bench/gateway_reads.py):

    - **metrics** (``meter``): ``GET /metrics`` answered for those allowed; every other request counted by route
      template, method and status, and timed — a request whose exception escaped counts as 500;
    - **request context**: ``X-Request-ID`` / ``X-Correlation-ID`` taken from the caller (the gateway sets them) or
      made, put in the trace context for events and audit entries, the request id echoed in the response. An
      exception no handler turned into a response is logged and answered ``500 INTERNAL_ERROR`` here instead of
      escaping to the server: uvicorn closes the keep-alive connection after an escaped exception, a moment after
      the 500 went out, and the gateway could write its next request into that moment. Once the response has
      started, the exception still escapes: the connection must then be closed;
    - **security headers** on every response that does not set them itself (a proxied service response keeps its
      own), ``no-store`` unless it says otherwise or is a static asset, any ``server`` header dropped (uvicorn's own
      is turned off where uvicorn is started, ``--no-server-header``);
    - **CORS** (``cors``: Starlette's ``CORSMiddleware`` arguments, the gateway's): a request with an ``Origin`` goes
      through Starlette's middleware (preflights answered there, without a request id); any other gets what that
      middleware gives it, ``Vary: Origin``, here;
    - **OPTIONS** (``answer_options``): ``OptionsMiddleware`` inside the request context;
    - **the access line** (``access_log``): uvicorn's line, written here when the response starts, in the request's
      trace context (``services.kernel.logging.log_access``; uvicorn's own access logger is muted). A request whose
      exception escaped before any response gets the 500 line the server's answer would have had.
    """

    def __init__(self, app: ASGIApp, *, meter: RequestMeter | None = None, cors: dict[str, Any] | None = None,
                 answer_options: bool = False, access_log: bool = True):
        self.app = app
        self.inner = OptionsMiddleware(app) if answer_options else app
        self.meter = meter
        self.cors = None if cors is None else CORSMiddleware(self._behind_cors, **cors)
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        meter = self.meter
        if meter is not None and meter.answers_scrape(scope):
            await meter.respond(self._logged(scope, send) if self.access_log else send)
            return
        started_at = time.perf_counter()
        request_id, correlation_id, has_origin = _request_ids(scope)
        cacheable = scope["path"].startswith(STATIC_PREFIXES)
        through_cors = has_origin and self.cors is not None
        request_id_header = () if through_cors else ((b"x-request-id", request_id.encode()),)
        vary_origin = self.cors is not None and not through_cors
        access_log = self.access_log
        status = 0

        async def send_decorated(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = _secured([*message.get("headers", ()), *request_id_header], cacheable,
                                              vary_origin=vary_origin)
                if access_log:
                    log_access(scope, status)
            await send(message)

        try:
            if through_cors:
                scope[_IDS] = request_id, correlation_id
                await self.cors(scope, receive, send_decorated)
            else:
                await self._in_context(scope, receive, send_decorated, (request_id, correlation_id),
                                       lambda: status != 0)
        except Exception:
            if access_log and status == 0:  # the server answers 500 (ServerErrorMiddleware or uvicorn)
                log_access(scope, 500)
            raise
        finally:
            if meter is not None:
                meter.record(scope, status or 500, time.perf_counter() - started_at)

    @staticmethod
    def _logged(scope: Scope, send: Send) -> Send:
        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                log_access(scope, message["status"])
            await send(message)

        return send_logged

    async def _behind_cors(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id_header = (b"x-request-id", scope[_IDS][0].encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), request_id_header]
            await send(message)

        await self._in_context(scope, receive, send_with_id, scope[_IDS], lambda: started)

    async def _in_context(self, scope: Scope, receive: Receive, send: Send, ids: tuple[str, str],
                          started: Callable[[], bool]) -> None:
        """The app in the request's trace context; an exception before the response ``started`` answered 500."""
        request_id, correlation_id = ids
        with context.trace(request_id=request_id, correlation_id=correlation_id):
            try:
                await self.inner(scope, receive, send)
            except Exception:
                if started():
                    raise
                log.exception("request.failed", method=scope.get("method"), path=scope.get("path"))
                await _internal_error(send, request_id)


def _new_id() -> str:
    """32 hex digits, as ``uuid4().hex``, without a ``getrandom`` system call per request: an id names a request
    in logs and traces, it guards nothing (Python's generator is reseeded in every forked worker)."""
    return "%032x" % random.getrandbits(128)


def _request_ids(scope: Scope) -> tuple[str, str, bool]:
    """The request id and correlation id (the caller's when valid, else new) and whether an ``Origin`` was sent:
    one scan of the headers, whose names ASGI gives in lower case."""
    given_request_id = given_correlation_id = None
    has_origin = False
    for name, value in scope["headers"]:
        if name == _REQUEST_ID:
            given_request_id = value.decode("latin-1")
        elif name == _CORRELATION_ID:
            given_correlation_id = value.decode("latin-1")
        elif name == b"origin":
            has_origin = True
    request_id = _valid_id(given_request_id) or _new_id()
    return request_id, _valid_id(given_correlation_id) or request_id, has_origin


def _secured(headers: list[tuple[bytes, bytes]], cacheable: bool, *, vary_origin: bool = False,
             ) -> list[tuple[bytes, bytes]]:
    """``headers`` without ``server``, with ``Vary: Origin`` if asked (merged as Starlette's CORS middleware merges
    it: every Vary value and Origin in one header, where the first Vary was), then the security headers the
    response lacks and ``no-store`` unless cacheable."""
    kept: list[tuple[bytes, bytes]] = []
    present = set()
    vary_at = -1
    for name, value in headers:
        lower = name.lower()
        if lower == b"server":
            continue
        if vary_origin and lower == b"vary":
            if vary_at >= 0:
                kept[vary_at] = (b"vary", kept[vary_at][1] + b", " + value)
                continue
            vary_at = len(kept)
            name = b"vary"
        present.add(lower)
        kept.append((name, value))
    if vary_origin:
        if vary_at < 0:
            kept.append((b"vary", b"Origin"))
        else:
            kept[vary_at] = (b"vary", kept[vary_at][1] + b", Origin")
    for header in SECURITY_HEADERS:
        if header[0] not in present:
            kept.append(header)
    if not cacheable and b"cache-control" not in present:
        kept.append((b"cache-control", b"no-store"))
    return kept
