"""Requests never deadlock on the connection pool (services.kernel.db.RequestSessions): many more concurrent
requests than the pool has connections and the thread limiter has tokens are all answered, reads and writes alike.

Without admission, a sync endpoint's session holds its connection while FastAPI waits for a worker thread to
validate the response model, and the worker threads are all held by endpoints waiting for a connection: with a pool
of 2 connections and 200 concurrent requests every request past the first few timed out waiting for the pool."""

import asyncio

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from services.kernel.db import KEPT_SNAPSHOT_CONNECTIONS, RequestSessions, admission_limit, make_engine, unit_of_work
from services.kernel.errors import install_error_handlers
from services.kernel.service_app import SessionDep

CONCURRENT = 200
POOL_SIZE, POOL_OVERFLOW = 2, 0

metadata = MetaData()
note = Table("rs_note", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
             Column("text", String(40), nullable=False))


class NoteOut(BaseModel):
    id: int
    text: str


@pytest.fixture
def engine(database_urls):
    # A pool far smaller than the requests and the thread limiter (40), which a deadlock would exhaust; its timeout
    # turns a deadlock into failed requests instead of a hung test.
    engine = make_engine(database_urls["collection"], pool_size=POOL_SIZE, max_overflow=POOL_OVERFLOW,
                         pool_timeout=10)
    metadata.create_all(engine)
    with unit_of_work(engine) as session:
        # No explicit id: on PostgreSQL an id given by hand leaves the sequence at 1, and the first write collides.
        assert session.execute(insert(note).values(text="first").returning(note.c.id)).scalar_one() == 1
    yield engine
    engine.dispose()


def _app(engine) -> FastAPI:  # noqa: ANN001
    router = APIRouter()

    # Sync endpoints with a response model: FastAPI validates the answer in another worker thread while the session
    # still holds its connection, the sequence that deadlocked.
    @router.get("/notes/{note_id}", response_model=NoteOut)
    def read(note_id: int, session: SessionDep) -> NoteOut:
        row = session.execute(select(note.c.id, note.c.text).where(note.c.id == note_id)).one()
        return NoteOut(id=row.id, text=row.text)

    @router.post("/notes", response_model=NoteOut, status_code=201)
    def write(session: SessionDep) -> NoteOut:
        new_id = session.execute(insert(note).values(text="more").returning(note.c.id)).scalar_one()
        return NoteOut(id=new_id, text="more")

    app = FastAPI()
    app.state.engine = engine
    install_error_handlers(app)
    app.include_router(router)
    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test", timeout=120)


def test_requests_hold_at_most_half_the_pool(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}", pool_size=20, max_overflow=40)
    try:
        assert admission_limit(engine) == 30
        assert RequestSessions(engine).limit == 30
    finally:
        engine.dispose()
    small = make_engine(f"sqlite:///{tmp_path / 'b.db'}", pool_size=1, max_overflow=0)
    try:
        assert admission_limit(small) == 1  # never none at all
    finally:
        small.dispose()


async def test_two_hundred_concurrent_readers_are_all_answered(engine):
    async with _client(_app(engine)) as client:
        responses = await asyncio.gather(*(client.get("/notes/1") for _ in range(CONCURRENT)))
    assert [r.status_code for r in responses] == [200] * CONCURRENT, {r.status_code for r in responses}
    assert {r.json()["text"] for r in responses} == {"first"}


async def test_two_hundred_concurrent_readers_and_writers_are_all_answered_and_every_write_stored(engine):
    writes = CONCURRENT // 4
    async with _client(_app(engine)) as client:
        requests = [client.post("/notes") if k % 4 == 0 else client.get("/notes/1") for k in range(CONCURRENT)]
        responses = await asyncio.gather(*requests)
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == writes and statuses.count(200) == CONCURRENT - writes, set(statuses)
    with unit_of_work(engine) as session:
        assert session.execute(select(func.count()).select_from(note)).scalar_one() == 1 + writes


async def test_sqlite_reads_keep_a_few_connections_outside_any_transaction(tmp_path):
    """A read's snapshot session is bound to a connection the app keeps between requests (no pool check-out and
    check-in per read): never more than a quarter of the pool, none in a transaction between requests (a read
    after a write sees it), all given back by ``close``."""
    engine = make_engine(f"sqlite:///{tmp_path / 'kept.db'}", pool_size=20, max_overflow=40)
    metadata.create_all(engine)
    sessions = RequestSessions(engine)
    try:
        opened = [await sessions.open_snapshot() for _ in range(8)]  # eight concurrent reads
        for session in opened:
            assert session.execute(select(func.count()).select_from(note)).scalar_one() == 0
        for session in opened:
            await sessions.close_snapshot(session)
        assert engine.pool.checkedout() == KEPT_SNAPSHOT_CONNECTIONS
        for text in ("one", "two"):
            with unit_of_work(engine) as writer:
                writer.execute(insert(note).values(text=text))
            reader = await sessions.open_snapshot()
            assert reader.execute(select(func.count()).select_from(note)).scalar_one() == (1 if text == "one" else 2)
            assert not reader.get_bind().closed
            await sessions.close_snapshot(reader)
            assert not reader.get_bind().in_transaction()
        assert engine.pool.checkedout() == KEPT_SNAPSHOT_CONNECTIONS
    finally:
        sessions.close()
        assert engine.pool.checkedout() == 0
        engine.dispose()
    small = RequestSessions(make_engine(f"sqlite:///{tmp_path / 'small.db'}", pool_size=2, max_overflow=0))
    try:
        reader = await small.open_snapshot()
        reader.execute(select(1))
        await small.close_snapshot(reader)
        assert small.engine.pool.checkedout() == 0  # a pool too small to keep any
    finally:
        small.engine.dispose()
