"""``sifund up`` as a user runs it: a real launcher process starting nats-server, the four services and the gateway
on a free port range, then stopped by a signal or killed outright (a crashing child is restarted) — never leaving a
child process behind."""

import os
import re
import signal
import socket
import stat
import sys
from pathlib import Path

import httpx
import pytest

from services.kernel.settings import PORT_OFFSETS, Settings
from services.kernel.supervision import FAILED, ChildState, state_file, write_state
from sifund.launcher import describe_demo, port_span
from tests.support.launcher import (
    Launcher, STARTUP_SECONDS, _gone, _record, _wait_until, demo_credentials, launcher_children, sign_in,
)
from tests.support.launcher import launcher  # noqa: F401 - fixtures
from tests.support.launcher import STOP_SECONDS, VALID_USCC, _wait_restarted, employer_reaches_oversight, supervised


pytestmark = pytest.mark.once  # `sifund up` strips SIFUND_*: SQLite and the real clock whatever the run


def test_up_serves_the_platform_and_sigterm_stops_everything(launcher: Launcher):
    launcher.start()
    pids = _record(launcher, launcher.wait_ready())
    assert (launcher.data_dir / "sifund.pid").read_text().strip() == str(launcher.process.pid)
    assert f"{launcher.gateway_url}/docs" in launcher.output

    with httpx.Client(base_url=launcher.gateway_url, timeout=10, trust_env=False) as gateway:
        health = gateway.get("/health")
        assert health.status_code == 200, health.text
        body = health.json()
        assert body["status"] == "ok" and body["nats"] == "ok"
        assert {name: s["status"] for name, s in body["services"].items()} == {
            "accounts": "ok", "collection": "ok", "benefits": "ok", "oversight": "ok"}

        # An empty data directory was seeded with demo accounts; sign in as two of them.
        assert "Demo accounts" in launcher.output
        credentials = demo_credentials(launcher.data_dir)
        assert not any(secret in launcher.output for _, secret in credentials.values())  # in the file, not printed
        clerk = sign_in(gateway, *credentials["demo_agency_clerk"])
        officer = sign_in(gateway, *credentials["demo_oversight_officer"])
        employer = {"uscc": VALID_USCC, "name": "某公司", "region": "150102"}
        assert gateway.post("/api/accounts/employers", json=employer).status_code == 401
        assert gateway.post("/api/accounts/employers", json=employer, headers=officer).status_code == 403
        registered = gateway.post("/api/accounts/employers", json=employer, headers=clerk)
        assert registered.status_code == 201, registered.text
        employer_id = registered.json()["id"]

        def mirrored() -> bool:
            rows = gateway.get("/api/oversight/mirror/employers", params={"uscc": VALID_USCC}, headers=officer).json()
            return [r["employer_id"] for r in rows] == [employer_id]

        assert _wait_until(mirrored, timeout=15), "employer did not reach oversight"

        # The launcher provisioned oversight's scheduler client: its jobs are scheduled with a credential, and a
        # run now (as the scheduler) gets its token from the gateway and checks all four audit chains.
        assert "created the oversight scheduler's system client oversight_scheduler" in launcher.output
        jobs = {j["job"]: j for j in gateway.get("/api/oversight/scheduler/jobs", headers=officer).json()}
        assert {j["credentials"] for j in jobs.values()} == {"configured"}
        assert jobs["chains"]["schedule"] == "every 15 min" and jobs["chains"]["enabled"] is True
        run = gateway.post("/api/oversight/scheduler/jobs/chains/run", headers=officer)
        assert run.status_code == 200, run.text
        assert (run.json()["outcome"], run.json()["actor"]) == ("ok", "oversight_scheduler"), run.json()

    status = launcher.status()
    assert status.returncode == 0, status.stdout + status.stderr
    assert re.search(r"^oversight\s+ok\b", status.stdout, re.MULTILINE)
    assert re.search(r"^nats\s+ok\b", status.stdout, re.MULTILINE)

    for name in ("gateway", "accounts", "nats"):
        assert (launcher.data_dir / "logs" / f"{name}.log").stat().st_size > 0

    launcher.process.send_signal(signal.SIGTERM)
    assert launcher.wait_exit(STOP_SECONDS) == 0, launcher.output
    assert [pid for pid in pids if not _gone(pid)] == []
    assert not (launcher.data_dir / "sifund.pid").exists()
    assert "sifund: stopped" in launcher.output

    after = launcher.status()
    assert after.returncode == 1 and "not reachable" in after.stderr


