"""A batch body read without a model per line (``batch_body.plain_batch``) gives exactly what ``DeclarationBatchIn``
and ``lines_from_request`` give, and leaves to the model every body it does not read the model's way: whatever the
model refuses (with its codes) or reads differently (trimming, capitals, other number forms)."""

import pytest
from fastapi.exceptions import RequestValidationError

from services.collection.assessments.batch_body import plain_batch, validated_batch
from services.collection.assessments.schemas import DeclarationBatchIn
from services.collection.assessments.service import lines_from_request

CID = "15010219650315916X"
OTHER_CID = "110105194912310038"  # digits only


def by_model(raw):  # noqa: ANN001, ANN201
    batch = DeclarationBatchIn.model_validate(raw, from_attributes=True)
    return batch.period, [(d.employer_id, lines_from_request(d.lines)) for d in batch.declarations]


def body(*lines, period=202601, employer_id="E1", **extra):  # noqa: ANN001, ANN003, ANN201
    return {"period": period, "declarations": [{"employer_id": employer_id, "lines": list(lines)}], **extra}


PLAIN = [
    body({"person_id": "P1", "base": "5432.10"}, {"citizen_id": CID, "base": "5432.1"},
         {"person_id": "P3", "citizen_id": OTHER_CID, "base": "5000"}, {"person_id": "P4", "base": 6000},
         {"person_id": "P5", "base": "0012.05"}, {"person_id": "x" * 36, "citizen_id": None, "base": "1000000000000"},
         {"citizen_id": CID, "person_id": None, "base": "0.01"}),
    {"period": 195001, "declarations": [{"employer_id": "E1", "lines": [{"person_id": "P1", "base": "1"}]},
                                        {"lines": [{"person_id": "P 2", "base": "2.5"}], "employer_id": "E 2"}]},
]

NOT_PLAIN = [  # refused by the model, or read by it in a way the plain reading does not attempt
    body({"person_id": "P1", "base": "5432.101"}), body({"person_id": "P1", "base": "5432.100"}),
    body({"person_id": "P1", "base": 5432.1}), body({"person_id": "P1", "base": True}),
    body({"person_id": "P1", "base": "1e3"}), body({"person_id": "P1", "base": "0"}),
    body({"person_id": "P1", "base": 0}), body({"person_id": "P1", "base": "-5"}),
    body({"person_id": "P1", "base": "1000000000000.01"}), body({"person_id": "P1", "base": 10 ** 12 + 1}),
    body({"person_id": "P1", "base": " 5000"}), body({"person_id": "P1", "base": "5,000"}),
    body({"person_id": "P1", "base": None}), body({"person_id": "P1"}), body({"base": "5000"}),
    body({"person_id": None, "citizen_id": None, "base": "5000"}), body({"person_id": "", "base": "5000"}),
    body({"person_id": " P1", "base": "5000"}), body({"person_id": "x" * 37, "base": "5000"}),
    body({"person_id": "职工", "base": "5000"}), body({"person_id": "P\u200b1", "base": "5000"}),
    body({"person_id": 1, "base": "5000"}), body({"person_id": "P1", "base": "5000", "name": "张三"}),
    body({"citizen_id": CID.lower(), "base": "5000"}), body({"citizen_id": f" {CID}", "base": "5000"}),
    body({"citizen_id": CID[:-1] + "1", "base": "5000"}), body({"citizen_id": "1501021965031591", "base": "5000"}),
    body({"citizen_id": "15010219651315916X", "base": "5000"}), body({"citizen_id": 150102196503159160,
                                                                      "base": "5000"}),
    body(), body({"person_id": "P1", "base": "5000"}, period=202613), body({"person_id": "P1", "base": "5000"},
                                                                           period="202601"),
    body({"person_id": "P1", "base": "5000"}, period=True), body({"person_id": "P1", "base": "5000"}, employer_id=""),
    body({"person_id": "P1", "base": "5000"}, employer_id=" E1"), body({"person_id": "P1", "base": "5000"},
                                                                       employer_id="E" * 37),
    body({"person_id": "P1", "base": "5000"}, extra=1), {"period": 202601, "declarations": []},
    {"period": 202601, "declarations": [{"employer_id": "E1", "lines": [{"person_id": "P1", "base": "1"}], "x": 1}]},
    {"period": 202601}, {"declarations": []}, [], "batch", None, 202601,
    {"period": 202601, "declarations": [{"employer_id": "E1", "lines": [{"person_id": f"P{i}", "base": "1"}
                                                                       for i in range(10_001)]}]},
    {"period": 202601, "declarations": [{"employer_id": f"E{i}", "lines": [{"person_id": "P", "base": "1"}]}
                                        for i in range(1_001)]},
]


@pytest.mark.parametrize("raw", PLAIN)
def test_a_plain_body_reads_as_the_model_reads_it(raw) -> None:  # noqa: ANN001
    assert plain_batch(raw) == by_model(raw)
    assert validated_batch(raw) == by_model(raw)


@pytest.mark.parametrize("raw", NOT_PLAIN)
def test_any_other_body_is_left_to_the_model(raw) -> None:  # noqa: ANN001
    assert plain_batch(raw) is None
    try:
        expected = by_model(raw)
    except ValueError as exc:  # the model's refusal: the same errors, under "body" as FastAPI places them
        with pytest.raises(RequestValidationError) as raised:
            validated_batch(raw)
        assert [(e["loc"], e["type"], e["msg"]) for e in raised.value.errors()] == [
            (("body", *e["loc"]), e["type"], e["msg"]) for e in exc.errors()]
    else:
        assert validated_batch(raw) == expected
