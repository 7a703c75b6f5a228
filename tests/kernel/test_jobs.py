"""The kernel job mechanism on a real database (SQLite, or PostgreSQL under infra/postgres/run-tests.sh): idempotent
submission per file, chunks whose progress commits with their writes, resumption after a crash without duplicates
or gaps, one runner per job (lease), failures reported with their reason, jobs readable only by their creator or
the kind's readers."""

import asyncio
import json
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select, update
from sqlmodel import Session

from services.kernel import clock, context, jobs
from services.kernel.context import Actor
from services.kernel.db import make_engine
from services.kernel.errors import Invalid, NotFound
from services.kernel.jobs import JobKind, JobRunner, Step, read_job, submit_job
from services.kernel.models import Job, JobInputPart, kernel_metadata
from services.kernel.settings_sections import JobSettings

toy_metadata = MetaData()
ROWS = Table("toy_row", toy_metadata, Column("line_no", Integer, primary_key=True), Column("value", String(50)))
CHUNK = 100
CLERK = Actor(id="clerk.wang", role="agency_clerk", roles=("agency_clerk",), region="150100")


class Crash(BaseException):
    """The process dies here (not an error the runner could record)."""


class ToyWork:
    """Stores each line of the file as a row, CHUNK lines per chunk; a line 'bad' is rejected, 'boom' refuses the
    whole job."""

    def __init__(self, ctx: jobs.JobContext):
        self.lines = ctx.input_bytes().decode().splitlines()
        self.total = len(self.lines)
        self.crash_in_chunk: int | None = ctx.params.get("crash_in_chunk")
        self.chunks = 0

    def run_chunk(self, session: Session, offset: int) -> Step:
        part = self.lines[offset:offset + CHUNK]
        if not part:
            return Step(0, 0, offset, True)
        good = [{"line_no": offset + i, "value": v} for i, v in enumerate(part) if v != "bad"]
        if "boom" in part:
            raise Invalid("TOY_LINE_REFUSED", f"第 {offset + part.index('boom') + 1} 行无法处理")
        session.execute(insert(ROWS), good)
        self.chunks += 1
        if self.chunks == CRASH_AT.get("chunk"):
            raise Crash("inside the chunk, before its commit")
        return Step(len(part), len(part) - len(good), offset + len(part), False)

    def result(self, session: Session) -> dict:
        return {"stored": session.execute(select(func.count()).select_from(ROWS)).scalar_one()}


CRASH_AT: dict[str, int] = {}
TOY = JobKind(name="toy.lines", submitters=frozenset({"agency_clerk"}), readers=frozenset({"internal_auditor"}),
              open=ToyWork)


@pytest.fixture
def engine(database_urls):
    engine = make_engine(database_urls["accounts"])
    kernel_metadata.create_all(engine)
    toy_metadata.create_all(engine)
    CRASH_AT.clear()
    yield engine
    engine.dispose()


def runner(engine, **config) -> JobRunner:  # noqa: ANN001
    app = SimpleNamespace(state=SimpleNamespace(engine=engine))
    settings = JobSettings(**{"lease_seconds": 30.0, "poll_seconds": 0.05, **config})
    return JobRunner(app, {TOY.name: TOY}, settings)  # type: ignore[arg-type]


def lines(n: int, *, bad: set[int] = frozenset(), boom: int | None = None) -> bytes:
    out = ["bad" if i in bad else ("boom" if i == boom else f"v{i}") for i in range(n)]
    return "\n".join(out).encode()


def submit(engine, data: bytes | Path, actor: Actor = CLERK, **kwargs):  # noqa: ANN001, ANN201
    with context.trace(actor=actor):
        return submit_job(engine, TOY, data=data, filename="toy.txt", **kwargs)


def job_row(engine, job_id: str) -> Job:  # noqa: ANN001
    with Session(engine, expire_on_commit=False) as session:
        return session.get(Job, job_id)


