from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from services.kernel.identifiers import BankCard, CitizenId, USCC, mask_bank_account, mask_citizen_id
from services.kernel.money import Yuan, fen_to_yuan, percent_of_fen, round_fen, yuan_to_fen

pytestmark = pytest.mark.unit  # pure: no NATS, no app, no database (make test-unit)


def test_fen_conversions_are_exact():
    assert yuan_to_fen(Decimal("123.45")) == 12345
    assert yuan_to_fen("0.01") == 1
    assert yuan_to_fen(7) == 700
    assert fen_to_yuan(12345) == Decimal("123.45")
    assert fen_to_yuan(-5) == Decimal("-0.05")
    with pytest.raises(ValueError):
        yuan_to_fen("1.005")
    with pytest.raises(TypeError):
        yuan_to_fen(1.1)  # type: ignore[arg-type]


def test_rounding_is_half_up_once_per_line():
    assert round_fen(Decimal("0.5")) == 1
    assert round_fen(Decimal("1.4999")) == 1
    assert round_fen(Decimal("2.5")) == 3  # banker's rounding would give 2
    assert round_fen(Decimal("-2.5")) == -3
    # 8 % of a 5 432.10 yuan base: 434.568 yuan → 434.57
    assert percent_of_fen(543210, Decimal("0.08")) == 43457
    # 0.05 % daily late fee on 1 234.56 yuan: 0.61728 → 0.62
    assert percent_of_fen(123456, Decimal("0.0005")) == 62


class Payment(BaseModel):
    amount: Yuan


def test_yuan_at_the_api_edge():
    assert Payment(amount="10.5").amount == Decimal("10.50")
    assert Payment.model_validate_json('{"amount": 12}').model_dump(mode="json") == {"amount": "12.00"}
    for bad in ['{"amount": 1.1}', '{"amount": "1.001"}', '{"amount": "abc"}', '{"amount": "NaN"}']:
        with pytest.raises(ValidationError) as info:
            Payment.model_validate_json(bad)
        assert info.value.errors()[0]["type"] == "INVALID_AMOUNT"


class Person(BaseModel):
    citizen_id: CitizenId


class Employer(BaseModel):
    uscc: USCC


class Account(BaseModel):
    card: BankCard


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("11010519491231002Y", "校验位"),
        ("1101051949123100", "18位"),
        ("110105194913310021", None),
    ],
)
def test_bad_citizen_ids(value, message):
    with pytest.raises(ValidationError) as info:
        Person(citizen_id=value)
    error = info.value.errors()[0]
    assert error["type"] == "INVALID_CITIZEN_ID"
    if message:
        assert message in error["msg"]


def test_good_identifiers_are_normalised():
    assert Person(citizen_id=" 11010519491231002x ").citizen_id == "11010519491231002X"
    assert Employer(uscc="91110000600037341l").uscc == "91110000600037341L"
    assert Account(card="6222 0212 3456 7890 128").card == "6222021234567890128"


def test_bad_uscc_and_card():
    with pytest.raises(ValidationError) as info:
        Employer(uscc="91110000600037341A")
    assert info.value.errors()[0]["type"] == "INVALID_USCC"
    with pytest.raises(ValidationError) as info:
        Account(card="6222021234567890127")
    assert info.value.errors()[0]["type"] == "INVALID_BANK_CARD"
    with pytest.raises(ValidationError):
        Account(card="12ab")


def test_masks():
    assert mask_citizen_id("11010519491231002X") == "110105********002X"
    assert mask_bank_account("6222021234567890128") == "***************0128"
