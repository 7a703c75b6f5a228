"""``/api/<service>/<path>`` relayed on the gateway's keep-alive transport (gateway/keepalive.py) without building an
httpx Request or Response: the request written as bytes from the ASGI scope, the answer's head and body handed
back to the caller as ASGI messages. Building and merging httpx's URL, headers, Request and Response cost a quarter
of the gateway's CPU on a cheap read (bench/gateway_reads.py) for nothing the relay needs.

It does what the httpx relay (gateway/proxy.relay) does, rule for rule: the same headers forwarded and returned
(``gateway.forwarding``), the same retry rule (``gateway.upstream.with_retries``), the same 502/504
(``gateway.upstream.upstream_errors``), bodies of up to ``SMALL_BODY_BYTES`` answered whole and larger or unsized
ones streamed as they come; a request body is kept in memory only when the request may be sent again."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway import docs
from gateway.forwarding import (
    NOT_RETURNED_RAW,
    filtered,
    small,
    upstream_headers,
    upstream_target,
)
from gateway.keepalive import KeepAliveTransport, Origin, Timeouts, UpstreamConnection, origin_of, read_body
from gateway.upstream import IDEMPOTENT_METHODS, ConnectionWatch, Upstreams, upstream_errors, with_retries

# httpx announced an empty body of these methods (RFC 9110 §8.6: a POST without a body says so).
_BODY_EXPECTED = frozenset({"POST", "PUT", "PATCH"})


@dataclass(frozen=True)
class DirectRelay:
    """The gateway's shared httpx ``client`` and the keep-alive ``transport`` under it, which the relay drives
    directly with the client's ``timeouts`` (``app.state.direct_relay``)."""

    client: httpx.AsyncClient
    transport: KeepAliveTransport
    timeouts: Timeouts

    @classmethod
    def of(cls, client: httpx.AsyncClient, transport: KeepAliveTransport) -> "DirectRelay":
        return cls(client, transport, Timeouts.of(client.timeout))


class _Base:
    """A replica's base URL as the relay writes it: where to connect, the Host header, the path prefix."""

    __slots__ = ("origin", "host", "prefix")

    def __init__(self, base_url: str) -> None:
        url = httpx.URL(base_url)
        self.origin: Origin = origin_of(url)
        self.host = url.netloc
        self.prefix = url.raw_path.split(b"?", 1)[0].rstrip(b"/")


_bases: dict[str, _Base] = {}


def _base(base_url: str) -> _Base:
    base = _bases.get(base_url)
    if base is None:
        base = _bases[base_url] = _Base(base_url)
    return base


async def relay(scope: Scope, receive: Receive, send: Send, service: str, path: str, transport: KeepAliveTransport,
                upstreams: Upstreams, timeouts: Timeouts) -> None:
    """Relay one request to ``service`` and its answer back (a failure to reach it raised as 502/504)."""
    method: str = scope["method"]
    sized = chunked_in = False
    idempotency_key = b""
    for name, value in scope["headers"]:
        if name == b"content-length":
            sized = True
        elif name == b"transfer-encoding":
            chunked_in = True
        elif name == b"idempotency-key":
            idempotency_key = value
    retryable = method in IDEMPOTENT_METHODS or (method == "POST" and bool(idempotency_key.strip()))
    headers = upstream_headers(scope, service)

    # A request that may be sent again keeps its body in memory (bounded by the guard's size limit); any other is
    # streamed through as it arrives, chunked when the caller gave no length.
    body: bytes | AsyncIterator[bytes] = b""
    whole, chunked = True, False
    if sized or chunked_in:
        if retryable:
            body = await _whole_body(receive)
            if not sized:
                headers.append((b"content-length", b"%d" % len(body)))
        else:
            body, whole = _streamed_body(receive), False
            if not sized:
                chunked = True
                headers.append((b"transfer-encoding", b"chunked"))
    elif method in _BODY_EXPECTED:
        headers.append((b"content-length", b"0"))
    # The head, but for each replica's path prefix and Host: "<method> <prefix><target> HTTP/1.1", Host, the rest.
    method_space = method.encode("ascii") + b" "
    target_to_host = upstream_target(scope, service, path).encode("latin-1") + b" HTTP/1.1\r\nhost: "
    header_lines = b"".join([b"\r\n%s: %s" % pair for pair in headers]) + b"\r\n\r\n"

    async def attempt(base_url: str, watch: ConnectionWatch) -> UpstreamConnection:
        base = _base(base_url)
        head = method_space + base.prefix + target_to_host + base.host + header_lines
        return await transport.open_exchange(base.origin, head, body, whole=whole, chunked=chunked,
                                             head_only=method == "HEAD", timeouts=timeouts, trace=watch)

    with upstream_errors(service):
        connection = await with_retries(attempt, retryable=retryable, bases=upstreams.order(service),
                                        upstreams=upstreams)
        release = _Release(transport, connection)
        try:
            answer_headers = filtered(connection.headers, NOT_RETURNED_RAW)
            if method == "GET" and path == "openapi.json" and connection.status == 200:
                content = b"".join([chunk async for chunk in read_body(connection, timeouts.read)])
                release()
                await docs.openapi_via_gateway(service, content)(scope, receive, send)
                return
            if small(connection.headers):
                # A small body with a length is read and answered whole: Starlette's StreamingResponse runs a task
                # group per response to watch for a disconnect, which costs more than relaying a few kilobytes.
                content = b"".join([chunk async for chunk in read_body(connection, timeouts.read)])
                release()
                await send({"type": "http.response.start", "status": connection.status, "headers": answer_headers})
                await send({"type": "http.response.body", "body": content})
                return
        except BaseException:
            release()
            raise

    async def streamed() -> AsyncIterator[bytes]:
        try:
            async for chunk in read_body(connection, timeouts.read):
                yield chunk
        finally:
            release()

    # release also runs as a background task: the body generator's finally does not run if it is never started.
    response = StreamingResponse(streamed(), status_code=connection.status, background=BackgroundTask(release))
    response.raw_headers = answer_headers
    await response(scope, receive, send)


class _Release:
    """Gives the connection back to the transport once, however many of the paths above ask."""

    __slots__ = ("transport", "connection", "done")

    def __init__(self, transport: KeepAliveTransport, connection: UpstreamConnection) -> None:
        self.transport, self.connection, self.done = transport, connection, False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self.transport.release(self.connection)


async def _whole_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _streamed_body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return

