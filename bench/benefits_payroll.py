"""Monthly payroll throughput: ``python -m bench.benefits_payroll [--beneficiaries N] [--quick]``.

Fills a fresh, migrated benefits SQLite database (the kernel's settings: WAL, ``synchronous=FULL``,
``BEGIN IMMEDIATE``) with ``--beneficiaries`` persons (default 300 000), each with an ACTIVE pension entitlement
covering the month and an own active bank account or social security card, except planted cases that must not be
paid or must be withheld:

- 0.5 % without any active account, 0.2 % whose only account is in another name → withheld;
- 0.5 % suspended and 0.5 % ended entitlements, and entitlements of another fund → no line at all;
- 0.3 % with a closed old account beside the active one (the active one must be chosen).

Then, through the real code path (``services.benefits.payroll.service``), as the roles of the flow: the clerk
computes the run (timed: ``seconds``, ``lines_per_s``), computes it again (recomputation), another person approves,
the accountant requests funding, the cashier issues the bank file (timed), and the bank's results come back with
0.1 % failures (timed). It checks that the run's lines and total equal those computed independently from the
generated data, that ``verify_run`` is ok, that the bank file parses, its checksum and total match, it names each
payable person once with their own account, that ``PaymentsIssued`` came in ⌈lines / 1 000⌉ parts, and that the
audit chain verifies. Any discrepancy exits with status 1 and writes no results.

Results: ``bench/results/benefits_payroll.json``.
"""

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import structlog
from sqlalchemy import func, insert, select
from sqlmodel import Session
from stdnum import luhn
from stdnum.cn import ric

from services.benefits import models
from services.benefits.models import (
    BeneficiaryAccount,
    BeneficiaryPerson,
    Claim,
    Entitlement,
)
from services.benefits.payroll import bankfile, service
from services.benefits.payroll.schemas import ResultsIn
from services.contracts.benefits import MAX_LINES
from services.kernel import context
from services.kernel.audit import verify_chain
from services.kernel.context import Actor
from services.kernel.db import make_engine
from services.kernel.events import new_event_id
from services.kernel.migrations import upgrade_database
from services.kernel.models import OutboxMessage

RESULTS = Path(__file__).parent / "results" / "benefits_payroll.json"
FUND = "PEN_EMP"
PERIOD = 202503
REGION = "150102"
CHUNK = 10_000
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
CLERK = Actor(id="bench.clerk", role="agency_clerk", region="150100")
APPROVER = Actor(id="bench.approver", role="agency_approver", region="150100")
ACCOUNTANT = Actor(id="bench.accountant", role="accountant", region="150100")
CASHIER = Actor(id="bench.cashier", role="cashier", region="150100")
BANK = Actor(id="bench.bank", role="bank_system")


