"""services.kernel.paging: keyset pages by one key, newest or oldest first, against a real SQLite file."""

import pytest
from sqlalchemy import String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from services.kernel.paging import newest_first, oldest_first


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "paging_item"
    id: Mapped[str] = mapped_column(String(8), primary_key=True)
    colour: Mapped[str] = mapped_column(String(8))


@pytest.fixture
def session(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'paging.db'}")
    Base.metadata.create_all(engine)
    with Session(engine) as s:
        yield s
    engine.dispose()


def fill(session, n, colour="red"):
    session.add_all(Item(id=f"i{k:02d}", colour=colour) for k in range(n))
    session.commit()


def ids(rows):
    return [r.id for r in rows]


def test_empty(session):
    assert newest_first(session, select(Item), Item.id, after=None, limit=3) == ([], None)
    assert oldest_first(session, select(Item), Item.id, after=None, limit=3) == ([], None)


def test_exact_page_has_no_next_cursor(session):
    fill(session, 3)
    rows, cursor = newest_first(session, select(Item), Item.id, after=None, limit=3)
    assert ids(rows) == ["i02", "i01", "i00"] and cursor is None
    rows, cursor = oldest_first(session, select(Item), Item.id, after=None, limit=3)
    assert ids(rows) == ["i00", "i01", "i02"] and cursor is None


def test_more_than_a_page_and_continuation_descending(session):
    fill(session, 7)
    rows, cursor = newest_first(session, select(Item), Item.id, after=None, limit=3)
    assert ids(rows) == ["i06", "i05", "i04"] and cursor == "i04"
    rows, cursor = newest_first(session, select(Item), Item.id, after=cursor, limit=3)
    assert ids(rows) == ["i03", "i02", "i01"] and cursor == "i01"
    rows, cursor = newest_first(session, select(Item), Item.id, after=cursor, limit=3)
    assert ids(rows) == ["i00"] and cursor is None


def test_more_than_a_page_and_continuation_ascending(session):
    fill(session, 7)
    rows, cursor = oldest_first(session, select(Item), Item.id, after=None, limit=3)
    assert ids(rows) == ["i00", "i01", "i02"] and cursor == "i02"
    rows, cursor = oldest_first(session, select(Item), Item.id, after=cursor, limit=3)
    assert ids(rows) == ["i03", "i04", "i05"] and cursor == "i05"
    rows, cursor = oldest_first(session, select(Item), Item.id, after=cursor, limit=3)
    assert ids(rows) == ["i06"] and cursor is None


def test_filters_of_the_query_are_kept_and_empty_cursor_is_the_first_page(session):
    fill(session, 4)
    session.add(Item(id="j00", colour="blue"))
    session.commit()
    query = select(Item).where(Item.colour == "red")
    rows, cursor = newest_first(session, query, Item.id, after="", limit=10)
    assert ids(rows) == ["i03", "i02", "i01", "i00"] and cursor is None


def test_rows_variant_returns_tuples_and_reads_the_cursor_from_the_first_entity(session):
    fill(session, 5)
    query = select(Item, Item.colour.label("c"))
    rows, cursor = oldest_first(session, query, Item.id, after=None, limit=2, rows=True)
    assert [(r.id, c) for r, c in rows] == [("i00", "red"), ("i01", "red")] and cursor == "i01"
    rows, cursor = newest_first(session, query, Item.id, after="i03", limit=2, rows=True)
    assert [r.id for r, _ in rows] == ["i02", "i01"] and cursor == "i01"
    rows, cursor = newest_first(session, query, Item.id, after=cursor, limit=2, rows=True)
    assert [r.id for r, _ in rows] == ["i00"] and cursor is None
