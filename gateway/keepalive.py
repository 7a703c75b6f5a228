"""The gateway's HTTP/1.1 transport to the services: keep-alive connections on asyncio's protocol API, answers
parsed by httptools (the parser uvicorn uses), under httpx's client API (``KeepAliveTransport``).

httpx's own transport goes through httpcore and h11, pure-Python state machines whose per-request cost was ~45 % of
the gateway's CPU on a cheap read (bench/gateway_reads.py). This transport does the same work in fewer steps:

- requests are written as bytes (head and body, ``Transfer-Encoding: chunked`` framed when httpx chose it);
- answers are parsed by httptools as they arrive; the body is handed out as it comes (streamed: reading from the
  socket pauses while more than ``BUFFER_BYTES`` wait for the caller), so large and slow answers stream through;
- an idle connection goes back to a per-origin LIFO stack and is reused while younger than the keep-alive expiry
  and not closed by the service (the service's own close is seen at once: the protocol is told);
- at most ``max_connections`` requests in flight (a request beyond waits up to the pool timeout, then
  ``httpx.PoolTimeout``);
- httpx's timeouts (connect, read, write, pool from the request's ``timeout`` extension) and httpx's exceptions, so
  that ``upstream.send_upstream``'s retry rule and ``upstream.upstream_errors``'s 502/504 see what they saw before;
- the ``trace`` extension hears httpcore's names for the moments the gateway and its tests watch:
  ``connection.connect_tcp.started`` when a request opens a new connection (``upstream.ConnectionWatch``) and
  ``http11.send_request_body.complete`` once the whole request is written; so does the transport's ``observer``,
  for every request, with the request's head (how tests hold a moment of the gateway's relay).

Under httpx's API (``handle_async_request``) or without it: ``open_exchange`` sends a request given as bytes and
waits for its answer's head, ``read_body`` hands the body out, ``release`` gives the connection back. The gateway's
relay (gateway/relay.py) uses these, building no httpx Request or Response per request.

An answer that is not read to its end (the caller gave up) closes its connection; so does a HEAD's (its answer
announces a body it does not send, which httptools would wait for)."""

import asyncio
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import NamedTuple

import httptools
import httpx

MAX_CONNECTIONS = 500
MAX_IDLE_CONNECTIONS = 100
KEEPALIVE_SECONDS = 5.0
# Unread body bytes held per connection before reading from its socket pauses.
BUFFER_BYTES = 256 * 1024
Origin = tuple[bytes, bytes, int]
# Hears the names of the moments of one exchange (see the module docstring).
Trace = Callable[[str], Awaitable[None]]


class Timeouts(NamedTuple):
    """httpx's four timeouts, in seconds (None: no limit)."""

    connect: float | None = None
    read: float | None = None
    write: float | None = None
    pool: float | None = None

    @classmethod
    def of(cls, timeout: httpx.Timeout | dict) -> "Timeouts":
        """From an ``httpx.Timeout`` or a request's ``timeout`` extension (a dict of the same four)."""
        if isinstance(timeout, httpx.Timeout):
            return cls(timeout.connect, timeout.read, timeout.write, timeout.pool)
        return cls(timeout.get("connect"), timeout.get("read"), timeout.get("write"), timeout.get("pool"))


def origin_of(url: httpx.URL) -> Origin:
    return url.raw_scheme, url.raw_host, url.port or (443 if url.raw_scheme == b"https" else 80)