def _wait_healthy(gateway: httpx.Client) -> None:
    def healthy() -> bool:
        try:
            return gateway.get("/health").status_code == 200
        except httpx.HTTPError:
            return False
    assert _wait_until(healthy, timeout=STARTUP_SECONDS, interval=0.5), gateway.get("/health").text


def test_a_killed_service_or_nats_is_restarted_while_the_rest_keeps_serving(launcher: Launcher):
    """SIGKILL of one child leaves the platform running; the child comes back (a nats-server on the
    same ports and store) and events published afterwards are delivered."""
    launcher.environment["SIFUND_SUPERVISOR_BACKOFF_INITIAL_SECONDS"] = "0.2"
    launcher.start()
    pids = launcher.wait_ready()
    _record(launcher, pids)
    assert {n: c["pid"] for n, c in supervised(launcher).items()} == pids

    os.kill(pids["oversight"], signal.SIGKILL)
    oversight = _wait_restarted(launcher, "oversight", pids["oversight"], restarts=1)
    assert f"oversight (pid {pids['oversight']}) exited with signal SIGKILL; restarting it in 0.2s (attempt 1)" in (
        launcher.output)
    after = supervised(launcher)
    assert after["oversight"]["last_exit_code"] == -signal.SIGKILL
    assert {n: c["pid"] for n, c in after.items() if n != "oversight"} == {
        n: pid for n, pid in pids.items() if n != "oversight"}  # nobody else was touched
    assert launcher.process.poll() is None

    with httpx.Client(base_url=launcher.gateway_url, timeout=10, trust_env=False) as gateway:
        _wait_healthy(gateway)

        os.kill(pids["gateway"], signal.SIGKILL)
        gateway_pid = _wait_restarted(launcher, "gateway", pids["gateway"], restarts=1)
        _wait_healthy(gateway)

        os.kill(pids["nats"], signal.SIGKILL)
        _wait_restarted(launcher, "nats", pids["nats"], restarts=1)
        _wait_healthy(gateway)
        assert {n: c["pid"] for n, c in supervised(launcher).items() if n != "nats"} == {
            **{n: pid for n, pid in pids.items() if n != "nats"}, "oversight": oversight, "gateway": gateway_pid}

        # An event published after the restart travels accounts → NATS → oversight.
        employer_reaches_oversight(launcher, gateway)

        health = gateway.get("/health").json()
        assert {c["name"]: (c["status"], c["restarts"]) for c in health["supervisor"]} == {
            "nats": ("running", 1), "oversight": ("running", 1), "accounts": ("running", 0),
            "collection": ("running", 0), "benefits": ("running", 0), "gateway": ("running", 1)}

    status = launcher.status()
    assert status.returncode == 0, status.stdout + status.stderr
    assert re.search(r"^oversight\s+\d+\s+running\s+1\s+-9$", status.stdout, re.MULTILINE), status.stdout

    launcher.process.send_signal(signal.SIGTERM)
    assert launcher.wait_exit(STOP_SECONDS) == 0, launcher.output
    assert [pid for pid in launcher.known_pids if not _gone(pid)] == []  # type: ignore[attr-defined]
    assert not (launcher.data_dir / "supervisor.json").exists()


