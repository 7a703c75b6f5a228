"""Issue 13, item 3: the gateway in front of several replicas of a service (``SIFUND_ACCOUNTS_URL`` with two
comma-separated URLs). Real uvicorn upstreams in their own threads; one is stopped (its port then refuses
connections, as a killed process's would): requests keep succeeding on the other, and the retry rule still holds: a
POST without ``Idempotency-Key`` that may have reached a replica is not sent to another one."""

import socket
import threading
from contextlib import ExitStack, asynccontextmanager

import httpx
from asgi_lifespan import LifespanManager

from gateway.app import create_app as create_gateway
from gateway.upstream import Upstreams
from tests.gateway.test_gateway_retry import _Upstream, uvicorn_in_thread


@asynccontextmanager
async def gateway_for(make_settings, nats_server, accounts_url: str):  # noqa: ANN001, ANN201
    app = create_gateway(make_settings(nats_server.url, accounts_url=accounts_url))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                     base_url="http://gateway") as client:
            yield client, app


async def test_requests_are_balanced_and_keep_succeeding_when_a_replica_is_down(make_settings, nats_server):
    first, second = _Upstream(), _Upstream()
    with ExitStack() as stack:
        url_a = stack.enter_context(uvicorn_in_thread(first.app))
        second_stack = stack.enter_context(ExitStack())
        url_b = second_stack.enter_context(uvicorn_in_thread(second.app))
        async with gateway_for(make_settings, nats_server, f"{url_a}, {url_b}/") as (gateway, app):
            assert app.state.upstreams.urls["accounts"] == [url_a, url_b]
            for _ in range(6):
                assert (await gateway.get("/api/accounts/items")).status_code == 200
            assert (len(first.applied), len(second.applied)) == (3, 3)  # round robin

            second_stack.close()  # the second replica is gone: its port refuses connections
            requests = [("GET", {}), ("PUT", {}), ("POST", {"Idempotency-Key": "k-1"}), ("POST", {}),
                        ("DELETE", {}), ("POST", {})] * 2
            statuses = []
            for n, (method, headers) in enumerate(requests):
                response = await gateway.request(method, "/api/accounts/items", headers=headers,
                                                 content=f"write {n}".encode() if method != "GET" else None)
                statuses.append(response.status_code)
            assert statuses == [200] * len(requests)
            # A refused connection carried nothing: every request, a POST without a key too, went to the live
            # replica exactly once.
            assert [b for m, b in first.applied[3:] if m != "GET"] == [
                f"write {n}".encode() for n, (m, _) in enumerate(requests) if m != "GET"]
            assert len(second.applied) == 3
            assert app.state.upstreams.is_down(url_b) and not app.state.upstreams.is_down(url_a)

            health = (await gateway.get("/health")).json()["services"]["accounts"]
            assert set(health["replicas"]) == {url_a, url_b} and health["replicas"][url_b] == "unreachable"


class _Swallower:
    """A replica that reads a request and closes the connection without answering (it died mid-request)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.requests = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                if conn.recv(65536):
                    self.requests += 1

    def close(self) -> None:
        self.sock.close()


async def test_a_post_without_key_that_may_have_reached_a_replica_is_not_sent_to_another(make_settings, nats_server):
    live = _Upstream()
    swallower = _Swallower()
    try:
        with uvicorn_in_thread(live.app) as url:
            async with gateway_for(make_settings, nats_server, f"{swallower.url},{url}") as (gateway, _):
                response = await gateway.post("/api/accounts/items", content=b"not idempotent")
                assert response.status_code == 502 and response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
                assert (swallower.requests, live.applied) == (1, [])  # sent once, to the first replica only
                # The next request goes to the live replica (round robin, the swallower is marked down).
                assert (await gateway.post("/api/accounts/items", content=b"next")).status_code == 200
                assert live.applied == [("POST", b"next")]
    finally:
        swallower.close()


def test_the_single_url_form_is_one_replica(make_settings, nats_server):
    upstreams = Upstreams(make_settings(nats_server.url, accounts_url="http://127.0.0.1:9/"))
    assert upstreams.urls["accounts"] == ["http://127.0.0.1:9"]
    assert upstreams.order("accounts") == upstreams.order("accounts") == ["http://127.0.0.1:9"]
    two = Upstreams(make_settings(nats_server.url, accounts_url="http://a:1,http://b:2"), down_for=60)
    assert [two.order("accounts")[0] for _ in range(4)] == ["http://a:1", "http://b:2"] * 2
    two.failed("http://a:1")
    assert [two.order("accounts") for _ in range(2)] == [["http://b:2", "http://a:1"]] * 2
