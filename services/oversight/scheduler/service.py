"""The scheduler: a background task of the oversight process (``ServiceSpec.background``) that runs the jobs of
``jobs.py`` when they are due, and on an officer's request (``POST /scheduler/jobs/{job}/run``).

**When.** A job is due one interval after its last run started (any trigger, any outcome), or — if it never ran —
one interval after the scheduler first saw it (``scheduled_job.created_at``): a fresh installation checks the chains
15 minutes after its first start, escalates after an hour, sweeps at the next 02:00 China time. The loop looks every
``poll_seconds``; one job at a time, each in its own try/except, so one failing job never stops the others.

**Once.** A run first takes its job's lease: one conditional ``UPDATE scheduled_job SET lease_owner = me,
lease_until = now + lease WHERE job = … AND (lease_until IS NULL OR lease_until < now)``, which exactly one process
wins on SQLite and PostgreSQL alike. The winner checks again that the job is still due (another process may have just
run it), renews the lease while it runs, and clears it in the transaction that records the outcome. A process that
dies mid-run leaves a lease that expires; the next run marks the abandoned ``running`` row ``failed``. A holder that
was a process of this machine and is gone (killed, then restarted by the supervisor) is not waited for: its lease is
taken at once, by the kernel's rule for jobs (``holder_is_dead``).

**As whom.** The jobs that call other services (``chains``, ``sweep``) act as the scheduler's own gateway system
client (``SIFUND_OVERSIGHT_SCHEDULER_CLIENT_ID`` / ``_CLIENT_SECRET``, role ``oversight_officer``): a token from the
gateway's client-credentials grant, cached until shortly before it expires. The token's subject is the actor of
everything the run does (cases opened, escalations, the run's own audit entry ``scheduler.run``). Without
credentials such a job is recorded ``skipped`` with the reason (and a warning logged); a refused credential is a
``failed`` run. ``escalations`` is local work and runs as the configured client id (``system:oversight-scheduler``
when none is configured).
"""

import asyncio
import time as monotonic_time
import traceback
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

import anyio
import httpx
import structlog
from fastapi import FastAPI
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.kernel import clock, context
from services.kernel import jobs as leases
from services.kernel.audit import append_audit, canonical_json
from services.kernel.auth import Unauthenticated
from services.kernel.context import Actor
from services.kernel.db import unit_of_work
from services.kernel.errors import Conflict, NotFound
from services.oversight.chains.service import component_url
from services.oversight.scheduler.jobs import JOBS, Job, JobContext, JobResult
from services.oversight.scheduler.models import ScheduledJob, ScheduledJobRun
from services.kernel.settings_sections import OversightSchedulerSettings

log = structlog.get_logger(__name__)

FALLBACK_ACTOR = "system:oversight-scheduler"
ROLE = "oversight_officer"
ENTITY = "scheduled_job_run"


# -- schedules -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    every: timedelta | None = None
    daily_at: time | None = None  # China time

    def next_after(self, base: datetime) -> datetime:
        """The first due time after ``base`` (UTC)."""
        if self.every is not None:
            return base + self.every
        local = base.astimezone(clock.CHINA)
        candidate = datetime.combine(local.date(), self.daily_at, tzinfo=clock.CHINA)
        if candidate <= local:
            candidate += timedelta(days=1)
        return candidate.astimezone(UTC)

    def describe(self) -> str:
        if self.every is not None:
            seconds = self.every.total_seconds()
            if seconds >= 3600 and seconds % 3600 == 0:
                return f"every {seconds / 3600:g} h"
            if seconds >= 60 and seconds % 60 == 0:
                return f"every {seconds / 60:g} min"
            return f"every {seconds:g} s"
        return f"daily at {self.daily_at:%H:%M} China time (UTC+8)"


def schedule_of(job: str, config: OversightSchedulerSettings) -> Schedule:
    if job == "chains":
        return Schedule(every=timedelta(seconds=config.chains_interval_seconds))
    if job == "escalations":
        return Schedule(every=timedelta(seconds=config.escalations_interval_seconds))
    if job == "sweep":
        if config.sweep_interval_seconds:
            return Schedule(every=timedelta(seconds=config.sweep_interval_seconds))
        return Schedule(daily_at=config.sweep_at)
    raise KeyError(job)


# -- lease and run log (synchronous: called in a worker thread) ------------------------------------------------------


def ensure_jobs(engine: Engine, names: list[str]) -> None:
    """A ``scheduled_job`` row per job (its ``created_at`` is when the schedule starts counting)."""
    with unit_of_work(engine) as session:
        known = set(session.execute(select(ScheduledJob.job)).scalars())
        missing = [n for n in names if n not in known]
        if not missing:
            return
        for name in missing:
            session.add(ScheduledJob(job=name, created_at=clock.utc_now()))
        try:
            session.flush()
        except IntegrityError:  # another oversight process created them at the same moment
            session.rollback()


