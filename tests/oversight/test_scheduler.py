"""Oversight's scheduler (OVERSIGHT.md: chains verified periodically, overdue cases escalate, the sweep runs on a
schedule): real services (accounts and the gateway under uvicorn, oversight in-process with its lifespan), the
scheduler's own client credential from the gateway's client-credentials grant, short intervals from the settings.
Waits poll the run log; nothing asserts on timing."""

import asyncio
import socket
import subprocess
import sys
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlmodel import Session

from gateway.app import create_app as create_gateway
from gateway.identity.admin import ensure_scheduler_client, scheduler_secret_file
from services.kernel import jobs as leases
from services.kernel.db import make_engine
from services.kernel.models import AuditEntry
from services.kernel.service_app import create_service_app
from services.kernel import clock
from services.kernel.clock import china_today as today
from services.oversight.cases.models import Case
from services.oversight.scheduler.models import ScheduledJob, ScheduledJobRun
from services.oversight.scheduler.service import Scheduler, acquire_lease, begin_run, release_lease
from sifund import services as catalogue
from tests.support.apps import bearer, running_app
from tests.support.e2e import wait_for
from tests.support.gateway import serve
from tests.support.oversight import register_employers
from tests.support.scheduler import free_port, free_url, nowhere, oversight_app, schedule


