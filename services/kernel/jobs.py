"""Background jobs: long work accepted by a request (202 + job id) and run inside the service process, in chunks,
with progress a client polls at ``GET /jobs/{id}``. One mechanism for every service; a service registers *kinds*.

**Accepting.** ``submit_job`` stores the job (kind, creator, time, parameters) and its uploaded file (table
``job_input_part``, in parts of ``INPUT_PART_BYTES``, with its SHA-256) in the service's own database, in one
transaction, and wakes the runner. A file is handed over as bytes (small) or as a file on disk (``save_upload``
spools a request's upload there, bounded by ``max_upload_bytes``): it is hashed and stored a part at a time, never
whole in memory. The runner copies it back to a temporary file for the run and hands the kind its path
(``JobContext.input``), which ``services.kernel.tabular`` reads as a stream. The same
file of the same kind by the same creator with the same parameters and ``Idempotency-Key`` (or none) is the *same
job*: the second submission answers the first job, it never runs twice (``job.dedup_key``, unique). To run a file
again on purpose, send another ``Idempotency-Key``.

**Running.** ``JobRunner`` is a background task of the service (``ServiceSpec.background``): an asyncio task that
takes one job at a time and runs its chunks in a worker thread. Each chunk is one ``unit_of_work``: the kind's
business writes *and* the job's progress row (rows done, rejected so far, next offset, lease renewal) commit
together, so after a crash the job resumes exactly after the last committed chunk — no row twice, none missed. The
progress update is conditional on still holding the lease, so a runner that lost it rolls its chunk back.

**Leases.** A job is taken with one conditional ``UPDATE … WHERE lease_until IS NULL OR lease_until < now`` (the
rule of the oversight scheduler's lease, ``take_lease`` below works on any table with ``lease_owner`` and
``lease_until``): exactly one process wins, on SQLite and PostgreSQL alike. The lease is renewed by every chunk and
by a heartbeat; a process that dies leaves a lease that runs out (``SIFUND_JOBS_LEASE_SECONDS``), and the next
runner to look (the restarted process at start-up, or another replica's poll) resumes the job. A holder known to be
dead need not be waited for: the owner names its process and where that process ran (host, PID, the machine's boot
and PID namespace), and a runner that sees the same boot and namespace and no such process left takes the job at
once — so a service killed and restarted by ``sifund up`` (or systemd) resumes its job at start-up, not a lease
later. A holder elsewhere, or one whose liveness cannot be seen, is waited for. Judging wrongly costs a chunk, never a
row: progress commits only for the lease's holder at the offset it started from. A clean shutdown stops between
chunks and frees the lease at once.

**Outcome.** ``succeeded`` with the kind's result (e.g. an import report), or ``failed`` with the refusal's stable
code and Chinese message (a ``DomainError``) or the exception's text. A failed chunk rolled back: nothing of it is
stored, what earlier chunks committed stays (and is counted in the progress).

**Kinds.** A ``JobKind`` names who may submit it and who may read every job of it (the creator always reads their
own), and either ``open`` — chunked work (``JobWork``: ``run_chunk(session, offset)`` → ``Step``, then ``result``)
— or ``run_async`` — one step on the event loop (a rebuild that is one transaction by design: resumed from the
start if its process died).
"""

import asyncio
import hashlib
import json
import os
import socket
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Protocol

import anyio
import structlog
from fastapi import APIRouter, FastAPI, Query, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Engine, Table, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.kernel import clock, context
from services.kernel.audit import append_audit
from services.kernel.auth import allow
from services.kernel.context import Actor
from services.kernel.db import snapshot_session, unit_of_work
from services.kernel.errors import DomainError, Invalid, NotFound, TooLarge
from services.kernel.events import new_event_id
from services.kernel.models import Job, JobInputPart
from services.kernel.paging import SORT_DESCRIPTION, SORT_PATTERN, SortKeys
from services.kernel.settings_sections import JobSettings

log = structlog.get_logger(__name__)

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
UNFINISHED = (QUEUED, RUNNING)


# -- what a kind provides --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """What one chunk did: rows handled (accepted or rejected), of which rejected, where the next chunk starts, and
    whether the work is complete."""

    rows: int
    rejected: int
    next_offset: int
    finished: bool
    state: dict[str, Any] | None = None  # the kind's running totals, stored with the progress (job.state)


class JobWork(Protocol):
    """A job's work opened for one run (in a worker thread). ``total`` may be None when unknown in advance."""

    total: int | None

    def run_chunk(self, session: Session, offset: int) -> Step: ...

    def result(self, session: Session) -> dict[str, Any]: ...


