"""``sifund status``: the gateway's aggregated ``/health`` as a table, and the launcher's children (pid, state,
restarts) — read from the launcher's state file when the gateway itself does not answer."""

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
    if health.get("supervisor"):
        lines += ["", *render_children(health["supervisor"])]
    return lines


def render_children(children: list[dict[str, Any]]) -> list[str]:
    lines = [f"{'PROCESS':<11} {'PID':>7}  {'STATE':<10} {'RESTARTS':>8}  LAST EXIT"]
    for child in children:
        pid = child.get("pid") or "-"
        last_exit = child.get("last_exit_code")
        lines.append(f"{child.get('name', '?'):<11} {pid!s:>7}  {child.get('status', '?'):<10} "
                     f"{child.get('restarts', 0)!s:>8}  {'-' if last_exit is None else last_exit}")
    return lines
