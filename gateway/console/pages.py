"""What every console page stands on: the browser session from its cookie, the CSRF check of every POST, the login
requirement, the screen's role check (menu.py), the gateway calls with the user's token, and rendering with the
layout (menu, user, CSRF token) — the session cookie written back whenever it changed (a refresh, a login)."""

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.fernet import InvalidToken
from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from gateway.console import format as fmt
from gateway.console.calls import GatewayCalls, LoginRequired, Refreshes
from gateway.console.menu import PUBLIC_SCREENS, SCREENS_BY_KEY, PolicyCache, RoutePolicies, Screen
from gateway.console.session import COOKIE, CSRF_FIELD, CSRF_HEADER, BrowserSession, SessionCodec

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(fmt.FILTERS)
templates.env.globals["FUND_LABELS"] = fmt.FUND_LABELS

CARRY_SECONDS = 24 * 3600


class ScreenRefused(Exception):
    """The user's roles do not admit every route of this screen."""


class CsrfRefused(Exception):
    pass


class Console:
    """Per-process state of the console, kept on the sub-app: the gateway app it calls, the cookie codec, the
    policy cache."""

    def __init__(self, gateway, codec: SessionCodec):  # noqa: ANN001
        self.gateway = gateway
        self.codec = codec
        self.policies = PolicyCache()
        self.refreshes = Refreshes()


class Page:
    def __init__(self, request: Request, console: Console, screen: Screen | None):
        self.request = request
        self.console = console
        self.screen = screen
        self.session: BrowserSession = console.codec.loads(request.cookies.get(COOKIE))
        self.calls = GatewayCalls(console.gateway, request, self.session, console.refreshes)
        self.policies: RoutePolicies | None = None
        self.form: dict[str, str] = {}
        request.state.page = self

    @property
    def is_htmx(self) -> bool:
        return self.request.headers.get("hx-request") == "true"

    async def load_policies(self) -> RoutePolicies:
        if self.policies is None:
            async def fetch(path: str) -> dict | None:
                response = await self.calls.call("GET", path, public=True)
                return response.json() if response.status_code == 200 else None
            self.policies = await self.console.policies.get(fetch)
        return self.policies

    async def may(self, method: str, route: str) -> bool:
        """Whether the user's roles admit this gateway route (an action offered on a page, beside its screen)."""
        return (await self.load_policies()).admits((method, route), self.session.roles)

    async def menu(self) -> list:
        policies = await self.load_policies()
        roles = self.session.roles if self.session.signed_in else ("public",)
        return policies.menu(roles)

    # -- responses ---------------------------------------------------------------------------------------------------

    def finish(self, response: Response) -> Response:
        if self.session.changed:
            self.console.codec.set_cookie(response, self.session, secure=self.request.url.scheme == "https")
        return response

    async def render(self, template: str, status_code: int = 200, **context: Any) -> Response:
        """A full page in the layout, or (htmx) the template alone when it is a fragment."""
        context = {"page": self, "session": self.session, "csrf_token": self.session.csrf,
                   "menu": await self.menu(), "screen": self.screen, **context}
        return self.finish(templates.TemplateResponse(self.request, template, context, status_code=status_code))

    def redirect(self, url: str) -> Response:
        if self.is_htmx:
            return self.finish(Response(status_code=204, headers={"HX-Redirect": url}))
        return self.finish(RedirectResponse(url, status_code=303))

    # -- carried form (a POST whose session had expired) ------------------------------------------------------------

    def seal_form(self) -> str:
        fields = {k: v for k, v in self.form.items() if k != CSRF_FIELD}
        return self.console.codec.fernet.encrypt(json.dumps(fields, ensure_ascii=False).encode()).decode()

    def open_form(self, sealed: str | None) -> dict[str, str] | None:
        if not sealed:
            return None
        try:
            return json.loads(self.console.codec.fernet.decrypt(sealed.encode(), ttl=CARRY_SECONDS))
        except (InvalidToken, ValueError):
            return None


def safe_next(target: str | None) -> str:
    """Only a console path is followed after login (no open redirect to another site)."""
    if target and target.startswith("/console/") and not target.startswith("/console//") and "\\" not in target:
        return target
    return "/console/"


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/console/login?next={quote(target, safe='')}"


async def _check_csrf(page: Page) -> None:
    if page.request.method != "POST":
        return
    form = await page.request.form()
    page.form = {k: v for k, v in form.items() if isinstance(v, str)}
    given = page.request.headers.get(CSRF_HEADER) or page.form.get(CSRF_FIELD)
    if not page.session.csrf_matches(given):
        raise CsrfRefused()


def screen_page(key: str):  # noqa: ANN201
    """The dependency of a screen's routes: session, CSRF on POST, login unless public, the screen's role check."""
    screen = SCREENS_BY_KEY[key]

    async def dependency(request: Request) -> Page:
        page = Page(request, request.app.state.console, screen)
        await _check_csrf(page)
        if key in PUBLIC_SCREENS:
            return page
        if not page.session.signed_in:
            raise LoginRequired()
        policies = await page.load_policies()
        if not policies.screen_allowed(screen, page.session.roles):
            raise ScreenRefused()
        return page

    dependency.screen_key = key  # read by the test that every route requires login unless its screen is public
    return Depends(dependency)


def open_page():  # noqa: ANN201
    """Pages outside the screens (login, logout): session and CSRF only."""
    async def dependency(request: Request) -> Page:
        page = Page(request, request.app.state.console, None)
        await _check_csrf(page)
        return page

    dependency.screen_key = None
    return Depends(dependency)


async def error_page(page: Page, status_code: int, title: str, message: str) -> Response:
    return await page.render("error.html", status_code=status_code, title=title, message=message)
