"""``GET /health``: the gateway's view of the whole platform, each service's own ``/health`` and NATS, checked
concurrently with a short timeout so that one hanging component cannot hold the answer back. Under ``sifund up``
the launcher's view of its children (pid, restarts, running/restarting/failed) is added as ``supervisor``; a failed
child makes the platform degraded even when what answers for it looks healthy."""

import asyncio
from typing import Any

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from gateway.upstream import UpstreamDep
from services.kernel.settings import SettingsDep
from services.kernel.auth import public
from services.kernel.settings import SERVICES, Settings
from services.kernel.supervision import FAILED, read_state, state_file

router = APIRouter(tags=["health"], dependencies=[public()])

CHECK_TIMEOUT_SECONDS = 2.0


async def service_health(client: httpx.AsyncClient, settings: Settings, service: str) -> tuple[bool, dict[str, Any]]:
    try:
        response = await client.get(f"{settings.service_url(service)}/health", timeout=CHECK_TIMEOUT_SECONDS)
    except httpx.TimeoutException:
        return False, {"status": "timeout", "error": f"服务 {service} 健康检查超时"}
    except httpx.HTTPError:
        return False, {"status": "unreachable", "error": f"服务 {service} 不可用"}
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
    try:
        response = await client.get(f"{settings.nats_monitor}/healthz", params={"js-enabled-only": "true"},
                                    timeout=CHECK_TIMEOUT_SECONDS)
    except httpx.TimeoutException:
        return "timeout"
    except httpx.HTTPError:
        return "unreachable"
    return "ok" if response.status_code == 200 else f"error: HTTP {response.status_code}"


@router.get("/health", summary="Status of every service and of NATS")
async def platform_health(client: UpstreamDep, settings: SettingsDep) -> JSONResponse:
    *checks, nats = await asyncio.gather(*(service_health(client, settings, s) for s in SERVICES),
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