# The lease rule is the kernel's (services/kernel/jobs.py), shared with the background jobs of every service.


def acquire_lease(engine: Engine, job: str, owner: str, lease: timedelta) -> bool:
    with unit_of_work(engine) as session:
        holder = session.execute(select(ScheduledJob.lease_owner).where(ScheduledJob.job == job)).scalar()
        dead = holder if leases.holder_is_dead(holder) else None
        return leases.take_lease(session, ScheduledJob.__table__, job, owner, lease, dead_holder=dead)


def renew_lease(engine: Engine, job: str, owner: str, lease: timedelta) -> bool:
    with unit_of_work(engine) as session:
        return leases.renew_lease(session, ScheduledJob.__table__, job, owner, lease)


def release_lease(engine: Engine, job: str, owner: str) -> None:
    with unit_of_work(engine) as session:
        leases.release_lease(session, ScheduledJob.__table__, job, owner)


def job_rows(engine: Engine) -> dict[str, ScheduledJob]:
    with Session(engine, expire_on_commit=False) as session:
        return {r.job: r for r in session.execute(select(ScheduledJob)).scalars()}


def latest_runs(engine: Engine, *, finished: bool = False) -> dict[str, ScheduledJobRun]:
    """Each job's latest run; with ``finished``, its latest run that is no longer ``running``."""
    with Session(engine, expire_on_commit=False) as session:
        latest = select(func.max(ScheduledJobRun.id)).group_by(ScheduledJobRun.job)
        if finished:
            latest = latest.where(ScheduledJobRun.outcome != "running")
        return {r.job: r for r in session.execute(
            select(ScheduledJobRun).where(ScheduledJobRun.id.in_(latest))).scalars()}


def next_due(engine: Engine, job: str, schedule: Schedule) -> datetime | None:
    """When ``job`` is next due (UTC); None if it has no row yet."""
    with Session(engine) as session:
        created = session.execute(select(ScheduledJob.created_at).where(ScheduledJob.job == job)).scalar()
        started = session.execute(select(func.max(ScheduledJobRun.started_at))
                                  .where(ScheduledJobRun.job == job)).scalar()
    base = started or created
    return schedule.next_after(base) if base else None


def begin_run(engine: Engine, job: str, *, trigger: str, requested_by: str | None, actor: str,
              owner: str) -> ScheduledJobRun:
    """Log the run as ``running`` (its lease held). A ``running`` run left by a process whose lease expired is
    closed as ``failed`` first."""
    now = clock.utc_now()
    with unit_of_work(engine) as session:
        row = session.get(ScheduledJob, job)
        if row.lease_run_id is not None:
            stale = session.get(ScheduledJobRun, row.lease_run_id)
            if stale is not None and stale.outcome == "running":
                stale.outcome, stale.finished_at = "failed", now
                stale.error = f"abandoned: {stale.owner} stopped or was killed before the run was recorded " \
                              f"(its lease expired, or the process is gone)"
                session.add(stale)
        run = ScheduledJobRun(job=job, trigger=trigger, requested_by=requested_by, actor=actor, owner=owner,
                              started_at=now, outcome="running", summary="{}")
        session.add(run)
        session.flush()
        row.lease_run_id = run.id
        session.add(row)
        session.flush()
        return run


def finish_run(engine: Engine, run_id: int, result: JobResult, *, owner: str) -> ScheduledJobRun:
    """Record the outcome, its audit entry (the current actor: the scheduler's client) and free the lease, in one
    transaction."""
    with unit_of_work(engine) as session:
        run = session.get(ScheduledJobRun, run_id)
        run.finished_at, run.outcome = clock.utc_now(), result.outcome
        run.summary, run.error = canonical_json(result.summary), result.error
        session.add(run)
        append_audit(session, action="scheduler.run", entity_type=ENTITY, entity_id=str(run.id), detail={
            "job": run.job, "trigger": run.trigger, "requested_by": run.requested_by, "outcome": run.outcome,
            "started_at": run.started_at.isoformat(), "finished_at": run.finished_at.isoformat(),
            "summary": result.summary, "error": (result.error or "")[:2000] or None})
        session.execute(update(ScheduledJob).where(ScheduledJob.job == run.job, ScheduledJob.lease_owner == owner)
                        .values(lease_owner=None, lease_until=None))
        session.flush()
        return run


# -- the scheduler's credential --------------------------------------------------------------------------------------


class CredentialError(Exception):
    """The scheduler could not obtain a usable token: the run fails."""


class NoCredentials(CredentialError):
    """No client credential configured: the run is skipped."""


