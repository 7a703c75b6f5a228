"""The role guard (services.kernel.auth.RoleGuard) is the bearer security scheme and the role check in one
dependency: the ``Authorization`` header read as FastAPI's ``HTTPBearer`` read it (scheme in any case, the first
header when several), the same 401 and 403 answers, and the same ``HTTPBearer`` scheme in the OpenAPI document."""

import httpx
from fastapi import FastAPI

from services.kernel.auth import CurrentActor, TokenVerifier, allow
from services.kernel.errors import install_error_handlers
from services.kernel.settings import Settings
from tests.support.apps import TEST_PRIVATE_KEY, TEST_PUBLIC_KEY, bearer


def make_app(settings: Settings) -> FastAPI:
    app = FastAPI()
    app.state.token_verifier = TokenVerifier(settings)
    install_error_handlers(app)

    @app.get("/employers/{employer_id}", dependencies=[allow("agency_clerk", "agency_reviewer")])
    async def employer(employer_id: str, actor: CurrentActor) -> dict:
        return {"id": employer_id, "actor": actor.id, "role": actor.role}

    return app


async def test_the_authorization_header_as_http_bearer_reads_it(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, jwt_private_key=TEST_PRIVATE_KEY, jwt_public_key=TEST_PUBLIC_KEY)
    token = bearer(settings, "agency_reviewer", subject="reviewer1")["Authorization"].split(" ", 1)[1]
    other = bearer(settings, "cashier")["Authorization"]
    app = make_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        async def get(*headers: tuple[str, str]) -> httpx.Response:
            return await client.get("/employers/E1", headers=list(headers))

        for scheme in ("Bearer", "bearer", "BEARER"):
            answer = await get(("Authorization", f"{scheme} {token}"))
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"id": "E1", "actor": "reviewer1", "role": "agency_reviewer"}
        for headers in [(), (("Authorization", f"Basic {token}"),), (("Authorization", "Bearer"),),
                        (("Authorization", "Bearer "),), (("Authorization", token),)]:
            answer = await get(*headers)
            assert answer.status_code == 401, (headers, answer.text)
            assert answer.json()["error"]["code"] == "UNAUTHENTICATED"
            assert answer.json()["error"]["message"] == "缺少访问令牌"
            assert answer.headers["www-authenticate"] == "Bearer"
        answer = await get(("Authorization", f"Bearer {token}x"))
        assert answer.status_code == 401 and answer.json()["error"]["message"] == "令牌无效"
        answer = await get(("Authorization", other))
        assert answer.status_code == 403 and answer.json()["error"]["code"] == "FORBIDDEN"
        # Several headers: the first is the one read.
        assert (await get(("Authorization", f"Bearer {token}"), ("Authorization", other))).status_code == 200
        assert (await get(("Authorization", other), ("Authorization", f"Bearer {token}"))).status_code == 403
    document = app.openapi()
    assert document["components"]["securitySchemes"] == {"HTTPBearer": {
        "type": "http", "scheme": "bearer", "description": "Access token from POST /auth/token on the gateway"}}
    assert document["paths"]["/employers/{employer_id}"]["get"]["security"] == [{"HTTPBearer": []}]