async def runs(oversight, headers, **params) -> list[dict]:  # noqa: ANN001
    response = await oversight.get("/scheduler/runs", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def finished_run(oversight, headers, job: str, predicate=lambda run: True) -> dict:  # noqa: ANN001
    async def found():  # noqa: ANN202
        return next((r for r in await runs(oversight, headers, job=job)
                     if r["outcome"] != "running" and predicate(r)), None)

    return await wait_for(found, timeout=15)


async def overdue_case(oversight, officer) -> str:  # noqa: ANN001
    """A case whose deadline passed two days ago (opened by an officer, its deadline moved back in the database)."""
    response = await oversight.post("/cases", headers=officer, json={
        "rule_id": "S01", "fact_key": "S01:person-1:202601", "severity": "medium", "subject_type": "person",
        "subject_id": "person-1", "title": "死亡后仍发放待遇", "details": {"period": 202601},
        "seed_clause": "001 第二十七条", "unit": "新城区社保局", "region": "150102", "deadline_days": 1})
    assert response.status_code == 201, response.text
    case_id = response.json()["id"]
    with Session(oversight.app.state.engine) as session:
        session.execute(update(Case).where(Case.id == case_id).values(current_deadline=today() - timedelta(days=2)))
        session.commit()
    return case_id


def audit_of(oversight, entity_type: str) -> list[AuditEntry]:  # noqa: ANN001
    with Session(oversight.app.state.engine) as session:
        return list(session.execute(select(AuditEntry).where(AuditEntry.entity_type == entity_type)
                                    .order_by(AuditEntry.seq)).scalars())


async def test_a_due_job_runs_is_recorded_and_a_failing_one_does_not_stop_the_next(make_settings, nats_server):
    settings = nowhere(make_settings, nats_server)
    officer = bearer(settings, "oversight_officer", subject="officer.wang")
    # A credential is configured, but the gateway that should honour it is not there: chains fails; escalations,
    # next in the loop and local work, still runs.
    config = schedule(chains_interval_seconds=0.2, escalations_interval_seconds=0.2,
                      client_id="oversight_scheduler", client_secret="not-the-gateway-s")
    async with running_app(oversight_app(settings, config)) as oversight:
        case_id = await overdue_case(oversight, officer)
        escalation = await finished_run(oversight, officer, "escalations", lambda r: r["summary"]["escalated"])
        assert (escalation["outcome"], escalation["trigger"], escalation["actor"], escalation["error"]) == \
            ("ok", "schedule", "oversight_scheduler", None)
        assert [c["case_id"] for c in escalation["summary"]["cases"]] == [case_id]
        case = (await oversight.get(f"/cases/{case_id}", headers=officer)).json()
        assert (case["severity"], case["escalation_level"]) == ("high", 1)

        failed = await finished_run(oversight, officer, "chains")
        assert failed["outcome"] == "failed" and "gateway not reachable" in failed["error"], failed
        after = await finished_run(oversight, officer, "escalations", lambda r: r["id"] > failed["id"])
        assert after["outcome"] == "ok"  # the loop went on to the next job
        assert await runs(oversight, officer, job="sweep") == []  # not due

        jobs = {j["job"]: j for j in (await oversight.get("/scheduler/jobs", headers=officer)).json()}
        # chains runs every 0.2 s: its latest run may be under way; its latest finished one failed like the first
        assert jobs["chains"]["last_run"]["id"] >= failed["id"] and jobs["chains"]["credentials"] == "configured"
        assert jobs["chains"]["last_finished_run"]["outcome"] == "failed"
        assert jobs["escalations"]["schedule"] == "every 0.2 s" and jobs["escalations"]["next_due_at"]
        assert jobs["sweep"]["last_run"] is None and jobs["sweep"]["last_finished_run"] is None
        assert jobs["sweep"]["enabled"] is True

        # Each run is on oversight's audit chain, acted by the scheduler's client; so is the escalation it made.
        entries = audit_of(oversight, "scheduled_job_run")
        assert {(e.action, e.actor_id) for e in entries} == {("scheduler.run", "oversight_scheduler")}
        escalated = [e for e in audit_of(oversight, "oversight_case") if e.action == "case.escalate"]
        assert [(e.entity_id, e.actor_id) for e in escalated] == [(case_id, "oversight_scheduler")]


@asynccontextmanager
async def platform(make_settings, nats_server, config_overrides: dict):  # noqa: ANN001
    """The gateway and accounts under uvicorn; the scheduler's client provisioned as ``sifund up`` does; oversight
    in-process without the signing key (so it uses the scheduler's token, never one it minted itself)."""
    settings = make_settings(nats_server.url)
    client_id, secret, created = ensure_scheduler_client(settings)
    assert created and client_id == "oversight_scheduler"
    assert ensure_scheduler_client(settings) == (client_id, secret, False)  # the next start finds it again
    assert scheduler_secret_file(settings).stat().st_mode & 0o777 == 0o600
    async with serve(create_gateway(settings)) as gateway_url, \
            serve(create_service_app(catalogue.spec("accounts"), settings)) as accounts_url:
        oversight_settings = make_settings(
            nats_server.url, accounts_url=accounts_url, collection_url=free_url(), benefits_url=free_url(),
            gateway_url=gateway_url, port_base=free_port(), jwt_private_key=None)
        config = schedule(client_id=client_id, client_secret=secret, **config_overrides)
        async with running_app(oversight_app(oversight_settings, config)) as oversight, \
                httpx.AsyncClient(base_url=accounts_url) as accounts:
            yield accounts, oversight, settings


async def test_a_scheduled_run_finds_a_broken_chain_and_opens_a_severe_case(make_settings, nats_server,
                                                                           database_urls):
    async with platform(make_settings, nats_server, {"chains_interval_seconds": 0.3}) as (accounts, oversight,
                                                                                        settings):
        officer = bearer(settings, "oversight_officer", subject="officer.wang")
        await register_employers(accounts, settings, (41, 42, 43))
        first = await finished_run(oversight, officer, "chains")
        # collection and benefits are not running here: the run says so, and checked the others.
        assert first["outcome"] == "partial" and "collection: unreachable" in first["error"], first
        assert {c: s["status"] for c, s in first["summary"]["components"].items()} == {
            "accounts": "ok", "gateway": "ok", "collection": "unreachable", "benefits": "unreachable"}

        engine = make_engine(database_urls["accounts"])
        with Session(engine) as session:  # someone edits an audit entry in the accounts database (后台修改)
            session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(detail='{"forged":true}'))
            session.commit()
        engine.dispose()
        broken = await finished_run(oversight, officer, "chains",
                                    lambda r: r["summary"]["components"]["accounts"]["status"] == "broken")
        case_id = broken["summary"]["components"]["accounts"]["case_id"]
        assert broken["summary"]["cases"] == [case_id] and broken["trigger"] == "schedule"
        case = (await oversight.get(f"/cases/{case_id}", headers=officer)).json()
        assert (case["rule_id"], case["severity"], case["subject_id"], case["fact_key"]) == \
            ("CHAIN", "severe", "accounts", "accounts:broken:2")
        check = (await oversight.get("/chains/checks", headers=officer, params={"component": "accounts"})).json()[0]
        # The check used the scheduler's own gateway token (oversight cannot sign one here) and names it.
        assert (check["trigger"], check["credential"], check["checked_by"], check["status"]) == \
            ("schedule", "caller", "oversight_scheduler", "broken")
        opened = [e for e in audit_of(oversight, "oversight_case") if e.entity_id == case_id]
        assert opened[0].actor_id == "oversight_scheduler"

        # An officer runs the sweep now, as the scheduler: it reads the gateway's identity reports and accounts'
        # audit entries with the scheduler's token.
        sweep = await oversight.post("/scheduler/jobs/sweep/run", headers=officer)
        assert sweep.status_code == 200, sweep.text
        sweep = sweep.json()
        assert (sweep["outcome"], sweep["trigger"], sweep["requested_by"], sweep["actor"]) == \
            ("ok", "manual", "officer.wang", "oversight_scheduler"), sweep
        assert sweep["summary"]["inputs"]["tenure"].startswith("read:")
        assert sweep["summary"]["inputs"]["corrections"] == "read"
        swept = (await oversight.get(f"/rules/sweeps/{sweep['summary']['sweep_id']}", headers=officer)).json()
        assert (swept["status"], swept["started_by"]) == ("done", "oversight_scheduler")


