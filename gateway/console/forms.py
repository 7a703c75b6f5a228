"""Forms that post to an API route: the JSON body built from the form's fields, each field read as its kind says.

Kinds: ``text``; ``int``; ``bool`` (a checkbox or a select whose value is ``true``); ``fen`` (an amount typed in 元,
sent as integer fen, exactly); ``yuan`` (an amount typed in 元, sent as the API's decimal string). A kind ending in
``?`` is optional: left out of the body when empty. A malformed number is sent as typed, for the API's own 422 message
(the console has no second set of validation rules)."""

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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


# A form's body: its fields as body_of reads them, or a function of the typed form (a body with lists: a team's
# members, a letter's deadline per finding).
Fields = dict[str, str] | Callable[[dict[str, str]], dict[str, Any]]


def build(fields: Fields, form: dict[str, str]) -> dict[str, Any]:
    return fields(form) if callable(fields) else body_of(fields, form)


async def submit(page: Page, route: str, path: str, fields: Fields, back: str | Callable[[Any], str],  # noqa: PLR0913
                 rerender: Callable[..., Awaitable[Response]], *, method: str = "POST",
                 headers: dict[str, str] | None = None) -> Response:
    """Sends the form to the API route ``route`` (its template; ``path`` concrete) when the user's roles admit it:
    on success back to ``back`` (or to ``back(created)``, the page of what the API answered); on a refusal the page
    again (``rerender(status_code=, form=, error=)``) with the API's message in Chinese and what was typed."""
    if not await page.may(method, route):
        raise ScreenRefused()
    response = await page.calls.call(method, path, json=build(fields, page.form), headers=headers or {})
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
    steps: dict[str, tuple[str, Fields]]  # step → (its route after ``api``, its fields as body_of reads them)
    methods: dict[str, str] = field(default_factory=dict)  # a step sent otherwise than by POST, e.g. PUT
    extra: Callable[[Page, Any], Awaitable[dict[str, Any]]] | None = None  # (page, object) → more template values

    def route(self, step: str) -> str:
        return self.api + self.steps[step][0]

    def method(self, step: str) -> str:
        return self.methods.get(step, "POST")

    def concrete(self, template: str, object_id: str) -> str:
        return re.sub(r"\{\w+\}", quote(object_id, safe=""), template, count=1)

    async def show(self, page: Page, object_id: str, *, status_code: int = 200, error: str | None = None,
                   form: dict[str, str] | None = None) -> Response:
        detail = await page.calls.json("GET", self.concrete(self.api, object_id))
        allowed = {step for step in self.steps if await page.may(self.method(step), self.route(step))}
        more = await self.extra(page, detail) if self.extra else {}
        return await page.render(self.template, status_code=status_code, allowed=allowed, error=error,
                                 form=form or {}, today=china_today(), **more, **{self.name: detail})

    async def take(self, page: Page, object_id: str, step: str) -> Response:
        async def again(**context: Any) -> Response:
            return await self.show(page, object_id, **context)

        return await submit(page, self.route(step), self.concrete(self.route(step), object_id), self.steps[step][1],
                            self.concrete(self.page, object_id), again, method=self.method(step))

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


# -- sets of entry forms on one page (registration, finance entries) -------------------------------------------------


@dataclass(frozen=True)
class Input:
    name: str
    kind: str  # as body_of reads it
    label: str
    choices: dict[str, str] | None = None  # a select: code → Chinese label ("" first when optional)


@dataclass(frozen=True)
class Entry:
    """One form of a set: posted to the API route ``route``; on success to ``back`` (``{id}``: the answer's
    ``id_key``, e.g. the registered object's page). ``idempotent``: the route wants an ``Idempotency-Key``, a key
    made when the form is shown and kept while it is posted again after a refusal (a double click records once)."""

    title: str
    route: str
    fields: tuple[Input, ...]
    back: str
    id_key: str = "id"  # dotted for a nested value, e.g. "run.id"
    idempotent: bool = False

    @property
    def body_fields(self) -> dict[str, str]:
        return {f.name: f.kind for f in self.fields}

    def page_of(self, created: dict[str, Any]) -> str:
        value: Any = created
        for part in self.id_key.split("."):
            value = value.get(part, "") if isinstance(value, dict) else ""
        return self.back.format(id=quote(str(value), safe=""))


@dataclass(frozen=True)
class FormSet:
    """A page of entry forms (``GET path``), each posted to ``POST path/<name>``; the refused form is shown again
    with the API's message beside it and what was typed."""

    title: str
    href: str  # the page, e.g. "/console/finance/entries"
    intro: str
    entries: dict[str, Entry]
    button: str = "提交"
    form_id: str = "entry"  # the forms' HTML ids: ``<name>-<form_id>``, its error ``<name>-<form_id>-error``

    async def show(self, page: Page, *, status_code: int = 200, refused: str | None = None, error: str | None = None,
                   form: dict[str, str] | None = None) -> Response:
        return await page.render("form_set.html", status_code=status_code, forms=self, refused=refused, error=error,
                                 typed=form or {}, new_key=str(uuid.uuid4()))

    async def post(self, page: Page, name: str) -> Response:
        entry = self.entries[name]

        async def again(**context: Any) -> Response:
            return await self.show(page, refused=name, **context)

        key = page.form.get("idempotency_key", "").strip()
        headers = {"Idempotency-Key": key} if entry.idempotent and key else None
        return await submit(page, entry.route, entry.route, entry.body_fields, entry.page_of, again, headers=headers)

    def add_routes(self, router: APIRouter, screen: str) -> None:
        """``GET <href>`` and ``POST <href>/<name>`` on ``router`` (whose prefix the page's path starts with)."""
        path = self.href.removeprefix("/console" + router.prefix)
        names = Annotated[str, FastApiPath(pattern="^(" + "|".join(re.escape(n) for n in self.entries) + ")$")]

        async def show(page: Annotated[Page, screen_page(screen)]) -> Response:
            return await self.show(page)

        async def post(page: Annotated[Page, screen_page(screen)], name: names) -> Response:
            return await self.post(page, name)

        router.add_api_route(path, show, methods=["GET"], name=f"{screen}_forms")
        router.add_api_route(path + "/{name}", post, methods=["POST"], name=f"{screen}_entry")
