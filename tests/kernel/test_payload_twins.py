"""Bulk payloads given as fields are checked and written by the model's msgspec twin: the same JSON as the pydantic
model writes, the same refusals (the model decides whatever the twin refuses), and no twin for a model the twin
cannot mirror exactly."""

import json
from datetime import date, datetime

import pytest
from pydantic import BaseModel, ValidationError, field_validator

from services.contracts import accounts as acc
from services.contracts.codes import MatchStatus
from services.contracts.collection import AssessmentIssued, ParametersApproved, PaymentsCollected
from services.kernel.events import ContractModel, EventActor, EventEnvelope, PayloadFields, _twin_or_none, \
    build_encoded_envelope, build_envelope

pytestmark = pytest.mark.unit  # pure: no NATS, no app, no database (make test-unit)

ACTOR = EventActor(id="tax-1", role="tax_system")
AWKWARD = 'V-甲"\\\n\t\x01\u2028\x7f'  # quotes, backslash, controls, a line separator, CJK: escaped alike


def collected_line(n: int, **changes) -> dict:
    return {"payment_id": f"p-{n}", "tax_line_id": f"T{n:08d}", "payer_uscc": "91150102000000001X",
            "employer_id": "emp-1", "person_id": None if n % 3 == 0 else f"per-{n}",
            "citizen_id": "150102199001011234", "fund": "PEN_EMP", "period": 202610, "employer_fen": 128_000 + n,
            "individual_fen": 64_000, "late_fee_fen": 0, "method": "bank_transfer", "voucher_no": f"{AWKWARD}{n}",
            "paid_date": date(2026, 11, 12), "assessment_line_id": None if n % 2 else f"al-{n}",
            "match_status": MatchStatus.matched if n % 2 else "unmatched", **changes}


def collected(lines: list[dict]) -> dict:
    return {"batch_id": "tb-1", "part": 1, "parts": 1, "lines": lines}


def by_pydantic(model, fields: dict) -> bytes:
    validated = model.model_validate(fields)
    return validated.__pydantic_serializer__.to_json(validated)


def written(model, fields: dict) -> str:
    _, encoded = build_encoded_envelope(PayloadFields(model, fields), source="collection", subject="s", actor=ACTOR,
                                        correlation_id=None, causation_id=None)
    return encoded.split(',"data":', 1)[1][:-1]


def test_the_bulk_payloads_have_twins_and_write_what_the_model_writes():
    assert _twin_or_none(PaymentsCollected) is not None and _twin_or_none(AssessmentIssued) is not None
    fields = collected([collected_line(n) for n in range(1, 40)])
    assert written(PaymentsCollected, fields).encode() == by_pydantic(PaymentsCollected, fields)
    issued = {"assessment_id": "as-1", "employer_id": None, "period": 202610, "due_date": date(2026, 11, 15),
              "supersedes_id": "as-0", "part": 1, "parts": 2, "employer_total_fen": 10, "individual_total_fen": 5,
              "lines": [{"line_id": f"l-{n}", "person_id": f"per-{n}", "fund": "UNEMP",
                         "declared_base_fen": None if n % 2 else 500_000, "base_fen": 500_000,
                         "clamp": "floor" if n % 3 == 0 else None, "employer_fen": 2, "individual_fen": 1}
                        for n in range(5)]}
    assert written(AssessmentIssued, issued).encode() == by_pydantic(AssessmentIssued, issued)


def test_the_envelope_reads_back_the_payload_the_model_would_have_built():
    fields = collected([collected_line(1), collected_line(2)])
    envelope, encoded = build_encoded_envelope(PayloadFields(PaymentsCollected, fields), source="collection",
                                               subject="s", actor=ACTOR, correlation_id="c", causation_id=None)
    assert envelope.payload() == PaymentsCollected.model_validate(fields)
    assert envelope.data == json.loads(encoded)["data"] and encoded == envelope.model_dump_json()


@pytest.mark.parametrize("change", [
    {"fund": None}, {"period": 2026.5}, {"employer_fen": "12x"}, {"match_status": "lost"}, {"surprise": 1},
    {"paid_date": datetime(2026, 11, 12, 8, 30)}, {"paid_date": "2026-13-01"},
])
def test_what_the_model_refuses_is_refused_with_its_own_error(change):
    fields = collected([collected_line(1), collected_line(2, **change)])
    with pytest.raises(ValidationError) as expected:
        PaymentsCollected.model_validate(fields)
    with pytest.raises(ValidationError) as got:
        written(PaymentsCollected, fields)
    assert got.value.errors() == expected.value.errors()


def test_a_missing_field_and_too_many_lines_are_refused_as_the_model_refuses_them():
    line = collected_line(1)
    del line["voucher_no"]
    with pytest.raises(ValidationError, match="voucher_no"):
        written(PaymentsCollected, collected([line]))
    with pytest.raises(ValidationError, match="at most 1000"):
        written(PaymentsCollected, collected([collected_line(n) for n in range(1001)]))


