"""One transaction owner (services.kernel.db): the request's unit of work commits once, services only flush.

The static check reads every module of the services, the gateway and the launcher; the behavioural tests drive a
real app over ASGI against the backend under test (SQLite, or PostgreSQL with SIFUND_TEST_POSTGRES_URL)."""

import ast
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, func, insert, select
from sqlmodel import Session

from services.kernel.db import keep_writes, make_engine, unit_of_work
from services.kernel.errors import Conflict, install_error_handlers
from services.kernel.service_app import SessionDep

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("services", "gateway", "sifund")
# Who may commit: the unit of work itself, and the outbox relay's own bookkeeping transactions (marking rows
# published, recording a failure, pruning), which belong to no business operation.
ALLOWED = {"services/kernel/db.py", "services/kernel/outbox.py"}


def _commit_calls() -> list[str]:
    found = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative in ALLOWED:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
            for node in ast.walk(tree):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and node.func.attr == "commit"):
                    found.append(f"{relative}:{node.lineno}")
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names = [a.arg for a in (*node.args.args, *node.args.kwonlyargs)]
                    if "commit" in names:
                        found.append(f"{relative}:{node.lineno} (a commit= flag)")
    return found


def test_only_the_unit_of_work_commits():
    """Services flush() when they need ids or constraint checks; the request dependency, the consumer's batch and
    a job's ``unit_of_work`` commit. A commit anywhere else splits one business operation in two."""
    assert _commit_calls() == []


def test_the_scan_finds_a_commit():
    """The check above is not vacuous: the same walk sees a commit call."""
    tree = ast.parse("def f(session):\n    session.add(1)\n    session.commit()\n")
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == "commit"]
    assert len(calls) == 1


# -- behaviour -------------------------------------------------------------------------------------------------------

uow_metadata = MetaData()
parent = Table("uow_parent", uow_metadata, Column("id", Integer, primary_key=True))
# Checked at commit, not at flush: lets a test make the commit itself fail.
child = Table(
    "uow_child", uow_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("parent_id", Integer, ForeignKey("uow_parent.id", deferrable=True, initially="DEFERRED"), nullable=False),
    Column("note", String(40), nullable=False),
)


@pytest.fixture
def engine(database_urls):
    engine = make_engine(database_urls["collection"])
    uow_metadata.create_all(engine)
    with unit_of_work(engine) as session:
        session.execute(insert(parent).values(id=1))
    yield engine
    engine.dispose()


def _children(engine) -> int:  # noqa: ANN001
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(child)).scalar_one()


def _app(engine) -> FastAPI:  # noqa: ANN001
    router = APIRouter()

    @router.post("/ok", status_code=201)
    def ok(session: SessionDep) -> dict:
        session.execute(insert(child).values(parent_id=1, note="ok"))
        return {"stored": True}

    @router.post("/raises-after-flush")
    def raises_after_flush(session: SessionDep) -> dict:
        session.execute(insert(child).values(parent_id=1, note="half"))
        session.flush()
        raise Conflict("TEST_CONFLICT", "测试冲突")

    @router.post("/refusal-on-record")
    def refusal_on_record(session: SessionDep) -> dict:
        session.execute(insert(child).values(parent_id=1, note="refused"))  # e.g. a failed sign-in counted
        raise keep_writes(Conflict("TEST_CONFLICT", "测试冲突"))

    @router.post("/fails-at-commit", status_code=201)
    def fails_at_commit(session: SessionDep) -> dict:
        session.execute(insert(child).values(parent_id=999, note="orphan"))  # the deferred key fails at commit
        session.flush()
        return {"stored": True}

    app = FastAPI()
    app.state.engine = engine
    install_error_handlers(app)
    app.include_router(router)
    return app


async def _post(app: FastAPI, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(path)


async def test_a_successful_request_is_committed(engine):
    response = await _post(_app(engine), "/ok")
    assert response.status_code == 201
    assert _children(engine) == 1


async def test_a_request_that_raises_after_a_flush_stores_nothing(engine):
    response = await _post(_app(engine), "/raises-after-flush")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "TEST_CONFLICT"
    assert _children(engine) == 0


async def test_a_refusal_marked_keep_writes_is_stored_and_answered(engine):
    response = await _post(_app(engine), "/refusal-on-record")
    assert response.status_code == 409
    assert _children(engine) == 1


async def test_a_commit_that_fails_answers_an_error_not_success(engine):
    """The commit runs before the response is sent (a function-scoped dependency): a refused commit is a 5xx, never
    a 201 for a row that is not there."""
    response = await _post(_app(engine), "/fails-at-commit")
    assert response.status_code >= 500
    assert _children(engine) == 0


def test_unit_of_work_commits_on_success_and_rolls_back_on_error(engine):
    with unit_of_work(engine) as session:
        session.execute(insert(child).values(parent_id=1, note="job"))
    assert _children(engine) == 1
    with pytest.raises(RuntimeError), unit_of_work(engine) as session:
        session.execute(insert(child).values(parent_id=1, note="lost"))
        session.flush()
        raise RuntimeError("job failed")
    assert _children(engine) == 1