def citizen_id(serial: int) -> str:
    born = date(1940, 1, 1) + timedelta(days=serial // 500)
    body = f"110105{born:%Y%m%d}{serial % 500 * 2 + serial % 2:03d}"
    return body + ric.calc_check_digit(body + "0")


def card(serial: int) -> str:
    body = f"622202{serial:012d}"
    return body + luhn.calc_check_digit(body)


def populate(engine, n: int, rng: random.Random) -> dict:  # noqa: ANN001
    """Insert the persons, accounts, claims and entitlements; return what the payroll must come to."""
    now = datetime.now(UTC)
    expected = {"lines": 0, "total_fen": 0, "withheld": 0, "accounts": {}, "planted": {}}
    planted = expected["planted"]
    persons, accounts, claims, entitlements = [], [], [], []
    account_serial = 0
    for serial in range(n):
        person_id = new_event_id()
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if serial % 2 else "")
        persons.append({"person_id": person_id, "citizen_id": citizen_id(serial), "name": name, "sex": "M",
                        "birth_date": date(1960, 1, 1), "region": REGION, "life_status": "alive",
                        "source_event_id": new_event_id()})
        roll = rng.random()
        case = ("no_account" if roll < 0.005 else "other_name" if roll < 0.007 else "suspended" if roll < 0.012
                else "ended" if roll < 0.017 else "closed_old" if roll < 0.020 else "other_fund" if roll < 0.025
                else "normal")
        planted[case] = planted.get(case, 0) + 1
        amount = rng.randint(120_000, 900_000)
        if case != "no_account":
            account_serial += 1
            account_id = new_event_id()
            holder = name if case != "other_name" else name + "之子"
            accounts.append({"bank_account_id": account_id, "person_id": person_id,
                             "kind": "ss_card" if serial % 7 == 0 else "bank_account", "bank_name": "代发银行",
                             "account_no": card(account_serial), "holder_name": holder, "status": "active"})
            if case == "closed_old":
                account_serial += 1
                accounts.append({"bank_account_id": new_event_id(), "person_id": person_id, "kind": "bank_account",
                                 "bank_name": "代发银行", "account_no": card(account_serial), "holder_name": name,
                                 "status": "closed"})
        claim_id = new_event_id()
        fund = "UNEMP" if case == "other_fund" else FUND
        end = 202412 if case == "ended" else None
        status = "suspended" if case == "suspended" else "active"
        claims.append({"id": claim_id, "person_id": person_id, "kind": "basic_pension", "fund": fund,
                       "importance": "important", "region": REGION, "status": "approved",
                       "effective_period": 202001, "end_period": end, "monthly_amount_fen": amount,
                       "computation": "{}", "verification": "{}", "large_amount": False, "submitted_at": now,
                       "submitted_by": "bench"})
        entitlements.append({"id": new_event_id(), "claim_id": claim_id, "person_id": person_id,
                             "kind": "basic_pension", "fund": fund, "monthly_amount_fen": amount,
                             "start_period": 202001, "end_period": end, "status": status, "region": REGION,
                             "created_at": now})
        if case in ("suspended", "ended", "other_fund"):
            continue
        if case in ("no_account", "other_name"):
            expected["withheld"] += 1
            continue
        expected["lines"] += 1
        expected["total_fen"] += amount
        expected["accounts"][person_id] = (card(account_serial - 1) if case == "closed_old"
                                           else card(account_serial), name)
    with Session(engine) as session:
        for table, rows in ((BeneficiaryPerson, persons), (BeneficiaryAccount, accounts), (Claim, claims),
                            (Entitlement, entitlements)):
            for start in range(0, len(rows), CHUNK):
                session.execute(insert(table.__table__), rows[start:start + CHUNK])
        session.commit()
    return expected


