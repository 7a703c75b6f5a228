"""Strict types at the edge: integers that fit a 64-bit column and are never booleans,
dates written as ISO ``YYYY-MM-DD`` text within a plausible window, and text normalised (NFC, trimmed) with control
and invisible format characters refused, each refusal a 422 with a stable code and a Chinese message.

Two ways to use them:

- annotated types for single parameters and fields: ``Int64``, ``NonNegativeInt64``, ``PositiveInt64`` (query, path
  and body integers), ``IsoDate`` (query, path and body dates), ``Name`` / ``Text`` / ``FreeText``;
- ``RequestModel``, the base of request bodies: every field of the body gets the same checks by its declared type
  (``int``, ``date``, ``str`` and lists of them). An integer field without its own upper bound (``le``/``lt``) is
  held to 32 bits, the INTEGER columns of PostgreSQL (versions, codes, counts); amounts in fen declare their own
  (``Fen``, ``MAX_FEN``). The OpenAPI schema shows the bound.

Why a fixed date window and not one relative to today: the edge refuses only the implausible (``0001-01-01``, a
Unix timestamp read as 1970); whether a day may lie in the future is a business rule judged against the platform's
clock (e.g. ``PAID_DATE_IN_FUTURE``), with its own code, and an edge type that changed with the calendar would make
the same request valid one day and not the next. The window starts before any living person's birth and ends where
no business rule's "future" could still need its own answer.
"""

import re
import types
import unicodedata
from datetime import date
from functools import lru_cache
from typing import Annotated, Any, Union, get_args, get_origin

from annotated_types import Le, Lt, MaxLen
from pydantic import BaseModel, BeforeValidator, Field, ValidationInfo, field_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from services.kernel.money import INT64_MAX

INT64_MIN = -INT64_MAX - 1
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2999, 12, 31)
MULTILINE_FROM = 200  # a text field allowing more characters than this is free text: line breaks and tabs allowed

_INTEGER_TEXT = re.compile(r"-?[0-9]{1,4300}", re.ASCII)
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}  # control, format (zero-width, bidi, BOM), surrogates, separators
_LINE_BREAKS = {"\n", "\r", "\t"}
_VERBATIM = ("password", "secret")  # compared byte for byte with what the user types later: never rewritten


# -- integers --------------------------------------------------------------------------------------------------------


def strict_int(value: object) -> object:
    """An integer as JSON writes it, or as ASCII digits (query strings, CSV cells); booleans, floats and other digits
    refused (422 ``INVALID_INTEGER``), beyond 64 bits refused (422 ``INTEGER_OUT_OF_RANGE``)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise PydanticCustomError("INVALID_INTEGER", "须为整数（不接受布尔值或小数）")
    if isinstance(value, str):
        if not _INTEGER_TEXT.fullmatch(value):
            raise PydanticCustomError("INVALID_INTEGER", "须为半角数字写成的整数")
        value = int(value)
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        raise PydanticCustomError("INTEGER_OUT_OF_RANGE", "整数超出允许范围（64 位整数）")
    return value


Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX), BeforeValidator(strict_int)]
NonNegativeInt64 = Annotated[int, Field(ge=0, le=INT64_MAX), BeforeValidator(strict_int)]
PositiveInt64 = Annotated[int, Field(ge=1, le=INT64_MAX), BeforeValidator(strict_int)]
# A cursor over an integer key (sequence numbers, row ids): those columns are INTEGER, 32 bits on PostgreSQL.
INT32_MAX = 2**31 - 1
RowId = Annotated[int, Field(ge=0, le=INT32_MAX), BeforeValidator(strict_int)]


# -- dates -----------------------------------------------------------------------------------------------------------


def iso_date(value: object) -> object:
    """A day as ISO text ``YYYY-MM-DD`` (422 ``INVALID_DATE`` otherwise: numbers are not read as Unix time) between
    ``EARLIEST_DATE`` and ``LATEST_DATE`` (422 ``DATE_OUT_OF_RANGE``). A ``date`` from our own code passes."""
    if isinstance(value, date) and type(value) is date:
        day = value
    elif isinstance(value, str) and _DATE_TEXT.fullmatch(value):
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("INVALID_DATE", f"日期无效：{value}") from None
    else:
        raise PydanticCustomError("INVALID_DATE", "日期须为 YYYY-MM-DD 格式的字符串")
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise PydanticCustomError("DATE_OUT_OF_RANGE", f"日期须在 {EARLIEST_DATE} 至 {LATEST_DATE} 之间")
    return day


IsoDate = Annotated[date, BeforeValidator(iso_date)]


# -- text ------------------------------------------------------------------------------------------------------------


def clean_text(value: object, *, multiline: bool = False) -> object:
    """NFC-normalised and trimmed text; control characters, invisible format characters (zero-width, bidi overrides,
    BOM) and surrogates refused with 422 ``INVALID_CHARACTERS`` (line breaks and tabs allowed in free text)."""
    if not isinstance(value, str):
        return value
    text = value if unicodedata.is_normalized("NFC", value) else unicodedata.normalize("NFC", value)
    text = text.strip()
    if text.isprintable():  # no control, format or separator character at all: the common case, checked in C
        return text
    for ch in text:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES and not (multiline and ch in _LINE_BREAKS):
            raise PydanticCustomError("INVALID_CHARACTERS", f"含有不允许的控制字符或不可见字符（U+{ord(ch):04X}）")
    return text


Name = Annotated[str, BeforeValidator(clean_text), Field(min_length=1, max_length=200)]
Text = Annotated[str, BeforeValidator(clean_text)]
FreeText = Annotated[str, BeforeValidator(lambda v: clean_text(v, multiline=True))]


# -- request bodies --------------------------------------------------------------------------------------------------


def _kind_of(annotation: Any) -> str | None:
    """"int", "date", "str" for a field (optional or not, or a list of them), else None."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _kind_of(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        kinds = {_kind_of(a) for a in get_args(annotation) if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else None
    if origin in (list, tuple, set, frozenset):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        kind = _kind_of(args[0]) if len(args) == 1 else None
        return f"list[{kind}]" if kind else None
    if annotation is bool:
        return None
    if annotation is int:
        return "int"
    if annotation is date:
        return "date"
    if annotation is str:
        return "str"
    return None


