"""The gateway in front of real servers: a real accounts service, an echo app that reports what it received, a
server that never answers, and a port where nothing listens."""

import asyncio
import hashlib

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from gateway.app import create_app as create_gateway
from services.accounts.app import create_app as create_accounts_app
from tests.support.gateway import silent_server

VALID_USCC = "91110000600037341L"
BIG_CHUNK = b"0123456789abcdef" * 4096  # 64 KiB
BIG_CHUNKS = 128  # 8 MiB in all


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    response = JSONResponse({
        "method": request.method,
        "path": request.scope["raw_path"].decode(),
        "query": request.url.query,
        "headers": {k: v for k, v in request.headers.items()},
        "forwarding": [[k.decode(), v.decode()] for k, v in request.headers.raw if k.startswith(b"x-forwarded-")],
        "body": body.decode(),
    })
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    return response


async def big(_request: Request) -> StreamingResponse:
    async def chunks():  # noqa: ANN202
        for _ in range(BIG_CHUNKS):
            yield BIG_CHUNK

    return StreamingResponse(chunks(), media_type="application/octet-stream")


ECHO_APP = Starlette(routes=[
    Route("/{path:path}", echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
])
BIG_APP = Starlette(routes=[Route("/big", big)])


async def test_registers_an_employer_through_the_gateway(settings, nats_server, make_settings, serve_app,
                                                         start_gateway, auth):
    async with serve_app(create_accounts_app(settings)) as accounts_url:
        gateway_settings = make_settings(nats_server.url, accounts_url=accounts_url)
        async with start_gateway(gateway_settings) as gateway:
            clerk = auth("agency_clerk")
            response = await gateway.post("/api/accounts/employers",
                                          json={"uscc": VALID_USCC, "name": "某公司", "region": "150102"},
                                          headers={"X-Request-ID": "req-gw-1", **clerk})
            assert response.status_code == 201, response.text
            assert response.json()["uscc"] == VALID_USCC
            assert response.headers.get_list("x-request-id") == ["req-gw-1"]

            found = await gateway.get("/api/accounts/employers", params={"uscc": VALID_USCC}, headers=clerk)
            assert [e["name"] for e in found.json()["items"]] == ["某公司"]

            # The service saw the gateway's request id: it is in the audit entry of the registration.
            entries = (await gateway.get("/api/accounts/audit/entries", headers=auth("internal_auditor"))).json()
            assert [e["request_id"] for e in entries] == ["req-gw-1"]

            refused = await gateway.post("/api/accounts/employers",
                                         json={"uscc": VALID_USCC, "name": "乙公司", "region": "150102"}, headers=clerk)
            assert refused.status_code == 409
            assert refused.json()["error"]["code"] == "EMPLOYER_ALREADY_REGISTERED"


async def test_passes_method_query_headers_and_body_and_drops_hop_by_hop(make_settings, serve_app, start_gateway):
    async with serve_app(ECHO_APP) as echo_url:
        async with start_gateway(make_settings("nats://127.0.0.1:1", collection_url=echo_url)) as gateway:
            response = await gateway.put(
                "/api/collection/declarations/a%2Fb", params={"period": "202401", "fund": ["PEN_EMP", "UNEMP"]},
                content="申报数据".encode(),
                headers={"X-Custom": "kept", "Connection": "keep-alive, X-Private", "X-Private": "dropped",
                         "Keep-Alive": "timeout=5", "X-Request-ID": "req-echo", "X-Correlation-ID": "flow-1",
                         "Content-Type": "text/plain; charset=utf-8"},
            )
            assert response.status_code == 200
            seen = response.json()
            assert seen["method"] == "PUT"
            assert seen["path"] == "/declarations/a%2Fb"
            assert seen["query"] == "period=202401&fund=PEN_EMP&fund=UNEMP"
            assert seen["body"] == "申报数据"
            headers = seen["headers"]
            assert headers["x-custom"] == "kept"
            assert headers["x-request-id"] == "req-echo"
            assert headers["x-correlation-id"] == "flow-1"
            assert headers["x-forwarded-prefix"] == "/api/collection"
            assert "x-private" not in headers and "keep-alive" not in headers
            assert headers["host"] == echo_url.removeprefix("http://")
            assert response.headers.get_list("set-cookie") == ["a=1; Path=/; SameSite=lax", "b=2; Path=/; SameSite=lax"]

            # Without one from the caller, the gateway makes a request id and sends the same to the service.
            generated = await gateway.get("/api/collection/anything")
            request_id = generated.headers["x-request-id"]
            assert request_id and generated.json()["headers"]["x-request-id"] == request_id
            assert generated.json()["headers"]["x-correlation-id"] == request_id
            assert "transfer-encoding" not in generated.json()["headers"]

            # A caller's own X-Forwarded-* never reach the service: one of each, the gateway's, with the caller's
            # client chain kept in front of the address the gateway saw.
            spoofed = await gateway.get("/api/collection/anything", headers={
                "X-Forwarded-For": "10.9.8.7", "X-Forwarded-Prefix": "/evil", "X-Forwarded-Host": "evil.example",
                "X-Forwarded-Proto": "gopher"})
            forwarding = spoofed.json()["forwarding"]
            assert sorted(name for name, _ in forwarding) == [
                "x-forwarded-for", "x-forwarded-host", "x-forwarded-prefix", "x-forwarded-proto"]
            values = dict(forwarding)
            assert values["x-forwarded-prefix"] == "/api/collection" and values["x-forwarded-proto"] == "http"
            assert values["x-forwarded-host"] == "gateway"
            assert values["x-forwarded-for"].startswith("10.9.8.7, ") and values["x-forwarded-for"] != "10.9.8.7"

            escaped_prefix = await gateway.get("/api/coll%65ction/persons/%E5%BC%A0")
            assert escaped_prefix.json()["path"] == "/persons/%E5%BC%A0"


async def test_streams_a_large_response_intact(make_settings, serve_app):
    async with serve_app(BIG_APP) as big_url:
        async with serve_app(create_gateway(make_settings("nats://127.0.0.1:1", benefits_url=big_url))) as gateway_url:
            digest, size = hashlib.sha256(), 0
            async with httpx.AsyncClient(trust_env=False) as client:
                async with client.stream("GET", f"{gateway_url}/api/benefits/big") as response:
                    assert response.status_code == 200
                    async for chunk in response.aiter_bytes():
                        digest.update(chunk)
                        size += len(chunk)
    assert size == len(BIG_CHUNK) * BIG_CHUNKS
    assert digest.hexdigest() == hashlib.sha256(BIG_CHUNK * BIG_CHUNKS).hexdigest()


async def test_unknown_service_is_404(make_settings, start_gateway):
    async with start_gateway(make_settings("nats://127.0.0.1:1")) as gateway:
        response = await gateway.get("/api/payroll/anything")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "UNKNOWN_SERVICE"
    assert "payroll" in error["message"] and "未知" in error["message"]


async def test_service_down_is_502(make_settings, start_gateway, unused_url):
    async with start_gateway(make_settings("nats://127.0.0.1:1", accounts_url=unused_url)) as gateway:
        response = await gateway.get("/api/accounts/employers")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert response.json()["error"]["message"] == "服务 accounts 不可用"
    assert response.headers["x-request-id"]


async def test_service_hanging_is_504(make_settings, start_gateway):
    async with silent_server() as silent_url:
        settings = make_settings("nats://127.0.0.1:1", oversight_url=silent_url, gateway_read_timeout_seconds=0.3)
        async with start_gateway(settings) as gateway:
            started = asyncio.get_running_loop().time()
            response = await gateway.get("/api/oversight/mirror/employers")
            elapsed = asyncio.get_running_loop().time() - started
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "SERVICE_TIMEOUT"
    assert response.json()["error"]["message"] == "服务 oversight 响应超时"
    assert elapsed < 5
