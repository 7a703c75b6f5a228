"""What every producer and consumer pays per event for the envelope itself: ``python -m bench.event_envelopes
[--events N] [--rounds R] [--label before|after]``.

Two payloads a month carries: a tax batch's ``collection.payments.collected.v1`` of 1 000 lines (the bulk case) and
an ``accounts.enrolment.resumed.v1`` (a small event). For each, in-process (no NATS; a fresh, migrated SQLite file
with the kernel's settings for the outbox):

- **build**: ``events.build_envelope`` (serialise the payload, the strict producer check, the envelope);
- **record**: ``outbox.record_events`` of ``--events`` payloads in one ``unit_of_work`` (build, the outbox rows in
  one executemany, the commit), what a producer's transaction pays;
- **encode**: ``EventEnvelope.to_bytes`` (what a test or a republish pays; the relay sends the stored row as is);
- **decode**: ``EventEnvelope.from_bytes`` of the bytes the relay publishes (the outbox row);
- **payload**: ``EventEnvelope.payload()`` on a freshly decoded envelope (the consumer's typed, lenient parse).

Each step runs ``--rounds`` rounds of ``--events`` events; the figure is the median round's CPU (``process_time``)
per event and per line, so a loaded machine disturbs it less. The payloads are built before timing (the producer's
own work), and the objects alive then are frozen out of the collector's reach (``gc.freeze()``, as the services do
after start-up under ``sifund up``). Checks: the decoded payload equals the one built, the stored row decodes to the envelope built.

Results: ``bench/results/event_envelopes.json`` (one entry per ``--label``, so before and after sit side by side).
"""

import argparse
import gc
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import structlog
from sqlalchemy import select

from bench.money_in import TAX, citizen_id, fail
from services.collection import models as collection_models
from services.contracts import accounts as acc
from services.contracts.collection import PaymentsCollected
from services.kernel import context
from services.kernel.db import make_engine, unit_of_work
from services.kernel.events import EventActor, EventEnvelope, EventPayload, build_envelope
from services.kernel.migrations import upgrade_database
from services.kernel.models import OutboxMessage
from services.kernel.outbox import record_events

RESULTS = Path(__file__).parent / "results" / "event_envelopes.json"
LINES = 1000
ACTOR = EventActor(id="bench.tax_bureau", role="tax_system")


def tax_event(n: int) -> PaymentsCollected:
    return PaymentsCollected(batch_id=f"tb-{n:06d}", part=1, parts=1, lines=[
        {"payment_id": f"pay-{n:06d}-{i:04d}", "tax_line_id": f"tl-{n:06d}-{i:04d}", "payer_uscc": "91150100MA0N00001X",
         "employer_id": f"emp-{n:06d}", "person_id": f"per-{i:08d}", "citizen_id": citizen_id(i), "fund": "PEN_EMP",
         "period": 202609, "employer_fen": 128_000 + i, "individual_fen": 64_000 + i, "late_fee_fen": 0,
         "method": "银行代扣", "voucher_no": f"V{n:06d}{i:04d}", "paid_date": date(2026, 10, 12),
         "assessment_line_id": f"al-{n:06d}-{i:04d}", "match_status": "matched"} for i in range(LINES)])


def small_event(n: int) -> acc.EnrolmentResumed:
    return acc.EnrolmentResumed(enrolment_id=f"en-{n:08d}", person_id=f"per-{n:08d}", fund="PEN_EMP")


def median_cpu(rounds: int, step: Callable[[], object]) -> float:
    step()  # warm-up: caches, the first validator call
    cpu = []
    for _ in range(rounds):
        started = time.process_time()
        step()
        cpu.append(time.process_time() - started)
    return statistics.median(cpu)


def measure(engine, payloads: list[EventPayload], lines: int, rounds: int) -> dict:  # noqa: ANN001
    events = len(payloads)

    def build() -> list[EventEnvelope]:
        return [build_envelope(p, source="collection", subject="bench", actor=ACTOR, correlation_id="bench",
                               causation_id=None) for p in payloads]

    def record() -> None:
        with context.trace(actor=TAX), unit_of_work(engine) as session:
            record_events(session, [(p, "bench") for p in payloads], source="collection")

    envelopes = build()
    with context.trace(actor=TAX), unit_of_work(engine) as session:
        recorded = record_events(session, [(p, "bench") for p in payloads], source="collection")
    with unit_of_work(engine) as session:
        rows = dict(session.execute(select(OutboxMessage.event_id, OutboxMessage.envelope)
                                    .where(OutboxMessage.event_id.in_([e.id for e in recorded]))).all())
    published = [rows[e.id].encode() for e in recorded]  # what the relay sends
    for envelope, raw in zip(recorded, published, strict=True):
        if EventEnvelope.from_bytes(raw) != envelope:
            fail(f"the outbox row of {envelope.id} does not decode to the envelope built")

    def decode() -> list[EventEnvelope]:
        return [EventEnvelope.from_bytes(raw) for raw in published]

    def typed() -> None:
        for envelope in decode_once:
            envelope.forget_payload()
            envelope.payload()

    decode_once = decode()
    gc.collect()
    gc.freeze()  # the set-up's objects out of the collector's reach, as the services do after start-up
    for envelope, payload in zip(decode_once, payloads, strict=True):
        if envelope.payload() != payload:
            fail(f"{envelope.id}: the decoded payload differs from the one built")
    steps = {"build": median_cpu(rounds, build),
             "record": median_cpu(rounds, record),
             "encode": median_cpu(rounds, lambda: [e.to_bytes() for e in envelopes]),
             "decode": median_cpu(rounds, decode),
             "payload": median_cpu(rounds, typed)}
    figures = {name: {"cpu_us_per_event": round(cpu / events * 1e6, 1),
                      "cpu_us_per_line": round(cpu / (events * lines) * 1e6, 2)} for name, cpu in steps.items()}
    # What one event costs end to end: the producer's record (build included) and the consumer's decode + payload.
    total = steps["record"] + steps["decode"] + steps["payload"]
    figures["producer_and_consumer"] = {"cpu_us_per_event": round(total / events * 1e6, 1),
                                        "cpu_us_per_line": round(total / (events * lines) * 1e6, 2)}
    return {"events_per_round": events, "lines_per_event": lines, "bytes_per_event": len(published[0]),
            "steps": figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20, help="1 000-line events per round (small: ×50)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--label", default="after", help="the entry of the results file to write")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sifund-envelope-bench-") as tmp:
        engine = make_engine(f"sqlite:///{tmp}/collection.db")
        upgrade_database(engine, "collection", collection_models.metadata)
        kinds = {
            "collection.payments.collected.v1 (1 000 lines)":
                measure(engine, [tax_event(n) for n in range(args.events)], LINES, args.rounds),
            "accounts.enrolment.resumed.v1 (small)":
                measure(engine, [small_event(n) for n in range(args.events * 50)], 1, args.rounds),
        }
        engine.dispose()
    run = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "load": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
        "database": "SQLite, WAL, synchronous=FULL, BEGIN IMMEDIATE; fresh, migrated",
        "rounds": args.rounds,
        "events": kinds,
    }
    print(json.dumps(run, ensure_ascii=False, indent=2))
    if not args.no_write:
        results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"name": "event_envelopes", "runs": {}}
        results["runs"][args.label] = run
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
