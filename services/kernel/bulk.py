"""Set-based writes for consumers that apply events of many lines: apply sets, not rows.

A handler of a 1 000-line event that does ``session.get`` + ``session.add`` per line pays the ORM's Python for every
line and keeps every row in the identity map until the batch commits. The tools here do the same work with a
handful of Core statements per event, whatever its size:

- ``insert_for``: the dialect's ``INSERT`` (SQLite and PostgreSQL both have ``ON CONFLICT``).
- ``bump``: upsert a list of aggregate rows in one ``executemany`` — existing rows get columns added, overwritten,
  filled where NULL, or kept at their max/min; the statement is built once per shape.
- ``in_parameter`` / ``read``: a lookup of many keys bound as one parameter (not one per key), read on the
  session's connection without the ORM's per-statement machinery.
- ``insert_many`` / ``update_many``: plain inserts, and updates by key, of many rows in one ``executemany``.
- ``RowSet``: the rows of one table an event touches, read with one ``SELECT … WHERE key IN (…)`` (chunked), merged
  in Python in the event's order as plain dicts (so a key repeated within the event sees its own earlier lines,
  exactly as one-row-at-a-time handling would), then written once: new rows with one ``executemany`` ``INSERT``,
  changed rows with one ``executemany`` ``UPDATE … WHERE key = :key`` per set of changed columns. Rows are locked
  as they are read (``FOR UPDATE`` on PostgreSQL; SQLite's writer already holds the database).

Nothing here commits: the caller's unit of work does.
"""

from collections.abc import Hashable, Iterable, Iterator, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import CursorResult, Table, bindparam, case, func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import False_, True_
from sqlmodel import Session

from services.kernel import clock
from services.kernel.binding import column_binders

# In ``keyset`` (``mirror`` looks keys up with them, and ``bulk`` builds on ``mirror``); still ``bulk.in_parameter``
# and ``bulk.parameter_values`` for their callers.
from services.kernel.keyset import in_parameter, parameter_values  # noqa: F401
from services.kernel.mirror import execute_rows

CHUNK = 500  # keys per IN (…): well under SQLite's and PostgreSQL's parameter limits

_INSERTS = {"postgresql": pg_insert, "sqlite": sqlite_insert}


def dialect_of(session: Session) -> str:
    return session.get_bind().dialect.name


def dialect_insert(dialect: str, table: Table) -> Insert:
    """``INSERT`` of ``dialect`` (``sqlite`` or ``postgresql``), with ``on_conflict_do_update`` /
    ``on_conflict_do_nothing``; for statements built once per dialect and cached."""
    return _INSERTS[dialect](table)


def insert_for(session: Session, table: Table) -> Insert:
    """``INSERT`` of the session's dialect, with ``on_conflict_do_update`` / ``on_conflict_do_nothing``."""
    return _INSERTS[dialect_of(session)](table)


def chunks(values: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def table_of(model: Any) -> Table:
    return model if isinstance(model, Table) else model.__table__


def expire_cached(session: Session, model: Any, keys: Iterable[tuple]) -> None:
    """Core statements bypass the ORM: an instance of a row written this way that the session already holds (an
    earlier handler in the same transaction loaded it) would read stale, so it is expired. ``keys``: primary-key
    tuples. Costs nothing while the session holds no instance of ``model``."""
    if isinstance(model, Table):
        return  # nothing mapped to expire
    identity_map = session.identity_map
    held = [key for key in identity_map.keys() if key[0] is model]  # noqa: SIM118 - the map has no cheaper view
    if not held:
        return
    wanted = set(keys)
    for key in held:
        if key[1] in wanted:
            instance = identity_map.get(key)
            if instance is not None:
                session.expire(instance)


# -- lookups of many keys --------------------------------------------------------------------------------------------


def read(session: Session, statement: Any, params: dict[str, Any]) -> CursorResult:
    """A Core read on the session's connection, after flushing what is pending (as the ORM's autoflush would),
    without the ORM's per-statement machinery: plain rows."""
    session.flush()
    return session.connection().execute(statement, params)


# -- aggregate upserts -----------------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _upsert(dialect: str, table: Table, add: tuple[str, ...], overwrite: tuple[str, ...], fill: tuple[str, ...],
            greatest: tuple[str, ...], least: tuple[str, ...]) -> Any:
    """The statement for one kind of bump, built once (building ``excluded`` per call costs more than running it)."""
    stmt = _INSERTS[dialect](table)
    new = stmt.excluded
    updates: dict[str, Any] = {c: table.c[c] + new[c] for c in add}
    updates.update({c: new[c] for c in overwrite})
    updates.update({c: func.coalesce(table.c[c], new[c]) for c in fill})
    updates.update({c: case((table.c[c].is_(None), new[c]), (new[c] > table.c[c], new[c]), else_=table.c[c])
                    for c in greatest})
    updates.update({c: case((table.c[c].is_(None), new[c]), (new[c] < table.c[c], new[c]), else_=table.c[c])
                    for c in least})
    if "updated_at" in table.c:
        updates["updated_at"] = new.updated_at
    keys = [c.name for c in table.primary_key.columns]
    return stmt.on_conflict_do_update(index_elements=keys, set_=updates)


