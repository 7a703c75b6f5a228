"""services.kernel.paging: keyset pages by one key, newest or oldest first, and pages sorted by a key the client
chooses (SortKeys), against a real SQLite file."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import DateTime, Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from services.kernel.errors import Invalid
from services.kernel.paging import SortKeys, newest_first, oldest_first


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


# -- SortKeys: a key the client chooses, the id as tie-breaker ---------------------------------------------------------


class Dated(Base):
    __tablename__ = "paging_dated"
    id: Mapped[str] = mapped_column(String(8), primary_key=True)
    colour: Mapped[str] = mapped_column(String(8))
    seen_at: Mapped[datetime] = mapped_column(DateTime)
    size: Mapped[int] = mapped_column(Integer)


SORTING = SortKeys(Dated.id, descending_by_default=True, colour=Dated.colour, seen_at=Dated.seen_at, size=Dated.size)


def fill_dated(session):
    """Nine rows whose colours, times and sizes tie in threes: the id orders each tie."""
    base = datetime(2026, 3, 1, 8, 0, 0, 123456)
    session.add_all(Dated(id=f"d{k}", colour=("red", "blue", "green")[k % 3], seen_at=base + timedelta(hours=k // 3),
                          size=k % 3) for k in range(9))
    session.commit()


def walk(session, sort, limit=2):
    """Every row, page by page, with the cursors handed back as a client does."""
    shown, cursor = [], None
    while True:
        rows, cursor = SORTING.page(session, select(Dated), sort=sort, after=cursor, limit=limit)
        shown += [r.id for r in rows]
        if cursor is None:
            return shown


def test_sorted_pages_are_stable_with_the_id_as_tie_breaker(session):
    fill_dated(session)
    assert walk(session, "colour") == ["d1", "d4", "d7", "d2", "d5", "d8", "d0", "d3", "d6"]
    assert walk(session, "-colour") == ["d6", "d3", "d0", "d8", "d5", "d2", "d7", "d4", "d1"]
    assert walk(session, "seen_at", limit=4) == [f"d{k}" for k in range(9)]
    assert walk(session, "-seen_at", limit=1) == [f"d{k}" for k in reversed(range(9))]
    assert walk(session, "size", limit=3) == ["d0", "d3", "d6", "d1", "d4", "d7", "d2", "d5", "d8"]
    assert walk(session, None, limit=4) == [f"d{k}" for k in reversed(range(9))]  # the list's own order


def test_without_a_sort_the_cursor_is_the_id_as_before(session):
    fill_dated(session)
    rows, cursor = SORTING.page(session, select(Dated), sort=None, after=None, limit=2)
    assert [r.id for r in rows] == ["d8", "d7"] and cursor == "d7"


def test_an_unknown_key_and_a_foreign_cursor_are_refused_with_stable_codes(session):
    fill_dated(session)
    with pytest.raises(Invalid) as refused:
        SORTING.page(session, select(Dated), sort="-price", after=None, limit=2)
    assert refused.value.code == "SORT_KEY_UNKNOWN" and refused.value.details == {
        "allowed": ["colour", "seen_at", "size"]}
    assert "price" in refused.value.message and "colour" in refused.value.message
    for cursor in ("d7", "not base64 !", "x" * 500):
        with pytest.raises(Invalid) as refused:
            SORTING.page(session, select(Dated), sort="seen_at", after=cursor, limit=2)
        assert refused.value.code == "SORT_CURSOR_INVALID"
