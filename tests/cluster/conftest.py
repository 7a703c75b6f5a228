
import pytest

from sifund.natsd import NatsCluster


@pytest.fixture
def cluster(tmp_path):
    """A 3-node NATS JetStream cluster on free loopback ports, with a JetStream meta leader elected."""
    cluster = NatsCluster(tmp_path / "nats", size=3).start()
    yield cluster
    cluster.stop()


