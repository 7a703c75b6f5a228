import asyncio
import time

import pytest

from sifund.natsd import NatsCluster


@pytest.fixture
def cluster(tmp_path):
    """A 3-node NATS JetStream cluster on free loopback ports, with a JetStream meta leader elected."""
    cluster = NatsCluster(tmp_path / "nats", size=3).start()
    yield cluster
    cluster.stop()


async def wait_until(predicate, what: str, timeout: float = 60.0):
    """Await ``predicate()`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await predicate()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"not {what} within {timeout}s")
