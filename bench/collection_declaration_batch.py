"""Collection's registry, assessment and plan-read work, in-process: ``python -m bench.collection_declaration_batch
[--lines N] [--months M] [--output FILE] [--profile]``.

What collection's process does per line on the real path's registry and assessment stages, without HTTP and NATS,
on a fresh migrated SQLite file (the seed is ``bench.money_in``'s employers, each person enrolled in PEN_EMP, UNEMP
and INJURY):

- **registry**: the persons and enrolments arrive as ``PersonsImported`` / ``EnrolmentsImported`` of 1 000 items (the
  envelopes as the bus delivers them, ``data`` parsed on first read) and collection's registry handlers apply them,
  one transaction per event;
- **declare**: the month's declarations as ``POST /declarations/batches`` bodies of at most 10 000 persons (written by
  the client, not timed), handed to the endpoint function as the request's bytes (which it decodes,
  ``kernel.json_body``, and validates) in one transaction (checks, lines, audit, ``AssessmentIssued``, archive items), the answer serialised;
- **read**: the month's lines read back through ``GET /assessments/lines`` (the endpoint function, pages of 5 000),
  as the tax bureau's client reads its collection plan.

``--months`` declares and reads that many months (the last ``--months`` periods up to ``money_in.PERIOD``) in one
process, so that a loaded machine's noise is seen: each figure is given as the min and the median over the months.
Figures: CPU µs per line (process time; SQLite runs in the process). Checks: every line read back, no refusal.
"""

import argparse
import gc
import json
import os
import random
import statistics
import tempfile
from datetime import UTC, date, datetime

import structlog
from sqlalchemy import func, select

from bench.collection_tax_batch import Stage
from bench.money_in import CITY, CLERK, FUNDS, PERIOD, plan, seed_collection
from services.collection import models as collection_models
from services.collection.assessments import endpoints
from services.collection.assessments.schemas import MAX_BATCH_LINES
from services.collection.models import RegistryEnrolment, RegistryPerson
from services.collection.registry import handlers
from services.contracts.accounts import EnrolmentsImported, PersonsImported
from services.kernel import context
from services.kernel.db import make_engine, unit_of_work
from services.kernel.json_body import RawBody
from services.kernel.events import EventActor, EventEnvelope, build_encoded_envelope, new_event_id
from services.kernel.migrations import upgrade_database

ITEMS = 1000  # per imported event, as accounts publishes them


def delivered(payload) -> EventEnvelope:  # noqa: ANN001
    """The envelope as a consumer gets it from the bus."""
    _, text = build_encoded_envelope(payload, source="accounts", subject=payload.event_type,
                                     actor=EventActor(id="bench"), correlation_id=None, causation_id=None)
    return EventEnvelope.from_bytes(text.encode())


def registry_events(employers: list[dict], cids: dict[str, str]) -> list[EventEnvelope]:
    persons = [{"person_id": p, "citizen_id": cids[p], "name": f"职工{s}", "sex": "M", "birth_date": date(1990, 1, 1),
                "region": CITY, "household_type": "urban"} for e in employers for p, s, _ in e["staff"]]
    enrolments = [{"enrolment_id": new_event_id(), "person_id": p, "fund": fund, "employer_id": e["id"],
                   "start_period": 202001, "end_period": None, "status": "active"}
                  for e in employers for p, _, _ in e["staff"] for fund in FUNDS]
    return ([delivered(PersonsImported(import_job_id="bench", persons=persons[i:i + ITEMS]))
             for i in range(0, len(persons), ITEMS)]
            + [delivered(EnrolmentsImported(import_job_id="bench", enrolments=enrolments[i:i + ITEMS]))
               for i in range(0, len(enrolments), ITEMS)])


def batch_bodies(employers: list[dict], cids: dict[str, str], period: int) -> list[str]:
    """The month's declarations, as many employers a request as fit in ``MAX_BATCH_LINES`` persons."""
    batches: list[list[dict]] = [[]]
    for employer in employers:
        if batches[-1] and sum(len(e["staff"]) for e in batches[-1]) + len(employer["staff"]) > MAX_BATCH_LINES:
            batches.append([])
        batches[-1].append(employer)
    return [json.dumps({"period": period, "declarations": [
        {"employer_id": e["id"], "lines": [{"citizen_id": cids[p], "base": f"{b // 100}.{b % 100:02d}"}
                                           for p, _, b in e["staff"]]} for e in batch]}) for batch in batches]


