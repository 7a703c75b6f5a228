"""``KeyRead`` (services.kernel.db): a read by key gives the row the Core statement gives, value for value — text,
integers, big integers, booleans, dates, timestamps and NULLs as their column types read them — on SQLite (at the
driver) and on PostgreSQL (the statement itself), inside the session's snapshot; nothing for a missing key; a key
its column would convert before binding is refused up front."""

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import (BigInteger, Boolean, Column, Date, DateTime, Integer, MetaData, String, Table, bindparam, insert,
                        select)

from services.kernel.db import KeyRead, make_engine, snapshot_session, unit_of_work

metadata = MetaData()
employer = Table("kr_employer", metadata, Column("id", String(36), primary_key=True), Column("name", String(100)),
                 Column("fen", BigInteger, nullable=False), Column("risk", Integer), Column("active", Boolean),
                 Column("founded", Date), Column("registered_at", DateTime), Column("updated_at", DateTime(timezone=True)))
ROWS = [
    {"id": "E1", "name": "呼和浩特市某某有限公司", "fen": 9_007_199_254_740_993, "risk": 3, "active": True,
     "founded": date(1999, 12, 31), "registered_at": datetime(2026, 12, 7, 12, 30, 15, 123456),
     "updated_at": datetime(2026, 12, 7, 4, 30, tzinfo=UTC)},
    {"id": "E2", "name": None, "fen": 0, "risk": None, "active": False, "founded": None, "registered_at": None,
     "updated_at": None},
]
BY_ID = KeyRead(select(employer).where(employer.c.id == bindparam("employer_id")))
NAME_BY_RISK = KeyRead(select(employer.c.name.label("who"), employer.c.fen).where(employer.c.risk == bindparam("risk")))


@pytest.fixture
def engine(database_urls):
    engine = make_engine(database_urls["collection"])
    metadata.create_all(engine)
    with unit_of_work(engine) as session:
        session.execute(insert(employer), ROWS)
    yield engine
    metadata.drop_all(engine)
    engine.dispose()


def test_a_key_read_gives_the_statement_s_row(engine) -> None:
    with snapshot_session(engine) as session:
        for row in ROWS:
            expected = session.connection().execute(BY_ID.statement, {"employer_id": row["id"]}).first()
            got = BY_ID.first(session, employer_id=row["id"])
            assert tuple(got) == tuple(expected)
            assert got._asdict() == expected._asdict()
            assert [type(v) for v in got] == [type(v) for v in expected]
            assert got.name == row["name"] and got.fen == row["fen"] and got.founded == row["founded"]
        assert BY_ID.first(session, employer_id="E9") is None
        named = NAME_BY_RISK.first(session, risk=3)
        assert (named.who, named.fen) == ("呼和浩特市某某有限公司", 9_007_199_254_740_993)


def test_a_key_read_sees_the_session_s_snapshot(engine) -> None:
    with snapshot_session(engine) as session:
        assert BY_ID.first(session, employer_id="E3") is None  # the snapshot begins here
        with unit_of_work(engine) as writer:
            writer.execute(insert(employer).values(id="E3", fen=1))
        if engine.dialect.name == "sqlite":  # PostgreSQL's REPEATABLE READ, likewise, in the statement
            assert BY_ID.first(session, employer_id="E3") is None
    with snapshot_session(engine) as session:
        assert BY_ID.first(session, employer_id="E3").fen == 1


def test_a_key_its_column_converts_is_refused(engine) -> None:
    by_day = KeyRead(select(employer.c.id).where(employer.c.founded == bindparam("day")))
    with snapshot_session(engine) as session:
        if engine.dialect.name == "sqlite":
            with pytest.raises(ValueError, match="KeyRead"):
                by_day.first(session, day=date(1999, 12, 31))
        else:
            assert by_day.first(session, day=date(1999, 12, 31)).id == "E1"


ALL_AT_RISK = KeyRead(select(employer).where(employer.c.risk.is_(None) | (employer.c.risk > bindparam("risk")))
                      .order_by(employer.c.id))


def test_all_gives_the_statement_s_rows_in_the_session_s_transaction(engine) -> None:
    with unit_of_work(engine) as session:
        session.execute(insert(employer).values(id="E4", fen=7, risk=5))  # not committed
        expected = session.connection().execute(ALL_AT_RISK.statement, {"risk": 1}).all()
        got = ALL_AT_RISK.all(session, risk=1)
        assert [tuple(r) for r in got] == [tuple(r) for r in expected]
        assert [[type(v) for v in r] for r in got] == [[type(v) for v in r] for r in expected]
        assert [r[0] for r in got] == ["E1", "E2", "E4"]
        assert [r[0] for r in ALL_AT_RISK.all(session, risk=99)] == ["E2"]  # risk NULL
        session.rollback()
