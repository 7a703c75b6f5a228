"""The gateway's view of the services behind it: the one shared HTTP client, which services exist, and how a
transport failure towards one of them becomes a structured error."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

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


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def known_service(service: str) -> str:
    if service not in SERVICES:
        raise DomainError("UNKNOWN_SERVICE", f"未知的服务：{service}", status=404,
                          details={"service": service, "known": list(SERVICES)})
    return service


UpstreamDep = Annotated[httpx.AsyncClient, Depends(get_client)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
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
