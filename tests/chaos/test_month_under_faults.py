"""The fault suite (``make test-cluster``, ``make chaos ROUNDS=20``): a month driven through the
gateway of a real ``sifund up --replicas 2 --nats-cluster 3`` — money in, and an injury allowance paid by a payroll —
while a seeded schedule SIGKILLs its children (a service replica, the gateway, a NATS node, often a stream leader)
and the supervisor brings them back. The parties ask again with the same keys, as a real tax bureau would.

At the end, with the faults stopped: every write acknowledged with 2xx is in its owner's database exactly once; the
three legs of every fund reconcile exactly in oversight's report (TAX = FINANCE = AGENCY = what was collected) and
the payroll's month shows approved = allocated = paid (R5); no service has a dead letter or an unpublished outbox
row. The seed is printed; ``CHAOS_SEED=<seed>`` replays a round's
schedule and plan.

CHAOS_ROUNDS (default 1), CHAOS_EMPLOYERS (default 40), CHAOS_REPLICAS (processes per service, default 2),
CHAOS_NATS_NODES (default 3: a JetStream cluster with R3 streams; a quarter of the kills go to the ACCOUNTS or
COLLECTION stream leader) and CHAOS_SEED size a run."""

import asyncio
import json
import os
import random
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from services.kernel.settings import Settings
from tests.chaos.month import (CONVERGENCE_SECONDS, FUNDS, InjuryAllowance, Ledger, Month, Unexpected, converged, fen,
                               run_the_month, signed_in)
from tests.chaos.platform import FaultSchedule, RunningPlatform, free_port_base

ROUNDS = int(os.environ.get("CHAOS_ROUNDS", "1"))
EMPLOYERS = int(os.environ.get("CHAOS_EMPLOYERS", "40"))
SEED = os.environ.get("CHAOS_SEED")
REPLICAS = int(os.environ.get("CHAOS_REPLICAS", "2"))
NATS_NODES = int(os.environ.get("CHAOS_NATS_NODES", "3"))
# One JSON line per round passed (the figures a note quotes), under the repository's var/.
RESULTS = Path(__file__).resolve().parents[2] / "var" / "chaos" / "rounds.jsonl"


def round_seed(round_no: int) -> int:
    return int(SEED) + round_no if SEED else random.SystemRandom().randrange(1, 2**31)


@pytest.fixture
def platform(tmp_path: Path, database_urls: dict[str, str]):
    environment = dict(os.environ)
    environment.update({f"SIFUND_{name.upper()}_DATABASE_URL": url for name, url in database_urls.items()})
    environment.update(SIFUND_SUPERVISOR_BACKOFF_INITIAL_SECONDS="0.2", SIFUND_SUPERVISOR_BACKOFF_MAX_SECONDS="2",
                       SIFUND_SUPERVISOR_MAX_RESTARTS="1000", SIFUND_SUPERVISOR_WINDOW_SECONDS="60")
    running = RunningPlatform(tmp_path / "var", environment, free_port_base(REPLICAS),
                              REPLICAS, NATS_NODES).start()
    yield running
    running.stop()


@pytest.mark.parametrize("round_no", range(ROUNDS))
async def test_a_month_under_faults_loses_nothing_and_doubles_nothing(round_no: int, platform: RunningPlatform,
                                                                      database_urls: dict[str, str]):
    seed = round_seed(round_no)
    print(f"\nchaos round {round_no}: seed {seed} (replay with CHAOS_SEED={seed - round_no})")
    ledger = Ledger()
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=30.0, trust_env=False) as client:
        parties = await signed_in(platform, client, ledger)
        month = Month(parties, ledger, EMPLOYERS, seed)
        await month.prepare()

        faults = FaultSchedule(platform, seed)
        schedule = asyncio.create_task(faults.run())
        try:
            allowance = await run_the_month(month)
        except Unexpected as exc:
            raise AssertionError(f"seed {seed}: {exc}\nfaults: {faults.summary()}\n{platform.output}") from exc
        finally:
            faults.stop()
            await schedule

        await every_child_running(platform)
        report = await converged(parties, month, allowance)
    in_owner_databases_once(database_urls, platform.data_dir, ledger, allowance)
    for fund in FUNDS:
        amounts = report[fund]["amounts"]
        assert fen(amounts["tax"]) == fen(amounts["finance"]) == fen(amounts["agency"]) == month.collected()[fund], (
            fund, amounts)
    summary = faults.summary()
    assert summary["not_recovered"] == [], summary
    figures = {**summary, "round": round_no, "employers": EMPLOYERS, "replicas": REPLICAS, "nats_nodes": NATS_NODES,
               "writes_acknowledged": ledger.writes, "lost": 0, "applied_twice": 0, "requests": ledger.attempts,
               "asked_again": ledger.repeated, "answers": {str(k): v for k, v in ledger.statuses.items()},
               "backend": database_urls["accounts"].split(":")[0]}
    print(f"chaos round {round_no}: {json.dumps(figures)}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as results:
        results.write(json.dumps(figures) + "\n")


async def every_child_running(platform: RunningPlatform) -> None:
    for _ in range(int(CONVERGENCE_SECONDS / 0.25)):
        children = platform.children()
        if children and all(c["status"] == "running" for c in children.values()):
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"not every child running: {platform.children()}\n{platform.output}")


def in_owner_databases_once(database_urls: dict[str, str], data_dir: Path, ledger: Ledger,
                            allowance: InjuryAllowance) -> None:
    settings = Settings(data_dir=data_dir, **{f"{name}_database_url": url for name, url in database_urls.items()})
    checks = {
        "accounts": [("employer", "uscc", set(ledger.employers)), ("person", "citizen_id", set(ledger.persons))],
        "collection": [("tax_payment", "tax_line_id", set(ledger.tax_lines)),
                       ("treasury_remittance", "voucher_no", set(ledger.remittances)),
                       ("bank_transaction", "idempotency_key", set(ledger.receipts))],
        "benefits": [("claim", "person_id", {allowance.person_id}), ("payroll_run", "id", set(ledger.payroll_runs)),
                     ("payroll_line", "id", set(ledger.paid_lines))],
    }
    for service, tables in checks.items():
        engine = create_engine(settings.database_url(service))
        try:
            with engine.connect() as connection:
                for table, column, acknowledged in tables:
                    rows = connection.execute(text(f"SELECT {column}, count(*) FROM {table} GROUP BY {column}")).all()
                    stored = {key: count for key, count in rows if key in acknowledged}
                    missing, doubled = acknowledged - set(stored), [k for k, c in stored.items() if c > 1]
                    assert not missing, f"{table}: {len(missing)} acknowledged, not stored"
                    assert not doubled, f"{table}: stored twice: {doubled}"
                if service == "accounts":
                    enrolments = connection.execute(text(
                        "SELECT person_id, fund, count(*) FROM enrolment GROUP BY person_id, fund")).all()
                    stored = {(p, f): c for p, f, c in enrolments if (p, f) in ledger.enrolments}
                    assert set(stored) == ledger.enrolments and set(stored.values()) == {1}
        finally:
            engine.dispose()
