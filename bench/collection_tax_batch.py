"""Collection's share of a month, in-process: ``python -m bench.collection_tax_batch [--lines N] [--label L]``.

What collection's process does per line on the real path's assessment and tax stages, without HTTP and NATS, on a
fresh migrated SQLite file with the kernel's settings (the seed is ``bench.money_in``'s: employers of 10 to 190
persons, each person enrolled in PEN_EMP, UNEMP and INJURY; the tenth employer does not pay):

- **assessment**: per employer, the declaration's JSON body (written by the client, not timed) validated as the
  endpoint does (``DeclarationIn``), ``assessments.service.issue`` in one transaction (lines, audit,
  ``AssessmentIssued``), the answer serialised, then the assessment's lines read back in pages of 1 000 through the
  endpoint function as the JSON it answers (what the tax bureau's client reads on the real path; the client's
  parsing of it is not counted);
- **tax**: batches of 10 000 person lines as the JSON body the bureau posts (written by the client, not timed),
  validated as the endpoint does (``TaxPaymentBatchIn``), ``payments.service.receive_batch`` in one transaction
  (check, store, match, settle, ``PaymentsCollected``, audit), the answer serialised.

Figures per stage: wall and CPU seconds, CPU µs per line (this process: SQLite runs in it). ``--profile`` runs
the whole of each stage under cProfile and adds its top frames (the figures are then inflated by the profiler).
Checks: every paid line matched, no rejection, the unpaid employers' lines still open, the audit chain verifies.

Results: ``bench/results/collection_tax_batch.json`` (a list of runs, one per ``--label``, newest last).
"""

import argparse
import cProfile
import gc
import json
import os
import platform
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import structlog
from sqlalchemy import func, select
from sqlmodel import Session

from bench.money_in import CITY, CLERK, FUNDS, PERIOD, TAX, fail, plan, seed_collection, tax_batches
from services.collection import models as collection_models
from services.collection.assessments import endpoints as assessment_endpoints
from services.collection.assessments import service as assessments
from services.collection.assessments.schemas import DeclarationIn
from services.collection.models import AssessmentLine
from services.collection.payments import service as payments
from services.collection.payments.schemas import TaxPaymentBatchIn
from services.kernel import context
from services.kernel.audit import verify_chain
from services.kernel.db import make_engine, unit_of_work
from services.kernel.migrations import upgrade_database

RESULTS = Path(__file__).parent / "results" / "collection_tax_batch.json"
READ_PAGE = 1000


class ClientWork:
    """What the client does inside a timed stage (reading an answer), taken out of the stage's figures."""

    def __init__(self):
        self.seconds = self.cpu_seconds = 0.0

    @contextmanager
    def work(self) -> Iterator[None]:
        began = (time.perf_counter(), time.process_time())
        yield  # a failure ends the benchmark: nothing to count then
        self.seconds += time.perf_counter() - began[0]
        self.cpu_seconds += time.process_time() - began[1]


client = ClientWork()


class Stage:
    def __init__(self, profile: bool):
        self.seconds = self.cpu_seconds = 0.0
        self.lines = 0
        self.profiler = cProfile.Profile(time.process_time) if profile else None

    def run(self, lines: int, work) -> object:  # noqa: ANN001
        started, cpu_started = time.perf_counter(), time.process_time()
        client_seconds, client_cpu_seconds = client.seconds, client.cpu_seconds
        if self.profiler is not None:
            self.profiler.enable()
        try:
            return work()
        finally:
            if self.profiler is not None:
                self.profiler.disable()
            self.seconds += time.perf_counter() - started - (client.seconds - client_seconds)
            self.cpu_seconds += time.process_time() - cpu_started - (client.cpu_seconds - client_cpu_seconds)
            self.lines += lines

    def figures(self) -> dict:
        return {"lines": self.lines, "seconds": round(self.seconds, 2), "cpu_seconds": round(self.cpu_seconds, 2),
                "cpu_us_per_line": round(self.cpu_seconds / self.lines * 1e6, 1) if self.lines else None}

    def top(self, n: int = 25) -> list[str] | None:
        if self.profiler is None:
            return None
        stats = pstats.Stats(self.profiler).stats
        total = sum(v[2] for v in stats.values()) or 1.0
        rows = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:n]
        out = []
        for (file, line, function), v in rows:
            for prefix in (f"{Path.cwd()}/", sys.prefix + "/"):
                file = file.removeprefix(prefix)
            out.append(f"{v[2] / total:5.1%} own {v[2]:6.2f} s, cum {v[3]:6.2f} s, {v[1]:>8} calls  "
                       f"{file}:{line}({function})")
        return out


def declaration_body(employer: dict, cids: dict[str, str]) -> str:
    return json.dumps({"period": PERIOD, "lines": [
        {"citizen_id": cids[p], "base": f"{base // 100}.{base % 100:02d}"} for p, _, base in employer["staff"]]})


