"""Bounded consumer transactions: a fetched batch commits in chunks, each acknowledged after its commit; a crash
between chunks keeps what committed and gets back only the rest; an event another replica applied meanwhile is
"already applied", never a dead letter."""

import json

from sqlalchemy import event, select
from sqlmodel import Session

from services.kernel import clock
from services.kernel.bus import Bus
from services.kernel.db import unit_of_work
from services.kernel.events import EventActor, build_envelope
from services.kernel.inbox import EventConsumer, _Delivery
from services.kernel.models import DeadLetter, InboxMessage
from tests.support.pipeline import Pinged, applied_counts, apply_ping, eventually, migrated_engine


class RecordingConsumer(EventConsumer):
    """The kernel's consumer, noting what each chunk covered; ``crash_at_chunk`` makes that chunk fail before it
    applies anything, as a process dying between two commits would."""

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self.chunks: list[list[tuple[int, int]]] = []  # per committed chunk: (n, delivery attempt)
        self.crash_at_chunk: int | None = None
        self._started_chunks = 0

    def _apply_chunk(self, deliveries: list[_Delivery]) -> int:
        self._started_chunks += 1
        if self._started_chunks == self.crash_at_chunk:
            raise RuntimeError("the process died between two chunks")
        taken = super()._apply_chunk(deliveries)
        self.chunks.append([(json.loads(d.raw)["data"]["n"], d.num_delivered) for d in deliveries[:taken]])
        return taken


def envelopes(numbers):  # noqa: ANN001
    return [build_envelope(Pinged(n=n), source="oversight", subject=str(n), actor=EventActor(id="t"),
                           correlation_id=None, causation_id=None) for n in numbers]


async def fetched(consumer: EventConsumer, count: int) -> list:
    subscription = await consumer._subscribe()  # noqa: SLF001 - the consumer's own durable, as its loop binds it
    messages: list = []
    while len(messages) < count:
        try:
            messages += await subscription.fetch(count - len(messages), timeout=5)
        except TimeoutError:
            continue
    return messages


async def consumer_with_events(nats_url: str, engine, numbers, **options):  # noqa: ANN001
    bus = Bus(nats_url, client_name="test-consumer", duplicate_window=120)
    await bus.start()
    assert await bus.wait_ready(10)
    consumer = RecordingConsumer(service="testing", stream="OVERSIGHT", engine=engine, bus=bus,
                                 handlers={Pinged.event_type: apply_ping}, batch_size=50, max_attempts=3,
                                 retry_delay=0.05, fetch_timeout=0.3, **options)
    for envelope in envelopes(numbers):
        await bus.js.publish(envelope.type, envelope.to_bytes(), headers={"Nats-Msg-Id": envelope.id})
    return consumer, bus


def committed_inbox(engine) -> set[str]:  # noqa: ANN001
    with Session(engine) as session:
        return set(session.execute(select(InboxMessage.event_id)).scalars())


async def test_a_batch_larger_than_the_budget_commits_in_several_transactions_each_acked_after_its_commit(
        nats_server, database_urls):
    engine = migrated_engine(database_urls["collection"])
    commits = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    consumer, bus = await consumer_with_events(nats_server.url, engine, range(1, 11), transaction_events=4)
    try:
        messages = await fetched(consumer, 10)
        acked_with_row_committed = []
        for message in messages:
            event_id = json.loads(message.data)["id"]

            async def ack(event_id=event_id, original=message.ack) -> None:  # noqa: ANN001
                acked_with_row_committed.append(event_id in committed_inbox(engine))
                await original()

            message.ack = ack
        commits.clear()
        await consumer.process(messages)

        assert [len(chunk) for chunk in consumer.chunks] == [4, 4, 2]  # one fetched batch, three transactions
        assert len(commits) == 3
        assert applied_counts(engine) == (10, 10)
        assert acked_with_row_committed == [True] * 10  # no message acknowledged before its chunk committed

        # A time budget bounds a chunk the same way: with none left after each event, every event commits alone.
        consumer.transaction_events, consumer.transaction_seconds = 500, 0.0
        consumer.chunks.clear()
        for envelope in envelopes(range(11, 14)):
            await bus.js.publish(envelope.type, envelope.to_bytes(), headers={"Nats-Msg-Id": envelope.id})
        await consumer.process(await fetched(consumer, 3))
        assert [len(chunk) for chunk in consumer.chunks] == [1, 1, 1]
        assert applied_counts(engine) == (13, 13)
    finally:
        await bus.close()
        engine.dispose()


async def test_a_crash_between_chunks_keeps_the_committed_chunks_and_redelivers_only_the_rest_once(
        nats_server, database_urls):
    engine = migrated_engine(database_urls["collection"])
    consumer, bus = await consumer_with_events(nats_server.url, engine, range(1, 11), transaction_events=4,
                                               ack_wait=2)
    try:
        consumer.crash_at_chunk = 2
        messages = await fetched(consumer, 10)
        try:
            await consumer.process(messages)
            raise AssertionError("the second chunk should have crashed")
        except RuntimeError as exc:
            assert "died between two chunks" in str(exc)
        assert consumer.chunks == [[(n, 1) for n in range(1, 5)]]
        assert applied_counts(engine) == (4, 4)  # the first chunk committed …

        consumer.crash_at_chunk = None
        await consumer.start()  # … the restarted loop gets back what was not acknowledged, after the ack wait
        await eventually(lambda: applied_counts(engine) == (10, 10), timeout=30)
        await consumer.stop()

        later = [delivery for chunk in consumer.chunks[1:] for delivery in chunk]
        assert sorted(later) == [(n, 2) for n in range(5, 11)]  # each redelivered once, the acked ones never
        assert applied_counts(engine) == (10, 10)
    finally:
        await consumer.stop()
        await bus.close()
        engine.dispose()


class StaleInboxConsumer(EventConsumer):
    """Looks at the inbox before another replica's commit lands (the first look misses its row), as two replicas
    applying the same redelivered event on PostgreSQL do."""

    stale_looks = 1

    def _already_applied(self, session, event_ids):  # noqa: ANN001
        if self.stale_looks:
            self.stale_looks -= 1
            return set()
        return super()._already_applied(session, event_ids)


def test_an_event_another_replica_applied_meanwhile_is_already_applied_not_a_dead_letter(database_urls):
    engine = migrated_engine(database_urls["collection"])
    [envelope] = envelopes([7])
    with unit_of_work(engine) as session:  # the other replica's commit
        session.add(InboxMessage(event_id=envelope.id, consumer="testing-OVERSIGHT", event_type=envelope.type,
                                 applied_at=clock.utc_now()))
    consumer = StaleInboxConsumer(service="testing", stream="OVERSIGHT", engine=engine, bus=None,
                                  handlers={Pinged.event_type: apply_ping}, max_attempts=3)
    delivery = _Delivery(raw=envelope.to_bytes(), num_delivered=3)  # the last attempt: a failure would dead-letter
    assert consumer._apply_batch([delivery]) == 1  # noqa: SLF001

    assert delivery.outcome == "ack" and delivery.error is None
    assert consumer.dead_lettered_total == 0
    with Session(engine) as session:
        assert session.execute(select(DeadLetter)).first() is None
    assert applied_counts(engine) == (0, 0)  # this replica's handler writes were undone with the conflict
    engine.dispose()
