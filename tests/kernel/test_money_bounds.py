"""Money at the edge, with property tests: every amount received is
either a Decimal with two places within ±MAX_YUAN or a 422-type error with a stable code; never an uncaught
``InvalidOperation``; and sums of bounded lines fit the 64-bit columns they are stored in."""

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from services.kernel.errors import DomainError
from services.kernel.money import (
    INT64_MAX,
    MAX_FEN,
    MAX_SUMMED_LINES,
    MAX_YUAN,
    NonNegativeYuan,
    Yuan,
    checked_total_fen,
    fen_to_yuan,
    yuan_to_fen,
)

pytestmark = pytest.mark.unit  # pure: no NATS, no app, no database (make test-unit)

YUAN = TypeAdapter(Yuan)
EDGE_CODES = {"INVALID_AMOUNT", "AMOUNT_OUT_OF_RANGE"}
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(value: object) -> Decimal | str:
    """The parsed amount, or the code of the 422 it gives."""
    try:
        return YUAN.validate_python(value)
    except ValidationError as exc:
        [error] = exc.errors()
        return error["type"]


@pytest.mark.parametrize(("value", "code"), [
    ("1E+400", "AMOUNT_OUT_OF_RANGE"),
    ("100000000000000000000.00", "AMOUNT_OUT_OF_RANGE"),
    ("1" * 27, "AMOUNT_OUT_OF_RANGE"),
    ("9" * 40, "AMOUNT_OUT_OF_RANGE"),
    (10**30, "AMOUNT_OUT_OF_RANGE"),
    ("1000000000000.01", "AMOUNT_OUT_OF_RANGE"),
    ("-1000000000000.01", "AMOUNT_OUT_OF_RANGE"),
    ("1e-400", "INVALID_AMOUNT"),
    ("NaN", "INVALID_AMOUNT"),
    ("-Infinity", "INVALID_AMOUNT"),
    ("１２３.４５", "INVALID_AMOUNT"),  # full-width digits
    ("+12.00", "INVALID_AMOUNT"),
    (" 12.00", "INVALID_AMOUNT"),
    ("12.00 ", "INVALID_AMOUNT"),
    ("1_000", "INVALID_AMOUNT"),
    ("١٢", "INVALID_AMOUNT"),  # Arabic-Indic digits
    (True, "INVALID_AMOUNT"),
    (1.5, "INVALID_AMOUNT"),
    (None, "INVALID_AMOUNT"),
    ("1" * 65, "INVALID_AMOUNT"),
])
def test_bad_amounts_get_a_stable_code(value, code):
    assert outcome(value) == code


def test_amounts_at_the_bounds_and_negative_zero():
    assert outcome("1000000000000.00") == MAX_YUAN
    assert outcome("-1000000000000") == -MAX_YUAN
    assert str(outcome("-0")) == "0.00"
    assert str(outcome("-0.00")) == "0.00"
    assert outcome("1e2") == Decimal("100.00")
    assert yuan_to_fen(MAX_YUAN) == MAX_FEN


def test_the_bound_is_in_the_openapi_schema():
    schema = YUAN.json_schema()
    assert schema["maximum"] == int(MAX_YUAN) and schema["minimum"] == -int(MAX_YUAN)
    assert TypeAdapter(NonNegativeYuan).json_schema()["minimum"] == 0


def test_a_computed_total_is_not_refused_on_the_way_out():
    class Total(BaseModel):
        total: Yuan

    big = fen_to_yuan(INT64_MAX)  # built from fen by our own code: a response, not a request
    assert Total(total=big).model_dump(mode="json") == {"total": "92233720368547758.07"}


@PROPERTY
@given(st.one_of(st.text(max_size=80), st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(),
                 st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: format(d, "f")),
                 st.decimals(allow_nan=True).map(str),
                 st.from_regex(r"-?[0-9]{1,30}(\.[0-9]{1,4})?([eE][-+]?[0-9]{1,4})?", fullmatch=True)))
def test_any_input_is_a_bounded_two_place_decimal_or_a_coded_refusal(value):
    result = outcome(value)
    if isinstance(result, str):
        assert result in EDGE_CODES
        return
    assert abs(result) <= MAX_YUAN
    assert result == result.quantize(Decimal("0.01")) and result.as_tuple().exponent == -2
    assert abs(yuan_to_fen(result)) <= MAX_FEN


@PROPERTY
@given(st.integers(min_value=-(10**14), max_value=10**14), st.integers(min_value=0, max_value=99))
def test_every_amount_within_bounds_is_accepted_exactly(whole_fen, _):
    text = f"{fen_to_yuan(whole_fen)}"
    assert yuan_to_fen(outcome(text)) == whole_fen


@PROPERTY
@given(st.lists(st.integers(min_value=-MAX_FEN, max_value=MAX_FEN), max_size=50), st.integers(0, MAX_SUMMED_LINES))
def test_sums_of_bounded_lines_never_overflow(lines, repeat):
    # Any MAX_SUMMED_LINES bounded amounts fit a 64-bit column; the worst case is every line at the bound.
    assert MAX_SUMMED_LINES * MAX_FEN <= INT64_MAX
    worst = repeat * MAX_FEN
    assert checked_total_fen([worst]) == worst
    assert abs(checked_total_fen(lines)) <= INT64_MAX


def test_a_total_beyond_64_bits_is_refused_with_a_clear_code():
    with pytest.raises(DomainError) as info:
        checked_total_fen([MAX_FEN] * (MAX_SUMMED_LINES + 1))
    assert (info.value.code, info.value.status) == ("AMOUNT_OUT_OF_RANGE", 422)
    assert not isinstance(info.value, PydanticCustomError)