async def test_the_lease_keeps_a_job_to_one_run_at_a_time(make_settings, nats_server):
    settings = nowhere(make_settings, nats_server)
    officer = bearer(settings, "oversight_officer", subject="officer.wang")
    config = schedule(enabled=False, escalations_interval_seconds=60.0, lease_seconds=0.3)
    async with running_app(oversight_app(settings, config)) as oversight:
        engine = oversight.app.state.engine
        here = oversight.app.state.scheduler
        there = Scheduler(oversight.app, config)  # a second oversight process on the same database
        assert here.owner != there.owner

        # Another process holds the lease: a manual run is refused, a scheduled one left to it.
        assert acquire_lease(engine, "escalations", there.owner, timedelta(seconds=60))
        refused = await oversight.post("/scheduler/jobs/escalations/run", headers=officer)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "SCHEDULER_JOB_RUNNING"
        assert await here.run("escalations", trigger="schedule") is None
        jobs = {j["job"]: j for j in (await oversight.get("/scheduler/jobs", headers=officer)).json()}
        assert (jobs["escalations"]["running"], jobs["escalations"]["lease_owner"]) == (True, there.owner)
        release_lease(engine, "escalations", there.owner)

        # Due (its schedule started a while ago) and asked for by both processes at once: it runs once.
        with Session(engine) as session:
            session.execute(update(ScheduledJob).where(ScheduledJob.job == "escalations")
                            .values(created_at=clock.utc_now() - timedelta(minutes=5)))
            session.commit()
        results = await asyncio.gather(here.run("escalations"), there.run("escalations"))
        ran = [r for r in results if r is not None]
        assert len(ran) == 1 and ran[0].outcome == "ok"
        assert [r["id"] for r in await runs(oversight, officer, job="escalations")] == [ran[0].id]

        # A process that died mid-run: its lease runs out, and the next run closes its run as failed.
        assert acquire_lease(engine, "escalations", "dead-process", timedelta(seconds=0.05))
        stale = begin_run(engine, "escalations", trigger="schedule", requested_by=None, actor="x", owner="dead-process")

        async def lease_expired() -> bool:
            with Session(engine) as session:
                return session.get(ScheduledJob, "escalations").lease_until < clock.utc_now()

        await wait_for(lease_expired)
        await runs_now_and_closes_the_abandoned_run(oversight, officer, stale.id)


@pytest.mark.skipif(leases.MACHINE is None, reason="a holder's liveness is seen through Linux's /proc")
async def test_a_lease_held_by_a_dead_process_of_this_machine_is_taken_at_once(make_settings, nats_server):
    """oversight killed mid-run and restarted by the supervisor: the new process runs the job now, not a lease later;
    a live holder keeps it."""
    settings = nowhere(make_settings, nats_server)
    officer = bearer(settings, "oversight_officer", subject="officer.wang")
    async with running_app(oversight_app(settings, schedule(enabled=False, lease_seconds=3600.0))) as oversight:
        engine = oversight.app.state.engine
        live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        gone = subprocess.Popen([sys.executable, "-c", "pass"])
        gone.wait()
        try:
            live_holder = f"{socket.gethostname()}:{live.pid}:0badc0de:{leases.MACHINE}"
            assert acquire_lease(engine, "escalations", live_holder, timedelta(hours=1))
            refused = await oversight.post("/scheduler/jobs/escalations/run", headers=officer)
            assert refused.status_code == 409 and refused.json()["error"]["code"] == "SCHEDULER_JOB_RUNNING"
            release_lease(engine, "escalations", live_holder)
        finally:
            live.kill()
            live.wait()

        dead_holder = f"{socket.gethostname()}:{gone.pid}:0badc0de:{leases.MACHINE}"
        assert acquire_lease(engine, "escalations", dead_holder, timedelta(hours=1))
        stale = begin_run(engine, "escalations", trigger="schedule", requested_by=None, actor="x", owner=dead_holder)
        await runs_now_and_closes_the_abandoned_run(oversight, officer, stale.id)


