"""Authenticated cheap reads through the gateway and straight to the service, same run:
``python -m bench.gateway_profile [--seconds 5] [--concurrency 1,8,32] [--path /audit/head] [--data-dir DIR]``.

Starts ``sifund up`` on a fresh data directory and free ports (or, with ``--data-dir`` of a running platform and
``--port-base``, uses that one), signs in as the demo internal auditor and sends ``GET <path>`` with the token for
``--seconds`` per (target, concurrency) on keep-alive connections. Per row: requests/s, p50/p99 in ms, errors, and the
CPU milliseconds per request spent in the gateway's processes and in the service's (utime + stime from /proc, the
figure a shared machine disturbs least), with the load average before and after. JSON in
``bench/results/gateway_profile.json``.

The load generator is a bare asyncio HTTP/1.1 client (one connection per concurrent caller, Content-Length bodies
only): a full HTTP client in the same 2-core machine would cost more CPU than the gateway it measures.
"""

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

RESULTS = Path(__file__).parent / "results" / "gateway_profile.json"
SERVICE = "accounts"
SERVICE_OFFSET = 1
TICKS = os.sysconf("SC_CLK_TCK")


# -- processes -------------------------------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def process_tree(pid: int) -> list[int]:
    tree, found, stack = _children(), [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(tree.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# -- load ------------------------------------------------------------------------------------------------------------


async def _connection(host: str, port: int, request: bytes, stop_at: float, latencies: list[float],
                      errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(str(status))
    finally:
        writer.close()


async def drive(url: str, path: str, token: str, concurrency: int, seconds: float) -> dict:
    host, port = url.removeprefix("http://").split(":")
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
               f"Accept: application/json\r\n\r\n").encode()
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    await asyncio.gather(*(_connection(host, int(port), request, started + seconds, latencies, errors)
                           for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(q: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2) if latencies else 0.0

    return {"requests": len(latencies), "seconds": round(elapsed, 2), "req_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "errors": len(errors), "error_statuses": sorted(set(errors))}


def measure(target: str, url: str, path: str, token: str, concurrency: int, seconds: float,
            pids: dict[str, list[int]]) -> dict:
    asyncio.run(drive(url, path, token, concurrency, min(1.0, seconds)))  # warm up: connections, caches
    load_before = load_average()
    before = {name: cpu_seconds(p) for name, p in pids.items()}
    row = asyncio.run(drive(url, path, token, concurrency, seconds))
    after = {name: cpu_seconds(p) for name, p in pids.items()}
    n = max(row["requests"], 1)
    row.update(target=target, concurrency=concurrency, load_before=load_before, load_after=load_average(),
               **{f"cpu_ms_per_request_{name}": round((after[name] - before[name]) * 1000 / n, 3) for name in pids})
    return row


# -- platform --------------------------------------------------------------------------------------------------------


def _free_port_base() -> int:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    from tests.support.launcher import free_port_base  # noqa: PLC0415

    return free_port_base()


def start_platform(data_dir: Path, port_base: int, extra_environment: dict[str, str]) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SIFUND_")}
    environment.update(SIFUND_DATA_DIR=str(data_dir), SIFUND_PORT_BASE=str(port_base))
    # The guard's flood limits would turn the load into 429s: lifted, as for any load test (the guard still runs).
    environment.update(SIFUND_RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE="100000000",
                       SIFUND_RATE_LIMIT_PER_IP_PER_MINUTE="100000000")
    environment.update(extra_environment)
    script = Path(sys.executable).parent / "sifund"
    process = subprocess.Popen([str(script), "up", "--timeout", "120"], env=environment, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = []
    for line in process.stdout:
        output.append(line)
        if "Press Ctrl-C to stop." in line:
            return process
    raise RuntimeError("sifund up did not start:\n" + "".join(output))


def sign_in(gateway_url: str, data_dir: Path, username: str) -> str:
    for line in (data_dir / "demo-credentials.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[1] == username:
            response = httpx.post(f"{gateway_url}/auth/token", data={"username": username, "password": parts[2]},
                                  trust_env=False)
            response.raise_for_status()
            return response.json()["access_token"]
    raise RuntimeError(f"{username} not in {data_dir}/demo-credentials.txt")


def component_pids(data_dir: Path) -> dict[str, list[int]]:
    children = {c["name"]: c["pid"] for c in json.loads((data_dir / "supervisor.json").read_text())["children"]}
    return {"gateway": process_tree(children["gateway"]), "service": process_tree(children[SERVICE])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--path", default="/audit/head", help="the service's path (gateway: /api/accounts/<path>)")
    parser.add_argument("--user", default="demo_internal_auditor")
    parser.add_argument("--data-dir", type=Path, help="of a running platform (default: start one)")
    parser.add_argument("--port-base", type=int, default=8000, help="of the running platform given by --data-dir")
    parser.add_argument("--targets", default="gateway,direct")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra SIFUND_* setting for the platform started here (e.g. SIFUND_GATEWAY_WORKERS=2)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    process, scratch = None, None
    if args.data_dir is None:
        scratch = tempfile.TemporaryDirectory(prefix="sifund-gateway-bench-")
        data_dir, port_base = Path(scratch.name) / "var", _free_port_base()
        process = start_platform(data_dir, port_base, dict(e.split("=", 1) for e in args.env))
    else:
        data_dir, port_base = args.data_dir, args.port_base
    gateway_url = f"http://127.0.0.1:{port_base}"
    direct_url = f"http://127.0.0.1:{port_base + SERVICE_OFFSET}"
    try:
        token = sign_in(gateway_url, data_dir, args.user)
        pids = component_pids(data_dir)
        rows = []
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            for target in args.targets.split(","):
                url, path = (gateway_url, f"/api/{SERVICE}{args.path}") if target == "gateway" else (direct_url,
                                                                                                     args.path)
                row = measure(target, url, path, token, concurrency, args.seconds, pids)
                rows.append(row)
                print(f"{target:8} c={concurrency:<3} {row['req_per_s']:8.1f} req/s  p50 {row['p50_ms']:7.2f} ms  "
                      f"p99 {row['p99_ms']:7.2f} ms  err {row['errors']:<3} cpu/req gateway "
                      f"{row['cpu_ms_per_request_gateway']:.3f} ms service {row['cpu_ms_per_request_service']:.3f} ms"
                      f"  load {row['load_before']}", flush=True)
        ratios = {}
        for concurrency in {r["concurrency"] for r in rows}:
            by = {r["target"]: r for r in rows if r["concurrency"] == concurrency}
            if {"gateway", "direct"} <= by.keys() and by["gateway"]["req_per_s"]:
                ratios[str(concurrency)] = round(by["direct"]["req_per_s"] / by["gateway"]["req_per_s"], 2)
        print("direct/gateway ratio by concurrency:", ratios)
        result = {"benchmark": "gateway_profile", "when": datetime.now(UTC).isoformat(timespec="seconds"),
                  "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                  "path": args.path, "seconds_per_row": args.seconds, "rows": rows,
                  "direct_over_gateway": ratios, "environment": args.env, "gateway_workers": len(pids["gateway"])}
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    finally:
        if process is not None:
            process.terminate()
            process.wait(30)
        if scratch is not None:
            scratch.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