def bump(session: Session, model: Any, rows: Iterable[dict[str, Any]], *, add: Iterable[str] = (),
         overwrite: Iterable[str] = (), fill: Iterable[str] = (), greatest: Iterable[str] = (),
         least: Iterable[str] = ()) -> None:
    """Upsert ``rows`` (each with the primary key and every column a new row needs) in one statement:
    an existing row gets ``add`` columns added, ``overwrite`` columns replaced, ``fill`` columns set only where
    still NULL, ``greatest``/``least`` columns kept at the max/min of both (NULL-aware). ``updated_at`` is set.
    Each key at most once in ``rows`` (sum per cell first)."""
    rows = list(rows)
    if not rows:
        return
    table = table_of(model)
    keys = [c.name for c in table.primary_key.columns]
    if "updated_at" in table.c:
        now = clock.utc_now()
        for row in rows:
            row.setdefault("updated_at", now)
    rows.sort(key=lambda r: tuple(r[k] for k in keys))  # one lock order for concurrent consumers (PostgreSQL)
    stmt = _upsert(dialect_of(session), table, tuple(add), tuple(overwrite), tuple(fill), tuple(greatest),
                   tuple(least))
    execute_rows(session, stmt, rows)  # SQLite: at the driver
    expire_cached(session, model, (tuple(r[k] for k in keys) for r in rows))


# -- read once, merge in Python, write once --------------------------------------------------------------------------


def _server_literal(column: Any) -> Any:
    """A literal server default ("0", ``text("1")``, ``false()``) as the Python value the column would hold."""
    arg = getattr(column.server_default, "arg", None)
    text = arg if isinstance(arg, str) else getattr(arg, "text", None)
    if text is not None:
        return int(text) if text.lstrip("-").isdigit() else text
    if isinstance(arg, (False_, True_)):
        return isinstance(arg, True_)
    return None


def _column_defaults(table: Table) -> dict[str, Any]:
    """What a new row holds in the columns nobody set: the column's scalar default, its literal server default,
    else NULL (every row of an ``executemany`` names every column)."""
    defaults = {}
    for column in table.columns:
        default = column.default
        if default is not None and default.is_scalar:
            defaults[column.name] = default.arg
        elif column.server_default is not None:
            defaults[column.name] = _server_literal(column)
        else:
            defaults[column.name] = None
    return defaults


_DEFAULTS: dict[Table, dict[str, Any]] = {}


def new_row(model: Any, values: dict[str, Any]) -> dict[str, Any]:
    """A complete row for an ``executemany`` insert: ``values`` over the columns' scalar defaults (every row of one
    statement must name the same columns)."""
    table = table_of(model)
    defaults = _DEFAULTS.get(table)
    if defaults is None:
        defaults = _DEFAULTS[table] = _column_defaults(table)
    return {**defaults, **values}


@lru_cache(maxsize=256)
def _plain_insert(table: Table) -> Insert:
    """The table's plain ``INSERT``, built once (``execute_rows`` caches its driver plan per statement)."""
    return table.insert()


