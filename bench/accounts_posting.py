"""Agency posting and what it costs downstream: ``python -m bench.accounts_posting [--lines N] [--no-write]``.

``--lines`` person × fund lines (default 10 000): every person is enrolled in PEN_EMP, UNEMP and INJURY with one
employer (100 persons per employer), so a third as many persons. Fresh, migrated SQLite files with the kernel's
settings (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``), one per service:

- **accounts posting**: ``collection.payments.collected.v1`` events of 1 000 lines each applied through accounts' own
  COLLECTION consumer (``EventConsumer`` built from the accounts service spec, one event per transaction: inbox row,
  ``posting.service.post_collected``, commit), without NATS. Counted: CPU µs per line, and the events the posting
  wrote to accounts' outbox (per type; those of stream ACCOUNTS per 10 000 lines).
- **interest run**: ``ledger.service.run_interest`` for the persons' accounts (one credit each), CPU µs per account
  and the events it wrote.
- **benefits, contribution index**: ``collection.assessment.issued.v1`` events for the same lines (1 000 lines each)
  through benefits' COLLECTION consumer; CPU µs per assessed line.
- **benefits, ACCOUNTS stream**: the events accounts wrote during the posting that the server delivers to benefits
  (its durable's subject filters, ``ConsumerSpec.subjects``: credits and posted contributions are held back, so
  normally none), in consumer batches of ``consumer_batch_size``, through benefits' ACCOUNTS consumer; CPU µs per
  posted line.

After the set-up the objects alive are frozen out of the collector's reach (``gc.freeze()``), as the service
processes do under ``sifund up`` (``gc_freeze_after_startup``); the events go through the consumer's
``_apply_chunk``, as in the service: bounded transactions with the cyclic collector paused.

Checks (any failure exits with status 1 and writes no results): every person's balance equals the PEN_EMP individual
part posted, one entry and one contribution month per posted line; the credited events (``accounts.account.credited``
v1 or v2) carry every entry exactly once with the balance after it; no ACCOUNTS event of the posting carries more than
1 000 items; both audit chains verify; benefits indexed one row per PEN_EMP line and applied every event.

Results: ``bench/results/accounts_posting.json``.
"""

import argparse
import gc
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import structlog
from sqlalchemy import func, insert, select
from sqlmodel import Session

from bench.money_in import citizen_id, fail, make_uscc
from services.accounts import models as accounts_models
from services.accounts.ledger import service as ledger
from services.accounts.models import AccountEntry, ContributionMonth, IndividualAccount, InterestRate
from services.benefits import models as benefits_models
from services.benefits.models import AverageWage, BeneficiaryPerson, ContributionIndex
from services.contracts.accounts import MAX_BATCH_ITEMS
from services.contracts.collection import AssessedLine, AssessmentIssued, CollectedLine, PaymentsCollected
from services.kernel import context
from services.kernel.audit import verify_chain
from services.kernel.context import Actor
from services.kernel.db import make_engine
from services.kernel.events import EventActor, build_envelope, new_event_id
from services.kernel.inbox import EventConsumer, _Delivery
from services.kernel.migrations import upgrade_database
from services.kernel.models import InboxMessage, OutboxMessage
from services.kernel.service_app import merge_consumer_specs
from services.kernel.settings import Settings
from sifund import services as catalogue

RESULTS = Path(__file__).parent / "results" / "accounts_posting.json"
PERIOD = 202609
INTEREST_YEAR = 2025  # a year that has ended; the accounts get an opening balance in it
CITY, DISTRICT = "150100", "150102"
FUNDS = ("PEN_EMP", "UNEMP", "INJURY")
STAFF = 100
EVENT_LINES = 1_000
CONSUMER_BATCH = Settings.model_fields["consumer_batch_size"].default
AVERAGE_WAGE_FEN = 800_000
CREDITED = ("accounts.account.credited.v1", "accounts.account.credited.v2")
CLERK = Actor(id="bench.clerk", role="agency_clerk", region=CITY)
SYSTEM = EventActor(id="system:collection", role="system")



def fresh(directory: Path, service: str, metadata):  # noqa: ANN001, ANN201
    engine = make_engine(f"sqlite:///{directory / service}.db")
    upgrade_database(engine, service, metadata)
    return engine


def chunks(values: list, size: int) -> list[list]:
    return [values[i:i + size] for i in range(0, len(values), size)]


# -- seed ------------------------------------------------------------------------------------------------------------


