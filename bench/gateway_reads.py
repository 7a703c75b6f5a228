"""Cheap authenticated reads through the gateway and straight to the service: ``python -m bench.gateway_reads
[--seconds S] [--concurrency 1,8,32] [--postgres URL]``.

Starts the platform as ``sifund up`` does (``bench.real_platform``), signs the agency clerk in at the gateway,
registers one employer through it, and then reads that employer — ``GET /employers/{id}`` on accounts: one token
check, one role check, one row by primary key — for ``--seconds`` at each concurrency, in the same run:

- **gateway**: ``GET /api/accounts/employers/{id}`` at the gateway (guard, proxy, then the service);
- **direct**: ``GET /employers/{id}`` at the accounts process's own port, with the same bearer token.

The two alternate at each concurrency (direct first), after ``--warmup`` seconds of the same load. The client is
written to cost little: ``concurrency`` keep-alive connections on one uvloop event loop, requests written as bytes,
answers parsed by httptools; its own CPU is reported (it shares the machine's cores with the platform).

Result, ``bench/results/gateway_reads.json`` (the shape is kept stable; new keys may be added):

- ``name``, ``date``, ``machine``, ``load`` {``before``, ``after``}, ``database``, ``seconds`` per window,
  ``request`` (the two URLs' paths);
- ``runs``: one object per concurrency (``"1"``, ``"8"``, ``"32"``), each with ``gateway`` and ``direct``:
  ``requests``, ``req_per_s``, ``p50_ms``, ``p99_ms``, ``max_ms``, ``statuses`` (status → count: anything but 200 is
  an error), ``cpu_ms_per_request`` by process (``gateway``, ``accounts``, ``launcher`` — which writes every
  process's log lines to its file —, ``client``) and ``load_1m`` at its end;
  and ``direct_over_gateway``: direct req/s ÷ gateway req/s (the issue's ratio; 1.0 = the gateway costs nothing);
- ``note``: how to read it.
"""

import argparse
import asyncio
import json
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httptools
import httpx

from bench.real_platform import RESULTS, ProcessMeter, RunningPlatform, client_cpu_seconds, cpu_delta, load, machine

NAME = "gateway_reads"
VALID_USCC = "91110000600037341L"