async def until(condition, timeout: float = 60.0):  # noqa: ANN001, ANN201
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = await asyncio.to_thread(condition)
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def run_to_success(engine, job_id: str) -> Job:  # noqa: ANN001
    """A runner started, the job run until it succeeded (its row then), the runner stopped."""
    worker = runner(engine)
    await worker.start()
    try:
        return await until(lambda: (row := job_row(engine, job_id)).status == "succeeded" and row)
    finally:
        await worker.stop()


def stored(engine) -> list[int]:  # noqa: ANN001
    with Session(engine) as session:
        return list(session.execute(select(ROWS.c.line_no).order_by(ROWS.c.line_no)).scalars())


async def test_the_same_file_again_is_the_same_job_and_another_key_a_new_one(engine):
    data = lines(10)
    first, created = submit(engine, data)
    again, created_again = submit(engine, data)
    assert created and not created_again and again.id == first.id
    assert first.file_sha256 == jobs.file_sha256(data) and first.status == "queued"
    keyed, _ = submit(engine, data, idempotency_key="rerun-1")
    keyed_again, created_keyed_again = submit(engine, data, idempotency_key="rerun-1")
    assert keyed.id != first.id and keyed_again.id == keyed.id and not created_keyed_again
    other_params, _ = submit(engine, data, params={"mode": "other"})
    assert other_params.id not in (first.id, keyed.id)


async def test_a_job_runs_in_chunks_with_progress_and_reports_its_result(engine):
    job, _ = submit(engine, lines(450, bad={7, 300}))
    done = await run_to_success(engine, job.id)
    assert (done.rows_total, done.rows_done, done.rows_rejected, done.next_offset) == (450, 450, 2, 450)
    assert done.chunks_done == 5 and done.attempts == 1 and done.lease_owner is None
    assert json.loads(done.result) == {"stored": 448}
    assert stored(engine) == [i for i in range(450) if i not in (7, 300)]
    out = jobs.job_out(done)
    assert out.percent == 100.0 and out.eta_seconds == 0.0


