"""services.kernel.keyset: ``keyed_select`` reads the rows of many keys bound as one parameter — the rows
``in_parameter`` finds, each once, whatever keys are unknown — and on SQLite the keys drive the lookups (``json_each``
joined to the key's index, no temporary index of the keys)."""

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

from services.kernel.db import is_sqlite, make_engine, unit_of_work
from services.kernel.keyset import in_parameter, keyed_select, parameter_values

metadata = MetaData()
member = Table("ks_member", metadata, Column("id", String(36), primary_key=True),
               Column("code", String(18), nullable=False, unique=True), Column("fen", Integer, nullable=False))


@pytest.fixture
def engine(database_urls):
    engine = make_engine(database_urls["collection"])
    metadata.create_all(engine)
    with unit_of_work(engine) as session:
        session.execute(insert(member), [{"id": f"m{i:03d}", "code": f"C{i:03d}", "fen": i * 100} for i in range(300)])
    yield engine
    engine.dispose()


def _dialect(engine) -> str:  # noqa: ANN001
    return engine.dialect.name


@pytest.mark.parametrize("key", ["id", "code"])
def test_the_rows_of_the_keys_found_each_once_as_in_parameter_finds_them(engine, key):
    dialect = _dialect(engine)
    column = member.c[key]
    prefix = "C" if key == "code" else "m"
    keys = {f"{prefix}{i:03d}" for i in range(0, 300, 7)} | {"unknown", "中文"}
    statement = keyed_select(dialect, member, column, "keys", member.c.id, member.c.fen)
    expected = select(member.c.id, member.c.fen).where(in_parameter(dialect, column, "keys"))
    with unit_of_work(engine) as session:
        found = session.execute(statement, {"keys": parameter_values(dialect, keys)}).all()
        wanted = session.execute(expected, {"keys": parameter_values(dialect, keys)}).all()
        none = session.execute(statement, {"keys": parameter_values(dialect, set())}).all()
    assert sorted(found) == sorted(wanted)
    assert sorted(found) == [(f"m{i:03d}", i * 100) for i in range(0, 300, 7)]
    assert none == []


def test_on_sqlite_the_keys_drive_one_index_search_each(engine):
    if not is_sqlite(engine):
        pytest.skip("SQLite's plan")
    statement = keyed_select("sqlite", member, member.c.code, "keys", member.c.id)
    sql = str(statement.compile(engine))
    with engine.connect() as connection:
        plan = [row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", ("[]",))]
    assert plan[0].startswith("SCAN") and "VIRTUAL TABLE" in plan[0]
    assert plan[1].startswith("SEARCH ks_member USING") and "(code=?)" in plan[1]
    assert not any("LIST SUBQUERY" in step or "TEMP B-TREE" in step for step in plan)