@dataclass(frozen=True)
class JobContext:
    """What a kind's work sees: the job row as taken (progress so far included), its file, its parameters."""

    job: Job
    input: bytes | Path | None  # the job's file: on disk for the run (bytes when a caller hands it over in memory)
    params: dict[str, Any]
    engine: Engine
    state: Any  # the app's state (settings, bus, consumers, ...)
    chunk_rows: int | None = None  # SIFUND_JOBS_CHUNK_ROWS

    def rows_per_chunk(self, natural: int) -> int:
        """The kind's own chunk size, or the configured one if smaller."""
        return min(natural, self.chunk_rows or natural)

    def input_bytes(self) -> bytes | None:
        """The whole file in memory: for kinds whose files are small."""
        return self.input.read_bytes() if isinstance(self.input, Path) else self.input


@dataclass(frozen=True)
class JobKind:
    name: str
    submitters: frozenset[str]  # roles that may start it (the endpoint that accepts it checks, too)
    readers: frozenset[str]  # roles that may read every job of this kind; the creator always reads their own
    open: Callable[[JobContext], JobWork] | None = None  # chunked, resumable
    run_async: Callable[[JobContext], Awaitable[dict[str, Any]]] | None = None  # one step on the event loop
    # Without a file: at most one unfinished job of the kind (a second request answers it), e.g. a rebuild.
    exclusive: bool = False

    def __post_init__(self) -> None:
        if (self.open is None) == (self.run_async is None):
            raise ValueError(f"job kind {self.name}: give exactly one of open or run_async")


class LeaseLost(Exception):
    """Another runner holds the job now: this runner's chunk is rolled back and it lets go."""


# -- leases (any table with lease_owner / lease_until) ---------------------------------------------------------------


def take_lease(session: Session, table: Table, key: Any, owner: str, lease: timedelta, *,
               dead_holder: str | None = None, **values: Any) -> bool:
    """Take the lease of the row ``key`` if it is free or expired (or still held by ``dead_holder``, a process known
    to be gone); exactly one contender wins. ``values`` are set on the row in the same statement."""
    now = clock.utc_now()
    c = table.c
    pk = next(iter(table.primary_key.columns))
    takeable = or_(c.lease_until.is_(None), c.lease_until < now,
                   *([c.lease_owner == dead_holder] if dead_holder else []))
    result = session.execute(update(table).where(pk == key, takeable)
                             .values(lease_owner=owner, lease_until=now + lease, **values))
    return result.rowcount == 1


def renew_lease(session: Session, table: Table, key: Any, owner: str, lease: timedelta, **values: Any) -> bool:
    pk = next(iter(table.primary_key.columns))
    result = session.execute(update(table).where(pk == key, table.c.lease_owner == owner)
                             .values(lease_until=clock.utc_now() + lease, **values))
    return result.rowcount == 1


def release_lease(session: Session, table: Table, key: Any, owner: str, **values: Any) -> bool:
    pk = next(iter(table.primary_key.columns))
    result = session.execute(update(table).where(pk == key, table.c.lease_owner == owner)
                             .values(lease_owner=None, lease_until=None, **values))
    return result.rowcount == 1


JOB = Job.__table__


# -- lease holders: who they are, whether they are gone --------------------------------------------------------------


