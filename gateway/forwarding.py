"""What passes between a caller and a service through the gateway, whichever relay carries it (gateway/relay.py, or
gateway/proxy.py's httpx one): the headers forwarded and returned, the upstream request target, and which answers
are small enough to be relayed whole."""

from urllib.parse import quote

from starlette.types import Scope

from services.kernel import context
from services.kernel.web import CORRELATION_ID_HEADER, REQUEST_ID_HEADER

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
NOT_FORWARDED_RAW = frozenset(name.encode() for name in NOT_FORWARDED)
NOT_RETURNED_RAW = frozenset(name.encode() for name in NOT_RETURNED)

# Bodies up to this size (with a Content-Length) are relayed whole, larger or unsized ones streamed as they come.
SMALL_BODY_BYTES = 64 * 1024


def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    """Headers named in ``Connection`` are hop-by-hop too."""
    return {
        token.strip().lower()
        for name, value in headers if name.lower() == b"connection"
        for token in value.split(b",")
    }


def filtered(headers: list[tuple[bytes, bytes]], dropped: frozenset[bytes]) -> list[tuple[bytes, bytes]]:
    named = _connection_tokens(headers)
    return [(k, v) for k, v in headers if (lower := k.lower()) not in dropped and lower not in named]


def upstream_headers(scope: Scope, service: str) -> list[tuple[bytes, bytes]]:
    """The caller's headers as the service gets them: hop-by-hop and the gateway's own dropped, then the request
    and correlation ids of the trace context and the X-Forwarded-* the gateway vouches for."""
    ctx = context.current()
    headers = filtered(scope["headers"], NOT_FORWARDED_RAW)
    given_for = host = None
    for name, value in scope["headers"]:  # the first of each, as Starlette's Headers.get
        if name == b"x-forwarded-for" and given_for is None:
            given_for = value.decode("latin-1")
        elif name == b"host" and host is None:
            host = value
    client = scope.get("client")
    forwarded_for = ", ".join(filter(None, [given_for, client[0] if client else ""]))
    headers += [
        (REQUEST_ID_HEADER.encode(), (ctx.request_id or "").encode()),
        (CORRELATION_ID_HEADER.encode(), (ctx.correlation_id or ctx.request_id or "").encode()),
        (b"x-forwarded-for", forwarded_for.encode("latin-1")),
        (b"x-forwarded-proto", scope.get("scheme", "http").encode()),
        (b"x-forwarded-host", host or b""),
        (b"x-forwarded-prefix", f"/api/{service}".encode()),
    ]
    return headers


def upstream_target(scope: Scope, service: str, path: str) -> str:
    """``/<path>[?<query>]`` as the service is asked for it. The raw path keeps percent-escapes (an id containing
    %2F stays one path segment). It is used only when its prefix is literally /api/<service>/: with an escaped
    prefix (/api/acc%6Funts/…) slicing it would garble the URL, so the decoded path is re-quoted instead."""
    prefix = f"/api/{service}/".encode()
    raw_path: bytes | None = scope.get("raw_path")
    if raw_path and raw_path.startswith(prefix):
        rest = raw_path[len(prefix) - 1:].decode("latin-1")
    else:
        rest = "/" + quote(path)
    query: bytes = scope.get("query_string", b"")
    return f"{rest}?{query.decode('latin-1')}" if query else rest


def small(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether an answer with ``headers`` announces a body of at most ``SMALL_BODY_BYTES``."""
    for name, value in headers:
        if name.lower() == b"content-length":
            return value.isdigit() and int(value) <= SMALL_BODY_BYTES
    return False
