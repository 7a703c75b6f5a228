"""Money: integer fen (分) in tables and events, ``Decimal`` yuan with two places at the API edge.

Rounding is half-up, once per line (DOMAIN.md, Rounding); totals are sums of rounded lines. ``float`` is refused
everywhere: a float has already lost the fen before we see it.

Bounds. Every amount received at the edge is at most ``MAX_YUAN`` = 1 万亿元 (10^12 yuan, 10^14 fen) in absolute
value: above any real fund figure (a whole province's pension fund is of that order; a city's, a line's or a
person's are far below), yet 92 233 times below the largest 64-bit integer of fen (BIGINT, SQLite's INTEGER). So
the sum of up to ``MAX_SUMMED_LINES`` bounded lines always fits in a column; a batch that may be longer checks its
totals with ``checked_total_fen`` (422 ``AMOUNT_OUT_OF_RANGE``) before storing them.
"""

import re
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

FEN_PER_YUAN = 100
_CENT = Decimal("0.01")

MAX_YUAN = Decimal("1000000000000")  # 1 万亿元 per amount (see the module text)
MAX_FEN = int(MAX_YUAN) * FEN_PER_YUAN
INT64_MAX = 2**63 - 1  # BIGINT / SQLite INTEGER
MAX_SUMMED_LINES = INT64_MAX // MAX_FEN  # 92 233 bounded amounts always sum within a 64-bit column
_AMOUNT_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", re.ASCII)
_MAX_AMOUNT_TEXT = 64  # characters; longer text is no amount anyone writes
_OUT_OF_RANGE = f"金额超出允许范围：绝对值不得超过 {MAX_YUAN:,} 元"


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


def checked_total_fen(amounts: Iterable[int]) -> int:
    """The sum of amounts in fen, refused with 422 ``AMOUNT_OUT_OF_RANGE`` if it would not fit a 64-bit column."""
    total = sum(amounts)
    if abs(total) > INT64_MAX:
        from services.kernel.errors import Invalid  # noqa: PLC0415 - errors imports FastAPI, money must not

        raise Invalid("AMOUNT_OUT_OF_RANGE", "合计金额超出允许范围，请拆分后重新提交")
    return total


def _amount_of(value: object) -> Decimal:
    """The number an edge value writes, before bounds: a decimal string in ASCII digits (an optional leading "-",
    no "+", no spaces, no full-width digits) or a JSON integer; floats, booleans and anything else refused."""
    if isinstance(value, float):
        raise PydanticCustomError("INVALID_AMOUNT", "金额须以字符串或整数表示，不接受浮点数")
    if isinstance(value, bool):
        raise PydanticCustomError("INVALID_AMOUNT", "金额须以字符串或整数表示")
    if isinstance(value, int):
        return Decimal(value)
    if not isinstance(value, str):
        raise PydanticCustomError("INVALID_AMOUNT", "金额须以字符串或整数表示")
    if len(value) > _MAX_AMOUNT_TEXT or not _AMOUNT_TEXT.fullmatch(value):
        raise PydanticCustomError("INVALID_AMOUNT", "金额格式错误：应为半角数字写成的小数，如 \"123.45\"")
    return Decimal(value)


def parse_yuan(value: object) -> Decimal:
    """An amount in yuan received at the edge: within ±``MAX_YUAN`` (else 422 ``AMOUNT_OUT_OF_RANGE``), at most two
    decimal places (else ``INVALID_AMOUNT``); "-0" is 0. A ``Decimal`` comes from our own code (a response built
    from fen): it is checked for places only, as a computed total may exceed what one request may carry."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise PydanticCustomError("INVALID_AMOUNT", "金额格式错误")
        amount = value
    else:
        amount = _amount_of(value)
        if abs(amount) > MAX_YUAN:
            raise PydanticCustomError("AMOUNT_OUT_OF_RANGE", _OUT_OF_RANGE)
    try:
        cents = amount.quantize(_CENT)
    except InvalidOperation:  # more digits than the context holds: only a Decimal beyond any real figure
        raise PydanticCustomError("AMOUNT_OUT_OF_RANGE", _OUT_OF_RANGE) from None
    if amount != cents:
        raise PydanticCustomError("INVALID_AMOUNT", "金额最多保留两位小数")
    return cents + 0  # + 0 turns -0.00 into 0.00


_parse_yuan = parse_yuan  # the name other modules used


def _not_negative(amount: Decimal) -> Decimal:
    if amount < 0:
        raise PydanticCustomError("NEGATIVE_AMOUNT", "金额不能为负数")
    return amount


def _amount_schema(minimum: Decimal | None, exclusive: bool, maximum: Decimal) -> WithJsonSchema:
    low = -MAX_YUAN if minimum is None else minimum
    signed = low < 0
    number: dict = {"type": "integer", "maximum": int(maximum)}
    bounds: dict = {"maximum": int(maximum)}
    for schema in (number, bounds):
        schema["exclusiveMinimum" if exclusive else "minimum"] = int(low)
    text = {"type": "string", "pattern": r"^%s[0-9]{1,13}(\.[0-9]{1,2})?$" % ("-?" if signed else ""),
            "examples": ["123.45"]}
    return WithJsonSchema({"anyOf": [text, number], **bounds,
                           "description": f"金额（元），至多两位小数，绝对值不超过 {maximum:,} 元"}, mode="validation")


_AS_TEXT = PlainSerializer(lambda d: f"{d:.2f}", return_type=str)


def yuan_type(*checks: Callable[[Decimal], Decimal], minimum: Decimal | None = None, exclusive: bool = False,
              maximum: Decimal = MAX_YUAN) -> Any:
    """A ``Yuan`` with further checks (each raising its own ``PydanticCustomError``); ``minimum`` / ``exclusive`` /
    ``maximum`` only document in the OpenAPI schema the amounts the checks let through."""
    return Annotated[Decimal, BeforeValidator(parse_yuan), *(AfterValidator(c) for c in checks), _AS_TEXT,
                     _amount_schema(minimum, exclusive, maximum)]


# API-edge money: accepts "123.45" or 123 (JSON floats are refused), at most MAX_YUAN in absolute value, serialises
# as a string. ``NonNegativeYuan`` also refuses amounts below zero (422 ``NEGATIVE_AMOUNT``).
Yuan = yuan_type()
NonNegativeYuan = yuan_type(_not_negative, minimum=Decimal(0))
