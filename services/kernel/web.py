"""HTTP mechanics shared by the services and the gateway: request ids into the trace context, access logging."""

import uuid

from starlette.types import ASGIApp, Receive, Scope, Send

from services.kernel import context

REQUEST_ID_HEADER = "x-request-id"
CORRELATION_ID_HEADER = "x-correlation-id"


def _valid_id(value: str | None) -> str | None:
    if value and len(value) <= 64 and all(c.isalnum() or c in "-_." for c in value):
        return value
    return None


class RequestContextMiddleware:
    """Takes ``X-Request-ID`` / ``X-Correlation-ID`` from the caller (the gateway sets them) or makes new ones,
    puts them in the trace context for events and audit entries, and echoes the request id in the response."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = _valid_id(headers.get(REQUEST_ID_HEADER)) or uuid.uuid4().hex
        correlation_id = _valid_id(headers.get(CORRELATION_ID_HEADER)) or request_id

        async def send_with_id(message) -> None:  # noqa: ANN001
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        with context.trace(request_id=request_id, correlation_id=correlation_id):
            await self.app(scope, receive, send_with_id)
