"""``sifund up``: the embedded topology on one machine — nats-server, the four services and the gateway as child
processes — started in order, supervised, and stopped cleanly.

A child that dies on its own (crash, OOM kill, SIGKILL) is restarted after a backoff, within a restart budget
(``SIFUND_SUPERVISOR_*``, see ``services/kernel/supervision.py``); one that exhausts the budget is marked failed and
the others keep serving. Each child's state is kept in ``<data dir>/supervisor.json`` for ``/health`` and
``sifund status``.

``sifund up --nats-cluster 3`` runs NATS as a local 3-node JetStream cluster instead (``sifund.natsd.NatsCluster``:
node 1 on the usual NATS ports, the others and the routes on free loopback ports, stores under
``<data dir>/nats-cluster/node<i>``), each node a supervised child (``nats-1`` …), the services given every node's
URL and ``SIFUND_NATS_REPLICAS`` = the cluster's size (at most 3 … 5 replicas make sense; see README, "Running at
scale"). A single node killed is restarted like any child, and while it is down the others keep the streams going.

No child may outlive the launcher. A normal stop (Ctrl-C, SIGTERM, SIGHUP) terminates the gateway first, then the
services, then NATS last so that the services can drain their bus connections. On Linux each child also gets
``PR_SET_PDEATHSIG``: if the launcher itself is killed, the kernel sends the child SIGTERM.
"""

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import IO
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import typer

from gateway.identity.admin import create_demo, ensure_scheduler_client, identity_is_empty, scheduler_secret_file
from services.kernel import clock
from services.kernel.auth import ensure_dev_key_pair
from services.kernel.settings import PORT_OFFSETS, SERVICES, Settings
from services.kernel.supervision import (FAILED, RESTARTING, RUNNING, ChildState, RestartPolicy, process_alive,
                                         state_file, write_state)
from sifund import services as catalogue
from services.kernel.metrics import MULTIPROC_ENV, multiprocess_environment, scrape_targets
from sifund.logfiles import LogFile, nats_json_line
from sifund.natsd import NatsCluster, NatsServer

GATEWAY_FACTORY = "gateway.app:create_app"
PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# uvicorn waits this long for open requests when stopping; kept below STOP_GRACE_SECONDS.
UVICORN_GRACEFUL_SECONDS = 3
# Per shutdown stage (gateway, services, NATS) before stragglers get SIGKILL.
STOP_GRACE_SECONDS = 4.0
# A restarted nats-server must answer its health check within this long, or the start counts as another death.
NATS_RESTART_TIMEOUT_SECONDS = 30.0
# Replicas beyond the first of each service (``--replicas``) listen from port_base + this on, service by service.
REPLICA_PORT_OFFSET = 20
MAX_REPLICAS = 8

Echo = Callable[..., None]  # typer.echo's signature: (message, err=False)


class LaunchError(Exception):
    """The platform could not be started; the message names the component and its log file."""


class StopRequested(Exception):
    """A stop signal arrived while starting."""


class StopFlag:
    """Set by a signal handler. A plain attribute: a ``threading.Event`` set from a handler can deadlock if the
    signal lands while the main thread holds the event's lock."""

    def __init__(self) -> None:
        self.requested = False

    def set(self) -> None:
        self.requested = True

    def wait(self, timeout: float) -> bool:
        ends = time.monotonic() + timeout
        while not self.requested and (left := ends - time.monotonic()) > 0:
            time.sleep(min(0.05, left))
        return self.requested


@dataclass
class Child:
    name: str
    url: str
    process: subprocess.Popen
    log_file: Path
    health_url: str | None = None
    # Starts the child again and returns its new process (raising if it could not be started at all).
    respawn: Callable[[], subprocess.Popen] | None = None
    policy: RestartPolicy | None = None
    status: str = RUNNING
    restarts: int = 0
    last_exit_code: int | None = None
    restart_at: float = 0.0

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def state(self) -> ChildState:
        return ChildState(self.name, self.process.pid if self.status == RUNNING else None, self.status, self.restarts,
                          self.last_exit_code)


