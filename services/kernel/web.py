"""HTTP mechanics shared by the services and the gateway: request ids into the trace context, an unexpected error
answered as a structured 500 on a connection that stays usable."""

import json
import uuid

import structlog
from starlette.types import ASGIApp, Receive, Scope, Send

from services.kernel import context
from services.kernel.errors import error_body

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "x-request-id"
CORRELATION_ID_HEADER = "x-correlation-id"


def _valid_id(value: str | None) -> str | None:
    if value and len(value) <= 64 and all(c.isalnum() or c in "-_." for c in value):
        return value
    return None


class RequestContextMiddleware:
    """Takes ``X-Request-ID`` / ``X-Correlation-ID`` from the caller (the gateway sets them) or makes new ones,
    puts them in the trace context for events and audit entries, and echoes the request id in the response.

    An exception no handler turned into a response is logged and answered ``500 INTERNAL_ERROR`` here instead of
    escaping to the server: uvicorn closes the keep-alive connection after an escaped exception, a moment after the
    500 went out, and the gateway could write its next request into that moment (issue 11 §3). Once the response
    has started, the exception still escapes: the connection must then be closed."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = _valid_id(headers.get(REQUEST_ID_HEADER)) or uuid.uuid4().hex
        correlation_id = _valid_id(headers.get(CORRELATION_ID_HEADER)) or request_id

        started = False

        async def send_with_id(message) -> None:  # noqa: ANN001
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        with context.trace(request_id=request_id, correlation_id=correlation_id):
            try:
                await self.app(scope, receive, send_with_id)
            except Exception:
                if started:
                    raise
                log.exception("request.failed", method=scope.get("method"), path=scope.get("path"))
                await _internal_error(send_with_id, request_id)


async def _internal_error(send: Send, request_id: str) -> None:
    body = json.dumps(error_body("INTERNAL_ERROR", "服务内部错误，请稍后重试或联系运维人员",
                                 {"request_id": request_id}), ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": 500, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
