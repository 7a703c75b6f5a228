"""Operations on a real ``sifund up``: after an end-to-end month driven through the gateway (tests/chaos/month.py
without faults: registration, declarations, the tax bureau's lines, finance's remittances and receipts, an injury
allowance paid by a payroll), every process's ``/metrics`` shows the families an operator and a supervisor watch
with values; ``/metrics`` is not reachable through the gateway; every line of every process's log file is one JSON
object with the required keys and no personal number; the files rotate at the configured size; the dashboards and
alert rules name only metrics the platform exports."""

import asyncio
import json
import os

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from services.kernel.logging import REQUIRED_KEYS
from services.kernel.settings import PORT_OFFSETS, SERVICES
from sifund.cli import app
from sifund.logfiles import read_lines
from tests.chaos.month import Ledger, Month, converged, run_the_month, signed_in
from tests.chaos.platform import RunningPlatform, free_port_base
from tests.operations.infra_files import metric_names_in_infra
from tests.support.log_scan import personal_numbers

pytestmark = pytest.mark.once  # the platform gets no SIFUND_* from the run: SQLite and the real clock


LOG_MAX_BYTES = 16384
COMPONENTS = ["gateway", *SERVICES]


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """The platform after its month, with every process's /metrics as scraped then (name → families)."""
    data_dir = tmp_path_factory.mktemp("operations") / "var"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SIFUND_")}
    environment.update(SIFUND_LOG_MAX_BYTES=str(LOG_MAX_BYTES), SIFUND_LOG_BACKUP_COUNT="100",
                       SIFUND_METRICS_DATABASE_REFRESH_SECONDS="0")
    platform = RunningPlatform(data_dir, environment, free_port_base()).start()
    try:
        asyncio.run(_run_month(platform))
        scrapes = {name: _scrape(platform, name) for name in COMPONENTS}
        yield platform, scrapes
    finally:
        platform.stop()


async def _run_month(platform: RunningPlatform) -> None:
    ledger = Ledger()
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30.0, trust_env=False) as client:
        parties = await signed_in(platform, client, ledger)
        month = Month(parties, ledger, 1, 15)
        await month.prepare()
        await converged(parties, month, await run_the_month(month))


def _url(platform: RunningPlatform, component: str) -> str:
    return f"http://127.0.0.1:{platform.port_base + PORT_OFFSETS[component]}"


