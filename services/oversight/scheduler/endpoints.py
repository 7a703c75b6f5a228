"""HTTP API of the scheduler: what is scheduled, what ran, and run a job now (oversight officers).

``GET /scheduler/jobs`` lists each job with its schedule, whether the loop runs it, whether the scheduler's client
credential is configured, its lease, its last run and when it is next due. ``GET /scheduler/runs`` is the run log.
``POST /scheduler/jobs/{job}/run`` runs a job at once, as the scheduler (with the scheduler's own credential, so an
officer can check that the schedule works); the officer is recorded as ``requested_by``.
"""

import json
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from services.kernel import context
from services.kernel.auth import allow
from services.kernel.errors import NotFound
from services.kernel.service_app import SessionDep
from services.kernel.strict import RowId
from services.oversight.scheduler.jobs import JOBS
from services.oversight.scheduler.models import ScheduledJobRun

OFFICERS = allow("oversight_officer")
# What ran and when is also for internal control and for IT operations (who keep the processes running).
READERS = allow("oversight_officer", "internal_auditor", "it_admin")

router = APIRouter(prefix="/scheduler", tags=["scheduler"])


class RunOut(BaseModel):
    id: int
    job: str
    trigger: str = Field(description="schedule | manual")
    requested_by: str | None = Field(description="the officer, for a manual run")
    actor: str = Field(description="who the job acted as (the scheduler's client)")
    owner: str = Field(description="the process that ran it")
    started_at: datetime
    finished_at: datetime | None
    outcome: str = Field(description="running | ok | partial | failed | skipped")
    summary: dict[str, Any]
    error: str | None

    @classmethod
    def of(cls, run: ScheduledJobRun) -> "RunOut":
        return cls(id=run.id, job=run.job, trigger=run.trigger, requested_by=run.requested_by, actor=run.actor,
                   owner=run.owner, started_at=run.started_at, finished_at=run.finished_at,
                   outcome=run.outcome, summary=json.loads(run.summary), error=run.error)


class JobOut(BaseModel):
    job: str
    title: str
    schedule: str = Field(description="e.g. every 15 min, daily at 02:00 China time (UTC+8)")
    interval_seconds: float | None
    daily_at: str | None = Field(description="HH:MM, China time")
    enabled: bool = Field(description="the loop runs it (scheduler enabled and the job not disabled)")
    needs_credentials: bool = Field(description="calls other services: needs the scheduler's client credential")
    credentials: Literal["configured", "missing"]
    client_id: str | None
    running: bool = Field(description="its lease is held (a run in progress, here or in another process)")
    lease_owner: str | None
    last_run: RunOut | None = Field(description="the latest run, which may still be running")
    last_finished_run: RunOut | None = Field(description="the latest run that has finished: its outcome is the job's")
    next_due_at: datetime | None = Field(description="UTC; in the past: due, runs at the next look")


@router.get("/jobs", response_model=list[JobOut], dependencies=[READERS],
            summary="Scheduled jobs: schedule, credential, last run, next due")
async def jobs(request: Request) -> list[JobOut]:
    rows = await anyio.to_thread.run_sync(request.app.state.scheduler.status)
    return [JobOut(**{**row, **{key: RunOut.of(row[key]) if row[key] else None
                                for key in ("last_run", "last_finished_run")}}) for row in rows]


@router.get("/runs", response_model=list[RunOut], dependencies=[READERS], summary="Runs, newest first")
def runs(session: SessionDep, job: str | None = None, outcome: str | None = None, before_id: RowId | None = None,
         limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[RunOut]:
    query = select(ScheduledJobRun)
    if job:
        query = query.where(ScheduledJobRun.job == job)
    if outcome:
        query = query.where(ScheduledJobRun.outcome == outcome)
    if before_id:
        query = query.where(ScheduledJobRun.id < before_id)
    rows = session.execute(query.order_by(ScheduledJobRun.id.desc()).limit(limit)).scalars()
    return [RunOut.of(r) for r in rows]


@router.post("/jobs/{job}/run", response_model=RunOut, dependencies=[OFFICERS],
             summary="Run a job now, as the scheduler; 409 if it is running (here or in another process)")
async def run_now(job: str, request: Request) -> RunOut:
    if job not in JOBS:
        raise NotFound("SCHEDULER_JOB_NOT_FOUND", f"没有名为 {job} 的定时任务")
    run = await request.app.state.scheduler.run(job, trigger="manual", requested_by=context.actor_id())
    return RunOut.of(run)