def _this_machine() -> str | None:
    """This boot of this machine's kernel and this process's PID namespace (Linux): processes that show the same value
    see each other's PIDs. None where it cannot be known: then no holder is ever judged dead."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:12]
        namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return None
    return f"{boot}.{namespace.removeprefix('pid:[').removesuffix(']')}"


MACHINE = _this_machine()


def lease_owner_name() -> str:
    """``host:pid:random[:machine]``, unique per runner; readable in logs, and telling a runner of the same machine
    whether the holder is still alive (``holder_is_dead``)."""
    name = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return f"{name}:{MACHINE}" if MACHINE else name


def holder_is_dead(owner: str | None) -> bool:
    """The holder was a process of this machine (same boot, same PID namespace) that exists no more (or is a zombie
    nobody reaped yet). Anything else is presumed alive: another machine or container, this very process (another
    runner in it), a live process, an owner name of another form."""
    parts = (owner or "").rsplit(":", 3)
    if MACHINE is None or len(parts) != 4 or parts[3] != MACHINE or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: alive
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state in ("Z", "X")


# -- accepting a job -------------------------------------------------------------------------------------------------


INPUT_PART_BYTES = 1024 * 1024  # one row of job_input_part: a file is written and read back this much at a time


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _parts(source: bytes | Path) -> Iterable[bytes]:
    if isinstance(source, bytes):
        yield from (source[i:i + INPUT_PART_BYTES] for i in range(0, len(source), INPUT_PART_BYTES))
        return
    with source.open("rb") as stream:
        while part := stream.read(INPUT_PART_BYTES):
            yield part


def _measure(source: bytes | Path) -> tuple[str, int]:
    """(SHA-256, size) of a file, read a part at a time."""
    digest, size = hashlib.sha256(), 0
    for part in _parts(source):
        digest.update(part)
        size += len(part)
    return digest.hexdigest(), size


async def save_upload(upload: UploadFile, limit: int, code: str, message: str) -> Path:
    """A request's uploaded file spooled to a temporary file (the caller deletes it), a part at a time: a city's file
    is never whole in memory. Past ``limit`` bytes: 413 ``code`` and nothing is kept."""
    target = tempfile.NamedTemporaryFile(prefix="sifund-upload-", suffix=".part", delete=False)  # noqa: SIM115
    path, size = Path(target.name), 0
    try:
        with target:
            while part := await upload.read(INPUT_PART_BYTES):
                size += len(part)
                if size > limit:
                    raise TooLarge(code, message)
                await anyio.to_thread.run_sync(target.write, part)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _dedup_key(kind: str, actor: str, sha: str | None, params: dict[str, Any], key: str | None) -> str:
    material = json.dumps([kind, actor, sha, params, key or ""], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()


def submit_job(engine: Engine, kind: JobKind, *, data: bytes | Path | None = None, filename: str | None = None,
               params: dict[str, Any] | None = None, idempotency_key: str | None = None) -> tuple[Job, bool]:
    """Store a job for the current actor (and its file: bytes, or a file on disk read a part at a time); returns
    (job, created). The same submission again returns the existing job and ``created=False`` (see the module
    docstring)."""
    params = params or {}
    ctx = context.current()
    actor = ctx.actor
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= 200:
        raise Invalid("IDEMPOTENCY_KEY_INVALID", "Idempotency-Key 长度应为 1–200 个字符")
    sha, size = _measure(data) if data is not None else (None, None)
    if data is None and idempotency_key is None:
        if kind.exclusive and (unfinished := _unfinished_of(engine, kind.name)) is not None:
            return unfinished, False
        idempotency_key_part = new_event_id()  # no file, no key: every request is a job of its own
    else:
        idempotency_key_part = idempotency_key
    dedup = _dedup_key(kind.name, actor.id, sha, params, idempotency_key_part)
    existing = _by_dedup_key(engine, dedup)
    if existing is not None:
        return existing, False
    job = Job(id=new_event_id(), kind=kind.name, dedup_key=dedup, status=QUEUED, created_by=actor.id,
              created_role=actor.role, created_unit=actor.unit, created_region=actor.region,
              created_roles=json.dumps(list(actor.roles)), created_at=clock.utc_now(), request_id=ctx.request_id,
              filename=(filename or None) and filename[:200], file_sha256=sha,
              file_bytes=size, idempotency_key=idempotency_key,
              params=json.dumps(params, sort_keys=True, ensure_ascii=False))
    try:
        with unit_of_work(engine) as session:
            session.add(job)
            session.flush()
            if data is not None:
                _store_input(session, job.id, data)
            append_audit(session, action="job.submitted", entity_type="job", entity_id=job.id, detail={
                "kind": kind.name, "filename": job.filename, "file_sha256": sha, "file_bytes": job.file_bytes,
                "params": params, "idempotency_key": idempotency_key})
            session.flush()
    except IntegrityError:  # the same submission at the same moment: the other one won
        existing = _by_dedup_key(engine, dedup)
        if existing is None:
            raise
        return existing, False
    log.info("job.submitted", job_id=job.id, kind=kind.name, file_bytes=job.file_bytes)
    return job, True


def _store_input(session: Session, job_id: str, source: bytes | Path) -> None:
    table = JobInputPart.__table__
    for part_no, part in enumerate(_parts(source)):
        session.execute(insert(table).values(job_id=job_id, part_no=part_no, data=part))


def _unfinished_of(engine: Engine, kind: str) -> Job | None:
    with snapshot_session(engine) as session:
        job = session.execute(select(Job).where(Job.kind == kind, Job.status.in_(UNFINISHED))
                              .order_by(Job.id).limit(1)).scalar_one_or_none()
        if job is not None:
            session.expunge(job)
        return job


def _by_dedup_key(engine: Engine, dedup: str) -> Job | None:
    with snapshot_session(engine) as session:
        job = session.execute(select(Job).where(Job.dedup_key == dedup)).scalar_one_or_none()
        if job is not None:
            session.expunge(job)
        return job


# -- reading jobs ----------------------------------------------------------------------------------------------------


class JobOut(BaseModel):
    id: str
    kind: str
    status: str
    created_by: str
    created_at: datetime
    filename: str | None
    file_sha256: str | None
    file_bytes: int | None
    rows_total: int | None
    rows_done: int
    rows_rejected: int
    percent: float | None
    eta_seconds: float | None
    attempts: int
    started_at: datetime | None
    updated_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any] | None
    error_code: str | None
    error: str | None


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


def eta_seconds(job: Job) -> float | None:
    """Seconds left for a running job: the rows left at the pace of this run's chunks so far (from ``run_began_at``;
    unknown until its first chunk has committed), less the time since the last chunk committed."""
    if job.status == SUCCEEDED:
        return 0.0
    if job.status != RUNNING or not job.rows_total or not job.updated_at:
        return None
    began_at, began_rows = job.run_began_at or job.started_at, job.run_began_rows or 0
    done = job.rows_done - began_rows
    if began_at is None or done <= 0:
        return None
    pace = (job.updated_at - began_at).total_seconds() / done
    since = (clock.utc_now() - job.updated_at).total_seconds()
    return round(max(0.0, pace * (job.rows_total - job.rows_done) - since), 1)


def job_out(job: Job) -> JobOut:
    percent = None
    if job.rows_total:
        percent = round(100.0 * min(job.rows_done, job.rows_total) / job.rows_total, 1)
    eta = eta_seconds(job)
    return JobOut(id=job.id, kind=job.kind, status=job.status, created_by=job.created_by, created_at=job.created_at,
                  filename=job.filename, file_sha256=job.file_sha256, file_bytes=job.file_bytes,
                  rows_total=job.rows_total, rows_done=job.rows_done, rows_rejected=job.rows_rejected,
                  percent=percent, eta_seconds=eta, attempts=job.attempts, started_at=job.started_at,
                  updated_at=job.updated_at, finished_at=job.finished_at,
                  result=json.loads(job.result) if job.result else None, error_code=job.error_code, error=job.error)


def _may_read(actor: Actor, job: Job, kinds: dict[str, JobKind]) -> bool:
    if job.created_by == actor.id:
        return True
    kind = kinds.get(job.kind)
    return kind is not None and bool(kind.readers & set(actor.roles or (actor.role,)))


def read_job(engine: Engine, job_id: str, kinds: dict[str, JobKind]) -> Job:
    """The job, if the current actor may read it; otherwise 404 (whether it exists is not disclosed)."""
    with snapshot_session(engine) as session:
        job = session.get(Job, job_id)
        if job is None or not _may_read(context.current().actor, job, kinds):
            raise NotFound("JOB_NOT_FOUND", "任务不存在")
        session.expunge(job)
        return job


JOB_SORT = SortKeys(Job.id, descending_by_default=True, created_at=Job.created_at, kind=Job.kind, status=Job.status,
                    created_by=Job.created_by, rows_done=Job.rows_done, rows_rejected=Job.rows_rejected)


def list_jobs(engine: Engine, kinds: dict[str, JobKind], *, kind: str | None, status: str | None,
              after: str | None, limit: int, sort: str | None = None) -> tuple[list[Job], str | None]:
    """The jobs the current actor may read, newest first: their own, and every job of the kinds their role reads."""
    actor = context.current().actor
    roles = set(actor.roles or (actor.role,))
    readable = [k.name for k in kinds.values() if k.readers & roles]
    query = select(Job).where(or_(Job.created_by == actor.id, Job.kind.in_(readable)))
    if kind:
        query = query.where(Job.kind == kind)
    if status:
        query = query.where(Job.status == status)
    with snapshot_session(engine) as session:
        jobs, next_cursor = JOB_SORT.page(session, query, sort=sort, after=after, limit=limit)
        for job in jobs:
            session.expunge(job)
        return jobs, next_cursor


def accepted(request: Request, job: Job) -> JSONResponse:
    """The answer to a submission: 202 with the job and its address (``Location``, through the gateway's prefix
    when the request came through it); a job already finished is still 202 — the same job, polled the same way."""
    prefix = request.headers.get("x-forwarded-prefix", "").rstrip("/")
    location = f"{prefix}/jobs/{job.id}"
    body = job_out(job).model_dump(mode="json")
    return JSONResponse(body, status_code=202, headers={"Location": location})


def jobs_router(kinds: Iterable[JobKind]) -> APIRouter:
    """``GET /jobs`` and ``GET /jobs/{id}`` of a service, for the roles that submit or read its kinds."""
    kinds = list(kinds)
    roles = frozenset().union(*(k.submitters | k.readers for k in kinds))
    router = APIRouter(prefix="/jobs", tags=["jobs"], dependencies=[allow(*sorted(roles))])

    def registered(request: Request) -> dict[str, JobKind]:
        return request.app.state.jobs.kinds

    @router.get("", response_model=JobPage, summary="Background jobs I may read, newest first")
    def list_my_jobs(request: Request, kind: str | None = None, status: str | None = None,
                     after: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
                     sort: Annotated[str | None, Query(pattern=SORT_PATTERN, description=SORT_DESCRIPTION)] = None,
                     ) -> JobPage:
        jobs, next_cursor = list_jobs(request.app.state.engine, registered(request), kind=kind, status=status,
                                      after=after, limit=limit, sort=sort)
        return JobPage(items=[job_out(j) for j in jobs], next_cursor=next_cursor)

    @router.get("/{job_id}", response_model=JobOut,
                summary="A background job: status, rows done of total, rejected so far, ETA, result or error")
    def get_job(request: Request, job_id: str) -> JobOut:
        return job_out(read_job(request.app.state.engine, job_id, registered(request)))

    return router


# -- the runner's database steps (synchronous: worker threads) -------------------------------------------------------


def claim_next(engine: Engine, kinds: Iterable[str], owner: str, lease: timedelta) -> Job | None:
    """Take the oldest unfinished job of ``kinds`` whose lease is free, expired, or held by a process known to be
    dead (``holder_is_dead``)."""
    now = clock.utc_now()
    unfinished = (Job.kind.in_(list(kinds)), Job.status.in_(UNFINISHED))
    with snapshot_session(engine) as session:
        candidates: list[tuple[str, str | None]] = [(job_id, None) for job_id in session.execute(
            select(Job.id).where(*unfinished, or_(Job.lease_until.is_(None), Job.lease_until < now))
            .order_by(Job.id).limit(10)).scalars()]
        held = session.execute(select(Job.id, Job.lease_owner).where(*unfinished, Job.lease_until >= now)
                               .order_by(Job.id).limit(100)).all()
    candidates += [(job_id, holder) for job_id, holder in held if holder_is_dead(holder)]
    for job_id, dead_holder in sorted(candidates):
        with unit_of_work(engine) as session:
            if not take_lease(session, JOB, job_id, owner, lease, dead_holder=dead_holder, status=RUNNING,
                              attempts=JOB.c.attempts + 1, updated_at=now):
                continue
            if dead_holder:
                log.info("job.taken_from_dead_holder", job_id=job_id, holder=dead_holder)
            session.execute(update(JOB).where(JOB.c.id == job_id, JOB.c.started_at.is_(None)).values(started_at=now))
            session.flush()
            job = session.get(Job, job_id)
            session.expunge(job)
        return job
    return None


def copy_input(engine: Engine, job_id: str) -> Path:
    """The job's file copied from its parts to a temporary file (the caller deletes it), a part at a time."""
    target = tempfile.NamedTemporaryFile(prefix=f"sifund-job-{job_id}-", suffix=".input", delete=False)  # noqa: SIM115
    path = Path(target.name)
    try:
        with target, snapshot_session(engine) as session:
            parts = session.execute(select(JobInputPart.data).where(JobInputPart.job_id == job_id)
                                    .order_by(JobInputPart.part_no).execution_options(yield_per=4)).scalars()
            for part in parts:
                target.write(part)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def begin_chunks(engine: Engine, job_id: str, owner: str, total: int | None, lease: timedelta) -> None:
    """The work is open: its total, and where this run's pace is measured from (now, the rows done so far)."""
    now = clock.utc_now()
    with unit_of_work(engine) as session:
        if not renew_lease(session, JOB, job_id, owner, lease, rows_total=total, run_began_at=now,
                           run_began_rows=JOB.c.rows_done, updated_at=now):
            raise LeaseLost(job_id)


