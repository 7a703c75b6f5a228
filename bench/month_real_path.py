"""A city's month on the real path: ``python -m bench.month_real_path [--lines N] [--postgres URL] [--profile]``.

Starts the platform as ``sifund up`` does (embedded default: one nats-server, the four services and the gateway as
child processes, SQLite files; ``--postgres URL``: one database per service made on that server for the run), then
drives a month of ``--lines`` contribution lines (person × fund; default 1 000 000: a third as many persons, each
enrolled in PEN_EMP, UNEMP and INJURY with one employer of 10 to 190 employees) through the gateway with real HTTP,
as the parties do:

1. **import** — the agency clerk uploads the legacy registry as CSV files of ``--import-rows`` rows to
   ``/accounts/imports/{employers,persons,enrolments}`` (a job answered 202 is polled to its end);
2. **registry** — the clerk finds the employers' ids, and waits until collection, from the ACCOUNTS stream, knows
   every enrolment with its person (``/collection/registry/employers/{id}/enrolments``);
3. **assessment** — the clerk sends the month's declarations, many employers a request (by citizen id,
   ``/collection/declarations/batches``, at most ``--declaration-lines`` persons);
4. **tax** — the tax bureau reads its collection plan, the month's assessed lines, in pages of ``--read-lines``
   (``/collection/assessments/lines``) and posts every line as paid, in batches of ``--batch-lines`` (10 000) to
   ``/collection/tax-payments/batches``, ``--tax-concurrency`` in flight, each batch as soon as its lines are read
   (``--no-overlap``: the whole plan read first, then paid; until December 2026 the plan was read in the assessment
   stage);
5. **finance** — finance records each fund's remittance to the treasury and its receipt in the special account;
6. **settle** — nobody acts: the agency posts what was collected from the COLLECTION stream on its own, oversight
   applies the events; the benchmark polls ``/oversight/reconciliation/months/{period}`` (and the remittances'
   month) until the month is **fully matched**: R1 TAX = FINANCE = AGENCY = what was posted, for each fund; every
   R2 employer × fund cell matched; the three R3 remittances in time; no unmatched cell in either report. Not
   within ``--timeout`` seconds: a message and exit status 1 (and the JSON is written with ``"matched": false``
   to ``<output>.failed.json``, the committed result is left alone).

One ``httpx.AsyncClient`` is shared by every party; each stage runs ``--concurrency`` requests at a time (the tax
batches ``--tax-concurrency``). A party asks again after an answer that says nothing about the outcome (no
connection, 502/503/504, 429), with the same business key or Idempotency-Key, as a real one would; every answer is
counted. Tokens are renewed on 401 (they last 15 minutes).

``--profile``: py-spy records every service and the gateway for the whole month, or with ``--profile-from
assessment`` for the end-to-end span only (collapsed stacks in ``bench/results/profiles/<name>.txt``, readable by speedscope or flamegraph.pl; the top frames by own and by total
samples in ``bench/results/profiles/<name>.top.json`` and in the result). py-spy takes CPU from the same cores: a
profiled run's result goes to ``bench/results/profiles/month_real_path.json``, not to the committed one.

Result, ``bench/results/month_real_path.json`` (the shape is kept stable; new keys may be added):

- ``name``, ``date`` (UTC), ``machine`` (cpu_count, platform, python), ``load`` {``before``, ``after``: the 1, 5
  and 15-minute load averages}, ``database``, ``arguments`` (the options of the run), ``startup_seconds``;
- ``month``: ``period`` (费款所属期), ``remittance_month``, ``lines`` (person × fund lines assessed, collected and
  posted), ``persons``, ``employers``, ``tax_batches``, ``collected_fen`` by fund;
- ``stages``: one object per stage (``import``, ``registry``, ``assessment``, ``tax``, ``finance``, ``settle``),
  each with ``wall_seconds``, ``lines``, ``lines_per_s``, ``cpu_seconds`` by process (``nats``, ``accounts``,
  ``collection``, ``benefits``, ``oversight``, ``gateway``, ``launcher``; with ``--postgres`` on a local server,
  ``postgres``: the server's processes, and within it ``postgres.<service>``: the backends serving that service), ``cpu_seconds_total`` (all of the platform's, the server's left out),
  ``cpu_us_per_line`` by process and ``cpu_us_per_line_total`` (the platform's), with ``--postgres`` on a local
  server ``cpu_us_per_line_with_database`` (the platform's and the server's), ``client_cpu_seconds`` (this
  benchmark's own process, not in the totals), ``answers`` (HTTP status → count, transport errors by name), plus figures of its own
  (rows per file kind for import, report latency for settle, …);
- ``postgres_statements`` (``--postgres`` on a server that loads pg_stat_statements, as infra/postgres's does):
  the statements that took the server the longest from the start of the assessment to fully matched, by service;
- ``end_to_end``: the same figures from the start of the assessment to fully matched (the span the platform's
  goal of a month in five minutes is stated for), and ``month_with_import`` from the first upload on;
- ``idle_cpu_seconds_per_s`` by process: CPU burnt per second by the platform at rest, measured for
  ``--idle-seconds`` before the month (the floor under every stage's figures, which weighs most at small N);
- ``lag_seconds``: from the last tax batch accepted to fully matched;
- ``settle``: when each leg was complete (``agency_complete_after_s``, ``r2_complete_after_s``, both counted from the
  last tax batch), how many reports were read and how long they took (p50, max), and the final R1 cells;
- ``peak_rss_mb`` by process (VmHWM) and ``rss_after_mb`` (VmRSS at the end);
- ``answers``: every status over the run; ``server_errors`` (5xx answers) and ``gateway_timeouts`` (504) counts;
  ``restarts``: children the supervisor restarted (their CPU before the restart is lost: the figures are low then);
- ``in_process``: the same month's per-line figures from the in-process benchmarks' committed results
  (``money_in``, ``oversight_reconciliation``, ``accounts_import``), for comparison;
- ``profile`` (``--profile`` only): the top frames per process;
- ``matched``: true (a run that does not end fully matched exits with status 1).
"""

