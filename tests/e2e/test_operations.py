"""Operator endpoints every service has: health, dead letters (list and replay), outbox backlog."""

import json

import nats

from services.kernel.events import EventActor, build_envelope
from tests.support.e2e import VALID_USCC, employer, wait_for


async def publish_raw(nats_url: str, subject: str, payload: bytes, msg_id: str) -> None:
    nc = await nats.connect(nats_url)
    try:
        await nc.jetstream().publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
    finally:
        await nc.close()


async def test_health_reports_database_and_bus(start_service, nats_server):
    async with start_service("oversight") as oversight:
        await oversight.app.state.bus.wait_ready(10)
        health = await oversight.get("/health")
        assert health.status_code == 200
        assert health.json()["checks"] == {"database": "ok", "bus": "ok"}
        nats_server.stop()

        async def degraded():
            r = await oversight.get("/health")
            return r.status_code == 503 and r.json()["checks"]["bus"] == "disconnected"

        await wait_for(degraded, timeout=15)
        nats_server.start()

        async def recovered():
            return (await oversight.get("/health")).status_code == 200

        await wait_for(recovered, timeout=15)


async def test_an_event_oversight_cannot_apply_is_listed_and_replayable(start_service, settings, auth):
    from services.contracts.accounts import EmployerRegistered  # noqa: PLC0415

    async with start_service("oversight") as oversight:
        await oversight.app.state.bus.wait_ready(10)
        ops = auth("it_admin", subject="ops.li")
        # A producer bug: the payload lacks the employer's name.
        envelope = build_envelope(
            EmployerRegistered(employer_id="e-1", uscc=VALID_USCC, name="x", region="150102",
                               registered_at="2026-01-01T00:00:00Z"),
            source="accounts", subject="e-1", actor=EventActor(id="t"), correlation_id=None, causation_id=None,
        )
        broken = json.loads(envelope.model_dump_json())
        del broken["data"]["name"]
        await publish_raw(settings.nats_server_url, EmployerRegistered.event_type, json.dumps(broken).encode(), envelope.id)

        async def listed():
            return (await oversight.get("/admin/dead-letters", headers=ops)).json()

        [letter] = await wait_for(listed, timeout=20)
        assert letter["event_id"] == envelope.id
        assert letter["consumer"] == "oversight-ACCOUNTS"
        assert letter["attempts"] == settings.consumer_max_attempts
        assert "name" in letter["error"]

        still_broken = await oversight.post(f"/admin/dead-letters/{letter['id']}/replay", headers=ops)
        assert still_broken.status_code == 409
        assert still_broken.json()["error"]["code"] == "DEAD_LETTER_REPLAY_FAILED"
        missing = await oversight.post("/admin/dead-letters/99999/replay", headers=ops)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "DEAD_LETTER_NOT_FOUND"
        assert (await oversight.get("/mirror/employers", headers=auth("oversight_officer"))).json() == []


async def test_outbox_backlog_is_visible_while_the_bus_is_down(start_service, nats_server, auth):
    nats_server.stop()
    async with start_service("accounts") as accounts:
        r = await accounts.post("/employers", json=employer(), headers=auth("agency_clerk"))
        assert r.status_code == 201  # business goes on without the bus
        status = (await accounts.get("/admin/outbox", headers=auth("it_admin"))).json()
        assert status["backlog"] == 1 and status["oldest_unpublished_at"]
        nats_server.start()

        async def drained():
            return (await accounts.get("/admin/outbox", headers=auth("it_admin"))).json()["backlog"] == 0

        await wait_for(drained, timeout=20)
