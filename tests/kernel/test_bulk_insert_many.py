"""``bulk.insert_many`` (the SQLite driver path: tuples, bind processors applied once per distinct value) stores
exactly what SQLAlchemy's own ``executemany`` stores, on the backend under test, and ignores conflicts only where
asked to; ``bulk.update_many`` changes exactly what SQLAlchemy's own ``UPDATE … executemany`` changes."""

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError, StatementError
from sqlmodel import Session

from services.accounts import models
from services.accounts.models import AccountEntry, ContributionMonth, IndividualAccount, Person
from services.kernel.bulk import insert_many, update_many
from services.kernel.db import make_engine
from services.kernel.migrations import upgrade_database


def engine_for(url: str):  # noqa: ANN201
    engine = make_engine(url)
    upgrade_database(engine, "accounts", models.metadata)
    return engine


def rows_of(engine, model, order) -> list[tuple]:  # noqa: ANN001
    with Session(engine) as session:
        return [tuple(r) for r in session.execute(select(*model.__table__.c).order_by(order)).all()]


def sample(now: datetime) -> dict[type, list[dict]]:
    persons = [{"id": f"p{i}", "citizen_id": f"11010519491231{i:03d}X", "name": f"人{i}", "sex": "F",
                "birth_date": date(1949, 12, 31), "nationality": "CHN", "region": "150102", "life_status": "alive",
                "death_date": date(2020, 1, i + 1) if i % 2 else None, "registered_at": now,
                "registered_by": "u1", "version": 1} for i in range(5)]
    # One timestamp shared by every row (bound once) and one per row (bound each time), naive and aware.
    entries = [{"id": f"e{i}", "person_id": f"p{i}", "entry_type": "contribution", "amount_fen": 100 * i + 1,
                "year": 2025, "period": 202501 + i, "idempotency_key": f"posting:{i}", "reference": None,
                "reason": "缴费", "posted_at": now if i % 2 else now + timedelta(microseconds=i), "posted_by": "u1"}
               for i in range(5)]
    months = [{"person_id": f"p{i}", "fund": "PEN_EMP", "period": 202501, "employer_id": None, "source": "posting",
               "recorded_at": now} for i in range(5)]
    accounts = [{"person_id": f"p{i}", "balance_fen": 0, "opened_at": now} for i in range(5)]  # status, version: defaults
    return {Person: persons, IndividualAccount: accounts, AccountEntry: entries, ContributionMonth: months}


# One timestamp in UTC with microseconds, one in China time: both must be stored as SQLAlchemy stores them.
TIMES = pytest.mark.parametrize("now", [datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC),
                                        datetime(2026, 3, 1, 16, 30, tzinfo=timezone(timedelta(hours=8)))])


@pytest.fixture
def fast_and_core(tmp_path, database_urls):  # noqa: ANN001, ANN201
    """Two migrated accounts databases of the backend under test: one written by bulk, one by SQLAlchemy."""
    fast = engine_for(database_urls["accounts"])
    core = engine_for(f"sqlite:///{tmp_path / 'core.db'}") if database_urls["accounts"].startswith("sqlite") \
        else engine_for(database_urls["benefits"])
    yield fast, core
    fast.dispose()
    core.dispose()


@TIMES
def test_the_driver_path_stores_what_sqlalchemy_stores(fast_and_core, now):
    fast, core = fast_and_core
    data = sample(now)
    with Session(fast) as session:
        for model, rows in data.items():
            insert_many(session, model, rows)
        session.commit()
    with Session(core) as session:
        for model, rows in data.items():
            session.execute(insert(model.__table__), rows)
        session.commit()
    for model, order in ((Person, Person.id), (AccountEntry, AccountEntry.id),
                         (ContributionMonth, ContributionMonth.person_id),
                         (IndividualAccount, IndividualAccount.person_id)):
        stored = rows_of(fast, model, order)
        assert stored == rows_of(core, model, order), model.__name__
        assert len(stored) == 5
    assert {r[2] for r in rows_of(fast, IndividualAccount, IndividualAccount.person_id)} == {"open"}


def test_conflicts_are_ignored_only_where_asked(database_urls):
    engine = engine_for(database_urls["accounts"])
    now = datetime(2026, 3, 1, tzinfo=UTC)
    try:
        data = sample(now)
        with Session(engine) as session:
            insert_many(session, Person, data[Person])
            insert_many(session, IndividualAccount, data[IndividualAccount])
            insert_many(session, ContributionMonth, data[ContributionMonth])
            again = [{**m, "employer_id": "other"} for m in data[ContributionMonth]]
            insert_many(session, ContributionMonth, again, conflict_ignored_on=("person_id", "fund", "period"))
            session.commit()
        months = rows_of(engine, ContributionMonth, ContributionMonth.person_id)
        assert len(months) == 5 and all(m[4] is None for m in months)  # the first rows stay
        with Session(engine) as session, pytest.raises(IntegrityError):
            insert_many(session, ContributionMonth, again)
        insert_many(Session(engine), ContributionMonth, [])  # nothing to write: no statement
    finally:
        engine.dispose()


def test_a_naive_timestamp_is_refused_as_sqlalchemy_refuses_it(database_urls):
    engine = engine_for(database_urls["accounts"])
    try:
        data = sample(datetime(2026, 3, 1, tzinfo=UTC))
        with Session(engine) as session:
            insert_many(session, Person, data[Person])
            naive = [{**m, "recorded_at": datetime(2026, 3, 1)} for m in data[ContributionMonth]]
            with pytest.raises((ValueError, StatementError), match="timezone"):
                insert_many(session, ContributionMonth, naive)
    finally:
        engine.dispose()


@TIMES
def test_update_many_changes_what_sqlalchemy_changes(fast_and_core, now):
    fast, core = fast_and_core
    # Balances added to (one negative), versions bumped by several, the stamp overwritten; p4 left alone.
    changes = [{"person_id": f"p{i}", "balance_fen": 250 * i - 300, "version": i + 1, "updated_at": now}
               for i in range(4)]
    for engine in (fast, core):
        with Session(engine) as session:
            data = sample(now)
            insert_many(session, Person, data[Person])
            insert_many(session, IndividualAccount, [{**a, "balance_fen": 1000} for a in data[IndividualAccount]])
            session.commit()
    with Session(fast) as session:
        update_many(session, IndividualAccount, changes, key="person_id", add=("balance_fen", "version"),
                    overwrite=("updated_at",))
        update_many(session, IndividualAccount, [], key="person_id", add=("balance_fen",))  # no statement
        session.commit()
    table = IndividualAccount.__table__
    with Session(core) as session:
        session.execute(update(table).where(table.c.person_id == bindparam("k")).values(
            balance_fen=table.c.balance_fen + bindparam("b"), version=table.c.version + bindparam("v"),
            updated_at=bindparam("u")),
            [{"k": c["person_id"], "b": c["balance_fen"], "v": c["version"], "u": c["updated_at"]} for c in changes])
        session.commit()
    stored = rows_of(fast, IndividualAccount, IndividualAccount.person_id)
    assert stored == rows_of(core, IndividualAccount, IndividualAccount.person_id)
    assert [(r[0], r[1], r[5]) for r in stored] == [("p0", 700, 2), ("p1", 950, 3), ("p2", 1200, 4),
                                                    ("p3", 1450, 5), ("p4", 1000, 1)]
    assert stored[4][4] is None and all(r[4] is not None for r in stored[:4])
