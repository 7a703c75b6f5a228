"""Real HTTP servers for the gateway tests: apps under uvicorn on loopback, in the test's event loop, plus a
gateway client that runs the gateway with its lifespan."""

import socket
from collections.abc import Callable

import pytest

from tests.support.gateway import gateway_client, serve


@pytest.fixture
def serve_app() -> Callable:
    return serve


@pytest.fixture
def unused_url() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def start_gateway() -> Callable:
    return gateway_client
