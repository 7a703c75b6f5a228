"""Real HTTP servers for the gateway tests: an app served by uvicorn on a free port, a gateway client, a server
that accepts and never answers."""

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import httpx
import uvicorn
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.app import create_app
from services.kernel.settings import Settings


class _Server(uvicorn.Server):
    # Several servers share the test process: none of them may take over SIGINT/SIGTERM from pytest.
    @contextlib.contextmanager
    def capture_signals(self):  # noqa: ANN202
        yield


@asynccontextmanager
async def serve(app, port: int = 0, **config) -> AsyncIterator[str]:  # noqa: ANN001, ANN003
    """Serve ``app`` on a loopback port (default: a free one); yields its base URL. ``config``: more of
    ``uvicorn.Config``'s arguments (e.g. ``http``, the protocol class)."""
    sock = socket.socket()
    # A fixed port may be one a server of this test just left (a restart): its connections are still in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = _Server(uvicorn.Config(app, log_config=None, log_level="warning", lifespan="on", server_header=False,
                                    timeout_graceful_shutdown=1, **config))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("server stopped during start-up")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def gateway_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with LifespanManager(create_app(settings), startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


@asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """Accepts connections and reads requests but never answers; a handler ends when its caller hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


class _Upstream:
    """A Starlette app with a crashing route and a route that records what it applied."""

    def __init__(self) -> None:
        self.applied: list[tuple[str, bytes]] = []
        self.app = Starlette(routes=[
            Route("/crash", self.crash, methods=["POST"]),
            Route("/items", self.items, methods=["GET", "PUT", "POST", "PATCH", "DELETE"]),
        ])

    async def crash(self, request: Request) -> JSONResponse:
        await request.body()
        raise RuntimeError("batch crashed")

    async def items(self, request: Request) -> JSONResponse:
        self.applied.append((request.method, await request.body()))
        return JSONResponse({"applied": len(self.applied)})


class _QuietServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a thread may not take signals over
        pass


@contextmanager
def uvicorn_in_thread(app) -> Iterator[str]:  # noqa: ANN001
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = _QuietServer(uvicorn.Config(app, log_config=None, log_level="error", lifespan="off"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("upstream did not start")
            threading.Event().wait(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
