"""A 3-node NATS cluster with R3 streams: the stream leader SIGKILLed in the middle of a
1 000-event burst loses nothing and doubles nothing, because the publisher retries with the same Nats-Msg-Id and
JetStream's de-duplication window turns a retry of a stored event into a no-op."""

import asyncio
import time

import nats
import nats.errors
import nats.js.errors

import pytest
from services.kernel.bus import ensure_streams
from services.kernel.events import STREAMS
from tests.support.cluster import retried, wait_until

pytestmark = pytest.mark.once  # NATS only: no database, no clock


STREAM = "COLLECTION"
SUBJECT = f"{STREAMS[STREAM]}.test.tax_line"
EVENTS = 1000
IN_FLIGHT = 50  # publishes awaiting their ack at once, so the kill lands while some are stored but not acked
KILL_AT = 300
PUBLISH_GIVE_UP_SECONDS = 60.0


async def publish_until_acked(js, index: int) -> int:
    """Publish one event, retrying a failure (no leader yet, connection lost, timeout) with the same message id.
    Returns how many attempts failed."""
    msg_id = f"line-{index:04d}"
    failures = 0
    deadline = time.monotonic() + PUBLISH_GIVE_UP_SECONDS
    while True:
        try:
            await js.publish(SUBJECT, f'{{"line": {index}}}'.encode(), stream=STREAM, timeout=2.0,
                             headers={"Nats-Msg-Id": msg_id})
            return failures
        except (nats.errors.Error, TimeoutError) as exc:
            failures += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{msg_id} not acknowledged within {PUBLISH_GIVE_UP_SECONDS}s: {exc!r}") from exc
            await asyncio.sleep(0.05)  # client back-off between retries



async def kill(node) -> int:
    await asyncio.to_thread(node.kill)
    return 0


async def read_msg_ids(js, expected: int, timeout: float = 60.0) -> list[str]:
    """Every message id in the stream: fetch until ``expected`` are in hand (a slow fetch on a loaded machine is
    asked again, not taken for the end), then one more fetch to catch anything doubled."""
    subscription = await retried(lambda: js.pull_subscribe(SUBJECT, stream=STREAM), "reader subscribed")
    ids: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                messages = await subscription.fetch(500, timeout=2.0)
            except TimeoutError:
                if len(ids) >= expected:
                    return ids
                continue
            except nats.js.errors.ServiceUnavailableError:  # the consumer's leader moving (just after a restart)
                continue
            for message in messages:
                ids.append(message.headers["Nats-Msg-Id"])
                await message.ack()
        return ids
    finally:
        await subscription.unsubscribe()


async def test_stream_leader_killed_mid_burst_loses_and_doubles_nothing(cluster):
    nc = await nats.connect(servers=cluster.url.split(","), max_reconnect_attempts=-1, reconnect_time_wait=0.2,
                            connect_timeout=2)
    try:
        js = nc.jetstream(timeout=5)
        await retried(lambda: ensure_streams(js, duplicate_window=600.0, replicas=3), "streams created")
        info = await retried(lambda: js.stream_info(STREAM), "stream info")
        assert info.config.num_replicas == 3
        assert len(info.cluster.replicas) == 2  # the leader and two followers
        leader = cluster.node(info.cluster.leader)

        failed_attempts = 0
        for start in range(0, EVENTS, IN_FLIGHT):
            publishes = [publish_until_acked(js, index) for index in range(start, min(start + IN_FLIGHT, EVENTS))]
            if start == KILL_AT:
                publishes.append(kill(leader))
            failed_attempts += sum(await asyncio.gather(*publishes))

        after = await retried(lambda: js.stream_info(STREAM), "stream info under the new leader")
        assert after.cluster.leader != leader.server_name  # the burst finished under a new leader

        cluster.restart(leader)

        async def all_replicas_current():
            current = await js.stream_info(STREAM)
            replicas = current.cluster.replicas or []
            return (current.cluster.leader and len(replicas) == 2
                    and all(r.current and not r.offline for r in replicas) and current)

        final = await wait_until(all_replicas_current, "every replica current after the restart")
        assert final.state.messages == EVENTS

        ids = await read_msg_ids(js, EVENTS)
        assert len(ids) == EVENTS, f"{EVENTS - len(set(ids))} lost, {len(ids) - len(set(ids))} doubled"
        assert set(ids) == {f"line-{i:04d}" for i in range(EVENTS)}
        print(f"leader {leader.server_name} killed during events {KILL_AT}..{KILL_AT + IN_FLIGHT - 1}; {failed_attempts} failed publish attempts "
              f"retried; new leader {after.cluster.leader}")
    finally:
        await nc.close()
