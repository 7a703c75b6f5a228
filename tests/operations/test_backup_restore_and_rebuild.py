"""Backup → wipe → restore → resume, and oversight's rebuild from the streams, on one real platform (``sifund up``
in a subprocess, driven through its gateway by tests/chaos/month.py): a small month of money in, then

1. ``sifund backup`` while the platform runs;
2. the platform stopped: ``sifund oversight rebuild`` on its data (mirror, ledger and the rules' facts emptied and
   replayed from the streams) gives the live tables back, table by table, and leaves the cases as they were;
3. the data wiped (directory, and the PostgreSQL databases' schemas on that backend), ``sifund restore`` into a fresh
   data directory, ``sifund up`` again: every audit chain verifies and its head is the manifest's, the month's
   reconciliation report is unchanged, every durable consumer resumed at or after its saved ack floor, a new event
   reaches oversight, and every probe path of the deployment files answers 200.

SQLite by default; on PostgreSQL under ``bash infra/postgres/run-tests.sh``."""

import asyncio
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import httpx
import nats
import pytest
from sqlalchemy import create_engine, inspect, text

from services.kernel.settings import SERVICES, Settings
from services.oversight.cases.models import Case, CaseHistory, CaseOccurrence
from services.oversight.rebuild import ALL_PARTS, part_tables
from tests.chaos.month import FUNDS, PERIOD, Ledger, Month, Party, fen, signed_in, uscc
from tests.chaos.platform import RunningPlatform, free_port_base
from tests.support.deployment_files import probe_paths
from tests.support.launcher import sifund_command

EMPLOYERS = 2
CONVERGENCE_SECONDS = 120.0
# Columns that say when this process applied an event, not what the event said: a replay sets them anew.
APPLIED_AT = {"received_at", "updated_at"}


def _mark(what: str, started: list[float]) -> None:
    now = time.monotonic()
    print(f"{what}: {now - started[-1]:.1f}s")
    started.append(now)


def _environment(database_urls: dict[str, str], postgres: bool) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SIFUND_")}
    if postgres:
        environment.update({f"SIFUND_{n.upper()}_DATABASE_URL": url for n, url in database_urls.items()})
    return environment


def _cli(environment: dict[str, str], data_dir: Path, port_base: int, *arguments: str) -> str:
    done = subprocess.run([*sifund_command(), *arguments], env={
        **environment, "SIFUND_DATA_DIR": str(data_dir), "SIFUND_PORT_BASE": str(port_base)},
        capture_output=True, text=True, timeout=300, cwd=data_dir.parent)
    assert done.returncode == 0, f"sifund {' '.join(arguments)}: {done.stdout}\n{done.stderr}"
    return done.stdout


async def _month(platform: RunningPlatform) -> tuple[dict, dict]:
    """Drive the month; wait until its three legs reconcile; return oversight's report and the parties."""
    ledger = Ledger()
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30.0, trust_env=False) as client:
        parties = await signed_in(platform, client, ledger)
        month = Month(parties, ledger, EMPLOYERS, seed=20261206)
        await month.prepare()
        await month.register()
        await month.declare()
        await month.pay()
        await month.remit_and_receive()
        report = await _reconciled(parties["officer"], parties["operator"], month.collected())
    return report, month.collected()


async def _reconciled(officer, operator, collected: dict[str, int]) -> dict:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + CONVERGENCE_SECONDS
    while True:
        backlog = {s: (await operator.call("GET", f"/{s}/admin/outbox")).json()["backlog"] for s in SERVICES}
        report = (await officer.call("GET", f"/oversight/reconciliation/months/{PERIOD}",
                                     params={"include_matched": True})).json()
        r1 = {c["fund"]: c for check in report["checks"] if check["check"] == "R1" for c in check["cells"]}
        if not any(backlog.values()) and set(r1) == set(FUNDS) and all(
                c["status"] == "matched" and fen(c["amounts"]["agency"]) == collected[f] for f, c in r1.items()):
            return report
        assert asyncio.get_running_loop().time() < deadline, f"the month did not reconcile: {backlog} {r1}"
        await asyncio.sleep(0.5)


def _derived_tables(url: str) -> dict[str, list[tuple]]:
    """Every table of oversight a rebuild empties and replays, rows sorted, without the columns a replay sets anew;
    and the case tables whole (a rebuild must not move them)."""
    replayed = part_tables(ALL_PARTS)
    engine = create_engine(url)
    try:
        tables = {}
        with engine.connect() as connection:
            for model in [*replayed, Case, CaseOccurrence, CaseHistory]:
                name = model.__tablename__
                columns = [c["name"] for c in inspect(connection).get_columns(name)
                           if not (model in replayed and c["name"] in APPLIED_AT)]
                rows = connection.execute(text(f"SELECT {', '.join(columns)} FROM {name}")).all()
                tables[name] = sorted((tuple(str(v) for v in row) for row in rows))
        return tables
    finally:
        engine.dispose()


def _wipe(data_dir: Path, database_urls: dict[str, str], postgres: bool) -> None:
    shutil.rmtree(data_dir)
    if postgres:
        for url in database_urls.values():
            engine = create_engine(url, isolation_level="AUTOCOMMIT")
            with engine.connect() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
            engine.dispose()