def _scrape(platform: RunningPlatform, component: str) -> dict[str, list]:
    response = httpx.get(f"{_url(platform, component)}/metrics", timeout=30.0, trust_env=False)
    assert response.status_code == 200, (component, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def _total(families: dict[str, list], name: str, **labels: str) -> float:
    return sum(s.value for s in families.get(name, [])
               if s.name in (name, f"{name}_total") and all(s.labels.get(k) == v for k, v in labels.items()))


def test_every_process_exports_the_families_with_values(month):
    _, scrapes = month
    for component, families in scrapes.items():
        assert _total(families, "sifund_http_requests", component=component) > 0, component
        assert any(s.name == "sifund_http_request_duration_seconds_bucket" for s in
                   families["sifund_http_request_duration_seconds"]), component
        assert _total(families, "process_cpu_seconds") > 0 and _total(families, "process_resident_memory_bytes") > 0
    for service in SERVICES:
        families = scrapes[service]
        for name in ("sifund_outbox_backlog", "sifund_outbox_oldest_unpublished_age_seconds", "sifund_dead_letters",
                     "sifund_consumer_pending", "sifund_consumer_ack_pending", "sifund_consumer_redelivered",
                     "sifund_bus_connected"):
            assert name in families, (service, name)
        assert _total(families, "sifund_consumer_events_applied") > 0, service
        assert _total(families, "sifund_bus_connected") == 1, service
        consumers = {s.labels["consumer"] for s in families["sifund_consumer_pending"]}
        assert consumers and all(c.startswith(f"{service}-") for c in consumers), consumers
    for service in ("accounts", "collection", "benefits"):
        assert _total(scrapes[service], "sifund_outbox_published") > 0, service
    assert _total(scrapes["collection"], "sifund_tax_lines", outcome="accepted") > 0
    assert _total(scrapes["accounts"], "sifund_postings", outcome="posted") > 0
    assert _total(scrapes["benefits"], "sifund_payroll_lines", outcome="paid") == 1  # the allowance
    oversight = scrapes["oversight"]
    assert _total(oversight, "sifund_reconciliation_cells", status="matched") > 0
    for name in ("sifund_oversight_cases_opened", "sifund_oversight_overdue_cases", "sifund_audit_chain_broken",
                 "sifund_major_incidents_overdue", "sifund_reconciliation_unmatched_cells"):
        assert name in oversight, name


def test_metrics_are_not_reachable_through_the_gateway(month):
    platform, _ = month
    with httpx.Client(base_url=platform.gateway_url, timeout=10.0, trust_env=False) as gateway:
        for service in SERVICES:
            assert gateway.get(f"/api/{service}/metrics").status_code == 404, service
        # Through a reverse proxy in front of the gateway (it says so): refused like any public caller.
        assert gateway.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
        assert gateway.get("/metrics", headers={"Forwarded": "for=203.0.113.9"}).status_code == 404
        paths = gateway.get("/openapi.json").json()["paths"] if gateway.get("/openapi.json").status_code == 200 else {}
        assert "/metrics" not in paths


def test_every_log_line_is_json_with_the_required_keys_and_no_personal_number(month):
    platform, _ = month
    logs = sorted((platform.data_dir / "logs").iterdir())
    assert {f"{c}.log" for c in COMPONENTS} <= {p.name for p in logs}
    seen: dict[str, set] = {c: set() for c in [*COMPONENTS, "nats"]}
    for path in logs:
        for line in read_lines(path):
            assert set(REQUIRED_KEYS) <= line.keys(), (path, line)
            assert line["time"].endswith("Z") and line["time_cst"].endswith("+08:00"), line
            assert list(personal_numbers(json.dumps(line, ensure_ascii=False))) == [], (path, line)
            seen[path.name.split(".")[0].split("-")[0]].add(line.get("logger"))
    for component in COMPONENTS:  # uvicorn's access and error logs went through the same format
        assert {"uvicorn.access", "uvicorn.error"} <= seen[component], (component, seen[component])
    # nats-server's own lines too, with the server's level.
    assert "nats-server" in seen["nats"], seen["nats"]
    nats_lines = [line for path in (platform.data_dir / "logs").glob("nats*.log") for line in read_lines(path)]
    assert any(line["logger"] == "nats-server" and line["level"] == "info" and "Server is ready" in line["event"]
               for line in nats_lines)
    # A request traced end to end: the access line carries the request id and the actor of the request.
    gateway_lines = [json.loads(t) for t in (platform.data_dir / "logs" / "gateway.log").read_text().splitlines()]
    assert any(line.get("request_id") and line.get("method") and line.get("status") for line in gateway_lines)


def test_log_files_rotate_at_the_configured_size(month):
    platform, _ = month
    rotated = sorted((platform.data_dir / "logs").glob("gateway.log.*"))
    assert rotated, "the month wrote more than LOG_MAX_BYTES to the gateway's log"
    for path in rotated:
        longest = max(len(line) for line in path.read_bytes().splitlines())
        assert path.stat().st_size <= LOG_MAX_BYTES + longest + 1, (path, path.stat().st_size)
        list(read_lines(path))


def test_sifund_logs_prints_the_last_lines(month):
    platform, _ = month
    shown = CliRunner().invoke(app, ["logs", "accounts", "--lines", "3", "--data-dir", str(platform.data_dir)])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert len(lines) == 3 and all(json.loads(line)["service"] == "accounts" for line in lines)
    unknown = CliRunner().invoke(app, ["logs", "nobody", "--data-dir", str(platform.data_dir)])
    assert unknown.exit_code == 1 and "gateway" in unknown.output


def test_dashboards_and_alert_rules_name_only_exported_metrics(month):
    _, scrapes = month
    exported = set()
    for families in scrapes.values():
        for name, samples in families.items():
            exported.add(name)
            exported.update(s.name for s in samples)
    named = metric_names_in_infra()
    assert named, "no metric named in infra/prometheus and infra/grafana"
    assert named - exported == set(), f"named in infra but not exported: {sorted(named - exported)}"