class ClientToken:
    """A token of the scheduler's system client from the gateway (client-credentials grant), cached."""

    def __init__(self, app: FastAPI, config: OversightSchedulerSettings):
        self.app, self.config = app, config
        self._cached: tuple[str, Actor, float] | None = None  # token, actor, monotonic time to renew at

    async def get(self) -> tuple[str, Actor]:
        config = self.config
        if not config.has_credentials:
            raise NoCredentials("no client credential configured for the scheduler (SIFUND_OVERSIGHT_SCHEDULER_"
                                "CLIENT_ID / _CLIENT_SECRET; `sifund up` provisions one)")
        if self._cached and monotonic_time.monotonic() < self._cached[2]:
            return self._cached[0], self._cached[1]
        state = self.app.state
        url = f"{component_url(state.settings, 'gateway')}/auth/token"
        try:
            response = await state.http.post(url, data={
                "grant_type": "client_credentials", "client_id": config.client_id,
                "client_secret": config.client_secret.get_secret_value()})
        except httpx.HTTPError as exc:
            raise CredentialError(f"gateway not reachable for the client token ({url}): "
                                  f"{type(exc).__name__}: {exc}"[:500]) from exc
        if response.status_code != 200:
            raise CredentialError(f"gateway refused the scheduler's client {config.client_id}: "
                                  f"HTTP {response.status_code} {response.text[:300]}")
        body = response.json()
        token = body["access_token"]
        try:
            principal = state.token_verifier.verify(token)
        except Unauthenticated as exc:
            raise CredentialError(f"the gateway's token for {config.client_id} does not verify here: "
                                  f"{exc.detail}") from exc
        if ROLE not in principal.roles:
            raise CredentialError(f"the scheduler's client {config.client_id} lacks the {ROLE} role "
                                  f"(has: {', '.join(principal.roles) or 'none'})")
        actor = Actor(id=principal.id, role=ROLE, unit=principal.unit, region=principal.region, roles=principal.roles)
        lifetime = float(body.get("expires_in") or 60)
        self._cached = (token, actor, monotonic_time.monotonic() + max(lifetime - min(60.0, lifetime / 2), 1.0))
        return token, actor

    def forget(self) -> None:
        self._cached = None


# -- the scheduler ---------------------------------------------------------------------------------------------------


