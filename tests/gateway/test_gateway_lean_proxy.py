"""The lean relay (gateway/proxy.ProxyFastPath, gateway/keepalive.KeepAliveTransport) against real servers: statuses,
headers and Idempotency-Key pass both ways, small bodies relayed whole and large ones streamed, keep-alive
connections reused, and a full pool answered 504 after the pool timeout."""

import asyncio
import hashlib

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.forwarding import SMALL_BODY_BYTES
from gateway.keepalive import KeepAliveTransport
from tests.support.gateway import silent_server

PORTS_SEEN: list[int] = []


async def created(request: Request) -> JSONResponse:
    PORTS_SEEN.append(request.client.port)
    return JSONResponse({"key": request.headers.get("idempotency-key"), "body": (await request.body()).decode()},
                        status_code=201 if request.method == "POST" else 409,
                        headers={"Location": "/things/7", "X-Thing-Version": "3", "ETag": '"v3"'})


async def sized(request: Request) -> Response:
    size = int(request.path_params["size"])
    return Response(bytes(i % 251 for i in range(size)), media_type="application/octet-stream")


async def cookies(request: Request) -> JSONResponse:
    """Sets a cookie for whoever asked, and tells which cookies the request carried."""
    response = JSONResponse({"cookie": request.headers.get("cookie")})
    response.set_cookie("session", request.query_params.get("who", "nobody"), path="/")
    return response


APP = Starlette(routes=[Route("/things", created, methods=["POST", "PUT"]),
                        Route("/bytes/{size:int}", sized), Route("/cookies", cookies)])


async def test_status_headers_and_idempotency_key_pass_through(make_settings, serve_app, start_gateway):
    async with serve_app(APP) as url, start_gateway(make_settings("nats://127.0.0.1:1", accounts_url=url)) as gateway:
        response = await gateway.post("/api/accounts/things", content=b"payload",
                                      headers={"Idempotency-Key": "pay-2024-01-0001"})
        assert response.status_code == 201
        assert response.json() == {"key": "pay-2024-01-0001", "body": "payload"}
        assert (response.headers["location"], response.headers["x-thing-version"], response.headers["etag"]) == (
            "/things/7", "3", '"v3"')
        assert response.headers["x-request-id"] and response.headers.get_list("x-request-id") == [
            response.headers["x-request-id"]]  # the gateway's own, once
        assert response.headers["x-content-type-options"] == "nosniff"  # security headers still added

        refused = await gateway.put("/api/accounts/things", content=b"again")
        assert refused.status_code == 409 and refused.headers["etag"] == '"v3"'


@pytest.mark.parametrize("size", [0, 1000, SMALL_BODY_BYTES, SMALL_BODY_BYTES + 1, 3 * 1024 * 1024])
async def test_bodies_small_and_large_arrive_intact(make_settings, serve_app, size):
    from gateway.app import create_app  # noqa: PLC0415

    async with serve_app(APP) as url, serve_app(create_app(make_settings("nats://127.0.0.1:1", benefits_url=url))) as gw:
        async with httpx.AsyncClient(trust_env=False) as client:
            async with client.stream("GET", f"{gw}/api/benefits/bytes/{size}") as response:
                assert response.status_code == 200
                assert int(response.headers["content-length"]) == size
                body = b"".join([chunk async for chunk in response.aiter_raw()])
    assert hashlib.sha256(body).digest() == hashlib.sha256(bytes(i % 251 for i in range(size))).digest()


async def test_keep_alive_connections_are_reused(make_settings, serve_app, start_gateway):
    PORTS_SEEN.clear()
    async with serve_app(APP) as url, start_gateway(make_settings("nats://127.0.0.1:1", accounts_url=url)) as gateway:
        for _ in range(10):
            assert (await gateway.post("/api/accounts/things")).status_code == 201
        assert len(set(PORTS_SEEN)) == 1  # one connection for ten sequential requests

        PORTS_SEEN.clear()
        responses = await asyncio.gather(*(gateway.post("/api/accounts/things") for _ in range(8)))
        assert [r.status_code for r in responses] == [201] * 8
        concurrent = set(PORTS_SEEN)
        PORTS_SEEN.clear()
        for _ in range(8):
            await gateway.post("/api/accounts/things")
        assert set(PORTS_SEEN) <= concurrent  # later requests reuse the connections opened for the burst


async def test_a_full_pool_waits_for_the_pool_timeout_then_fails():
    async with silent_server() as silent_url:
        transport = KeepAliveTransport(max_connections=1)
        timeout = httpx.Timeout(5.0, pool=0.2)
        async with httpx.AsyncClient(transport=transport, timeout=timeout, trust_env=False) as client:
            hanging = asyncio.create_task(client.get(silent_url))
            await asyncio.sleep(0)  # let it take the one place
            while transport.in_flight < 1:
                await asyncio.sleep(0.01)
            with pytest.raises(httpx.PoolTimeout):
                await client.get(silent_url)
            hanging.cancel()
            with pytest.raises(asyncio.CancelledError):
                await hanging
            assert transport.in_flight == 0  # a cancelled request gives its place back


def test_pool_timeout_is_a_timeout_for_the_gateway():
    # upstream_errors turns httpx.TimeoutException into 504 SERVICE_TIMEOUT: a full pool is answered as a slow service
    assert issubclass(httpx.PoolTimeout, httpx.TimeoutException)


async def test_a_services_cookie_goes_to_its_caller_and_never_to_the_next(make_settings, serve_app, start_gateway):
    """The gateway's one shared client keeps no cookie: one caller's Set-Cookie is relayed to that caller only."""
    async with serve_app(APP) as url, start_gateway(make_settings("nats://127.0.0.1:1", accounts_url=url)) as gateway:
        first = await gateway.get("/api/accounts/cookies", params={"who": "clerk-li"})
        assert first.status_code == 200 and "session=clerk-li" in first.headers["set-cookie"]
        gateway.cookies.clear()  # the next caller is someone else, with no cookie of their own
        second = await gateway.get("/api/accounts/cookies", params={"who": "auditor-wang"})
        assert second.json() == {"cookie": None}
