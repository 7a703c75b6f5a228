"""Mechanics for a service's mirror of another service's entities, kept from events (each mirror row remembers the
event that last wrote it; UUIDv7 event ids sort by time, so a late, older event never overwrites a newer state)."""

from functools import lru_cache
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import insert, select
from sqlmodel import Session

from services.kernel import postgres_rows
from services.kernel.events import EventEnvelope, EventPayload
from services.kernel.keyset import in_parameter, parameter_values

P = TypeVar("P", bound=EventPayload)
Row = TypeVar("Row")
CHUNK = 1000


class MirrorGap(LookupError):
    """The event names an entity the mirror does not have yet; the consumer retries it (then dead-letters it)."""


def typed_payload(envelope: EventEnvelope, kind: type[P]) -> P:
    payload = envelope.payload()
    assert isinstance(payload, kind), f"{envelope.type} is not {kind.__name__}"
    return payload


def is_fresh(row: Any, envelope: EventEnvelope) -> bool:
    """Is ``envelope`` at least as recent as the event that last wrote ``row``?"""
    return envelope.id >= row.source_event_id


def merge_rows(session: Session, model: type[Row], key_field: str, items: list[dict[str, Any]],
               envelope: EventEnvelope) -> None:
    """Insert the rows not yet mirrored and overwrite the known ones unless they are newer. Per chunk: the known keys
    in one lookup (the keys bound as one parameter), the new rows in one ``executemany`` at the driver
    (``execute_rows``), and only the known rows loaded as objects (none, for an import's new entities)."""
    dialect = session.get_bind().dialect.name
    table = model.__table__  # type: ignore[attr-defined]
    known_keys = _known_keys(dialect, table, key_field)
    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        keys = [item[key_field] for item in chunk]
        session.flush()  # what the ORM's autoflush did before the lookup
        known = set(session.connection().execute(known_keys, {"keys": parameter_values(dialect, keys)}).scalars())
        new = [{**item, "source_event_id": envelope.id} for item in chunk if item[key_field] not in known]
        if new:
            execute_rows(session, _insert_into(table), new)
        if not known:
            continue
        key_column = getattr(model, key_field)
        existing = {getattr(r, key_field): r for r in session.execute(
            select(model).where(key_column.in_(sorted(known)))).scalars()}
        for item in chunk:
            row = existing.get(item[key_field])
            if row is not None and is_fresh(row, envelope):
                for field, value in item.items():
                    setattr(row, field, value)
                row.source_event_id = envelope.id
                session.add(row)


@lru_cache(maxsize=64)
def _known_keys(dialect: str, table: Any, key_field: str) -> Any:
    """``SELECT key FROM table WHERE key IN :keys``, built once per table."""
    column = table.c[key_field]
    return select(column).where(in_parameter(dialect, column, "keys"))


@lru_cache(maxsize=64)
def _insert_into(table: Any) -> Any:
    """One ``INSERT`` per table, so that ``execute_rows`` plans it once (its plan is cached by statement)."""
    return insert(table)


# -- one statement over many rows, at the driver ---------------------------------------------------------------------


def execute_rows(session: Session, statement: Any, rows: list[dict[str, Any]]) -> None:
    """``statement`` (a Core ``INSERT``, possibly ``ON CONFLICT …``, without ``RETURNING``) once per row, as
    ``connection.execute(statement, rows)`` does. On SQLite, when every row names the same columns (and the
    table gives no Python-side default to a column they leave out), the statement is compiled once for those
    columns and the rows go to the driver's ``executemany`` as tuples: SQLAlchemy's per-row
    parameter dicts and processing cost more than SQLite's own work for a 1 000-line event. A value is bound as its
    column type binds it (timestamps as text), once per distinct value: the stamps an event puts on every row are one
    value. On PostgreSQL, ``postgres_rows``: a plain insert as ``COPY``, an upsert as the driver's ``executemany``.
    Elsewhere, or for a statement neither path takes, the Core ``executemany``."""
    if not rows:
        return
    connection = session.connection()
    keys = tuple(rows[0])
    same_keys = all(len(row) == len(keys) for row in rows)  # the same keys: a missing one fails in itemgetter
    if connection.dialect.name == "postgresql" and same_keys:
        postgres_plan = postgres_rows.plan_for(statement, connection.dialect, keys)
        if postgres_plan is not None:
            postgres_rows.write(connection, postgres_plan, rows)
            return
    plan = None
    if connection.dialect.name == "sqlite" and same_keys:
        plan = _driver_plan(statement, connection.dialect, keys)
    if plan is None:
        connection.execute(statement, rows)
        return
    sql, values, constants, processors = plan
    tuples = [values(row) + constants for row in rows]
    if processors:
        tuples = _bound(tuples, processors)
    connection.exec_driver_sql(sql, tuples)


def _bound(tuples: list[tuple], processors: tuple[tuple[int, Any], ...]) -> list[tuple]:
    done: dict[tuple[int, Any], Any] = {}
    out = []
    for values in tuples:
        row = list(values)
        for index, process in processors:
            value = row[index]
            if value is not None:
                key = (index, value)
                bound = done.get(key)
                if bound is None:
                    bound = done[key] = process(value)
                row[index] = bound
        out.append(tuple(row))
    return out


@lru_cache(maxsize=64)
def _driver_plan(statement: Any, dialect: Any,
                 row_keys: tuple[str, ...]) -> tuple[str, Any, tuple, tuple[tuple[int, Any], ...]] | None:
    """For rows with ``row_keys``: the SQL text, a getter of a row's values in the statement's order, the trailing
    constant parameters (a ``WHERE`` literal of the conflict clause), and the bind processors by position; None for
    a statement this path does not take (``RETURNING``, a column the rows leave to a Python-side default, a
    constant before a row value)."""
    if getattr(statement, "_returning", ()):
        return None
    compiled = statement.compile(dialect=dialect, column_keys=list(row_keys))
    names = list(compiled.positiontup or ())
    columns = statement.table.c
    keys = [name for name in names if name in columns]
    if not keys or names[:len(keys)] != keys or not set(keys) <= set(row_keys):
        return None
    constants = tuple(compiled.binds[name].effective_value for name in names[len(keys):])
    processors = tuple((index, process) for index, name in enumerate(names)
                       if (process := compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)))
    getter = itemgetter(*keys)
    values = getter if len(keys) > 1 else (lambda row: (getter(row),))
    return compiled.string, values, constants, processors
