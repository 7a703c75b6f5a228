"""Shared API field types (services/kernel/schemas.py): decimal-string rates, fen, reasons, decision bodies."""

from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from services.kernel.schemas import Decision, PositiveFen, Rate, Reason, RegionText, RejectDecision, rate_text

pytestmark = pytest.mark.unit  # pure: no NATS, no app, no database (make test-unit)


class Body(BaseModel):
    rate: Rate
    amount_fen: PositiveFen
    reason: Reason
    region: RegionText


def test_rates_are_decimal_strings_and_serialise_canonically():
    body = Body.model_validate({"rate": " 0.0020 ", "amount_fen": 1, "reason": "  年度  ", "region": "150100"})
    assert body.rate == Decimal("0.002") and body.reason == "年度"
    assert body.model_dump(mode="json")["rate"] == "0.002"
    assert rate_text(Decimal("0E-7")) == "0"


@pytest.mark.parametrize("rate", [0.16, 16, "16", "-0.1", "0.1234567", "NaN", "abc"])
def test_bad_rates_are_invalid_rate(rate):
    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"rate": rate, "amount_fen": 1, "reason": "r", "region": "150100"})
    assert caught.value.errors()[0]["type"] == "INVALID_RATE"


@pytest.mark.parametrize("field, value", [("amount_fen", 0), ("amount_fen", 1.0), ("reason", "  "), ("region", "1501")])
def test_fen_reason_and_region_are_checked(field, value):
    good = {"rate": "0.16", "amount_fen": 1, "reason": "r", "region": "150100"}
    with pytest.raises(ValidationError):
        Body.model_validate({**good, field: value})


def test_a_rejection_needs_a_reason_an_approval_does_not():
    assert Decision.model_validate({}).reason is None
    with pytest.raises(ValidationError):
        RejectDecision.model_validate({})
    with pytest.raises(ValidationError):
        Decision.model_validate({"reason": "ok", "extra": 1})
