"""Benefits verifies a claim with accounts using the internal timeout (shorter than the gateway's), so
an accounts outage — stopped, or accepting connections and never answering — is a 503 DEPENDENCY_UNAVAILABLE naming
accounts, and nothing is stored. Benefits runs under uvicorn behind the real gateway: the caller sees the 503, not the
gateway's 504."""

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date

from sqlalchemy import func, select
from sqlmodel import Session

from services.benefits.models import Claim
from services.kernel.service_app import create_service_app
from sifund import services as catalogue
from tests.support.registry import engine_of, outbox
from tests.support.benefits import approved_benefit_parameters
from tests.support.benefits import Platform, _auth_for
from tests.support.apps import running_app
from tests.support.gateway import gateway_client, serve
from tests.support.gateway import silent_server


@asynccontextmanager
async def stopped_server() -> AsyncIterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    yield url


async def _claim_through_the_gateway(settings, make_settings, nats_server, accounts_url: str):  # noqa: ANN001
    # A gateway patient for ten minutes: only the internal timeout can answer this test in time.
    benefits_settings = make_settings(nats_server.url, accounts_url=accounts_url, internal_call_timeout_seconds=0.5,
                                      gateway_read_timeout_seconds=600)
    benefits_app = create_service_app(catalogue.spec("benefits"), benefits_settings)
    async with running_app(benefits_app) as benefits:
        await approved_benefit_parameters(benefits, _auth_for(settings), valid_from=202401)
        p = Platform(settings=settings, benefits=benefits, accounts=None, accounts_app=None)
        person = await p.person(born=date(1966, 1, 1), name="周杰", in_accounts=False)
    async with serve(create_service_app(catalogue.spec("benefits"), benefits_settings)) as benefits_url, \
            gateway_client(make_settings(nats_server.url, benefits_url=benefits_url,
                                         gateway_read_timeout_seconds=600)) as gateway:
        response = await gateway.post("/api/benefits/claims", headers=p.clerk, json={
            "kind": "basic_pension", "person_id": person, "effective_period": 202612})
    return response, benefits


async def _assert_unavailable_and_nothing_stored(response, benefits, reason: str) -> None:  # noqa: ANN001
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "DEPENDENCY_UNAVAILABLE"
    assert error["details"]["dependency"] == "accounts" and reason in error["details"]["reason"]
    assert "accounts" in error["message"]
    with Session(engine_of(benefits)) as session:
        assert session.execute(select(func.count()).select_from(Claim)).scalar_one() == 0
    assert outbox(benefits, "benefits.claim.submitted.v1") == []


async def test_hanging_accounts_is_503_dependency_unavailable(settings, make_settings, nats_server):
    async with silent_server() as accounts_url:
        response, benefits = await _claim_through_the_gateway(settings, make_settings, nats_server, accounts_url)
    await _assert_unavailable_and_nothing_stored(response, benefits, "Timeout")


async def test_stopped_accounts_is_503_dependency_unavailable(settings, make_settings, nats_server):
    async with stopped_server() as accounts_url:
        response, benefits = await _claim_through_the_gateway(settings, make_settings, nats_server, accounts_url)
    await _assert_unavailable_and_nothing_stored(response, benefits, "ConnectError")
