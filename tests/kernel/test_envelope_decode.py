"""A consumer decodes an envelope's head and keeps ``data`` as JSON text until it is read: ``payload()`` validates the
text directly (the fast path), ``data`` is parsed on first read. Both paths give the same payload and the same
errors, unknown fields are dropped at any depth on both, and an envelope whose ``data`` was never read is equal to,
dumps and re-encodes as the one fully parsed."""

import json
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from services.contracts import accounts as acc
from services.contracts import collection as col
from services.kernel.events import EventActor, EventEnvelope, build_envelope


def collected(lines: int = 3) -> col.PaymentsCollectedV1:
    """v1: lines as objects (the envelope mechanics below read keyed lines; v2's arrays: test_compact_lines)."""
    return col.PaymentsCollectedV1(batch_id="tb-1", part=1, parts=1, lines=[col.CollectedLine(
        payment_id=f"pay-{i}", tax_line_id=f"t-{i}", payer_uscc=None, employer_id="emp-甲", person_id=f"per-{i}",
        citizen_id=None, fund="PEN_EMP", period=202609, employer_fen=128_000 + i, individual_fen=64_000,
        late_fee_fen=0, method="bank_transfer", voucher_no=f"V{i}", paid_date=date(2026, 10, 12),
        assessment_line_id=None, match_status="matched") for i in range(lines)])


def wire(payload, **data_changes) -> bytes:  # noqa: ANN001, ANN003
    envelope = build_envelope(payload, source="collection", subject="s", actor=EventActor(id="u", role="r"),
                              correlation_id="req-1", causation_id=None)
    return json.dumps({**envelope.model_dump(mode="json"), **data_changes}, ensure_ascii=False).encode()


def parsed_in_full(raw: bytes) -> EventEnvelope:
    """The slow path: the whole envelope parsed and ``data`` validated as a dict (what consumers did before)."""
    envelope = EventEnvelope.model_validate_json(raw)
    assert "data" in envelope.__dict__
    return envelope


def test_data_is_not_parsed_until_read_and_both_paths_give_the_same_payload():
    payload = collected(1000)
    raw = wire(payload)
    lazy = EventEnvelope.from_bytes(raw)
    assert "data" not in lazy.__dict__
    assert lazy.payload() == payload == parsed_in_full(raw).payload()
    assert lazy.payload() is lazy.payload()  # validated once
    assert "data" not in lazy.__dict__  # the payload did not need the dict
    assert lazy.data == parsed_in_full(raw).data == json.loads(raw)["data"]
    assert lazy == parsed_in_full(raw) and parsed_in_full(raw) == lazy
    assert lazy.to_bytes() == parsed_in_full(raw).to_bytes()
    assert lazy.model_dump() == parsed_in_full(raw).model_dump()
    assert lazy.model_fields_set == parsed_in_full(raw).model_fields_set


def test_a_dumped_copy_or_a_repr_of_an_unread_envelope_carries_its_data():
    raw = wire(collected())
    assert EventEnvelope.from_bytes(raw).model_dump_json() == parsed_in_full(raw).model_dump_json()
    assert EventEnvelope.from_bytes(raw).model_copy().data["lines"][0]["payment_id"] == "pay-0"
    assert "pay-0" in repr(EventEnvelope.from_bytes(raw))
    changed = EventEnvelope.from_bytes(raw).model_copy(update={"data": {**json.loads(raw)["data"], "part": 2}})
    assert changed.payload().part == 2


def test_unknown_fields_are_dropped_at_any_depth_on_the_fast_path():
    data = json.loads(wire(collected()))["data"]
    data["added_in_v1_1"] = {"nested": [1, 2]}
    data["lines"][1]["new_line_field"] = "x"
    raw = wire(collected(), data=data)
    assert EventEnvelope.from_bytes(raw).payload() == collected() == parsed_in_full(raw).payload()


def test_a_data_object_read_and_changed_is_what_the_payload_validates():
    envelope = EventEnvelope.from_bytes(wire(acc.EnrolmentResumed(enrolment_id="n", person_id="p", fund="UNEMP")))
    first = envelope.payload()
    envelope.data["fund"] = "INJURY"  # read (parsed), then changed in place before the next validation
    envelope.forget_payload()
    assert first.fund == "UNEMP" and envelope.payload().fund == "INJURY"


@pytest.mark.parametrize("bad", [
    {"lines": [{"payment_id": 1}]},  # a line missing its fields, a wrong type
    {"batch_id": "tb", "part": "one", "parts": 1, "lines": []},
])
def test_an_invalid_payload_fails_alike_on_both_paths(bad):
    raw = wire(collected(), data=bad)
    with pytest.raises(ValidationError) as fast:
        EventEnvelope.from_bytes(raw).payload()
    with pytest.raises(ValidationError) as slow:
        parsed_in_full(raw).payload()
    assert [(e["loc"], e["type"]) for e in fast.value.errors()] == [(e["loc"], e["type"]) for e in slow.value.errors()]


@pytest.mark.parametrize(("raw", "error"), [
    (b'{"id": "x", "type": "collection.payments.collected.v1"', ValueError),  # truncated
    (b"not json", ValueError),
    (b"[]", ValueError),  # not an object
])
def test_a_malformed_envelope_is_refused_as_before(raw, error):
    with pytest.raises(error):
        EventEnvelope.from_bytes(raw)
    with pytest.raises(error):
        EventEnvelope.model_validate_json(raw)


@pytest.mark.parametrize("data", [None, [], 3, "x"])
def test_data_that_is_not_an_object_is_refused_when_decoded(data):
    raw = wire(collected(), data=data)
    with pytest.raises(ValidationError, match="data"):
        EventEnvelope.from_bytes(raw)
    with pytest.raises(ValidationError, match="data"):
        parsed_in_full(raw)


def test_the_head_is_validated_as_before():
    good = json.loads(wire(collected()))
    without_data = {k: v for k, v in good.items() if k != "data"}
    assert EventEnvelope.from_bytes(json.dumps(without_data)).data == {}
    assert EventEnvelope.from_bytes(json.dumps({**good, "extra_head": 1})).id == good["id"]
    assert EventEnvelope.from_bytes(json.dumps({**good, "time": "2026-10-12T08:00:00Z"})).time == \
        datetime(2026, 10, 12, 8, tzinfo=UTC)
    for broken in ({**good, "time": "yesterday"}, {**good, "actor": {"role": "r"}}, {**good, "id": 5},
                   {k: v for k, v in good.items() if k != "type"}):
        with pytest.raises(ValidationError):
            EventEnvelope.from_bytes(json.dumps(broken))
        with pytest.raises(ValidationError):
            EventEnvelope.model_validate_json(json.dumps(broken))