class Scheduler:
    def __init__(self, app: FastAPI, config: OversightSchedulerSettings):
        self.app, self.config = app, config
        self.jobs: dict[str, Job] = dict(JOBS)
        self.owner = leases.lease_owner_name()
        self.credential = ClientToken(app, config)
        self.lease = timedelta(seconds=config.lease_seconds)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def engine(self) -> Engine:
        return self.app.state.engine

    def schedule(self, job: str) -> Schedule:
        return schedule_of(job, self.config)

    def enabled(self, job: str) -> bool:
        return self.config.enabled and job not in self.config.disabled_jobs

    # -- lifecycle -------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        await anyio.to_thread.run_sync(ensure_jobs, self.engine, list(self.jobs))
        if not self.config.enabled:
            log.info("scheduler.disabled")
            return
        if not self.config.has_credentials:
            log.warning("scheduler.no_credentials", skipped=[j.name for j in self.jobs.values() if j.needs_token],
                        hint="set SIFUND_OVERSIGHT_SCHEDULER_CLIENT_ID / _CLIENT_SECRET")
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name="oversight-scheduler")
        log.info("scheduler.started", owner=self.owner,
                 jobs={n: self.schedule(n).describe() for n in self.jobs if self.enabled(n)})

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is None:
            return
        await leases.finish_or_cancel(self._task, self.config.stop_grace_seconds)
        self._task = None
        log.info("scheduler.stopped", owner=self.owner)

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            for name in list(self.jobs):
                if self._stopping.is_set():
                    break
                if not self.enabled(name):
                    continue
                try:  # one job's trouble never stops the others, nor the loop
                    due = await anyio.to_thread.run_sync(next_due, self.engine, name, self.schedule(name))
                    if due is not None and due <= clock.utc_now():
                        await self.run(name, trigger="schedule")
                except Exception:  # noqa: BLE001
                    log.exception("scheduler.loop_error", job=name)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self.config.poll_seconds)

    # -- one run ---------------------------------------------------------------------------------------------------

    async def run(self, name: str, *, trigger: str = "schedule", requested_by: str | None = None) \
            -> ScheduledJobRun | None:
        """Run ``name`` now if its lease can be taken (and, for the schedule, if it is still due). Returns the
        recorded run; None when another process holds the lease or already ran it (schedule); a manual run on a
        held lease is ``409 SCHEDULER_JOB_RUNNING``."""
        job = self.jobs.get(name)
        if job is None:
            raise NotFound("SCHEDULER_JOB_NOT_FOUND", f"没有名为 {name} 的定时任务")
        engine = self.engine
        if not await anyio.to_thread.run_sync(acquire_lease, engine, name, self.owner, self.lease):
            if trigger == "schedule":
                return None
            raise Conflict("SCHEDULER_JOB_RUNNING", f"定时任务 {name} 正在运行（可能在另一个进程中），请稍后再试")
        try:
            if trigger == "schedule":
                due = await anyio.to_thread.run_sync(next_due, engine, name, self.schedule(name))
                if due is None or due > clock.utc_now():  # another process ran it meanwhile
                    await anyio.to_thread.run_sync(release_lease, engine, name, self.owner)
                    return None
            return await self._run_leased(job, trigger=trigger, requested_by=requested_by)
        except BaseException:
            with suppress(Exception):
                release_lease(engine, name, self.owner)
            raise

    async def _run_leased(self, job: Job, *, trigger: str, requested_by: str | None) -> ScheduledJobRun:
        engine = self.engine
        token: str | None = None
        actor = Actor(id=self.config.client_id or FALLBACK_ACTOR, role=ROLE if self.config.client_id else "system")
        result: JobResult | None = None
        if job.needs_token:
            try:
                token, actor = await self.credential.get()
            except NoCredentials as exc:
                result = JobResult("skipped", {}, str(exc))
                log.warning("scheduler.skipped", job=job.name, reason=str(exc))
            except CredentialError as exc:
                self.credential.forget()
                result = JobResult("failed", {}, str(exc))
                log.error("scheduler.credential_failed", job=job.name, error=str(exc))
        run = await anyio.to_thread.run_sync(lambda: begin_run(
            engine, job.name, trigger=trigger, requested_by=requested_by, actor=actor.id, owner=self.owner))
        correlation = f"scheduler.{job.name}.{run.id}"
        with context.trace(actor=actor, correlation_id=correlation, causation_id=None):
            heartbeat = asyncio.create_task(self._heartbeat(job.name))
            started = monotonic_time.perf_counter()
            try:
                if result is None:
                    try:
                        result = await job.run(JobContext(state=self.app.state, token=token, actor=actor))
                    except asyncio.CancelledError:
                        result = JobResult("failed", {}, "interrupted: the oversight process stopped during the run")
                        heartbeat.cancel()
                        finish_run(engine, run.id, result, owner=self.owner)  # on the loop: we are being cancelled
                        raise
                    except Exception as exc:  # noqa: BLE001 - recorded, never propagated into the loop
                        result = JobResult("failed", {"trace": traceback.format_exc(limit=5)[-2000:]},
                                           f"{type(exc).__name__}: {exc}"[:2000])
                        log.exception("scheduler.job_failed", job=job.name, run_id=run.id)
            finally:
                heartbeat.cancel()
                with suppress(asyncio.CancelledError):
                    await heartbeat
            result.summary.setdefault("seconds", round(monotonic_time.perf_counter() - started, 3))
            done = await anyio.to_thread.run_sync(lambda: finish_run(engine, run.id, result, owner=self.owner))
        log.info("scheduler.run", job=job.name, run_id=done.id, trigger=trigger, outcome=done.outcome,
                 actor=actor.id, error=done.error)
        return done

    async def _heartbeat(self, job: str) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            if not await anyio.to_thread.run_sync(renew_lease, self.engine, job, self.owner, self.lease):
                log.warning("scheduler.lease_lost", job=job, owner=self.owner)

    # -- status ----------------------------------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """Each job: schedule, whether it runs, its lease, last run and next due time (synchronous)."""
        rows, last = job_rows(self.engine), latest_runs(self.engine)
        last_finished = latest_runs(self.engine, finished=True)
        now = clock.utc_now()
        out = []
        for name, job in self.jobs.items():
            schedule, row, run = self.schedule(name), rows.get(name), last.get(name)
            base = run.started_at if run else (row.created_at if row else None)
            held = row is not None and row.lease_until is not None and row.lease_until > now
            out.append({
                "job": name, "title": job.title, "schedule": schedule.describe(),
                "interval_seconds": schedule.every.total_seconds() if schedule.every else None,
                "daily_at": schedule.daily_at.strftime("%H:%M") if schedule.daily_at else None,
                "enabled": self.enabled(name), "needs_credentials": job.needs_token,
                "credentials": "configured" if self.config.has_credentials else "missing",
                "client_id": self.config.client_id,
                "running": held, "lease_owner": row.lease_owner if held else None,
                "last_run": run, "last_finished_run": last_finished.get(name),
                "next_due_at": schedule.next_after(base) if base and self.enabled(name) else None,
            })
        return out


def create_scheduler(app: FastAPI) -> Scheduler:
    """``ServiceSpec.background`` factory: the scheduler configured by the app's settings (``oversight_scheduler``)."""
    config = app.state.settings.oversight_scheduler
    app.state.scheduler = Scheduler(app, config)
    return app.state.scheduler
