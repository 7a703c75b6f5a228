"""Documentation through the gateway: each service's OpenAPI served with the gateway prefix, Swagger UI pages."""

from services.kernel.settings import SERVICES
from services.oversight.app import create_app as create_oversight_app


async def test_openapi_through_the_gateway_points_at_the_gateway_prefix(
    settings, make_settings, nats_server, serve_app, start_gateway
):
    async with serve_app(create_oversight_app(settings)) as oversight_url:
        async with start_gateway(make_settings(nats_server.url, oversight_url=oversight_url)) as gateway:
            response = await gateway.get("/api/oversight/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    assert spec["servers"] == [{"url": "/api/oversight"}]
    assert spec["info"]["title"] == "sifund oversight"
    assert "/mirror/employers" in spec["paths"]


async def test_docs_pages(make_settings, start_gateway):
    async with start_gateway(make_settings("nats://127.0.0.1:1")) as gateway:
        index = await gateway.get("/docs")
        assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
        for name in SERVICES:
            assert f'href="/docs/{name}"' in index.text
        assert 'href="/docs/gateway"' in index.text

        accounts = await gateway.get("/docs/accounts")
        assert accounts.status_code == 200 and "/api/accounts/openapi.json" in accounts.text

        own = await gateway.get("/docs/gateway")
        assert own.status_code == 200 and "/openapi.json" in own.text
        assert "/health" in (await gateway.get("/openapi.json")).json()["paths"]

        unknown = await gateway.get("/docs/payroll")
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "UNKNOWN_SERVICE"
