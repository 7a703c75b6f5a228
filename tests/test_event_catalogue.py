"""The event catalogue: every published type is well named and on a stream; every consumer covers its stream."""

from services.kernel.events import EVENT_TYPES, STREAMS, EventActor, EventEnvelope, build_envelope, stream_for
from services.kernel.settings import SERVICES
from services.kernel.service_app import merge_consumer_specs
from sifund import services as catalogue


def service_event_types() -> dict[str, type]:
    for name in SERVICES:
        catalogue.spec(name)  # importing the app imports its event modules
    return {t: cls for t, cls in EVENT_TYPES.items() if cls.__module__.startswith("services.")}


def test_every_service_event_type_is_named_and_streamed():
    types = service_event_types()
    assert "accounts.employer.registered.v1" in types
    for event_type in types:
        service, entity, verb, version = event_type.split(".")
        assert service in {p for p in STREAMS.values()}
        assert version.startswith("v") and entity and verb
        assert stream_for(event_type) in STREAMS


def test_every_consumer_handles_or_ignores_every_type_on_its_stream():
    types = service_event_types()
    for name in SERVICES:
        for consumer in merge_consumer_specs(catalogue.spec(name).consumers):
            on_stream = {t for t in types if stream_for(t) == consumer.stream}
            covered = set(consumer.handlers) | set(consumer.ignores)
            assert on_stream <= covered, f"{name}-{consumer.stream} neither handles nor ignores {on_stream - covered}"
            assert set(consumer.handlers) <= on_stream, "a handler for a type that does not exist"


def test_envelope_round_trips_and_payload_is_typed():
    from services.contracts.accounts import EmployerRegistered  # noqa: PLC0415
    from datetime import UTC, datetime  # noqa: PLC0415

    payload = EmployerRegistered(employer_id="e1", uscc="91110000600037341L", name="某公司", region="150102",
                                 registered_at=datetime(2026, 1, 1, tzinfo=UTC))
    envelope = build_envelope(payload, source="accounts", subject="e1", actor=EventActor(id="u1", role="agency_clerk"),
                              correlation_id="req-9", causation_id=None)
    again = EventEnvelope.from_bytes(envelope.to_bytes())
    assert again == envelope
    assert again.payload() == payload
    assert len(envelope.id) == 36 and envelope.id[14] == "7"  # UUIDv7


def test_consumer_specs_of_one_stream_merge_into_one_consumer():
    from services.kernel.service_app import ConsumerSpec  # noqa: PLC0415

    calls = []
    a = ConsumerSpec(stream="ACCOUNTS", handlers={"accounts.x.done.v1": lambda s, e: calls.append("a")},
                     ignores=frozenset({"accounts.y.done.v1"}))
    b = ConsumerSpec(stream="ACCOUNTS", handlers={"accounts.x.done.v1": lambda s, e: calls.append("b"),
                                                  "accounts.y.done.v1": lambda s, e: calls.append("y")})
    [merged] = merge_consumer_specs([a, b])
    merged.handlers["accounts.x.done.v1"](None, None)
    assert calls == ["a", "b"]
    assert "accounts.y.done.v1" in merged.handlers and "accounts.y.done.v1" not in merged.ignores
