"""What every published OpenAPI document says beyond FastAPI's defaults, for the services and the gateway alike.

- Each operation carries its access policy (``x-sifund-roles`` / ``x-sifund-public``, see ``auth``).
- Each operation declares the refusals the platform actually answers with, in their real shape: the
  ``{"error": {"code", "message", "details"?}}`` body of ``errors`` (FastAPI's default 422 ``{"detail": [...]}`` is
  never sent, so it is replaced). A client generator or a fuzzer can then check every answer against the document.
- A 201 route that takes FastAPI's ``Response`` sets its status itself; by the platform's convention that is 200 for
  a replay (same Idempotency-Key, or the resource already there), declared with the same body as the 201.
- ``/health`` answers 503 with its body when a dependency is down.
- Routes that read their own body (JSON or CSV, e.g. bank results) declare it with ``json_body``: the model goes to
  ``components/schemas`` like any other, instead of a raw JSON schema whose ``$defs`` references dangle.
"""

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

REF_TEMPLATE = "#/components/schemas/{model}"
ERROR_SCHEMA_NAME = "ErrorBody"
ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "stable code, e.g. VALIDATION_ERROR, INVALID_USCC"},
                "message": {"type": "string", "description": "中文说明"},
                "details": {"description": "what was wrong (field errors, offending lines, limits)"},
            },
        }
    },
}

# Refusals any route may answer (DomainError and its subclasses, request validation, upload limits, rate limits).
COMMON_ERRORS = {
    "400": "业务规则不允许（错误码见 error.code）",
    "404": "资源不存在",
    "409": "与现有数据冲突",
    "413": "请求体或上传文件过大",
    "422": "请求数据校验失败（错误码见 error.code）",
    "429": "请求过于频繁",
}
# Refusals of routes that require a token.
GUARDED_ERRORS = {
    "401": "未认证或令牌无效",
    "403": "无权执行此操作",
}

_BODY_MODELS_KEY = "x-sifund-body-model"
# json_body models by name: openapi_extra is serialised by FastAPI, so the operation carries the name only.
_BODY_MODELS: dict[str, type[BaseModel]] = {}


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that answers a refusal its policy does not imply, e.g. 401 from a public route
    that checks credentials itself (``/auth/token``) or takes an optional token."""
    descriptions = {**COMMON_ERRORS, **GUARDED_ERRORS}
    body = {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=ERROR_SCHEMA_NAME)}}}
    return {status: {"description": descriptions.get(str(status), "拒绝"), "content": body} for status in statuses}


def json_body(model: type[BaseModel], *, other_content: dict[str, Any] | None = None) -> dict[str, Any]:
    """``openapi_extra`` for a route that parses its own body: ``model`` is the JSON form (published under
    ``components/schemas`` by ``publish``), ``other_content`` any other media types it accepts."""
    content = {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=model.__name__)}}}
    content.update(other_content or {})
    _BODY_MODELS[model.__name__] = model
    return {"requestBody": {"required": True, "content": content}, _BODY_MODELS_KEY: model.__name__}


def api_routes(app: FastAPI) -> list[tuple[str, APIRoute]]:
    """(full path, route) for every API route, including those of included routers (which FastAPI ≥ 0.16x keeps
    nested rather than copying into ``app.routes``)."""
    try:
        from fastapi.routing import iter_route_contexts  # noqa: PLC0415
    except ImportError:  # older FastAPI: app.routes is already flat
        pairs = [(getattr(r, "path", ""), r) for r in app.routes]
    else:
        pairs = [(rc.path or "", rc.original_route) for rc in iter_route_contexts(app.routes)]
    return [(path, route) for path, route in pairs if isinstance(route, APIRoute)]


def publish(app: FastAPI, extensions: dict[tuple[str, str], dict[str, Any]]) -> None:
    """Replace ``app.openapi`` by one that adds the policy ``extensions`` (keyed by (path, method)), the declared
    error responses and the body models of ``json_body`` routes."""
    plain_openapi: Callable[[], dict[str, Any]] = app.openapi
    replaying = {(path, method.lower()) for path, route in api_routes(app)
                 if route.status_code == 201 and route.dependant.response_param_name for method in route.methods}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = finish(plain_openapi(), extensions, replaying)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def finish(schema: dict[str, Any], extensions: dict[tuple[str, str], dict[str, Any]],
           replaying: set[tuple[str, str]] = frozenset()) -> dict[str, Any]:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    body_models: list[type[BaseModel]] = []
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            operation.update(extensions.get((path, method), {}))
            model_name = operation.pop(_BODY_MODELS_KEY, None)
            if model_name is not None:
                body_models.append(_BODY_MODELS[model_name])
            _declare_errors(operation)
            responses = operation["responses"]
            if (path, method) in replaying and "201" in responses:
                responses.setdefault("200", {**responses["201"], "description": "已存在：重复请求返回原结果（replay）"})
            if path == "/health" and "200" in responses:
                responses.setdefault("503", {**responses["200"], "description": "degraded: a dependency is down"})
    if body_models:
        _, defs = models_json_schema([(m, "validation") for m in body_models], ref_template=REF_TEMPLATE)
        for name, definition in defs.get("$defs", {}).items():
            components.setdefault(name, definition)
    components[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    _drop_unused_fastapi_validation_schemas(schema)
    return schema


def _declare_errors(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    errors = dict(COMMON_ERRORS)
    if not operation.get("x-sifund-public"):
        errors.update(GUARDED_ERRORS)
    body = {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=ERROR_SCHEMA_NAME)}}}
    for status, description in errors.items():
        declared = responses.get(status)
        if declared is None or _is_fastapi_validation_error(declared):
            responses[status] = {"description": description, "content": body}


def _drop_unused_fastapi_validation_schemas(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    if REF_TEMPLATE.format(model="HTTPValidationError") in json.dumps(schema["paths"]):
        return
    components.pop("HTTPValidationError", None)
    fastapi_item = components.get("ValidationError", {})
    if "loc" in fastapi_item.get("properties", {}) and "ValidationError" not in json.dumps(
            {k: v for k, v in components.items() if k != "ValidationError"}):
        components.pop("ValidationError")


def _is_fastapi_validation_error(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return schema.get("$ref", "").endswith("/HTTPValidationError")