import argparse
import asyncio
import gc
import json
import math
import random
import signal
import subprocess
import sys
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import msgspec
from stdnum.cn import ric, uscc as uscc_mod

from bench.real_platform import (DATABASE_SERVER, RESULTS, ProcessMeter, RunningPlatform, client_cpu_seconds, cpu_delta,
                                 platform_seconds, run_on_platform, write_result)
from services.collection.parameters.schemas import default_document

NAME = "month_real_path"
PROFILES = RESULTS / "profiles"
JSON_BODY = {"Content-Type": "application/json"}


class PlanLine(msgspec.Struct):
    """What the tax bureau keeps of a collection-plan line (the page's other fields are skipped while decoding)."""
    employer_id: str
    person_id: str
    fund: str
    employer_fen: int
    individual_fen: int


class PlanPage(msgspec.Struct):
    items: list[PlanLine]
    next_cursor: str | None = None


# The plan's pages decoded straight into the lines (the client's CPU is on the platform's two cores: a page of
# dicts cost it ~1.8 µs a line, this ~0.7).
PLAN_PAGE = msgspec.json.Decoder(PlanPage)
CITY = "150100"
DISTRICT = "150102"
FUNDS = ("PEN_EMP", "UNEMP", "INJURY")
AVERAGE_WAGE_FEN = 800_000
UNANSWERED = {429, 502, 503, 504}
# Codes that say "already there": expected only when a request is asked again after an answer that said nothing.
ALREADY = {"EMPLOYER_ALREADY_REGISTERED", "PERSON_ALREADY_REGISTERED", "ALREADY_ENROLLED", "ENROLMENT_ALREADY_EXISTS",
           "DUPLICATE_IN_FILE", "ASSESSMENT_EXISTS"}
IMPORT_DONE = {"completed", "rejected", "failed", "succeeded", "done"}
CHINA = ZoneInfo("Asia/Shanghai")


class BenchFailure(Exception):
    """The month could not be driven or did not end fully matched: the message says where."""


# -- the month's calendar and plan -------------------------------------------------------------------------------


def _add_months(period: int, months: int) -> int:
    index = period // 100 * 12 + period % 100 - 1 + months
    return index // 12 * 100 + index % 12 + 1


