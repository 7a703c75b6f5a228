"""Whole files as jobs on the real path: ``python -m bench.jobs_real_path [--rows N] [--xlsx-rows M] [--postgres URL]``.

Starts the platform as ``sifund up`` does (``bench.real_platform``, as ``bench.month_real_path``), then, through the
gateway with real HTTP, as the agency clerk and the tax bureau's system would:

1. **employers** and **persons** — the registry the enrolments name, each as ONE CSV file (the persons' a job) (a third as many persons as
   enrolment rows, the month plan of ``bench.month_real_path``);
2. **enrolment import** — ONE CSV file of ``--rows`` enrolment rows (default 1 000 000) to
   ``/accounts/imports/enrolments``: 202 + job id, then ``/accounts/jobs/{id}`` is polled to its end;
3. registry and assessment — collection learns the enrolments from the ACCOUNTS stream, each employer declares its
   month (``Month.find_registry``, ``Month.assess``), so that the tax file's lines have something to match;
4. **tax file** — ONE CSV file of every assessed line (``--rows`` lines) to ``/collection/tax-payments/files``: 202
   + job id, ``/collection/jobs/{id}`` polled to its end; every line must end accepted and matched;
5. **xlsx import** — ONE ``.xlsx`` file of ``--xlsx-rows`` new persons (default 100 000: openpyxl writes and reads
   some 20 000 rows a second, so a 1 000 000-row sheet — Excel's limit is 1 048 576 — would take minutes to build
   before the measurement begins; ``--xlsx-rows 1000000`` does it).

For each job (``jobs`` in the result): the file's rows and bytes; the upload request's answer time (the gateway
gives up after 30 s: the upload must be answered far inside it) and status; the time to the job's end; rows/s;
the platform's CPU seconds by process and µs per row; each process's peak RSS while the job ran (VmRSS sampled at
each poll) and the whole run's VmHWM; every progress poll's answer time (p50, max); progress samples (rows done,
rejected, percent, ETA) and how far the ETA was from the real end at 25/50/75 % (``eta_error_s``); the job's final
result (totals, rejections by code). ``load`` before and after, the machine and the database as every bench says.
``slowest_request_s``: the slowest answer of the whole run (any request).

Result: ``bench/results/jobs_real_path.json`` (``--output`` elsewhere); a run that fails writes
``<output>.failed.json`` and exits 1.
"""

import argparse
import asyncio
import io
import json
import sys
import time
from pathlib import Path

import httpx

from bench.month_real_path import (DECLARATION_LINES, FUNDS, READ_LINES, TAX_CONCURRENCY, Answers, BenchFailure, Calendar, Month, Party, build_plan, citizen_id,
                                   csv_bytes, import_files, sign_in_parties, summary_answers)
from bench.real_platform import (RESULTS, ProcessMeter, RunningPlatform, cpu_delta, load, platform_seconds,
                                 run_on_platform, write_result)

NAME = "jobs_real_path"
DONE = {"succeeded", "failed"}
GATEWAY_TIMEOUT_S = 30.0


