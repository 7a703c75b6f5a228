"""Keyset pagination by one unique key column: the one definition of the "limit + 1, cursor = last key" page.

``newest_first`` orders by ``key DESC`` and, given a cursor, keeps ``key < after``; ``oldest_first`` orders by
``key ASC`` and keeps ``key > after``. Both fetch ``limit + 1`` rows and return the first ``limit`` of them with
the next cursor: the key of the last returned row when there are more, else ``None``. An empty cursor (``None``,
``""``, ``0``) means the first page, as the hand-written versions had it.

By default the query's ORM scalars are returned. With ``rows=True`` the whole rows (tuples) are returned, for
queries selecting an entity plus joined columns or entities; the key is then read from each row's first entity.

``SortKeys`` is the one mechanism for a list the client sorts (``?sort=key`` or ``?sort=-key``): the keys a list
admits, a stable order with the id as tie-breaker, a cursor that carries the sort key's value, and 422
``SORT_KEY_UNKNOWN`` for a key the list does not admit.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Query

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from services.kernel.errors import Invalid


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


# -- sorting by a column the client chooses ---------------------------------------------------------------------------

CURSOR_MAX = 400  # a sorted list's cursor: the sort key's value and the id, base64
SORT_PATTERN = r"^-?[a-z][a-z_]{0,39}$"  # the ``sort`` query parameter: a key, ``-`` first for descending
SORT_DESCRIPTION = ("sort key (one of the list's keys; ``-`` first for descending); the list's own order when absent. "
                    "Ties are ordered by the id, the same way. An unknown key: 422 SORT_KEY_UNKNOWN naming the "
                    "allowed ones. The next page's cursor belongs to the sort it was given with.")


class SortKeys:
    """The sort keys one list admits, each a column (not nullable: a NULL compares as nothing in the cursor's
    condition), and the list's unique id as the tie-breaker: the order is (key, id), both ascending or both
    descending, so it is total and stable, and a page's cursor is the last row's (key value, id) — opaque text, which
    the client hands back unchanged as ``after``.

    ``page(..., sort=None)`` is the list's own order by id (``descending_by_default``) and cursor, exactly as
    ``newest_first``/``oldest_first`` give it: clients that never sort see nothing change."""

    def __init__(self, tie_breaker: InstrumentedAttribute, *, descending_by_default: bool,
                 **keys: InstrumentedAttribute):
        self.id = tie_breaker
        self.descending_by_default = descending_by_default
        self.keys = keys

    def allowed(self) -> list[str]:
        return sorted(self.keys)

    def page(self, session: Session, query: Select, *, sort: str | None, after: Any, limit: int,
             rows: bool = False) -> tuple[list[Any], Any | None]:
        if not sort:
            return _page(session, query, self.id, after=after, limit=limit, descending=self.descending_by_default,
                         rows=rows)
        name, descending = sort.removeprefix("-"), sort.startswith("-")
        column = self.keys.get(name)
        if column is None:
            raise Invalid("SORT_KEY_UNKNOWN", f"不支持按“{name}”排序，可用的排序字段：{'、'.join(self.allowed())}",
                          details={"allowed": self.allowed()})
        if after:
            value, last_id = _read_cursor(after)
            before, same = (column < value, self.id < last_id) if descending else (column > value, self.id > last_id)
            query = query.where(or_(before, and_(column == value, same)))
        order = (column.desc(), self.id.desc()) if descending else (column, self.id)
        result = session.execute(query.order_by(*order).limit(limit + 1))
        found = list(result.all() if rows else result.scalars())
        if len(found) <= limit:
            return found, None
        last = found[limit - 1][0] if rows else found[limit - 1]
        return found[:limit], _cursor(getattr(last, column.key), getattr(last, self.id.key))


# The cursor says how its value reads back: the column's own type is not always known to Python (AutoString).
_READERS: dict[str, Any] = {"t": datetime.fromisoformat, "d": date.fromisoformat, "i": int, "s": str,
                            "n": Decimal}


def _cursor(value: Any, last_id: Any) -> str:
    if isinstance(value, datetime):
        tagged = ["t", value.isoformat()]
    elif isinstance(value, date):
        tagged = ["d", value.isoformat()]
    elif isinstance(value, int):
        tagged = ["i", value]
    elif isinstance(value, Decimal):
        tagged = ["n", str(value)]
    else:
        tagged = ["s", str(value)]
    raw = json.dumps([*tagged, last_id], ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[Any, Any]:
    try:
        if len(cursor) > CURSOR_MAX:
            raise ValueError(cursor)
        tag, value, last_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        return _READERS[tag](value), last_id
    except (ValueError, TypeError, KeyError, ArithmeticError, binascii.Error, UnicodeDecodeError):
        raise Invalid("SORT_CURSOR_INVALID", "分页游标无效：请从第一页重新查询（游标须与排序方式一同使用）") from None


SortQuery = Annotated[str | None, Query(pattern=SORT_PATTERN, description=SORT_DESCRIPTION)]
