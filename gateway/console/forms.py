"""Forms that post to an API route: the JSON body built from the form's fields, each field read as its kind says.

Kinds: ``text``; ``int``; ``bool`` (a checkbox or a select whose value is ``true``); ``fen`` (an amount typed in 元,
sent as integer fen, exactly); ``yuan`` (an amount typed in 元, sent as the API's decimal string). A kind ending in
``?`` is optional: left out of the body when empty. A malformed number is sent as typed, for the API's own 422 message
(the console has no second set of validation rules)."""

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi import Path as FastApiPath
from fastapi.responses import Response

from gateway.console.calls import ApiError
from gateway.console.pages import Page, ScreenRefused, screen_page
from services.kernel.clock import china_today

ObjectId = Annotated[str, FastApiPath(max_length=100, pattern=r"^[\w-]+$")]


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


async def submit(page: Page, route: str, path: str, fields: dict[str, str], back: str | Callable[[Any], str],
                 rerender: Callable[..., Awaitable[Response]]) -> Response:
    """Posts the form to the API route ``route`` (its template; ``path`` concrete) when the user's roles admit it:
    on success back to ``back`` (or to ``back(created)``, the page of what the API answered); on a refusal the page
    again (``rerender(status_code=, form=, error=)``) with the API's message in Chinese and what was typed."""
    if not await page.may("POST", route):
        raise ScreenRefused()
    response = await page.calls.call("POST", path, json=body_of(fields, page.form))
    if response.status_code in (200, 201, 202):
        return page.redirect(back if isinstance(back, str) else back(response.json()))
    error = ApiError.of(response)
    return await rerender(status_code=error.status, form=page.form, error=error.in_words())


@dataclass(frozen=True)
class Workflow:
    """An object's page with a form for each step of its workflow (a case, a whistleblower report, an inspection, an
    incident): the page shows the object from its API route and offers the steps whose routes admit the user's roles;
    a step posts its form to its route and comes back to the page, or shows the page again with the API's refusal."""

    api: str  # the object's API route, e.g. "/api/oversight/cases/{case_id}"
    page: str  # its console page, the same placeholder, e.g. "/console/oversight/cases/{case_id}"
    template: str
    name: str  # the object's name in the template
    steps: dict[str, tuple[str, dict[str, str]]]  # step → (its route after ``api``, its fields as body_of reads them)

    def route(self, step: str) -> str:
        return self.api + self.steps[step][0]

    def concrete(self, template: str, object_id: str) -> str:
        return re.sub(r"\{\w+\}", quote(object_id, safe=""), template, count=1)

    async def show(self, page: Page, object_id: str, *, status_code: int = 200, error: str | None = None,
                   form: dict[str, str] | None = None) -> Response:
        detail = await page.calls.json("GET", self.concrete(self.api, object_id))
        allowed = {step for step in self.steps if await page.may("POST", self.route(step))}
        return await page.render(self.template, status_code=status_code, allowed=allowed, error=error,
                                 form=form or {}, today=china_today(), **{self.name: detail})

    async def take(self, page: Page, object_id: str, step: str) -> Response:
        async def again(**context: Any) -> Response:
            return await self.show(page, object_id, **context)

        return await submit(page, self.route(step), self.concrete(self.route(step), object_id), self.steps[step][1],
                            self.concrete(self.page, object_id), again)

    def add_routes(self, router: APIRouter, screen: str) -> None:
        """``GET <page>`` and ``POST <page>/<step>`` on ``router`` (whose prefix the page's path starts with)."""
        path = re.sub(r"\{\w+\}", "{object_id}", self.page.removeprefix("/console" + router.prefix), count=1)
        steps = "^(" + "|".join(re.escape(s) for s in self.steps) + ")$"

        async def show(page: Annotated[Page, screen_page(screen)], object_id: ObjectId) -> Response:
            return await self.show(page, object_id)

        async def take(page: Annotated[Page, screen_page(screen)], object_id: ObjectId,
                       step: Annotated[str, FastApiPath(pattern=steps)]) -> Response:
            return await self.take(page, object_id, step)

        router.add_api_route(path, show, methods=["GET"], name=f"{self.name}_page")
        router.add_api_route(path + "/{step}", take, methods=["POST"], name=f"{self.name}_step")