def _quantiles(values: list[float]) -> dict:
    ordered = sorted(values)
    if not ordered:
        return {}
    return {"n": len(ordered), "p50": round(ordered[len(ordered) // 2], 3),
            "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 3), "max": round(ordered[-1], 3)}


def xlsx_bytes(header: tuple[str, ...], rows: list[tuple]) -> bytes:
    from openpyxl import Workbook  # noqa: PLC0415 - only for the xlsx file

    book = Workbook(write_only=True)
    sheet = book.create_sheet("参保人员")
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


class AsyncParty(Party):
    """A party whose every request says ``Prefer: respond-async``: a file of any size becomes a job."""

    async def sign_in(self) -> "AsyncParty":
        await super().sign_in()
        self.headers["Prefer"] = "respond-async"
        return self


class JobDriver:
    """Uploads one file as a job and follows it to its end, measuring what it cost."""

    def __init__(self, meter: ProcessMeter, answers: Answers, poll_seconds: float):
        self.meter, self.answers, self.poll_seconds = meter, answers, poll_seconds
        self.slowest = 0.0

    async def timed(self, party: Party, method: str, path: str, **kwargs) -> tuple[httpx.Response, float]:
        began = time.monotonic()
        response = await party.call(method, path, **kwargs)
        seconds = time.monotonic() - began
        self.slowest = max(self.slowest, seconds)
        return response, seconds

    async def run(self, party: Party, service: str, path: str, filename: str, content: bytes, media: str,
                  rows: int) -> dict:
        print(f"jobs_real_path: {filename}: {rows} rows, {len(content) / 1e6:.1f} MB …", flush=True)
        self.answers.stage = filename
        cpu_before, began = self.meter.cpu(), time.monotonic()
        peak_rss = self.meter.rss_now_kb()
        response, upload_s = await self.timed(party, "POST", path, expect=(202,),
                                              files={"file": (filename, content, media)})
        job = response.json()
        polls: list[float] = []
        samples: list[dict] = []
        while job["status"] not in DONE:
            await asyncio.sleep(self.poll_seconds)
            response, seconds = await self.timed(party, "GET", f"/{service}/jobs/{job['id']}")
            polls.append(seconds)
            job = response.json()
            samples.append({"t": round(time.monotonic() - began, 2), "rows_done": job["rows_done"],
                            "rows_rejected": job["rows_rejected"], "rows_total": job["rows_total"],
                            "percent": job["percent"], "eta_s": job["eta_seconds"]})
            for name, kb in self.meter.rss_now_kb().items():
                peak_rss[name] = max(peak_rss.get(name, 0), kb)
        wall = time.monotonic() - began
        cpu = cpu_delta(cpu_before, self.meter.cpu())
        if job["status"] != "succeeded":
            raise BenchFailure(f"{filename}: job ended {job['status']}: {job.get('error_code')} {job.get('error')}")
        if job["rows_done"] != rows or job["rows_total"] != rows:
            raise BenchFailure(f"{filename}: {job['rows_done']} rows done of {job['rows_total']}, expected {rows}")
        total_cpu = platform_seconds(cpu)
        figures = {
            "rows": rows, "bytes": len(content), "job_id": job["id"], "attempts": job["attempts"],
            "upload": {"status": 202, "seconds": round(upload_s, 3),
                       "share_of_gateway_timeout": round(upload_s / GATEWAY_TIMEOUT_S, 3)},
            "wall_seconds": round(wall, 2), "rows_per_s": round(rows / wall, 1),
            "cpu_seconds": cpu, "cpu_seconds_total": round(total_cpu, 3),
            "cpu_us_per_row": {name: round(s / rows * 1e6, 1) for name, s in cpu.items()},
            "cpu_us_per_row_total": round(total_cpu / rows * 1e6, 1),
            "peak_rss_mb_during": {name: round(kb / 1024, 1) for name, kb in peak_rss.items()},
            "polls": _quantiles(polls), "rows_rejected": job["rows_rejected"],
            "eta_error_s": eta_errors(samples, wall), "progress": thin(samples, 40), "result": job["result"]}
        print(f"jobs_real_path: {filename}: upload answered in {upload_s:.2f} s, done in {wall:.1f} s, "
              f"{figures['rows_per_s']} rows/s, {figures['cpu_us_per_row_total']} µs CPU/row, "
              f"peak RSS {figures['peak_rss_mb_during']}", flush=True)
        return figures


def eta_errors(samples: list[dict], wall: float) -> dict:
    """At 25, 50 and 75 % done: the ETA the job gave minus the time it really took from then (s; + = pessimistic)."""
    errors = {}
    for mark in (25, 50, 75):
        sample = next((s for s in samples if s["percent"] is not None and s["percent"] >= mark
                       and s["eta_s"] is not None), None)
        if sample is not None:
            errors[f"at_{mark}_percent"] = {"eta_s": sample["eta_s"], "real_s": round(wall - sample["t"], 1),
                                            "error_s": round(sample["eta_s"] - (wall - sample["t"]), 1)}
    return errors


def thin(samples: list[dict], keep: int) -> list[dict]:
    if len(samples) <= keep:
        return samples
    step = len(samples) / keep
    return [samples[int(i * step)] for i in range(keep)] + [samples[-1]]


def tax_file(month: Month) -> tuple[bytes, int]:
    lines = list(month.tax_lines())
    header = tuple(lines[0])
    return csv_bytes(header, ([line[k] for k in header] for line in lines)), len(lines)


async def drive(platform: RunningPlatform, options: argparse.Namespace, result: dict) -> None:
    meter = ProcessMeter(platform)
    answers = Answers()
    driver = JobDriver(meter, answers, options.poll_seconds)
    calendar = Calendar.today()
    plan = build_plan(options.rows, options.seed)
    timeout = httpx.Timeout(options.request_timeout, connect=10.0)
    async with httpx.AsyncClient(base_url=platform.gateway_url, timeout=timeout, trust_env=False) as client:
        parties = await sign_in_parties(platform, client, answers, options.patience)
        month = Month(parties, plan, calendar, argparse.Namespace(
            import_rows=options.rows * 2, concurrency=8, timeout=300 + options.rows * 0.002,
            poll_seconds=options.poll_seconds,
            declaration_lines=DECLARATION_LINES, read_lines=READ_LINES, tax_concurrency=TAX_CONCURRENCY))
        await month.prepare()
        clerk, tax = parties["clerk"], parties["tax"]
        uploader = await AsyncParty(client, answers, clerk.name, clerk.secret, patience=options.patience).sign_in()
        files = {kind: content for kind, [content] in import_files(plan, calendar, options.rows * 2).items()}
        persons = month.lines // len(FUNDS)
        result["plan"] = {"enrolment_rows": month.lines, "persons": persons, "employers": len(plan)}
        jobs = result["jobs"] = {}
        answers.stage = "employers"
        await month._import("employers", "employers.csv", files.pop("employers"))  # small: may be answered at once
        for kind, rows in (("persons", persons), ("enrolments", month.lines)):
            jobs[f"import_{kind}"] = await driver.run(uploader, "accounts", f"/accounts/imports/{kind}",
                                                      f"{kind}.csv", files.pop(kind), "text/csv", rows)
            save_partial(options, result)
        began = time.monotonic()
        answers.stage = "registry_and_assessment"
        await month.find_registry()
        await month.assess({})  # the stage's figures (declaration batches, pages read) are not reported here
        result["registry_and_assessment_seconds"] = round(time.monotonic() - began, 1)
        content, lines = tax_file(month)
        jobs["tax_file"] = await driver.run(tax, "collection", "/collection/tax-payments/files", "tax-lines.csv",
                                            content, "text/csv", lines)
        del content
        save_partial(options, result)
        totals = jobs["tax_file"]["result"]["totals"]
        if totals.get("accepted") != lines or totals.get("matched") != lines or totals.get("rejected"):
            raise BenchFailure(f"tax file: every line should be accepted and matched: {totals}")
        if options.xlsx_rows:
            header = ("公民身份号码", "姓名", "行政区划代码")
            rows = [(citizen_id(persons + k), f"表格参保人{k}", "150102") for k in range(options.xlsx_rows)]
            began = time.monotonic()
            content = xlsx_bytes(header, rows)
            result["xlsx_build_seconds"] = round(time.monotonic() - began, 1)
            jobs["import_persons_xlsx"] = await driver.run(
                uploader, "accounts", "/accounts/imports/persons", "persons.xlsx", content,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", len(rows))
        result["slowest_request_s"] = round(driver.slowest, 3)
        result["peak_rss_mb"] = {name: round(kb / 1024, 1) for name, kb in meter.peak_rss_kb.items()}
        result["answers"] = dict(answers.total())


def save_partial(options: argparse.Namespace, result: dict) -> None:
    """The figures so far, in ``<output>.partial.json`` (removed when the run ends): a long run stopped early still
    says what it measured."""
    partial = options.output.with_suffix(".partial.json")
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_text(json.dumps({**result, "load": {**result["load"], "now": load()}}, indent=1,
                                  ensure_ascii=False) + "\n")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.jobs_real_path", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="enrolment rows, and tax lines (default 1 000 000)")
    parser.add_argument("--xlsx-rows", type=int, default=100_000, help="persons in the .xlsx import (0: none)")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server URL (one database per service made "
                        "for the run and dropped after)")
    parser.add_argument("--poll-seconds", type=float, default=1.0, help="between two reads of a job")
    parser.add_argument("--request-timeout", type=float, default=120.0,
                        help="client timeout per request (above the gateway's 30 s, to see its answer)")
    parser.add_argument("--patience", type=float, default=600.0, help="seconds to keep asking after 502/503/504")
    parser.add_argument("--seed", type=int, default=20261, help="the plan's random seed")
    parser.add_argument("--output", type=Path, default=RESULTS / f"{NAME}.json", help="result file")
    parser.add_argument("--keep", action="store_true", help="keep the data directory (logs, databases)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    result, failure = run_on_platform(NAME, options, drive, expected=BenchFailure)
    summary_answers(result)
    output = write_result(result, options.output, failure)
    options.output.with_suffix(".partial.json").unlink(missing_ok=True)
    if failure:
        return 1
    print(f"jobs_real_path: done; slowest request {result['slowest_request_s']} s; 5xx {result['server_errors']}; "
          f"load {result['load']['before']} → {result['load']['after']}; {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
