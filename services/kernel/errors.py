"""Structured errors: every refusal is ``{"error": {"code", "message"}}`` with a stable code and a Chinese message."""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class DomainError(Exception):
    """A business refusal. ``status`` is the HTTP status it maps to at the API edge."""

    status = 400

    def __init__(self, code: str, message: str, *, status: int | None = None, details: Any = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details
        if status is not None:
            self.status = status


class NotFound(DomainError):
    status = 404


class Conflict(DomainError):
    status = 409


class DependencyUnavailable(DomainError):
    """Another component this request needs did not answer in time, could not be reached or failed (5xx): 503
    ``DEPENDENCY_UNAVAILABLE`` naming it, raised before anything is stored."""

    status = 503

    def __init__(self, dependency: str, reason: str, consequence: str = "请稍后重试"):
        super().__init__("DEPENDENCY_UNAVAILABLE", f"依赖的服务 {dependency} 暂时不可用（{reason}），{consequence}",
                         details={"dependency": dependency, "reason": reason})


def error_body(code: str, message: str, details: Any = None) -> dict:
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return {"error": error}


_HTTP_CODES = {
    401: ("UNAUTHENTICATED", "未认证或令牌无效"),
    403: ("FORBIDDEN", "无权执行此操作"),
    404: ("NOT_FOUND", "资源不存在"),
    405: ("METHOD_NOT_ALLOWED", "不支持的请求方法"),
    413: ("PAYLOAD_TOO_LARGE", "请求体过大"),
    429: ("RATE_LIMITED", "请求过于频繁，请稍后再试"),
}


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    details = [
        {"loc": list(e.get("loc", ())), "type": e.get("type"), "message": e.get("msg")}
        | ({"reason": e["ctx"]["reason"]} if isinstance(e.get("ctx"), dict) and "reason" in e["ctx"] else {})
        for e in errors
    ]
    # Identifier validators raise errors whose type is the stable code itself (e.g. INVALID_USCC).
    for e in errors:
        kind = e.get("type", "")
        if kind.isupper():
            return JSONResponse(status_code=422, content=error_body(kind, e.get("msg", ""), details))
    return JSONResponse(status_code=422, content=error_body("VALIDATION_ERROR", "请求数据校验失败", details))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content=error_body(exc.code, exc.message, exc.details))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _validation_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = _HTTP_CODES.get(exc.status_code, ("HTTP_ERROR", "请求失败"))
        if isinstance(exc.detail, dict) and "code" in exc.detail:
            code, message = exc.detail["code"], exc.detail.get("message", message)
        return JSONResponse(status_code=exc.status_code, content=error_body(code, message), headers=exc.headers)
