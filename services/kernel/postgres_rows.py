"""Many rows to PostgreSQL at the driver, for ``execute_rows`` and ``insert_many``.

SQLAlchemy's ``executemany`` on psycopg builds and processes a parameter dict per row, then psycopg sends one
statement per row (pipelined): ~15 µs of the service's CPU per row for a ten-column insert, and as much again in the
server, one parse-bind-execute per row. Two cheaper ways, each taken only where it writes exactly what Core writes:

- a plain ``INSERT`` (no ``ON CONFLICT``, no ``RETURNING``, every row naming the same columns, no column left to a
  Python-side default) goes as ``COPY … FROM STDIN``: one statement, rows streamed in PostgreSQL's text format
  (~3.5 µs per row here, a quarter of the server's work). Columns the rows leave out get their server defaults, as
  with ``INSERT``;
- an ``INSERT … ON CONFLICT`` (an upsert, an insert that skips what is there) goes as one statement too:
  ``INSERT … SELECT … FROM json_to_recordset(:rows) … ON CONFLICT …``, the rows one JSON parameter (msgspec, one C
  call) that the server reads as a set: one parse, one plan, one execution instead of one per row (a month's ledger
  and mirror upserts: ~1.5 µs per row in the service instead of ~10, and a fifth of the server's work). Rows go in
  their order (the callers' lock order). Taken only when the rows' column types read back from JSON as they were
  bound (text, numbers, booleans, dates, timestamps; JSON columns as their serialised text), and, for ``DO
  UPDATE``, when no two rows have the same conflict key (PostgreSQL refuses to update a row twice in one statement,
  where the row by row upsert updates it again);
- any other ``INSERT … ON CONFLICT`` is compiled once for the rows' columns and its rows handed to psycopg's
  ``executemany`` as the dicts they already are (~10 µs per row: no SQLAlchemy processing per row).

Either way each value is bound by its column type's bind processor first (JSON columns serialised as SQLAlchemy
serialises them), and a driver error reaches the caller as SQLAlchemy's exception (``IntegrityError`` …), as from
Core.
"""

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import (ARRAY, JSON, Boolean, Date, DateTime, Enum, Integer, Numeric, String, Text, TypeDecorator, bindparam,
                        cast, column, func, select)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.dialects.postgresql.dml import OnConflictDoUpdate
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

from services.kernel.binding import column_binders
from services.kernel.keyset import json_text


class CopyPlan(NamedTuple):
    table: Any
    names: tuple[str, ...]  # the rows' keys, in the statement's column order
    values: Any  # a row dict → its values in that order


class ManyPlan(NamedTuple):
    sql: str
    constants: dict[str, Any]  # the statement's own parameters (a literal of the conflict clause)
    processors: tuple[tuple[str, Any], ...]
    set_sql: str | None = None  # the same as one statement over a JSON array of the rows (``ROWS``), if it can be
    conflict_key: Callable[[dict[str, Any]], Any] | None = None  # DO UPDATE: the key no two rows may share


ROWS = "_sifund_rows"


@lru_cache(maxsize=128)
def plan_for(statement: Any, dialect: Any, row_keys: tuple[str, ...]) -> CopyPlan | ManyPlan | None:
    """How rows with ``row_keys`` go to the driver; None: the Core way (``RETURNING``, an ``INSERT … SELECT``,
    a column the rows leave to a Python-side default, a parameter name psycopg would need escaped)."""
    if not isinstance(statement, Insert) or getattr(statement, "_returning", ()) or statement.select is not None:
        return None
    compiled = statement.compile(dialect=dialect, column_keys=list(row_keys))
    if compiled.escaped_bind_names or compiled.positiontup:
        return None
    table = statement.table
    names = list(compiled.binds)
    if not set(row_keys) <= set(names) or any(n not in row_keys and n in table.c for n in names):
        return None
    constants = {n: compiled.binds[n].effective_value for n in names if n not in row_keys}
    if statement._post_values_clause is None and not constants and not statement._values:
        getter = itemgetter(*row_keys)
        return CopyPlan(table=table, names=row_keys,
                        values=getter if len(row_keys) > 1 else (lambda row: (getter(row),)))
    set_sql, conflict_key = _set_statement(statement, dialect, row_keys)
    return ManyPlan(sql=compiled.string, constants=constants,
                    processors=tuple((row_keys[i], process) for i, process in column_binders(table, dialect, row_keys)),
                    set_sql=set_sql, conflict_key=conflict_key)


