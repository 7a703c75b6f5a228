"""Field types and bodies shared by the services' APIs: decimal-string rates, integer fen, reasons, region codes and
the approve / reject bodies of a two-person decision.

A rate is a decimal **string** ("0.16"); a JSON number is refused, a float because it has already lost the exact
value, an integer because a rate written as a number is ambiguous (16 or 0.16?). Amounts are integers in fen (a
float is refused).
"""

from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, StrictInt
from pydantic_core import PydanticCustomError

from services.kernel.money import MAX_FEN
from services.kernel.periods import Period
from services.kernel.strict import RequestModel

MAX_RATE_PLACES = 6


def rate_text(value: Decimal) -> str:
    """Canonical text of a rate: fixed notation, no exponent, no trailing zeros (``Decimal('0.0020')`` → "0.002")."""
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def parse_decimal_string(value: object, *, what: str, example: str) -> Decimal:
    """A finite decimal written as a string; 422 ``INVALID_RATE`` otherwise. ``what`` names the figure in the
    message, ``example`` shows how to write it."""
    if isinstance(value, float):
        raise PydanticCustomError("INVALID_RATE", f"{what}须以字符串表示（如 \"{example}\"），不接受浮点数")
    if not isinstance(value, str):
        raise PydanticCustomError("INVALID_RATE", f"{what}须以字符串表示（如 \"{example}\"）")
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        raise PydanticCustomError("INVALID_RATE", f"{what}格式错误：{value!r}") from None
    if not number.is_finite():
        raise PydanticCustomError("INVALID_RATE", f"{what}格式错误：{value!r}")
    return number


def parse_rate(value: object) -> Decimal:
    """A rate as a fraction in a decimal string: 0 ≤ r < 1, at most six decimal places ("0.16" is 16 %)."""
    if isinstance(value, Decimal):
        value = format(value, "f")
    rate = parse_decimal_string(value, what="费率", example="0.16")
    if rate < 0 or rate >= 1:
        raise PydanticCustomError("INVALID_RATE", f"费率应为不小于 0 且小于 1 的小数（如 0.16 表示 16%），收到 {value}")
    if -rate.as_tuple().exponent > MAX_RATE_PLACES:
        raise PydanticCustomError("INVALID_RATE", f"费率最多保留 {MAX_RATE_PLACES} 位小数，收到 {value}")
    return rate


AS_RATE_TEXT = PlainSerializer(rate_text, return_type=str)
"""Serialise a ``Decimal`` field as its canonical text (for rate-like types built on ``parse_decimal_string``)."""

Rate = Annotated[Decimal, BeforeValidator(parse_rate), AS_RATE_TEXT]
Fen = Annotated[StrictInt, Field(ge=0, le=MAX_FEN, description="integer fen (分), at most 1 万亿元")]
PositiveFen = Annotated[StrictInt, Field(gt=0, le=MAX_FEN, description="integer fen (分), at most 1 万亿元")]
Reason = Annotated[str, BeforeValidator(lambda v: v.strip() if isinstance(v, str) else v),
                   Field(min_length=1, max_length=2000, description="原因")]
RegionText = Annotated[str, Field(pattern=r"^\d{6}$", description="统筹区行政区划代码 (6 digits)")]


class Decision(RequestModel):  # approving: the reason is optional
    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = None


class RejectDecision(RequestModel):  # rejecting: the reason is required
    model_config = ConfigDict(extra="forbid")

    reason: Reason


class DatedDocumentProposal(RequestModel):
    """Body of a proposal of a dated document (the lifecycle is kernel/dated_documents.py; the body is here so that
    a service's document schemas import no database code). A service subclasses it and narrows ``document`` to its
    document type (a redeclared field keeps its place, so the body reads region, valid_from, document, reason)."""

    model_config = ConfigDict(extra="forbid")

    region: RegionText
    valid_from: Period = Field(description="first month (YYYYMM) the document applies to")
    document: BaseModel
    reason: Reason
