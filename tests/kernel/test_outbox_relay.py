"""Transactional outbox and relay against a real nats-server."""

import asyncio
from datetime import timedelta

import nats
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, update
from sqlmodel import Session

from services.kernel import clock
from services.kernel.db import snapshot_session, unit_of_work
from services.kernel.models import OutboxMessage
from services.kernel.bus import Bus
from services.kernel.outbox import OutboxRelay, outbox_backlog, record_event, record_events
from tests.support.pipeline import Pinged, applied_counts, emit, migrated_engine, pipeline
from tests.support.pipeline import eventually
from tests.support.pipeline import backlog, stream_messages


async def test_event_is_published_after_commit_with_its_id_as_msg_id(nats_server, database_urls):
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"]) as (producer, consumer_db, *_):
        [envelope] = emit(producer, [1])
        await eventually(lambda: applied_counts(consumer_db) == (1, 1))
        nc = await nats.connect(nats_server.url)
        try:
            msg = await nc.jetstream().get_last_msg("OVERSIGHT", Pinged.event_type)
            assert msg.headers["Nats-Msg-Id"] == envelope.id
        finally:
            await nc.close()
        assert backlog(producer) == 0


async def test_nothing_is_published_when_the_business_transaction_rolls_back(nats_server, database_urls):
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"]) as (producer, consumer_db, *_):
        with pytest.raises(RuntimeError), unit_of_work(producer) as session:
            record_event(session, Pinged(n=1), source="oversight", subject="1")
            raise RuntimeError("the business rule refused it")
        with Session(producer) as session:
            record_event(session, Pinged(n=2), source="oversight", subject="2")
            session.rollback()
        emit(producer, [3])  # a later committed event proves the relay was running
        await eventually(lambda: applied_counts(consumer_db) == (1, 1))
        await asyncio.sleep(0.3)
        with Session(producer) as session:
            assert session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == 1
        assert await stream_messages(nats_server.url) == 1


async def test_relay_waits_for_a_bus_that_is_down_at_start(nats_server, database_urls):
    nats_server.stop()
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"]) as (producer, consumer_db, *_):
        emit(producer, range(50))
        await asyncio.sleep(0.5)
        assert backlog(producer) == 50
        nats_server.start()
        await eventually(lambda: applied_counts(consumer_db) == (50, 50))
        assert backlog(producer) == 0


async def test_a_republished_row_is_deduplicated_by_jetstream(nats_server, database_urls):
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"]) as (producer, consumer_db, *_):
        emit(producer, [7])
        await eventually(lambda: backlog(producer) == 0 and applied_counts(consumer_db) == (1, 1))
        # As after a crash between publishing and marking the row: the relay publishes it again.
        with Session(producer) as session:
            session.execute(update(OutboxMessage).values(published_at=None))
            session.commit()
        await eventually(lambda: backlog(producer) == 0)
        await asyncio.sleep(0.3)
        assert await stream_messages(nats_server.url) == 1
        assert applied_counts(consumer_db) == (1, 1)


async def test_restart_during_a_burst_loses_nothing_and_applies_nothing_twice(nats_server, database_urls):
    """10 000 events; nats-server is killed mid-burst and restarted on the same store."""
    total = 10_000
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"],
                        batch_size=500) as (producer, consumer_db, relay, consumer):

        async def burst():
            for start in range(0, total, 100):
                await asyncio.to_thread(emit, producer, range(start, start + 100))
                await asyncio.sleep(0)

        producing = asyncio.create_task(burst())
        await eventually(lambda: applied_counts(consumer_db)[0] >= 1500, timeout=60)
        nats_server.kill()  # a crash, not a clean shutdown
        await asyncio.sleep(1.0)
        nats_server.start()
        await producing
        await eventually(lambda: applied_counts(consumer_db)[0] >= total and backlog(producer) == 0, timeout=120)
        await asyncio.sleep(0.5)  # let any stray redelivery arrive before counting
        applied_total, distinct = applied_counts(consumer_db)
        assert distinct == total, f"lost {total - distinct} events"
        assert applied_total == total, f"applied {applied_total - total} events twice"
        assert consumer.dead_lettered_total == 0


async def test_the_relay_publishes_while_a_producer_holds_the_write_lock(nats_server, database_urls):
    """The relay reads through a snapshot: a long business transaction does not stall publishing what committed."""
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"]) as (producer, consumer_db, *_):
        emit(producer, [1])
        await eventually(lambda: applied_counts(consumer_db) == (1, 1))
        with Session(producer) as writer:
            record_event(writer, Pinged(n=2), source="oversight", subject="2")
            writer.flush()  # the writer now holds SQLite's write lock (BEGIN IMMEDIATE) and keeps it
            with snapshot_session(producer) as reader:  # … and a snapshot read still answers at once
                assert outbox_backlog(reader) == 0
            writer.commit()
        await eventually(lambda: applied_counts(consumer_db) == (2, 2))


