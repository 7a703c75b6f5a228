"""A body read by ``json_body`` (msgspec, in the endpoint's thread) is answered exactly as FastAPI answers the same
body for a ``body: Model`` parameter: the same value on success, the same status and error body for a missing
body, JSON that does not decode (at the standard decoder's position), a content type that is not JSON, bytes that
are not text, and the model's own refusals."""

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import Field

from services.kernel.errors import install_error_handlers
from services.kernel.json_body import RawJsonBody, decoded, validated
from services.kernel.strict import RequestModel


class Batch(RequestModel):
    lines: list[Any] = Field(min_length=1)
    note: str | None = None


app = FastAPI()
install_error_handlers(app)


@app.post("/fastapi")
def by_fastapi(body: Batch) -> dict:
    return body.model_dump()


@app.post("/kernel")
def by_kernel(body: RawJsonBody) -> dict:
    return validated(Batch, decoded(body)).model_dump()


JSON = "application/json"
BODIES = [
    (b'{"lines": [{"a": 1, "b": "x"}, 2, "3", null, true, 1.5, [1]]}', JSON),
    (b'{"lines": [1], "note": "  \\u4e2d  "}', JSON),
    (b'{"lines": [123456789012345678901234567890, -0, 1E2]}', JSON),
    (b'{"lines": [1], "note": "\\ud800"}', JSON),
    (b'{"lines": [NaN, Infinity, 1.5e400]}', JSON),
    (b'\xef\xbb\xbf{"lines": [1]}', JSON),
    ('{"lines": [1]}'.encode("utf-16"), JSON),
    (b'{"lines": [1], "lines": [2, 3]}', JSON),
    (b'{"lines": [1]}', "application/vnd.sifund+json; charset=utf-8"),
    (b'{"lines": [1]}', "text/plain"),
    (b'{"lines": [1]}', None),
    (b"", JSON),
    (b"   ", JSON),
    (b'{"lines": [1,]}', JSON),
    (b'{"lines": [1]} x', JSON),
    (b'{"lines": ["a\tb"]}', JSON),
    (b'{"lines": [01]}', JSON),
    (b'{"lines": ["\\x41"]}', JSON),
    (b'{"lines": ["\xff"]}', JSON),
    (b"[" * 100_000 + b"]" * 100_000, JSON),
    (b'{"lines": []}', JSON),
    (b'{"lines": "x"}', JSON),
    (b'{"lines": [1], "extra": 1}', JSON),
    (b'{"lines": [1], "note": 5}', JSON),
    (b"[]", JSON),
    (b'"batch"', JSON),
    (b"null", JSON),
]


@pytest.mark.parametrize(("data", "content_type"), BODIES)
def test_a_body_is_answered_as_fastapi_answers_it(data, content_type):
    headers = {"content-type": content_type} if content_type else {}
    with TestClient(app) as client:
        expected = client.post("/fastapi", content=data, headers=headers)
        got = client.post("/kernel", content=data, headers=headers)
    assert (got.status_code, got.json()) == (expected.status_code, expected.json())
