"""``sifund up --nats-cluster 3``: the embedded platform on a local 3-node NATS cluster, each node
a supervised child, the streams with 3 replicas. A node is SIGKILLed and a write still gets through to oversight
while it is down; the node comes back; SIGTERM stops everything."""

import asyncio
import os
import re
import signal
import subprocess
import threading

import httpx
import nats

import pytest
from tests.support.launcher import (
    STARTUP_SECONDS, STOP_SECONDS, Launcher, _gone, _record, _wait_restarted, _wait_until, employer_reaches_oversight, sifund_command, supervised,
)
from tests.support.launcher import launcher  # noqa: F401 - fixtures

pytestmark = pytest.mark.once  # `sifund up` strips SIFUND_*: SQLite and the real clock whatever the run


NODES = {"nats-1", "nats-2", "nats-3"}


def start_cluster(launcher: Launcher) -> dict[str, int]:  # noqa: F811
    launcher.process = subprocess.Popen(
        [*sifund_command(), "up", "--nats-cluster", "3", "--timeout", str(STARTUP_SECONDS)], cwd=launcher.cwd,
        env=launcher.environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    threading.Thread(target=launcher._collect, daemon=True).start()
    if not _wait_until(lambda: "Press Ctrl-C to stop." in launcher.output or launcher.process.poll() is not None,
                       STARTUP_SECONDS + 5):
        raise AssertionError(f"launcher not ready in time:\n{launcher.output}")
    assert launcher.process.poll() is None, f"launcher exited with {launcher.process.returncode}:\n{launcher.output}"
    pids = {m[1]: int(m[2]) for m in re.finditer(r"^\s+([\w-]+)\s+\S+\s+pid (\d+)", launcher.output, re.MULTILINE)}
    assert set(pids) == {"gateway", "accounts", "collection", "benefits", "oversight", *NODES}, launcher.output
    return pids


async def stream_replicas(urls: str) -> dict[str, int]:
    nc = await nats.connect(servers=urls.split(","))
    try:
        js = nc.jetstream()
        return {name: (await js.stream_info(name)).config.num_replicas
                for name in ("ACCOUNTS", "COLLECTION", "BENEFITS", "OVERSIGHT", "EXCHANGE")}
    finally:
        await nc.close()


def test_up_on_a_three_node_cluster_serves_writes_while_a_node_is_down(launcher: Launcher):  # noqa: F811
    pids = start_cluster(launcher)
    _record(launcher, pids)
    nats_urls = ",".join(re.search(rf"^\s+{node}\s+(\S+)\s+pid", launcher.output, re.MULTILINE)[1]
                         for node in sorted(NODES))
    assert asyncio.run(stream_replicas(nats_urls)) == dict.fromkeys(
        ("ACCOUNTS", "COLLECTION", "BENEFITS", "OVERSIGHT", "EXCHANGE"), 3)

    with httpx.Client(base_url=launcher.gateway_url, timeout=10, trust_env=False) as gateway:
        body = gateway.get("/health").json()
        assert (body["status"], body["nats"]) == ("ok", "ok"), body
        assert {c["name"]: c["status"] for c in body["supervisor"] if c["name"] in NODES} == dict.fromkeys(
            NODES, "running")

        # One node dies; the cluster (two of three) keeps the streams, and a write reaches oversight meanwhile.
        os.kill(pids["nats-2"], signal.SIGKILL)
        employer_reaches_oversight(launcher, gateway)
        _wait_restarted(launcher, "nats-2", pids["nats-2"], restarts=1)
        assert {n: c["restarts"] for n, c in supervised(launcher).items()} == {
            "gateway": 0, "accounts": 0, "collection": 0, "benefits": 0, "oversight": 0,
            "nats-1": 0, "nats-2": 1, "nats-3": 0}

    launcher.process.send_signal(signal.SIGTERM)
    assert launcher.wait_exit(STOP_SECONDS) == 0, launcher.output
    assert [name for name, pid in pids.items() if not _gone(pid)] == []