def test_a_child_that_keeps_dying_is_marked_failed_and_the_rest_keeps_running(launcher: Launcher):
    """Beyond the restart budget a child stays down, reported; a stop while another child waits out its backoff
    still stops everything, and that child is not started again."""
    # A long backoff: the stop below lands while oversight waits for its restart.
    launcher.environment.update(SIFUND_SUPERVISOR_BACKOFF_INITIAL_SECONDS="10", SIFUND_SUPERVISOR_MAX_RESTARTS="1")
    launcher.start()
    pids = launcher.wait_ready()
    _record(launcher, pids)

    os.kill(pids["benefits"], signal.SIGKILL)
    again = _wait_restarted(launcher, "benefits", pids["benefits"], restarts=1)
    os.kill(again, signal.SIGKILL)
    assert _wait_until(lambda: supervised(launcher)["benefits"]["status"] == "failed", timeout=STARTUP_SECONDS), (
        launcher.output)
    assert f"benefits (pid {again}) exited with signal SIGKILL; restart budget used up (1 restarts within 300s): " \
           "marked failed, the rest keeps running" in launcher.output
    assert {n: c["pid"] for n, c in supervised(launcher).items() if n != "benefits"} == {
        n: pid for n, pid in pids.items() if n != "benefits"}
    assert launcher.process.poll() is None

    with httpx.Client(base_url=launcher.gateway_url, timeout=10, trust_env=False) as gateway:
        health = gateway.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "degraded"
        children = {c["name"]: c for c in health.json()["supervisor"]}
        assert (children["benefits"]["status"], children["benefits"]["pid"], children["benefits"]["restarts"]) == (
            "failed", None, 1)
        assert {health.json()["services"][s]["status"] for s in ("accounts", "collection", "oversight")} == {"ok"}
        credentials = demo_credentials(launcher.data_dir)
        clerk = sign_in(gateway, *credentials["demo_agency_clerk"])  # the rest still serves
        registered = gateway.post("/api/accounts/employers", headers=clerk,
                                  json={"uscc": VALID_USCC, "name": "某公司", "region": "150102"})
        assert registered.status_code == 201, registered.text

    status = launcher.status()
    assert status.returncode == 1
    assert re.search(r"^benefits\s+-\s+failed\s+1\s+-9$", status.stdout, re.MULTILINE), status.stdout

    os.kill(pids["oversight"], signal.SIGKILL)
    assert _wait_until(lambda: supervised(launcher)["oversight"]["status"] == "restarting", timeout=STOP_SECONDS), (
        launcher.output)
    assert supervised(launcher)["oversight"]["pid"] is None
    assert f"oversight (pid {pids['oversight']}) exited with signal SIGKILL; restarting it in 10s (attempt 1)" in (
        launcher.output)
    before_stop = launcher_children(launcher.process.pid) if sys.platform.startswith("linux") else set()
    launcher.process.send_signal(signal.SIGTERM)
    assert launcher.wait_exit(STOP_SECONDS) == 0, launcher.output
    assert "oversight restarted" not in launcher.output
    assert [pid for pid in {*launcher.known_pids, *before_stop} if not _gone(pid)] == []  # type: ignore[attr-defined]


def test_status_shows_the_launchers_children_when_the_gateway_does_not_answer(launcher: Launcher):
    """A failed gateway cannot answer /health: `sifund status` then reads the running launcher's state file."""
    launcher.data_dir.mkdir(parents=True)
    write_state(state_file(launcher.data_dir), os.getpid(),  # this test process stands for a running launcher
                [ChildState("nats", 4242, restarts=2, last_exit_code=-9), ChildState("gateway", None, FAILED, 5, 1)])
    status = launcher.status()
    assert status.returncode == 1 and "not reachable" in status.stderr
    assert re.search(r"^nats\s+4242\s+running\s+2\s+-9$", status.stdout, re.MULTILINE), status.stdout
    assert re.search(r"^gateway\s+-\s+failed\s+5\s+1$", status.stdout, re.MULTILINE), status.stdout

    state_file(launcher.data_dir).write_text(state_file(launcher.data_dir).read_text().replace(
        f'"launcher_pid": {os.getpid()}', '"launcher_pid": 0'))  # left behind by a launcher that is gone: not shown
    status = launcher.status()
    assert status.returncode == 1 and "failed" not in status.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_killed_launcher_leaves_no_orphans(launcher: Launcher):
    launcher.start()
    everything = _record(launcher, launcher.wait_ready())
    launcher.process.kill()
    launcher.process.wait()
    assert _wait_until(lambda: all(_gone(pid) for pid in everything), timeout=STOP_SECONDS), (
        f"still running: {[pid for pid in everything if not _gone(pid)]}")


