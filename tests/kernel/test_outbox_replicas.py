"""Two replicas of a service draining one outbox on one PostgreSQL database: one relay at a time
publishes a batch (advisory lock), so every event is published once, in ``seq`` order, and marked once.

Publishes are counted by a plain NATS subscription on the stream's subjects: it receives every publish, including a
second copy that JetStream's duplicate window would have dropped from the stream, so "published once" is measured,
not hidden by the de-duplication. PostgreSQL only: replicas need it (SQLite is the single-process store).
"""

import asyncio
import subprocess
import sys
from collections import Counter

import nats
import pytest
from sqlalchemy import func, select, text
from sqlmodel import Session

from services.kernel import wire
from services.kernel.bus import Bus
from services.kernel.db import make_engine
from services.kernel.events import EventEnvelope
from services.kernel.models import OutboxMessage
from services.kernel.outbox import RELAY_LOCK, OutboxRelay
from tests.support.apps import POSTGRES_URL
from tests.support.pipeline import emit, migrated_engine
from tests.support.pipeline import backlog, eventually, stream_messages

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="replicas share a PostgreSQL database (make test-postgres)")


async def count_publishes(nats_url: str, received: list[tuple[str, int]]):  # noqa: ANN201
    nc = await nats.connect(nats_url)

    async def on_message(msg) -> None:  # noqa: ANN001
        received.append((msg.headers["Nats-Msg-Id"], EventEnvelope.from_bytes(wire.body_of(msg)).payload().n))

    await nc.subscribe("oversight.>", cb=on_message)
    await nc.flush()
    return nc


async def relays(nats_url: str, url: str, count: int):  # noqa: ANN201
    """``count`` relays, each with its own engine and bus: separate replicas of one service."""
    started = []
    for i in range(count):
        engine = make_engine(url)
        bus = Bus(nats_url, client_name=f"replica-{i}", duplicate_window=120)
        relay = OutboxRelay(engine, bus, batch_size=50, poll_seconds=0.02, ack_timeout=5, max_backoff=0.5)
        await bus.start()
        await relay.start()
        started.append((engine, bus, relay))
    return started


async def stop(started) -> None:  # noqa: ANN001
    for engine, bus, relay in started:
        await relay.stop()
        await bus.close()
        engine.dispose()


def marks(engine) -> Counter:  # noqa: ANN001
    with Session(engine) as session:
        return Counter(session.execute(select(OutboxMessage.attempts)).scalars())


async def test_two_relays_drain_one_outbox_each_event_published_once_in_order(nats_server, database_urls):
    url = database_urls["collection"]
    producer = migrated_engine(url)
    received: list[tuple[str, int]] = []
    watcher = await count_publishes(nats_server.url, received)
    replicas = await relays(nats_server.url, url, 2)
    try:
        for start in range(0, 1000, 25):  # 40 business transactions while both relays poll
            emit(producer, range(start, start + 25))
            await asyncio.sleep(0)
        await eventually(lambda: backlog(producer) == 0, timeout=60)
        await eventually(lambda: len(received) >= 1000, timeout=30)
        await watcher.flush()
        ids = Counter(event_id for event_id, _ in received)
        assert len(received) == 1000 and max(ids.values()) == 1  # no event published twice
        assert [n for _, n in received] == list(range(1000))  # in seq order across both relays
        assert await stream_messages(nats_server.url) == 1000
        assert marks(producer) == Counter({1: 1000})  # every row marked once
        assert sum(relay.published_total for *_, relay in replicas) == 1000
    finally:
        await stop(replicas)
        await watcher.close()
        producer.dispose()


async def test_a_relay_waits_while_another_holds_the_lock_and_goes_on_when_its_connection_dies(
        nats_server, database_urls):
    url = database_urls["collection"]
    producer = migrated_engine(url)
    holder = producer.connect()  # stands for a replica's relay in the middle of a batch
    holder.begin()
    assert holder.execute(select(func.pg_try_advisory_xact_lock(RELAY_LOCK))).scalar_one()
    replicas = await relays(nats_server.url, url, 1)
    try:
        emit(producer, range(10))
        [(_, _, relay)] = replicas
        for _ in range(3):  # the relay tries, finds the lock taken, publishes nothing
            assert await relay.publish_pending() == 0
        assert backlog(producer) == 10
        # The holder's process dies: PostgreSQL ends its session and drops the lock with it.
        with producer.connect() as admin:
            pid = holder.execute(text("SELECT pg_backend_pid()")).scalar_one()
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await eventually(lambda: backlog(producer) == 0)
        assert await stream_messages(nats_server.url) == 10
    finally:
        await stop(replicas)
        holder.invalidate()  # its server session is gone already
        producer.dispose()


def test_replicas_starting_together_migrate_the_database_once(database_urls):
    """Each replica runs ``upgrade_database`` at start-up; three processes started at the same moment: one migrates
    (under the advisory lock of the migration environment), the others find the heads reached. Processes, not
    threads: alembic keeps its migration context in a module global."""
    from services.collection.models import metadata
    from services.kernel.migrations import pending_schema_changes

    url = database_urls["collection"]
    script = ("import sys; from services.collection.models import metadata; from services.kernel.db import make_engine;"
              " from services.kernel.migrations import upgrade_database;"
              " upgrade_database(make_engine(sys.argv[1]), 'collection', metadata)")
    processes = [subprocess.Popen([sys.executable, "-c", script, url], stderr=subprocess.PIPE) for _ in range(3)]
    errors = [p.communicate(timeout=120)[1].decode() for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], errors
    engine = make_engine(url)
    try:
        assert pending_schema_changes(engine, metadata) == []
    finally:
        engine.dispose()