def _set_statement(statement: Insert, dialect: Any, row_keys: tuple[str, ...]) -> tuple[str | None, Any]:
    """``statement`` (an ``INSERT … ON CONFLICT``) as ``INSERT … SELECT … FROM json_to_recordset(:rows)`` with the
    same conflict clause, and for ``DO UPDATE`` its conflict key getter; (None, None) when the rows cannot go as one
    set (a column type JSON would not carry back, a conflict named by constraint)."""
    conflict = statement._post_values_clause  # noqa: SLF001
    if conflict is None or statement._values:  # noqa: SLF001
        return None, None
    table = statement.table
    read_as = [_read_as(table.c[key].type, dialect) for key in row_keys]
    if None in read_as:
        return None, None
    conflict_key = None
    if isinstance(conflict, OnConflictDoUpdate):
        targets = [getattr(target, "key", target) for target in conflict.inferred_target_elements or ()]
        if conflict.constraint_target is not None or not targets or not set(targets) <= set(row_keys):
            return None, None
        conflict_key = itemgetter(*targets)
    rows = func.json_to_recordset(cast(bindparam(ROWS, type_=String), JSON)).table_valued(
        *(column(key, field_type) for key, (field_type, _) in zip(row_keys, read_as, strict=True))
    ).render_derived(name="row", with_types=True)
    values = [cast(rows.c[key], back) if back is not None else rows.c[key]
              for key, (_, back) in zip(row_keys, read_as, strict=True)]
    one = insert(table).from_select(list(row_keys), select(*values))
    one._post_values_clause = conflict  # noqa: SLF001
    compiled = one.compile(dialect=dialect)
    if compiled.escaped_bind_names or compiled.positiontup:
        return None, None
    return compiled.string, conflict_key


def _read_as(sql_type: Any, dialect: Any) -> tuple[Any, Any] | None:
    """How a column's bound values are read back from the rows' JSON: (the record field's type, the type to cast
    it to or None), None if they cannot be. Text as unbounded text (the insert's assignment checks a length, as
    with a parameter); timestamps as ``timestamptz`` (a naive one read in the session's zone, an aware one at its
    offset, then assigned as a parameter of that type would be); JSON as its serialised text, cast back."""
    base = sql_type.load_dialect_impl(dialect) if isinstance(sql_type, TypeDecorator) else sql_type
    if isinstance(base, JSON | JSONB):
        return Text(), sql_type
    if isinstance(base, Enum | ARRAY):
        return None
    if isinstance(base, String):
        return Text(), None
    if isinstance(base, DateTime):
        return DateTime(timezone=True), None
    if isinstance(base, Integer | Boolean | Date | Numeric):  # Float is a Numeric
        return base, None
    return None


def write(connection: Any, plan: CopyPlan | ManyPlan, rows: list[dict[str, Any]]) -> None:
    """``rows`` to the driver on ``connection`` (a SQLAlchemy ``Connection``, in its transaction) as ``plan`` says."""
    if isinstance(plan, CopyPlan):
        copy_tuples(connection, plan.table, plan.names, map(plan.values, rows))
        return
    if plan.set_sql is not None and (plan.conflict_key is None or _distinct(plan.conflict_key, rows)):
        bound = [_bound_dict(row, plan.processors) for row in rows] if plan.processors else rows
        try:
            encoded = json_text(bound)  # dates, timestamps, decimals as ISO text: the record fields' types read them
        except (TypeError, ValueError, OverflowError):  # a value JSON does not carry (bytes …): row by row
            encoded = None
        if encoded is not None:
            connection.exec_driver_sql(plan.set_sql, {**plan.constants, ROWS: encoded})
            return
    if plan.constants or plan.processors:
        rows = [{**_bound_dict(row, plan.processors), **plan.constants} for row in rows]
    connection.exec_driver_sql(plan.sql, rows)


def _distinct(key: Callable[[dict[str, Any]], Any], rows: list[dict[str, Any]]) -> bool:
    return len({key(row) for row in rows}) == len(rows)


def copy_tuples(connection: Any, table: Any, names: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``INSERT`` of ``rows`` (values in ``names``' order; the other columns get their server defaults) into
    ``table`` as one ``COPY … FROM STDIN`` on ``connection`` (a SQLAlchemy ``Connection``, in its transaction)."""
    dialect = connection.dialect
    sql, processors = _copy_statement(table, tuple(names), dialect)
    dbapi = dialect.loaded_dbapi
    try:
        # Listeners (tracing, tests) see the COPY as a statement, as SQLAlchemy's own execute shows its statements.
        listened = connection._has_events or connection.engine._has_events  # noqa: SLF001
        with connection.connection.dbapi_connection.cursor() as cursor:
            if listened:
                connection.dispatch.before_cursor_execute(connection, cursor, sql, (), None, True)
            _copy(cursor, sql, processors, rows)
            if listened:
                connection.dispatch.after_cursor_execute(connection, cursor, sql, (), None, True)
    except dbapi.Error as error:
        raise DBAPIError.instance(sql, None, error, dbapi.Error, dialect=dialect) from error


def _copy(cursor: Any, sql: str, processors: tuple[tuple[int, Any], ...], rows: Iterable[Sequence[Any]]) -> None:
    with cursor.copy(sql) as copy:
        for values in rows:
            if processors:
                values = list(values)
                for index, process in processors:
                    if values[index] is not None:
                        values[index] = process(values[index])
            copy.write_row(values)


@lru_cache(maxsize=128)
def _copy_statement(table: Any, names: tuple[str, ...], dialect: Any) -> tuple[str, tuple[tuple[int, Any], ...]]:
    quote = dialect.identifier_preparer.quote
    sql = f"COPY {quote(table.name)} ({', '.join(quote(table.c[n].name) for n in names)}) FROM STDIN"
    return sql, column_binders(table, dialect, names)


def _bound_dict(row: dict[str, Any], processors: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    bound = dict(row)
    for key, process in processors:
        if bound[key] is not None:
            bound[key] = process(bound[key])
    return bound