def fail(message: str) -> None:
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def timed(actor: Actor, fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
    with context.trace(actor=actor):
        started = time.perf_counter()
        result = fn(*args, **kwargs)
        return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--beneficiaries", type=int, default=300_000)
    parser.add_argument("--quick", action="store_true", help="10 000 beneficiaries, results not written")
    parser.add_argument("--seed", type=int, default=20250301)
    args = parser.parse_args()
    n = 10_000 if args.quick else args.beneficiaries
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    rng = random.Random(args.seed)
    load_before = os.getloadavg()[0]

    with tempfile.TemporaryDirectory(prefix="sifund-payroll-") as tmp:
        engine = make_engine(f"sqlite:///{tmp}/benefits.db")
        upgrade_database(engine, "benefits", models.metadata)
        started = time.perf_counter()
        expected = populate(engine, n, rng)
        print(f"populated {n} beneficiaries in {time.perf_counter() - started:.1f} s: {expected['planted']}")

        with Session(engine, expire_on_commit=False) as session:
            computed, seconds = timed(CLERK, service.compute_run, session, FUND, PERIOD)
        run = computed.run
        print(f"run: {run.lines} lines, {run.total_fen} fen in {seconds:.2f} s")
        if (run.lines, run.total_fen) != (expected["lines"], expected["total_fen"]):
            fail(f"run {run.lines}/{run.total_fen} ≠ expected {expected['lines']}/{expected['total_fen']}")
        with Session(engine) as session:
            withheld = service.status_totals(session, run.id).get(service.WITHHELD, (0, 0))[0]
        if withheld != expected["withheld"]:
            fail(f"{withheld} withheld lines, expected {expected['withheld']}")

        with Session(engine, expire_on_commit=False) as session:
            again, recompute_seconds = timed(CLERK, service.compute_run, session, FUND, PERIOD)
        if not again.recomputed or (again.run.id, again.run.total_fen) != (run.id, run.total_fen):
            fail("the recomputation did not give the same run")
        with Session(engine) as session:
            verification, verify_seconds = timed(APPROVER, service.verify_run, session, run.id)
        if not verification.ok:
            fail(f"verify: {verification.problems}")
        with Session(engine, expire_on_commit=False) as session:
            timed(APPROVER, service.approve, session, run.id)
        with Session(engine, expire_on_commit=False) as session:
            timed(ACCOUNTANT, service.request_funding, session, run.id)

        with Session(engine, expire_on_commit=False) as session:
            issued, file_seconds = timed(CASHIER, service.issue_bank_file, session, run.id)
        file = issued.file
        if issued.held_back or issued.offset_fen:
            fail("nothing was suspended or offset after approval, yet lines were held back or offset")
        print(f"bank file: {file.lines} lines, {len(file.content.encode())} bytes in {file_seconds:.2f} s")
        parsed = bankfile.parse_payment_file(file.content)
        if (parsed.checksum, len(parsed.lines), parsed.total_fen) != (file.checksum, run.lines, run.total_fen):
            fail("bank file checksum, count or total does not match the run")
        with Session(engine) as session:
            person_of = dict(session.execute(select(models.PayrollLine.id, models.PayrollLine.person_id)
                                             .where(models.PayrollLine.run_id == run.id)).all())
            issued_parts = session.execute(select(func.count()).select_from(OutboxMessage)
                                           .where(OutboxMessage.event_type == "benefits.payments.issued.v1")
                                           ).scalar_one()
        paid_persons = [person_of[ln.payroll_line_id] for ln in parsed.lines]
        if len(set(paid_persons)) != len(paid_persons):
            fail("a person appears twice in the bank file")
        wrong = [p for p, ln in zip(paid_persons, parsed.lines, strict=True)
                 if expected["accounts"].get(p) != (ln.account_no, ln.holder_name)]
        if wrong:
            fail(f"{len(wrong)} lines are not paid into the person's own active account")
        if issued_parts != -(-run.lines // MAX_LINES):
            fail(f"{issued_parts} PaymentsIssued parts for {run.lines} lines")

        results = [{"line_no": ln.line_no, "payroll_line_id": ln.payroll_line_id,
                    "result": "failed" if rng.random() < 0.001 else "paid", "reason": None} for ln in parsed.lines]
        for r in results:
            if r["result"] == "failed":
                r["reason"] = "账户已销户"
        body = ResultsIn.model_validate({"checksum": file.checksum, "lines": results})
        with Session(engine, expire_on_commit=False) as session:
            applied, results_seconds = timed(BANK, service.import_results, session, file.id, body)
        failed = sum(1 for r in results if r["result"] == "failed")
        if (applied.applied, applied.failed[0], applied.file.status) != (run.lines, failed, "settled"):
            fail(f"results: {applied.applied} applied, {applied.failed[0]} failed, file {applied.file.status}")
        if applied.paid[1] + applied.failed[1] != run.total_fen:
            fail("paid + returned ≠ the approved total (R5)")
        print(f"results: {applied.applied} lines ({failed} failed) in {results_seconds:.2f} s")
        chain = verify_chain(engine)
        if not chain.ok:
            fail(f"audit chain: {chain.problem}")
        engine.dispose()

    load_after = os.getloadavg()[0]
    report = {
        "name": "benefits_payroll",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_1m_before": round(load_before, 2), "loadavg_1m_after": round(load_after, 2)},
        "database": "SQLite (WAL, synchronous=FULL, BEGIN IMMEDIATE), fresh and migrated",
        "beneficiaries": n,
        "planted": expected["planted"],
        "lines": run.lines,
        "withheld_lines": expected["withheld"],
        "total_fen": run.total_fen,
        "seconds": round(seconds, 2),
        "lines_per_s": round((run.lines + expected["withheld"]) / seconds),
        "recompute_seconds": round(recompute_seconds, 2),
        "verify_seconds": round(verify_seconds, 2),
        "bank_file": {"lines": file.lines, "bytes": len(file.content.encode()), "seconds": round(file_seconds, 2),
                      "lines_per_s": round(file.lines / file_seconds), "payments_issued_events": issued_parts},
        "bank_results": {"lines": applied.applied, "failed": failed, "seconds": round(results_seconds, 2),
                         "lines_per_s": round(applied.applied / results_seconds)},
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
        print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
