"""The HTTP/1.1 server protocol of every component under ``sifund up`` (uvicorn ``--http
services.kernel.http_protocol:CoalescingHttpToolsProtocol``): uvicorn's httptools protocol, whose writes to the
socket are coalesced.

uvicorn writes a response's head (status line and headers) and its body to the transport in two calls, and uvloop
sends each at once: two ``send`` system calls and two TCP segments per answer, each waking the reader (the gateway's
relay, the client) — on a cheap read the largest single cost of both the service and the gateway
(bench/gateway_reads.py, py-spy). Here a write is held until the next write, which goes out with it in one call, or
until the event loop's next iteration: a head and a body sent in the same step of the request's task (a plain
``Response``) leave in one segment; a streamed body's head leaves one loop iteration later at most. The bytes and
their order are unchanged, and nothing is held past a close.
"""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_JOIN_AT_MOST = 64 * 1024


class CoalescingTransport:
    """A transport whose ``write`` is held until the next write or the next loop iteration (see the module)."""

    __slots__ = ("_transport", "_loop", "_held", "_flush_handle")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop):
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._flush_handle: asyncio.Handle | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data)
            self._flush_handle = self._loop.call_soon(self.flush)
            return
        self._held = None
        self._flush_handle.cancel()
        if len(data) > _JOIN_AT_MOST:  # a large body is not copied to save one system call
            self._transport.write(held)
            self._transport.write(data)
        else:
            self._transport.write(held + data)

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def flush(self) -> None:
        """Send what is held now."""
        held, self._held = self._held, None
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def __getattr__(self, name: str) -> Any:  # everything else as the transport itself
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a ``CoalescingTransport``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
