"""API documentation through the gateway: each service's OpenAPI with the gateway prefix as its server, a Swagger
UI per service at ``/docs/<service>``, and an index page at ``/docs``."""

import json
from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, JSONResponse

from gateway.upstream import ServiceDep
from services.kernel.auth import public
from services.kernel.docs_pages import page, redoc, swagger_ui
from services.kernel.errors import BadGateway
from services.kernel.settings import SERVICES

router = APIRouter(tags=["docs"], dependencies=[public()])

GATEWAY_OPENAPI_URL = "/openapi.json"


def openapi_via_gateway(service: str, raw: bytes) -> JSONResponse:
    """A service's OpenAPI document, pointed at ``/api/<service>`` so that "try it out" goes through the gateway."""
    try:
        spec = json.loads(raw)
    except ValueError as exc:
        raise BadGateway("INVALID_OPENAPI", f"服务 {service} 返回的接口文档无法解析",
                         details={"service": service}) from exc
    spec["servers"] = [{"url": f"/api/{service}"}]
    return JSONResponse(spec)


@router.get("/docs", response_class=HTMLResponse, summary="Index of the API documentation")
async def docs_index() -> HTMLResponse:
    items = "\n".join(
        f'<li><a href="/docs/{name}">{escape(name)}</a> (<a href="/redoc/{name}">ReDoc</a>) — '
        f'<a href="/api/{name}/openapi.json">openapi.json</a></li>'
        for name in SERVICES
    )
    return page(HTMLResponse(f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>sifund API</title></head>
<body>
<h1>sifund API 文档</h1>
<h2>服务</h2>
<ul>
{items}
</ul>
<h2>网关</h2>
<ul><li><a href="/docs/gateway">gateway</a> (<a href="/redoc">ReDoc</a>) — <a href="{GATEWAY_OPENAPI_URL}">openapi.json</a></li></ul>
</body></html>
"""))


@router.get("/docs/gateway", response_class=HTMLResponse, summary="Swagger UI of the gateway itself")
async def gateway_docs() -> HTMLResponse:
    return swagger_ui(GATEWAY_OPENAPI_URL, "sifund gateway")


@router.get("/redoc", response_class=HTMLResponse, summary="ReDoc of the gateway itself")
async def gateway_redoc() -> HTMLResponse:
    return redoc(GATEWAY_OPENAPI_URL, "sifund gateway")


@router.get("/docs/{service}", response_class=HTMLResponse, summary="Swagger UI of one service, through the gateway")
async def service_docs(service: ServiceDep) -> HTMLResponse:
    return swagger_ui(f"/api/{service}/openapi.json", f"sifund {service}")


@router.get("/redoc/{service}", response_class=HTMLResponse, summary="ReDoc of one service, through the gateway")
async def service_redoc(service: ServiceDep) -> HTMLResponse:
    return redoc(f"/api/{service}/openapi.json", f"sifund {service}")