def run_chunk(engine: Engine, work: JobWork, job_id: str, owner: str, lease: timedelta, offset: int) -> Step:
    """One chunk and its progress row, one transaction."""
    with unit_of_work(engine) as session:
        step = work.run_chunk(session, offset)
        session.flush()
        progressed = session.execute(
            update(JOB).where(JOB.c.id == job_id, JOB.c.lease_owner == owner, JOB.c.next_offset == offset)
            .values(rows_done=JOB.c.rows_done + step.rows, rows_rejected=JOB.c.rows_rejected + step.rejected,
                    next_offset=step.next_offset, chunks_done=JOB.c.chunks_done + int(bool(step.rows) or not step.finished),
                    updated_at=clock.utc_now(), lease_until=clock.utc_now() + lease,
                    **({"state": json.dumps(step.state, ensure_ascii=False)} if step.state is not None else {})))
        if progressed.rowcount != 1:
            raise LeaseLost(job_id)
    return step


def finish(engine: Engine, job_id: str, owner: str, *, result: dict[str, Any] | None = None,
           work: JobWork | None = None, error_code: str | None = None, error: str | None = None) -> None:
    """Record the outcome (the work's result is read in the same transaction) and free the lease."""
    with unit_of_work(engine) as session:
        if work is not None:
            result = work.result(session)
        status = FAILED if error is not None else SUCCEEDED
        now = clock.utc_now()
        done = release_lease(session, JOB, job_id, owner, status=status, finished_at=now, updated_at=now,
                             result=json.dumps(result, ensure_ascii=False, default=str) if result is not None else None,
                             error_code=error_code, error=error)
        if not done:
            raise LeaseLost(job_id)
        job = session.get(Job, job_id)
        append_audit(session, action=f"job.{status}", entity_type="job", entity_id=job_id, detail={
            "kind": job.kind, "rows_done": job.rows_done, "rows_rejected": job.rows_rejected,
            "attempts": job.attempts, "error_code": error_code, "error": (error or "")[:2000] or None})
        session.flush()


