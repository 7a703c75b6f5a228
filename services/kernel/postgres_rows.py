"""Many rows to PostgreSQL at the driver, for ``execute_rows`` and ``insert_many``.

SQLAlchemy's ``executemany`` on psycopg builds and processes a parameter dict per row, then psycopg sends one
statement per row (pipelined): ~15 µs of the service's CPU per row for a ten-column insert, and as much again in the
server, one parse-bind-execute per row. Two cheaper ways, each taken only where it writes exactly what Core writes:

- a plain ``INSERT`` (no ``ON CONFLICT``, no ``RETURNING``, every row naming the same columns, no column left to a
  Python-side default) goes as ``COPY … FROM STDIN``: one statement, rows streamed in PostgreSQL's text format
  (~3.5 µs per row here, a quarter of the server's work). Columns the rows leave out get their server defaults, as
  with ``INSERT``;
- any other ``INSERT … ON CONFLICT`` is compiled once for the rows' columns and its rows handed to psycopg's
  ``executemany`` as the dicts they already are (~10 µs per row: no SQLAlchemy processing per row).

Either way each value is bound by its column type's bind processor first (JSON columns serialised as SQLAlchemy
serialises them), and a driver error reaches the caller as SQLAlchemy's exception (``IntegrityError`` …), as from
Core.
"""

from collections.abc import Iterable, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

from services.kernel.binding import column_binders


class CopyPlan(NamedTuple):
    table: Any
    names: tuple[str, ...]  # the rows' keys, in the statement's column order
    values: Any  # a row dict → its values in that order


class ManyPlan(NamedTuple):
    sql: str
    constants: dict[str, Any]  # the statement's own parameters (a literal of the conflict clause)
    processors: tuple[tuple[str, Any], ...]


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
    return ManyPlan(sql=compiled.string, constants=constants,
                    processors=tuple((row_keys[i], process) for i, process in column_binders(table, dialect, row_keys)))


def write(connection: Any, plan: CopyPlan | ManyPlan, rows: list[dict[str, Any]]) -> None:
    """``rows`` to the driver on ``connection`` (a SQLAlchemy ``Connection``, in its transaction) as ``plan`` says."""
    if isinstance(plan, CopyPlan):
        copy_tuples(connection, plan.table, plan.names, map(plan.values, rows))
        return
    if plan.constants or plan.processors:
        rows = [_bound_dict(row, plan) for row in rows]
    connection.exec_driver_sql(plan.sql, rows)


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


def _bound_dict(row: dict[str, Any], plan: ManyPlan) -> dict[str, Any]:
    bound = {**row, **plan.constants}
    for key, process in plan.processors:
        if bound[key] is not None:
            bound[key] = process(bound[key])
    return bound
