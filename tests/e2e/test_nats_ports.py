"""nats-server's ports: picked free, but another process may take one before the server binds it (a start-up
failure seen under load). A start on ports it picked itself is retried on new ones; an address someone asked for
is never silently changed."""

import socket
from pathlib import Path

import pytest

from sifund.natsd import NatsServer, PortTaken


def test_a_port_taken_before_the_server_bound_it_is_replaced_by_a_free_one(tmp_path: Path):
    server = NatsServer(tmp_path / "nats")
    taken = server.port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        server.start()
        try:
            assert server.port != taken and server.process.poll() is None
            url = server.url
            server.stop()
            server.start()  # a restart keeps the address clients know
            assert server.url == url
        finally:
            server.stop()


def test_a_port_asked_for_and_taken_is_refused(tmp_path: Path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        server = NatsServer(tmp_path / "nats", port=squatter.getsockname()[1])
        with pytest.raises(PortTaken):
            server.start()