class RowSet:
    """The rows of ``model`` with the given keys (values of the single-column primary key, or of ``key`` — a
    unique column or tuple of columns), as dicts. ``get`` a row, change it in place, ``add`` new ones; ``write``
    inserts the new and updates the changed (only the columns that changed)."""

    def __init__(self, session: Session, model: Any, keys: Iterable[Hashable], *,
                 key: str | tuple[str, ...] | None = None):
        self.session = session
        self.model = model
        self.table = table_of(model)
        if key is None:
            (key,) = [c.name for c in self.table.primary_key.columns]
        self.key = key
        self.rows: dict[Hashable, dict[str, Any]] = {}
        self._before: dict[Hashable, dict[str, Any]] = {}
        self._new: list[Hashable] = []
        wanted = sorted(set(keys))
        if wanted:
            self._load(wanted)

    def _key_of(self, row: dict[str, Any]) -> Hashable:
        return tuple(row[k] for k in self.key) if isinstance(self.key, tuple) else row[self.key]

    def _load(self, wanted: list) -> None:
        table = self.table
        column = tuple_(*(table.c[k] for k in self.key)) if isinstance(self.key, tuple) else table.c[self.key]
        locking = dialect_of(self.session) == "postgresql"
        for chunk in chunks(wanted):
            query = select(table).where(column.in_(chunk))
            # session.execute, not the connection: pending ORM changes are flushed first and seen here.
            for row in self.session.execute(query.with_for_update() if locking else query).mappings():
                values = dict(row)
                key = self._key_of(values)
                self.rows[key] = values
                self._before[key] = dict(values)

    def get(self, key: Hashable) -> dict[str, Any] | None:
        return self.rows.get(key)

    def add(self, values: dict[str, Any]) -> dict[str, Any]:
        """A new row: ``values`` over the columns' defaults. Returns the row (the dict ``get`` will return)."""
        row = new_row(self.table, values)
        key = self._key_of(row)
        assert key not in self.rows, f"{self.table.name} {key} exists"
        self.rows[key] = row
        self._new.append(key)
        return row

    def write(self) -> None:
        connection = self.session.connection()
        if self._new:
            # SQLite: at the driver (SQLAlchemy's parameter processing per row cost more than the insert itself).
            execute_rows(self.session, _plain_insert(self.table), [self.rows[k] for k in self._new])
        changed: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for key, before in self._before.items():
            row = self.rows[key]
            columns = tuple(c for c, v in row.items() if before.get(c) != v)
            if columns:
                params = {f"_{c}": row[c] for c in columns}
                params.update({f"_k_{k}": v for k, v in self._where(key).items()})
                changed.setdefault(columns, []).append(params)
        for columns, params in changed.items():
            where = [self.table.c[k] == bindparam(f"_k_{k}") for k in self._where_columns()]
            stmt = update(self.table).where(*where).values({c: bindparam(f"_{c}") for c in columns})
            connection.execute(stmt, params)
        if changed:
            pk = [c.name for c in self.table.primary_key.columns]
            expire_cached(self.session, self.model,
                          (tuple(self.rows[k][c] for c in pk) for k in self._before if self.rows[k] != self._before[k]))
        self._before = {k: dict(self.rows[k]) for k in self.rows}
        self._new = []

    def _where_columns(self) -> tuple[str, ...]:
        return self.key if isinstance(self.key, tuple) else (self.key,)

    def _where(self, key: Hashable) -> dict[str, Any]:
        return dict(zip(self.key, key, strict=True)) if isinstance(self.key, tuple) else {self.key: key}


# -- plain inserts of many rows --------------------------------------------------------------------------------------


