"""A consumer that names the subject families it needs (``ConsumerSpec.subjects``) is delivered only those: the
server holds back the rest (no transfer, no decode, no inbox row), a type inside the families that nobody handles is
still dead-lettered, and a durable created for the whole stream is narrowed in place when the service restarts."""

import nats
from sqlalchemy import func, select
from sqlmodel import Session

from services.kernel.bus import Bus
from services.kernel.events import EventActor, build_envelope
from services.kernel.inbox import EventConsumer
from services.kernel.models import DeadLetter, InboxMessage
from tests.support.pipeline import Pinged, applied_counts, apply_ping, emit, eventually, pipeline


def inbox_and_letters(engine) -> tuple[int, list[str]]:  # noqa: ANN001
    with Session(engine) as session:
        inbox = session.execute(select(func.count()).select_from(InboxMessage)).scalar_one()
        letters = list(session.execute(select(DeadLetter.event_type).order_by(DeadLetter.id)).scalars())
    return inbox, letters


async def publish_as(nats_url: str, event_type: str, n: int) -> None:
    """An envelope of another type on the same stream, as another producer would publish it."""
    envelope = build_envelope(Pinged(n=n), source="oversight", subject=str(n), actor=EventActor(id="t"),
                              correlation_id=None, causation_id=None).model_copy(update={"type": event_type})
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(event_type, envelope.to_bytes(), headers={"Nats-Msg-Id": envelope.id})
    finally:
        await nc.close()


async def test_only_the_named_families_are_delivered_and_a_whole_stream_durable_is_narrowed(
        nats_server, database_urls):
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"]) as (
            producer, first_db, _relay, whole):
        # The durable as it was: the whole stream, every type it does not know dead-lettered.
        assert await whole.bus.wait_ready(10)
        await publish_as(nats_server.url, "oversight.bulk.credited.v1", 1)
        emit(producer, [2])
        await eventually(lambda: inbox_and_letters(first_db) == (1, ["oversight.bulk.credited.v1"]))
        await whole.stop()

        # The same durable restarted with subject filters (a service upgraded in place).
        consumer_db = first_db
        bus = Bus(nats_server.url, client_name="test-narrow", duplicate_window=120)
        narrow = EventConsumer(service="testing", stream="OVERSIGHT", engine=consumer_db, bus=bus,
                               handlers={Pinged.event_type: apply_ping}, subjects={"oversight.testing.>"},
                               max_attempts=1, retry_delay=0.05, fetch_timeout=0.3, ack_wait=5)
        assert narrow.consumer_config().filter_subject == "oversight.testing.>"
        await bus.start()
        await narrow.start()
        try:
            before = applied_counts(consumer_db)[0]
            for n in range(3, 8):
                await publish_as(nats_server.url, "oversight.bulk.credited.v1", n)  # held back by the server
            emit(producer, [8, 9])
            await publish_as(nats_server.url, "oversight.testing.unexpected.v1", 10)  # inside the families
            await eventually(lambda: applied_counts(consumer_db)[0] == before + 2
                             and "oversight.testing.unexpected.v1" in inbox_and_letters(consumer_db)[1])
            nc = await nats.connect(nats_server.url)
            try:
                info = await nc.jetstream().consumer_info("OVERSIGHT", narrow.name)
            finally:
                await nc.close()
            assert info.config.filter_subject == "oversight.testing.>"
            assert info.num_pending == 0
            _inbox, letters = inbox_and_letters(consumer_db)
            assert letters.count("oversight.bulk.credited.v1") == 1  # only the one from before the narrowing
        finally:
            await narrow.stop()
            await bus.close()


def test_two_families_are_sent_as_filter_subjects_and_a_foreign_one_is_refused():
    consumer = EventConsumer(service="t", stream="ACCOUNTS", engine=None, bus=Bus("nats://x", client_name="t"),
                             handlers={}, subjects={"accounts.persons.>", "accounts.person.>"})
    config = consumer.consumer_config()
    assert config.filter_subject is None
    assert config.filter_subjects == ["accounts.person.>", "accounts.persons.>"]
    whole = EventConsumer(service="t", stream="ACCOUNTS", engine=None, bus=Bus("nats://x", client_name="t"),
                          handlers={})
    assert whole.consumer_config().filter_subject == "accounts.>" and whole.consumer_config().filter_subjects is None
    try:
        EventConsumer(service="t", stream="ACCOUNTS", engine=None, bus=Bus("nats://x", client_name="t"),
                      handlers={}, subjects={"collection.payments.>"})
    except ValueError as exc:
        assert "not all on stream" in str(exc)
    else:
        raise AssertionError("a subject of another stream was accepted")