async def test_disabled_nothing_runs(make_settings, nats_server):
    settings = nowhere(make_settings, nats_server)
    officer = bearer(settings, "oversight_officer", subject="officer.wang")
    quick = dict(chains_interval_seconds=0.05, escalations_interval_seconds=0.05, sweep_interval_seconds=0.05)
    async with running_app(oversight_app(settings, schedule(enabled=False, **quick))) as oversight:
        jobs = (await oversight.get("/scheduler/jobs", headers=officer)).json()
        assert {(j["enabled"], j["next_due_at"]) for j in jobs} == {(False, None)}
        await asyncio.sleep(0.5)  # ten polls' worth, had the loop been running
        assert await runs(oversight, officer) == []
    # One job disabled: the others run, loop after loop; it never does.
    async with running_app(oversight_app(settings, schedule(disabled_jobs={"chains", "sweep"}, **quick))) as oversight:
        await wait_for(lambda: _at_least(oversight, officer, "escalations", 3))
        assert {r["job"] for r in await runs(oversight, officer)} == {"escalations"}


async def _at_least(oversight, officer, job: str, count: int) -> bool:  # noqa: ANN001
    return len([r for r in await runs(oversight, officer, job=job) if r["outcome"] == "ok"]) >= count


async def test_run_now_is_for_officers_and_without_a_credential_is_skipped(make_settings, nats_server):
    settings = nowhere(make_settings, nats_server)
    officer = bearer(settings, "oversight_officer", subject="officer.wang")
    async with running_app(oversight_app(settings, schedule(enabled=False))) as oversight:
        for role in ("internal_auditor", "it_admin", "agency_clerk"):
            refused = await oversight.post("/scheduler/jobs/chains/run", headers=bearer(settings, role))
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
        assert (await oversight.post("/scheduler/jobs/chains/run")).status_code == 401
        assert (await oversight.get("/scheduler/jobs", headers=bearer(settings, "agency_clerk"))).status_code == 403
        assert (await oversight.get("/scheduler/jobs", headers=bearer(settings, "internal_auditor"))).status_code == 200
        missing = await oversight.post("/scheduler/jobs/payroll/run", headers=officer)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "SCHEDULER_JOB_NOT_FOUND"

        skipped = await oversight.post("/scheduler/jobs/chains/run", headers=officer)
        assert skipped.status_code == 200, skipped.text
        body = skipped.json()
        assert (body["outcome"], body["trigger"], body["requested_by"], body["actor"]) == \
            ("skipped", "manual", "officer.wang", "system:oversight-scheduler")
        assert "SIFUND_OVERSIGHT_SCHEDULER_CLIENT_ID" in body["error"]
        assert (await oversight.get("/chains/checks", headers=officer)).json() == []  # nothing was checked
        jobs = {j["job"]: j for j in (await oversight.get("/scheduler/jobs", headers=officer)).json()}
        assert jobs["chains"]["credentials"] == "missing" and jobs["chains"]["last_run"]["outcome"] == "skipped"


async def runs_now_and_closes_the_abandoned_run(oversight, officer: dict, stale_run_id: int) -> None:  # noqa: ANN001
    """A manual run of ``escalations`` succeeds, the dead holder's ``running`` row is closed as abandoned and the lease
    is free again."""
    manual = await oversight.post("/scheduler/jobs/escalations/run", headers=officer)
    assert manual.status_code == 200 and manual.json()["outcome"] == "ok", manual.text
    with Session(oversight.app.state.engine) as session:
        stale = session.get(ScheduledJobRun, stale_run_id)
        assert stale.outcome == "failed" and stale.error.startswith("abandoned")
        assert session.get(ScheduledJob, "escalations").lease_owner is None
