"""Keyset pagination by one unique key column: the one definition of the "limit + 1, cursor = last key" page.

``newest_first`` orders by ``key DESC`` and, given a cursor, keeps ``key < after``; ``oldest_first`` orders by
``key ASC`` and keeps ``key > after``. Both fetch ``limit + 1`` rows (ORM scalars) and return the first ``limit``
of them with the next cursor: the key of the last returned row when there are more, else ``None``. An empty
cursor (``None``, ``""``, ``0``) means the first page, as the hand-written versions had it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session


def _page(session: Session, query: Select, key: InstrumentedAttribute, *, after: Any, limit: int,
          descending: bool) -> tuple[list[Any], Any | None]:
    if after:
        query = query.where(key < after if descending else key > after)
    query = query.order_by(key.desc() if descending else key).limit(limit + 1)
    rows = list(session.execute(query).scalars())
    next_cursor = getattr(rows[limit - 1], key.key) if len(rows) > limit else None
    return rows[:limit], next_cursor


def newest_first(session: Session, query: Select, key: InstrumentedAttribute, *, after: Any,
                 limit: int) -> tuple[list[Any], Any | None]:
    """One page of ``query`` by ``key`` descending, after the cursor ``after``; returns (rows, next cursor)."""
    return _page(session, query, key, after=after, limit=limit, descending=True)


def oldest_first(session: Session, query: Select, key: InstrumentedAttribute, *, after: Any,
                 limit: int) -> tuple[list[Any], Any | None]:
    """One page of ``query`` by ``key`` ascending, after the cursor ``after``; returns (rows, next cursor)."""
    return _page(session, query, key, after=after, limit=limit, descending=False)
