"""An event's payload is validated once per delivery however many handlers of a merged consumer read it, and is
not kept once its handlers ran; a poison event still takes the per-event path and is dead-lettered."""

from sqlalchemy import select
from sqlmodel import Session

from services.kernel.events import EventActor, EventEnvelope, build_envelope
from services.kernel.inbox import EventConsumer, _Delivery
from services.kernel.models import DeadLetter
from services.kernel.service_app import ConsumerSpec, merge_consumer_specs
from tests.support.pipeline import Pinged, applied_counts, apply_ping, migrated_engine


def envelope(n: int, poison: bool = False) -> EventEnvelope:
    return build_envelope(Pinged(n=n, poison=poison), source="oversight", subject=str(n),
                          actor=EventActor(id="test", role="system"), correlation_id=None, causation_id=None)


def test_payload_is_validated_once_and_forgotten_on_request():
    env = EventEnvelope.from_bytes(envelope(1).to_bytes())
    first = env.payload()
    assert env.payload() is first
    assert env == EventEnvelope.from_bytes(env.to_bytes())  # the cache is not part of the event
    env.forget_payload()
    again = env.payload()
    assert again is not first and again == first
    env.data = {"n": 2}  # a replaced data object is validated afresh
    assert env.payload().n == 2


def test_merged_handlers_share_one_payload_and_poison_still_dead_letters(database_urls):
    engine = migrated_engine(database_urls["collection"])
    seen: list[tuple[str, int]] = []

    def observe(session, env):  # noqa: ANN001
        seen.append((env.id, id(env.payload())))

    [spec] = merge_consumer_specs([ConsumerSpec(stream="OVERSIGHT", handlers={Pinged.event_type: observe}),
                                   ConsumerSpec(stream="OVERSIGHT", handlers={Pinged.event_type: apply_ping}),
                                   ConsumerSpec(stream="OVERSIGHT", handlers={Pinged.event_type: observe})])
    consumer = EventConsumer(service="t", stream="OVERSIGHT", engine=engine, bus=None, handlers=spec.handlers,
                             max_attempts=2)
    good = [envelope(1), envelope(2)]
    bad = envelope(3, poison=True)

    deliveries = [_Delivery(raw=e.to_bytes(), num_delivered=1) for e in good]
    consumer._apply_batch(deliveries)
    assert applied_counts(engine) == (2, 2)
    assert len(seen) == 4 and seen[0] == seen[1] and seen[2] == seen[3]  # both readers got the same payload object
    assert all(d.envelope._payload is None for d in deliveries)  # not kept until the batch commits

    # A batch with a poison event: the batch savepoint fails, each event is applied on its own.
    deliveries = [_Delivery(raw=e.to_bytes(), num_delivered=1) for e in (envelope(4), bad)]
    consumer._apply_batch(deliveries)
    assert [d.outcome for d in deliveries] == ["ack", "retry"]
    assert applied_counts(engine) == (3, 3)
    consumer._apply_batch([_Delivery(raw=bad.to_bytes(), num_delivered=2)])
    with Session(engine) as session:
        [letter] = session.execute(select(DeadLetter)).scalars()
    assert letter.event_id == bad.id and "poison event 3" in letter.error
    assert applied_counts(engine) == (3, 3)
    engine.dispose()
