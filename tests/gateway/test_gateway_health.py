"""The gateway's aggregated ``/health`` against the four services running for real on a real nats-server."""

import asyncio
import os
from contextlib import AsyncExitStack

from services.kernel.service_app import create_service_app
from services.kernel.settings import SERVICES
from services.kernel.supervision import FAILED, ChildState, state_file, write_state
from sifund import services as catalogue


async def test_ok_when_everything_is_up_and_degraded_when_a_service_is_down(
    settings, nats_server, make_settings, serve_app, start_gateway
):
    async with AsyncExitStack() as stack, AsyncExitStack() as benefits:
        urls = {name: await (benefits if name == "benefits" else stack).enter_async_context(
                    serve_app(create_service_app(catalogue.spec(name), settings)))
                for name in SERVICES}
        gateway_settings = make_settings(nats_server.url, nats_monitor_url=nats_server.monitor_url,
                                         **{f"{name}_url": url for name, url in urls.items()})
        gateway = await stack.enter_async_context(start_gateway(gateway_settings))

        response = await gateway.get("/health")
        for _ in range(50):  # a service reports ok once its bus connection is up
            if response.status_code == 200:
                break
            await asyncio.sleep(0.1)
            response = await gateway.get("/health")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ok" and body["nats"] == "ok"
        assert set(body["services"]) == set(SERVICES)
        assert {b["status"] for b in body["services"].values()} == {"ok"}
        assert body["services"]["accounts"]["checks"] == {"database": "ok", "bus": "ok"}
        assert "supervisor" not in body  # not run by `sifund up`

        # Under `sifund up`, a child the launcher gave up on makes the platform degraded whatever the services say.
        launcher_state = state_file(gateway_settings.data_dir)
        launcher_state.parent.mkdir(parents=True, exist_ok=True)
        write_state(launcher_state, os.getpid(),
                    [ChildState("nats", 4242), ChildState("collection", None, FAILED, 5, 1)])
        try:
            response = await gateway.get("/health")
        finally:
            launcher_state.unlink()
        assert response.status_code == 503, response.text
        assert response.json()["status"] == "degraded"
        assert response.json()["supervisor"] == [
            {"name": "nats", "pid": 4242, "status": "running", "restarts": 0, "last_exit_code": None},
            {"name": "collection", "pid": None, "status": "failed", "restarts": 5, "last_exit_code": 1}]
        assert (await gateway.get("/health")).status_code == 200

        await benefits.aclose()
        response = await gateway.get("/health")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "degraded"
        assert body["services"]["benefits"] == {"status": "unreachable", "error": "服务 benefits 不可用"}
        assert body["services"]["accounts"]["status"] == "ok"
        assert body["nats"] == "ok"


async def test_nats_down_is_degraded(settings, nats_server, make_settings, serve_app, start_gateway):
    async with serve_app(create_service_app(catalogue.spec("accounts"), settings)) as accounts_url:
        nats_server.stop()
        gateway_settings = make_settings(nats_server.url, nats_monitor_url=nats_server.monitor_url,
                                         accounts_url=accounts_url)
        async with start_gateway(gateway_settings) as gateway:
            response = await gateway.get("/health")
    assert response.status_code == 503
    assert response.json()["nats"] == "unreachable"
