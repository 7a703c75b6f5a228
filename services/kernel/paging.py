"""Keyset pagination by one unique key column: the one definition of the "limit + 1, cursor = last key" page.

``newest_first`` orders by ``key DESC`` and, given a cursor, keeps ``key < after``; ``oldest_first`` orders by
``key ASC`` and keeps ``key > after``. Both fetch ``limit + 1`` rows and return the first ``limit`` of them with
the next cursor: the key of the last returned row when there are more, else ``None``. An empty cursor (``None``,
``""``, ``0``) means the first page, as the hand-written versions had it.

By default the query's ORM scalars are returned. With ``rows=True`` the whole rows (tuples) are returned, for
queries selecting an entity plus joined columns or entities; the key is then read from each row's first entity.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session


def _page(session: Session, query: Select, key: InstrumentedAttribute, *, after: Any, limit: int,
          descending: bool, rows: bool) -> tuple[list[Any], Any | None]:
    if after:
        query = query.where(key < after if descending else key > after)
    query = query.order_by(key.desc() if descending else key).limit(limit + 1)
    result = session.execute(query)
    found = list(result.all() if rows else result.scalars())
    if len(found) <= limit:
        return found, None
    last = found[limit - 1][0] if rows else found[limit - 1]
    return found[:limit], getattr(last, key.key)


def newest_first(session: Session, query: Select, key: InstrumentedAttribute, *, after: Any, limit: int,
                 rows: bool = False) -> tuple[list[Any], Any | None]:
    """One page of ``query`` by ``key`` descending, after the cursor ``after``; returns (page, next cursor)."""
    return _page(session, query, key, after=after, limit=limit, descending=True, rows=rows)


def oldest_first(session: Session, query: Select, key: InstrumentedAttribute, *, after: Any, limit: int,
                 rows: bool = False) -> tuple[list[Any], Any | None]:
    """One page of ``query`` by ``key`` ascending, after the cursor ``after``; returns (page, next cursor)."""
    return _page(session, query, key, after=after, limit=limit, descending=False, rows=rows)
