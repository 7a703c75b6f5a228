"""The gateway's view of the services behind it: the one shared HTTP client, which services exist, the replicas of
each (``Upstreams``), and how a transport failure towards one of them becomes a structured error."""

import itertools
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import httpx
from fastapi import Depends, Request

from gateway.keepalive import KeepAliveTransport
from services.kernel.errors import BadGateway, GatewayTimeout, NotFound
from services.kernel.settings import SERVICES, Settings


def open_client(settings: Settings, transport: KeepAliveTransport | None = None) -> httpx.AsyncClient:
    """The process-wide client: one connection pool for every service (``transport``, a
    ``gateway.keepalive.KeepAliveTransport``, which the relay also drives directly: gateway/relay.py).
    ``trust_env=False`` so that a proxy configured for the outside world never sits between the gateway and its own
    services."""
    timeout = httpx.Timeout(
        connect=settings.gateway_connect_timeout_seconds,
        read=settings.gateway_read_timeout_seconds,
        write=settings.gateway_read_timeout_seconds,
        pool=settings.gateway_connect_timeout_seconds,
    )
    client = httpx.AsyncClient(transport=transport or KeepAliveTransport(), timeout=timeout, trust_env=False,
                               follow_redirects=False)
    client._cookies = NoCookies()  # noqa: SLF001 - the cookies setter would copy them into a plain httpx.Cookies
    return client


