"""``/api/<service>/<path>`` → ``<service url>/<path>``: method, query string, headers and body passed through,
request and correlation ids set, the response streamed back as it arrives."""

from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import docs
from gateway.upstream import (
    ServiceDep,
    UpstreamDep,
    Upstreams,
    UpstreamsDep,
    safe_to_retry,
    send_upstream,
    upstream_errors,
)
from services.kernel.auth import public
from services.kernel import context
from services.kernel.errors import DomainError, error_body
from services.kernel.settings import SERVICES
from services.kernel.web import CORRELATION_ID_HEADER, REQUEST_ID_HEADER

# Open at the gateway: each service enforces its own policy per route.
router = APIRouter(dependencies=[public()])

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "trailers", "transfer-encoding", "upgrade",
})
# Set by the gateway itself rather than copied from the caller.
# The X-Forwarded-* headers are the gateway's to set (below): a caller's own would reach the service beside them, and
# a service reading the first of two could be told any client address or prefix (rate limits, links it builds).
FORWARDING = {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-prefix"}
NOT_FORWARDED = HOP_BY_HOP | FORWARDING | {"host", REQUEST_ID_HEADER, CORRELATION_ID_HEADER}
# The gateway's own server adds these (and RequestMiddleware adds X-Request-ID): copying them would send each header
# twice.
NOT_RETURNED = HOP_BY_HOP | {"date", "server", REQUEST_ID_HEADER}
# As raw header names (bytes), compared without decoding each name of each request.
_NOT_FORWARDED_RAW = frozenset(name.encode() for name in NOT_FORWARDED)
_NOT_RETURNED_RAW = frozenset(name.encode() for name in NOT_RETURNED)


def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    """Headers named in ``Connection`` are hop-by-hop too."""
    return {
        token.strip().lower()
        for name, value in headers if name.lower() == b"connection"
        for token in value.split(b",")
    }


def _filtered(headers: list[tuple[bytes, bytes]], dropped: frozenset[bytes]) -> list[tuple[bytes, bytes]]:
    named = _connection_tokens(headers)
    return [(k, v) for k, v in headers if (lower := k.lower()) not in dropped and lower not in named]


def _upstream_headers(request: Request, service: str) -> list[tuple[bytes, bytes]]:
    ctx = context.current()
    headers = _filtered(request.headers.raw, _NOT_FORWARDED_RAW)
    client_host = request.client.host if request.client else ""
    forwarded_for = ", ".join(filter(None, [request.headers.get("x-forwarded-for"), client_host]))
    headers += [
        (REQUEST_ID_HEADER.encode(), (ctx.request_id or "").encode()),
        (CORRELATION_ID_HEADER.encode(), (ctx.correlation_id or ctx.request_id or "").encode()),
        (b"x-forwarded-for", forwarded_for.encode("latin-1")),
        (b"x-forwarded-proto", request.scope.get("scheme", "http").encode()),  # request.url would build the whole URL
        (b"x-forwarded-host", request.headers.get("host", "").encode("latin-1")),
        (b"x-forwarded-prefix", f"/api/{service}".encode()),
    ]
    return headers


def _upstream_url(request: Request, base_url: str, service: str, path: str) -> httpx.URL:
    # The raw path keeps percent-escapes (an id containing %2F stays one path segment). It is used only when its
    # prefix is literally /api/<service>/: with an escaped prefix (/api/acc%6Funts/…) slicing it would garble the
    # URL, so the decoded path is re-quoted instead.
    prefix = f"/api/{service}/".encode()
    raw_path: bytes | None = request.scope.get("raw_path")
    if raw_path and raw_path.startswith(prefix):
        rest = raw_path[len(prefix) - 1:].decode("latin-1")
    else:
        rest = "/" + quote(path)
    return httpx.URL(base_url + rest, query=request.scope.get("query_string", b""))


def _has_body(request: Request) -> bool:
    return "content-length" in request.headers or "transfer-encoding" in request.headers


# Bodies up to this size (with a Content-Length) are relayed whole, larger or unsized ones streamed as they come.
SMALL_BODY_BYTES = 64 * 1024


def _small(upstream: httpx.Response) -> bool:
    length = upstream.headers.get("content-length")
    return length is not None and length.isdigit() and int(length) <= SMALL_BODY_BYTES


@router.api_route("/api/{service}/{path:path}", methods=METHODS, include_in_schema=False)
async def forward(request: Request, service: ServiceDep, path: str, client: UpstreamDep,
                  upstreams: UpstreamsDep) -> Response:
    return await relay(request, service, path, client, upstreams)


class ProxyFastPath:
    """``/api/<known service>/…`` relayed straight from the middleware stack, the same ``relay`` as the route
    ``forward`` but without the router's matching, dependency solving and exception wrappers, which cost more CPU
    than the relaying itself (bench/gateway_profile.py). Everything else — an unknown service (404), the gateway's
    own routes — goes on to the app. A refusal of the relay (502, 504) is answered as the error handlers would."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.prefixes = tuple((f"/api/{service}/", service) for service in SERVICES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.startswith("/api/"):
            for prefix, service in self.prefixes:
                if path.startswith(prefix):
                    await self._relay(scope, receive, send, service, path[len(prefix):])
                    return
        await self.app(scope, receive, send)

    @staticmethod
    async def _relay(scope: Scope, receive: Receive, send: Send, service: str, path: str) -> None:
        request = Request(scope, receive)
        state = scope["app"].state
        try:
            response = await relay(request, service, path, state.upstream, state.upstreams)
        except DomainError as exc:
            response = JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status)
        await response(scope, receive, send)


async def relay(request: Request, service: str, path: str, client: httpx.AsyncClient,
                upstreams: Upstreams) -> Response:
    retryable = safe_to_retry(request.method, request.headers)
    # A request that may be sent again keeps its body in memory (bounded by the guard's size limit); any other is
    # streamed through as it arrives.
    content = None
    if _has_body(request):
        content = await request.body() if retryable else request.stream()
    headers = _upstream_headers(request, service)

    def build(base_url: str) -> httpx.Request:
        url = _upstream_url(request, base_url, service, path)
        return client.build_request(request.method, url, headers=headers, content=content)

    with upstream_errors(service):
        upstream = await send_upstream(client, build, retryable=retryable, bases=upstreams.order(service),
                                       upstreams=upstreams)
        if request.method == "GET" and path == "openapi.json" and upstream.status_code == 200:
            try:
                return docs.openapi_via_gateway(service, await upstream.aread())
            finally:
                await upstream.aclose()

    if _small(upstream):
        # A small body with a length is read and answered whole: Starlette's StreamingResponse runs a task group
        # per response to watch for a disconnect, which costs more than relaying a few kilobytes at once.
        try:
            content = b"".join([chunk async for chunk in upstream.aiter_raw()])  # as sent: still encoded
        finally:
            await upstream.aclose()
        response = Response(content, status_code=upstream.status_code)
        response.raw_headers = _filtered(upstream.headers.raw, _NOT_RETURNED_RAW)
        return response

    async def body():  # noqa: ANN202
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()

    # aclose also runs as a background task: the body generator's finally does not run if it is never started.
    response = StreamingResponse(body(), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose))
    response.raw_headers = _filtered(upstream.headers.raw, _NOT_RETURNED_RAW)
    return response
