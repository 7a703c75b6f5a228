"""A large JSON request body decoded by msgspec in the endpoint's thread, answered as FastAPI answers a body it reads.

For a ``body: Model`` (or ``Body()``) parameter FastAPI decodes the body on the event loop with the standard
``json`` module (starlette's ``request.json``): for a batch of 10 000 lines that is some milliseconds during which
no other request is served, and several times what msgspec takes. A route taking ``body: RawJsonBody`` (the bytes
and the content type, read by an async dependency without decoding them) decodes them itself with ``decoded`` in
its worker thread, and ``validated`` checks them against the model FastAPI would have used. Every refusal is the
one FastAPI gives: a missing body, JSON that does not decode (``json_invalid`` at the standard decoder's position:
msgspec refusing a body hands it to ``json.loads``, which decodes what msgspec does not — ``NaN``, UTF-16 — or
raises its own error; a body it cannot read at all is 400), a content type that is not JSON (the bytes go to the model, which refuses them), and the
model's own errors (``loc`` under ``body``). The route documents its body with ``openapi.json_body(Model)``.
"""

import email.message
import json
from typing import Annotated, Any, NamedTuple, TypeVar

import msgspec
from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

_DECODER = msgspec.json.Decoder()


class RawBody(NamedTuple):
    data: bytes
    content_type: str | None


async def _raw_body(request: Request) -> RawBody:
    return RawBody(await request.body(), request.headers.get("content-type"))


RawJsonBody = Annotated[RawBody, Depends(_raw_body)]


def _is_json(content_type: str | None) -> bool:
    """FastAPI's test (strict content type): ``application/json`` or ``application/*+json``; no header is not JSON."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def decoded(body: RawBody) -> Any:
    """The body as FastAPI hands it to a required ``Body()`` parameter: the decoded JSON, or the bytes when the
    content type is not JSON; a 422 for a missing body or JSON that does not decode."""
    data, content_type = body
    if not data:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    if not _is_json(content_type):
        return data
    try:
        return _DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError):
        pass
    try:
        return json.loads(data)  # what msgspec refuses, read (or refused) as FastAPI reads it
    except json.JSONDecodeError as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
                                       "input": {}, "ctx": {"error": exc.msg}}], body=exc.doc) from None
    except Exception as exc:  # not UTF-8 (nor UTF-16/32), nested too deep: FastAPI's answer to a body it cannot read
        raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc


def validated(model: type[M], raw: Any) -> M:
    """``raw`` (a decoded body) validated as FastAPI validates a body parameter of type ``model``, or its 422."""
    try:
        return model.model_validate(raw, from_attributes=True)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)],
                                     body=raw) from None
