"""``read_by_key`` (services.kernel.service_app): an ``async def`` endpoint's read by key runs on the event loop only
where it cannot wait — a SQLite snapshot session — and in a worker thread everywhere else (a unit of work, which may
wait for SQLite's write lock; PostgreSQL, where a statement is a round trip)."""

import threading

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlmodel import Session

from services.kernel.db import is_sqlite, make_engine, never_waits, unit_of_work
from services.kernel.errors import NotFound, install_error_handlers
from services.kernel.service_app import SessionDep, WriteSessionDep, read_by_key

metadata = MetaData()
note = Table("rbk_note", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
             Column("text", String(40), nullable=False))


@pytest.fixture
def engine(database_urls):
    engine = make_engine(database_urls["collection"])
    metadata.create_all(engine)
    with unit_of_work(engine) as session:
        session.execute(insert(note).values(text="first"))
    yield engine
    engine.dispose()


def _read_note(session: Session, note_id: int) -> dict:
    row = session.execute(select(note.c.id, note.c.text).where(note.c.id == note_id)).one_or_none()
    if row is None:
        raise NotFound("NOTE_NOT_FOUND", "记录不存在")
    return {"id": row.id, "text": row.text, "thread": threading.get_ident()}


def _app(engine) -> FastAPI:  # noqa: ANN001
    router = APIRouter()

    @router.get("/notes/{note_id}")
    async def read(note_id: int, session: SessionDep) -> dict:
        return {**await read_by_key(session, _read_note, session, note_id), "loop": threading.get_ident()}

    @router.get("/written-notes/{note_id}")
    async def read_in_unit_of_work(note_id: int, session: WriteSessionDep) -> dict:
        return {**await read_by_key(session, _read_note, session, note_id), "loop": threading.get_ident()}

    app = FastAPI()
    app.state.engine = engine
    install_error_handlers(app)
    app.include_router(router)
    return app


async def _get(engine, path: str) -> httpx.Response:  # noqa: ANN001
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(engine)), base_url="http://test") as client:
        return await client.get(path)


async def test_a_snapshot_read_runs_on_the_loop_on_sqlite_only(engine):
    answer = await _get(engine, "/notes/1")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["id"], body["text"]) == (1, "first")
    assert (body["thread"] == body["loop"]) is is_sqlite(engine)


async def test_a_unit_of_work_reads_in_a_worker_thread(engine):
    body = (await _get(engine, "/written-notes/1")).json()
    assert body["text"] == "first"
    assert body["thread"] != body["loop"]


async def test_a_missing_row_is_the_read_s_own_error(engine):
    answer = await _get(engine, "/notes/99")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "NOTE_NOT_FOUND"


def test_only_a_sqlite_snapshot_never_waits(engine):
    from services.kernel.db import snapshot_session  # noqa: PLC0415

    with snapshot_session(engine) as snapshot:
        assert never_waits(snapshot) is is_sqlite(engine)
    with unit_of_work(engine) as work:
        assert never_waits(work) is False
