"""The platform as ``sifund up`` runs it, for the real-path benchmarks (``bench.month_real_path``,
``bench.gateway_reads``): the launcher in a subprocess with its own data directory and port range (SQLite files and
one nats-server, or PostgreSQL databases made for the run), its children found by name, and what each of them
costs read from ``/proc``.

- ``RunningPlatform``: start, the demo credentials, the children by name (``supervisor.json``), stop.
- ``ProcessMeter``: CPU seconds (utime + stime of a child and of every process under it, those it already reaped
  included) and peak RSS (``VmHWM``) per child, sampled when asked; on PostgreSQL, when the server runs on this
  machine, the server's too (``postgres``: the postmaster and every backend and worker under it; of which
  ``postgres.<service>``: the backends serving that service's database), apart from the platform's
  (``platform_seconds`` leaves them out).
- ``machine()`` and ``load()``: what every result quotes about the machine.
- ``run_on_platform`` and ``write_result``: a benchmark's run from start to stop, and its result file.

The platform gets the environment it would get in production, with one exception: the gateway's flood guard
(``SIFUND_RATE_LIMIT_PER_*``, 20 requests/s per principal by default) is raised far above anything a benchmark
sends, so the figures say what the platform can do rather than what the guard lets through; the guard's code still
runs on every request.
"""

import asyncio
import json
import os
import platform as python_platform
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from services.kernel.settings import SERVICES

REPOSITORY = Path(__file__).resolve().parents[1]
RESULTS = REPOSITORY / "bench" / "results"
STARTUP_SECONDS = 180.0
STOP_SECONDS = 30.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Far above any benchmark's rate: the guard still runs, it just never says 429.
UNLIMITED_RATE = "100000000"
DATABASES = (*SERVICES, "gateway")
# The database server's entry in ProcessMeter's figures (PostgreSQL's processes, when the server is local).
DATABASE_SERVER = "postgres"


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict:
    return {"cpu_count": os.cpu_count(), "platform": python_platform.platform(),
            "python": python_platform.python_version(), "python_loop_seconds": python_loop_seconds()}


def python_loop_seconds(iterations: int = 5_000_000) -> float:
    """CPU seconds of a fixed pure-Python loop, the best of three: how fast this (shared, virtual) machine runs
    Python now. The load average does not show a host that gives the VM slower cores; on the same machine the
    month's CPU per line moved by a third between two hours with the same code, and this moved with it."""
    best = float("inf")
    for _ in range(3):
        began, total = time.process_time(), 0
        for i in range(iterations):
            total += i * i
        best = min(best, time.process_time() - began)
    return round(best, 3)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_base(span: int = 12) -> int:
    """A base whose derived ports are all free now, below Linux's ephemeral range (an outgoing connection could
    take a port up there between the check and the child's bind)."""
    for _ in range(200):
        base = random.randrange(20000, 32768 - span - 1)
        if all(_port_free(base + offset) for offset in range(span + 1)):
            return base
    raise RuntimeError("no free port range found")


