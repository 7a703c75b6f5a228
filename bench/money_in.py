"""A month of money in, end to end: ``python -m bench.money_in [--lines N] [--quick] [--no-profile]``.

``--lines`` person × fund lines (default 1 000 000; ``--quick``: 50 000, results not written): every person is
enrolled in PEN_EMP, UNEMP and INJURY with one employer, so a third as many persons, in employers of 10 to 190
employees (about 100). Two fresh, migrated SQLite files with the kernel's settings (WAL, ``synchronous=FULL``,
``BEGIN IMMEDIATE``), one per service, as the services run them:

- **seed** (not timed as a stage): the approved parameters through the real service (the accountant proposes, the
  approver approves); employers, persons and enrolments with Core bulk inserts into collection's registry mirror
  and into accounts' registry tables (what the ACCOUNTS stream and the accounts API would have put there).
- **assessment**: ``collection.assessments.service.issue`` for every employer (its declaration of the month with
  random bases, some below the floor and above the cap), as the clerk — one transaction per employer, audit entries
  and ``AssessmentIssued`` events as in production.
- **tax posting**: ``collection.payments.service.receive_batch`` in batches of 10 000 person lines, as the tax
  bureau's client, for the employers that paid (nine in ten; the tenth is left in arrears). The lines are dicts as
  the JSON body would give them (building them is not timed; HTTP and JSON parsing are not included).
- **agency posting**: the ``collection.payments.collected.v1`` events stage 2 wrote to collection's outbox (1 000
  lines each) applied to accounts in-process through accounts' own consumer code (``EventConsumer`` built from the
  accounts service spec, one event per transaction: inbox row, ``posting.service.post_collected``, commit) — without
  NATS: the relay and the bus are measured by ``bench.backbone``.

Checks (any mismatch exits with status 1 and writes no results): every assessment line equals an independent integer
computation (clamp to [floor, cap], half-up once per side); assessed = collected = posted for the paid set, in line
count and in fen, per fund; the individual accounts hold exactly the PEN_EMP individual parts of the paid persons,
one contribution entry each; one contribution month per posted person line; nothing rejected, unmatched or held;
the unpaid employers' lines are still open; both audit chains verify.

Each stage is timed unit by unit (wall and CPU seconds). A small sample from the middle of each stage (10 employers,
one tax batch, 10 events) runs under cProfile instead and is left out of the figures; its top frames are in the
output (``profile``), to say where the time goes. ``--no-profile`` times every unit.

Results: ``bench/results/money_in.json``.
"""

import argparse
import cProfile
import json
import os
import platform
import pstats
import random
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import func, insert, select
from sqlmodel import Session
from stdnum.cn import ric, uscc as uscc_mod

from services.accounts import models as accounts_models
from services.accounts.models import (
    AccountEntry,
    ContributionMonth,
    IndividualAccount,
    PostingSuspense,
)
from services.collection import models as collection_models
from services.collection.assessments import service as assessments
from services.collection.models import (
    Assessment,
    AssessmentLine,
    RegistryEmployer,
    RegistryEnrolment,
    RegistryPerson,
    TaxPayment,
    TaxPaymentBatch,
)
from services.collection.parameters import service as parameters
from services.collection.parameters.schemas import ParametersDocument, ParametersProposal, default_document
from services.collection.payments import service as payments
from services.kernel import context
from services.kernel.audit import verify_chain
from services.kernel.context import Actor
from services.kernel.db import make_engine, unit_of_work
from services.kernel.events import new_event_id
from services.kernel.inbox import EventConsumer, _Delivery
from services.kernel.migrations import upgrade_database
from services.kernel.models import InboxMessage, OutboxMessage
from services.kernel.service_app import merge_consumer_specs
from sifund import services as catalogue