class _Answers(asyncio.Protocol):
    """httptools callbacks for one keep-alive connection: the status of each answer and when it is complete."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status = 0
        self.complete = False

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_message_complete(self) -> None:
        self.complete = True


class Connection:
    def __init__(self, host: str, port: int, request: bytes):
        self.host, self.port, self.request = host, port, request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.answers = _Answers()

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.answers = _Answers()

    async def get(self) -> int:
        answers = self.answers
        answers.complete = False
        self.writer.write(self.request)
        while not answers.complete:
            chunk = await self.reader.read(65536)
            if not chunk:
                raise ConnectionError("connection closed by the server")
            answers.parser.feed_data(chunk)
        return answers.status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def request_bytes(url: str, token: str) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    head = (f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
            f"Accept: application/json\r\nConnection: keep-alive\r\n\r\n")
    return parts.hostname, parts.port, head.encode()


async def load_window(url: str, token: str, concurrency: int, seconds: float) -> tuple[list[float], dict[str, int]]:
    """``concurrency`` connections asking ``url`` back to back for ``seconds``: each answer's latency and the
    statuses (a dropped connection counts as ``ConnectionError`` and is opened again)."""
    host, port, request = request_bytes(url, token)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    ends = time.perf_counter() + seconds

    async def worker() -> None:
        connection = Connection(host, port, request)
        await connection.open()
        try:
            while (began := time.perf_counter()) < ends:
                try:
                    status = await connection.get()
                except (ConnectionError, OSError) as exc:
                    statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                    connection.close()
                    await connection.open()
                    continue
                latencies.append(time.perf_counter() - began)
                statuses[str(status)] = statuses.get(str(status), 0) + 1
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses


def percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


async def measure(meter: ProcessMeter, url: str, token: str, concurrency: int, seconds: float, warmup: float) -> dict:
    await load_window(url, token, concurrency, warmup)
    before, client_before, began = meter.cpu(), client_cpu_seconds(), time.perf_counter()
    latencies, statuses = await load_window(url, token, concurrency, seconds)
    elapsed = time.perf_counter() - began
    spent = cpu_delta(before, meter.cpu())
    client = client_cpu_seconds() - client_before
    latencies.sort()
    n = len(latencies)
    per_request = {name: round(spent[name] / n * 1000, 3) for name in ("gateway", "accounts", "launcher")} if n else {}
    per_request["client"] = round(client / n * 1000, 3) if n else None
    return {"requests": n, "req_per_s": round(n / elapsed, 1), "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2), "max_ms": round(latencies[-1] * 1000, 2),
            "statuses": statuses, "cpu_ms_per_request": per_request, "load_1m": load()[0]}


def prepare(platform: RunningPlatform) -> tuple[str, str]:
    """The clerk's token and one employer's id, registered through the gateway."""
    secrets = platform.credentials()
    with httpx.Client(base_url=platform.gateway_url, timeout=60.0, trust_env=False) as gateway:
        signed = gateway.post("/auth/token", data={"username": "demo_agency_clerk",
                                                   "password": secrets["demo_agency_clerk"]})
        signed.raise_for_status()
        token = signed.json()["access_token"]
        registered = gateway.post("/api/accounts/employers", headers={"Authorization": f"Bearer {token}"},
                                  json={"uscc": VALID_USCC, "name": "呼和浩特市某某有限公司", "region": "150102"})
        if registered.status_code != 201:
            raise RuntimeError(f"registering the employer answered {registered.status_code} {registered.text}")
        return token, registered.json()["id"]


async def run(platform: RunningPlatform, options: argparse.Namespace) -> dict:
    token, employer_id = prepare(platform)
    meter = ProcessMeter(platform)
    urls = {"direct": f"{platform.service_url('accounts')}/employers/{employer_id}",
            "gateway": f"{platform.gateway_url}/api/accounts/employers/{employer_id}"}
    runs = {}
    for concurrency in options.concurrency:
        runs[str(concurrency)] = {}
        for path in ("direct", "gateway"):
            figures = await measure(meter, urls[path], token, concurrency, options.seconds, options.warmup)
            runs[str(concurrency)][path] = figures
            print(f"gateway_reads: c={concurrency} {path}: {figures['req_per_s']} req/s, p50 {figures['p50_ms']} ms, "
                  f"p99 {figures['p99_ms']} ms, CPU ms/request {figures['cpu_ms_per_request']}, "
                  f"statuses {figures['statuses']}", flush=True)
        direct, gateway = runs[str(concurrency)]["direct"], runs[str(concurrency)]["gateway"]
        runs[str(concurrency)]["direct_over_gateway"] = (round(direct["req_per_s"] / gateway["req_per_s"], 2)
                                                         if gateway["req_per_s"] else None)
    return {"request": {"gateway": "GET /api/accounts/employers/{id}", "direct": "GET /employers/{id} (accounts)"},
            "runs": runs, "peak_rss_mb": {k: round(v / 1024, 1) for k, v in meter.peak_rss_kb.items()}}


def event_loop_runner():  # noqa: ANN201
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_reads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per concurrency and path")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each window")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32],
                        help="comma-separated connection counts (default 1,8,32)")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL server URL: one database per service")
    parser.add_argument("--output", type=Path, default=RESULTS / f"{NAME}.json")
    options = parser.parse_args(argv)
    result = {"name": NAME, "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
              "load": {"before": load()}, "seconds": options.seconds, "warmup_seconds": options.warmup}
    platform = RunningPlatform(postgres_url=options.postgres)
    result["database"] = platform.database
    try:
        platform.start()
        result.update(event_loop_runner()(run(platform, options)))
    finally:
        platform.stop()
    result["load"]["after"] = load()
    result["note"] = ("req/s and latency as one client on the same machine sees them; cpu_ms_per_request is the "
                      "process's CPU over the window divided by the requests answered (idle polling included); "
                      "direct_over_gateway above 1 is what the gateway costs in throughput")
    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    errors = {c: {p: {s: n for s, n in r[p]["statuses"].items() if s != "200"} for p in ("direct", "gateway")}
              for c, r in result["runs"].items()}
    if any(bad for by_path in errors.values() for bad in by_path.values()):
        print(f"gateway_reads: answers other than 200: {errors}", file=sys.stderr)
        return 1
    print(f"gateway_reads: {options.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
