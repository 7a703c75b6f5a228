"""The one request middleware (services.kernel.web.RequestMiddleware): what the five middlewares it replaced did,
CORS included, as Starlette's CORS middleware does it."""

import httpx
import pytest
from starlette.middleware.cors import CORSMiddleware

from services.kernel import context
from services.kernel.web import CONTENT_SECURITY_POLICY, RequestMiddleware

CORS = {"allow_origins": ["http://localhost:3000"], "allow_methods": ["GET", "POST"],
        "allow_headers": ["Authorization"], "expose_headers": ["X-Request-ID"], "max_age": 600}


def answering(headers: list[tuple[bytes, bytes]], fail: str | None = None):  # noqa: ANN201
    """An ASGI app answering 200 with ``headers`` and, in its body, the request id of the trace context; or raising
    before (``fail="before"``) or after (``"after"``) its response started."""

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        if fail == "before":
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        if fail == "after":
            raise RuntimeError("boom")
        await send({"type": "http.response.body", "body": (context.current().request_id or "").encode()})

    return app


class Meter:
    """Records what the middleware reports (the metrics module's RequestMeter has the same three methods)."""

    def __init__(self) -> None:
        self.recorded: list[tuple[str, int]] = []

    def answers_scrape(self, scope) -> bool:  # noqa: ANN001
        return scope["path"] == "/metrics"

    async def respond(self, send) -> None:  # noqa: ANN001
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"metrics"})

    def record(self, scope, status: int, seconds: float) -> None:  # noqa: ANN001
        assert seconds >= 0
        self.recorded.append((scope["path"], status))


async def get(app, path: str = "/x", method: str = "GET", **headers: str) -> httpx.Response:  # noqa: ANN001
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.request(method, path, headers={k.replace("_", "-"): v for k, v in headers.items()})


async def starlette_vary(app_headers: list[tuple[bytes, bytes]], **headers: str) -> list[str]:
    response = await get(CORSMiddleware(answering(app_headers), **CORS), **headers)
    return response.headers.get_list("vary")


VARIES = [
    [],
    [(b"vary", b"Accept-Encoding")],
    [(b"vary", b"Accept-Encoding"), (b"content-type", b"text/plain"), (b"vary", b"Accept-Language")],
]


@pytest.mark.parametrize("app_headers", VARIES)
async def test_vary_origin_as_starlette_cors_adds_it(app_headers) -> None:  # noqa: ANN001
    ours = await get(RequestMiddleware(answering(app_headers), cors=CORS))
    assert ours.headers.get_list("vary") == await starlette_vary(app_headers)
    allowed = await get(RequestMiddleware(answering(app_headers), cors=CORS), origin="http://localhost:3000")
    assert allowed.headers.get_list("vary") == await starlette_vary(app_headers, origin="http://localhost:3000")
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert allowed.headers["access-control-expose-headers"] == "X-Request-ID"


@pytest.mark.parametrize("app_headers", VARIES)
async def test_without_cors_the_vary_headers_are_left_alone(app_headers) -> None:  # noqa: ANN001
    response = await get(RequestMiddleware(answering(app_headers)))
    assert response.headers.get_list("vary") == [v.decode() for k, v in app_headers if k == b"vary"]


@pytest.mark.parametrize("origin", [None, "http://localhost:3000"])
async def test_request_id_security_headers_and_metrics(origin: str | None) -> None:
    meter = Meter()
    app = RequestMiddleware(answering([(b"server", b"x"), (b"x-frame-options", b"SAMEORIGIN")]), meter=meter,
                            cors=CORS)
    headers = {"x_request_id": "req-1", "x_correlation_id": "corr-1"} | ({"origin": origin} if origin else {})
    response = await get(app, **headers)
    assert response.status_code == 200
    assert response.text == "req-1"  # the trace context the app ran in
    assert response.headers["x-request-id"] == "req-1"
    assert "server" not in response.headers
    assert response.headers["x-frame-options"] == "SAMEORIGIN"  # the response's own kept
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["cache-control"] == "no-store"
    assert meter.recorded == [("/x", 200)]

    invalid = await get(app, x_request_id="not valid!")
    assert len(invalid.headers["x-request-id"]) == 32 and invalid.text == invalid.headers["x-request-id"]
    static = await get(app, "/docs-assets/a.js")
    assert "cache-control" not in static.headers


async def test_metrics_answered_before_everything() -> None:
    meter = Meter()
    response = await get(RequestMiddleware(answering([]), meter=meter, cors=CORS), "/metrics")
    assert response.text == "metrics"
    assert "x-request-id" not in response.headers and "content-security-policy" not in response.headers
    assert meter.recorded == []


async def test_preflight_answered_by_cors_without_request_id() -> None:
    meter = Meter()
    response = await get(RequestMiddleware(answering([]), meter=meter, cors=CORS, answer_options=True), "/x",
                         "OPTIONS", origin="http://localhost:3000", access_control_request_method="POST")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "x-request-id" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
    assert meter.recorded == [("/x", 200)]


@pytest.mark.parametrize("origin", [None, "http://localhost:3000"])
async def test_an_escaped_exception_is_a_structured_500(origin: str | None) -> None:
    meter = Meter()
    app = RequestMiddleware(answering([], fail="before"), meter=meter, cors=CORS)
    response = await get(app, x_request_id="req-2", **({"origin": origin} if origin else {}))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL_ERROR"
    assert response.headers["x-request-id"] == "req-2"
    assert response.headers["cache-control"] == "no-store"
    assert meter.recorded == [("/x", 500)]


async def test_an_exception_after_the_response_started_escapes_and_counts_its_status() -> None:
    meter = Meter()
    app = RequestMiddleware(answering([], fail="after"), meter=meter)
    with pytest.raises(RuntimeError):
        await app({"type": "http", "method": "GET", "path": "/x", "headers": []}, _no_body, _discard)
    assert meter.recorded == [("/x", 200)]


async def _no_body() -> dict:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: dict) -> None:
    pass
