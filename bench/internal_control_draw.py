"""The internal control's draw over a month of archived acts: ``python -m bench.internal_control_draw [--acts N]
[--no-write]``.

A fresh, migrated accounts SQLite file (the kernel's settings) holds ``--acts`` archive items (default 100 000) of
one month in 1 000 person dossiers of one district: 6 acts in 50 of a high-risk category (a payroll line of 50 000
yuan or more, an injury claim, an early retirement, a transfer, two corrections), the rest ordinary. Measured: the draw of a 5 %
sample (``sampling.draw``: both passes over the population, the risk of each act read from its references), CPU µs
per act and wall seconds, the smaller of two runs, with the machine's load before and after.

Checks (any failure exits with status 1 and writes no results): the two runs draw the same acts in the same order
with the same population hash; the sample's size is 5 % of the acts rounded up; the high-risk share of the sample
is above the population's.

Results: ``bench/results/internal_control_draw.json``.
"""

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert
from sqlmodel import Session

from bench.money_in import fail
from services.accounts import app as accounts_app
from services.accounts.archives.models import Dossier, DossierItem
from services.accounts.internal_control import risk, sampling
from services.kernel.db import make_engine
from services.kernel.migrations import upgrade_database

RESULTS = Path(__file__).with_name("results") / "internal_control_draw.json"
REGION = "150102"
MONTH = "2025-11"
AT = datetime(2025, 11, 10, 2, tzinfo=UTC)


def item(n: int) -> dict:
    kind = n % 50
    if kind < 40:
        item_type, act, refs = "payroll_line", f"pl-{n}", {"amount_fen": "6000000" if kind == 0 else "300000"}
    elif kind < 45:
        item_type, act, refs = "claim_decision", f"claim-{n}/approval", {
            "claim_kind": "injury" if kind == 40 else "basic_pension",
            "early_retirement": "true" if kind == 41 else "false"}
    elif kind < 48:
        item_type, act, refs = "enrolment", f"e-{n}/{'transfer_out' if kind == 45 else 'open'}", {}
    else:
        item_type, act, refs = "correction", f"c-{n}", {}
    return {"id": f"i{n:09d}", "dossier_id": f"d{n % 1000:04d}", "serial": n, "year": 2025, "source": "benefits",
            "item_type": item_type, "act_id": act, "title": item_type, "decision": "同意", "decided_by": "reviewer.wu",
            "references": json.dumps(refs), "retention_class": "long", "occurred_at": AT, "filed_at": AT}


def build(path: Path, acts: int):  # noqa: ANN201 - an Engine
    engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine, "accounts", accounts_app.SPEC.metadata)
    with Session(engine) as session:
        session.execute(insert(Dossier.__table__), [
            {"id": f"d{d:04d}", "subject_type": "person", "subject_id": f"p{d}", "region": REGION, "opened_at": AT,
             "item_count": 0} for d in range(1000)])
        for start in range(0, acts, 10_000):
            session.execute(insert(DossierItem.__table__), [item(n) for n in range(start, min(acts, start + 10_000))])
        session.commit()
    return engine


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--acts", type=int, default=100_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = build(Path(tmp) / "accounts.db", args.acts)
        period = sampling.period_of(sampling.MONTHLY, MONTH)
        load_before = os.getloadavg()[0]
        runs = []
        for _ in range(2):
            with Session(engine) as session:
                cpu, wall = time.process_time(), time.perf_counter()
                draw = sampling.draw(session, period, REGION, seed=20251201, rate_percent=5,
                                     weights=risk.current_weights())
                runs.append((time.process_time() - cpu, time.perf_counter() - wall, draw))
        load_after = os.getloadavg()[0]
        engine.dispose()
    (_, _, first), (_, _, second) = runs
    if [u.item_id for u, _ in first.drawn] != [u.item_id for u, _ in second.drawn] \
            or first.population_sha256 != second.population_sha256:
        fail("the same seed drew different acts")
    if first.population != args.acts or len(first.drawn) != sampling.sample_size(args.acts, 5):
        fail(f"population {first.population}, sample {len(first.drawn)}")
    risky = sum(1 for u, _ in first.drawn if u.risk != risk.ORDINARY) / len(first.drawn)
    if risky <= 0.12:  # 6 of every 50 acts are of a high-risk category
        fail(f"high-risk share of the sample {risky:.2f} not above the population's 0.12")
    cpu, wall = min(r[0] for r in runs), min(r[1] for r in runs)
    result = {"benchmark": "internal_control_draw", "acts": args.acts, "sample": len(first.drawn),
              "high_risk_share_of_sample": round(risky, 3), "cpu_seconds": round(cpu, 2),
              "cpu_us_per_act": round(cpu / args.acts * 1e6, 1), "wall_seconds": round(wall, 2),
              "load_before": round(load_before, 2), "load_after": round(load_after, 2),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    print(json.dumps(result, ensure_ascii=False, indent=1))
    if not args.no_write:
        RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