def insert_many(session: Session, model: Any, rows: list[dict[str, Any]], *,
                conflict_ignored_on: tuple[str, ...] | None = None) -> None:
    """``INSERT`` every row (all with the keys of the first), ``ON CONFLICT (conflict_ignored_on) DO NOTHING`` when
    given. On SQLite the rows go to the driver's ``executemany`` as tuples, each value bound by its column type's
    own bind processor (timestamps written exactly as SQLAlchemy writes them), without SQLAlchemy's parameter dict and
    processing per row (a third of a large insert's CPU); a value repeated across the rows (the batch's timestamp)
    is bound once. Elsewhere: SQLAlchemy's ``executemany``."""
    if not rows:
        return
    table = table_of(model)
    dialect = session.get_bind().dialect
    names = list(rows[0])
    # Columns left out whose default is Python's to compute: SQLAlchemy's statement fills them, the driver would not.
    computed = [c for c in table.columns if c.name not in names and c.default is not None]
    if dialect.name != "sqlite" or computed:
        statement = _insert_statement(dialect.name, table, conflict_ignored_on)
        if dialect.name == "postgresql":
            execute_rows(session, statement, rows)  # COPY, or the driver's executemany (``postgres_rows``)
        else:
            session.execute(statement, rows)
        return
    quote = dialect.identifier_preparer.quote
    sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
           f"VALUES ({', '.join('?' for _ in names)})")
    if conflict_ignored_on:
        sql += f" ON CONFLICT ({', '.join(quote(n) for n in conflict_ignored_on)}) DO NOTHING"
    session.connection().exec_driver_sql(sql, _driver_rows(dialect, table, names, rows))


@lru_cache(maxsize=256)
def _insert_statement(dialect: str, table: Table, conflict_ignored_on: tuple[str, ...] | None) -> Insert:
    """The ``INSERT`` of ``insert_many``, built once per table (``execute_rows`` caches its plan per statement)."""
    statement = _INSERTS[dialect](table) if dialect in _INSERTS else table.insert()
    if conflict_ignored_on:
        statement = statement.on_conflict_do_nothing(index_elements=list(conflict_ignored_on))
    return statement


def update_many(session: Session, model: Any, rows: list[dict[str, Any]], *, key: str, add: tuple[str, ...] = (),
                overwrite: tuple[str, ...] = ()) -> None:
    """``UPDATE … SET c = c + :c (add), c = :c (overwrite) WHERE key = :key`` once per row (each with ``key`` and
    every column named), in one ``executemany``. On SQLite at the driver, as ``insert_many`` (SQLAlchemy's
    parameter dicts and processing per row cost three times the update itself); elsewhere SQLAlchemy's
    ``executemany``. The ORM's copies of the rows are not expired: the caller does that where it holds some."""
    if not rows:
        return
    table = table_of(model)
    dialect = session.get_bind().dialect
    names = [*add, *overwrite, key]
    if dialect.name != "sqlite":
        values = {c: table.c[c] + bindparam(f"_{c}") for c in add} | {c: bindparam(f"_{c}") for c in overwrite}
        statement = update(table).where(table.c[key] == bindparam(f"_{key}")).values(values)
        session.execute(statement, [{f"_{n}": row[n] for n in names} for row in rows])
        return
    quote = dialect.identifier_preparer.quote
    assignments = [f"{quote(c)} = {quote(c)} + ?" for c in add] + [f"{quote(c)} = ?" for c in overwrite]
    sql = f"UPDATE {quote(table.name)} SET {', '.join(assignments)} WHERE {quote(key)} = ?"
    session.connection().exec_driver_sql(sql, _driver_rows(dialect, table, names, rows))


def _driver_rows(dialect: Any, table: Table, names: list[str], rows: list[dict[str, Any]]) -> list[tuple]:
    processors = column_binders(table, dialect, tuple(names))
    getter = itemgetter(*names)  # a row's values as a tuple, in C
    tuples = [getter(row) for row in rows] if len(names) > 1 else [(getter(row),) for row in rows]
    if not processors:
        return tuples
    last: dict[int, tuple[Any, Any]] = {}  # column index → (value, bound value): a repeated value is bound once
    for position, values in enumerate(tuples):
        changed = None
        for index, process in processors:
            value = values[index]
            if value is None:
                continue
            seen = last.get(index)
            if seen is not None and seen[0] is value:
                bound = seen[1]
            else:
                bound = process(value)
                last[index] = (value, bound)
            if changed is None:
                changed = list(values)
            changed[index] = bound
        if changed is not None:
            tuples[position] = tuple(changed)
    return tuples
