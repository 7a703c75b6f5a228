"""Event bodies on the bus: large envelopes travel zstd-compressed with a header saying so, small ones plain; the
consumer applies both, and a body it cannot read becomes a dead letter, never a stuck consumer."""

import json

import nats
import pytest
from sqlalchemy import select
from sqlmodel import Session

from services.kernel import wire
from services.kernel.events import EventActor, build_envelope
from services.kernel.models import DeadLetter
from tests.support.pipeline import Pinged, applied_counts, emit, eventually, pipeline


class Message:
    """What ``body_of`` reads of a NATS message: its headers and data."""

    def __init__(self, data: bytes, headers: dict | None):
        self.data, self.headers = data, headers


def test_a_small_envelope_travels_plain_and_a_large_one_compressed():
    small = json.dumps({"id": "e1", "data": {"n": 1}})
    body, headers = wire.outgoing(small, "e1")
    assert (body, headers) == (small.encode(), {"Nats-Msg-Id": "e1"})
    assert wire.body_of(Message(body, headers)) == small.encode()

    large = json.dumps({"id": "e2", "data": {"lines": [[f"line-{i:06d}", "PEN_EMP", 202611, i * 7] for i in range(2000)]}})
    body, headers = wire.outgoing(large, "e2")
    assert headers == {"Nats-Msg-Id": "e2", wire.ENCODING_HEADER: wire.ZSTD}
    assert len(body) * 5 < len(large)
    assert wire.body_of(Message(body, headers)) == large.encode()
    assert wire.body_of(Message(large.encode(), None)) == large.encode()  # published before compression existed


@pytest.mark.parametrize(("data", "encoding", "says"), [
    (b"not zstd at all", wire.ZSTD, "does not decompress"),
    (b"{}", "br", "unknown Sifund-Encoding"),
])
def test_a_body_that_cannot_be_read_says_why(data: bytes, encoding: str, says: str):
    with pytest.raises(ValueError, match=says):
        wire.body(data, encoding)


async def test_compressed_events_are_applied_once_and_unreadable_bodies_become_dead_letters(
        nats_server, database_urls, monkeypatch):
    monkeypatch.setattr(wire, "COMPRESS_FROM_BYTES", 0)  # every event of this test travels compressed
    async with pipeline(nats_server.url, database_urls["collection"], database_urls["benefits"]) as (
            producer, consumer_db, _relay, consumer):
        assert await consumer.bus.wait_ready(10)
        emit(producer, range(1, 41))
        await eventually(lambda: applied_counts(consumer_db) == (40, 40))

        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        try:
            stored = await js.get_msg("OVERSIGHT", 1)
            assert stored.headers[wire.ENCODING_HEADER] == wire.ZSTD and not stored.data.startswith(b"{")
            envelope = build_envelope(Pinged(n=99), source="oversight", subject="99", actor=EventActor(id="t"),
                                      correlation_id=None, causation_id=None)
            for number, (data, encoding) in enumerate(((b"\x28\xb5\x2f\xfd broken", wire.ZSTD),
                                                       (envelope.to_bytes(), "br"))):
                await js.publish(Pinged.event_type, data, headers={"Nats-Msg-Id": f"bad-{number}",
                                                                   wire.ENCODING_HEADER: encoding})
        finally:
            await nc.close()

        def letters() -> list[DeadLetter]:
            with Session(consumer_db) as session:
                return list(session.execute(select(DeadLetter).order_by(DeadLetter.id)).scalars())

        found = await eventually(lambda: len(letters()) == 2 and letters())
        assert ["does not decompress" in found[0].error, "unknown Sifund-Encoding" in found[1].error] == [True, True]
        assert applied_counts(consumer_db) == (40, 40)
