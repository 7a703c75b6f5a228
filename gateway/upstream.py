"""The gateway's view of the services behind it: the one shared HTTP client, which services exist, and how a
transport failure towards one of them becomes a structured error."""

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request

from services.kernel.errors import DomainError
from services.kernel.settings import SERVICES, Settings


def open_client(settings: Settings) -> httpx.AsyncClient:
    """The process-wide client: one connection pool for every service. ``trust_env=False`` so that a proxy
    configured for the outside world never sits between the gateway and its own services."""
    timeout = httpx.Timeout(
        connect=settings.gateway_connect_timeout_seconds,
        read=settings.gateway_read_timeout_seconds,
        write=settings.gateway_read_timeout_seconds,
        pool=settings.gateway_connect_timeout_seconds,
    )
    limits = httpx.Limits(max_connections=500, max_keepalive_connections=100)
    return httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False, follow_redirects=False)


def get_client(request: Request) -> httpx.AsyncClient:
    return request.app.state.upstream


def known_service(service: str) -> str:
    if service not in SERVICES:
        raise DomainError("UNKNOWN_SERVICE", f"未知的服务：{service}", status=404,
                          details={"service": service, "known": list(SERVICES)})
    return service


UpstreamDep = Annotated[httpx.AsyncClient, Depends(get_client)]
ServiceDep = Annotated[str, Depends(known_service)]


@contextmanager
def upstream_errors(service: str) -> Iterator[None]:
    """Translate a failed call to ``service`` into 502 (unreachable, broken) or 504 (too slow)."""
    details = {"service": service}
    try:
        yield
    except httpx.TimeoutException as exc:
        raise DomainError("SERVICE_TIMEOUT", f"服务 {service} 响应超时", status=504, details=details) from exc
    except httpx.ConnectError as exc:
        raise DomainError("SERVICE_UNAVAILABLE", f"服务 {service} 不可用", status=502, details=details) from exc
    except httpx.TransportError as exc:
        raise DomainError("SERVICE_UNAVAILABLE", f"服务 {service} 响应异常", status=502, details=details) from exc


# -- retrying a request the service never saw ------------------------------------------------------------------------

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
IDEMPOTENCY_KEY_HEADER = "idempotency-key"
MAX_ATTEMPTS = 3


def safe_to_retry(method: str, headers: Mapping[str, str]) -> bool:
    """Whether sending ``method`` twice does no more than sending it once: the idempotent methods of RFC 9110
    §9.2.2 (GET, HEAD, OPTIONS, PUT, DELETE), or a POST carrying an ``Idempotency-Key`` (the service answers a
    repeat with the first outcome). PATCH and a POST without a key are never sent twice."""
    method = method.upper()
    return method in IDEMPOTENT_METHODS or (method == "POST" and bool(headers.get(IDEMPOTENCY_KEY_HEADER)))


class _ConnectionWatch:
    """httpcore trace hook on one attempt: did it open a new TCP connection, or reuse a keep-alive one?"""

    def __init__(self, request: httpx.Request):
        self.opened_new = False
        self._inner = request.extensions.get("trace")
        request.extensions["trace"] = self

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        if name == "connection.connect_tcp.started":
            self.opened_new = True
        if self._inner is not None:
            await self._inner(name, info)


async def send_upstream(client: httpx.AsyncClient, build: Callable[[], httpx.Request], *,
                        retryable: bool) -> httpx.Response:
    """Send the request built by ``build`` (streamed response), again on another connection when it certainly
    never reached the service's handler — the retry rule:

    - only when ``retryable`` (see ``safe_to_retry``): the request may be applied twice and nothing changes;
    - only for a failure before any byte of a response came back, and only of two kinds:
      * the connection could not be opened (``httpx.ConnectError``: refused, reset during the handshake);
      * a *reused* keep-alive connection was closed by the service before it answered (``RemoteProtocolError``
        "server disconnected", ``ReadError``/``WriteError`` reset). A server may close an idle keep-alive
        connection at any moment (uvicorn closes one after an unhandled exception, a moment after the 500 went
        out), and a request written into that moment is never read; this was the spurious 502 of issue 11 §3;
    - never on a timeout (the service may be working on it) nor on a failure of a freshly opened connection
      after the request was written (the service may have read and applied it);
    - at most ``MAX_ATTEMPTS`` attempts; the last failure is raised (and becomes a 502 by ``upstream_errors``).
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        request = build()
        watch = _ConnectionWatch(request)
        try:
            return await client.send(request, stream=True)
        except httpx.ConnectError:
            if not retryable or attempt == MAX_ATTEMPTS:
                raise
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            if not retryable or watch.opened_new or attempt == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable")  # pragma: no cover
