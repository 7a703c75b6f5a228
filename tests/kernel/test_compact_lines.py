"""The bulk line events' compact wire form (v2: a line is an array of its values in its class's field order) and
their v1 (lines as objects): what a producer writes, and that a consumer reads either version the same way."""

import json
from datetime import date

import pytest
from msgspec.structs import asdict
from pydantic import ValidationError

from services.contracts import accounts as acc
from services.contracts import collection as col
from services.kernel.events import EventActor, EventEnvelope, PayloadFields, build_encoded_envelope, build_envelope, \
    plain_data

pytestmark = pytest.mark.unit  # pure: no NATS, no app, no database

ACTOR = EventActor(id="tax-1", role="tax_system")


def line(n: int) -> dict:
    return {"payment_id": f"p-{n}", "tax_line_id": f"T{n}", "payer_uscc": None, "employer_id": "emp-甲",
            "person_id": None if n % 2 else f"per-{n}", "citizen_id": "150102199001011234", "fund": "PEN_EMP",
            "period": 202610, "employer_fen": 128_000 + n, "individual_fen": 64_000, "late_fee_fen": n,
            "method": "bank_transfer", "voucher_no": f'V"{n}', "paid_date": date(2026, 11, 12),
            "assessment_line_id": None, "match_status": "matched"}


def fields(count: int = 3) -> dict:
    return {"batch_id": "tb-1", "part": 1, "parts": 1, "lines": [line(n) for n in range(count)]}


def row(model, payload_fields: dict) -> bytes:  # noqa: ANN001
    _, encoded = build_encoded_envelope(PayloadFields(model, payload_fields), source="collection", subject="s",
                                        actor=ACTOR, correlation_id=None, causation_id=None)
    return encoded.encode()


def with_data(raw: bytes, data: dict) -> bytes:
    return json.dumps({**json.loads(raw), "data": data}, ensure_ascii=False).encode()


def test_v2_writes_each_line_as_an_array_in_its_class_field_order_and_the_model_writes_the_same():
    raw = row(col.PaymentsCollected, fields())
    data = json.loads(raw)["data"]
    assert json.loads(raw)["type"] == "collection.payments.collected.v2"
    assert data["lines"][1] == ["p-1", "T1", None, "emp-甲", None, "150102199001011234", "PEN_EMP", 202610, 128_001,
                                64_000, 1, "bank_transfer", 'V"1', "2026-11-12", None, "matched"]
    built = build_envelope(col.PaymentsCollected(**fields()), source="collection", subject="s", actor=ACTOR,
                           correlation_id=None, causation_id=None)
    assert built.data == data  # the pydantic model writes the twin's arrays
    assert plain_data(built.type, built.data)["lines"] == json.loads(row(col.PaymentsCollectedV1, fields()))[
        "data"]["lines"]  # the same line as v1's object


@pytest.mark.parametrize(("v1", "v2", "payload_fields"), [
    (col.PaymentsCollectedV1, col.PaymentsCollected, fields(5)),
    (acc.ContributionsPostedV1, acc.ContributionsPosted, {"source_batch_id": "tb-1", "lines": [
        {"payment_id": f"p-{n}", "person_id": None, "employer_id": "e", "fund": "UNEMP", "period": 202610,
         "employer_fen": n, "individual_fen": 0, "credited_fen": 0, "entry_id": None} for n in range(3)]}),
    (col.AssessmentIssuedV1, col.AssessmentIssued, {
        "assessment_id": "as-1", "employer_id": None, "period": 202610, "due_date": date(2026, 11, 15),
        "supersedes_id": None, "part": 1, "parts": 1, "employer_total_fen": 3, "individual_total_fen": 0,
        "lines": [{"line_id": f"l-{n}", "person_id": "p", "fund": "PEN_RES", "declared_base_fen": None,
                   "base_fen": 1, "clamp": None if n else "floor", "employer_fen": 1, "individual_fen": 0}
                  for n in range(3)]}),
])
def test_an_old_v1_event_reads_as_the_v2_one_through_the_same_class(v1, v2, payload_fields):
    assert v2.versions() == (v2.event_type, v1.event_type) and issubclass(v1, v2)
    old, new = (EventEnvelope.from_bytes(row(model, payload_fields)) for model in (v1, v2))
    assert len(new.to_bytes()) < len(old.to_bytes())
    old_view, new_view = old.payload_view(v2), new.payload_view(v2)
    assert [asdict(x) for x in old_view.lines] == [asdict(x) for x in new_view.lines]
    assert old.payload().model_dump() == new.payload().model_dump()  # Python dumps: the lines as objects


def test_a_consumer_drops_values_appended_by_a_newer_producer_and_the_producer_refuses_them():
    raw = row(col.PaymentsCollected, fields())
    data = json.loads(raw)["data"]
    data["lines"][0].append("a value of v2.1")
    appended = with_data(raw, data)
    expected = EventEnvelope.from_bytes(raw)
    assert EventEnvelope.from_bytes(appended).payload() == expected.payload()
    assert asdict(EventEnvelope.from_bytes(appended).payload_view(col.PaymentsCollected).lines[0]) == \
        asdict(expected.payload_view(col.PaymentsCollected).lines[0])
    with pytest.raises(ValidationError, match="#16"):
        col.PaymentsCollected.model_validate(data)


def test_a_short_or_wrong_line_fails_alike_on_every_path():
    raw = row(col.PaymentsCollected, fields())
    data = json.loads(raw)["data"]
    data["lines"][1] = data["lines"][1][:5]
    short = with_data(raw, data)
    with pytest.raises(ValidationError) as fast:
        EventEnvelope.from_bytes(short).payload()
    with pytest.raises(ValidationError) as view:
        EventEnvelope.from_bytes(short).payload_view(col.PaymentsCollected)
    assert {e["loc"] for e in fast.value.errors()} == {e["loc"] for e in view.value.errors()} == {
        ("lines", 1, name) for name in list(col.CollectedLine.model_fields)[5:]}


def test_lines_given_as_objects_or_line_models_are_still_accepted():
    built = col.PaymentsCollected(batch_id="b", part=1, parts=1, lines=[col.CollectedLine(**line(1)), line(2)])
    assert [x.payment_id for x in built.lines] == ["p-1", "p-2"]
    assert isinstance(built.lines[0], col.CompactCollectedLine)


def test_the_schema_of_a_compact_line_is_its_array():
    schema = col.PaymentsCollected.model_json_schema()["$defs"]["CompactCollectedLine"]
    assert schema["type"] == "array" and schema["minItems"] == len(col.CollectedLine.model_fields)
    assert [item["title"] for item in schema["prefixItems"]] == list(col.CollectedLine.model_fields)