async def test_published_rows_older_than_the_retention_are_pruned_and_unpublished_ones_never(
        nats_server, database_urls):
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"]) as (
            producer, consumer_db, relay, _):
        emit(producer, range(25))
        await eventually(lambda: backlog(producer) == 0 and applied_counts(consumer_db) == (25, 25))
        await relay.stop()  # the rest is done by hand, with the relay's own pruning
        long_ago = clock.utc_now() - timedelta(days=30)
        with Session(producer) as session:
            seqs = sorted(session.execute(select(OutboxMessage.seq)).scalars())
            session.execute(update(OutboxMessage).where(OutboxMessage.seq.in_(seqs[:20])).values(published_at=long_ago))
            session.execute(update(OutboxMessage).where(OutboxMessage.seq.in_(seqs[:3])).values(published_at=None))
            session.commit()
        relay.retention, relay.prune_chunk = timedelta(days=7), 4
        assert relay.prune_published(max_rows=10) == 10  # bounded per call, oldest first, in small transactions
        assert relay.prune_published() == 7
        assert relay.prune_published() == 0
        with Session(producer) as session:
            left = session.execute(select(OutboxMessage.seq, OutboxMessage.published_at).order_by(OutboxMessage.seq)).all()
        # The three unpublished rows stay however old they are; the five recent published rows stay too.
        assert [seq for seq, _ in left] == seqs[:3] + seqs[20:]
        assert [published for _, published in left[:3]] == [None] * 3
        relay.retention = None
        assert relay.prune_published() == 0


async def test_record_events_writes_many_in_order_and_they_are_published_once(nats_server, database_urls):
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"]) as (producer, consumer_db, *_):
        with unit_of_work(producer) as session:
            envelopes = record_events(session, [(Pinged(n=n), str(n)) for n in range(300)], source="oversight")
        with Session(producer) as session:
            stored = session.execute(select(OutboxMessage.event_id).order_by(OutboxMessage.seq)).scalars().all()
        assert stored == [e.id for e in envelopes]
        await eventually(lambda: backlog(producer) == 0 and applied_counts(consumer_db) == (300, 300))
        with unit_of_work(producer) as session:
            assert record_events(session, [], source="oversight") == []


async def test_bulk_written_rows_are_published_once_each_and_marked_with_one_update_per_batch(nats_server,
                                                                                             database_urls):
    """1 250 events written by one ``record_events`` insert, published by a relay of batch 500: three batches, each
    marked by one UPDATE (not one per row); every row published once, with its event id as Nats-Msg-Id."""
    producer = migrated_engine(database_urls["collection"])
    bus = Bus(nats_server.url, client_name="test-bulk-relay", duplicate_window=120)
    relay = OutboxRelay(producer, bus, batch_size=500, ack_timeout=5)
    marks: list[tuple[bool, int]] = []

    def count_marks(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
        if statement.lstrip().upper().startswith("UPDATE OUTBOX"):
            marks.append((executemany, len(parameters) if executemany else 1))

    await bus.start()
    try:
        assert await bus.wait_ready(timeout=20)
        with unit_of_work(producer) as session:
            envelopes = record_events(session, [(Pinged(n=n), str(n)) for n in range(1_250)], source="oversight")
        sa_event.listen(producer, "before_cursor_execute", count_marks)
        published = []
        while count := await relay.publish_pending():
            published.append(count)
        sa_event.remove(producer, "before_cursor_execute", count_marks)
        assert published == [500, 500, 250]
        assert marks == [(False, 1)] * 3
        with Session(producer) as session:
            rows = session.execute(select(OutboxMessage.event_id, OutboxMessage.published_at, OutboxMessage.attempts)
                                   .order_by(OutboxMessage.seq)).all()
        assert [r[0] for r in rows] == [e.id for e in envelopes]
        assert all(published_at is not None and attempts == 1 for _, published_at, attempts in rows)
        assert await stream_messages(nats_server.url) == 1_250
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe(Pinged.event_type, durable="bulk-check", stream="OVERSIGHT")
            ids = []
            while len(ids) < 1_250:
                for msg in await sub.fetch(500, timeout=5):
                    ids.append(msg.headers["Nats-Msg-Id"])
                    await msg.ack()
        finally:
            await nc.close()
        assert sorted(ids) == sorted(e.id for e in envelopes) and len(set(ids)) == 1_250
    finally:
        await bus.close()
        producer.dispose()