def let_go(engine: Engine, job_id: str, owner: str) -> None:
    """Free the lease of a job left unfinished (shutdown): the next runner resumes it at once."""
    with unit_of_work(engine) as session:
        release_lease(session, JOB, job_id, owner)
        session.flush()


# -- the runner ------------------------------------------------------------------------------------------------------


@dataclass
class JobRunner:
    """Runs a service's jobs (``app.state.jobs``); see the module docstring."""

    app: FastAPI
    kinds: dict[str, JobKind]
    config: JobSettings = field(default_factory=JobSettings)

    def __post_init__(self) -> None:
        self.owner = lease_owner_name()
        self.lease = timedelta(seconds=self.config.lease_seconds)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.current: str | None = None

    @property
    def engine(self) -> Engine:
        return self.app.state.engine

    def kind(self, name: str) -> JobKind:
        return self.kinds[name]

    def submit(self, kind: str, **kwargs: Any) -> tuple[Job, bool]:
        """``submit_job`` for a registered kind (call from a worker thread), then wake the runner."""
        job, created = submit_job(self.engine, self.kinds[kind], **kwargs)
        self.wake()
        return job, created

    def wake(self) -> None:
        loop = getattr(self, "_loop_ref", None)
        if loop is not None:
            loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        self._loop_ref = asyncio.get_running_loop()
        self._stopping.clear()
        self._task = asyncio.create_task(self._loop(), name="job-runner")
        log.info("jobs.started", owner=self.owner, kinds=sorted(self.kinds))

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is None:
            return
        await finish_or_cancel(self._task, self.config.stop_grace_seconds)
        self._task = None

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:  # a job's trouble is recorded on the job; the loop goes on
                job = await anyio.to_thread.run_sync(claim_next, self.engine, list(self.kinds), self.owner, self.lease)
                if job is not None:
                    await self._run(job)
                    continue
            except Exception:  # noqa: BLE001
                log.exception("jobs.loop_error")
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.config.poll_seconds)

    async def _run(self, job: Job) -> None:
        kind = self.kinds[job.kind]
        self.current = job.id
        actor = Actor(id=job.created_by, role=job.created_role, unit=job.created_unit, region=job.created_region,
                      roles=tuple(json.loads(job.created_roles or "[]")))
        heartbeat = asyncio.create_task(self._heartbeat(job.id))
        log.info("job.started", job_id=job.id, kind=job.kind, offset=job.next_offset, attempt=job.attempts)
        try:
            with context.trace(actor=actor, correlation_id=f"job.{job.id}", causation_id=None,
                               request_id=job.request_id):
                await self._run_kind(kind, job)
        except LeaseLost:
            log.warning("job.lease_lost", job_id=job.id)
        except _Stopped:
            pass
        except asyncio.CancelledError:
            with suppress(Exception):
                let_go(self.engine, job.id, self.owner)
            raise
        finally:
            heartbeat.cancel()
            with suppress(asyncio.CancelledError):
                await heartbeat
            self.current = None

    async def _run_kind(self, kind: JobKind, job: Job) -> None:
        engine, owner = self.engine, self.owner
        path: Path | None = None
        try:
            path = await anyio.to_thread.run_sync(copy_input, engine, job.id) if job.file_sha256 else None
            ctx = JobContext(job=job, input=path, params=json.loads(job.params or "{}"), engine=engine,
                             state=self.app.state, chunk_rows=self.config.chunk_rows)
            if kind.run_async is not None:
                result = await kind.run_async(ctx)
                await anyio.to_thread.run_sync(lambda: finish(engine, job.id, owner, result=result))
            else:
                await self._run_chunks(kind, ctx)
        except (LeaseLost, asyncio.CancelledError, _Stopped):
            raise
        except DomainError as exc:
            log.info("job.failed", job_id=job.id, code=exc.code)
            code, message = exc.code, exc.message
            await anyio.to_thread.run_sync(lambda: finish(engine, job.id, owner, error_code=code, error=message))
        except Exception as exc:  # noqa: BLE001 - recorded on the job
            log.exception("job.failed", job_id=job.id)
            text = f"{type(exc).__name__}: {exc}"[:2000]
            await anyio.to_thread.run_sync(lambda: finish(engine, job.id, owner, error_code="JOB_FAILED",
                                                          error=f"任务失败：{text}"))
        finally:
            if path is not None:
                path.unlink(missing_ok=True)

    async def _run_chunks(self, kind: JobKind, ctx: JobContext) -> None:
        engine, owner, job = self.engine, self.owner, ctx.job
        work = await anyio.to_thread.run_sync(kind.open, ctx)
        await anyio.to_thread.run_sync(begin_chunks, engine, job.id, owner, work.total, self.lease)
        offset = job.next_offset
        while True:
            if self._stopping.is_set():
                await anyio.to_thread.run_sync(let_go, engine, job.id, owner)
                log.info("job.paused", job_id=job.id, offset=offset)
                raise _Stopped
            step = await anyio.to_thread.run_sync(run_chunk, engine, work, job.id, owner, self.lease, offset)
            offset = step.next_offset
            if step.finished:
                break
        await anyio.to_thread.run_sync(lambda: finish(engine, job.id, owner, work=work))
        log.info("job.succeeded", job_id=job.id, kind=job.kind)

    async def _heartbeat(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            with suppress(Exception):
                await anyio.to_thread.run_sync(self._renew, job_id)

    def _renew(self, job_id: str) -> None:
        with unit_of_work(self.engine) as session:
            renew_lease(session, JOB, job_id, self.owner, self.lease)
            session.flush()


class _Stopped(Exception):
    """The service is stopping: the job was left between two chunks, its lease freed."""


def job_runner(*kinds: JobKind) -> Callable[[FastAPI], JobRunner]:
    """``ServiceSpec(background=[job_runner(KIND, ...)])``: the runner of a service's kinds, kept in
    ``app.state.jobs``."""

    def create(app: FastAPI) -> JobRunner:
        runner = JobRunner(app, {k.name: k for k in kinds}, app.state.settings.jobs)
        app.state.jobs = runner
        return runner

    return create


async def finish_or_cancel(task: asyncio.Task, grace_seconds: float) -> None:
    """Let a background loop that was asked to stop finish its step (a chunk, a run) for ``grace_seconds``, then
    cancel it."""
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=grace_seconds)
    except TimeoutError:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