async def _consumer_floors(url: str, streams: Iterable[str]) -> dict[tuple[str, str], int]:
    """Each durable consumer's ack floor, on the streams the backup's manifest names."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        return {(s, info.name): info.ack_floor.stream_seq
                for s in streams for info in await js.consumers_info(s) if info.config.durable_name}
    finally:
        await nc.close()


@pytest.mark.skipif(not os.environ.get("SIFUND_CHAOS"),
                    reason="two platforms and a month: the long profile, run by make test-cluster (on PostgreSQL)")
async def test_backup_online_then_rebuild_then_wipe_restore_and_resume(tmp_path: Path,
                                                                       database_urls: dict[str, str]):
    started = [time.monotonic()]
    postgres = not database_urls["accounts"].startswith("sqlite")
    environment = _environment(database_urls, postgres)
    first = RunningPlatform(tmp_path / "first" / "var", environment, free_port_base())
    (tmp_path / "first").mkdir()
    first.start()
    _mark("first start", started)
    try:
        report, _collected = await _month(first)
        _mark("month", started)
        _cli(environment, first.data_dir, first.port_base, "backup", str(tmp_path / "backup"))  # online
        _mark("backup", started)
    finally:
        first.stop()
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    settings = Settings(data_dir=first.data_dir, **({f"{n}_database_url": u for n, u in database_urls.items()}
                                                    if postgres else {}))

    # 2. rebuild on the stopped platform equals what the live consumers built
    live = _derived_tables(settings.database_url("oversight"))
    assert sum(map(len, live.values())) > 0
    _cli(environment, first.data_dir, first.port_base, "oversight", "rebuild")
    _mark("rebuild", started)
    assert _derived_tables(settings.database_url("oversight")) == live

    # 3. wipe, restore into a fresh data directory, start again
    _wipe(first.data_dir, database_urls, postgres)
    (tmp_path / "second").mkdir()
    second_dir = tmp_path / "second" / "var"
    port_base = free_port_base()
    refused = subprocess.run([*sifund_command(), "restore", str(tmp_path / "backup"), "--data-dir",
                              str(tmp_path / "backup")], env=environment, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "not empty" in refused.stderr
    _cli(environment, second_dir, port_base, "restore", str(tmp_path / "backup"))
    _mark("restore", started)
    second = RunningPlatform(second_dir, environment, port_base)
    second.start()
    _mark("second start", started)
    try:
        floors = await _consumer_floors(f"nats://127.0.0.1:{port_base + 10}", manifest["streams"])
        for stream, saved in manifest["streams"].items():
            for consumer in saved["consumers"]:
                assert floors[(stream, consumer["name"])] >= consumer["ack_floor_stream_seq"], (stream, consumer)
        async with httpx.AsyncClient(base_url=second.gateway_url, timeout=30.0, trust_env=False) as client:
            secrets, ledger = second.credentials(), Ledger()
            parties = {name: await Party(client, ledger, f"demo_{role}", secrets[f"demo_{role}"]).sign_in()
                       for name, role in (("officer", "oversight_officer"), ("clerk", "agency_clerk"))}
            auditor = parties["officer"]
            for service in SERVICES:
                verified = (await auditor.call("GET", f"/{service}/audit/verify")).json()
                assert verified["ok"], (service, verified)
                head = manifest["databases"][service]["audit_head"]
                assert verified["length"] >= head["seq"]
                after = {"after_seq": head["seq"] - 1} if head["seq"] > 1 else {}
                entries = (await auditor.call("GET", f"/{service}/audit/entries",
                                              params={**after, "limit": 1})).json()
                assert entries[0]["seq"] == head["seq"] and entries[0]["hash"] == head["hash"], service
            again = (await auditor.call("GET", f"/oversight/reconciliation/months/{PERIOD}",
                                        params={"include_matched": True})).json()
            assert _checks(again) == _checks(report)
            await _new_event_reaches_oversight(parties)
            _mark("new event reached oversight", started)
            for component, path in sorted(probe_paths()):
                port = second.port_base + (0 if component == "gateway" else 1 + SERVICES.index(component))
                answer = await client.get(f"http://127.0.0.1:{port}{path}")
                assert answer.status_code == 200, (component, path, answer.text)
    finally:
        second.stop()


def _checks(report: dict) -> list:
    return [(check["check"], sorted(json.dumps(c, sort_keys=True) for c in check["cells"]))
            for check in report["checks"]]


async def _new_event_reaches_oversight(parties: dict) -> None:
    clerk, officer = parties["clerk"], parties["officer"]
    code = uscc(9001)
    created = (await clerk.call("POST", "/accounts/employers", json={
        "uscc": code, "name": "恢复后登记的单位", "region": "150102"})).json()
    deadline = asyncio.get_running_loop().time() + CONVERGENCE_SECONDS
    while [r["employer_id"] for r in (await officer.call("GET", "/oversight/mirror/employers",
                                                           params={"uscc": code})).json()] != [created["id"]]:
        assert asyncio.get_running_loop().time() < deadline, "the new employer did not reach oversight"
        await asyncio.sleep(0.3)