class UpstreamConnection(asyncio.Protocol):
    """One connection to a service; one request at a time."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.last_used = time.monotonic()
        self._lost: Exception | None = None
        self._can_write: asyncio.Future | None = None
        self._begin(head_only=False)

    # -- one exchange --------------------------------------------------------------------------------------------

    def _begin(self, *, head_only: bool) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = head_only
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._sized = False  # Content-Length or chunked: the parser knows where the body ends
        self.headers_done = False
        self._keep_alive = False
        self.complete = False
        self.received_any = False
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future | None = None
        self._error: Exception | None = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # -- asyncio.Protocol ----------------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.complete:  # nothing is owed on a connection between exchanges: it cannot be trusted again
            self.close()
            return
        self.received_any = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed answer from the service: {exc}"))
        if self._buffered > BUFFER_BYTES and not self._paused and not self.closed:
            self._paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        if self.headers_done and not self.complete and not self._sized:
            self.complete = True  # a body delimited by the end of the connection (RFC 9112 §6.3)
        self._closed_by_peer(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed_by_peer(exc)
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)

    def pause_writing(self) -> None:
        self._can_write = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)

    def _closed_by_peer(self, exc: Exception | None) -> None:
        self.closed = True
        self._lost = exc
        if not self.complete and self._error is None:
            if not self.received_any:
                self._error = httpx.RemoteProtocolError("Server disconnected without sending a response.")
            elif exc is not None:
                self._error = httpx.ReadError(str(exc) or type(exc).__name__)
            else:
                self._error = httpx.RemoteProtocolError("peer closed connection without sending complete message body")
        self._wake()

    def _fail(self, error: Exception) -> None:
        if self._error is None:
            self._error = error
        self.close()
        self._wake()

    # -- httptools callbacks -------------------------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length" or (lowered == b"transfer-encoding" and b"chunked" in value.lower()):
            self._sized = True

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # an interim answer (100 Continue): the real one follows
            self.headers, self._sized = [], False
            return
        self.status = status
        self.headers_done = True
        # Asked now: once the message is complete the parser has moved on to the next one and answers False.
        self._keep_alive = self._parser.should_keep_alive()
        if self._head_only:
            self.complete = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._head_only or not self.headers_done:
            return
        self._chunks.append(body)
        self._buffered += len(body)
        self._wake()

    def on_message_complete(self) -> None:
        if self.headers_done:
            self.complete = True
            self._wake()

    # -- the caller's side ---------------------------------------------------------------------------------------

    async def wait(self, timeout: float | None, what: type[httpx.TimeoutException]) -> None:
        """Until the parser or the socket has news, at most ``timeout`` seconds (then ``what``). A timer on the
        loop rather than ``asyncio.wait_for``, which costs a task per wait."""
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _expire, waiter, what)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def take_body(self) -> list[bytes]:
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        if self._paused and not self.closed:
            self._paused = False
            self.transport.resume_reading()
        return chunks

    def raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    async def write(self, data: bytes, timeout: float | None) -> None:
        if self.closed:
            raise httpx.WriteError(str(self._lost or "the service closed the connection"))
        self.transport.write(data)
        if self._can_write is not None and not self._can_write.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._can_write), timeout)
            except TimeoutError:
                raise httpx.WriteTimeout("the service did not read the request in time") from None
            if self.closed:
                raise httpx.WriteError(str(self._lost or "the service closed the connection"))

    def reusable(self) -> bool:
        return not self.closed and self.complete and not self._chunks and not self._head_only and self._keep_alive

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future, what: type[httpx.TimeoutException]) -> None:
    if not waiter.done():
        waiter.set_exception(what("the service did not answer in time"))


def _request_head(request: httpx.Request) -> tuple[bytes, bool, bool]:
    """The request's head as written, whether its body is sent chunked, and whether it has a Content-Length: one
    pass over the raw headers (httpx's ``Headers.get`` decodes every header on each call)."""
    lines = [b"%s %s HTTP/1.1" % (request.method.encode("ascii"), request.url.raw_path)]
    chunked = sized = False
    for name, value in request.headers.raw:
        lines.append(b"%s: %s" % (name, value))
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif lowered == b"content-length":
            sized = True
    return b"\r\n".join(lines) + b"\r\n\r\n", chunked, sized


async def read_body(connection: UpstreamConnection, read_timeout: float | None) -> AsyncIterator[bytes]:
    """The answer's body on ``connection`` as it arrives (after ``open_exchange``); ``release`` it afterwards."""
    while True:
        for chunk in connection.take_body():
            yield chunk
        if connection.complete:
            return
        connection.raise_error()
        await connection.wait(read_timeout, httpx.ReadTimeout)


class _Body(httpx.AsyncByteStream):
    """An answer's body as it arrives; closing it gives the connection back (or closes it if unread)."""

    def __init__(self, transport: "KeepAliveTransport", connection: UpstreamConnection, read_timeout: float | None):
        self._transport, self._connection, self._read_timeout = transport, connection, read_timeout
        self._released = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return read_body(self._connection, self._read_timeout)

    async def aclose(self) -> None:
        if not self._released:
            self._released = True
            self._transport.release(self._connection)


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """httpx transport over ``UpstreamConnection``s: see the module docstring."""

    def __init__(self, max_connections: int = MAX_CONNECTIONS, max_idle: int = MAX_IDLE_CONNECTIONS,
                 keepalive_expiry: float = KEEPALIVE_SECONDS):
        self.keepalive_expiry = keepalive_expiry
        self.max_idle = max_idle
        self._idle: dict[Origin, list[UpstreamConnection]] = {}
        self._idle_count = 0
        self._max_connections = max_connections
        self._in_flight = asyncio.Semaphore(max_connections)
        self._ssl: ssl.SSLContext | None = None
        # Hears every exchange's moments with the request's head, beside each request's own trace (tests hold the
        # relay at one of them).
        self.observer: Callable[[str, bytes], Awaitable[None]] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = Timeouts.of(request.extensions.get("timeout", {}))
        head, chunked, sized = _request_head(request)
        extension = request.extensions.get("trace")

        async def trace(name: str) -> None:
            await extension(name, {"request": request})

        whole = isinstance(request.stream, httpx.ByteStream) or not (chunked or sized)
        connection = await self.open_exchange(
            origin_of(request.url), head, request.stream, whole=whole, chunked=chunked,
            head_only=request.method == "HEAD", timeouts=timeouts, trace=trace if extension is not None else None)
        return httpx.Response(connection.status, headers=connection.headers,
                              stream=_Body(self, connection, timeouts.read),
                              extensions={"http_version": b"HTTP/1.1"})

    async def open_exchange(self, origin: Origin, head: bytes, body: bytes | AsyncIterable[bytes], *, whole: bool,
                            chunked: bool, head_only: bool, timeouts: Timeouts, trace: Trace | None = None,
                            ) -> UpstreamConnection:
        """Send a request — ``head`` (request line, headers, blank line) and ``body``, written with the head when
        ``whole``, else streamed after it (``chunked``: framed so) — and wait for its answer's head. The connection
        it went on holds a place until ``release``."""
        await self._acquire(timeouts.pool)
        try:
            return await self._exchange(origin, head, body, whole, chunked, head_only, timeouts, trace)
        except BaseException:
            self._in_flight.release()
            raise

    async def _announce(self, trace: Trace | None, name: str, head: bytes) -> None:
        if trace is not None:
            await trace(name)
        if self.observer is not None:
            await self.observer(name, head)

    async def _exchange(self, origin: Origin, head: bytes, body: bytes | AsyncIterable[bytes], whole: bool,
                        chunked: bool, head_only: bool, timeouts: Timeouts, trace: Trace | None) -> UpstreamConnection:
        connection = self._idle_connection(origin)
        if connection is None:
            connection = await self._connect(origin, timeouts.connect, trace, head)
        connection._begin(head_only=head_only)  # noqa: SLF001 - the transport drives its connections
        try:
            await self._send(connection, head, body, whole, chunked, timeouts.write)
            await self._announce(trace, "http11.send_request_body.complete", head)
            while not connection.headers_done:
                connection.raise_error()
                await connection.wait(timeouts.read, httpx.ReadTimeout)
        except BaseException:
            connection.close()
            raise
        return connection

    async def _send(self, connection: UpstreamConnection, head: bytes, body: bytes | AsyncIterable[bytes], whole: bool,
                    chunked: bool, timeout: float | None) -> None:
        if whole:
            if not isinstance(body, bytes):
                body = b"".join([part async for part in body])
            await connection.write(head + body, timeout)
            return
        await connection.write(head, timeout)
        try:
            async for part in body:
                if connection.headers_done:  # answered before the body was read (a refusal): stop sending
                    return
                if part:
                    await connection.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part, timeout)
            if chunked:
                await connection.write(b"0\r\n\r\n", timeout)
        except httpx.WriteError:
            if not connection.headers_done:
                raise

    async def _connect(self, origin: Origin, timeout: float | None, trace: Trace | None,
                       head: bytes) -> UpstreamConnection:
        await self._announce(trace, "connection.connect_tcp.started", head)
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = self._tls() if scheme == b"https" else None
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(lambda: UpstreamConnection(origin), host.decode("ascii"), port, ssl=tls), timeout)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host.decode()}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        return connection

    def _tls(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    async def _acquire(self, timeout: float | None) -> None:
        if not self._in_flight.locked():
            await self._in_flight.acquire()
            return
        try:
            await asyncio.wait_for(self._in_flight.acquire(), timeout)
        except TimeoutError:
            raise httpx.PoolTimeout("no connection to the upstream became free in time") from None

    def _idle_connection(self, origin: Origin) -> UpstreamConnection | None:
        stack = self._idle.get(origin)
        now = time.monotonic()
        while stack:
            connection = stack.pop()
            self._idle_count -= 1
            if not connection.closed and now - connection.last_used < self.keepalive_expiry:
                return connection
            connection.close()
        return None

    def release(self, connection: UpstreamConnection) -> None:
        self._in_flight.release()
        if connection.reusable() and self._idle_count < self.max_idle:
            connection.last_used = time.monotonic()
            self._idle.setdefault(connection.origin, []).append(connection)
            self._idle_count += 1
        else:
            connection.close()

    @property
    def in_flight(self) -> int:
        """Requests holding a place (their answer not yet closed)."""
        return self._max_connections - self._in_flight._value  # noqa: SLF001 - asyncio.Semaphore has no public counter

    async def aclose(self) -> None:
        idle, self._idle, self._idle_count = self._idle, {}, 0
        for stack in idle.values():
            for connection in stack:
                connection.close()