def declare(collection, employer: dict, body: str) -> int:  # noqa: ANN001
    with unit_of_work(collection) as session:
        declaration = DeclarationIn.model_validate_json(body)
        lines = assessments.lines_from_request(declaration.lines)
        result = assessment_endpoints.result_out(assessments.issue(session, employer["id"], declaration.period,
                                                                  lines, source="api"))
        result.model_dump_json()
        assessment_id = result.assessment.id
    read, after = 0, None
    while True:
        with unit_of_work(collection) as session:
            body = assessment_endpoints.get_assessment(assessment_id, session, after=after, limit=READ_PAGE).body
        with client.work():  # the client reads the page: not collection's work
            page = json.loads(body)
        read += len(page["items"])
        after = page["next_cursor"]
        if after is None:
            return read


def post(collection, body: str) -> dict:  # noqa: ANN001
    with unit_of_work(collection) as session:
        parsed = TaxPaymentBatchIn.model_validate_json(body)
        result = payments.receive_batch(session, list(enumerate(parsed.lines, start=1)), source_format="json",
                                        region=CITY)
        result.model_dump_json()
    return {"lines": result.lines, "matched": result.matched, "rejected": result.rejected,
            "unmatched": result.unmatched, "duplicates": result.duplicates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=60_000, help="person × fund lines (default 60 000)")
    parser.add_argument("--label", default="run", help="the name of this run in the results (e.g. before, after)")
    parser.add_argument("--profile", action="store_true", help="profile every stage (inflates the figures)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--seed", type=int, default=202609)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="sifund-collection-bench-") as tmp:
        collection = make_engine(f"sqlite:///{tmp}/collection.db")
        upgrade_database(collection, "collection", collection_models.metadata)
        employers = plan(args.lines, random.Random(args.seed))
        cids = seed_collection(collection, employers)
        gc.collect()
        gc.freeze()  # as the services do after start-up (gc_freeze_after_startup, on under `sifund up`)

        assessment = Stage(args.profile)
        with context.trace(actor=CLERK):
            for employer in employers:
                n = len(employer["staff"]) * len(FUNDS)
                body = declaration_body(employer, cids)  # the client's work, not timed
                if assessment.run(n, lambda e=employer, b=body: declare(collection, e, b)) != n:
                    fail(f"employer {employer['id']}: the lines read back differ from the lines assessed")
        print(f"assessment: {assessment.figures()}", flush=True)

        paid = [e for e in employers if e["paid"]]
        paid_lines = sum(len(e["staff"]) for e in paid) * len(FUNDS)
        tax = Stage(args.profile)
        totals = {"lines": 0, "matched": 0, "rejected": 0, "unmatched": 0, "duplicates": 0, "batches": 0}
        usccs = {e["id"]: e["uscc"] for e in employers}
        with context.trace(actor=TAX):
            for batch in tax_batches(collection, [e["id"] for e in paid], cids, usccs):
                body = json.dumps({"lines": [line for _, line in batch]})  # the client's work, not timed
                counts = tax.run(len(batch), lambda b=body: post(collection, b))
                for key, value in counts.items():
                    totals[key] += value
                totals["batches"] += 1
        print(f"tax: {tax.figures()} {totals}", flush=True)
        if (totals["lines"], totals["matched"]) != (paid_lines, paid_lines) or totals["rejected"]:
            fail(f"tax: {totals} for {paid_lines} paid lines")
        with Session(collection) as session:
            c = AssessmentLine.__table__.c
            open_lines = session.execute(select(func.count()).where(c.status == "open")).scalar_one()
        unpaid = sum(len(e["staff"]) for e in employers if not e["paid"]) * len(FUNDS)
        if open_lines != unpaid:
            fail(f"{open_lines} open lines, expected {unpaid}")
        chain = verify_chain(collection)
        if not chain.ok:
            fail(f"audit chain: {chain.problem}")
        collection.dispose()

    run = {
        "label": args.label,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "load": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]},
        "database": "SQLite, WAL, synchronous=FULL, BEGIN IMMEDIATE; fresh, migrated",
        "lines": sum(len(e["staff"]) for e in employers) * len(FUNDS), "employers": len(employers),
        "profiled": args.profile,
        "stages": {"assessment": assessment.figures(), "tax": {**tax.figures(), "batches": totals["batches"]}},
        "profile": {"assessment": assessment.top(), "tax": tax.top()} if args.profile else None,
    }
    print(json.dumps(run, ensure_ascii=False, indent=2))
    if not args.no_write and not args.profile:
        runs = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
        runs = [r for r in runs if r.get("label") != args.label] + [run]
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(runs, ensure_ascii=False, indent=2) + "\n")
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
