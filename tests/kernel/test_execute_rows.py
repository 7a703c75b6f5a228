"""``kernel.mirror.execute_rows`` hands a statement's rows to SQLite's driver as tuples: the rows it writes are
exactly those SQLAlchemy's ``executemany`` writes (timestamps and dates bound as their column types bind them,
NULLs, a constant of the conflict clause), and a statement it cannot take (``RETURNING``) goes the Core way."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import JSON, BigInteger, Column, Date, DateTime, Integer, MetaData, String, Table, select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError, IntegrityError
from sqlmodel import Session

from services.kernel.bulk import dialect_insert
from services.kernel import postgres_rows
from services.kernel.db import make_engine, unit_of_work
from services.kernel.mirror import _driver_plan, execute_rows

metadata = MetaData()
CELLS = Table("cells", metadata, Column("id", String, primary_key=True), Column("status", String),
              Column("fen", BigInteger, nullable=False), Column("on_day", Date), Column("at", DateTime),
              Column("n", Integer))
DEFAULTS = Table("defaults", metadata, Column("id", String, primary_key=True), Column("fen", Integer, default=7),
                 Column("note", String, server_default="none"), Column("at", DateTime))


def upsert():  # noqa: ANN201
    stmt = sqlite_insert(CELLS)
    return stmt.on_conflict_do_update(index_elements=["id"], set_={
        "status": stmt.excluded.status, "fen": CELLS.c.fen + stmt.excluded.fen, "at": stmt.excluded.at,
        "n": CELLS.c.n + 1}, where=CELLS.c.status != "final")


def rows(round_: int) -> list[dict]:
    at = datetime(2026, 10, 12, 8, 30, 15, 123456, tzinfo=UTC)
    return [{"id": f"c{i}", "status": "final" if i % 5 == 0 and round_ else "open", "fen": 100 * i + round_,
             "on_day": date(2026, 10, 1 + i % 28) if i % 3 else None, "at": at if i % 4 else None, "n": 0}
            for i in range(60)]


def written(url: str, write) -> list[tuple]:  # noqa: ANN001
    engine = make_engine(url)
    metadata.create_all(engine)
    statement = upsert()
    for round_ in range(3):  # inserts, then conflicts (the WHERE literal keeps the "final" rows)
        with unit_of_work(engine) as session:
            write(session, statement, rows(round_))
    with Session(engine) as session:
        raw = session.connection().exec_driver_sql("SELECT * FROM cells ORDER BY id").all()
        typed = session.execute(select(CELLS).order_by(CELLS.c.id)).all()
    engine.dispose()
    return [tuple(r) for r in raw] + [tuple(r) for r in typed]


def test_the_driver_path_writes_what_core_writes(tmp_path):
    assert _driver_plan(upsert(), make_engine(f"sqlite:///{tmp_path}/x.db").dialect, tuple(rows(0)[0])) is not None
    fast = written(f"sqlite:///{tmp_path}/fast.db", execute_rows)
    core = written(f"sqlite:///{tmp_path}/core.db",
                   lambda session, statement, values: session.connection().execute(statement, values))
    assert fast == core
    assert any(r[1] == "final" for r in fast) and any(r[4] is None for r in fast)


def test_a_statement_with_returning_goes_the_core_way(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/r.db")
    metadata.create_all(engine)
    statement = sqlite_insert(CELLS).on_conflict_do_nothing(index_elements=["id"]).returning(CELLS.c.id)
    assert _driver_plan(statement, engine.dialect, tuple(rows(0)[0])) is None
    with unit_of_work(engine) as session:
        execute_rows(session, statement, rows(0)[:3])
        execute_rows(session, statement, [])
    with Session(engine) as session:
        assert session.execute(select(CELLS.c.id).order_by(CELLS.c.id)).scalars().all() == ["c0", "c1", "c2"]
    engine.dispose()


def test_rows_leaving_columns_out_get_their_defaults_either_way(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/d.db")
    metadata.create_all(engine)
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    with unit_of_work(engine) as session:
        execute_rows(session, sqlite_insert(DEFAULTS), [{"id": "a", "at": at}, {"id": "b", "at": None}])  # Core
        execute_rows(session, sqlite_insert(DEFAULTS), [{"id": "c", "fen": 1, "at": at}])  # the driver
        session.connection().execute(sqlite_insert(DEFAULTS), [{"id": "d", "fen": 1, "at": at}])
    with Session(engine) as session:
        got = session.connection().exec_driver_sql("SELECT * FROM defaults ORDER BY id").all()
    assert [tuple(r) for r in got][:2] == [("a", 7, "none", got[3][3]), ("b", 7, "none", None)]
    assert tuple(got[2]) == ("c", 1, "none", got[3][3]) and got[3][1:] == (1, "none", got[3][3])
    assert _driver_plan(sqlite_insert(DEFAULTS), engine.dialect, ("id", "at")) is None  # fen's Python default
    assert _driver_plan(sqlite_insert(DEFAULTS), engine.dialect, ("id", "fen", "at")) is not None
    engine.dispose()


# -- on the backend under test (``make test-postgres``: COPY for a plain insert, the driver's executemany for an
# upsert; on SQLite the tuples path) ----------------------------------------------------------------------------------


def backend_upsert(dialect: str):  # noqa: ANN201
    stmt = dialect_insert(dialect, CELLS)
    return stmt.on_conflict_do_update(index_elements=["id"], set_={
        "status": stmt.excluded.status, "fen": CELLS.c.fen + stmt.excluded.fen, "at": stmt.excluded.at,
        "n": CELLS.c.n + 1}, where=CELLS.c.status != "final")


def written_on(url: str, write) -> list[tuple]:  # noqa: ANN001
    engine = make_engine(url)
    metadata.create_all(engine)
    upsert_statement = backend_upsert(engine.dialect.name)
    plain = dialect_insert(engine.dialect.name, DEFAULTS)
    at = datetime(2026, 10, 12, 8, 30, 15, 123456, tzinfo=UTC)
    for round_ in range(3):
        with unit_of_work(engine) as session:
            write(session, upsert_statement, rows(round_))
            write(session, plain, [{"id": f"d{round_}-{i}", "fen": i, "note": "甲\t\\N\n'" if i % 2 else None,
                                    "at": at if i % 3 else None} for i in range(7)])
    with Session(engine) as session:
        written_rows = [tuple(r) for r in session.execute(select(CELLS).order_by(CELLS.c.id)).all()]
        written_rows += [tuple(r) for r in session.execute(select(DEFAULTS).order_by(DEFAULTS.c.id)).all()]
    metadata.drop_all(engine)
    engine.dispose()
    return written_rows


def test_on_the_backend_under_test_the_driver_writes_what_core_writes(database_urls):
    fast = written_on(database_urls["accounts"], execute_rows)
    core = written_on(database_urls["benefits"],
                      lambda session, statement, values: session.connection().execute(statement, values))
    assert fast == core and len(fast) == 60 + 21
    assert any(r[1] == "final" for r in fast) and any(r[2] == "甲\t\\N\n'" for r in fast)


def test_on_the_backend_under_test_a_duplicate_is_sqlalchemys_integrity_error(database_urls):
    engine = make_engine(database_urls["accounts"])
    metadata.create_all(engine)
    plain = dialect_insert(engine.dialect.name, DEFAULTS)
    with pytest.raises(IntegrityError):
        with unit_of_work(engine) as session:
            execute_rows(session, plain, [{"id": "same", "fen": 1}, {"id": "same", "fen": 2}])
    with Session(engine) as session:
        assert session.execute(select(DEFAULTS)).all() == []  # nothing of the failed unit of work
    metadata.drop_all(engine)
    engine.dispose()


DOCS = Table("docs", metadata, Column("id", String, primary_key=True), Column("body", JSON),
             Column("tag", String(3)), Column("fen", BigInteger), Column("at", DateTime(timezone=True)))


def written_docs(url: str, write) -> list[tuple]:  # noqa: ANN001
    """Upserts whose rows repeat a key within one call (PostgreSQL's one-statement upsert cannot update a row twice:
    they go row by row), inserts that skip what is there with a key twice in one call, and a JSON column."""
    engine = make_engine(url)
    metadata.create_all(engine)
    stmt = dialect_insert(engine.dialect.name, DOCS)
    upsert = stmt.on_conflict_do_update(index_elements=["id"], set_={
        "body": stmt.excluded.body, "fen": DOCS.c.fen + stmt.excluded.fen, "tag": stmt.excluded.tag})
    skip = dialect_insert(engine.dialect.name, DOCS).on_conflict_do_nothing(index_elements=["id"])
    at = datetime(2026, 10, 12, 8, 30, 15, 123456, tzinfo=UTC)
    body = {"甲": [1, 2.5, None], "b": {"c": "\\N\t'"}}
    with unit_of_work(engine) as session:
        write(session, upsert, [{"id": f"k{i}", "body": body if i % 2 else None, "tag": "ab", "fen": i, "at": at}
                                for i in range(5)])
        write(session, upsert, [{"id": "k1", "body": {"n": 1}, "tag": "x", "fen": 10, "at": at},
                                {"id": "k1", "body": {"n": 2}, "tag": "y", "fen": 100, "at": at}])
        write(session, upsert, [{"id": "k2", "body": [1], "tag": "z", "fen": 7, "at": None},
                                {"id": "k9", "body": "text", "tag": "w", "fen": 9, "at": at}])
        write(session, skip, [{"id": "k3", "body": None, "tag": "no", "fen": 0, "at": at},
                              {"id": "s1", "body": None, "tag": "s1", "fen": 1, "at": at},
                              {"id": "s1", "body": None, "tag": "s2", "fen": 2, "at": at}])
    with Session(engine) as session:
        got = [tuple(r) for r in session.execute(select(DOCS).order_by(DOCS.c.id)).all()]
    if write is execute_rows:
        keys = ("id", "body", "tag", "fen", "at")
        assert postgres_rows.plan_for(upsert, engine.dialect, keys).set_sql is not None  # one statement per set
        assert postgres_rows.plan_for(skip, engine.dialect, keys).set_sql is not None
        with pytest.raises(DataError):  # too long for String(3): refused as a parameter would be
            with unit_of_work(engine) as session:
                write(session, skip, [{"id": "long", "body": None, "tag": "abcd", "fen": 0, "at": at}])
    metadata.drop_all(engine)
    engine.dispose()
    return got


def test_on_postgresql_upserts_of_a_set_write_what_core_writes(database_urls):
    if not database_urls["accounts"].startswith("postgresql"):
        pytest.skip("PostgreSQL's one-statement upsert (make test-postgres)")
    fast = written_docs(database_urls["accounts"], execute_rows)
    core = written_docs(database_urls["benefits"],
                        lambda session, statement, values: session.connection().execute(statement, values))
    assert fast == core
    assert [r[:4] for r in fast if r[0] in ("k1", "k2", "s1")] == [
        ("k1", {"n": 2}, "y", 111), ("k2", [1], "z", 9), ("s1", None, "s1", 1)]
