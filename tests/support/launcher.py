"""``sifund up`` as a subprocess (``Launcher``, the ``launcher`` fixture) and signing in to its gateway."""

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.kernel.settings import PORT_OFFSETS

STARTUP_SECONDS = 90  # five processes each migrating their database; generous for a loaded CI machine


def sifund_command() -> list[str]:
    script = Path(sys.executable).parent / "sifund"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sifund.cli"]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_base(span: int | None = None) -> int:
    """A base whose every derived port (+0 … +11) is free right now, below Linux's ephemeral range (32768 on): a port
    there can be taken between our check and the child's bind by any outgoing connection, the platform's own
    (NATS clients, the gateway's httpx pool) included — a launcher child then fails to bind and exits."""
    span = span or max(PORT_OFFSETS.values())
    for _ in range(200):
        base = random.randrange(20000, 32768 - span - 1)
        if all(_port_free(base + offset) for offset in range(span + 1)):
            return base
    raise RuntimeError("no free port range found")


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie (an orphan whose new parent has not reaped it yet)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def _wait_until(condition, timeout: float, interval: float = 0.1) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class Launcher:
    """``sifund up`` in a subprocess with its own data directory and port base; output collected line by line."""

    def __init__(self, tmp_path: Path, *arguments: str, span: int | None = None):
        self.arguments = arguments
        # Each replica is one more process per service starting (and importing everything) at once.
        replicas = int(arguments[arguments.index("--replicas") + 1]) if "--replicas" in arguments else 1
        self.startup_seconds = STARTUP_SECONDS * replicas
        self.data_dir = tmp_path / "var"
        self.port_base = free_port_base(span)
        self.gateway_url = f"http://127.0.0.1:{self.port_base}"
        self.environment = {k: v for k, v in os.environ.items() if not k.startswith("SIFUND_")}
        self.environment.update(SIFUND_DATA_DIR=str(self.data_dir), SIFUND_PORT_BASE=str(self.port_base))
        self.cwd = tmp_path
        self.lines: list[str] = []
        self.process: subprocess.Popen | None = None

    def start(self) -> "Launcher":
        self.process = subprocess.Popen(
            [*sifund_command(), "up", "--timeout", str(self.startup_seconds), *self.arguments], cwd=self.cwd,
            env=self.environment,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        threading.Thread(target=self._collect, daemon=True).start()
        return self

    def _collect(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self) -> dict[str, int]:
        """Wait for the ready report; returns the child pids it lists by component."""
        if not _wait_until(lambda: "Press Ctrl-C to stop." in self.output or self.process.poll() is not None,
                           self.startup_seconds + 5):
            raise AssertionError(f"launcher not ready in time:\n{self.output}")
        assert self.process.poll() is None, f"launcher exited with {self.process.returncode}:\n{self.output}"
        pids = {m[1]: int(m[2]) for m in re.finditer(r"^\s+([\w-]+)\s+\S+\s+pid (\d+)", self.output, re.MULTILINE)}
        assert {"gateway", "accounts", "collection", "benefits", "oversight", "nats"} <= set(pids), self.output
        return pids

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"launcher still running after {timeout}s:\n{self.output}") from None

    def status(self) -> subprocess.CompletedProcess:
        return subprocess.run([*sifund_command(), "status"], cwd=self.cwd, env=self.environment,
                              capture_output=True, text=True, timeout=20)

    def cleanup(self, pids: list[int]) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for pid in pids:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def launcher_children(pid: int) -> set[int]:
    """Every process whose parent is ``pid``, straight from /proc."""
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                children.add(int(entry.name))
    return children


@pytest.fixture
def launcher(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path)
    known: list[int] = []
    launcher.known_pids = known  # type: ignore[attr-defined]
    yield launcher
    launcher.cleanup(known)


def _record(launcher: Launcher, pids: dict[str, int]) -> set[int]:
    everything = set(pids.values())
    if sys.platform.startswith("linux"):
        everything |= launcher_children(launcher.process.pid)
    launcher.known_pids.extend(everything)  # type: ignore[attr-defined]
    return everything


def demo_credentials(data_dir: Path) -> dict[str, tuple[str, str]]:
    found = {}
    for line in (data_dir / "demo-credentials.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] in ("user", "client"):
            found[parts[1]] = (parts[1], parts[2])
    return found


def sign_in(gateway: httpx.Client, username: str, password: str) -> dict[str, str]:
    response = gateway.post("/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


VALID_USCC = "91110000600037341L"


STOP_SECONDS = 15


def supervised(launcher: Launcher) -> dict[str, dict]:
    """The launcher's children as its state file says (what /health and `sifund status` show)."""
    try:
        body = json.loads((launcher.data_dir / "supervisor.json").read_text())
    except (OSError, ValueError):
        return {}
    return {child["name"]: child for child in body["children"]}


def _wait_restarted(launcher: Launcher, name: str, old_pid: int, restarts: int) -> int:
    def back() -> bool:
        child = supervised(launcher).get(name, {})
        return child.get("status") == "running" and child.get("restarts") == restarts and child.get("pid") != old_pid
    assert _wait_until(back, timeout=STARTUP_SECONDS), f"{name} not restarted:\n{launcher.output}"
    pid = supervised(launcher)[name]["pid"]
    launcher.known_pids.append(pid)  # type: ignore[attr-defined]
    return pid


def employer_reaches_oversight(launcher: Launcher, gateway: httpx.Client) -> None:
    """A demo clerk registers an employer through the gateway; wait until oversight's mirror (the officer's view)
    holds it: the write travelled accounts → NATS → oversight."""
    credentials = demo_credentials(launcher.data_dir)
    clerk = sign_in(gateway, *credentials["demo_agency_clerk"])
    officer = sign_in(gateway, *credentials["demo_oversight_officer"])
    registered = gateway.post("/api/accounts/employers", headers=clerk,
                              json={"uscc": VALID_USCC, "name": "某公司", "region": "150102"})
    assert registered.status_code == 201, registered.text

    def mirrored() -> bool:
        rows = gateway.get("/api/oversight/mirror/employers", params={"uscc": VALID_USCC}, headers=officer).json()
        return [r["employer_id"] for r in rows] == [registered.json()["id"]]

    assert _wait_until(mirrored, timeout=STARTUP_SECONDS, interval=0.5), "employer did not reach oversight"