def test_a_port_in_use_is_refused_before_anything_starts(launcher: Launcher):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", launcher.port_base + PORT_OFFSETS["collection"]))
        squatter.listen()
        launcher.start()
        assert launcher.wait_exit(STARTUP_SECONDS) == 1  # the CLI imports everything first: slow on a loaded machine
    assert f"collection {launcher.port_base + PORT_OFFSETS['collection']}" in launcher.output
    assert "sifund is ready" not in launcher.output
    assert not (launcher.data_dir / "sifund.pid").exists()


def test_demo_credentials_are_kept_in_a_private_file_and_never_printed(tmp_path: Path):
    """``sifund up`` prints no demo password or client secret, only where the
    file is (mode 0600); an older copy readable by others is made private again."""
    settings = Settings(data_dir=tmp_path / "var")
    path = settings.data_dir / "demo-credentials.txt"
    path.parent.mkdir(parents=True)
    path.write_text("old\n")
    path.chmod(0o644)
    created = [{"kind": "user", "username": "demo_agency_clerk", "password": "Pw-Secret-Clerk-9",
                "role": "agency_clerk"},
               {"kind": "client", "username": "demo_tax", "password": "client-secret-XYZ", "role": "tax_system"}]
    printed = "\n".join(describe_demo(created, settings))
    assert "Pw-Secret-Clerk-9" not in printed and "client-secret-XYZ" not in printed
    assert str(path) in printed and "0600" in printed and "Demo accounts" in printed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert demo_credentials(settings.data_dir) == {"demo_agency_clerk": ("demo_agency_clerk", "Pw-Secret-Clerk-9"),
                                                   "demo_tax": ("demo_tax", "client-secret-XYZ")}


def test_replicas_run_side_by_side_each_supervised_on_its_own(tmp_path: Path):
    """``sifund up --replicas 2`` runs two processes per service on their own ports (the first keeps
    the usual one), lists every replica to the gateway, and restarts a killed replica without touching its twin."""
    launcher = Launcher(tmp_path, "--replicas", "2", span=port_span(2))
    launcher.environment["SIFUND_SUPERVISOR_BACKOFF_INITIAL_SECONDS"] = "0.2"
    launcher.known_pids = []  # type: ignore[attr-defined]
    try:
        launcher.start()
        pids = launcher.wait_ready()
        _record(launcher, pids)
        services = ("accounts", "collection", "benefits", "oversight")
        assert set(pids) == {"gateway", "nats", *services, *(f"{s}-2" for s in services)}, launcher.output
        with httpx.Client(timeout=10, trust_env=False) as client:
            for service in services:
                for port in (launcher.port_base + PORT_OFFSETS[service],
                             launcher.port_base + 20 + services.index(service)):
                    assert client.get(f"http://127.0.0.1:{port}/health").status_code == 200, (service, port)

        os.kill(pids["accounts-2"], signal.SIGKILL)
        _wait_restarted(launcher, "accounts-2", pids["accounts-2"], restarts=1)
        assert supervised(launcher)["accounts"]["pid"] == pids["accounts"]  # the twin was not touched
        with httpx.Client(base_url=launcher.gateway_url, timeout=10, trust_env=False) as gateway:
            _wait_healthy(gateway)

        launcher.process.send_signal(signal.SIGTERM)
        assert launcher.wait_exit(STOP_SECONDS) == 0, launcher.output
        assert [pid for pid in launcher.known_pids if not _gone(pid)] == []  # type: ignore[attr-defined]
    finally:
        launcher.cleanup(launcher.known_pids)  # type: ignore[attr-defined]


def test_a_replica_count_out_of_range_is_refused_before_anything_starts(launcher: Launcher):
    launcher.arguments = ("--replicas", "9")
    launcher.start()
    assert launcher.wait_exit(STOP_SECONDS) == 2
    assert "--replicas must be between 1 and 8, not 9" in launcher.output
    assert not (launcher.data_dir / "supervisor.json").exists()