class PostgresDatabases:
    """One database per service (and the gateway's) on the server ``admin_url`` points at, made for the run and
    dropped after it."""

    def __init__(self, admin_url: str):
        self.admin_url = make_url(admin_url)
        self.names = {name: f"sifund_bench_{os.getpid()}_{secrets.token_hex(3)}_{name}" for name in DATABASES}
        self._engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        self.server_pid: int | None = None

    def create(self) -> dict[str, str]:
        with self._engine.connect() as connection:
            for name in self.names.values():
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            self.server_pid = _local_postmaster(connection)
        return {f"SIFUND_{service.upper()}_DATABASE_URL":
                self.admin_url.set(database=name).render_as_string(hide_password=False)
                for service, name in self.names.items()}

    def reset_statements(self) -> bool:
        """Start pg_stat_statements' counts afresh (False: the server does not load it: see infra/postgres)."""
        try:
            with self._engine.connect() as connection:
                connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
                connection.execute(text("SELECT pg_stat_statements_reset()"))
        except DBAPIError:
            return False
        return True

    def top_statements(self, limit: int = 25) -> list[dict] | None:
        """The run's statements that took the server the longest since ``reset_statements`` (execution time, which
        includes waiting for a core on a loaded machine), with the service whose database ran them."""
        service_of = {database: service for service, database in self.names.items()}
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(text(
                    "SELECT d.datname, s.calls, s.total_exec_time + s.total_plan_time AS ms, s.rows, s.wal_bytes, "
                    "s.shared_blks_dirtied, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 240) AS query "
                    "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                    "ORDER BY ms DESC LIMIT :limit"), {"limit": limit}).all()
        except DBAPIError:
            return None
        return [{"service": service_of.get(datname, datname), "calls": calls, "ms": round(ms, 1), "rows": n,
                 "wal_bytes": int(wal), "blocks_dirtied": dirtied, "query": query}
                for datname, calls, ms, n, wal, dirtied, query in rows]

    def drop(self) -> None:
        with self._engine.connect() as connection:
            for name in self.names.values():
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._engine.dispose()


def _local_postmaster(connection) -> int | None:  # noqa: ANN001 — a SQLAlchemy Connection
    """The server's postmaster pid when it runs on this machine: the first line of its data directory's
    ``postmaster.pid``, else the parent of this connection's backend; None for a server elsewhere (the pid must be
    a process named ``postgres`` here, parent of this connection's backend)."""
    backend = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    if _command(backend) != "postgres" or (stat := _stat(backend)) is None:
        return None
    postmaster = stat[0]
    try:
        data_directory = connection.execute(text("SHOW data_directory")).scalar_one()
        postmaster = int((Path(data_directory) / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError, DBAPIError):  # not readable here, or not a superuser: the backend's parent
        pass
    return postmaster if postmaster == stat[0] and _command(postmaster) == "postgres" else None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _command(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


class RunningPlatform:
    """``sifund up`` in a subprocess: the code of this checkout (PYTHONPATH), its own data directory and ports."""

    def __init__(self, *, postgres_url: str | None = None, keep: bool = False, environment: dict | None = None):
        self.work_dir = Path(tempfile.mkdtemp(prefix="sifund-bench-"))
        self.data_dir = self.work_dir / "var"
        self.port_base = free_port_base()
        self.host = "127.0.0.1"
        self.gateway_url = f"http://{self.host}:{self.port_base}"
        self.keep = keep
        self.postgres = PostgresDatabases(postgres_url) if postgres_url else None
        self.environment = {k: v for k, v in os.environ.items() if not k.startswith("SIFUND_")}
        self.environment.update(
            SIFUND_DATA_DIR=str(self.data_dir), SIFUND_PORT_BASE=str(self.port_base),
            SIFUND_RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE=UNLIMITED_RATE, SIFUND_RATE_LIMIT_PER_IP_PER_MINUTE=UNLIMITED_RATE,
            PYTHONPATH=os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")])),
            **(environment or {}))
        self.lines: list[str] = []
        self.process: subprocess.Popen | None = None
        self.started_seconds: float | None = None

    @property
    def database(self) -> str:
        if self.postgres:
            return "PostgreSQL (one database per service, made for the run)"
        return "SQLite (one file per service, WAL, synchronous=FULL), fresh and migrated"

    def start(self) -> "RunningPlatform":
        if self.postgres:
            self.environment.update(self.postgres.create())
        began = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sifund.cli", "up", "--timeout", str(int(STARTUP_SECONDS))], cwd=self.work_dir,
            env=self.environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._collect, daemon=True).start()
        deadline = began + STARTUP_SECONDS + 10
        while "Press Ctrl-C to stop." not in self.output:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sifund up did not start:\n{self.output}")
            time.sleep(0.1)
        self.started_seconds = round(time.monotonic() - began, 2)
        return self

    def _collect(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def credentials(self) -> dict[str, str]:
        """Demo user and client secrets by name, from the private file ``sifund up`` wrote."""
        found = {}
        for line in (self.data_dir / "demo-credentials.txt").read_text().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] in ("user", "client"):
                found[parts[1]] = parts[2]
        return found

    def supervised(self) -> dict[str, dict]:
        """The launcher's children by name (pid, status, restarts), from its state file."""
        try:
            body = json.loads((self.data_dir / "supervisor.json").read_text())
        except (OSError, ValueError):
            return {}
        return {child["name"]: child for child in body["children"]}

    def pids(self) -> dict[str, int]:
        """Each child's pid by name (``nats``, the services, ``gateway``) and the launcher's own."""
        found = {name: child["pid"] for name, child in self.supervised().items() if child.get("pid")}
        if not found:  # the state file is written once supervision starts: the ready report has them too
            found = {m[1]: int(m[2]) for m in re.finditer(r"^\s+([\w-]+)\s+\S+\s+pid (\d+)", self.output,
                                                            re.MULTILINE)}
        return {**found, "launcher": self.process.pid}

    def restarts(self) -> dict[str, int]:
        return {name: child.get("restarts", 0) for name, child in self.supervised().items() if child.get("restarts")}

    def service_url(self, service: str) -> str:
        """A service's own address, bypassing the gateway (the port the launcher gave it)."""
        match = re.search(rf"^\s+{service}\s+(http://\S+)\s+pid", self.output, re.MULTILINE)
        if match is None:
            raise RuntimeError(f"{service} not in the ready report:\n{self.output}")
        return match[1]

    def stop(self) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            if self.postgres:
                self.postgres.drop()
            if not self.keep:
                shutil.rmtree(self.work_dir, ignore_errors=True)


# -- a benchmark's run ---------------------------------------------------------------------------------------------------


def run_on_platform(name: str, options, drive: Callable[["RunningPlatform", object, dict], Awaitable[None]], *,  # noqa: ANN001
                    expected: type[Exception], announce: str = "") -> tuple[dict, str | None]:
    """Start the platform (``options.postgres``, ``options.keep``), run ``drive(platform, options, result)`` and stop
    it; the result carries the run's header (name, date, machine, load before and after, arguments, database,
    startup seconds, restarts) and, if it failed, why (an ``expected`` failure's message as it is, anything else with
    its type) with the platform's last lines. Returns (result, failure or None)."""
    result: dict = {"name": name, "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
                    "load": {"before": load()}, "arguments": {k: str(v) if isinstance(v, Path) else v
                                                               for k, v in vars(options).items()}}
    platform = RunningPlatform(postgres_url=options.postgres, keep=options.keep)
    result["database"] = platform.database
    failure = None
    try:
        platform.start()
        result["startup_seconds"] = platform.started_seconds
        print(f"{name}: platform up in {platform.started_seconds} s (data in {platform.data_dir}){announce}",
              flush=True)
        asyncio.run(drive(platform, options, result))
    except expected as exc:
        failure = str(exc)
    except Exception as exc:  # noqa: BLE001 — say what broke, with the platform's side of it
        failure = f"{type(exc).__name__}: {exc}"
    finally:
        result["restarts"] = platform.restarts() if platform.process else {}
        result["load"]["after"] = load()
        if failure:
            result["failure"] = failure
            result["platform_output_tail"] = platform.lines[-40:]
            if options.keep:
                result["data_dir"] = str(platform.data_dir)
        platform.stop()
    return result, failure


def write_result(result: dict, output: Path, failure: str | None) -> Path:
    """``output``, or ``<output>.failed.json`` for a run that failed (the committed result is left alone)."""
    written = output if not failure else output.with_suffix(".failed.json")
    written.parent.mkdir(parents=True, exist_ok=True)
    written.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    if failure:
        print(f"{result['name']}: FAILED: {failure}\n(result in {written})", file=sys.stderr)
    return written


# -- what each process costs ------------------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds: utime + stime + cutime + cstime) of one process, None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
    return int(fields[1]), sum(int(x) for x in fields[11:15]) / CLOCK_TICKS


def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _process_table() -> dict[int, tuple[int, float]]:
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            table[int(entry.name)] = stat
    return table


def _tree(root: int, table: dict[int, tuple[int, float]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (parent, _cpu) in table.items():
        children.setdefault(parent, []).append(pid)
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        if pid in table:
            found.append(pid)
            pending.extend(children.get(pid, []))
    return found


def _pss_kb(pid: int) -> int:
    """A process's proportional set size: its shared pages (PostgreSQL's shared buffers) divided among their users,
    so that a sum over the server's processes counts them once."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 0


@dataclass
class ProcessMeter:
    """CPU seconds and peak RSS of each of the platform's processes, by child name. Each child counts with every
    process under it (a gateway run with several workers, say); the launcher counts alone. On PostgreSQL with the
    server on this machine, ``postgres`` is the server: the postmaster with its backends and workers (those it
    already reaped included), RSS as the sum of their PSS (shared buffers once), sampled whenever the platform is.
    The server may serve others too (a test suite's databases): its figures are the machine's server, not the
    run's alone."""

    platform: RunningPlatform
    peak_rss_kb: dict[str, int] = field(default_factory=dict)

    def _pids(self) -> dict[str, int]:
        pids = self.platform.pids()
        if self.platform.postgres is not None and self.platform.postgres.server_pid is not None:
            pids[DATABASE_SERVER] = self.platform.postgres.server_pid
        return pids

    def _rss_kb(self, name: str, tree: list[int], key: str) -> int:
        if name == DATABASE_SERVER:
            return sum(_pss_kb(p) for p in tree)
        return sum(_status_kb(p, key) or 0 for p in tree)

    def cpu(self) -> dict[str, float]:
        table = _process_table()
        seconds = {}
        for name, pid in self._pids().items():
            tree = [pid] if name == "launcher" else _tree(pid, table)
            seconds[name] = sum(table[p][1] for p in tree)
            rss = self._rss_kb(name, tree, "VmHWM")
            self.peak_rss_kb[name] = max(self.peak_rss_kb.get(name, 0), rss)
            if name == DATABASE_SERVER:
                seconds.update(self._by_database(tree, table))
        return seconds

    def _by_database(self, tree: list[int], table: dict[int, tuple[int, float]]) -> dict[str, float]:
        """``postgres.<service>``: the CPU of the backends now serving each service's database (its pooled
        connections, which live as long as the service; a backend that ended has left its CPU to the server's
        total only). Part of ``postgres``, not in addition to it."""
        service_of = {database: service for service, database in self.platform.postgres.names.items()}
        seconds = dict.fromkeys((f"{DATABASE_SERVER}.{service}" for service in service_of.values()), 0.0)
        for pid in tree:
            words = _cmdline(pid).split()  # "postgres: <user> <database> <client> <state>"
            if len(words) > 2 and words[0] == "postgres:" and words[2] in service_of:
                seconds[f"{DATABASE_SERVER}.{service_of[words[2]]}"] += table[pid][1]
        return seconds

    def rss_now_kb(self) -> dict[str, int]:
        table = _process_table()
        return {name: self._rss_kb(name, [pid] if name == "launcher" else _tree(pid, table), "VmRSS")
                for name, pid in self._pids().items()}


def platform_seconds(cpu: dict[str, float]) -> float:
    """The platform's own CPU in ``cpu`` (a ProcessMeter's figures): every process but the database server's."""
    return sum(seconds for name, seconds in cpu.items() if name.partition(".")[0] != DATABASE_SERVER)


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before.get(name, 0.0), 3) for name in after}


def client_cpu_seconds() -> float:
    """This process's CPU (the benchmark's own client)."""
    usage = os.times()
    return usage.user + usage.system
