"""SQLite's writers of one process queue in ``db.WriterQueue`` before their ``BEGIN IMMEDIATE`` (not in SQLite's
sleeping busy handler): every write transaction still runs alone, and the queue is let go however the transaction
ends — commit, rollback, an error, an abandoned or invalidated connection — so no writer is ever left waiting."""

import threading

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, select, text, update

from services.kernel.db import make_engine, snapshot_session, unit_of_work

metadata = MetaData()
COUNTER = Table("counter", metadata, Column("id", String, primary_key=True), Column("value", Integer))


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    metadata.create_all(engine)
    with unit_of_work(engine) as session:
        session.execute(COUNTER.insert().values(id="c", value=0))
    yield engine
    engine.dispose()


def value(engine) -> int:  # noqa: ANN001
    with snapshot_session(engine) as session:
        return session.execute(select(COUNTER.c.value)).scalar_one()


def writers(engine):  # noqa: ANN001, ANN201
    return engine._sifund_writers  # noqa: SLF001


def test_concurrent_read_then_write_transactions_run_one_at_a_time(engine):
    def bump(times: int) -> None:
        for _ in range(times):
            with unit_of_work(engine) as session:
                current = session.execute(select(COUNTER.c.value)).scalar_one()
                session.execute(update(COUNTER).values(value=current + 1))

    threads = [threading.Thread(target=bump, args=(25,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert value(engine) == 200  # no lost update: each read-then-write ran alone
    assert not writers(engine).busy()


def test_a_rolled_back_or_failed_transaction_lets_the_next_writer_in(engine):
    with pytest.raises(RuntimeError):
        with unit_of_work(engine) as session:
            session.execute(update(COUNTER).values(value=5))
            raise RuntimeError("refused")
    assert not writers(engine).busy()
    with pytest.raises(Exception, match="no such table"):
        with unit_of_work(engine) as session:
            session.execute(text("INSERT INTO missing VALUES (1)"))
    assert not writers(engine).busy()
    with unit_of_work(engine) as session:
        session.execute(update(COUNTER).values(value=7))
    assert value(engine) == 7


def test_an_abandoned_or_invalidated_connection_lets_the_next_writer_in(engine):
    connection = engine.connect()
    connection.begin()
    connection.execute(update(COUNTER).values(value=3))
    assert writers(engine).busy()
    connection.close()  # never committed: rolled back as it goes back to the pool
    assert not writers(engine).busy() and value(engine) == 0

    connection = engine.connect()
    connection.begin()
    connection.execute(update(COUNTER).values(value=4))
    connection.invalidate()
    assert not writers(engine).busy()
    with unit_of_work(engine) as session:
        session.execute(update(COUNTER).values(value=9))
    assert value(engine) == 9


def test_readers_never_queue_behind_a_writer(engine):
    with unit_of_work(engine) as session:
        session.execute(update(COUNTER).values(value=1))
        assert writers(engine).busy()
        assert value(engine) == 0  # a snapshot reads the last commit while the writer holds the queue
    assert value(engine) == 1 and not writers(engine).busy()


def test_a_second_engine_on_the_same_file_meets_the_writer_at_sqlites_lock(engine, tmp_path):
    other = make_engine(f"sqlite:///{tmp_path / 'w.db'}")  # as a replica or the CLI would: another queue
    try:
        def write_from_the_other() -> None:
            with unit_of_work(other) as session:
                session.execute(update(COUNTER).values(value=COUNTER.c.value + 10))

        with unit_of_work(engine) as session:
            session.execute(update(COUNTER).values(value=COUNTER.c.value + 1))
            thread = threading.Thread(target=write_from_the_other)
            thread.start()  # its BEGIN IMMEDIATE waits at SQLite's lock until this commits
        thread.join()
        assert value(engine) == 11
    finally:
        other.dispose()
