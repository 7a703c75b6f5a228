"""SIFUND_NATS_REPLICAS on a 3-node cluster: streams and durable consumers are created with it and moved to a new
count when it changes (an embedded deployment's R1 streams brought onto the cluster as R3)."""


import nats

from services.kernel.bus import Bus, ensure_streams
from services.kernel.events import STREAMS
from services.kernel.inbox import EventConsumer
from tests.support.cluster import retried, wait_until


async def has_peers(js, stream: str, followers: int) -> bool:
    info = await js.stream_info(stream)
    return len(info.cluster.replicas or []) == followers and all(r.current for r in info.cluster.replicas)




async def test_streams_and_consumers_move_from_one_replica_to_three(cluster):
    bus = Bus(cluster.url, client_name="replicas-test", replicas=1)
    nc = await nats.connect(servers=bus.servers, connect_timeout=2)
    try:
        js = nc.jetstream(timeout=10)
        await retried(lambda: ensure_streams(js, duplicate_window=600.0, replicas=1), "R1 streams created")
        assert {(await js.stream_info(name)).config.num_replicas for name in STREAMS} == {1}

        bus.js = js
        consumer = EventConsumer(service="accounts", stream="COLLECTION", engine=None, bus=bus, handlers={})
        await js.add_consumer("COLLECTION", consumer.consumer_config())
        assert (await js.consumer_info("COLLECTION", consumer.name)).config.num_replicas == 1

        await retried(lambda: ensure_streams(js, duplicate_window=600.0, replicas=3), "streams moved to R3")
        for name in STREAMS:
            info = await js.stream_info(name)
            assert info.config.num_replicas == 3, name
        # The server scales a stream in the background; until it has its two new peers it refuses an R3 consumer
        # (EventConsumer's loop retries its subscription, so a service gets there on its own).
        await wait_until(lambda: has_peers(js, "COLLECTION", 2), "COLLECTION on three nodes")
        bus.replicas = 3
        await js.add_consumer("COLLECTION", consumer.consumer_config())  # what EventConsumer._subscribe does
        assert (await js.consumer_info("COLLECTION", consumer.name)).config.num_replicas == 3

        await ensure_streams(js, duplicate_window=600.0, replicas=3)  # already there: nothing to change, no error
    finally:
        await nc.close()
