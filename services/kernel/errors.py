"""Structured errors: every refusal is ``{"error": {"code", "message", "details"?}}`` with a stable code and a Chinese
message.

A refusal is raised as the class of its kind, which fixes its HTTP status; a code has one kind wherever it is raised
(``tests/test_error_catalogue.py`` checks it, and that every message is Chinese):

======================  ======  ===========================================================================
class                   status  when
======================  ======  ===========================================================================
``BadRequest``          400     the request as a whole is refused (wrong credentials, an unusable grant)
``Forbidden``           403     the caller may not do this (four-eyes rules, role at a level, channel)
``NotFound``            404     the resource named in the request does not exist
``Conflict``            409     the request is valid but the current state does not allow it
``TooLarge``            413     the body, file or batch exceeds a limit
``Invalid``             422     the data sent is wrong (a field, a line, a combination of values)
``RateLimited``         429     too many requests from this source
``BadGateway``          502     another component answered, but not usably
``DependencyUnavailable``  503  another component this request needs is down (``DEPENDENCY_UNAVAILABLE``)
``GatewayTimeout``      504     another component did not answer in time
======================  ======  ===========================================================================

The kinds take no ``status``. ``DomainError`` itself takes one only to relay a refusal another service answered
with, whatever its status (e.g. a 401/403 of accounts passed on by benefits).
"""

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException


def shown(text: str) -> str:
    """``text`` fit to quote in a stored message: a character that is not printable is written as ``\\uXXXX``
    (a field name a partner sent, NUL included, which PostgreSQL refuses in any text column)."""
    return text if text.isprintable() else "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in text)


class DomainError(Exception):
    """A business refusal. ``status`` is the HTTP status it maps to at the API edge: the class's, or the one given
    when relaying another service's refusal."""

    status = 400

    def __init__(self, code: str, message: str, *, status: int | None = None, details: Any = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details
        if status is not None:
            self.status = status


class _Kind(DomainError):
    """A refusal whose status is its class's."""

    def __init__(self, code: str, message: str, *, details: Any = None):
        super().__init__(code, message, details=details)


class BadRequest(_Kind):
    status = 400


class Forbidden(_Kind):
    status = 403


class NotFound(_Kind):
    status = 404


class Conflict(_Kind):
    status = 409


class TooLarge(_Kind):
    status = 413


class Invalid(_Kind):
    status = 422


class RateLimited(_Kind):
    status = 429


class BadGateway(_Kind):
    status = 502


class GatewayTimeout(_Kind):
    status = 504


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


def field_reasons(exc: ValidationError, *, other: str, separator: str = "：", coded_with_field: bool = True,
                  by_field: Mapping[str, tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """Each error of one record of a batch (a line of a file, an item of a JSON list) as (stable code, Chinese message):
    a validator that carries a stable code keeps it (``INVALID_CITIZEN_ID``, ``INVALID_USCC`` …, after the field when
    ``coded_with_field``); a missing field is ``MISSING_FIELD``; a CSV row with more cells than the header
    ``CSV_ROW_SHAPE``; a field the record does not have ``UNKNOWN_FIELD``; a bad date ``INVALID_DATE``; a field in
    ``by_field`` its own (code, message); anything else ``other`` with the field, ``separator`` and pydantic's text."""
    reasons = []
    for e in exc.errors():
        kind, field = e.get("type", ""), shown(".".join(str(x) for x in e.get("loc", ())))
        if kind.isupper():
            reasons.append((kind, f"{field}{separator}{e.get('msg', '')}" if field and coded_with_field
                            else e.get("msg", "")))
        elif kind == "missing":
            reasons.append(("MISSING_FIELD", f"缺少字段 {field}"))
        elif kind == "extra_forbidden" and field == "_extra_cells":
            reasons.append(("CSV_ROW_SHAPE", "该行的列数多于表头"))
        elif kind == "extra_forbidden":
            reasons.append(("UNKNOWN_FIELD", f"未知字段 {field}"))
        elif kind.startswith("date"):  # date_parsing, date_from_datetime_inexact, datetime_… alike
            reasons.append(("INVALID_DATE", f"{field} 不是有效日期（应为 YYYY-MM-DD）"))
        elif by_field and field in by_field:
            reasons.append(by_field[field])
        else:
            reasons.append((other, f"{field}{separator}{e.get('msg', '')}"))
    return reasons


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
