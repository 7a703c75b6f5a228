"""Money: integer fen (分) in tables and events, ``Decimal`` yuan with two places at the API edge.

Rounding is half-up, once per line (DOMAIN.md, Rounding); totals are sums of rounded lines. ``float`` is refused
everywhere: a float has already lost the fen before we see it.
"""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer
from pydantic_core import PydanticCustomError

FEN_PER_YUAN = 100
_CENT = Decimal("0.01")


def round_fen(amount_fen: Decimal | int) -> int:
    """Round an exact amount in fen (possibly fractional) to whole fen, half-up."""
    return int(Decimal(amount_fen).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def yuan_to_fen(amount: Decimal | int | str) -> int:
    """Exact conversion; refuses amounts with more than two decimal places rather than silently rounding."""
    if isinstance(amount, float):
        raise TypeError("money must not be a float")
    value = Decimal(str(amount)) if not isinstance(amount, Decimal) else amount
    fen = value * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise ValueError(f"amount {amount} has more than two decimal places")
    return int(fen)


def fen_to_yuan(amount_fen: int) -> Decimal:
    return (Decimal(amount_fen) / FEN_PER_YUAN).quantize(_CENT)


def percent_of_fen(base_fen: int, rate: Decimal) -> int:
    """``rate`` is a fraction (Decimal('0.16') for 16 %); result rounded half-up to the fen."""
    return round_fen(Decimal(base_fen) * rate)


def _parse_yuan(value: object) -> Decimal:
    if isinstance(value, float):
        raise PydanticCustomError("INVALID_AMOUNT", "金额须以字符串或整数表示，不接受浮点数")
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise PydanticCustomError("INVALID_AMOUNT", "金额格式错误") from None
    if not amount.is_finite() or amount != amount.quantize(_CENT):
        raise PydanticCustomError("INVALID_AMOUNT", "金额最多保留两位小数")
    return amount.quantize(_CENT)


# API-edge money: accepts "123.45" or 123 (JSON floats are refused), serialises as a string.
Yuan = Annotated[Decimal, BeforeValidator(_parse_yuan), PlainSerializer(lambda d: f"{d:.2f}", return_type=str)]
