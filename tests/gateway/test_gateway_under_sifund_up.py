"""`sifund up` runs every component on uvloop and httptools, and the gateway as several worker processes when
``SIFUND_GATEWAY_WORKERS`` says so: authenticated reads answer through it, a killed gateway leaves no worker behind
and is restarted, and a stop ends every process."""

import os
import signal
import pytest
from pathlib import Path

import httpx

from tests.support.launcher import Launcher, _gone, _record, _wait_restarted, _wait_until, demo_credentials, sign_in
from tests.support.launcher import launcher  # noqa: F401 - fixture
from tests.support.launcher import STOP_SECONDS


pytestmark = pytest.mark.once  # `sifund up` strips SIFUND_*: SQLite and the real clock whatever the run


def _children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.add(int(entry.name))
            except (OSError, IndexError):
                continue
    return found


def _workers(gateway_pid: int) -> set[int]:
    """uvicorn's worker processes (multiprocessing's resource tracker aside)."""
    return {pid for pid in _children_of(gateway_pid)
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}


def _loaded(pid: int, library: str) -> bool:
    return library in Path(f"/proc/{pid}/maps").read_text()


def test_gateway_workers_on_uvloop_serve_and_leave_nothing_behind(launcher: Launcher):  # noqa: F811
    launcher.environment["SIFUND_GATEWAY_WORKERS"] = "2"
    launcher.start()
    pids = launcher.wait_ready()
    _record(launcher, pids)
    assert _wait_until(lambda: len(_workers(pids["gateway"])) == 2, timeout=30), launcher.output
    workers = _workers(pids["gateway"])
    launcher.known_pids.extend(workers)  # type: ignore[attr-defined]
    for pid in [*workers, pids["accounts"]]:
        assert _loaded(pid, "uvloop") and _loaded(pid, "httptools"), f"pid {pid} runs without uvloop/httptools"

    with httpx.Client(base_url=launcher.gateway_url, timeout=30, trust_env=False) as gateway:
        auditor = sign_in(gateway, *demo_credentials(launcher.data_dir)["demo_internal_auditor"])
        for _ in range(20):  # over several keep-alive connections: both workers may answer
            with httpx.Client(base_url=launcher.gateway_url, timeout=30, trust_env=False) as fresh:
                response = fresh.get("/api/accounts/audit/head", headers=auditor)
                assert response.status_code == 200, response.text
        assert gateway.get("/api/accounts/audit/head").status_code == 401

        # The gateway's main process killed: its workers go with it, and the restarted gateway serves again.
        os.kill(pids["gateway"], signal.SIGKILL)
        restarted = _wait_restarted(launcher, "gateway", pids["gateway"], restarts=1)
        assert _wait_until(lambda: all(_gone(pid) for pid in workers), timeout=30), "old gateway workers outlived it"
        assert _wait_until(lambda: len(_workers(restarted)) == 2, timeout=60), launcher.output
        launcher.known_pids.extend(_workers(restarted))  # type: ignore[attr-defined]

        def answers() -> bool:
            try:
                return gateway.get("/api/accounts/audit/head", headers=auditor).status_code == 200
            except httpx.HTTPError:
                return False
        assert _wait_until(answers, timeout=60), launcher.output
        new_workers = _workers(restarted)

    launcher.process.send_signal(signal.SIGTERM)
    assert launcher.wait_exit(STOP_SECONDS) == 0
    assert _wait_until(lambda: all(_gone(pid) for pid in [restarted, *new_workers]), timeout=STOP_SECONDS)