async def test_a_file_on_disk_is_stored_in_parts_and_the_run_reads_it_back_whole(engine, tmp_path, monkeypatch):
    """A city's file is never whole in memory: it is hashed and stored a part at a time, copied back to a temporary
    file for the run (deleted after it), and is the same job as the same bytes handed over in memory."""
    monkeypatch.setattr(jobs, "INPUT_PART_BYTES", 64)
    data = lines(450, bad={7})
    path = tmp_path / "toy.txt"
    path.write_bytes(data)
    job, _ = submit(engine, path)
    assert (job.file_sha256, job.file_bytes) == (jobs.file_sha256(data), len(data))
    same, created = submit(engine, data)
    assert same.id == job.id and not created
    with Session(engine) as session:
        parts = session.execute(select(JobInputPart.part_no, JobInputPart.data).where(JobInputPart.job_id == job.id)
                                .order_by(JobInputPart.part_no)).all()
    assert [n for n, _ in parts] == list(range(-(-len(data) // 64))) and b"".join(p for _, p in parts) == data
    copies: list = []
    real_copy = jobs.copy_input
    monkeypatch.setattr(jobs, "copy_input", lambda *a: copies.append(real_copy(*a)) or copies[-1])
    done = await run_to_success(engine, job.id)
    assert (done.rows_done, done.rows_rejected) == (450, 1) and stored(engine) == [i for i in range(450) if i != 7]
    assert len(copies) == 1 and not copies[0].exists()


async def test_a_crash_after_a_committed_chunk_resumes_exactly_after_it(engine, monkeypatch):
    job, _ = submit(engine, lines(1000))
    real = jobs.run_chunk
    committed = {"n": 0}

    def crash_after_third_commit(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        step = real(*args, **kwargs)
        committed["n"] += 1
        if committed["n"] == 3:
            raise Crash("after the third commit")
        return step

    monkeypatch.setattr(jobs, "run_chunk", crash_after_third_commit)
    first = runner(engine, lease_seconds=0.5)
    claimed = jobs.claim_next(engine, [TOY.name], first.owner, first.lease)
    with pytest.raises(Crash):
        await first._run(claimed)
    left = job_row(engine, job.id)
    assert (left.status, left.next_offset, left.rows_done, left.lease_owner) == ("running", 300, 300, first.owner)
    assert stored(engine) == list(range(300))
    monkeypatch.setattr(jobs, "run_chunk", real)

    restarted = runner(engine, lease_seconds=0.5)  # another process: waits for the dead one's lease to run out
    await restarted.start()
    try:
        done = await until(lambda: (row := job_row(engine, job.id)).status == "succeeded" and row)
    finally:
        await restarted.stop()
    assert stored(engine) == list(range(1000))  # every line exactly once: no duplicate, no gap
    assert (done.rows_done, done.next_offset, done.attempts, done.chunks_done) == (1000, 1000, 2, 10)


async def test_a_crash_inside_a_chunk_rolls_it_back_and_the_resumed_job_redoes_only_it(engine):
    CRASH_AT["chunk"] = 4
    job, _ = submit(engine, lines(700, bad={650}))
    first = runner(engine, lease_seconds=0.5)
    claimed = jobs.claim_next(engine, [TOY.name], first.owner, first.lease)
    with pytest.raises(Crash):
        await first._run(claimed)
    assert stored(engine) == list(range(300))  # the fourth chunk's rows went with its transaction
    assert job_row(engine, job.id).next_offset == 300
    CRASH_AT.clear()
    restarted = runner(engine, lease_seconds=0.5)
    await restarted.start()
    try:
        done = await until(lambda: (row := job_row(engine, job.id)).status == "succeeded" and row)
    finally:
        await restarted.stop()
    assert stored(engine) == [i for i in range(700) if i != 650]
    assert (done.rows_done, done.rows_rejected) == (700, 1)


async def test_a_failing_job_reports_failed_with_its_reason_and_keeps_earlier_chunks(engine):
    job, _ = submit(engine, lines(350, boom=234))
    worker = runner(engine)
    await worker.start()
    try:
        done = await until(lambda: (row := job_row(engine, job.id)).status == "failed" and row)
    finally:
        await worker.stop()
    assert done.error_code == "TOY_LINE_REFUSED" and done.error == "第 235 行无法处理"
    assert (done.rows_done, done.next_offset, done.lease_owner) == (200, 200, None)
    assert stored(engine) == list(range(200))
    assert jobs.job_out(done).status == "failed"


async def test_two_runners_never_run_the_same_job(engine):
    job, _ = submit(engine, lines(5))
    a, b = runner(engine), runner(engine)
    assert jobs.claim_next(engine, [TOY.name], a.owner, a.lease).id == job.id
    assert jobs.claim_next(engine, [TOY.name], b.owner, b.lease) is None  # the lease is held
    work = ToyWork(jobs.JobContext(job=job, input=lines(5), params={}, engine=engine, state=None))
    with pytest.raises(jobs.LeaseLost):
        jobs.run_chunk(engine, work, job.id, b.owner, b.lease, 0)
    assert stored(engine) == []  # b's chunk was rolled back


async def test_only_the_creator_or_a_reader_of_the_kind_sees_a_job(engine):
    job, _ = submit(engine, lines(3))
    kinds = {TOY.name: TOY}
    with context.trace(actor=CLERK):
        assert read_job(engine, job.id, kinds).id == job.id
    other_clerk = Actor(id="clerk.zhao", role="agency_clerk", roles=("agency_clerk",))
    with context.trace(actor=other_clerk), pytest.raises(NotFound) as refused:
        read_job(engine, job.id, kinds)
    assert refused.value.code == "JOB_NOT_FOUND"
    with context.trace(actor=other_clerk):
        assert jobs.list_jobs(engine, kinds, kind=None, status=None, after=None, limit=10)[0] == []
    auditor = Actor(id="audit.li", role="internal_auditor", roles=("internal_auditor",))
    with context.trace(actor=auditor):
        assert read_job(engine, job.id, kinds).id == job.id
        assert [j.id for j in jobs.list_jobs(engine, kinds, kind=TOY.name, status=None, after=None, limit=10)[0]] \
            == [job.id]


def _held_by(engine, job_id: str, holder: str) -> None:  # noqa: ANN001
    """The job as a runner left it mid-way: running, its lease held by ``holder`` for an hour yet."""
    with Session(engine) as session, session.begin():
        session.execute(update(Job.__table__).where(Job.__table__.c.id == job_id).values(
            status="running", attempts=1, lease_owner=holder, lease_until=clock.utc_now() + timedelta(hours=1)))


def _holder(pid: int, machine: str | None = None) -> str:
    return f"{socket.gethostname()}:{pid}:0badc0de:{machine or jobs.MACHINE}"


@pytest.mark.skipif(jobs.MACHINE is None, reason="a holder's liveness is seen through Linux's /proc")
async def test_a_job_held_by_a_dead_process_of_this_machine_is_taken_at_once_never_one_of_a_live_holder(engine):
    """A service killed and restarted resumes its job at start-up rather than a lease later: its predecessor ran on
    this machine and is gone. A live process, another machine (or container), or this very process keeps it."""
    job, _ = submit(engine, lines(250))
    taker = runner(engine)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        for holder in (_holder(live.pid), _holder(4_000_000, machine="0123456789ab.4026531836"),
                       runner(engine).owner, f"elsewhere:{4_000_000}:0badc0de"):
            _held_by(engine, job.id, holder)
            assert jobs.claim_next(engine, [TOY.name], taker.owner, taker.lease) is None, holder
        live.kill()  # killed, not reaped yet: a zombie is dead too
        await until(lambda: jobs.holder_is_dead(_holder(live.pid)))
        _held_by(engine, job.id, _holder(live.pid))
        claimed = jobs.claim_next(engine, [TOY.name], taker.owner, taker.lease)
    finally:
        live.kill()
        live.wait()
    assert claimed is not None and claimed.id == job.id and claimed.lease_owner == taker.owner
    assert claimed.attempts == 2
    await taker._run(claimed)
    done = job_row(engine, job.id)
    assert (done.status, done.rows_done, done.attempts) == ("succeeded", 250, 2)
    assert stored(engine) == list(range(250))

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # exited and reaped: no such process
    assert jobs.holder_is_dead(_holder(gone.pid))
    assert not jobs.holder_is_dead(taker.owner) and not jobs.holder_is_dead(None)


def test_the_eta_is_the_pace_of_this_run_s_chunks_not_of_the_opening_nor_of_a_time_the_job_lay_dead():
    now = clock.utc_now()
    job = Job(id="j", kind=TOY.name, dedup_key="k", status="running", created_by="c", params="{}", rows_total=1000,
              rows_done=400, started_at=now - timedelta(seconds=100), run_began_at=now - timedelta(seconds=41),
              run_began_rows=0, updated_at=now - timedelta(seconds=1))
    # 400 rows in the 40 s since the file was open (not the 60 s spent counting it): 0.1 s a row, 600 rows left,
    # one second of which has passed since the last chunk.
    assert jobs.eta_seconds(job) == pytest.approx(59.0, abs=0.5)
    # Resumed after lying dead for an hour: 100 rows in this run's 10 s, 400 left.
    job.started_at, job.run_began_at = now - timedelta(hours=1), now - timedelta(seconds=10)
    job.rows_done, job.run_began_rows, job.updated_at = 600, 500, now
    assert jobs.eta_seconds(job) == pytest.approx(40.0, abs=0.5)
    job.rows_done = 500  # no chunk of this run committed yet: unknown, not a guess
    assert jobs.eta_seconds(job) is None
    job.status = "succeeded"
    assert jobs.eta_seconds(job) == 0.0
