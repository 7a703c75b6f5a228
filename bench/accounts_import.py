"""Bulk import throughput: ``python -m bench.accounts_import [--rows N] [--bad-share F] [--quick]``.

Generates a persons CSV of ``--rows`` rows (default 100 000) in which ``--bad-share`` (default 1 %) are planted bad
rows, spread at random over the file, each with a known reason:

=============================  ===============================================================================
code                           planted as
=============================  ===============================================================================
INVALID_CITIZEN_ID             a wrong check digit; a birth date that does not exist (check digit right)
DUPLICATE_IN_FILE              the citizen id of an earlier good row
PERSON_ALREADY_REGISTERED      the citizen id of a person stored before the run
OUT_OF_REGION                  a district outside the importing clerk's city
SEX_MISMATCH                   declared sex contradicting the id
BIRTH_DATE_MISMATCH            declared birth date contradicting the id
REQUIRED_FIELD_MISSING         no name
INVALID_REGION_CODE            a region code that does not exist
INVALID_HOUSEHOLD_TYPE         an unknown household type
=============================  ===============================================================================

and imports it through the real code path (``services.accounts.imports.service.run_import``: parse, row checks,
duplicate checks per chunk, Core inserts, outbox events, audit chain) into a fresh, migrated SQLite database with the
kernel's settings (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``), as a city clerk, in ``per_row`` mode. It then
checks that exactly the good rows were stored, that every planted bad row was reported with its reason at its row
number and nothing else was, that the events carry every stored person once in batches of at most 1 000, and that the
audit chain verifies. A second run imports the good rows alone in ``all_or_nothing`` mode (validate everything, then
one transaction). Any discrepancy exits with status 1 and writes no results.

Results: ``bench/results/accounts_import.json``.
"""

import argparse
import json
import os
import platform
import random
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
from services.accounts.imports.service import OVERLAP_CODE, run_import
from services.accounts.models import ImportRejection, Person
from services.contracts.accounts import MAX_BATCH_ITEMS
from services.kernel import context
from services.kernel.audit import verify_chain
from services.kernel.context import Actor
from services.kernel.db import make_engine
from services.kernel.migrations import upgrade_database
from services.kernel.models import OutboxMessage

RESULTS = Path(__file__).parent / "results" / "accounts_import.json"
HEADER = ["公民身份号码", "姓名", "行政区划代码", "性别", "出生日期", "户口性质", "联系电话", "地址"]
CLERK = Actor(id="bench.clerk", role="agency_clerk", region="150100")  # 呼和浩特市: covers 1501xx
DISTRICTS = ["150102", "150103", "150104", "150105"]
ID_AREA = "110105"  # where the persons were born (the id prefix); any valid county code
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
REASONS = [
    ("INVALID_CITIZEN_ID", "check_digit"),
    ("INVALID_CITIZEN_ID", "birth_date"),
    ("DUPLICATE_IN_FILE", None),
    ("PERSON_ALREADY_REGISTERED", None),
    ("OUT_OF_REGION", None),
    ("SEX_MISMATCH", None),
    ("BIRTH_DATE_MISMATCH", None),
    ("REQUIRED_FIELD_MISSING", None),
    ("INVALID_REGION_CODE", None),
    ("INVALID_HOUSEHOLD_TYPE", None),
]


def citizen_id(serial: int) -> str:
    """Distinct valid ids: 500 per birth date (the sequence's parity gives the sex), dates from 1950 on."""
    born = date(1950, 1, 1) + timedelta(days=serial // 500)
    body = f"{ID_AREA}{born:%Y%m%d}{serial % 500 * 2 + serial % 2:03d}"
    return body + ric.calc_check_digit(body + "0")


def good_row(serial: int, rng: random.Random) -> list[str]:
    cid = citizen_id(serial)
    declare = serial % 3 == 0  # a third of the rows declare sex and birth date (checked against the id)
    sex = ("男" if int(cid[16]) % 2 else "女") if declare else ""
    born = f"{cid[6:10]}-{cid[10:12]}-{cid[12:14]}" if declare else ""
    name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if serial % 2 else "")
    return [cid, name, DISTRICTS[serial % len(DISTRICTS)], sex, born, "城镇" if serial % 5 else "农村",
            f"1{serial % 10**10:010d}", f"呼和浩特市第{serial % 300}街{serial % 97}号"]


