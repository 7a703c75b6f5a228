"""``GET /health``: the gateway's view of the whole platform, each service's own ``/health`` and NATS, checked
concurrently with a short timeout so that one hanging component cannot hold the answer back. Under ``sifund up``
the launcher's view of its children (pid, restarts, running/restarting/failed) is added as ``supervisor``; a failed
child makes the platform degraded even when what answers for it looks healthy."""

import asyncio
from typing import Any

import anyio
import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine, text

from gateway.upstream import UpstreamDep, Upstreams, UpstreamsDep
from services.kernel.settings import SettingsDep
from services.kernel.auth import public
from services.kernel.settings import SERVICES, Settings
from services.kernel.supervision import FAILED, read_state, state_file

router = APIRouter(tags=["health"], dependencies=[public()])

CHECK_TIMEOUT_SECONDS = 2.0


async def service_health(client: httpx.AsyncClient, upstreams: Upstreams, service: str) -> tuple[bool, dict[str, Any]]:
    """A service is healthy when one of its replicas is; with several, each replica's status is listed under
    ``replicas``, and one that does not answer is marked down for the proxy (``Upstreams``)."""
    urls = upstreams.urls[service]
    checks = await asyncio.gather(*(replica_health(client, upstreams, service, url) for url in urls))
    ok, body = next(((ok, body) for ok, body in checks if ok), checks[0])
    if len(urls) > 1:
        body = {**body, "replicas": {url: b.get("status") for url, (_, b) in zip(urls, checks, strict=True)}}
    return ok, body


async def replica_health(client: httpx.AsyncClient, upstreams: Upstreams, service: str,
                         url: str) -> tuple[bool, dict[str, Any]]:
    try:
        response = await client.get(f"{url}/health", timeout=CHECK_TIMEOUT_SECONDS)
    except httpx.TimeoutException:
        return False, {"status": "timeout", "error": f"服务 {service} 健康检查超时"}
    except httpx.HTTPError:
        upstreams.failed(url)
        return False, {"status": "unreachable", "error": f"服务 {service} 不可用"}
    upstreams.answered(url)
    try:
        body = response.json()
    except ValueError:
        body = {"status": "error", "error": f"服务 {service} 健康检查返回了无法解析的内容"}
    if not isinstance(body, dict):
        body = {"status": "error", "error": f"服务 {service} 健康检查返回了无法解析的内容"}
    ok = response.status_code == 200 and body.get("status") == "ok"
    if not ok and body.get("status") == "ok":
        body = {**body, "status": "error", "http_status": response.status_code}
    return ok, body


async def nats_health(client: httpx.AsyncClient, settings: Settings) -> str:
    """``ok`` when a NATS server answers healthy; with several monitor URLs (``SIFUND_NATS_MONITOR_URL`` of a
    cluster, comma-separated) when any node does: the cluster serves while one node is down."""
    monitors = [url.strip().rstrip("/") for url in settings.nats_monitor.split(",") if url.strip()]
    answers = await asyncio.gather(*(node_health(client, url) for url in monitors))
    return "ok" if "ok" in answers else answers[0]


async def node_health(client: httpx.AsyncClient, monitor: str) -> str:
    try:
        response = await client.get(f"{monitor}/healthz", params={"js-enabled-only": "true"},
                                    timeout=CHECK_TIMEOUT_SECONDS)
    except httpx.TimeoutException:
        return "timeout"
    except httpx.HTTPError:
        return "unreachable"
    return "ok" if response.status_code == 200 else f"error: HTTP {response.status_code}"


@router.get("/health", summary="Status of every service and of NATS")
async def platform_health(client: UpstreamDep, settings: SettingsDep, upstreams: UpstreamsDep) -> JSONResponse:
    *checks, nats = await asyncio.gather(*(service_health(client, upstreams, s) for s in SERVICES),
                                         nats_health(client, settings))
    services = {name: body for name, (_, body) in zip(SERVICES, checks, strict=True)}
    ok = all(healthy for healthy, _ in checks) and nats == "ok"
    body = {"status": "ok" if ok else "degraded", "services": services, "nats": nats}
    supervised = read_state(state_file(settings.data_dir))
    if supervised is not None:
        body["supervisor"] = supervised
        if any(c.get("status") == FAILED for c in supervised):
            ok, body["status"] = False, "degraded"
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/health/live", summary="The gateway process answers (liveness probe)")
def gateway_live() -> dict:
    return {"service": "gateway", "status": "ok"}


@router.get("/health/ready", summary="The identity database answers (readiness probe); the services have their own")
async def gateway_ready(request: Request) -> JSONResponse:
    try:
        await anyio.to_thread.run_sync(_identity_store_answers, request.app.state.engine)
        database = "ok"
    except Exception as exc:  # noqa: BLE001
        database = f"error: {type(exc).__name__}"
    ok = database == "ok"
    return JSONResponse({"service": "gateway", "status": "ok" if ok else "not ready", "checks": {"database": database}},
                        status_code=200 if ok else 503)


def _identity_store_answers(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
