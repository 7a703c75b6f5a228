"""Test doubles that are real: a test event type, a real table its handler writes, real engines and buses."""

import asyncio
from contextlib import asynccontextmanager
from datetime import datetime

import nats
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlmodel import Session

from services.collection.models import metadata as collection_metadata
from services.kernel import clock
from services.kernel.bus import Bus
from services.kernel.db import make_engine
from services.kernel.events import EventEnvelope, EventPayload
from services.kernel.inbox import EventConsumer
from services.kernel.migrations import upgrade_database
from services.kernel.outbox import OutboxRelay, outbox_backlog, record_event


class Pinged(EventPayload, event_type="oversight.testing.pinged.v1"):
    n: int
    poison: bool = False


applied_metadata = MetaData()
# No unique constraint on purpose: a duplicate application must be countable, not prevented by the table.
applied = Table(
    "applied_ping",
    applied_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(36), nullable=False),
    Column("n", Integer, nullable=False),
)


def migrated_engine(url: str):
    engine = make_engine(url)
    upgrade_database(engine, "collection", collection_metadata)  # a service with only the kernel tables
    applied_metadata.create_all(engine)
    return engine


def apply_ping(session: Session, envelope: EventEnvelope) -> None:
    event = envelope.payload()
    if event.poison:
        raise ValueError(f"poison event {event.n}")
    session.execute(insert(applied).values(event_id=envelope.id, n=event.n))


def emit(engine, numbers, *, poison=()):  # noqa: ANN001
    """One transaction writing one event per number."""
    with Session(engine) as session:
        envelopes = [record_event(session, Pinged(n=n, poison=n in poison), source="oversight", subject=str(n))
                     for n in numbers]
        session.commit()
    return envelopes


def applied_counts(engine) -> tuple[int, int]:  # noqa: ANN001
    with Session(engine) as session:
        total = session.execute(select(func.count()).select_from(applied)).scalar_one()
        distinct = session.execute(select(func.count(func.distinct(applied.c.event_id)))).scalar_one()
        return total, distinct


@asynccontextmanager
async def pipeline(nats_url: str, producer_url: str, consumer_url: str, *, max_attempts: int = 3, batch_size=200,  # noqa: ANN001
                   gap_patience: float = 600.0):
    """A relay publishing from one database and a consumer applying into another, over a real nats-server."""
    producer, consumer_engine = migrated_engine(producer_url), migrated_engine(consumer_url)
    producer_bus = Bus(nats_url, client_name="test-producer", duplicate_window=120)
    consumer_bus = Bus(nats_url, client_name="test-consumer", duplicate_window=120)
    relay = OutboxRelay(producer, producer_bus, batch_size=batch_size, poll_seconds=0.05, ack_timeout=3, max_backoff=0.5)
    consumer = EventConsumer(service="testing", stream="OVERSIGHT", engine=consumer_engine, bus=consumer_bus,
                             handlers={Pinged.event_type: apply_ping}, batch_size=batch_size,
                             max_attempts=max_attempts, retry_delay=0.05, gap_patience=gap_patience,
                             fetch_timeout=0.3, ack_wait=5)
    await producer_bus.start()
    await consumer_bus.start()
    await relay.start()
    await consumer.start()
    try:
        yield producer, consumer_engine, relay, consumer
    finally:
        await consumer.stop()
        await relay.stop()
        await producer_bus.close()
        await consumer_bus.close()
        producer.dispose()
        consumer_engine.dispose()


def now() -> datetime:
    return clock.utc_now()


async def eventually(check, timeout: float = 20.0):  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached in {timeout}s")
        await asyncio.sleep(0.05)


def backlog(engine) -> int:  # noqa: ANN001
    with Session(engine) as session:
        return outbox_backlog(session)


async def stream_messages(nats_url: str) -> int:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info("OVERSIGHT")
        return info.state.messages
    finally:
        await nc.close()