def bad_row(code: str, variant: str | None, serial: int, good: list[list[str]], seeded: list[str],
            rng: random.Random) -> list[str]:
    row = good_row(serial, rng)
    cid = row[0]
    if code == "INVALID_CITIZEN_ID" and variant == "check_digit":
        row[0] = cid[:-1] + ("0" if cid[-1] != "0" else "1")
    elif code == "INVALID_CITIZEN_ID":
        body = f"{ID_AREA}1980{13:02d}01{serial % 1000:03d}"  # month 13
        row[0] = body + ric.calc_check_digit(body + "0")
    elif code == "DUPLICATE_IN_FILE":
        row = [*rng.choice(good)]
        row[1] += "（重复）"
    elif code == "PERSON_ALREADY_REGISTERED":
        row[0], row[3], row[4] = seeded.pop(), "", ""
    elif code == "OUT_OF_REGION":
        row[2] = "150202"  # 包头市东河区
    elif code == "SEX_MISMATCH":
        row[3] = "女" if int(cid[16]) % 2 else "男"
    elif code == "BIRTH_DATE_MISMATCH":
        row[4] = f"{cid[6:10]}-{cid[10:12]}-{int(cid[12:14]) % 28 + 1:02d}"
        if row[4] == f"{cid[6:10]}-{cid[10:12]}-{cid[12:14]}":
            row[4] = f"{int(cid[6:10]) + 1}-{cid[10:12]}-{cid[12:14]}"
    elif code == "REQUIRED_FIELD_MISSING":
        row[1] = ""
    elif code == "INVALID_REGION_CODE":
        row[2] = "159999"
    elif code == "INVALID_HOUSEHOLD_TYPE":
        row[5] = "城里"
    return row


def csv_line(cells: list[str]) -> str:
    return ",".join(cells) + "\r\n"  # no cell needs quoting


def generate(rows: int, bad_share: float, seed: int = 20260401) -> tuple[bytes, dict[int, str], bytes, int]:
    """(file, {row_no: expected code}, file of the seeded persons, number of good rows)."""
    rng = random.Random(seed)
    n_bad = round(rows * bad_share)
    n_good = rows - n_bad
    per_reason = Counter(REASONS[i % len(REASONS)] for i in range(n_bad))
    plan = [r for r, k in per_reason.items() for _ in range(k)]
    rng.shuffle(plan)
    # Bad rows land anywhere after the first row (a duplicate needs an earlier original).
    positions = sorted(rng.sample(range(1, rows), n_bad))
    seeded_count = per_reason[("PERSON_ALREADY_REGISTERED", None)]
    seeded_ids = [citizen_id(10_000_000 + i) for i in range(seeded_count)]
    seeded_file = ("".join(csv_line(c) for c in [HEADER, *[
        [cid, "已登记者", "150102", "", "", "", "", ""] for cid in seeded_ids]])).encode()
    seeded = list(seeded_ids)
    lines = [csv_line(HEADER)]
    expected: dict[int, str] = {}
    good_rows: list[list[str]] = []
    bad_at = dict(zip(positions, plan, strict=True))
    serial = 0
    bad_serial = 5_000_000
    for index in range(rows):
        row_no = index + 2  # the header is row 1
        if index in bad_at:
            code, variant = bad_at[index]
            bad_serial += 1
            row = bad_row(code, variant, bad_serial, good_rows, seeded, rng)
            expected[row_no] = code
        else:
            row = good_row(serial, rng)
            serial += 1
            good_rows.append(row)
        lines.append(csv_line(row))
    assert serial == n_good
    return "".join(lines).encode("utf-8"), expected, seeded_file, n_good


def fresh_engine(directory: Path, name: str):  # noqa: ANN201
    engine = make_engine(f"sqlite:///{directory / name}")
    upgrade_database(engine, "accounts", models.metadata)
    return engine


