"""The gateway's transport to the services (gateway/keepalive.KeepAliveTransport) under httpx's client, against a
real uvicorn server and raw sockets: bodies streamed both ways, keep-alive reuse and its limits (a close by the
service, an unread answer, HEAD), and each failure as the httpx error the gateway's retry rule and error mapping
know."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.keepalive import KeepAliveTransport
from tests.support.gateway import serve, silent_server

PORTS: list[int] = []


class Gate:
    """Lets the streaming endpoint send its second part only once the test has seen the first."""

    opened: asyncio.Event | None = None


async def echo(request: Request) -> JSONResponse:
    PORTS.append(request.client.port)
    body = await request.body()
    return JSONResponse({"method": request.method, "size": len(body), "sum": sum(body) % 65521,
                         "chunked": request.headers.get("transfer-encoding")})


async def in_two_parts(_request: Request) -> StreamingResponse:
    async def parts() -> AsyncIterator[bytes]:
        yield b"first part;"
        await Gate.opened.wait()
        yield b"second part"

    return StreamingResponse(parts(), media_type="text/plain")


async def closing(_request: Request) -> Response:
    return Response(b"bye", headers={"Connection": "close"})


async def large(_request: Request) -> Response:
    return Response(b"x" * (2 * 1024 * 1024), media_type="application/octet-stream")


APP = Starlette(routes=[Route("/echo", echo, methods=["GET", "POST", "HEAD"]), Route("/parts", in_two_parts),
                        Route("/closing", closing), Route("/large", large)])


@asynccontextmanager
async def client_of(url: str, **timeouts: float) -> AsyncIterator[httpx.AsyncClient]:
    timeout = httpx.Timeout(timeouts.pop("read", 10.0), **timeouts)
    async with httpx.AsyncClient(transport=KeepAliveTransport(), base_url=url, timeout=timeout) as client:
        yield client


async def test_an_answer_is_handed_out_as_it_arrives():
    Gate.opened = asyncio.Event()
    async with serve(APP) as url, client_of(url) as client, client.stream("GET", "/parts") as response:
        parts = response.aiter_raw()
        assert await anext(parts) == b"first part;"  # before the service has sent the rest
        Gate.opened.set()
        assert b"".join([part async for part in parts]) == b"second part"


@pytest.mark.parametrize("with_length", [True, False])
async def test_a_streamed_request_body_arrives_intact(with_length):
    payload = bytes(i % 251 for i in range(300_000))

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 65536):
            yield payload[start:start + 65536]

    headers = {"Content-Length": str(len(payload))} if with_length else {}
    async with serve(APP) as url, client_of(url) as client:
        answer = (await client.post("/echo", content=pieces(), headers=headers)).json()
    assert (answer["size"], answer["sum"]) == (len(payload), sum(payload) % 65521)
    assert answer["chunked"] == (None if with_length else "chunked")


async def test_connections_are_reused_unless_closed_unread_or_head():
    async with serve(APP) as url, client_of(url) as client:
        PORTS.clear()
        for _ in range(5):
            assert (await client.get("/echo")).status_code == 200
        assert len(set(PORTS)) == 1

        assert (await client.get("/closing")).content == b"bye"  # Connection: close
        async with client.stream("GET", "/large") as unread:  # closed with its body unread
            assert unread.status_code == 200
        head = await client.head("/echo")
        assert head.status_code == 200 and head.content == b""
        PORTS.clear()
        assert (await client.get("/echo")).json()["method"] == "GET"
        assert (await client.get("/echo")).status_code == 200
        assert len(set(PORTS)) == 1


async def test_a_large_answer_read_to_the_end_is_whole():
    async with serve(APP) as url, client_of(url) as client:
        assert len((await client.get("/large")).content) == 2 * 1024 * 1024


async def test_a_silent_service_is_a_read_timeout():
    async with silent_server() as url, client_of(url, read=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/anything")


async def test_a_refused_connection_is_a_connect_error(unused_url):
    async with client_of(unused_url) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get("/anything")


@asynccontextmanager
async def hanging_up_server() -> AsyncIterator[str]:
    """Reads a request's head, then closes the connection without answering."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_service_hanging_up_without_an_answer_is_a_protocol_error():
    async with hanging_up_server() as url, client_of(url) as client:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            await client.get("/anything")


async def test_a_new_connection_is_announced_to_the_trace_extension():
    heard: list[str] = []

    async def trace(name: str, _info: dict) -> None:
        heard.append(name)

    async with serve(APP) as url, client_of(url) as client:
        await client.get("/echo", extensions={"trace": trace})
        await client.get("/echo", extensions={"trace": trace})
    assert heard.count("connection.connect_tcp.started") == 1
    assert heard.count("http11.send_request_body.complete") == 2
