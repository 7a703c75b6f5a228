"""The platform under faults: ``sifund up`` in a subprocess (its own data directory, port range and databases), the
children its supervisor keeps in ``supervisor.json``, and a seeded schedule that SIGKILLs them."""

import asyncio
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sifund.launcher import port_span
from tests.support.launcher import free_port_base as free_ports_for, sifund_command

STARTUP_SECONDS = 120.0
STOP_SECONDS = 20.0


def free_port_base(replicas: int = 1) -> int:
    """A port base with room for ``replicas`` processes per service."""
    return free_ports_for(port_span(replicas))


class RunningPlatform:
    """``sifund up`` with the environment it is given; its output is kept for the failure message."""

    def __init__(self, data_dir: Path, environment: dict[str, str], port_base: int, replicas: int = 1,
                 nats_nodes: int = 1):
        self.data_dir = data_dir
        self.replicas = replicas
        self.nats_nodes = nats_nodes
        self.port_base = port_base
        self.gateway_url = f"http://127.0.0.1:{port_base}"
        self.environment = {**environment, "SIFUND_DATA_DIR": str(data_dir), "SIFUND_PORT_BASE": str(port_base)}
        self.lines: list[str] = []
        self.process: subprocess.Popen | None = None

    def start(self) -> "RunningPlatform":
        self.process = subprocess.Popen([*sifund_command(), "up", "--timeout", str(int(STARTUP_SECONDS)),
                                         "--replicas", str(self.replicas), "--nats-cluster", str(self.nats_nodes)],
                                        cwd=self.data_dir.parent, env=self.environment, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._collect, daemon=True).start()
        deadline = time.monotonic() + STARTUP_SECONDS + 10
        while "Press Ctrl-C to stop." not in self.output:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"sifund up did not start:\n{self.output}")
            time.sleep(0.2)
        return self

    def _collect(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def children(self) -> dict[str, dict]:
        """The supervisor's children by name (pid, status, restarts), as ``/health`` and ``sifund status`` see them."""
        try:
            body = json.loads((self.data_dir / "supervisor.json").read_text())
        except (OSError, ValueError):
            return {}
        return {child["name"]: child for child in body["children"]}

    def nats_monitors(self) -> dict[str, str]:
        """Each NATS child's monitor URL by child name, from the ready report."""
        return {m[1]: m[2] for m in re.finditer(r"^\s+(nats(?:-\d+)?)\s+\S+\s+pid \d+ \(monitor (\S+)\)",
                                                 self.output, re.MULTILINE)}

    def stream_leader(self, stream: str) -> str | None:
        """The child (``nats-<i>``) leading ``stream`` in a cluster, as any answering node's monitor says."""
        for monitor in self.nats_monitors().values():
            try:
                body = httpx.get(f"{monitor}/jsz", params={"streams": "true"}, timeout=2.0, trust_env=False).json()
            except (httpx.HTTPError, ValueError):
                continue
            for account in body.get("account_details") or []:
                for detail in account.get("stream_detail") or []:
                    leader = (detail.get("cluster") or {}).get("leader")
                    if detail.get("name") == stream and leader:
                        return f"nats-{leader.rsplit('-', 1)[1]}"
        return None

    def credentials(self) -> dict[str, str]:
        """Demo user and client secrets by name, from the private file ``sifund up`` wrote."""
        found = {}
        for line in (self.data_dir / "demo-credentials.txt").read_text().splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[0] in ("user", "client"):
                found[parts[1]] = parts[2]
        return found

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Kill:
    at: float  # seconds since the schedule started
    name: str
    pid: int
    recovered_after: float | None = None  # seconds until the child ran again and the gateway answered /health 200
    leader_of: str | None = None  # the stream this NATS node was leading when it was killed


@dataclass
class FaultSchedule:
    """SIGKILLs one running child every ``interval`` (a seeded random range) until stopped. The same seed gives the
    same sequence of targets and pauses, so a failing round can be replayed."""

    platform: RunningPlatform
    seed: int
    interval: tuple[float, float] = (0.5, 2.5)
    kills: list[Kill] = field(default_factory=list)
    # On a NATS cluster, this share of the kills goes to the leader of one of these streams.
    leader_share: float = 0.25
    leader_streams: tuple[str, ...] = ("ACCOUNTS", "COLLECTION")

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=self.platform.gateway_url, timeout=2.0, trust_env=False) as probe:
            while not self._stopping.is_set():
                pause = self._rng.uniform(*self.interval)
                try:
                    await asyncio.wait_for(self._stopping.wait(), pause)
                    return
                except TimeoutError:
                    pass
                children = self.platform.children()
                names = sorted(children)
                if not names:
                    continue
                name = self._rng.choice(names)
                leader_of = self._rng.choice(self.leader_streams)
                leader = None
                if self.platform.nats_nodes > 1 and self._rng.random() < self.leader_share:
                    leader = await asyncio.to_thread(self.platform.stream_leader, leader_of)
                name = leader or name
                child = children[name]
                if child.get("status") != "running" or not child.get("pid"):
                    continue
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child["pid"], signal.SIGKILL)
                kill = Kill(at=time.monotonic() - started, name=name, pid=child["pid"],
                            leader_of=leader_of if leader else None)
                self.kills.append(kill)
                await self._wait_recovered(kill, probe)

    async def _wait_recovered(self, kill: Kill, probe: httpx.AsyncClient) -> None:
        """Wait until the supervisor has the child running again and the gateway answers /health 200 (bounded: a
        child that does not come back fails the round at the end, not here)."""
        started = time.monotonic()
        while time.monotonic() - started < STARTUP_SECONDS:
            child = self.platform.children().get(kill.name, {})
            if child.get("status") == "running" and child.get("pid") not in (None, kill.pid):
                try:
                    if (await probe.get("/health")).status_code == 200:
                        kill.recovered_after = time.monotonic() - started
                        return
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        self._stopping.set()

    def summary(self) -> dict:
        by_kind: dict[str, int] = {}
        for kill in self.kills:
            by_kind[kill.name] = by_kind.get(kill.name, 0) + 1
        recoveries = [k.recovered_after for k in self.kills if k.recovered_after is not None]
        return {"seed": self.seed, "kills": len(self.kills), "by_kind": by_kind,
                "stream_leader_kills": [f"{k.name} ({k.leader_of})" for k in self.kills if k.leader_of],
                "not_recovered": [k.name for k in self.kills if k.recovered_after is None],
                "worst_recovery_seconds": round(max(recoveries), 2) if recoveries else None}

