"""Partner-data exchange throughput: ``python -m bench.accounts_exchange [--lines N] [--record LABEL]``.

A death batch of ``--lines`` lines (default 10 000, the most one upload may carry) from a partner system, received
through the real code path (``services.accounts.exchange.service.receive_batch``: line checks, one lookup, match,
apply, history, audit chain, outbox) into a fresh, migrated SQLite database with the kernel's settings (WAL,
``synchronous=FULL``, ``BEGIN IMMEDIATE``). The batch mixes every outcome a death line can have:

===========================  =======================================================================================
1 % PERSON_NOT_FOUND         a valid citizen id nobody registered here (unmatched)
0.5 % NAME_MISMATCH          the registered person under another name (conflict)
0.5 % ALREADY_RECORDED       a person already deceased on that date (applied as a no-op, no event)
0.5 % DEATH_DATE_DIFFERS     a person already deceased on another date (conflict)
0.5 % invalid                a wrong check digit (invalid)
the rest                     an alive person, applied: life status, history, audit, two events
===========================  =======================================================================================

It then checks every line's outcome, the person rows, one ``change_history`` row, one audit entry and one
``accounts.person.life_status_changed`` plus one ``exchange.person.died`` event per applied person, that the audit
chain verifies, and that uploading the same batch again changes nothing. Any discrepancy exits with status 1 and
writes no results. ``--record LABEL`` stores the figures under that label in ``bench/results/accounts_exchange.json``
(``before`` / ``after`` a change), keeping the other labels.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import func, select
from sqlmodel import Session
from stdnum.cn import ric

from services.accounts import models
from services.accounts.exchange.schemas import BatchUpload
from services.accounts.exchange.service import receive_batch
from services.accounts.models import ChangeHistory, ExchangeRecord, LifeEvent, Person
from services.kernel import context
from services.kernel.audit import verify_chain
from services.kernel.context import Actor
from services.kernel.db import make_engine, unit_of_work
from services.kernel.events import new_event_id
from services.kernel.migrations import upgrade_database
from services.kernel.models import AuditEntry, OutboxMessage

RESULTS = Path(__file__).parent / "results" / "accounts_exchange.json"
PARTNER = Actor(id="partner.wjw", role="partner_system")
REGION = "150102"


def citizen_id(serial: int) -> str:
    born = date(1950, 1, 1) + timedelta(days=serial // 500)
    body = f"110105{born:%Y%m%d}{serial % 500 * 2 + serial % 2:03d}"
    return body + ric.calc_check_digit(body + "0")


def plan(lines: int) -> tuple[list[dict], list[dict], dict[str, str]]:
    """(persons to store, batch records, expected outcome code per record id)."""
    persons, records, expected = [], [], {}
    now = datetime.now(UTC)
    for i in range(lines):
        cid, rid, kind = citizen_id(i), str(i), i % 200
        death = (date(2024, 1, 1) + timedelta(days=i % 300)).isoformat()
        person = {"id": new_event_id(), "citizen_id": cid, "name": "张三", "sex": "M" if i % 2 else "F",
                  "birth_date": date(int(cid[6:10]), int(cid[10:12]), int(cid[12:14])), "region": REGION,
                  "registered_at": now, "registered_by": "bench", "life_status": "alive", "nationality": "CHN",
                  "household_type": "urban", "version": 1, "death_date": None}
        record = {"record_id": rid, "citizen_id": cid, "name": "张三", "death_date": death}
        if kind in (0, 1):
            expected[rid] = "PERSON_NOT_FOUND"
            person = None
        elif kind == 2:
            expected[rid] = "NAME_MISMATCH"
            record["name"] = "李四"
        elif kind == 3:
            expected[rid] = "ALREADY_RECORDED"
            person.update(life_status="deceased", death_date=date.fromisoformat(death))
        elif kind == 4:
            expected[rid] = "DEATH_DATE_DIFFERS"
            person.update(life_status="deceased", death_date=date(2023, 1, 1))
        elif kind == 5:
            expected[rid] = "INVALID_CITIZEN_ID"
            record["citizen_id"] = cid[:-1] + ("0" if cid[-1] != "0" else "1")
        else:
            expected[rid] = "applied"
        if person is not None:
            persons.append(person)
        records.append(record)
    return persons, records, expected


def verify(engine, result, expected: dict[str, str]) -> list[str]:  # noqa: ANN001
    problems = []
    applied = sum(1 for v in expected.values() if v == "applied")
    noted = {p.record_id: (p.reason or p.status).split(":", 1)[0] for p in result.problems}
    want = {rid: code for rid, code in expected.items() if code != "applied"}
    if noted != want:
        diff = {k: (want.get(k), noted.get(k)) for k in set(want) | set(noted) if want.get(k) != noted.get(k)}
        problems.append(f"{len(diff)} lines with another outcome, e.g. {dict(list(diff.items())[:3])}")
    with Session(engine) as session:
        def n(model, *where) -> int:  # noqa: ANN001
            return session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()

        figures = {
            "deceased persons": (n(Person, Person.life_status == "deceased"),
                                 applied + sum(1 for v in expected.values() if v in ("ALREADY_RECORDED",
                                                                                     "DEATH_DATE_DIFFERS"))),
            "history rows": (n(ChangeHistory, ChangeHistory.action == "life_status_change"), applied),
            "audit entries for persons": (n(AuditEntry, AuditEntry.action == "person.life_status_change"), applied),
            "life_status_changed events": (n(OutboxMessage, OutboxMessage.event_type
                                             == "accounts.person.life_status_changed.v1"), applied),
            "died events": (n(OutboxMessage, OutboxMessage.event_type == "exchange.person.died.v1"), applied),
            "life events": (n(LifeEvent), applied),
            "exchange records": (n(ExchangeRecord), len(expected)),
            "persons at version 2": (n(Person, Person.version == 2), applied),
        }
    problems += [f"{name}: {got}, expected {want}" for name, (got, want) in figures.items() if got != want]
    chain = verify_chain(engine)
    if not chain.ok:
        problems.append(f"audit chain broken: {chain.problem}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--record", help="store the figures under this label (e.g. before, after)")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    load_before = os.getloadavg()
    persons, records, expected = plan(args.lines)
    with tempfile.TemporaryDirectory(prefix="sifund-bench-exchange-") as tmp, context.trace(actor=PARTNER):
        engine = make_engine(f"sqlite:///{Path(tmp) / 'accounts.db'}")
        upgrade_database(engine, "accounts", models.metadata)
        with Session(engine) as session:
            session.execute(Person.__table__.insert(), persons)
            session.commit()
        upload = BatchUpload(batch_key="BENCH-1", kind="death", records=records)

        t0 = time.perf_counter()
        with unit_of_work(engine) as session:
            result, created = receive_batch(session, upload)
        seconds = time.perf_counter() - t0
        print(f"{args.lines} death lines: {result.applied} applied, {result.unmatched} unmatched, "
              f"{result.conflicts} conflicts, {result.invalid} invalid in {seconds:.2f} s "
              f"({args.lines / seconds:,.0f} lines/s)")
        problems = [] if created else ["not created"]
        problems += verify(engine, result, expected)

        t0 = time.perf_counter()
        with unit_of_work(engine) as session:
            again, created_again = receive_batch(session, upload)
        repeat_seconds = time.perf_counter() - t0
        if created_again or not again.duplicate_upload:
            problems.append("the repeated upload was applied again")
        problems += verify(engine, again, expected)
        engine.dispose()

    if problems:
        for p in problems:
            print("FAIL:", p, file=sys.stderr)
        return 1
    print("verified: every line's outcome, one history row, audit entry and two events per applied person, "
          "audit chain ok, repeat changes nothing")
    if not args.record:
        return 0
    figures = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_1m_before": round(load_before[0], 2), "loadavg_1m_after": round(os.getloadavg()[0], 2)},
        "database": "SQLite (WAL, synchronous=FULL, BEGIN IMMEDIATE), fresh and migrated",
        "lines": args.lines,
        "outcomes": dict(sorted(Counter(expected.values()).items())),
        "seconds": round(seconds, 2),
        "lines_per_s": round(args.lines / seconds),
        "repeat_upload_seconds": round(repeat_seconds, 2),
    }
    doc = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"name": "accounts_exchange", "runs": {}}
    doc["runs"][args.record] = figures
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {RESULTS} ({args.record})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