def _edge_int(value: object, bits: int) -> object:
    """In a request body: booleans refused and integers kept within ``bits``; strings and floats are left to the
    field's own type (``StrictInt`` refuses them, ``int`` reads "12" and 12.0 but not 12.5)."""
    if isinstance(value, bool):
        raise PydanticCustomError("INVALID_INTEGER", "须为整数，不接受布尔值")
    if isinstance(value, int) or (isinstance(value, str) and _INTEGER_TEXT.fullmatch(value)):
        if not -(2 ** (bits - 1)) <= int(value) < 2 ** (bits - 1):
            raise PydanticCustomError("INTEGER_OUT_OF_RANGE", f"整数超出允许范围（{bits} 位整数）")
    return value


def _check(kind: str, value: object, multiline: bool) -> object:
    if kind == "int":
        return _edge_int(value, 32 if multiline else 64)  # for integers, "multiline" means "no bound of its own"
    if kind == "date":
        return iso_date(value) if value is not None else value
    return clean_text(value, multiline=multiline)


class RequestModel(BaseModel):
    """Base of request bodies: ``int`` fields strict and 64-bit, ``date`` fields ISO text in the window, ``str`` fields
    cleaned (see the module text); ``None`` is left to the field's own type."""

    @classmethod
    @lru_cache(maxsize=None)
    def _edge_kind(cls, name: str) -> tuple[str, bool] | None:
        field = cls.model_fields.get(name)
        if field is None or any(word in name for word in _VERBATIM):
            return None
        kind = _kind_of(field.annotation)
        if kind is None:
            return None
        if kind in ("int", "list[int]"):
            return kind, not any(isinstance(m, (Le, Lt)) for m in field.metadata)
        limits = [m.max_length for m in field.metadata if isinstance(m, MaxLen)]
        return kind, bool(limits) and limits[0] > MULTILINE_FROM

    @field_validator("*", mode="before")
    @classmethod
    def _edge(cls, value: Any, info: ValidationInfo) -> Any:
        found = cls._edge_kind(info.field_name) if info.field_name else None
        if found is None or value is None:
            return value
        kind, multiline = found
        if kind.startswith("list[") and isinstance(value, list):
            return [_check(kind[5:-1], v, multiline) if v is not None else v for v in value]
        return _check(kind, value, multiline)

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema, handler: Any) -> JsonSchemaValue:
        json_schema = handler(schema)
        target = handler.resolve_ref_schema(json_schema)
        for prop in target.get("properties", {}).values():
            for option in [prop, *prop.get("anyOf", []), prop.get("items", {})]:
                if option.get("type") == "integer":
                    option.setdefault("minimum", -(2**31))
                    option.setdefault("maximum", INT32_MAX)
        return json_schema