RESULTS = Path(__file__).parent / "results" / "money_in.json"
PERIOD = 202609
DUE = date(2026, 10, 15)  # due_day 15 of the following month (the default document)
PAID_ON = "2026-10-12"  # before the due date: no late fee
CITY, DISTRICT = "150100", "150102"
FUNDS = ("PEN_EMP", "UNEMP", "INJURY")
AVERAGE_WAGE_FEN = 800_000  # floor 480 000, cap 2 400 000
FLOOR_FEN, CAP_FEN = 480_000, 2_400_000
# (employer numerator, individual numerator, denominator) of each fund's rates; INJURY by risk class.
RATES = {"PEN_EMP": (16, 8, 100), "UNEMP": (5, 5, 1000)}
INJURY_RATES = {1: (2, 1000), 2: (4, 1000), 3: (7, 1000), 4: (9, 1000)}
TAX_BATCH = 10_000
CHUNK = 10_000
COLLECTED = "collection.payments.collected.v1"
POSTED = "accounts.contributions.posted.v1"
CLERK = Actor(id="bench.clerk", role="agency_clerk", region=DISTRICT)
ACCOUNTANT = Actor(id="bench.accountant", role="accountant", region=CITY)
APPROVER = Actor(id="bench.approver", role="agency_approver", region=CITY)
TAX = Actor(id="bench.tax_bureau", role="tax_system")


