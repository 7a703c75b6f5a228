"""The archive backfill (补录归档) over a registry the archive never saw: ``python -m bench.archive_backfill
[--persons N] [--no-write]``.

A fresh, migrated accounts SQLite file holds ``--persons`` persons (default 20 000), one employer per 100 persons and
one enrolment per person through its employer, and no dossier: as a database from before the archive migration.
Half of the persons and their enrolments were registered through the API (a ``person.register`` and an
``enrolment.open`` entry in the audit chain, written with ``append_audit_many``); the other half were imported (no
entry of their own). Measured: the backfill job's chunks run as the job runner runs them (``jobs.run_chunk``: the
chunk and the job's progress in one transaction, 1 000 records a chunk), CPU µs per record examined and wall
seconds; then a second run over the same database, which must file nothing.

Checks (any failure exits with status 1 and writes no results): the first run files exactly one registration per
person and employer and one enrolment item per person and per employer dossier; half the person registrations with
their audit position, half "unknown"; the second run files nothing.

Results: ``bench/results/archive_backfill.json``.
"""

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select
from sqlmodel import Session

from bench.money_in import citizen_id, fail, make_uscc
from bench.report import measured, publish
from services.accounts import app as accounts_app
from services.accounts.archives import backfill
from services.accounts.archives.models import Dossier, DossierItem
from services.accounts.models import Employer, Enrolment, Person
from services.kernel import context, jobs
from services.kernel.audit import append_audit_many
from services.kernel.context import Actor
from services.kernel.db import make_engine, unit_of_work
from services.kernel.migrations import upgrade_database

RESULTS = Path(__file__).with_name("results") / "archive_backfill.json"
REGION = "150102"
AT = datetime(2019, 5, 6, 2, tzinfo=UTC)
CLERK = Actor(id="clerk.old", role="agency_clerk", roles=("agency_clerk",), region=REGION)
APPROVER = Actor(id="approver.wang", role="agency_approver", roles=("agency_approver",), region=REGION)


def build(path: Path, persons: int):  # noqa: ANN201 - an Engine
    engine = make_engine(f"sqlite:///{path}")
    upgrade_database(engine, "accounts", accounts_app.SPEC.metadata)
    employers = max(1, persons // 100)
    people = [{"id": f"p{n:08d}", "citizen_id": citizen_id(n), "name": f"人员{n}", "region": REGION, "sex": "M",
               "birth_date": date(1980, 1, 1) + timedelta(days=n % 9000), "life_status": "alive",
               "household_type": "urban", "registered_at": AT, "registered_by": CLERK.id, "version": 1}
              for n in range(persons)]
    with context.trace(actor=CLERK), unit_of_work(engine) as session:
        session.execute(insert(Employer.__table__), [
            {"id": f"e{n:06d}", "uscc": make_uscc(n), "name": f"单位{n}", "region": REGION, "unit_type": "enterprise",
             "industry_risk_class": 1, "status": "active", "registered_at": AT, "registered_by": CLERK.id,
             "version": 1} for n in range(employers)])
        for start in range(0, persons, 10_000):
            chunk = people[start:start + 10_000]
            session.execute(insert(Person.__table__), chunk)
            session.execute(insert(Enrolment.__table__), [
                {"id": f"n{p['id'][1:]}", "person_id": p["id"], "fund": "PEN_EMP", "fund_group": "PEN",
                 "employer_id": f"e{int(p['id'][1:]) % employers:06d}", "start_period": 201905, "status": "active",
                 "created_at": AT, "created_by": CLERK.id, "version": 1} for p in chunk])
        # The first half registered through the API: their entries in the chain.
        append_audit_many(session, [entry for p in people[:persons // 2] for entry in (
            {"action": "person.register", "entity_type": "person", "entity_id": p["id"]},
            {"action": "enrolment.open", "entity_type": "enrolment", "entity_id": f"n{p['id'][1:]}"})])
    return engine, employers


def run_job(engine: Any) -> tuple[float, float, dict[str, Any]]:
    """One backfill job, chunk by chunk as the runner runs them; (CPU s, wall s, result)."""
    with context.trace(actor=APPROVER):
        job, _ = jobs.submit_job(engine, backfill.BACKFILL)
        owner, lease = jobs.lease_owner_name(), timedelta(minutes=5)
        cpu, wall = time.process_time(), time.perf_counter()
        claimed = jobs.claim_next(engine, [backfill.BACKFILL.name], owner, lease)
        ctx = jobs.JobContext(job=claimed, input=None, params={}, engine=engine, state=None)
        work = backfill.BackfillWork(ctx)
        jobs.begin_chunks(engine, job.id, owner, work.total, lease)
        offset = 0
        while not (step := jobs.run_chunk(engine, work, job.id, owner, lease, offset)).finished:
            offset = step.next_offset
        jobs.finish(engine, job.id, owner, work=work)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    with Session(engine) as session:
        return cpu, wall, json.loads(session.get(jobs.Job, job.id).result)


def count(engine: Any, *where: Any) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(DossierItem).where(*where)).scalar_one()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--persons", type=int, default=20_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine, employers = build(Path(tmp) / "accounts.db", args.persons)
        load_before = os.getloadavg()[0]
        first = run_job(engine)
        second = run_job(engine)
        registrations = count(engine, DossierItem.item_type == "person_registration")
        with_position = count(engine, DossierItem.item_type == "person_registration", DossierItem.audit_seq.is_not(None))
        with Session(engine) as session:
            dossiers = session.execute(select(func.count()).select_from(Dossier)).scalar_one()
        engine.dispose()
    expected = args.persons + employers + 2 * args.persons  # registrations; each enrolment into two dossiers
    if first[2]["items_filed"] != expected or second[2]["items_filed"] != 0:
        fail(f"filed {first[2]['items_filed']} then {second[2]['items_filed']}, expected {expected} then 0")
    if registrations != args.persons or with_position != args.persons // 2 or dossiers != args.persons + employers:
        fail(f"{registrations} registrations, {with_position} with position, {dossiers} dossiers")
    examined = sum(first[2]["examined"].values())
    result = measured({
        "benchmark": "archive_backfill", "persons": args.persons, "employers": employers,
        "records_examined": examined, "items_filed": first[2]["items_filed"],
        "with_audit_position": first[2]["with_audit_position"],
        "audit_position_unknown": first[2]["audit_position_unknown"],
        "first_run": {"cpu_seconds": round(first[0], 2), "wall_seconds": round(first[1], 2),
                      "cpu_us_per_record": round(first[0] / examined * 1e6, 1),
                      "items_per_second": round(first[2]["items_filed"] / first[1])},
        "second_run": {"cpu_seconds": round(second[0], 2), "wall_seconds": round(second[1], 2), "items_filed": 0},
    }, load_before)
    publish(result, RESULTS, write=not args.no_write)


if __name__ == "__main__":
    main()
