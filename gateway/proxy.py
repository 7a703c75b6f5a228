"""``/api/<service>/<path>`` → ``<service url>/<path>``: method, query string, headers and body passed through,
request and correlation ids set, the response streamed back as it arrives. Relayed on the gateway's own transport
without httpx's objects (gateway/relay.py), or through the shared httpx client when that client was replaced."""

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway import docs
from gateway import relay as lean
from gateway.forwarding import NOT_RETURNED_RAW, filtered, small, upstream_headers, upstream_target
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
from services.kernel.errors import DomainError, error_body
from services.kernel.settings import SERVICES

# Open at the gateway: each service enforces its own policy per route.
router = APIRouter(dependencies=[public()])

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _has_body(request: Request) -> bool:
    return "content-length" in request.headers or "transfer-encoding" in request.headers


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
        state = scope["app"].state
        direct: lean.DirectRelay | None = getattr(state, "direct_relay", None)
        try:
            if direct is not None and direct.client is state.upstream:
                await lean.relay(scope, receive, send, service, path, direct.transport, state.upstreams,
                                 direct.timeouts)
                return
            # The shared client was replaced (tests route it to in-process apps): through httpx, as it says.
            response = await relay(Request(scope, receive), service, path, state.upstream, state.upstreams)
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
    headers = upstream_headers(request.scope, service)
    target = upstream_target(request.scope, service, path)

    def build(base_url: str) -> httpx.Request:
        return client.build_request(request.method, base_url + target, headers=headers, content=content)

    with upstream_errors(service):
        upstream = await send_upstream(client, build, retryable=retryable, bases=upstreams.order(service),
                                       upstreams=upstreams)
        if request.method == "GET" and path == "openapi.json" and upstream.status_code == 200:
            try:
                return docs.openapi_via_gateway(service, await upstream.aread())
            finally:
                await upstream.aclose()

    if small(upstream.headers.raw):
        # A small body with a length is read and answered whole: Starlette's StreamingResponse runs a task group
        # per response to watch for a disconnect, which costs more than relaying a few kilobytes at once.
        try:
            content = b"".join([chunk async for chunk in upstream.aiter_raw()])  # as sent: still encoded
        finally:
            await upstream.aclose()
        response = Response(content, status_code=upstream.status_code)
        response.raw_headers = filtered(upstream.headers.raw, NOT_RETURNED_RAW)
        return response

    async def body():  # noqa: ANN202
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()

    # aclose also runs as a background task: the body generator's finally does not run if it is never started.
    response = StreamingResponse(body(), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose))
    response.raw_headers = filtered(upstream.headers.raw, NOT_RETURNED_RAW)
    return response
