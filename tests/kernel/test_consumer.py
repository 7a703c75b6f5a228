"""Idempotent consumer: redelivery, poison events, dead letters and replay."""

import asyncio
import json

import nats
from sqlalchemy import select
from sqlmodel import Session

from services.kernel.events import EventActor, build_envelope
from services.kernel.mirror import MirrorGap
from services.kernel.models import DeadLetter, InboxMessage
from tests.support.pipeline import Pinged, applied_counts, emit, pipeline
from tests.support.pipeline import eventually


def dead_letters(engine) -> list[DeadLetter]:  # noqa: ANN001
    with Session(engine) as session:
        return list(session.execute(select(DeadLetter).order_by(DeadLetter.id)).scalars())


async def test_a_redelivered_event_is_applied_once(nats_server, database_urls):
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"]) as (_p, consumer_db, _r, consumer):
        assert await consumer.bus.wait_ready(10)
        envelope = build_envelope(Pinged(n=1), source="oversight", subject="1", actor=EventActor(id="t"),
                                  correlation_id=None, causation_id=None)
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        try:
            # Three deliveries of one event that JetStream cannot de-duplicate (different Nats-Msg-Id), as when a
            # producer re-sends after the duplicate window.
            for attempt in range(3):
                await js.publish(Pinged.event_type, envelope.to_bytes(), headers={"Nats-Msg-Id": f"{envelope.id}-{attempt}"})
        finally:
            await nc.close()
        await eventually(lambda: applied_counts(consumer_db)[1] == 1)
        await asyncio.sleep(0.5)
        assert applied_counts(consumer_db) == (1, 1)
        with Session(consumer_db) as session:
            assert session.get(InboxMessage, envelope.id).consumer == "testing-OVERSIGHT"


async def test_poison_event_is_dead_lettered_after_bounded_attempts_without_blocking_neighbours(nats_server, database_urls):
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"],
                        max_attempts=3) as (producer, consumer_db, _relay, consumer):
        emit(producer, range(1, 6), poison={3})
        await eventually(lambda: applied_counts(consumer_db) == (4, 4))
        [letter] = await eventually(lambda: dead_letters(consumer_db))
        assert letter.attempts == 3
        assert letter.event_type == Pinged.event_type
        assert "poison event 3" in letter.error
        assert json.loads(letter.payload)["data"]["n"] == 3

        # The operator fixes the cause (here: a handler that accepts it) and replays.
        original = consumer.handlers[Pinged.event_type]
        from tests.support.pipeline import applied  # noqa: PLC0415
        from sqlalchemy import insert  # noqa: PLC0415

        def fixed_handler(session, envelope):  # noqa: ANN001
            session.execute(insert(applied).values(event_id=envelope.id, n=envelope.data["n"]))

        consumer.handlers[Pinged.event_type] = fixed_handler
        result = consumer.replay(letter.id, operator="ops-1")
        assert result["applied"] is True
        assert applied_counts(consumer_db) == (5, 5)
        [replayed] = dead_letters(consumer_db)
        assert replayed.replayed_by == "ops-1" and replayed.replayed_at is not None
        consumer.handlers[Pinged.event_type] = original


async def test_replay_that_still_fails_keeps_the_dead_letter(nats_server, database_urls):
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"],
                        max_attempts=2) as (producer, consumer_db, _relay, consumer):
        emit(producer, [9], poison={9})
        [letter] = await eventually(lambda: dead_letters(consumer_db))
        try:
            consumer.replay(letter.id, operator="ops-1")
            raise AssertionError("replay should have failed")
        except Exception as exc:  # noqa: BLE001
            assert getattr(exc, "code", None) == "DEAD_LETTER_REPLAY_FAILED"
        [still] = dead_letters(consumer_db)
        assert still.replayed_at is None
        assert applied_counts(consumer_db) == (0, 0)


async def test_malformed_and_unknown_messages_are_dead_lettered_at_once(nats_server, database_urls):
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"],
                        max_attempts=5) as (_p, consumer_db, _r, consumer):
        assert await consumer.bus.wait_ready(10)
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        try:
            await js.publish("oversight.testing.pinged.v1", b"{not json", headers={"Nats-Msg-Id": "garbage-1"})
            stranger = build_envelope(Pinged(n=1), source="oversight", subject="1", actor=EventActor(id="t"),
                                      correlation_id=None, causation_id=None).model_copy(
                update={"type": "oversight.testing.unexpected.v1"})
            await js.publish("oversight.testing.unexpected.v1", stranger.to_bytes(), headers={"Nats-Msg-Id": stranger.id})
        finally:
            await nc.close()
        letters = await eventually(lambda: (rows := dead_letters(consumer_db)) and len(rows) == 2 and rows)
        malformed = next(d for d in letters if d.event_id is None)
        assert malformed.attempts == 1 and "not an event envelope" in malformed.error
        unknown = next(d for d in letters if d.event_id is not None)
        assert "no handler" in unknown.error and unknown.attempts == 5


async def test_an_event_waiting_for_another_stream_outlasts_the_attempts_and_is_applied_once_the_gap_closes(
        nats_server, database_urls):
    # An event naming an entity whose own event has not arrived yet (that stream's consumer restarting) is not
    # poison: it is retried past max_attempts while it is younger than gap_patience.
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"],
                        max_attempts=2) as (producer, consumer_db, _relay, consumer):
        failures: list[int] = []

        def waiting_handler(session, envelope):  # noqa: ANN001
            if len(failures) < 6:
                failures.append(envelope.payload().n)
                raise MirrorGap(f"person {envelope.payload().n} is not mirrored yet")
            apply_ping_original(session, envelope)

        apply_ping_original = consumer.handlers[Pinged.event_type]
        consumer.handlers[Pinged.event_type] = waiting_handler
        emit(producer, [7])
        await eventually(lambda: applied_counts(consumer_db) == (1, 1))
        assert len(failures) == 6 > consumer.max_attempts
        assert dead_letters(consumer_db) == []


async def test_a_gap_that_never_closes_is_dead_lettered_after_the_patience(nats_server, database_urls):
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"],
                        max_attempts=2, gap_patience=0.0) as (producer, consumer_db, _relay, consumer):
        def never_mirrored(session, envelope):  # noqa: ANN001
            raise MirrorGap(f"person {envelope.payload().n} is not mirrored yet")

        consumer.handlers[Pinged.event_type] = never_mirrored
        emit(producer, [8])
        [letter] = await eventually(lambda: dead_letters(consumer_db))
        assert letter.attempts == 2 and "MirrorGap" in letter.error
        assert applied_counts(consumer_db) == (0, 0)