class NoCookies(httpx.Cookies):
    """The shared client's cookies, which keep nothing: a ``Set-Cookie`` from a service is relayed to the caller
    who got it, and must never be stored by the client and sent with every later caller's requests. Keeping nothing
    also skips httpx's cookie extraction from every response, which builds a urllib request per response."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        return None


# async: FastAPI runs a plain function dependency in its thread pool, a thread hop per request for an attribute.
async def get_client(request: Request) -> httpx.AsyncClient:
    return request.app.state.upstream


async def get_upstreams(request: Request) -> "Upstreams":
    return request.app.state.upstreams


async def known_service(service: str) -> str:
    if service not in SERVICES:
        raise NotFound("UNKNOWN_SERVICE", f"未知的服务：{service}",
                       details={"service": service, "known": list(SERVICES)})
    return service


UpstreamDep = Annotated[httpx.AsyncClient, Depends(get_client)]
ServiceDep = Annotated[str, Depends(known_service)]
UpstreamsDep = Annotated["Upstreams", Depends(get_upstreams)]


# -- replicas of a service -------------------------------------------------------------------------------------------

# An upstream whose connection failed is passed over for this long (the others take its share); after it, it gets
# requests again, and the first one that connects brings it back for good.
DOWN_FOR_SECONDS = 5.0


class Upstreams:
    """The base URLs of each service's replicas (``SIFUND_<SERVICE>_URL``, comma-separated; one URL is one replica)
    and which of them failed recently. Requests go round robin over the replicas not marked down; when every replica
    is marked down they are all tried anyway (a marked replica may be back, and refusing outright helps nobody).

    Per gateway process, in memory: each gateway replica learns for itself which upstream is down (a refused
    connection costs one fast retry, see ``send_upstream``), nothing to share."""

    def __init__(self, settings: Settings, down_for: float = DOWN_FOR_SECONDS):
        self.urls = {service: settings.service_urls(service) for service in SERVICES}
        self.down_for = down_for
        self._turn = {service: itertools.count() for service in SERVICES}
        self._down_until: dict[str, float] = {}

    def order(self, service: str) -> list[str]:
        """The replicas to try for one request, in order: the next in turn first, those marked down last."""
        urls = self.urls[service]
        start = next(self._turn[service]) % len(urls)
        rotated = urls[start:] + urls[:start]
        now = time.monotonic()
        return sorted(rotated, key=lambda url: self._down_until.get(url, 0.0) > now)  # stable: keeps the rotation

    def failed(self, url: str) -> None:
        self._down_until[url] = time.monotonic() + self.down_for

    def answered(self, url: str) -> None:
        self._down_until.pop(url, None)

    def is_down(self, url: str) -> bool:
        return self._down_until.get(url, 0.0) > time.monotonic()


@contextmanager
def upstream_errors(service: str) -> Iterator[None]:
    """Translate a failed call to ``service`` into 502 (unreachable, broken) or 504 (too slow)."""
    details = {"service": service}
    try:
        yield
    except httpx.TimeoutException as exc:
        raise GatewayTimeout("SERVICE_TIMEOUT", f"服务 {service} 响应超时", details=details) from exc
    except httpx.ConnectError as exc:
        raise BadGateway("SERVICE_UNAVAILABLE", f"服务 {service} 不可用", details=details) from exc
    except httpx.TransportError as exc:
        raise BadGateway("SERVICE_UNAVAILABLE", f"服务 {service} 响应异常", details=details) from exc


# -- retrying a request the service never saw ------------------------------------------------------------------------

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
IDEMPOTENCY_KEY_HEADER = "idempotency-key"
MAX_ATTEMPTS = 3
T = TypeVar("T")


def safe_to_retry(method: str, headers: Mapping[str, str]) -> bool:
    """Whether sending ``method`` twice does no more than sending it once: the idempotent methods of RFC 9110
    §9.2.2 (GET, HEAD, OPTIONS, PUT, DELETE), or a POST carrying an ``Idempotency-Key`` (the service answers a
    repeat with the first outcome). PATCH and a POST without a key are never sent twice."""
    method = method.upper()
    return method in IDEMPOTENT_METHODS or (method == "POST" and bool(headers.get(IDEMPOTENCY_KEY_HEADER)))


class ConnectionWatch:
    """Trace hook on one attempt (``gateway.keepalive``'s moment names): did it open a new TCP connection, or reuse a
    keep-alive one?"""

    def __init__(self) -> None:
        self.opened_new = False

    async def __call__(self, name: str) -> None:
        if name == "connection.connect_tcp.started":
            self.opened_new = True

    def watching(self, request: httpx.Request) -> httpx.Request:
        """``request`` with this watch in its ``trace`` extension, before any trace it had."""
        inner = request.extensions.get("trace")

        async def trace(name: str, info: dict[str, Any]) -> None:
            await self(name)
            if inner is not None:
                await inner(name, info)

        request.extensions["trace"] = trace
        return request


async def send_upstream(client: httpx.AsyncClient, build: Callable[[str], httpx.Request], *, retryable: bool,
                        bases: list[str], upstreams: Upstreams | None = None) -> httpx.Response:
    """Send the request ``build(base_url)`` makes (streamed response) with ``client``, under ``with_retries``."""

    async def attempt(base: str, watch: ConnectionWatch) -> httpx.Response:
        return await client.send(watch.watching(build(base)), stream=True)

    return await with_retries(attempt, retryable=retryable, bases=bases, upstreams=upstreams)


async def with_retries(attempt: Callable[[str, ConnectionWatch], Awaitable[T]], *, retryable: bool, bases: list[str],
                       upstreams: Upstreams | None = None) -> T:
    """``attempt(base_url, watch)`` — one sending of the request to ``base_url``, whose new connection, if it opens
    one, is announced to ``watch`` — on the first of ``bases`` (a service's replicas, in the order
    ``Upstreams.order`` gave), and again — to the next replica, or the same one when it is the only one — when it
    certainly never reached a service's handler. The retry rule:

    - the connection could not be opened (``httpx.ConnectError``: refused, reset during the handshake): nothing of
      the request was sent, so any request is sent again, to the next replica; that replica is marked down;
    - a *reused* keep-alive connection was closed by the service before it answered (``RemoteProtocolError``
      "server disconnected", ``ReadError``/``WriteError`` reset): only when ``retryable`` (see ``safe_to_retry``:
      the request may be applied twice and nothing changes). A server may close an idle keep-alive connection at
      any moment (uvicorn closes one after an unhandled exception, a moment after the 500 went out), and a request
      written into that moment is never read: without a new attempt it would be a spurious 502;
    - never on a timeout (the service may be working on it) nor on a failure of a freshly opened connection after
      the request was written (the service may have read and applied it): a POST without ``Idempotency-Key`` that
      may have reached a replica is never sent to another;
    - at most ``MAX_ATTEMPTS`` attempts, or one per replica when there are more; the last failure is raised (and
      becomes a 502 by ``upstream_errors``).
    """
    attempts = max(MAX_ATTEMPTS, len(bases))
    for number in range(1, attempts + 1):
        base = bases[(number - 1) % len(bases)]
        watch = ConnectionWatch()
        try:
            response = await attempt(base, watch)
        except httpx.ConnectError:
            if upstreams is not None:
                upstreams.failed(base)
            if number == attempts:
                raise
            continue
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            if upstreams is not None and watch.opened_new:
                upstreams.failed(base)
            if not retryable or watch.opened_new or number == attempts:
                raise
            continue
        if upstreams is not None:
            upstreams.answered(base)
        return response
    raise AssertionError("unreachable")  # pragma: no cover
