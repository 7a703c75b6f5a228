"""What oversight pays per line to apply the bulk events of a month: ``python -m bench.oversight_apply
[--events N] [--label before|after] [--postgres URL]``.

Each bulk event type a city's month produces, ``--events`` events (default 20) of 1 000 lines each, applied the way
the live service applies them: oversight's merged consumer handlers (mirror, ledger, rules — ``SPEC.consumers``
through ``merge_consumer_specs``) run by ``kernel.inbox.EventConsumer`` (parse the envelope, every handler of the
type, the inbox row; one transaction per fetched batch, here 10 events) into a fresh, migrated SQLite database with
the kernel's settings (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``). NATS is left out (``bench.backbone``
measures it); building the envelopes is not timed.

The events, in the order a month brings them (so that later ones meet rows the earlier ones left):

- ``accounts.employers.imported`` / ``persons.imported`` / ``enrolments.imported``: new rows;
- ``collection.assessment.issued`` (one employer per event, pension lines with their bases, a few clamped) and
  ``collection.payments.collected`` (the tax bureau's batch);
- ``accounts.contributions.held`` (10 % of the lines, PERSON_NOT_FOUND) and then ``accounts.contributions.posted``
  for every line (so the held ones are rows that exist: a posting supersedes a hold);
- ``accounts.account.credited.v2``: 1 000 entries per event, one person × year cell each; the second half of the
  events credit the same persons again (cells that exist, totals and the latest balance moved).

Reported per type: CPU µs per line (``time.process_time`` of the process: Python and SQLite together) and wall
µs per line. The target is ≤ 100 µs CPU per line for oversight. Results (one entry per ``--label``, so
a before and an after sit side by side): ``bench/results/oversight_apply.json``.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import structlog
from sqlalchemy import func, select
from sqlmodel import Session

from services.kernel.db import make_engine
from services.kernel.events import new_event_id
from services.kernel.inbox import EventConsumer, _Delivery
from services.kernel.migrations import upgrade_database
from services.kernel.service_app import merge_consumer_specs
from services.oversight import models
from services.oversight.app import SPEC
from services.oversight.models import MirroredAccountYear, MirroredAgencyLine, MirroredPerson

RESULTS = Path(__file__).parent / "results" / "oversight_apply.json"
LINES = 1000
EVENTS_PER_TRANSACTION = 10
PERIOD = 202503
YEAR = 2025
SOURCE = {"collection": "collection", "accounts": "accounts"}


def envelope(event_type: str, data: dict) -> bytes:
    return json.dumps({
        "id": new_event_id(), "type": event_type, "source": SOURCE[event_type.split(".")[0]], "subject": "bench",
        "time": datetime.now(UTC).isoformat(), "actor": {"id": "bench", "role": "system"},
        "correlation_id": None, "causation_id": None, "data": data,
    }, ensure_ascii=False, default=str).encode()


def citizen(n: int) -> str:
    body = f"150102{1960 + n % 40:04d}0101{n % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


def person(n: int) -> str:
    return f"per-{n:07d}"


class Month:
    """``events`` × 1 000 lines of every kind; line ``i`` is person ``i``'s PEN_EMP contribution."""

    def __init__(self, events: int):
        self.events = events

    def _ranges(self) -> Iterator[range]:
        for e in range(self.events):
            yield range(e * LINES, (e + 1) * LINES)

    def employers_imported(self) -> Iterator[bytes]:
        for e, lines in enumerate(self._ranges()):
            yield envelope("accounts.employers.imported.v1", {"import_job_id": f"job-e-{e}", "employers": [
                {"employer_id": f"emp-{i:07d}", "uscc": f"91150102{i:09d}X", "name": f"单位{i}", "region": "150102",
                 "unit_type": "enterprise", "industry_risk_class": 1 + i % 8} for i in lines]})

    def persons_imported(self) -> Iterator[bytes]:
        for e, lines in enumerate(self._ranges()):
            yield envelope("accounts.persons.imported.v1", {"import_job_id": f"job-p-{e}", "persons": [
                {"person_id": person(i), "citizen_id": citizen(i), "name": f"人{i}", "sex": "MF"[i % 2],
                 "birth_date": date(1960 + i % 40, 1, 1), "region": "150102", "household_type": "urban"}
                for i in lines]})

    def enrolments_imported(self) -> Iterator[bytes]:
        for e, lines in enumerate(self._ranges()):
            yield envelope("accounts.enrolments.imported.v1", {"import_job_id": f"job-n-{e}", "enrolments": [
                {"enrolment_id": f"enr-{i:07d}", "person_id": person(i), "fund": ("PEN_EMP", "UNEMP")[i % 2],
                 "employer_id": f"emp-{i // 33:07d}", "start_period": 201501, "end_period": None,
                 "status": "active"} for i in lines]})

    def assessments(self) -> Iterator[bytes]:
        for e, lines in enumerate(self._ranges()):
            yield envelope("collection.assessment.issued.v1", {
                "assessment_id": f"as-{e:06d}", "employer_id": f"emp-{e:07d}", "period": PERIOD,
                "due_date": date(2025, 4, 15), "supersedes_id": None, "part": 1, "parts": 1,
                "employer_total_fen": 64_000 * LINES, "individual_total_fen": 32_000 * LINES,
                "lines": [{"line_id": f"al-{i}", "person_id": person(i), "fund": "PEN_EMP",
                           "declared_base_fen": 300_000 if i % 50 == 0 else 400_000, "base_fen": 400_000,
                           "clamp": "floor" if i % 50 == 0 else None, "employer_fen": 64_000,
                           "individual_fen": 32_000} for i in lines]})

    def collected(self) -> Iterator[bytes]:
        for e, lines in enumerate(self._ranges()):
            yield envelope("collection.payments.collected.v1", {"batch_id": f"tb-{e:05d}", "part": 1, "parts": 1,
                                                                  "lines": [{
                "payment_id": f"pay-{i}", "tax_line_id": f"t-{i}", "payer_uscc": None,
                "employer_id": f"emp-{e:07d}", "person_id": person(i), "citizen_id": None, "fund": "PEN_EMP",
                "period": PERIOD, "employer_fen": 64_000, "individual_fen": 32_000, "late_fee_fen": 0,
                "method": "bank_transfer", "voucher_no": f"V{i}", "paid_date": date(2025, 4, 10),
                "assessment_line_id": f"al-{i}", "match_status": "matched"} for i in lines]})

    def held(self) -> Iterator[bytes]:
        for e, lines in enumerate(self._ranges()):
            if e % 10:
                continue  # one event in ten is held first
            yield envelope("accounts.contributions.held.v1", {"source_batch_id": f"tb-{e:05d}", "lines": [
                {"payment_id": f"pay-{i}", "fund": "PEN_EMP", "period": PERIOD, "citizen_id": citizen(i),
                 "person_id": None, "amount_fen": 96_000, "reason_code": "PERSON_NOT_FOUND", "reason": "无此人"}
                for i in lines]})

    def posted(self) -> Iterator[bytes]:
        for e, lines in enumerate(self._ranges()):
            yield envelope("accounts.contributions.posted.v1", {"source_batch_id": f"tb-{e:05d}", "lines": [
                {"payment_id": f"pay-{i}", "person_id": person(i), "employer_id": f"emp-{e:07d}",
                 "fund": "PEN_EMP", "period": PERIOD, "employer_fen": 64_000, "individual_fen": 32_000,
                 "credited_fen": 32_000, "entry_id": f"ent-{i}"} for i in lines]})

    def credited(self) -> Iterator[bytes]:
        half = max(1, self.events // 2)
        for e in range(self.events):
            first, month = (e % half) * LINES, 1 + e // half  # the second half credits the same persons again
            yield envelope("accounts.account.credited.v2", {"entries": [
                {"person_id": person(i), "entry_id": f"ent-{i}-{month}", "entry_type": "contribution",
                 "amount_fen": 32_000, "balance_fen": 32_000 * month, "year": YEAR, "period": YEAR * 100 + month,
                 "idempotency_key": f"credit:{i}:{month}"} for i in range(first, first + LINES)]})


KINDS = ("employers_imported", "persons_imported", "enrolments_imported", "assessments", "collected", "held",
         "posted", "credited")
STREAM = {"collected": "COLLECTION", "assessments": "COLLECTION"}


def consumers(engine) -> dict[str, EventConsumer]:  # noqa: ANN001
    return {spec.stream: EventConsumer(service="oversight", stream=spec.stream, engine=engine, bus=None,  # type: ignore[arg-type]
                                       handlers=spec.handlers, ignores=spec.ignores)
            for spec in merge_consumer_specs(SPEC.consumers)}


def apply(consumer: EventConsumer, raws: list[bytes]) -> tuple[float, float]:
    deliveries = [_Delivery(raw=raw, num_delivered=1) for raw in raws]
    wall, cpu = time.perf_counter(), time.process_time()
    consumer._apply_batch(deliveries)  # noqa: SLF001 - the consumer's transaction, without NATS
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    failed = [d.error for d in deliveries if d.error or d.outcome != "ack"]
    if failed:
        raise SystemExit(f"events failed: {failed[:3]}")
    return cpu, wall


def run(engine, events: int) -> dict:  # noqa: ANN001
    month = Month(events)
    by_stream = consumers(engine)
    figures = {}
    for kind in KINDS:
        raws = list(getattr(month, kind)())
        lines = len(raws) * LINES
        cpu = wall = 0.0
        for start in range(0, len(raws), EVENTS_PER_TRANSACTION):
            c, w = apply(by_stream[STREAM.get(kind, "ACCOUNTS")], raws[start:start + EVENTS_PER_TRANSACTION])
            cpu, wall = cpu + c, wall + w
        figures[kind] = {"events": len(raws), "lines": lines, "cpu_us_per_line": round(cpu / lines * 1e6, 1),
                         "wall_us_per_line": round(wall / lines * 1e6, 1), "cpu_s": round(cpu, 3)}
        print(f"{kind:22s} {figures[kind]['cpu_us_per_line']:8.1f} µs CPU/line "
              f"{figures[kind]['wall_us_per_line']:8.1f} µs wall/line", flush=True)
    verify(engine, events)
    return figures


def verify(engine, events: int) -> None:  # noqa: ANN001
    """The month must have landed: every person, every posted line, every credited cell with its totals."""
    with Session(engine) as session:
        persons = session.execute(select(func.count()).select_from(MirroredPerson)).scalar_one()
        posted = session.execute(select(func.count()).select_from(MirroredAgencyLine)
                                 .where(MirroredAgencyLine.status == "posted")).scalar_one()
        cells = session.execute(select(func.count(), func.sum(MirroredAccountYear.credited_fen),
                                       func.sum(MirroredAccountYear.entries))).one()
    half = max(1, events // 2)
    expected = (events * LINES, events * LINES, (half * LINES, events * LINES * 32_000, events * LINES))
    got = (persons, posted, tuple(cells))
    if got != expected:
        raise SystemExit(f"the month did not land: {got} != {expected}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20, help="events of 1 000 lines per type")
    parser.add_argument("--label", default="after", help="the entry of the results file to write")
    parser.add_argument("--postgres", help="a PostgreSQL URL (an empty database) instead of a fresh SQLite file")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        url = args.postgres or f"sqlite:///{tmp}/oversight.db"
        engine = make_engine(url)
        upgrade_database(engine, "oversight", models.metadata)
        figures = run(engine, args.events)
        engine.dispose()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"name": "oversight_apply", "runs": {}}
    results["runs"][args.label] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_1m_before": round(load_before, 2), "loadavg_1m_after": round(os.getloadavg()[0], 2)},
        "database": "PostgreSQL" if args.postgres else "SQLite (WAL, synchronous=FULL, BEGIN IMMEDIATE), fresh",
        "how": f"oversight's merged consumer handlers run by kernel.inbox.EventConsumer ({EVENTS_PER_TRANSACTION} "
               f"events of {LINES} lines per transaction), NATS excluded; CPU = time.process_time",
        "by_kind": figures,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