@pytest.mark.parametrize("change", [{"period": "202610"}, {"employer_fen": 12.0}, {"paid_date": "2026-11-12"},
                                    {"match_status": MatchStatus.resolved}])
def test_what_only_the_model_accepts_is_written_as_the_model_writes_it(change):
    fields = collected([collected_line(1, **change)])
    assert written(PaymentsCollected, fields).encode() == by_pydantic(PaymentsCollected, fields)


def test_a_model_the_twin_cannot_mirror_has_none():
    class Checked(ContractModel):
        code: str

        @field_validator("code")
        @classmethod
        def upper(cls, value: str) -> str:
            return value.upper()

    class WithTime(ContractModel):
        at: datetime

    class Loose(BaseModel):
        code: str

    assert _twin_or_none(ParametersApproved) is None  # a dict field
    for model in (Checked, WithTime, Loose):
        assert _twin_or_none(model) is None
    assert _twin_or_none(acc.ContributionsPosted) is not None


# -- the consumer's side: ``payload_view`` reads what ``payload()`` reads -----------------------------------------------


def received(fields: dict, *, raw_data: str | None = None) -> EventEnvelope:
    """An envelope as a consumer receives it (``from_bytes``), its ``data`` written by the producer or given raw."""
    _, encoded = build_encoded_envelope(PayloadFields(PaymentsCollected, fields or collected([collected_line(1)])),
                                        source="collection", subject="s", actor=ACTOR, correlation_id=None,
                                        causation_id=None)
    if raw_data is not None:
        encoded = encoded.split(',"data":', 1)[0] + f',"data":{raw_data}}}'
    return EventEnvelope.from_bytes(encoded.encode())


def same_values(view, model) -> None:
    """Every field of the view holds the model's value, of the model's type (enums stay enums, dates dates)."""
    for name in type(model).model_fields:
        got, expected = getattr(view, name), getattr(model, name)
        if isinstance(expected, list):
            assert len(got) == len(expected)
            for got_line, expected_line in zip(got, expected):
                same_values(got_line, expected_line)
        else:
            assert got == expected and type(got) is type(expected), (name, got, expected)


def test_the_view_holds_the_values_the_model_holds():
    fields = collected([collected_line(n) for n in range(1, 40)])
    envelope = received(fields)
    view = envelope.payload_view(PaymentsCollected)
    assert envelope.payload_view(PaymentsCollected) is view  # decoded once for every handler of the event
    same_values(view, received(fields).payload())
    with pytest.raises(AttributeError):
        view.batch_id = "changed"  # read-only: handlers share it
    envelope.forget_payload()
    assert envelope.payload_view(PaymentsCollected) is not view


def test_a_parsed_data_and_an_unknown_field_read_as_the_model_reads_them():
    line = {**collected_line(1), "paid_date": "2026-11-12", "match_status": "matched", "added_later": [1, {"x": 2}]}
    envelope = received({}, raw_data=json.dumps({**collected([line]), "also_new": True}, ensure_ascii=False))
    assert envelope.data["also_new"] is True  # the dict read first: the view converts it
    same_values(envelope.payload_view(PaymentsCollected), envelope.payload())


@pytest.mark.parametrize("change", [{"period": "202610"}, {"employer_fen": 12.0}, {"paid_date": "2026-11-12T00:00:00"}])
def test_what_only_the_models_lax_rules_accept_reads_as_the_model_reads_it(change):
    line = {**collected_line(1), "paid_date": "2026-11-12", "match_status": "matched", **change}
    envelope = received({}, raw_data=json.dumps(collected([line])))
    same_values(envelope.payload_view(PaymentsCollected), envelope.payload())


@pytest.mark.parametrize("change", [{"fund": None}, {"employer_fen": "12x"}, {"match_status": "lost"},
                                    {"paid_date": "2026-13-01"}])
def test_what_the_model_refuses_the_view_refuses_with_the_models_error(change):
    line = {**collected_line(1), "paid_date": "2026-11-12", "match_status": "matched", **change}
    envelope = received({}, raw_data=json.dumps(collected([line])))
    with pytest.raises(ValidationError) as expected:
        envelope.payload()
    with pytest.raises(ValidationError) as got:
        envelope.payload_view(PaymentsCollected)
    assert got.value.errors() == expected.value.errors()
    too_many = [{**collected_line(n), "paid_date": "2026-11-12", "match_status": "matched"} for n in range(1001)]
    with pytest.raises(ValidationError, match="at most 1000"):
        received({}, raw_data=json.dumps(collected(too_many))).payload_view(PaymentsCollected)


def test_a_model_without_a_twin_is_read_as_the_model_and_a_wrong_kind_is_refused():
    envelope = build_envelope(ParametersApproved(parameters_id="p", region="150100", valid_from=202601,
                                                 document={"a": 1}), source="collection", subject="s", actor=ACTOR,
                              correlation_id=None, causation_id=None)
    assert isinstance(envelope.payload_view(ParametersApproved), ParametersApproved)
    with pytest.raises(AssertionError):
        envelope.payload_view(PaymentsCollected)