def verify(engine, job, expected: dict[int, str], n_good: int, seeded: int) -> list[str]:  # noqa: ANN001
    problems = []
    if job.status != "completed":
        problems.append(f"status {job.status}")
    if job.accepted_rows != n_good:
        problems.append(f"accepted {job.accepted_rows}, expected {n_good}")
    if job.rejected_rows != len(expected):
        problems.append(f"rejected {job.rejected_rows}, expected {len(expected)}")
    with Session(engine) as session:
        reported = dict(session.execute(
            select(ImportRejection.row_no, ImportRejection.code)
            .where(ImportRejection.job_id == job.id, ImportRejection.code != OVERLAP_CODE)).all())
        stored = session.execute(select(func.count()).select_from(Person)).scalar_one()
        envelopes = session.execute(
            select(OutboxMessage.envelope).where(OutboxMessage.event_type == "accounts.persons.imported.v1")).scalars()
        batches = [json.loads(e)["data"] for e in envelopes]
    if reported != expected:
        missing = {k: v for k, v in expected.items() if reported.get(k) != v}
        extra = {k: v for k, v in reported.items() if k not in expected}
        problems.append(f"rejections differ: {len(missing)} planted rows not reported as planted "
                        f"(e.g. {dict(list(missing.items())[:3])}, reported {[reported.get(k) for k in list(missing)[:3]]}), "
                        f"{len(extra)} unplanted rows reported (e.g. {dict(list(extra.items())[:3])})")
    if stored != n_good + seeded:
        problems.append(f"{stored} persons stored, expected {n_good + seeded}")
    job_batches = [b for b in batches if b["import_job_id"] == job.id]
    ids = [p["person_id"] for b in job_batches for p in b["persons"]]
    if len(ids) != n_good or len(set(ids)) != n_good:
        problems.append(f"events carry {len(ids)} persons ({len(set(ids))} distinct), expected {n_good}")
    if any(len(b["persons"]) > MAX_BATCH_ITEMS for b in job_batches):
        problems.append("an event carries more than 1 000 persons")
    chain = verify_chain(engine)
    if not chain.ok:
        problems.append(f"audit chain broken: {chain.problem}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--bad-share", type=float, default=0.01)
    parser.add_argument("--quick", action="store_true", help="10 000 rows, no all_or_nothing run, no results file")
    args = parser.parse_args(argv)
    rows = 10_000 if args.quick else args.rows
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))  # errors only

    load_before = os.getloadavg()
    started = time.perf_counter()
    data, expected, seeded_file, n_good = generate(rows, args.bad_share)
    generate_seconds = time.perf_counter() - started
    print(f"generated {rows} rows ({len(expected)} bad, {len(data) / 1e6:.1f} MB) in {generate_seconds:.1f} s")

    with tempfile.TemporaryDirectory(prefix="sifund-bench-import-") as tmp, context.trace(actor=CLERK):
        directory = Path(tmp)
        engine = fresh_engine(directory, "accounts.db")
        seed_job, _ = run_import(engine, kind="persons", data=seeded_file, filename="seed.csv")
        assert seed_job.accepted_rows == seed_job.total_rows, "seeding failed"

        t0 = time.perf_counter()
        job, _ = run_import(engine, kind="persons", data=data, filename="bench-persons.csv", mode="per_row")
        seconds = time.perf_counter() - t0
        print(f"per_row: {job.accepted_rows} stored, {job.rejected_rows} reported in {seconds:.2f} s "
              f"({rows / seconds:,.0f} rows/s)")
        problems = verify(engine, job, expected, n_good, seed_job.accepted_rows)
        by_code = Counter(expected.values())
        engine.dispose()

        all_or_nothing = None
        if not args.quick:
            clean = b"".join(line + b"\r\n" for i, line in enumerate(data.split(b"\r\n")[:-1]) if i + 1 not in expected)
            engine = fresh_engine(directory, "accounts-aon.db")
            t0 = time.perf_counter()
            aon, _ = run_import(engine, kind="persons", data=clean, filename="bench-clean.csv", mode="all_or_nothing")
            aon_seconds = time.perf_counter() - t0
            print(f"all_or_nothing: {aon.accepted_rows} stored in {aon_seconds:.2f} s ({n_good / aon_seconds:,.0f} rows/s)")
            if (aon.status, aon.accepted_rows, aon.rejected_rows) != ("completed", n_good, 0):
                problems.append(f"all_or_nothing: {aon.status} {aon.accepted_rows}/{aon.rejected_rows}")
            all_or_nothing = {"rows": n_good, "seconds": round(aon_seconds, 2), "rows_per_s": round(n_good / aon_seconds)}
            engine.dispose()

    if problems:
        for p in problems:
            print("FAIL:", p, file=sys.stderr)
        return 1
    print("verified: every good row stored once, every planted bad row reported with its reason, audit chain ok")
    if args.quick:
        return 0
    doc = {
        "name": "accounts_import",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    # Other work on the machine skews every figure: compare these with cpu_count.
                    "loadavg_1m_before": round(load_before[0], 2), "loadavg_1m_after": round(os.getloadavg()[0], 2)},
        "kind": "persons",
        "mode": "per_row",
        "file": {"format": "csv", "encoding": "utf-8", "bytes": len(data), "columns": HEADER},
        "database": "SQLite (WAL, synchronous=FULL, BEGIN IMMEDIATE), fresh and migrated",
        "rows": rows,
        "bad_rows": len(expected),
        "bad_rows_by_code": dict(sorted(by_code.items())),
        "accepted_rows": job.accepted_rows,
        "rejected_rows": job.rejected_rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds),
        "all_or_nothing_clean_file": all_or_nothing,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
