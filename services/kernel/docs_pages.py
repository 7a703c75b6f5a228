"""API documentation pages that work without the internet: Swagger UI and ReDoc from the assets the
``fastapi-offline`` package ships (a PyPI package, not hand-copied files), served by each component under
``/docs-assets``, and pages whose inline script is allowed by its hash in the page's Content-Security-Policy."""

import base64
import hashlib
import re
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from services.kernel.auth import public
from services.kernel.web import CONTENT_SECURITY_POLICY, csp_with_scripts

ASSETS_URL = "/docs-assets"
# swagger-ui-bundle.js, swagger-ui.css, redoc.standalone.js, favicon.png, as the package ships them.
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def page(response: HTMLResponse) -> HTMLResponse:
    """``response`` with a Content-Security-Policy allowing exactly its own inline scripts (by SHA-256)."""
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in _INLINE_SCRIPT.findall(response.body.decode())
    ]
    response.headers["content-security-policy"] = csp_with_scripts(hashes) if hashes else CONTENT_SECURITY_POLICY
    return response


def swagger_ui(openapi_url: str, title: str, oauth2_redirect_url: str | None = None) -> HTMLResponse:
    return page(get_swagger_ui_html(
        openapi_url=openapi_url, title=title, oauth2_redirect_url=oauth2_redirect_url,
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js", swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
        # No badge fetched from validator.swagger.io: nothing leaves the intranet.
        swagger_ui_parameters={"validatorUrl": None},
    ))


def redoc(openapi_url: str, title: str) -> HTMLResponse:
    return page(get_redoc_html(openapi_url=openapi_url, title=title, redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                               redoc_favicon_url=f"{ASSETS_URL}/favicon.png", with_google_fonts=False))


def mount_assets(app: FastAPI) -> None:
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")


def install_docs(app: FastAPI, title: str) -> None:
    """``/docs`` (Swagger UI), ``/docs/oauth2-redirect`` and ``/redoc`` of a service, on the local assets. The
    app is created with ``docs_url=None, redoc_url=None`` so that FastAPI's CDN pages are not registered."""
    mount_assets(app)
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False, dependencies=[public()])
    async def swagger_ui_page() -> HTMLResponse:
        return swagger_ui(openapi_url, f"{title} - Swagger UI", redirect_url)

    @app.get(redirect_url, include_in_schema=False, dependencies=[public()])
    async def swagger_ui_redirect() -> HTMLResponse:
        return page(get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False, dependencies=[public()])
    async def redoc_page() -> HTMLResponse:
        return redoc(openapi_url, f"{title} - ReDoc")