def plan(lines: int) -> list[dict]:
    """Persons with their employer, base and parts: [{id, cid, employer, uscc, base, parts: {fund: (er, ind)}}]."""
    persons = -(-lines // len(FUNDS))
    result = []
    for serial in range(persons):
        employer = serial // STAFF
        base = 480_000 + (serial * 7919) % 1_920_000
        parts = {"PEN_EMP": (base * 16 // 100, base * 8 // 100), "UNEMP": (base * 5 // 1000, base * 5 // 1000),
                 "INJURY": (base * 4 // 1000, 0)}
        result.append({"id": new_event_id(), "cid": citizen_id(serial), "serial": serial,
                       "employer": f"E{employer:08d}", "uscc": make_uscc(employer + 1), "base": base, "parts": parts})
    return result


def seed(accounts, benefits, persons: list[dict]) -> None:  # noqa: ANN001
    now = datetime.now(UTC)
    employers = {p["employer"]: p["uscc"] for p in persons}
    with Session(accounts) as session:
        session.execute(insert(accounts_models.Employer.__table__), [
            {"id": e, "uscc": u, "name": f"单位{e}", "region": DISTRICT, "unit_type": "enterprise",
             "industry_risk_class": 2, "status": "active", "registered_at": now, "registered_by": "bench",
             "version": 1} for e, u in employers.items()])
        for chunk in chunks(persons, 5_000):
            session.execute(insert(accounts_models.Person.__table__), [
                {"id": p["id"], "citizen_id": p["cid"], "name": f"职工{p['serial']}",
                 "sex": "M" if int(p["cid"][16]) % 2 else "F",
                 "birth_date": date(int(p["cid"][6:10]), int(p["cid"][10:12]), int(p["cid"][12:14])),
                 "nationality": "CHN", "household_type": "urban", "region": DISTRICT, "life_status": "alive",
                 "registered_at": now, "registered_by": "bench", "version": 1} for p in chunk])
            session.execute(insert(accounts_models.Enrolment.__table__), [
                {"id": new_event_id(), "person_id": p["id"], "fund": fund,
                 "fund_group": "PENSION" if fund == "PEN_EMP" else fund, "employer_id": p["employer"],
                 "start_period": 202001, "end_period": None, "status": "active", "created_at": now,
                 "created_by": "bench", "version": 1} for p in chunk for fund in FUNDS])
        session.add(InterestRate(year=INTEREST_YEAR, rate="0.0262", set_at=now, set_by="bench"))
        session.commit()
    with Session(benefits) as session:
        for chunk in chunks(persons, 5_000):
            session.execute(insert(BeneficiaryPerson.__table__), [
                {"person_id": p["id"], "citizen_id": p["cid"], "name": f"职工{p['serial']}",
                 "sex": "M" if int(p["cid"][16]) % 2 else "F",
                 "birth_date": date(int(p["cid"][6:10]), int(p["cid"][10:12]), int(p["cid"][12:14])),
                 "region": DISTRICT, "life_status": "alive", "source_event_id": "0"} for p in chunk])
        session.add(AverageWage(region=CITY, valid_from=202601, average_monthly_wage_fen=AVERAGE_WAGE_FEN,
                                parameters_id=new_event_id()))
        session.commit()


def person_lines(persons: list[dict], lines: int) -> list[tuple[dict, str]]:
    return [(p, fund) for p in persons for fund in FUNDS][:lines]


def collected_events(persons: list[dict], lines: int) -> list[bytes]:
    batch_id = new_event_id()
    items = person_lines(persons, lines)
    parts = chunks(items, EVENT_LINES)
    events = []
    for number, part in enumerate(parts, start=1):
        payload = PaymentsCollected(batch_id=batch_id, part=number, parts=len(parts), lines=[CollectedLine(
            payment_id=new_event_id(), tax_line_id=f"SW-{p['serial']}-{fund}", payer_uscc=p["uscc"],
            employer_id=p["employer"], person_id=p["id"], citizen_id=p["cid"], fund=fund, period=PERIOD,
            employer_fen=p["parts"][fund][0], individual_fen=p["parts"][fund][1], late_fee_fen=0,
            method="bank_withholding", voucher_no=f"PZ-{p['uscc']}", paid_date=date(2026, 10, 12),
            assessment_line_id=None, match_status="matched") for p, fund in part])
        events.append(build_envelope(payload, source="collection", subject=batch_id, actor=SYSTEM,
                                     correlation_id=None, causation_id=None).model_dump_json().encode())
    return events


def assessment_events(persons: list[dict], lines: int) -> list[tuple[bytes, int]]:
    items = person_lines(persons, lines)
    by_employer: dict[str, list[tuple[dict, str]]] = {}
    for p, fund in items:
        by_employer.setdefault(p["employer"], []).append((p, fund))
    events = []
    for employer, rows in by_employer.items():
        assessment_id = new_event_id()
        parts = chunks(rows, EVENT_LINES)
        for number, part in enumerate(parts, start=1):
            payload = AssessmentIssued(
                assessment_id=assessment_id, employer_id=employer, period=PERIOD, due_date=date(2026, 10, 15),
                supersedes_id=None, part=number, parts=len(parts),
                employer_total_fen=sum(p["parts"][f][0] for p, f in rows),
                individual_total_fen=sum(p["parts"][f][1] for p, f in rows),
                lines=[AssessedLine(line_id=new_event_id(), person_id=p["id"], fund=fund, declared_base_fen=p["base"],
                                    base_fen=p["base"], clamp=None, employer_fen=p["parts"][fund][0],
                                    individual_fen=p["parts"][fund][1]) for p, fund in part])
            raw = build_envelope(payload, source="collection", subject=assessment_id, actor=SYSTEM,
                                 correlation_id=None, causation_id=None).model_dump_json().encode()
            events.append((raw, len(part)))
    return events


# -- stages ----------------------------------------------------------------------------------------------------------


def consumer(service: str, engine, stream: str) -> EventConsumer:  # noqa: ANN001
    [spec] = [s for s in merge_consumer_specs(catalogue.spec(service).consumers) if s.stream == stream]
    return EventConsumer(service=service, stream=stream, engine=engine, bus=None, handlers=spec.handlers,
                         ignores=spec.ignores, subjects=spec.subjects)


def delivers(subjects: list[str], event_type: str) -> bool:
    """Would a durable with these subject filters get ``event_type``? (NATS: ``*`` one token, ``>`` the rest.)"""
    return not subjects or any(
        re.fullmatch(re.escape(p).replace(r"\*", "[^.]+").replace(">", ".+"), event_type) for p in subjects)


class Meter:
    def __init__(self) -> None:
        self.seconds = self.cpu_seconds = 0.0
        self.units = 0

    def apply(self, target: EventConsumer, raws: list[bytes]) -> None:
        deliveries = [_Delivery(raw=raw, num_delivered=1) for raw in raws]
        started, cpu = time.perf_counter(), time.process_time()
        remaining = deliveries
        while remaining:  # the consumer's transactions (the collector paused, as in the service), without NATS
            remaining = remaining[target._apply_chunk(remaining):]  # noqa: SLF001
            self.units += 1
        self.seconds += time.perf_counter() - started
        self.cpu_seconds += time.process_time() - cpu
        for d in deliveries:
            if d.error is not None or d.outcome != "ack":
                fail(f"{target.name} could not apply an event: {d.error}")

    def figures(self, lines: int) -> dict:
        return {"lines": lines, "transactions": self.units, "seconds": round(self.seconds, 3),
                "cpu_seconds": round(self.cpu_seconds, 3),
                "cpu_us_per_line": round(self.cpu_seconds / lines * 1e6, 1) if lines else None}


def outbox_since(engine, seq: int) -> list[tuple[int, str, str]]:  # noqa: ANN001
    with Session(engine) as session:
        return [tuple(r) for r in session.execute(
            select(OutboxMessage.seq, OutboxMessage.event_type, OutboxMessage.envelope)
            .where(OutboxMessage.seq > seq).order_by(OutboxMessage.seq)).all()]


def last_seq(engine) -> int:  # noqa: ANN001
    with Session(engine) as session:
        return session.execute(select(func.coalesce(func.max(OutboxMessage.seq), 0))).scalar_one()


def credits_of(rows: list[tuple[int, str, str]]) -> list[dict]:
    found = []
    for _, event_type, envelope in rows:
        if event_type == CREDITED[0]:
            found.append(json.loads(envelope)["data"])
        elif event_type == CREDITED[1]:
            found.extend(json.loads(envelope)["data"]["entries"])
    return found


def item_counts(rows: list[tuple[int, str, str]]) -> list[int]:
    sizes = []
    for _, _, envelope in rows:
        data = json.loads(envelope)["data"]
        lists = [v for v in data.values() if isinstance(v, list) and v and isinstance(v[0], dict)]
        sizes.append(max((len(v) for v in lists), default=1))
    return sizes


# -- checks ----------------------------------------------------------------------------------------------------------


def verify_posting(accounts, persons: list[dict], lines: int, rows: list[tuple[int, str, str]]) -> list[str]:  # noqa: ANN001
    problems = []
    expected: Counter = Counter()
    for p, fund in person_lines(persons, lines):
        if fund == "PEN_EMP":
            expected[p["id"]] += p["parts"][fund][1]
    with Session(accounts) as session:
        balances = dict(session.execute(select(IndividualAccount.person_id, IndividualAccount.balance_fen)).all())
        entries = session.execute(select(func.count()).select_from(AccountEntry)).scalar_one()
        months = session.execute(select(func.count()).select_from(ContributionMonth)).scalar_one()
        derived = dict(session.execute(select(AccountEntry.person_id, func.sum(AccountEntry.amount_fen))
                                       .group_by(AccountEntry.person_id)).all())
    if balances != dict(expected):
        problems.append(f"balances differ from the posted individual parts ({len(balances)} accounts)")
    if derived != balances:
        problems.append("a cached balance differs from the sum of its entries")
    if entries != len(expected):
        problems.append(f"{entries} entries for {len(expected)} PEN_EMP lines")
    if months != lines:
        problems.append(f"{months} contribution months for {lines} lines")
    credits = credits_of(rows)
    if sorted(c["entry_id"] for c in credits) != sorted(set(c["entry_id"] for c in credits)) or \
            len(credits) != entries:
        problems.append(f"credited events carry {len(credits)} entries for {entries} written")
    if any(c["balance_fen"] != balances.get(c["person_id"]) for c in credits):
        problems.append("a credited event's balance differs from the account's")
    if any(size > MAX_BATCH_ITEMS for size in item_counts(rows)):
        problems.append("an event carries more than 1 000 items")
    if not verify_chain(accounts).ok:
        problems.append("accounts' audit chain does not verify")
    return problems


def run_interest(accounts, persons: list[dict]) -> tuple[dict, list[tuple[int, str, str]]]:  # noqa: ANN001
    """Interest of ``INTEREST_YEAR`` on the balances posted (moved into that year first: an opening balance)."""
    with Session(accounts) as session:
        session.execute(AccountEntry.__table__.update().values(year=INTEREST_YEAR - 1))
        session.commit()
    before = last_seq(accounts)
    started, cpu = time.perf_counter(), time.process_time()
    with context.trace(actor=CLERK):
        run = ledger.run_interest(accounts, INTEREST_YEAR)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    rows = outbox_since(accounts, before)
    problems = []
    with Session(accounts) as session:
        interest = dict(session.execute(select(AccountEntry.person_id, AccountEntry.amount_fen)
                                        .where(AccountEntry.entry_type == "interest")).all())
        balances = dict(session.execute(select(IndividualAccount.person_id, IndividualAccount.balance_fen)).all())
        derived = dict(session.execute(select(AccountEntry.person_id, func.sum(AccountEntry.amount_fen))
                                       .group_by(AccountEntry.person_id)).all())
    credits = credits_of(rows)
    if len(interest) != run.credited or len(credits) != run.credited:
        problems.append(f"interest: {run.credited} credited, {len(interest)} entries, {len(credits)} in events")
    if derived != balances:
        problems.append("interest: a cached balance differs from the sum of its entries")
    if any(c["balance_fen"] != balances[c["person_id"]] or c["amount_fen"] != interest[c["person_id"]]
           for c in credits):
        problems.append("interest: a credited event differs from the ledger")
    expected = {p["id"] for p in persons if p["id"] in balances}
    if set(interest) != expected:
        problems.append(f"interest credited to {len(interest)} of {len(expected)} accounts")
    if any(size > MAX_BATCH_ITEMS for size in item_counts(rows)):
        problems.append("interest: an event carries more than 1 000 items")
    if not verify_chain(accounts).ok:
        problems.append("accounts' audit chain does not verify after the interest run")
    if problems:
        for p in problems:
            print("FAIL:", p, file=sys.stderr)
        sys.exit(1)
    return {"accounts": run.credited, "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
            "cpu_us_per_account": round(cpu_seconds / max(run.credited, 1) * 1e6, 1),
            "events": dict(Counter(t for _, t, _ in rows))}, rows


def git_head() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=10_000)
    parser.add_argument("--no-write", action="store_true", help="print the figures, write no results file")
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # errors only
    load_before = os.getloadavg()
    persons = plan(args.lines)
    with tempfile.TemporaryDirectory(prefix="sifund-bench-posting-") as tmp:
        directory = Path(tmp)
        accounts = fresh(directory, "accounts", accounts_models.metadata)
        benefits = fresh(directory, "benefits", benefits_models.metadata)
        seed(accounts, benefits, persons)
        collected = collected_events(persons, args.lines)
        assessed = assessment_events(persons, args.lines)
        gc.collect()
        gc.freeze()  # as the services do after start-up (gc_freeze_after_startup, on under `sifund up`)

        posting = Meter()
        target = consumer("accounts", accounts, "COLLECTION")
        for raw in collected:
            posting.apply(target, [raw])
        rows = outbox_since(accounts, 0)
        problems = verify_posting(accounts, persons, args.lines, rows)
        if problems:
            for p in problems:
                print("FAIL:", p, file=sys.stderr)
            return 1
        by_type = Counter(t for _, t, _ in rows)
        accounts_events = [r for r in rows if r[1].startswith("accounts.")]
        print(f"accounts posting: {posting.figures(args.lines)}; events {dict(by_type)}", flush=True)

        index = Meter()
        target = consumer("benefits", benefits, "COLLECTION")
        for raw, _ in assessed:
            index.apply(target, [raw])
        stream = Meter()
        target = consumer("benefits", benefits, "ACCOUNTS")
        delivered = [r for r in accounts_events if delivers(target.subjects, r[1])]
        for batch in chunks([r[2].encode() for r in delivered], CONSUMER_BATCH):
            stream.apply(target, batch)
        pen_lines = sum(1 for _, fund in person_lines(persons, args.lines) if fund == "PEN_EMP")
        with Session(benefits) as session:
            indexed = session.execute(select(func.count()).select_from(ContributionIndex)).scalar_one()
            applied = session.execute(select(func.count()).select_from(InboxMessage)).scalar_one()
        if indexed != pen_lines or applied != len(assessed) + len(delivered):
            print(f"FAIL: benefits indexed {indexed} of {pen_lines}, applied {applied} events", file=sys.stderr)
            return 1
        if not verify_chain(benefits).ok:
            print("FAIL: benefits' audit chain does not verify", file=sys.stderr)
            return 1
        print(f"benefits index: {index.figures(args.lines)}", flush=True)
        print(f"benefits ACCOUNTS consumer: {stream.figures(args.lines)} ({len(delivered)} of "
              f"{len(accounts_events)} events delivered)", flush=True)

        interest, _ = run_interest(accounts, persons)
        print(f"interest run: {interest}", flush=True)
        accounts.dispose()
        benefits.dispose()

    load_after = os.getloadavg()
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (cpu_count {os.cpu_count()})")
    benefits_cpu = index.cpu_seconds + stream.cpu_seconds
    doc = {
        "name": "accounts_posting",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_head(),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_1m_before": round(load_before[0], 2), "loadavg_1m_after": round(load_after[0], 2)},
        "database": "SQLite (WAL, synchronous=FULL, BEGIN IMMEDIATE), fresh and migrated, one file per service",
        "lines": args.lines,
        "persons": len(persons),
        "accounts_posting": {
            **posting.figures(args.lines),
            "events": dict(by_type),
            "accounts_stream_events": len(accounts_events),
            "accounts_stream_events_per_10k_lines": round(len(accounts_events) * 10_000 / args.lines, 1),
            "code": "accounts' EventConsumer (COLLECTION, from the service spec), one 1 000-line "
                    "collection.payments.collected.v1 event per transaction: inbox, posting.service.post_collected",
        },
        "interest_run": interest,
        "benefits": {
            "contribution_index": {**index.figures(args.lines), "events": len(assessed),
                                   "code": "benefits' COLLECTION consumer, collection.assessment.issued.v1 events"},
            "accounts_stream": {**stream.figures(args.lines), "events": len(delivered),
                                "events_held_back": len(accounts_events) - len(delivered),
                                "code": f"benefits' ACCOUNTS consumer, the posting's events its subject filters "
                                        f"deliver, in batches of {CONSUMER_BATCH}"},
            "cpu_us_per_line": round(benefits_cpu / args.lines * 1e6, 1),
        },
    }
    print(json.dumps({k: doc[k] for k in ("accounts_posting", "benefits")}, ensure_ascii=False, indent=1))
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
