"""The console (控制台): server-rendered pages in Chinese at ``/console``, mounted in the gateway (gateway/app.py).

Jinja2 templates, htmx for partial updates and ECharts for charts, both vendored under ``static/vendor`` (no CDN, no
build step). Every figure on a page comes from the gateway's own routes called with the user's token (calls.py)."""

from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.console import (admin, agency, archives, budgets, claim_returns, clients, corrections, finance, internal_control,
                             jobs, oversight, payroll, public, registration, supervision)
from gateway.console.calls import ApiError, LoginRequired
from gateway.console.pages import (
    HERE,
    Console,
    CsrfRefused,
    ScreenRefused,
    Page,
    error_page,
    login_url,
    open_page,
    safe_next,
    screen_page,
)
from gateway.console.session import SessionCodec
from services.kernel.settings import Settings

home_router = APIRouter()


@home_router.get("/")
async def home(page: Annotated[Page, screen_page("home")]) -> Response:
    me = await page.calls.json("GET", "/auth/me")
    return await page.render("home.html", me=me)


session_router = APIRouter()


@session_router.get("/login")
async def login_form(page: Annotated[Page, open_page()], next: str | None = None) -> Response:  # noqa: A002
    return await page.render("login.html", next=safe_next(next), carried=None, error=None, username="")


@session_router.post("/login")
async def login(page: Annotated[Page, open_page()], username: Annotated[str, Form()] = "",
                password: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/console/",  # noqa: A002
                carried: Annotated[str, Form()] = "") -> Response:
    target = safe_next(next)
    if not username or not password:
        return await page.render("login.html", status_code=422, next=target, carried=carried or None,
                                 error="请输入用户名和密码", username=username)
    response = await page.calls.sign_in(username, password)
    if response.status_code != 200:
        error = ApiError.of(response)
        status = 429 if response.status_code == 429 else 401
        return await page.render("login.html", status_code=status, next=target, carried=carried or None,
                                 error=error.message, username=username)
    page.session.sign_in(response.json(), username)
    fields = page.open_form(carried)
    if fields is not None:  # the form the user was typing when the session expired: posted again
        return await page.render("resubmit.html", target=target, fields=fields)
    return page.redirect(target)


@session_router.post("/logout")
async def logout(page: Annotated[Page, open_page()]) -> Response:
    await page.calls.revoke()
    page.session.sign_out()
    return page.redirect("/console/login")


def _page(request: Request) -> Page:
    page = getattr(request.state, "page", None)
    if page is None:
        page = Page(request, request.app.state.console, None)
    return page


async def _login_required(request: Request, exc: LoginRequired) -> Response:
    page = _page(request)
    if request.method == "POST" and page.form:
        # Keep what was typed: the login page carries the form (sealed) and posts it again after signing in.
        return await page.render("login.html", status_code=401, next=safe_next(request.url.path),
                                 carried=page.seal_form(), username=page.session.username or "",
                                 error="登录已过期，请重新登录；登录后将继续提交刚才填写的内容。")
    return page.redirect(login_url(request))


async def _screen_refused(request: Request, exc: ScreenRefused) -> Response:
    return await error_page(_page(request), 403, "无权访问", "您的角色无权使用此页面所调用的接口。")


async def _csrf_refused(request: Request, exc: CsrfRefused) -> Response:
    return await error_page(_page(request), 403, "页面已过期",
                            "表单校验码无效或已过期（CSRF），请刷新页面后重试。")


async def _api_error(request: Request, exc: ApiError) -> Response:
    titles = {403: "无权访问", 404: "未找到", 409: "当前状态不允许", 422: "数据有误", 429: "请求过于频繁"}
    status = exc.status if exc.status in titles else 502
    return await error_page(_page(request), status, titles.get(exc.status, "接口暂不可用"),
                            f"{exc.message}（{exc.code}）")


class OwnScope:
    """Runs the console on a copy of the request's scope. A mounted app writes itself into ``scope["app"]``; the
    gateway's middlewares read the gateway's state from it after the response (the guard's audit), so the console
    must not leave its own there."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(dict(scope), receive, send)


def create_console(gateway: FastAPI, settings: Settings) -> ASGIApp:
    """The console app, to be mounted at ``/console`` in ``gateway``."""
    console = FastAPI(title="sifund console", docs_url=None, redoc_url=None, openapi_url=None)
    console.state.console = Console(gateway, SessionCodec(settings))
    for router in (home_router, session_router, public.router, oversight.router, supervision.router,
                   agency.router, registration.router, finance.router, budgets.router, payroll.router, jobs.router, admin.router,
                   clients.router, corrections.router, claim_returns.router, archives.router, internal_control.router):
        console.include_router(router)
    console.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    console.add_exception_handler(LoginRequired, _login_required)
    console.add_exception_handler(ScreenRefused, _screen_refused)
    console.add_exception_handler(CsrfRefused, _csrf_refused)
    console.add_exception_handler(ApiError, _api_error)
    return OwnScope(console)