class Meter:
    """The CPU seconds of each piece of timed work (``collection_tax_batch.Stage``'s figures, one piece at a time)."""

    def __init__(self, profile: bool):
        self.stage = Stage(profile)

    def run(self, work):  # noqa: ANN001, ANN201
        before = self.stage.cpu_seconds
        try:
            return self.stage.run(0, work)
        finally:
            self.cpu_seconds = self.stage.cpu_seconds - before

    def top(self) -> list[str] | None:
        return self.stage.top()


def declare(engine, body: str) -> None:  # noqa: ANN001
    with unit_of_work(engine) as session:
        result = endpoints.declare_batch(RawBody(body.encode(), "application/json"), session)  # as the request carries it
        result.model_dump_json()
    if result.refused:
        raise SystemExit(f"refused: {[i.refusal for i in result.items if i.refusal][:1]}")


def read_month(engine, period: int) -> int:  # noqa: ANN001
    read, after = 0, None
    while True:
        with unit_of_work(engine) as session:
            body = endpoints.list_period_lines(session, period, None, after, 5000).body
        page = json.loads(body)  # the client's parsing: counted, a small part
        read, after = read + len(page["items"]), page["next_cursor"]
        if after is None:
            return read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=30_000, help="person × fund lines a month (default 30 000)")
    parser.add_argument("--months", type=int, default=3, help="months declared and read in one process (default 3)")
    parser.add_argument("--profile", action="store_true", help="cProfile the work (inflates the figures)")
    parser.add_argument("--output", help="write the run's JSON there")
    parser.add_argument("--seed", type=int, default=202609)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    load_before = os.getloadavg()
    meter = Meter(args.profile)
    figures: dict[str, list[float]] = {"registry": [], "declare": [], "read": []}
    with tempfile.TemporaryDirectory(prefix="sifund-declaration-bench-") as tmp:
        engine = make_engine(f"sqlite:///{tmp}/collection.db")
        upgrade_database(engine, "collection", collection_models.metadata)
        employers = plan(args.lines, random.Random(args.seed))
        lines = sum(len(e["staff"]) for e in employers) * len(FUNDS)
        cids = seed_collection(engine, employers)  # the registry mirror, then emptied for the registry stage
        with unit_of_work(engine) as session:
            session.execute(RegistryEnrolment.__table__.delete())
            session.execute(RegistryPerson.__table__.delete())
        events = registry_events(employers, cids)
        gc.collect()
        gc.freeze()  # as the services do after start-up

        def apply() -> None:
            for envelope in events:
                with unit_of_work(engine) as session:
                    handlers.HANDLERS[envelope.type](session, envelope)

        meter.run(apply)
        figures["registry"].append(meter.cpu_seconds)
        with unit_of_work(engine) as session:
            if session.execute(select(func.count()).select_from(RegistryEnrolment)).scalar_one() != lines:
                raise SystemExit("the registry mirror misses enrolments")
        with context.trace(actor=CLERK):
            for period in range(PERIOD - args.months + 1, PERIOD + 1):
                bodies = batch_bodies(employers, cids, period)  # the client's work, not timed
                meter.run(lambda b=bodies: [declare(engine, body) for body in b])
                figures["declare"].append(meter.cpu_seconds)
                read = meter.run(lambda p=period: read_month(engine, p))
                figures["read"].append(meter.cpu_seconds)
                if read != lines:
                    raise SystemExit(f"{read} lines read back, {lines} assessed")
        engine.dispose()

    def per_line(seconds: list[float]) -> dict[str, float]:
        return {"min": round(min(seconds) / lines * 1e6, 1), "median": round(statistics.median(seconds) / lines * 1e6, 1)}

    run = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
        "lines": lines, "employers": len(employers), "months": args.months, "profiled": args.profile,
        "cpu_us_per_line": {stage: per_line(seconds) for stage, seconds in figures.items()},
        "profile": meter.top(),
    }
    print(json.dumps(run, ensure_ascii=False, indent=2))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            json.dump(run, out, ensure_ascii=False, indent=2)


if __name__ == "__main__":
    main()
