"""What the scheduler ran (``scheduled_job_run``) and who may run a job right now (``scheduled_job``: one row per
job, its lease)."""

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field

from services.oversight.models import OversightTable


class ScheduledJob(OversightTable, table=True):
    """One row per job. A run first takes the lease with a conditional UPDATE (free or expired → mine), so one
    process runs a job at a time, however many oversight processes share the database. Times are UTC."""

    __tablename__ = "scheduled_job"

    job: str = Field(primary_key=True, max_length=40)
    created_at: datetime  # first seen: a job that never ran is due one interval after this
    lease_owner: str | None = Field(default=None, max_length=100)  # host:pid:nonce of the process running it
    lease_until: datetime | None = None
    lease_run_id: int | None = None


class ScheduledJobRun(OversightTable, table=True):
    __tablename__ = "scheduled_job_run"

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=40, index=True)
    trigger: str = Field(max_length=20)  # schedule | manual (POST /scheduler/jobs/{job}/run)
    requested_by: str | None = Field(default=None, max_length=100)  # the officer, for a manual run
    actor: str = Field(max_length=100)  # who the job acted as: the scheduler's client
    owner: str = Field(max_length=100)  # the process that ran it
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = Field(max_length=20)  # running | ok | partial | failed | skipped
    summary: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON: what the job did
    error: str | None = Field(default=None, sa_column=Column(Text))
