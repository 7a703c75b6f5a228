"""The body of ``POST /declarations/batches`` read without a model per line.

An agency's batch carries up to 10 000 lines; validating each as a ``DeclarationLineIn`` (a model, five Python
validators and the edge's text check per line) cost more than assessing it. ``plain_batch`` reads the decoded JSON
directly when every value is in its plain form — ASCII text already trimmed, a citizen id in capitals, a base as
digits with at most two places or a whole number of yuan — and gives the same period and ``InputLine`` values the
model and ``service.lines_from_request`` give. Anything else (an unknown key, a missing or null person, a base with
an exponent, a zero base, text with spaces or other characters, a bad citizen id, a list too long …) is left to the
model, which accepts it or refuses it with its own codes and messages: ``validated_batch`` raises the 422 FastAPI
would (``loc`` under ``body``).
"""

import re
from typing import Any

from services.collection.assessments.schemas import MAX_BATCH_DECLARATIONS, MAX_BATCH_LINES, DeclarationBatchIn
from services.collection.assessments.service import InputLine, lines_from_request
from services.kernel import json_body
from services.kernel.identifiers import validate_citizen_id
from services.kernel.money import MAX_FEN
from services.kernel.periods import validate_period

Declared = tuple[int, list[tuple[str, list[InputLine]]]]  # the period, and each employer's lines

_TRIMMED = re.compile(r"[!-~](?:[ -~]*[!-~])?")  # printable ASCII, no space at either end
_YUAN = re.compile(r"([0-9]{1,13})(?:\.([0-9]{1,2}))?")
_BATCH_KEYS = frozenset({"period", "declarations"})
_DECLARATION_KEYS = frozenset({"employer_id", "lines"})
_LINE_KEYS = frozenset({"person_id", "citizen_id", "base"})
_ID_LENGTH = 36  # person_id and employer_id: max_length


class _NotPlain(Exception):
    """A value the model must judge."""


def _text(value: Any) -> str:
    if type(value) is not str or len(value) > _ID_LENGTH or not _TRIMMED.fullmatch(value):
        raise _NotPlain
    return value


def _base_fen(value: Any) -> int:
    """A positive base in fen from "5432.10", "5432.1", "5432" or 5432 (``Base`` then ``yuan_to_fen``)."""
    if type(value) is int:
        fen = value * 100
    elif type(value) is str and (digits := _YUAN.fullmatch(value)) is not None:
        whole, cents = digits.groups()
        fen = int(whole) * 100 + (int(cents) * (10 if len(cents) == 1 else 1) if cents else 0)
    else:
        raise _NotPlain
    if not 0 < fen <= MAX_FEN:
        raise _NotPlain
    return fen


def _line(line_no: int, raw: Any) -> InputLine:
    if type(raw) is not dict or "base" not in raw or not raw.keys() <= _LINE_KEYS:
        raise _NotPlain
    person_id, citizen_id = raw.get("person_id"), raw.get("citizen_id")
    if person_id is None and citizen_id is None:
        raise _NotPlain
    if person_id is not None:
        person_id = _text(person_id)
    if citizen_id is not None:
        if type(citizen_id) is not str or not citizen_id.isupper() and not citizen_id.isdigit():
            raise _NotPlain
        citizen_id = validate_citizen_id(citizen_id)
    return InputLine(line_no, person_id, citizen_id, _base_fen(raw["base"]))


def _declaration(raw: Any) -> tuple[str, list[InputLine]]:
    if type(raw) is not dict or raw.keys() != _DECLARATION_KEYS:
        raise _NotPlain
    lines = raw["lines"]
    if type(lines) is not list or not 0 < len(lines) <= MAX_BATCH_LINES:
        raise _NotPlain
    return _text(raw["employer_id"]), [_line(i, line) for i, line in enumerate(lines, start=1)]


def plain_batch(raw: Any) -> Declared | None:
    """The period and declarations of a decoded body in plain form, as the model reads them; None: not plain (for
    the model to judge)."""
    if type(raw) is not dict or raw.keys() != _BATCH_KEYS:
        return None
    period, declarations = raw["period"], raw["declarations"]
    if type(period) is not int or type(declarations) is not list or not 0 < len(declarations) <= MAX_BATCH_DECLARATIONS:
        return None
    try:
        return validate_period(period), [_declaration(d) for d in declarations]
    except (_NotPlain, ValueError):  # ValueError: pydantic's refusals of a period or citizen id are ValueErrors
        return None


def validated_batch(raw: Any) -> Declared:
    """``plain_batch``, or the model's reading of the body: its values, or the 422 it refuses the body with."""
    plain = plain_batch(raw)
    if plain is not None:
        return plain
    batch = json_body.validated(DeclarationBatchIn, raw)  # as FastAPI validates a body
    return batch.period, [(d.employer_id, lines_from_request(d.lines)) for d in batch.declarations]