def fail(message: str) -> None:
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def citizen_id(serial: int) -> str:
    born = date(1966, 1, 1) + timedelta(days=serial // 500)
    body = f"110105{born:%Y%m%d}{serial % 500 * 2 + serial % 2:03d}"
    return body + ric.calc_check_digit(body + "0")


def make_uscc(serial: int) -> str:
    body = f"91150102{serial:09d}"
    return body + uscc_mod.calc_check_digit(body)


def half_up(numerator: int, denominator: int) -> int:
    """round(numerator / denominator) half-up, for non-negative integers: an independent check of the fen rule."""
    return (2 * numerator + denominator) // (2 * denominator)


def expected_parts(base_fen: int, fund: str, risk_class: int) -> tuple[int, int]:
    base = min(max(base_fen, FLOOR_FEN), CAP_FEN)
    if fund == "INJURY":
        num, den = INJURY_RATES[risk_class]
        return half_up(base * num, den), 0
    employer, individual, den = RATES[fund]
    return half_up(base * employer, den), half_up(base * individual, den)


def yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


# -- seed --------------------------------------------------------------------------------------------------------------


def plan(lines: int, rng: random.Random) -> list[dict]:
    """Employers with their staff: [{serial, id, uscc, risk_class, paid, staff: [(person id, serial, base fen)]}]."""
    persons = -(-lines // len(FUNDS))
    employers, serial = [], 0
    while serial < persons:
        size = min(rng.randint(10, 190), persons - serial)
        index = len(employers)
        staff = []
        for _ in range(size):
            roll = rng.random()
            base = (rng.randint(300_000, FLOOR_FEN - 1) if roll < 0.05 else
                    rng.randint(CAP_FEN + 1, 4_000_000) if roll < 0.08 else rng.randint(FLOOR_FEN, CAP_FEN))
            staff.append((new_event_id(), serial, base))
            serial += 1
        employers.append({"serial": index + 1, "id": new_event_id(), "uscc": make_uscc(index + 1),
                          "risk_class": index % 4 + 1, "paid": index % 10 != 9, "staff": staff})
    return employers


def insert_chunked(session: Session, table, rows) -> int:  # noqa: ANN001
    count, chunk = 0, []
    for row in rows:
        chunk.append(row)
        if len(chunk) == CHUNK:
            session.execute(insert(table), chunk)
            count, chunk = count + len(chunk), []
    if chunk:
        session.execute(insert(table), chunk)
        count += len(chunk)
    return count


def seed(collection, accounts, employers: list[dict]) -> dict:  # noqa: ANN001
    cids = seed_collection(collection, employers)
    seed_accounts(accounts, employers, cids)
    return cids


def seed_collection(collection, employers: list[dict]) -> dict[str, str]:  # noqa: ANN001
    """Collection's registry mirror and its approved parameters; person id → citizen id."""
    cids: dict[str, str] = {}
    for employer in employers:
        for person_id, serial, _ in employer["staff"]:
            cids[person_id] = citizen_id(serial)
    with Session(collection) as session:
        insert_chunked(session, RegistryEmployer.__table__, (
            {"employer_id": e["id"], "uscc": e["uscc"], "name": f"单位{e['serial']}", "region": DISTRICT,
             "unit_type": "enterprise", "industry_risk_class": e["risk_class"], "status": "active",
             "source_event_id": "0"} for e in employers))
        insert_chunked(session, RegistryPerson.__table__, (
            {"person_id": p, "citizen_id": cids[p], "name": f"职工{s}", "life_status": "alive",
             "source_event_id": "0"} for e in employers for p, s, _ in e["staff"]))
        insert_chunked(session, RegistryEnrolment.__table__, (
            {"enrolment_id": new_event_id(), "person_id": p, "fund": fund, "employer_id": e["id"],
             "start_period": 202001, "end_period": None, "status": "active", "source_event_id": "0"}
            for e in employers for p, _, _ in e["staff"] for fund in FUNDS))
        session.commit()
    with context.trace(actor=ACCOUNTANT), unit_of_work(collection) as session:
        proposal = ParametersProposal(region=CITY, valid_from=202601, reason="2026 年度费率基数",
                                      document=ParametersDocument.model_validate(default_document(AVERAGE_WAGE_FEN)))
        proposed = parameters.propose(session, proposal)
    with context.trace(actor=APPROVER), unit_of_work(collection) as session:
        parameters.decide(session, proposed.id, approve=True, reason="同意")
    return cids


def seed_accounts(accounts, employers: list[dict], cids: dict[str, str]) -> None:  # noqa: ANN001
    """Accounts' registry tables, as the ACCOUNTS stream and the accounts API would have put them there."""
    now = datetime.now(UTC)
    with Session(accounts) as session:
        insert_chunked(session, accounts_models.Employer.__table__, (
            {"id": e["id"], "uscc": e["uscc"], "name": f"单位{e['serial']}", "region": DISTRICT,
             "unit_type": "enterprise", "industry_risk_class": e["risk_class"], "status": "active",
             "registered_at": now, "registered_by": "bench", "version": 1} for e in employers))
        insert_chunked(session, accounts_models.Person.__table__, (
            {"id": p, "citizen_id": cids[p], "name": f"职工{s}", "sex": "M" if int(cids[p][16]) % 2 else "F",
             "birth_date": date(int(cids[p][6:10]), int(cids[p][10:12]), int(cids[p][12:14])), "nationality": "CHN",
             "household_type": "urban", "region": DISTRICT, "life_status": "alive", "registered_at": now,
             "registered_by": "bench", "version": 1}
            for e in employers for p, s, _ in e["staff"]))
        insert_chunked(session, accounts_models.Enrolment.__table__, (
            {"id": new_event_id(), "person_id": p, "fund": fund, "fund_group": "PENSION" if fund == "PEN_EMP" else fund,
             "employer_id": e["id"], "start_period": 202001, "end_period": None, "status": "active",
             "created_at": now, "created_by": "bench", "version": 1}
            for e in employers for p, _, _ in e["staff"] for fund in FUNDS))
        session.commit()


# -- stages ------------------------------------------------------------------------------------------------------------


class Meter:
    """Wall and CPU time of a stage, unit by unit (an employer, a batch, an event). A few units from the middle of the
    stage run under cProfile instead: they are left out of the timed figures (seconds and lines), so the profiler's
    overhead never reaches them, and their top frames say where the time goes."""

    def __init__(self, units: int, sample: int):
        first = units // 2
        self.sample = set(range(first, min(units, first + sample)))
        self.seconds = self.cpu_seconds = 0.0
        self.lines = self.sampled_lines = 0
        self.profiler = cProfile.Profile(time.process_time)  # CPU time: other load on the machine does not count

    @contextmanager
    def unit(self, index: int, lines: int):  # noqa: ANN201
        if index in self.sample:
            self.profiler.enable()
            try:
                yield
            finally:
                self.profiler.disable()
                self.sampled_lines += lines
            return
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - started
            self.cpu_seconds += time.process_time() - cpu_started
            self.lines += lines

    def figures(self) -> dict:
        return {"lines": self.lines, "seconds": round(self.seconds, 2), "lines_per_s": rate(self.lines, self.seconds),
                "cpu_seconds": round(self.cpu_seconds, 2), "lines_per_cpu_s": rate(self.lines, self.cpu_seconds)}

    def profile(self, n: int = 12) -> dict | None:
        if not self.sample:
            return None
        stats = pstats.Stats(self.profiler).stats  # (file, line, function) → (calls, ncalls, own, cumulative, …)
        total = sum(own for _, _, own, _, _ in stats.values()) or 1.0

        def row(key: tuple, value: tuple) -> str:
            file, line, function = key
            for prefix in (f"{Path.cwd()}/", ".venv/lib/python3.11/site-packages/", sys.prefix + "/"):
                file = file.removeprefix(prefix)
            return (f"{value[2] / total:5.1%} own {value[2]:6.2f} s, cum {value[3]:6.2f} s, {value[1]:>8} calls  "
                    f"{file}:{line}({function})")

        by_own = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:n]
        by_cumulative = sorted(stats.items(), key=lambda kv: kv[1][3], reverse=True)[:n]
        return {"units": len(self.sample), "lines": self.sampled_lines, "profiled_seconds": round(total, 2),
                "top_own_time": [row(k, v) for k, v in by_own],
                "top_cumulative": [row(k, v) for k, v in by_cumulative]}


def assess(collection, employers: list[dict], meter: Meter) -> None:  # noqa: ANN001
    with context.trace(actor=CLERK):
        for index, employer in enumerate(employers):
            lines = [assessments.InputLine(line_no=i, person_id=p, citizen_id=None, base_fen=base)
                     for i, (p, _, base) in enumerate(employer["staff"], start=1)]
            with meter.unit(index, len(lines) * len(FUNDS)), unit_of_work(collection) as session:
                assessments.issue(session, employer["id"], PERIOD, lines, source="api")


def tax_batches(collection, paid_ids: list[str], cids: dict[str, str], usccs: dict[str, str]):  # noqa: ANN001, ANN201
    """Batches of at most 10 000 tax lines for the paid employers' assessment lines, built from the database (read
    in short sessions: a SQLite session holds the write lock from its first statement)."""
    c = AssessmentLine.__table__.c
    serial = 0
    batch: list[tuple[int, dict]] = []
    for start in range(0, len(paid_ids), 200):
        with Session(collection) as session:
            rows = session.execute(
                select(c.employer_id, c.person_id, c.fund, c.employer_fen, c.individual_fen)
                .where(c.employer_id.in_(paid_ids[start:start + 200]), c.period == PERIOD)
                .order_by(c.employer_id, c.person_id, c.fund)).all()
        for employer_id, person_id, fund, employer_fen, individual_fen in rows:
            serial += 1
            uscc = usccs[employer_id]
            batch.append((len(batch) + 1, {
                "tax_line_id": f"SW{PERIOD}-{serial:08d}", "payer_uscc": uscc, "citizen_id": cids[person_id],
                "fund": fund, "period": PERIOD, "employer_amount": yuan(employer_fen),
                "individual_amount": yuan(individual_fen), "late_fee_amount": "0.00",
                "method": "bank_withholding", "voucher_no": f"PZ-{uscc}-{PERIOD}", "paid_date": PAID_ON}))
            if len(batch) == TAX_BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def post_tax(collection, batches, meter: Meter) -> tuple[dict, float]:  # noqa: ANN001
    """Receive every batch; (counts, seconds spent building the lines)."""
    counts = defaultdict(int)
    building = 0.0
    with context.trace(actor=TAX):
        iterator = iter(batches)
        while True:
            started = time.perf_counter()
            batch = next(iterator, None)
            building += time.perf_counter() - started
            if batch is None:
                break
            with meter.unit(counts["batches"], len(batch)), unit_of_work(collection) as session:
                result = payments.receive_batch(session, batch, source_format="json", region=CITY)
            for name in ("lines", "accepted", "matched", "unmatched", "rejected", "duplicates"):
                counts[name] += getattr(result, name)
            counts["batches"] += 1
    return dict(counts), building


def accounts_consumer(accounts) -> EventConsumer:  # noqa: ANN001
    """Accounts' own consumer of stream COLLECTION (the handlers its service spec declares), without a bus."""
    [spec] = [s for s in merge_consumer_specs(catalogue.spec("accounts").consumers) if s.stream == "COLLECTION"]
    return EventConsumer(service="accounts", stream="COLLECTION", engine=accounts, bus=None, handlers=spec.handlers,
                         ignores=spec.ignores)


def collected_events(collection) -> list[int]:  # noqa: ANN001
    """The outbox sequence numbers of the PaymentsCollected events, in publication order."""
    with Session(collection) as session:
        return list(session.execute(select(OutboxMessage.seq).where(OutboxMessage.event_type == COLLECTED)
                                    .order_by(OutboxMessage.seq)).scalars())


def post_agency(collection, consumer: EventConsumer, events: list[int], meter: Meter) -> None:  # noqa: ANN001
    """Apply each event as accounts' consumer does; reading it from collection's outbox is not timed."""
    for index, seq in enumerate(events):
        with Session(collection) as session:
            raw = session.get(OutboxMessage, seq).envelope.encode()
        delivery = _Delivery(raw=raw, num_delivered=1)
        with meter.unit(index, len(json.loads(raw)["data"]["lines"])):
            consumer._apply_batch([delivery])  # noqa: SLF001 - the consumer's transaction, without NATS
        if delivery.error is not None or delivery.outcome != "ack":
            fail(f"accounts could not apply an event: {delivery.error}")


# -- checks ------------------------------------------------------------------------------------------------------------


def check_assessment(collection, employers: list[dict]) -> dict:  # noqa: ANN001
    expected = {}
    for e in employers:
        for person_id, _, base in e["staff"]:
            for fund in FUNDS:
                expected[(person_id, fund)] = expected_parts(base, fund, e["risk_class"])
    c = AssessmentLine.__table__.c
    totals = {"lines": 0, "employer_fen": 0, "individual_fen": 0}
    wrong = 0
    with Session(collection) as session:
        for person_id, fund, employer_fen, individual_fen in session.execute(
                select(c.person_id, c.fund, c.employer_fen, c.individual_fen).where(c.period == PERIOD)):
            if expected.get((person_id, fund)) != (employer_fen, individual_fen):
                wrong += 1
            totals["lines"] += 1
            totals["employer_fen"] += employer_fen
            totals["individual_fen"] += individual_fen
        assessments_count = session.execute(select(func.count()).select_from(Assessment)).scalar_one()
    if wrong or totals["lines"] != len(expected):
        fail(f"assessment: {wrong} lines differ from the independent computation, {totals['lines']} lines for "
             f"{len(expected)} expected")
    if assessments_count != len(employers):
        fail(f"{assessments_count} assessments for {len(employers)} employers")
    return totals


def sums_by_fund(rows) -> dict[str, list[int]]:  # noqa: ANN001
    out: dict[str, list[int]] = {}
    for fund, n, employer_fen, individual_fen in rows:
        out[fund] = [int(n), int(employer_fen or 0), int(individual_fen or 0)]
    return out


def verify(collection, accounts, employers: list[dict]) -> dict:  # noqa: ANN001
    paid_ids = {e["id"] for e in employers if e["paid"]}
    paid_persons = {p for e in employers if e["paid"] for p, _, _ in e["staff"]}
    line = AssessmentLine.__table__.c
    with Session(collection) as session:
        assessed: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # of the paid employers, whatever status
        for employer_id, fund, n, employer_fen, individual_fen in session.execute(
                select(line.employer_id, line.fund, func.count(), func.sum(line.employer_fen),
                       func.sum(line.individual_fen)).where(line.period == PERIOD)
                .group_by(line.employer_id, line.fund)):
            if employer_id in paid_ids:
                totals = assessed[fund]
                totals[0], totals[1], totals[2] = totals[0] + n, totals[1] + employer_fen, totals[2] + individual_fen
        assessed = dict(assessed)
        open_lines = session.execute(select(func.count()).select_from(AssessmentLine)
                                     .where(line.status == "open")).scalar_one()
        paid_lines = session.execute(select(func.count()).select_from(AssessmentLine)
                                     .where(line.status == "paid")).scalar_one()
        pay = TaxPayment.__table__.c
        collected = sums_by_fund(session.execute(
            select(pay.fund, func.count(), func.sum(pay.employer_fen), func.sum(pay.individual_fen))
            .where(pay.period == PERIOD, pay.match_status == "matched").group_by(pay.fund)).all())
        late_fees = session.execute(select(func.coalesce(func.sum(pay.late_fee_fen), 0))).scalar_one()
        batches = session.execute(select(func.count()).select_from(TaxPaymentBatch)).scalar_one()
    unpaid_lines = sum(len(e["staff"]) for e in employers if not e["paid"]) * len(FUNDS)
    if open_lines != unpaid_lines or paid_lines != len(paid_persons) * len(FUNDS):
        fail(f"{open_lines} open / {paid_lines} paid lines, expected {unpaid_lines} / {len(paid_persons) * 3}")

    posted: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    credited = 0
    with Session(accounts) as session:
        for envelope in session.execute(select(OutboxMessage.envelope)
                                        .where(OutboxMessage.event_type == POSTED)).scalars():
            for ln in json.loads(envelope)["data"]["lines"]:
                totals = posted[ln["fund"]]
                totals[0] += 1
                totals[1] += ln["employer_fen"]
                totals[2] += ln["individual_fen"]
                credited += ln["credited_fen"]
        held = session.execute(select(func.count()).select_from(PostingSuspense)).scalar_one()
        balances = session.execute(select(func.count(), func.sum(IndividualAccount.balance_fen))).one()
        entries = session.execute(select(func.count(), func.count(func.distinct(AccountEntry.person_id)))
                                  .where(AccountEntry.entry_type == "contribution")).one()
        months = session.execute(select(func.count()).select_from(ContributionMonth)).scalar_one()
        inbox = session.execute(select(func.count()).select_from(InboxMessage)).scalar_one()
    posted = {fund: list(v) for fund, v in posted.items()}
    pension_individual = assessed.get("PEN_EMP", [0, 0, 0])[2]
    problems = []
    if not (assessed == collected == posted):
        problems.append(f"per fund [lines, employer fen, individual fen]: assessed {assessed} collected {collected} "
                        f"posted {posted}")
    if late_fees:
        problems.append(f"{late_fees} fen of late fees collected, none expected")
    if held:
        problems.append(f"{held} lines held in posting suspense")
    if (balances[0], int(balances[1] or 0)) != (len(paid_persons), pension_individual) or credited != \
            pension_individual:
        problems.append(f"individual accounts {balances[0]} holding {balances[1]} fen (credited {credited}), expected "
                        f"{len(paid_persons)} holding {pension_individual}")
    if tuple(entries) != (len(paid_persons), len(paid_persons)):
        problems.append(f"{entries[0]} contribution entries for {entries[1]} persons, expected one per paid person")
    if months != len(paid_persons) * len(FUNDS):
        problems.append(f"{months} contribution months, expected {len(paid_persons) * len(FUNDS)}")
    for name, engine in (("collection", collection), ("accounts", accounts)):
        chain = verify_chain(engine)
        if not chain.ok:
            problems.append(f"{name} audit chain: {chain.problem}")
    if problems:
        fail("; ".join(problems))
    return {"assessed_paid": assessed, "collected": collected, "posted": posted, "credited_fen": credited,
            "unpaid_open_lines": open_lines, "tax_batches": batches, "events_applied": inbox,
            "individual_accounts": balances[0], "contribution_months": months}


# -- main --------------------------------------------------------------------------------------------------------------


def rate(lines: int, seconds: float) -> int:
    return round(lines / seconds) if seconds else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="person × fund lines (default 1 000 000)")
    parser.add_argument("--quick", action="store_true", help="50 000 lines, results not written")
    parser.add_argument("--no-profile", action="store_true", help="time every unit, profile none")
    parser.add_argument("--seed", type=int, default=202609)
    args = parser.parse_args()
    n = 50_000 if args.quick else args.lines
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    rng = random.Random(args.seed)
    load_before = os.getloadavg()[0]
    run_started, run_cpu_started = time.perf_counter(), time.process_time()

    with tempfile.TemporaryDirectory(prefix="sifund-money-in-") as tmp:
        collection = make_engine(f"sqlite:///{tmp}/collection.db")
        accounts = make_engine(f"sqlite:///{tmp}/accounts.db")
        upgrade_database(collection, "collection", collection_models.metadata)
        upgrade_database(accounts, "accounts", accounts_models.metadata)

        started, cpu_started = time.perf_counter(), time.process_time()
        employers = plan(n, rng)
        cids = seed(collection, accounts, employers)
        seeding = {"seconds": round(time.perf_counter() - started, 1),
                   "cpu_seconds": round(time.process_time() - cpu_started, 1)}
        persons = sum(len(e["staff"]) for e in employers)
        lines = persons * len(FUNDS)
        paid = [e for e in employers if e["paid"]]
        paid_lines = sum(len(e["staff"]) for e in paid) * len(FUNDS)
        print(f"seeded {len(employers)} employers, {persons} persons, {lines} enrolments in each service in "
              f"{seeding['seconds']} s", flush=True)

        def sample(units: int) -> int:
            return 0 if args.no_profile else units

        assessment = Meter(len(employers), sample(10))
        assess(collection, employers, assessment)
        print(f"assessment: {assessment.figures()}", flush=True)
        assessed = check_assessment(collection, employers)

        usccs = {e["id"]: e["uscc"] for e in employers}
        tax = Meter(-(-paid_lines // TAX_BATCH), sample(1))
        counts, building = post_tax(collection, tax_batches(collection, [e["id"] for e in paid], cids, usccs), tax)
        if (counts["lines"], counts["accepted"], counts["matched"]) != (paid_lines, paid_lines, paid_lines):
            fail(f"tax posting: {counts} for {paid_lines} paid lines")
        print(f"tax posting: {counts['batches']} batches, {tax.figures()}, building the lines {building:.1f} s",
              flush=True)

        events = collected_events(collection)
        agency = Meter(len(events), sample(10))
        post_agency(collection, accounts_consumer(accounts), events, agency)
        print(f"agency posting: {len(events)} events, {agency.figures()}", flush=True)

        started = time.perf_counter()
        checked = verify(collection, accounts, employers)
        verify_seconds = time.perf_counter() - started
        sizes = {"collection_db_mb": round(Path(tmp, "collection.db").stat().st_size / 2**20),
                 "accounts_db_mb": round(Path(tmp, "accounts.db").stat().st_size / 2**20)}
        collection.dispose()
        accounts.dispose()

    meters = {"assessment": assessment, "tax_posting": tax, "agency_posting": agency}
    # End to end: the time per line of each stage, summed (each stage's timed lines differ by its profiled sample).
    per_line = {key: sum(getattr(m, key) / m.lines for m in meters.values()) for key in ("seconds", "cpu_seconds")}
    load_after = os.getloadavg()[0]
    report = {
        "name": "money_in",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_1m_before": round(load_before, 2), "loadavg_1m_after": round(load_after, 2)},
        "database": "two SQLite files (collection, accounts), WAL, synchronous=FULL, BEGIN IMMEDIATE; fresh, migrated",
        "timing_note": "seconds are wall-clock; cpu_seconds is this process's CPU time (SQLite runs in-process), "
                       "less sensitive to other load on the machine. Each stage's figures leave out the units it "
                       "profiled (see profile).",
        "period": PERIOD,
        "lines": lines,
        "persons": persons,
        "employers": len(employers),
        "paid": {"employers": len(paid), "lines": paid_lines},
        "unpaid_lines_left_open": checked["unpaid_open_lines"],
        "seed": seeding,
        "stages": {
            "assessment": {
                "code": "collection.assessments.service.issue, one transaction per employer (declaration, lines, "
                        "audit, AssessmentIssued)",
                "employers": len(employers), **assessment.figures(),
            },
            "tax_posting": {
                "code": "collection.payments.service.receive_batch, batches of 10 000 person lines as dicts (no HTTP)",
                "batches": counts["batches"], **tax.figures(), "building_lines_seconds": round(building, 2),
            },
            "agency_posting": {
                "code": "accounts' EventConsumer (from the accounts service spec) applying the PaymentsCollected "
                        "events of collection's outbox in-process, one 1 000-line event per transaction: inbox row + "
                        "accounts.posting.service.post_collected + commit",
                "transport": "in-process (no NATS; bench.backbone measures the relay and the bus)",
                "events": len(events), **agency.figures(),
            },
        },
        "end_to_end": {
            "lines_per_s": round(1 / per_line["seconds"]),
            "lines_per_cpu_s": round(1 / per_line["cpu_seconds"]),
            "seconds_for_all_lines": round(per_line["seconds"] * lines),
            "cpu_seconds_for_all_lines": round(per_line["cpu_seconds"] * lines),
            "note": "a line assessed, collected and posted: the three stages' seconds per line added up; "
                    "*_for_all_lines: that rate over every line of the month",
        },
        "verified": {
            "assessment_lines_equal_independent_computation": assessed["lines"],
            "per_fund_lines_employer_fen_individual_fen": checked["posted"],
            "assessed_equals_collected_equals_posted": True,
            "pension_individual_parts_credited_fen": checked["credited_fen"],
            "individual_accounts": checked["individual_accounts"],
            "contribution_months": checked["contribution_months"],
            "held": 0, "rejected": counts["rejected"], "unmatched": counts["unmatched"], "audit_chains_ok": True,
        },
        "verify_seconds": round(verify_seconds, 1),
        "run": {"seconds": round(time.perf_counter() - run_started, 1),
                "cpu_seconds": round(time.process_time() - run_cpu_started, 1)},
        **sizes,
        "profile": {name: m.profile() for name, m in meters.items()},
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