def _exit_description(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def _die_with_launcher() -> Callable[[], None] | None:
    """The ``preexec_fn`` for every child (Linux only): own process group, SIGTERM when the launcher dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: nothing to load in the child
    except (OSError, AttributeError):
        return None
    launcher_pid = os.getpid()

    def setup() -> None:
        # Ctrl-C in the terminal reaches only the launcher, which then stops the children in order.
        os.setpgid(0, 0)
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != launcher_pid:  # the launcher died before prctl took effect
            os._exit(1)

    return setup


def _end_leftovers(child: Child) -> None:
    """A child that ran worker processes (the gateway with ``gateway_workers`` > 1: uvicorn's workers) and died
    without stopping them leaves them in its process group (its own, see ``_die_with_launcher``), still holding its
    port: they are killed, so that no process outlives its component and a restart can listen again."""
    if not sys.platform.startswith("linux"):
        return
    try:
        os.killpg(child.process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # nothing left in the group


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is not "in use"
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def is_nats(name: str) -> bool:
    """A NATS child: ``nats``, or a cluster node ``nats-<i>``."""
    return name == "nats" or name.startswith("nats-")


def replica_name(service: str, replica: int) -> str:
    """``accounts`` for the first replica (its usual port and log), ``accounts-2`` and on for the others."""
    return service if replica == 1 else f"{service}-{replica}"


def replica_port(settings: Settings, service: str, replica: int) -> int:
    if replica == 1:
        return settings.port(service)
    return settings.port_base + REPLICA_PORT_OFFSET + (replica - 2) * len(SERVICES) + SERVICES.index(service)


def port_span(replicas: int) -> int:
    """The highest offset from port_base the topology listens on."""
    highest_replica = REPLICA_PORT_OFFSET + (replicas - 1) * len(SERVICES) - 1 if replicas > 1 else 0
    return max(max(PORT_OFFSETS.values()), highest_replica)


class Platform:
    def __init__(self, settings: Settings, echo: Echo = typer.echo, *, replicas: int = 1, nats_cluster: int = 1):
        if not 1 <= replicas <= MAX_REPLICAS:
            raise LaunchError(f"--replicas must be between 1 and {MAX_REPLICAS}, not {replicas}")
        if not 1 <= nats_cluster <= 5:
            raise LaunchError(f"--nats-cluster {nats_cluster}: a cluster of 1 to 5 nodes (3 survives the loss of one)")
        self.settings = settings
        self.replicas = replicas
        self.echo = echo
        self.nats_cluster = nats_cluster
        self.data_dir = settings.data_dir.resolve()
        self.log_dir = self.data_dir / "logs"
        self.pid_file = self.data_dir / "sifund.pid"
        self.state_file = state_file(self.data_dir)
        self.children: list[Child] = []
        self.log_files: dict[str, LogFile] = {}
        self.log_pumps: list[threading.Thread] = []
        self.stop_requested = StopFlag()
        self._preexec = _die_with_launcher()

    # -- urls ----------------------------------------------------------------------------------------------------

    def local_url(self, component: str, replica: int = 1) -> str:
        port = replica_port(self.settings, component, replica) if component in SERVICES else self.settings.port(component)
        return f"http://{self.settings.host}:{port}"

    @property
    def gateway_url(self) -> str:
        return self.local_url("gateway")

    # -- start ---------------------------------------------------------------------------------------------------

    def start(self, timeout: float) -> None:
        """Start every component and wait until all are healthy. Raises ``LaunchError`` or ``StopRequested``;
        either way ``stop`` then stops whatever was started."""
        deadline = time.monotonic() + timeout
        self._claim_pid_file()
        self._check_ports()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        ensure_dev_key_pair(self.settings)  # before any child: they all verify tokens with the same public key
        scheduler = self._scheduler_environment()
        nats = self._start_nats(timeout) if self.nats_cluster == 1 else self._start_nats_cluster(timeout)
        environment = self._child_environment(nats)
        # The first replica of each service migrates its database before the others start (no two migrate at once).
        for replica in range(1, self.replicas + 1):
            for service in SERVICES:
                self._spawn(service, catalogue.app_factory_path(service),
                            {**environment, **scheduler} if service == "oversight" else environment, replica)
            if replica == 1:
                self._spawn("gateway", GATEWAY_FACTORY, environment)
            self._wait_healthy(deadline, timeout)
        self._write_scrape_targets()

    def _write_scrape_targets(self) -> None:
        """<data dir>/prometheus-targets.json: every service and gateway process's address for Prometheus
        (infra/prometheus/prometheus-cluster.yml reads it with file_sd_configs), whatever --replicas gave."""
        processes = [(c.name, c.url) for c in self.children if not is_nats(c.name)]
        (self.data_dir / "prometheus-targets.json").write_text(json.dumps(scrape_targets(processes), indent=1) + "\n")

    def _claim_pid_file(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            other = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            other = None
        if other is not None and other != os.getpid() and process_alive(other):
            raise LaunchError(f"already running with data in {self.data_dir} (pid {other}, "
                              f"{self.pid_file}); stop it first or set another SIFUND_DATA_DIR")
        self.pid_file.write_text(f"{os.getpid()}\n")

    def _check_ports(self) -> None:
        ports = {c: self.settings.port(c) for c in ["gateway", *SERVICES, "nats", "nats_monitor"]}
        ports.update({replica_name(s, r): replica_port(self.settings, s, r)
                      for r in range(2, self.replicas + 1) for s in SERVICES})
        busy = [f"{c} {port}" for c, port in ports.items() if _port_in_use(self.settings.host, port)]
        if busy:
            raise LaunchError(f"ports already in use on {self.settings.host}: {', '.join(busy)}; "
                              f"stop what uses them or set another SIFUND_PORT_BASE")

    def _scheduler_environment(self) -> dict[str, str]:
        """The oversight scheduler's client credential, for the oversight process only: as configured, or the
        client this data directory's identity store holds for it (created on first start)."""
        if self.settings.oversight_scheduler.client_id:
            return {}  # configured by the operator (environment or .env): passed through as it is
        ensured = ensure_scheduler_client(self.settings)
        if ensured is None:
            self.echo(f"sifund: the oversight scheduler's client exists but its secret is not in "
                      f"{scheduler_secret_file(self.settings)}; set SIFUND_OVERSIGHT_SCHEDULER_CLIENT_ID and "
                      f"_CLIENT_SECRET (until then the scheduler skips the jobs that call other services)", err=True)
            return {}
        client_id, secret, created = ensured
        if created:
            self.echo(f"sifund: created the oversight scheduler's system client {client_id} "
                      f"(secret kept in {scheduler_secret_file(self.settings)})")
        return {"SIFUND_OVERSIGHT_SCHEDULER_CLIENT_ID": client_id, "SIFUND_OVERSIGHT_SCHEDULER_CLIENT_SECRET": secret}

    def _start_nats(self, timeout: float) -> NatsServer:
        log_file = self.log_dir / "nats.log"
        nats = NatsServer(self.data_dir / "nats", host=self.settings.host, port=self.settings.port("nats"),
                          monitor_port=self.settings.port("nats_monitor"), log_file=log_file,
                          log_sink=self._nats_log_sink("nats"))
        try:
            nats.start(timeout=timeout, preexec_fn=self._preexec)
        except (RuntimeError, TimeoutError, OSError) as exc:
            nats.stop()
            raise LaunchError(f"nats did not start: {exc}; see {log_file}") from exc
        self.children.append(Child("nats", nats.url, nats.process, log_file, f"{nats.monitor_url}/healthz",
                                   respawn=lambda: self._restart_nats(nats), policy=self._restart_policy()))
        return nats

    def _start_nats_cluster(self, timeout: float) -> NatsCluster:
        cluster = NatsCluster(self.data_dir / "nats-cluster", size=self.nats_cluster, host=self.settings.host,
                              first_port=self.settings.port("nats"),
                              first_monitor_port=self.settings.port("nats_monitor"))
        for i, node in enumerate(cluster.nodes, start=1):
            node.log_file = self.log_dir / f"nats-{i}.log"
            node.log_sink = self._nats_log_sink(f"nats-{i}")
        try:
            for node in cluster.nodes:  # all spawned first: each node waits for its routes to the others
                node.spawn(self._preexec)
            for node in cluster.nodes:
                node.wait_ready(timeout)
            cluster.wait_meta_leader(timeout)
        except (RuntimeError, TimeoutError, OSError) as exc:
            cluster.stop()
            raise LaunchError(f"the nats cluster did not start: {exc}; see {self.log_dir}/nats-*.log") from exc
        for i, node in enumerate(cluster.nodes, start=1):
            self.children.append(Child(f"nats-{i}", node.url, node.process, node.log_file,
                                       f"{node.monitor_url}/healthz", respawn=lambda node=node: self._restart_nats(node),
                                       policy=self._restart_policy()))
        return cluster

    def _restart_nats(self, nats: NatsServer) -> subprocess.Popen:
        """The same ports and store (NatsServer keeps the address of its first start): clients reconnect to it and
        the streams, consumers and unacknowledged messages are all still there."""
        try:
            nats.start(timeout=NATS_RESTART_TIMEOUT_SECONDS, preexec_fn=self._preexec)
        except (RuntimeError, TimeoutError) as exc:
            self.echo(f"sifund: nats did not start again: {exc}", err=True)
            if nats.process is not None and nats.process.poll() is None:
                nats.process.kill()
                nats.process.wait()
        if nats.process is None:
            raise OSError("nats-server could not be started")
        return nats.process

    def _restart_policy(self) -> RestartPolicy:
        return RestartPolicy(initial_seconds=self.settings.supervisor_backoff_initial_seconds,
                             max_seconds=max(self.settings.supervisor_backoff_max_seconds,
                                             self.settings.supervisor_backoff_initial_seconds),
                             max_restarts=self.settings.supervisor_max_restarts,
                             window_seconds=self.settings.supervisor_window_seconds)

    def _child_environment(self, nats: NatsServer | NatsCluster) -> dict[str, str]:
        """The launcher's environment (so SIFUND_* database URLs and the like pass through) with the topology it
        started pinned explicitly: every child must see the same ports, directories and bus."""
        clock.anchor()  # a shifted clock (SIFUND_TEST_CLOCK) is anchored once, so every child reads the same time
        environment = dict(os.environ)
        environment.update(
            SIFUND_DATA_DIR=str(self.data_dir),
            SIFUND_HOST=self.settings.host,
            SIFUND_PORT_BASE=str(self.settings.port_base),
            SIFUND_NATS_URL=nats.url,
            # The launcher's choice, whatever source its settings came from (the services' middleware reads it).
            SIFUND_SERVICE_ACCESS_LOG=str(self.settings.service_access_log).lower(),
            PYTHONUNBUFFERED="1",
        )
        if isinstance(nats, NatsCluster):
            # Every node's monitor: the gateway's /health finds NATS up while any node answers.
            environment["SIFUND_NATS_MONITOR_URL"] = ",".join(node.monitor_url for node in nats.nodes)
            environment["SIFUND_NATS_REPLICAS"] = str(min(len(nats.nodes), 5))
        else:
            environment["SIFUND_NATS_MONITOR_URL"] = nats.monitor_url
        # Long-running service processes: freeze what start-up built (see Settings.gc_freeze_after_startup), unless
        # the operator said otherwise.
        environment.setdefault("SIFUND_GC_FREEZE_AFTER_STARTUP", "true")
        for service in SERVICES:  # every replica: the gateway balances across them
            environment[f"SIFUND_{service.upper()}_URL"] = ",".join(
                self.local_url(service, r) for r in range(1, self.replicas + 1))
        return environment

    def _spawn(self, component: str, factory: str, environment: dict[str, str], replica: int = 1) -> Child:
        name, url = replica_name(component, replica), self.local_url(component, replica)
        port = int(url.rsplit(":", 1)[1])
        child = Child(name, url, self._popen(name, factory, environment, port), self.log_dir / f"{name}.log",
                      f"{url}/health", respawn=lambda: self._popen(name, factory, environment, port),
                      policy=self._restart_policy())
        self.children.append(child)
        return child

    def _popen(self, name: str, factory: str, environment: dict[str, str], port: int) -> subprocess.Popen:
        command = [
            sys.executable, "-m", "uvicorn", "--factory", factory,
            "--host", self.settings.host, "--port", str(port),
            "--log-level", self.settings.log_level.lower(),
            "--timeout-graceful-shutdown", str(UVICORN_GRACEFUL_SECONDS),
            "--no-server-header",  # the software and its version are nobody's business
            # uvloop's event loop and httptools' parser (uvicorn[standard]): a cheap request costs less CPU than with
            # asyncio's loop and h11 (bench/gateway_profile.py); a response's head and body in one write
            # (services/kernel/http_protocol.py).
            "--loop", "uvloop", "--http", "services.kernel.http_protocol:CoalescingHttpToolsProtocol",
            # The access line is written by the app's request middleware (services.kernel.web, cheaper than a
            # stdlib record per request); the service's own is kept or not by SIFUND_SERVICE_ACCESS_LOG.
            "--no-access-log",
        ]
        workers = self.settings.gateway_workers if name == "gateway" else 1
        if workers > 1:
            command += ["--workers", str(workers)]
        log = self._log_file(name)
        log.event(name, "launcher.child_starting", command=" ".join(command[2:]))
        # Several uvicorn workers share their counters through files (prometheus_client's multiprocess mode); a
        # single process keeps them in its own memory: a file write and a pid check per counter change were ~5 % of
        # a cheap read's CPU in the service (bench/gateway_reads.py, py-spy).
        child_env = {name_: value for name_, value in environment.items() if name_ != MULTIPROC_ENV}
        if workers > 1:
            child_env.update(multiprocess_environment(self.data_dir / "metrics" / name))
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env=child_env, preexec_fn=self._preexec)
        self.log_pumps.append(log.pump(process.stdout, name))
        return process

    def _nats_log_sink(self, name: str) -> Callable[[IO[bytes]], None]:
        """nats-server's output into ``<name>.log`` like every child's: JSON lines with its level, rotated."""
        def sink(stream: IO[bytes]) -> None:
            self.log_pumps.append(self._log_file(name).pump(stream, name, wrap=nats_json_line))
        return sink

    def _log_file(self, name: str) -> LogFile:
        """The child's log file (sifund/logfiles.py: JSON lines, rotated by size), one per name across restarts."""
        if name not in self.log_files:
            self.log_files[name] = LogFile(self.log_dir / f"{name}.log", max_bytes=self.settings.log_max_bytes,
                                           backup_count=self.settings.log_backup_count)
        return self.log_files[name]

    def _wait_healthy(self, deadline: float, timeout: float) -> None:
        pending = [c for c in self.children if not is_nats(c.name) and c.health_url is not None]
        last_seen: dict[str, str] = {c.name: "no answer yet" for c in pending}
        with httpx.Client(timeout=1.0, trust_env=False) as client:
            while pending:
                if self.stop_requested.requested:
                    raise StopRequested
                for child in list(pending):
                    if not child.running:
                        raise LaunchError(f"{child.name} exited with code {child.process.returncode} while starting; "
                                          f"see {child.log_file}")
                    try:
                        response = client.get(child.health_url)
                    except httpx.HTTPError as exc:
                        last_seen[child.name] = type(exc).__name__
                        continue
                    if response.status_code == 200:
                        pending.remove(child)
                    else:
                        last_seen[child.name] = f"HTTP {response.status_code}: {response.text[:200]}"
                if pending and time.monotonic() > deadline:
                    first = pending[0]
                    raise LaunchError(f"{first.name} not healthy within {timeout:g}s (last: {last_seen[first.name]}); "
                                      f"see {first.log_file}")
                if pending:
                    self.stop_requested.wait(0.2)

    # -- run -----------------------------------------------------------------------------------------------------

    def supervise(self) -> int:
        """Block until a stop is requested (0), restarting children that die on their own; 1 once every child has
        failed (nothing left to serve)."""
        self._write_state()
        while not self.stop_requested.wait(0.25):
            dead = [c for c in self.children if c.status == RUNNING and not c.running]
            # Children die after a signal reached the launcher too (e.g. Ctrl-C on a non-Linux terminal): give
            # the launcher's own handler a moment before calling it unexpected.
            if dead and self.stop_requested.wait(0.2):
                break
            for child in dead:
                self._died(child)
            due = [c for c in self.children if c.status == RESTARTING and time.monotonic() >= c.restart_at]
            for child in due:
                self._restart(child)
            if dead or due:
                self._write_state()
            if all(c.status == FAILED for c in self.children):
                self.echo("sifund: every component has failed; stopping", err=True)
                return 1
        return 0

    def _died(self, child: Child) -> None:
        child.last_exit_code = child.process.returncode
        _end_leftovers(child)
        exited = f"sifund: {child.name} (pid {child.process.pid}) exited with {_exit_description(child.last_exit_code)}"
        delay = child.policy.next_delay(time.monotonic()) if child.policy else None
        if delay is None:
            child.status = FAILED
            self.echo(f"{exited}; restart budget used up ({self.settings.supervisor_max_restarts} restarts within "
                      f"{self.settings.supervisor_window_seconds:g}s): marked failed, the rest keeps running; "
                      f"see {child.log_file}", err=True)
            return
        child.status, child.restart_at = RESTARTING, time.monotonic() + delay
        self.echo(f"{exited}; restarting it in {delay:g}s (attempt {child.restarts + 1}); see {child.log_file}",
                  err=True)

    def _restart(self, child: Child) -> None:
        child.restarts += 1
        child.status = RUNNING
        try:
            child.process = child.respawn()
        except OSError as exc:  # not even a process: the old one's death is seen again, so the budget still bounds it
            self.echo(f"sifund: {child.name} could not be started again: {exc}", err=True)
            return
        self.echo(f"sifund: {child.name} restarted (pid {child.process.pid}, restart {child.restarts})")

    def _write_state(self) -> None:
        try:
            write_state(self.state_file, os.getpid(), [c.state() for c in self.children])
        except OSError as exc:  # a full disk must not stop supervision itself
            self.echo(f"sifund: could not write {self.state_file}: {exc}", err=True)

    # -- stop ----------------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Gateway first, services next, NATS last; SIGTERM, then SIGKILL after a grace period."""
        stages = [lambda name: name == "gateway", lambda name: name.split("-")[0] in SERVICES, is_nats]
        for stage in stages:
            children = [c for c in self.children if stage(c.name)]
            for child in children:
                if child.running:
                    child.process.terminate()
            grace_ends = time.monotonic() + STOP_GRACE_SECONDS
            for child in children:
                try:
                    child.process.wait(max(0.0, grace_ends - time.monotonic()))
                except subprocess.TimeoutExpired:
                    self.echo(f"sifund: {child.name} (pid {child.process.pid}) did not stop in time; killing it",
                              err=True)
                    child.process.kill()
                    child.process.wait()
            for child in children:
                _end_leftovers(child)
        for pump in self.log_pumps:  # the children's last lines, written before the launcher exits
            pump.join(timeout=STOP_GRACE_SECONDS)
        for log in self.log_files.values():
            log.close()
        self.state_file.unlink(missing_ok=True)
        self._release_pid_file()

    def _release_pid_file(self) -> None:
        try:
            if int(self.pid_file.read_text().strip()) == os.getpid():
                self.pid_file.unlink()
        except (FileNotFoundError, ValueError):
            pass

    # -- report --------------------------------------------------------------------------------------------------

    def describe(self) -> list[str]:
        by_name = {c.name: c for c in self.children}
        lines = [f"  {'gateway':<11} {self.gateway_url:<28} pid {by_name['gateway'].process.pid}",
                 f"  {'docs':<11} {self.gateway_url}/docs"]
        for replica in range(1, self.replicas + 1):
            for service in SERVICES:
                child = by_name[replica_name(service, replica)]
                lines.append(f"  {child.name:<11} {child.url:<28} pid {child.process.pid}")
        for nats in (c for c in self.children if is_nats(c.name)):
            monitor = nats.health_url.removesuffix("/healthz")
            lines.append(f"  {nats.name:<11} {nats.url:<28} pid {nats.process.pid} (monitor {monitor})")
        return lines


@contextmanager
def stop_signals(flag: StopFlag) -> Iterator[None]:
    """While inside, SIGINT/SIGTERM/SIGHUP only set ``flag``: start-up and supervision check it between steps,
    so a signal never interrupts the launcher halfway through starting or stopping a child."""
    previous = {sig: signal.signal(sig, lambda *_: flag.set()) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), whatever mode an older copy had."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)


def describe_demo(created: list[dict], settings: Settings) -> list[str]:
    """Keep the demo credentials in ``<data dir>/demo-credentials.txt`` (mode 0600) and return what to print: where
    the file is and who was created — never a password or a client secret (a terminal's output ends up in
    scroll-back, screen shares and CI logs)."""
    rows = [f"  {c['kind']:<6} {c['username']:<26} {c['password']:<46} {c['role']}" for c in created]
    token_url = f"http://{settings.host}:{settings.port('gateway')}/auth/token"
    user = next((c for c in created if c["kind"] == "user"), None)
    example = [f"  e.g. curl -d 'username={user['username']}&password={user['password']}' {token_url}"] if user else []
    path = settings.data_dir / "demo-credentials.txt"
    write_private(path, "\n".join(["Demo accounts (kind, user name or client id, password or secret, role):",
                                   *rows, *example]) + "\n")
    users = sum(c["kind"] == "user" for c in created)
    return [f"Demo accounts: {users} users and {len(created) - users} system clients created (one per role); their "
            f"passwords and client secrets are in {path} (mode 0600, readable by you only), not printed here.",
            f"  e.g. curl -d 'username={user['username']}&password=…' {token_url}" if user else
            f"  sign in at {token_url}"]


def up(settings: Settings, *, timeout: float = 60.0, echo: Echo = typer.echo, replicas: int = 1,
       nats_cluster: int = 1) -> int:
    """Start everything, report where it is, run until stopped. Returns the process exit code."""
    try:
        platform = Platform(settings, echo, replicas=replicas, nats_cluster=nats_cluster)
    except LaunchError as exc:
        echo(f"sifund: {exc}", err=True)
        return 2
    with stop_signals(platform.stop_requested):
        try:
            echo(f"sifund: starting (data in {platform.data_dir}, logs in {platform.log_dir})")
            demo = create_demo(settings) if identity_is_empty(settings) else []
            platform.start(timeout)
            echo("sifund is ready:")
            for line in platform.describe():
                echo(line)
            if demo:
                for line in describe_demo(demo, settings):
                    echo(line)
            echo(f"Gateway {platform.gateway_url}, API docs {platform.gateway_url}/docs. Press Ctrl-C to stop.")
            code = platform.supervise()
        except StopRequested:
            code = 0
        except LaunchError as exc:
            echo(f"sifund: {exc}", err=True)
            code = 1
        finally:
            echo("sifund: stopping")
            platform.stop()
    echo("sifund: stopped")
    return code
