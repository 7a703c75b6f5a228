"""Forms that post to an API route: the JSON body built from the form's fields, each field read as its kind says.

Kinds: ``text``; ``int``; ``bool`` (a checkbox or a select whose value is ``true``); ``fen`` (an amount typed in 元,
sent as integer fen, exactly); ``yuan`` (an amount typed in 元, sent as the API's decimal string). A kind ending in
``?`` is optional: left out of the body when empty. A malformed number is sent as typed, for the API's own 422 message
(the console has no second set of validation rules)."""

from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi.responses import Response

from gateway.console.calls import ApiError
from gateway.console.pages import Page, ScreenRefused


def _fen(value: str) -> int | str:
    """元 → fen, exactly; a value that is not a whole number of fen (``1.005``, ``abc``, ``NaN``) is sent as typed."""
    try:
        fen = Decimal(value) * 100
        if not fen.is_finite() or fen != fen.to_integral_value():
            return value
        return int(fen)
    except (InvalidOperation, ValueError):
        return value


READERS = {
    "text": lambda v: v,
    "yuan": lambda v: v,
    "int": lambda v: int(v) if v.isdigit() else v,
    "bool": lambda v: v == "true",
    "fen": _fen,
}


def body_of(fields: dict[str, str], form: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, kind in fields.items():
        value = form.get(name, "").strip()
        optional = kind.endswith("?")
        kind = kind.rstrip("?")
        if not value and optional and kind != "bool":
            continue
        body[name] = READERS[kind](value)
    return body


async def submit(page: Page, route: str, path: str, fields: dict[str, str], back: str,
                 rerender: Callable[..., Awaitable[Response]]) -> Response:
    """Posts the form to the API route ``route`` (its template; ``path`` concrete) when the user's roles admit it:
    on success back to ``back``; on a refusal the page again (``rerender(status_code=, form=, error=)``) with the
    API's message in Chinese and what was typed."""
    if not await page.may("POST", route):
        raise ScreenRefused()
    response = await page.calls.call("POST", path, json=body_of(fields, page.form))
    if response.status_code in (200, 201, 202):
        return page.redirect(back)
    error = ApiError.of(response)
    return await rerender(status_code=error.status, form=page.form, error=error.in_words())
