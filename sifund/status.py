"""``sifund status``: the gateway's aggregated ``/health`` as a table."""

from typing import Any

import httpx

from services.kernel.settings import SERVICES


class GatewayUnreachable(Exception):
    pass


def fetch_health(gateway_url: str, timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
    try:
        response = httpx.get(f"{gateway_url}/health", timeout=timeout, trust_env=False)
        return response.status_code, response.json()
    except httpx.HTTPError as exc:
        raise GatewayUnreachable(f"gateway not reachable at {gateway_url} ({type(exc).__name__}); "
                                 f"is `sifund up` running?") from exc
    except ValueError as exc:
        raise GatewayUnreachable(f"gateway at {gateway_url} answered /health with something that is not JSON") from exc


def _service_detail(body: dict[str, Any]) -> str:
    if "error" in body:
        return str(body["error"])
    parts = [f"{name} {state}" for name, state in (body.get("checks") or {}).items()]
    if body.get("outbox_backlog") is not None:
        parts.append(f"outbox backlog {body['outbox_backlog']}")
    return ", ".join(parts)


def render(gateway_url: str, http_status: int, health: dict[str, Any]) -> list[str]:
    services = health.get("services") or {}
    rows = [("gateway", "ok", gateway_url)]
    for name in SERVICES:
        body = services.get(name) or {"status": "unknown"}
        rows.append((name, str(body.get("status", "unknown")), _service_detail(body)))
    rows.append(("nats", str(health.get("nats", "unknown")), ""))
    width = max(len("STATUS"), *(len(r[1]) for r in rows))
    lines = [f"{'COMPONENT':<11} {'STATUS':<{width}}  DETAIL"]
    lines += [f"{name:<11} {status:<{width}}  {detail}".rstrip() for name, status, detail in rows]
    lines.append(f"overall: {health.get('status', 'unknown')} (HTTP {http_status})")
    return lines