@dataclass(frozen=True)
class Calendar:
    """The month two before today (China): paid on the 12th of the next month, remitted on the 16th, received on
    the 20th (within 10 working days), all in the past."""

    period: int

    @classmethod
    def today(cls) -> "Calendar":
        now = datetime.now(CHINA)
        return cls(_add_months(now.year * 100 + now.month, -2))

    @property
    def remittance_month(self) -> int:
        return _add_months(self.period, 1)

    def _day(self, day: int) -> str:
        month = self.remittance_month
        return date(month // 100, month % 100, day).isoformat()

    @property
    def year_start(self) -> int:
        return self.period // 100 * 100 + 1

    paid_on = property(lambda self: self._day(12))
    remitted_on = property(lambda self: self._day(16))
    received_on = property(lambda self: self._day(20))


def uscc(serial: int) -> str:
    body = f"91150102{serial:09d}"
    return body + uscc_mod.calc_check_digit(body)


BIRTH_FROM = date(1975, 1, 1)


def citizen_id(serial: int) -> str:
    """A valid, unique citizen id per serial: a birth day per thousand persons from 1975 on, the serial's last three
    digits as the sequence (its parity the sex)."""
    birth = BIRTH_FROM + timedelta(days=serial // 1000)
    body = f"{DISTRICT}{birth:%Y%m%d}{serial % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def yuan(fen: int) -> str:
    return f"{Decimal(fen) / 100:.2f}" if fen < 0 else f"{fen // 100}.{fen % 100:02d}"


def fen(amount: str) -> int:
    whole, _, cents = amount.partition(".")
    if whole.isdigit() and len(cents) == 2 and cents.isdigit():  # what yuan() writes, without Decimal's cost
        return int(whole) * 100 + int(cents)
    return int((Decimal(amount) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class Employer:
    serial: int
    staff: list[tuple[str, int]]  # (citizen id, declared monthly base in fen)
    id: str | None = None
    # The assessed lines: (staff index, fund index, employer fen, individual fen) flattened, four ints a line.
    lines: array = field(default_factory=lambda: array("q"))

    @cached_property
    def uscc(self) -> str:  # a check digit costs stdnum ~10 µs: once per employer, not per line
        return uscc(self.serial)


def build_plan(lines: int, seed: int) -> list[Employer]:
    """Employers of 10 to 190 persons (the last one smaller), bases drawn between 4 000 and 26 000 yuan (some below
    the floor and above the cap: clamped)."""
    persons = math.ceil(lines / len(FUNDS))
    rng = random.Random(seed)
    employers, next_person = [], 0
    while next_person < persons:
        size = min(rng.randint(10, 190), persons - next_person)
        staff = [(citizen_id(next_person + k), rng.randrange(400_000, 2_600_000, 100)) for k in range(size)]
        employers.append(Employer(len(employers) + 1, staff))
        next_person += size
    return employers


def csv_bytes(header: Iterable[str], rows: Iterable[Iterable[object]]) -> bytes:
    out = [",".join(header)]
    out.extend(",".join(str(v) for v in row) for row in rows)
    return ("\n".join(out) + "\n").encode()


def import_files(plan: list[Employer], calendar: Calendar, rows_per_file: int) -> dict[str, list[bytes]]:
    """The legacy registry as the agency exports it, in files of at most ``rows_per_file`` rows, Chinese headers."""
    employers = [(e.uscc, f"测试制造有限公司{e.serial}", DISTRICT, 1) for e in plan]
    persons = [(cid, f"参保人{e.serial}-{i}", DISTRICT) for e in plan for i, (cid, _base) in enumerate(e.staff)]
    enrolments = [(cid, fund, e.uscc, calendar.year_start) for e in plan for cid, _base in e.staff for fund in FUNDS]
    headers = {"employers": ("统一社会信用代码", "单位名称", "行政区划代码", "行业风险类别"),
               "persons": ("公民身份号码", "姓名", "行政区划代码"),
               "enrolments": ("公民身份号码", "险种", "统一社会信用代码", "参保开始年月")}
    return {kind: [csv_bytes(headers[kind], rows[i:i + rows_per_file]) for i in range(0, len(rows), rows_per_file)]
            for kind, rows in (("employers", employers), ("persons", persons), ("enrolments", enrolments))}


# -- the parties -------------------------------------------------------------------------------------------------


class Answers:
    """Every answer the parties got, by stage and status (transport errors by exception name)."""

    def __init__(self) -> None:
        self.stage = "setup"
        self.by_stage: dict[str, Counter] = defaultdict(Counter)

    def count(self, what: int | str) -> None:
        self.by_stage[self.stage][str(what)] += 1

    def total(self) -> Counter:
        return sum(self.by_stage.values(), Counter())


def error_code(response: httpx.Response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


class Party:
    """One caller signed in through the gateway (a user, or a system client with the client-credentials grant)."""

    def __init__(self, client: httpx.AsyncClient, answers: Answers, name: str, secret: str, *, system: bool = False,
                 patience: float = 600.0):
        self.client, self.answers, self.name, self.secret, self.system = client, answers, name, secret, system
        self.patience = patience
        self.headers: dict[str, str] = {}
        self._signing_in: asyncio.Lock = asyncio.Lock()

    async def sign_in(self) -> "Party":
        form = ({"grant_type": "client_credentials", "client_id": self.name, "client_secret": self.secret}
                if self.system else {"username": self.name, "password": self.secret})
        response, _ = await self._patiently("POST", "/auth/token", data=form)
        if response.status_code != 200:
            raise BenchFailure(f"{self.name} could not sign in: {response.status_code} {response.text[:300]}")
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return self

    async def call(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201), already: Iterable[str] = (),
                   key: str | None = None, headers_extra: dict[str, str] | None = None, **kwargs) -> httpx.Response:
        """The answer once it says something. A refusal whose code is in ``already`` is returned when the request
        had to be asked again (the repeat of something applied); anything else unexpected fails the run."""
        for renewed in (False, True):
            headers = {**self.headers, **({"Idempotency-Key": key} if key else {}), **(headers_extra or {})}
            response, attempts = await self._patiently(method, f"/api{path}", headers=headers, **kwargs)
            if response.status_code == 401 and not renewed:
                async with self._signing_in:
                    await self.sign_in()
                continue
            break
        response.attempts = attempts  # type: ignore[attr-defined]
        if response.status_code in expect:
            return response
        if attempts > 1 and error_code(response) in set(already):
            return response
        raise BenchFailure(f"{self.name}: {method} {path} answered {response.status_code} {response.text[:500]}")

    async def _patiently(self, method: str, url: str, **kwargs) -> tuple[httpx.Response, int]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.patience
        pause, attempts = 0.2, 0
        while True:
            attempts += 1
            try:
                response = await self.client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                self.answers.count(type(exc).__name__)
            else:
                self.answers.count(response.status_code)
                if response.status_code not in UNANSWERED:
                    return response, attempts
            if loop.time() > deadline:
                raise BenchFailure(f"{self.name}: {method} {url} unanswered for {self.patience:g}s "
                                   f"({attempts} attempts)")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)


async def each(items: Iterable, work: Callable[..., Awaitable[None]], concurrency: int) -> None:
    """``work(item)`` for every item, ``concurrency`` at a time; the first failure cancels the rest."""
    pending = iter(items)  # taken as the workers get to them: a generator's items are built while others are sent

    async def worker() -> None:
        for item in pending:
            await work(item)

    workers = [asyncio.create_task(worker()) for _ in range(max(1, concurrency))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()


# -- stages and what they cost -------------------------------------------------------------------------------------


def _per_line(seconds: float, lines: int) -> float | None:
    return round(seconds / lines * 1e6, 1) if lines else None


def cost(wall: float, lines: int, cpu: dict[str, float], client: float) -> dict:
    total = round(platform_seconds(cpu), 3)
    figures = {"wall_seconds": round(wall, 2), "lines": lines, "lines_per_s": round(lines / wall, 1) if wall else None,
               "cpu_seconds": cpu, "cpu_seconds_total": total,
               "cpu_us_per_line": {name: _per_line(seconds, lines) for name, seconds in cpu.items()},
               "cpu_us_per_line_total": _per_line(total, lines), "client_cpu_seconds": round(client, 3)}
    if DATABASE_SERVER in cpu:
        figures["cpu_us_per_line_with_database"] = _per_line(total + cpu[DATABASE_SERVER], lines)
    return figures


@dataclass
class Mark:
    at: float
    cpu: dict[str, float]
    client: float


class Stages:
    """Each stage's wall time, the platform's CPU by process and the answers, measured at its boundaries."""

    def __init__(self, meter: ProcessMeter, answers: Answers):
        self.meter, self.answers = meter, answers
        self.results: dict[str, dict] = {}
        self.marks: dict[str, tuple[Mark, Mark]] = {}

    def mark(self) -> Mark:
        return Mark(time.monotonic(), self.meter.cpu(), client_cpu_seconds())

    @contextmanager
    def stage(self, name: str, lines: int) -> Iterator[dict]:
        extra: dict = {}
        self.answers.stage = name
        began = self.mark()
        print(f"month_real_path: {name} …", flush=True)
        yield extra
        ended = self.mark()
        self.marks[name] = (began, ended)
        self.results[name] = {**cost(ended.at - began.at, extra.pop("lines", lines),
                                     cpu_delta(began.cpu, ended.cpu), ended.client - began.client),
                              "answers": dict(self.answers.by_stage[name]), **extra}
        figures = self.results[name]
        database = (f" ({figures['cpu_us_per_line_with_database']} with the database server)"
                    if "cpu_us_per_line_with_database" in figures else "")
        print(f"month_real_path: {name} {figures['wall_seconds']} s, {figures['lines_per_s']} lines/s, "
              f"{figures['cpu_us_per_line_total']} µs CPU/line{database}", flush=True)

    def span(self, first: str, last: str, lines: int) -> dict:
        began, ended = self.marks[first][0], self.marks[last][1]
        return cost(ended.at - began.at, lines, cpu_delta(began.cpu, ended.cpu), ended.client - began.client)


# -- the month -----------------------------------------------------------------------------------------------------

# The assessment's defaults (the API's maxima: persons per declaration batch, assessed lines per page), shared with
# bench/jobs_real_path, which assesses its month the same way.
DECLARATION_LINES = 10_000
READ_LINES = 5_000
TAX_CONCURRENCY = 2


@dataclass
class Month:
    parties: dict[str, Party]
    plan: list[Employer]
    calendar: Calendar
    options: argparse.Namespace
    staff_of: dict[str, tuple[str, int]] = field(default_factory=dict)  # person id → (employer id, staff index)
    collected_fen: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FUNDS, 0))
    last_batch_at: float = 0.0

    @cached_property
    def paid_on(self) -> str:
        return self.calendar.paid_on

    @property
    def lines(self) -> int:
        return sum(len(e.staff) for e in self.plan) * len(FUNDS)

    async def prepare(self) -> None:
        """The year's parameters (proposed and approved by two people) and finance's special accounts."""
        accountant, approver, finance = self.parties["accountant"], self.parties["approver"], self.parties["finance"]
        proposed = (await accountant.call("POST", "/collection/parameters", json={
            "region": CITY, "valid_from": self.calendar.year_start, "document": default_document(AVERAGE_WAGE_FEN),
            "reason": "年度费率基数"})).json()
        await approver.call("POST", f"/collection/parameters/{proposed['id']}/approve", json={"reason": "同意"})
        for number, fund in enumerate(FUNDS, start=1):
            await finance.call("POST", "/collection/treasury/accounts", already=("ACCOUNT_EXISTS",), json={
                "kind": "special", "fund": fund, "bank_name": "中国工商银行呼和浩特分行",
                "account_no": f"1520{number}012001000077", "opened_on": "2020-01-06",
                "opening_approval_ref": f"内财社〔2020〕{number}号", "annual_inspection_due": "2030-03-31"})

    # -- 1. import ---------------------------------------------------------------------------------------------------

    async def import_registry(self, extra: dict) -> None:
        files = import_files(self.plan, self.calendar, self.options.import_rows)
        for kind in ("employers", "persons", "enrolments"):  # in this order: enrolments name both
            began, rows = time.monotonic(), Counter()

            async def upload(numbered: tuple[int, bytes], kind: str = kind, rows: Counter = rows) -> None:
                number, content = numbered
                job = await self._import(kind, f"{kind}-{number:04d}.csv", content)
                rows["accepted"] += job["accepted_rows"]
                rows["rejected"] += job["rejected_rows"]

            await each(enumerate(files[kind], start=1), upload, self.options.import_concurrency)
            extra[kind] = {"files": len(files[kind]), **rows, "seconds": round(time.monotonic() - began, 2),
                           "bytes": sum(len(f) for f in files[kind])}

    async def _import(self, kind: str, filename: str, content: bytes) -> dict:
        clerk = self.parties["clerk"]
        response = await clerk.call("POST", f"/accounts/imports/{kind}", expect=(200, 201, 202),
                                    files={"file": (filename, content, "text/csv")})
        job = response.json()
        while job["status"] not in IMPORT_DONE:  # a job: poll it to its end
            await asyncio.sleep(0.5)
            job = (await clerk.call("GET", f"/accounts/imports/{job['id']}")).json()
        if job["status"] != "completed" and job["status"] not in ("succeeded", "done"):
            raise BenchFailure(f"import {filename} ended {job['status']}: {job}")
        if job["rejected_rows"]:
            findings = (await clerk.call("GET", f"/accounts/imports/{job['id']}/rejections",
                                         params={"limit": 20})).json()["items"]
            codes = {f["code"] for f in findings}
            if response.attempts == 1 or not codes <= ALREADY:  # type: ignore[attr-defined]
                raise BenchFailure(f"import {filename}: {job['rejected_rows']} rows rejected: {findings[:5]}")
        return job

    # -- 2. registry -------------------------------------------------------------------------------------------------

    async def find_registry(self) -> None:
        """The employers' ids from accounts; then wait until collection knows each employer's enrolments and their
        persons (learnt from the ACCOUNTS stream)."""
        clerk = self.parties["clerk"]
        by_uscc = {e.uscc: e for e in self.plan}
        after = None
        while True:
            page = (await clerk.call("GET", "/accounts/employers",
                                     params={"limit": 500, **({"after": after} if after else {})})).json()
            for item in page["items"]:
                if item["uscc"] in by_uscc:
                    by_uscc[item["uscc"]].id = item["id"]
            after = page["next_cursor"]
            if not after:
                break
        missing = [e.uscc for e in self.plan if e.id is None]
        if missing:
            raise BenchFailure(f"{len(missing)} imported employers not found in accounts, e.g. {missing[:3]}")
        deadline = time.monotonic() + self.options.timeout

        async def known(employer: Employer) -> None:
            expected = len(employer.staff) * len(FUNDS)
            while True:
                response = await clerk.call("GET", f"/collection/registry/employers/{employer.id}/enrolments",
                                            params={"limit": 1000}, expect=(200, 404))
                items = response.json()["items"] if response.status_code == 200 else []
                if len(items) == expected and all(i["life_status"] is not None for i in items):
                    staff_index = {cid: i for i, (cid, _base) in enumerate(employer.staff)}
                    self.staff_of.update((i["person_id"], (employer.id, staff_index[i["citizen_id"]])) for i in items)
                    return
                if time.monotonic() > deadline:
                    raise BenchFailure(f"collection knows {len(items)} of employer {employer.serial}'s {expected} "
                                       f"enrolments after {self.options.timeout:g}s")
                await asyncio.sleep(self.options.poll_seconds)

        await each(self.plan, known, self.options.concurrency)

    # -- 3. assessment -----------------------------------------------------------------------------------------------

    def declaration_batches(self) -> list[list[Employer]]:
        """The month's declarations, many employers a request, ``--declaration-lines`` persons at most."""
        batches: list[list[Employer]] = [[]]
        for employer in self.plan:
            if batches[-1] and sum(len(e.staff) for e in batches[-1]) + len(employer.staff) > \
                    self.options.declaration_lines:
                batches.append([])
            batches[-1].append(employer)
        return batches

    async def declare(self, extra: dict) -> None:
        """The month's declarations sent as the agency receives them, ``tax_concurrency`` requests in flight."""
        clerk, period = self.parties["clerk"], self.calendar.period

        async def declare(batch: list[Employer]) -> None:
            response = await clerk.call("POST", "/collection/declarations/batches", json={"period": period, "declarations": [
                {"employer_id": e.id, "lines": [{"citizen_id": cid, "base": yuan(base)} for cid, base in e.staff]}
                for e in batch]})
            result = response.json()
            for item in result["items"]:  # asked again after an answer that said nothing: issued then
                if item["status"] != "issued" and not (response.attempts > 1  # type: ignore[attr-defined]
                                                       and item["refusal"]["code"] == "ASSESSMENT_EXISTS"):
                    raise BenchFailure(f"declaration of employer {item['employer_id']} refused: {item['refusal']}")

        began = time.monotonic()
        batches = self.declaration_batches()
        await each(batches, declare, self.options.tax_concurrency)
        extra.update(declaration_batches=len(batches), declare_seconds=round(time.monotonic() - began, 2))

    async def read_plan(self, on_page: Callable[[list[tuple[Employer, int, int, int, int]]], None] | None = None
                        ) -> int:
        """The month's assessed lines read as the tax bureau reads its collection plan, ``--read-lines`` a page, into
        each employer's ``lines``; ``on_page`` gets each page's lines as (employer, staff index, fund index, employer
        fen, individual fen) as soon as it is read. Returns the pages read; fails if an employer's count is wrong."""
        clerk, period = self.parties["clerk"], self.calendar.period
        by_id = {e.id: e for e in self.plan}
        fund_index = {fund: i for i, fund in enumerate(FUNDS)}
        staff_of = {person: (by_id[employer], staff) for person, (employer, staff) in self.staff_of.items()}
        after, pages = None, 0
        while True:
            page = PLAN_PAGE.decode((await clerk.call("GET", "/collection/assessments/lines", params={
                "period": period, "limit": self.options.read_lines, **({"after": after} if after else {})})).content)
            pages += 1
            read = []
            for line in page.items:
                employer, staff = staff_of[line.person_id]
                if line.employer_id != employer.id:
                    raise BenchFailure(f"plan line {line} is not assessed on the person's employer {employer.id}")
                quad = (staff, fund_index[line.fund], line.employer_fen, line.individual_fen)
                employer.lines.extend(quad)
                read.append((employer, *quad))
            if on_page is not None:
                on_page(read)
            after = page.next_cursor
            if not after:
                break
        for employer in self.plan:
            if len(employer.lines) // 4 != len(employer.staff) * len(FUNDS):
                raise BenchFailure(f"employer {employer.serial}: {len(employer.lines) // 4} assessed lines, "
                                   f"expected {len(employer.staff) * len(FUNDS)}")
        return pages

    async def assess(self, extra: dict) -> None:
        """Declarations, then the whole collection plan read (``tax_lines`` pays it afterwards)."""
        await self.declare(extra)
        began = time.monotonic()
        extra.update(pages_read=await self.read_plan(), read_seconds=round(time.monotonic() - began, 2))

    # -- 4. tax ------------------------------------------------------------------------------------------------------

    def tax_line(self, employer: Employer, staff: int, fund_i: int, employer_fen: int, individual_fen: int) -> dict:
        """One assessed line as the tax bureau reports it paid (what it collected is counted here)."""
        period, fund = self.calendar.period, FUNDS[fund_i]
        self.collected_fen[fund] += employer_fen + individual_fen
        return {"tax_line_id": f"SW{period}-{employer.serial:07d}-{staff:03d}-{fund}", "payer_uscc": employer.uscc,
                "citizen_id": employer.staff[staff][0], "fund": fund, "period": period,
                "employer_amount": yuan(employer_fen), "individual_amount": yuan(individual_fen),
                "method": "bank_withholding", "voucher_no": f"PZ{period}-{employer.serial:07d}",
                "paid_date": self.paid_on}

    def tax_lines(self) -> Iterator[dict]:
        """Every line of the plan read by ``assess``, as paid."""
        for employer in self.plan:
            quads = employer.lines
            for i in range(0, len(quads), 4):
                yield self.tax_line(employer, *quads[i:i + 4])

    async def post_tax_batch(self, batch: list[dict], seconds: list[float]) -> None:
        """One batch, its JSON body encoded as it is sent (msgspec: the client's CPU is on the platform's two cores,
        and the stdlib encoder cost it ~2.5 s a million lines); every line must be accepted once."""
        began = time.monotonic()
        result = (await self.parties["tax"].call("POST", "/collection/tax-payments/batches",
                                                 content=msgspec.json.encode({"lines": batch}),
                                                 headers_extra=JSON_BODY)).json()
        seconds.append(time.monotonic() - began)
        if result["rejected"] or result["unmatched"] or result["accepted"] + result["duplicates"] != len(batch):
            raise BenchFailure(f"tax batch: {result['accepted']} accepted, {result['duplicates']} duplicates, "
                               f"{result['rejected']} rejected {result['rejections'][:3]}, {result['unmatched']} "
                               f"unmatched {result['unmatched_lines'][:3]}")
        self.last_batch_at = time.monotonic()

    async def read_and_pay(self, extra: dict) -> None:
        """The tax bureau reads its collection plan and pays it in batches of ``--batch-lines``: with ``--overlap``
        (the default) a batch is posted as soon as its lines are read, ``--tax-concurrency`` batches in flight while
        the reading goes on, as a bureau streaming its plan into collection would; without, the whole plan is read
        first (the order of stages before this option)."""
        queue: asyncio.Queue[list[dict] | None] = asyncio.Queue()
        pending: list[dict] = []
        seconds: list[float] = []
        size = self.options.batch_lines

        def cut(page: list[tuple[Employer, int, int, int, int]]) -> None:
            for line in page:
                pending.append(self.tax_line(*line))
                if len(pending) == size:
                    queue.put_nowait(pending.copy())
                    pending.clear()

        async def poster() -> None:
            while (batch := await queue.get()) is not None:
                await self.post_tax_batch(batch, seconds)

        async def reader() -> None:
            began = time.monotonic()
            extra["pages_read"] = await self.read_plan(cut)
            extra["read_seconds"] = round(time.monotonic() - began, 2)
            if pending:
                queue.put_nowait(pending.copy())
            for _ in range(concurrency):
                queue.put_nowait(None)

        concurrency = max(1, self.options.tax_concurrency)
        if not self.options.overlap:
            await reader()
        tasks = [asyncio.create_task(poster()) for _ in range(concurrency)]
        if self.options.overlap:
            tasks.append(asyncio.create_task(reader()))
        try:
            for finished in asyncio.as_completed(tasks):
                await finished  # the first failure cancels the rest
        finally:
            for task in tasks:
                task.cancel()
        seconds.sort()
        extra.update(batches=len(seconds), batch_seconds={
            "p50": round(seconds[len(seconds) // 2], 2), "max": round(seconds[-1], 2)})

    # -- 5. finance --------------------------------------------------------------------------------------------------

    async def remit_and_receive(self) -> None:
        finance, period = self.parties["finance"], self.calendar.period
        for fund in FUNDS:
            amount = yuan(self.collected_fen[fund])
            remittance = (await finance.call("POST", "/collection/treasury/remittances", json={
                "fund": fund, "period": period, "amount": amount, "remitted_on": self.calendar.remitted_on,
                "voucher_no": f"GK-{fund}-{period}"})).json()["remittance"]
            await finance.call("POST", "/collection/treasury/receipts", key=f"R-{fund}-{period}", json={
                "remittance_id": remittance["id"], "amount": amount, "value_date": self.calendar.received_on,
                "reference": f"BK-{fund}-{period}"})

    # -- 6. settle ---------------------------------------------------------------------------------------------------

    async def settle(self, extra: dict) -> None:
        """Poll oversight until the month is fully matched (or fail after ``--timeout``)."""
        officer = self.parties["officer"]
        deadline = time.monotonic() + self.options.timeout
        latencies: list[float] = []
        state: dict = {}
        while True:
            began = time.monotonic()
            # A report that fails (500: oversight's database busy) is counted and read again at the next poll,
            # as an officer would reload the page.
            answers = [await officer.call("GET", f"/oversight/reconciliation/months/{month}", expect=(200, 500))
                       for month in (self.calendar.period, self.calendar.remittance_month)]
            latencies.append((time.monotonic() - began) / 2)
            if all(a.status_code == 200 for a in answers):
                state = self.matched(*(a.json() for a in answers))
            else:
                extra["failed_reports"] = extra.get("failed_reports", 0) + 1
                state = {**state, "matched": False}
            since = round(time.monotonic() - self.last_batch_at, 2)
            if state.get("agency_complete"):
                extra.setdefault("agency_complete_after_s", since)
            if state.get("r2_complete"):
                extra.setdefault("r2_complete_after_s", since)
            if state["matched"]:
                break
            if time.monotonic() > deadline:
                extra.update(reports=len(latencies), last_state=state)
                raise BenchFailure(f"the month is not fully matched {self.options.timeout:g}s after the finance "
                                   f"stage: {json.dumps(state, ensure_ascii=False)[:3000]}")
            await asyncio.sleep(self.options.poll_seconds)
        latencies.sort()
        extra.update(reports=len(latencies), report_seconds={"p50": round(latencies[len(latencies) // 2], 3),
                                                             "max": round(latencies[-1], 3)}, final=state)

    def matched(self, report: dict, later: dict) -> dict:
        """Fully matched: R1 TAX = FINANCE = AGENCY = what the tax bureau posted, per fund; every R2 cell
        (employer × fund) there and matched; the three remittances in time (R3, the remittance month); nothing
        unmatched in either report."""
        checks = {c["check"]: c for c in report["checks"]}
        r1 = {cell["fund"]: {leg: fen(amount) for leg, amount in cell["amounts"].items() if amount is not None}
              | {"status": cell["status"]} for cell in checks["R1"]["cells"]}
        r1_ok = set(r1) == set(FUNDS) and all(
            r1[f]["status"] == "matched" and r1[f].get("tax") == r1[f].get("finance") == r1[f].get("agency")
            == self.collected_fen[f] for f in FUNDS)
        agency = all(r1.get(f, {}).get("agency") == self.collected_fen[f] for f in FUNDS)
        r2 = checks["R2"]["summary"]
        r2_ok = r2["cells"] == len(self.plan) * len(FUNDS) and r2["matched"] == r2["cells"]
        r3 = {c["check"]: c for c in later["checks"]}["R3"]["summary"]
        r3_ok = r3["cells"] == len(FUNDS) and r3["matched"] == r3["cells"]
        unmatched = {f"{body['month']}/{c['check']}": c["summary"]["cells"] - c["summary"]["matched"]
                     for body in (report, later) for c in body["checks"]
                     if c["summary"]["cells"] != c["summary"]["matched"]}
        return {"matched": r1_ok and r2_ok and r3_ok and not unmatched, "r1": r1, "r2": r2, "r3": r3,
                "unmatched_cells": unmatched, "agency_complete": agency, "r2_complete": r2_ok}


# -- profiling -----------------------------------------------------------------------------------------------------


class Profiler:
    """py-spy ``record`` on each named process for as long as it runs: collapsed stacks, function level."""

    def __init__(self, pids: dict[str, int], rate: int):
        PROFILES.mkdir(parents=True, exist_ok=True)
        self.recorders = {}
        for name, pid in pids.items():
            if name in ("launcher", "nats"):
                continue
            out = PROFILES / f"{name}.txt"
            self.recorders[name] = (out, subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--rate", str(rate),
                 "--format", "raw", "--nolineno", "--nonblocking", "--output", str(out)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))

    def stop(self) -> dict[str, dict]:
        tops = {}
        for name, (out, process) in self.recorders.items():
            process.send_signal(signal.SIGINT)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
            if out.exists():
                tops[name] = top_frames(out.read_text(errors="replace"))  # py-spy may cut a name mid-character
                (PROFILES / f"{name}.top.json").write_text(json.dumps(tops[name], indent=1, ensure_ascii=False))
            else:
                tops[name] = {"error": process.stderr.read().decode(errors="replace")[-500:]}
        return tops


def top_frames(collapsed: str, limit: int = 15) -> dict:
    """From py-spy's collapsed stacks (``frame;frame;… count``): the functions with the most samples of their own
    (the leaf) and in total (anywhere on the stack), as shares of all samples."""
    own, total, samples = Counter(), Counter(), 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n

    def share(counter: Counter) -> list[list]:
        return [[frame, round(100 * n / samples, 1)] for frame, n in counter.most_common(limit)]

    return {"samples": samples, "own_percent": share(own) if samples else [],
            "total_percent": share(total) if samples else []}


# -- comparison with the in-process benchmarks ------------------------------------------------------------------------


def in_process_figures() -> dict:
    """The per-line figures of the committed in-process results, for comparison (missing ones are left out)."""
    figures: dict = {}

    def read(name: str) -> dict | None:
        try:
            return json.loads((RESULTS / f"{name}.json").read_text())
        except (OSError, ValueError):
            return None

    if (money_in := read("money_in")) is not None:
        figures["money_in"] = {
            "date": money_in.get("date"), "lines": money_in.get("lines"),
            "load_1m": [money_in.get("machine", {}).get(k) for k in ("loadavg_1m_before", "loadavg_1m_after")],
            **{stage: {"lines_per_s": body.get("lines_per_s"),
                       "cpu_us_per_line": round(1e6 / body["lines_per_cpu_s"], 1) if body.get("lines_per_cpu_s")
                       else None, "code": body.get("code")}
               for stage, body in money_in.get("stages", {}).items()},
            "end_to_end_cpu_us_per_line": round(1e6 / money_in["end_to_end"]["lines_per_cpu_s"], 1)
            if money_in.get("end_to_end", {}).get("lines_per_cpu_s") else None}
    if (oversight := read("oversight_reconciliation")) is not None:
        apply = oversight.get("apply", {})
        figures["oversight_reconciliation"] = {
            "date": oversight.get("date"), "how": apply.get("how"),
            "wall_us_per_line": {kind: round(1e6 / body["lines_per_s"], 2)
                                 for kind, body in apply.get("by_kind", {}).items() if body.get("lines_per_s")}}
    if (imports := read("accounts_import")) is not None:
        figures["accounts_import"] = {"date": imports.get("date"), "kind": imports.get("kind"),
                                      "rows_per_s": imports.get("rows_per_s"),
                                      "wall_us_per_row": round(1e6 / imports["rows_per_s"], 1)
                                      if imports.get("rows_per_s") else None}
    figures["note"] = ("in-process: one process, no HTTP, no NATS, CPU or wall µs per line of the service function "
                       "alone; compare with this run's cpu_us_per_line by process")
    return figures


# -- the run -------------------------------------------------------------------------------------------------------


async def idle_cost(meter: ProcessMeter, seconds: float) -> dict[str, float]:
    """What each process burns doing nothing (outbox relays and consumers polling), per second: the floor under
    every stage's CPU figures, which weighs most at small N."""
    before, began = meter.cpu(), time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - began
    return {name: round(spent / elapsed, 4) for name, spent in cpu_delta(before, meter.cpu()).items()}


async def sign_in_parties(platform: RunningPlatform, client: httpx.AsyncClient, answers: Answers,
                          patience: float) -> dict[str, Party]:
    secrets = platform.credentials()

    def user(role: str) -> Party:
        return Party(client, answers, f"demo_{role}", secrets[f"demo_{role}"], patience=patience)

    parties = {"clerk": user("agency_clerk"), "accountant": user("accountant"), "approver": user("agency_approver"),
               "finance": user("finance_officer"), "officer": user("oversight_officer"),
               "tax": Party(client, answers, "demo_tax", secrets["demo_tax"], system=True, patience=patience)}
    for party in parties.values():
        await party.sign_in()
    return parties


async def drive(platform: RunningPlatform, options: argparse.Namespace, result: dict) -> None:
    meter = ProcessMeter(platform)
    answers = Answers()
    stages = Stages(meter, answers)
    calendar = Calendar.today()
    plan = build_plan(options.lines, options.seed)
    limits = httpx.Limits(max_connections=max(options.concurrency, options.tax_concurrency) + 4,
                          max_keepalive_connections=max(options.concurrency, options.tax_concurrency) + 4)
    timeout = httpx.Timeout(options.request_timeout, connect=10.0)
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=timeout, limits=limits,
                                 trust_env=False) as client:
        parties = await sign_in_parties(platform, client, answers, options.patience)
        month = Month(parties, plan, calendar, options)
        await month.prepare()
        result["month"] = {"period": calendar.period, "remittance_month": calendar.remittance_month,
                           "lines": month.lines, "persons": month.lines // len(FUNDS), "employers": len(plan)}
        result["idle_cpu_seconds_per_s"] = await idle_cost(meter, options.idle_seconds)
        profiler = Profiler(platform.pids(), options.profile_rate) \
            if options.profile and options.profile_from == "import" else None
        try:
            with stages.stage("import", month.lines) as extra:
                await month.import_registry(extra)
            with stages.stage("registry", month.lines):
                await month.find_registry()
            # The plan and the registry's ids live to the end: out of the collector's sight, a million-line month's
            # client does not traverse them again in every full collection while it builds and sends tax batches.
            gc.freeze()
            if options.profile and profiler is None:
                profiler = Profiler(platform.pids(), options.profile_rate)
            statements = platform.postgres is not None and platform.postgres.reset_statements()
            with stages.stage("assessment", month.lines) as extra:
                await month.declare(extra)
            with stages.stage("tax", month.lines) as extra:
                await month.read_and_pay(extra)
            result["month"].update(tax_batches=stages.results["tax"]["batches"], collected_fen=month.collected_fen)
            with stages.stage("finance", month.lines):
                await month.remit_and_receive()
            settle: dict = {}
            try:
                with stages.stage("settle", month.lines) as extra:
                    settle = extra
                    await month.settle(extra)
                settle = {k: stages.results["settle"].pop(k) for k in list(settle)}
            finally:
                result["settle"] = settle
        finally:
            gc.unfreeze()
            result["stages"] = stages.results
            result["answers"] = dict(answers.total())
            if profiler is not None:
                result["profile"] = profiler.stop()
        matched_at = stages.marks["settle"][1].at
        result["lag_seconds"] = round(matched_at - month.last_batch_at, 2)
        result["end_to_end"] = stages.span("assessment", "settle", month.lines)
        if statements:
            result["postgres_statements"] = platform.postgres.top_statements()
        result["month_with_import"] = stages.span("import", "settle", month.lines)
        result["peak_rss_mb"] = {name: round(kb / 1024, 1) for name, kb in meter.peak_rss_kb.items()}
        result["rss_after_mb"] = {name: round(kb / 1024, 1) for name, kb in meter.rss_now_kb().items()}
        result["matched"] = True


def summary_answers(result: dict) -> None:
    answers = result.get("answers", {})
    result["server_errors"] = sum(n for status, n in answers.items() if status.isdigit() and int(status) >= 500)
    result["gateway_timeouts"] = answers.get("504", 0)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.month_real_path", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="contribution lines (person × fund) of the month")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server URL (postgresql+psycopg://user@host:"
                        "port/postgres): one database per service is made there for the run and dropped after")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight per stage (default 8)")
    parser.add_argument("--tax-concurrency", type=int, default=TAX_CONCURRENCY, help="tax batches in flight (default 2)")
    parser.add_argument("--import-concurrency", type=int, default=1, help="import files in flight (default 1)")
    parser.add_argument("--batch-lines", type=int, default=10_000, help="lines per tax batch (the API's maximum)")
    parser.add_argument("--declaration-lines", type=int, default=DECLARATION_LINES,
                        help="declared persons per declaration batch (the API's maximum)")
    parser.add_argument("--read-lines", type=int, default=READ_LINES, help="assessed lines per page read (the maximum)")
    parser.add_argument("--overlap", action=argparse.BooleanOptionalAction, default=True,
                        help="the tax bureau pays each batch of its plan as soon as it has read it (default), or "
                             "(--no-overlap) reads the whole plan first")
    parser.add_argument("--import-rows", type=int, default=10_000, help="rows per imported CSV file")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds to wait for collection's registry and for the month to be fully matched "
                             "(default 300 + 2 ms per line)")
    parser.add_argument("--poll-seconds", type=float, default=1.0, help="between two reads of a condition")
    parser.add_argument("--request-timeout", type=float, default=120.0, help="client timeout per request")
    parser.add_argument("--patience", type=float, default=600.0,
                        help="seconds a party keeps asking again after answers that say nothing (502/503/504)")
    parser.add_argument("--idle-seconds", type=float, default=5.0,
                        help="seconds of doing nothing measured before the month (idle_cpu_seconds_per_s)")
    parser.add_argument("--seed", type=int, default=20261, help="the plan's random seed")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"result file (default bench/results/{NAME}.json; with --profile under profiles/)")
    parser.add_argument("--profile", action="store_true", help="py-spy every service and the gateway")
    parser.add_argument("--profile-rate", type=int, default=50, help="py-spy samples per second")
    parser.add_argument("--profile-from", choices=("import", "assessment"), default="import",
                        help="profile from the registry's import (default) or only the end-to-end month (assessment on)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory (logs, databases)")
    options = parser.parse_args(argv)
    if options.timeout is None:
        options.timeout = 300 + options.lines * 0.002
    if options.output is None:
        options.output = (PROFILES if options.profile else RESULTS) / f"{NAME}.json"
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    result, failure = run_on_platform(NAME, options, drive, expected=BenchFailure, announce=f"; {options.lines} lines")
    summary_answers(result)
    result["in_process"] = in_process_figures()
    if failure:
        result["matched"] = False
    output = write_result(result, options.output, failure)
    if failure:
        return 1
    e2e = result["end_to_end"]
    database = (f" ({e2e['cpu_us_per_line_with_database']} with the database server)"
                if "cpu_us_per_line_with_database" in e2e else "")
    print(f"month_real_path: {result['month']['lines']} lines fully matched; end to end {e2e['wall_seconds']} s, "
          f"{e2e['lines_per_s']} lines/s, {e2e['cpu_us_per_line_total']} µs CPU/line{database}; lag {result['lag_seconds']} s; "
          f"5xx {result['server_errors']}; load {result['load']['before']} → {result['load']['after']}; {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
