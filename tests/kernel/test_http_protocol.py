"""The server protocol of every component (services.kernel.http_protocol): a response's head and body leave in one
write, a streamed body's head leaves without waiting for the body, and nothing is lost at a close. Served by a
real uvicorn on a loopback port; the writes that reach the socket's transport are recorded on their way."""

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from services.kernel.http_protocol import CoalescingHttpToolsProtocol
from tests.support.gateway import serve

WRITES: list[bytes] = []


class _Recorded:
    """The socket's transport, with each write recorded before it is made."""

    def __init__(self, transport: asyncio.Transport):
        self._transport = transport

    def write(self, data: bytes) -> None:
        WRITES.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._transport, name)


class RecordedProtocol(CoalescingHttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Recorded(transport))  # type: ignore[arg-type]


def make_app(release: asyncio.Event) -> Starlette:
    async def employer(request: Request) -> JSONResponse:
        return JSONResponse({"id": request.path_params["employer_id"], "name": "呼和浩特市某某有限公司"})

    async def chunks():  # noqa: ANN202
        await release.wait()
        yield b"first,"
        yield b"second"

    async def streamed(request: Request) -> StreamingResponse:
        return StreamingResponse(chunks(), media_type="text/plain")

    return Starlette(routes=[Route("/employers/{employer_id}", employer), Route("/stream", streamed)])


async def test_head_and_body_leave_in_one_write() -> None:
    WRITES.clear()
    async with serve(make_app(asyncio.Event()), http=RecordedProtocol) as url, \
            httpx.AsyncClient(base_url=url, trust_env=False) as client:
        answers = [await client.get(f"/employers/E{i}") for i in range(3)]  # one keep-alive connection
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["id"] for a in answers] == ["E0", "E1", "E2"]
    assert answers[0].json()["name"] == "呼和浩特市某某有限公司"
    assert len(WRITES) == 3, WRITES
    for write, answer in zip(WRITES, answers, strict=True):
        assert write.startswith(b"HTTP/1.1 200 OK\r\n")
        assert write.endswith(b"\r\n\r\n" + answer.content)


async def test_a_streamed_head_leaves_before_its_body() -> None:
    release = asyncio.Event()
    async with serve(make_app(release), http=RecordedProtocol) as url, \
            httpx.AsyncClient(base_url=url, trust_env=False) as client:
        # The head is written alone, and the body waits for the head to have arrived: a head held until the next
        # write would never arrive.
        async with asyncio.timeout(30), client.stream("GET", "/stream") as response:
            assert response.status_code == 200
            release.set()
            body = await response.aread()
    assert body == b"first,second"


async def test_a_closing_connection_gets_the_whole_answer() -> None:
    WRITES.clear()
    async with serve(make_app(asyncio.Event()), http=RecordedProtocol) as url, \
            httpx.AsyncClient(base_url=url, trust_env=False) as client:
        answer = await client.get("/employers/E9", headers={"Connection": "close"})
    assert answer.status_code == 200 and answer.json()["id"] == "E9"
    assert len(WRITES) == 1 and b"connection: close\r\n" in WRITES[0]
