"""Bulk writes of collection's large sets (a payment batch, an assessment's lines), shaped for each database.

SQLite: ``executemany`` of one prepared statement is the fastest path; it is handed to the driver as tuples
(``exec_driver_sql``), each value passed through its column type's own bind processor (dates and timestamps as
SQLAlchemy writes them), so that SQLAlchemy does not build and process a parameter dict per row (a third of the
insert's cost for 10 000 rows). PostgreSQL: ``executemany`` sends one
statement per row (pipelined, but each row is still parsed, planned and acknowledged: ~1.2 s for 30 000 rows), and a
multi-row ``VALUES`` list is slower still to compile. So on PostgreSQL rows are inserted with one ``COPY``
(``kernel.postgres_rows.copy_tuples``), and updated from **one JSON parameter**, the rows as objects read by the
server as a set: ``UPDATE … FROM json_to_recordset(:rows)`` — one parameter whatever the number of rows, encoded in
one C call (an array parameter per column, which psycopg dumps value by value, cost ~3.5 µs of the service's CPU a
line; this ~0.6, and no more of the server's).
"""

from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Integer, Table, bindparam, insert, literal_column, text, update
from sqlmodel import Session

from services.kernel import postgres_rows
from services.kernel.binding import column_binders
from services.kernel.keyset import json_text


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _bound(session: Session, table: Table, names: list[str] | tuple[str, ...], out: list[tuple],
           prebound: tuple[str, ...] = ()) -> list[tuple]:
    """``out`` (tuples in ``names``' order) with each value bound as its column type binds it for this dialect (the
    columns ``prebound`` already are: ``bound_value``)."""
    dialect = session.get_bind().dialect
    processors = column_binders(table, dialect, tuple(names))
    if prebound:
        processors = tuple((index, process) for index, process in processors if names[index] not in prebound)
    if not processors:
        return out
    # A set's rows share few dates and timestamps (a batch's paid dates, one computed_at, an assessment's due date),
    # often the very same object: each object is bound once (by identity: equal aware timestamps may bind apart).
    # Row by row, only the bound columns replaced: transposing every column of the set and back cost twice as much
    # for rows of many columns and one or two bound ones.
    memos = [(index, process, {}) for index, process in processors]
    bound: list[tuple] = []
    append = bound.append
    for row in out:
        row = list(row)
        for index, process, memo in memos:
            value = row[index]
            if value is not None:
                key = id(value)
                if key not in memo:
                    memo[key] = process(value)
                row[index] = memo[key]
        append(tuple(row))  # SQLAlchemy's driver-level executemany takes tuples
    return bound


def _quoted(session: Session, name: str) -> str:
    return session.get_bind().dialect.identifier_preparer.quote(name)


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    names = tuple(rows[0])
    values = itemgetter(*names)
    insert_tuples(session, table, names, [values(r) for r in rows] if len(names) > 1 else [(values(r),) for r in rows])


def bound_value(session: Session, table: Table, name: str, value: Any) -> Any:
    """``value`` as ``insert_tuples`` hands column ``name`` to the driver on SQLite (a date as its text), bound once
    for every row that carries it (pass ``name`` in its ``prebound``); on other databases ``value`` itself."""
    dialect = session.get_bind().dialect
    if dialect.name != "sqlite" or value is None:
        return value
    binders = column_binders(table, dialect, (name,))
    return binders[0][1](value) if binders else value


def insert_tuples(session: Session, table: Table, names: tuple[str, ...], rows: list[tuple], *,
                  prebound: tuple[str, ...] = ()) -> None:
    """``insert_rows`` for rows given as tuples in ``names``' order (a batch's rows, built without a dict each).
    ``prebound``: columns whose values are already ``bound_value``'s (an assessment's one due date on each of its
    lines): on SQLite the rows then go to the driver as they are, not copied row by row to bind them."""
    if not rows:
        return
    if session.get_bind().dialect.name == "sqlite":
        sql = (f"INSERT INTO {_quoted(session, table.name)} ({', '.join(_quoted(session, n) for n in names)}) "
               f"VALUES ({', '.join('?' for _ in names)})")
        session.connection().exec_driver_sql(sql, _bound(session, table, names, rows, prebound))
        return
    if not _is_postgres(session):
        session.execute(insert(table), [dict(zip(names, row, strict=True)) for row in rows])
        return
    session.flush()  # what the ORM holds first (the batch these rows belong to), as session.execute would
    postgres_rows.copy_tuples(session.connection(), table, names, rows)


class SettledLine(NamedTuple):
    """An assessment line's figures after a batch settled it (in the SQLite statement's parameter order). ``id``:
    the line's id, or on SQLite its ``rowid`` when read with it (``row_key``)."""

    paid_principal_fen: int
    paid_late_fee_fen: int
    status: str
    id: str | int


def row_key(session: Session, table: Table) -> Any:
    """The column that finds a row of ``table`` fastest for ``update_settled_lines``: on SQLite the ``rowid`` (the
    table's own key: the text primary key is a separate index, one more search a row: 10 000 rows updated by rowid
    cost ~1.5 µs a row less), elsewhere ``id``."""
    if session.get_bind().dialect.name == "sqlite":
        return literal_column(f"{_quoted(session, table.name)}.rowid", Integer).label("row_key")
    return table.c.id.label("row_key")


def update_settled_lines(session: Session, table: Table, updates: list[SettledLine]) -> None:
    """``updates`` keyed by ``row_key``'s values."""
    if not updates:
        return
    c = table.c
    if session.get_bind().dialect.name == "sqlite":
        sql = (f"UPDATE {_quoted(session, table.name)} SET paid_principal_fen = ?, paid_late_fee_fen = ?, status = ? "
               "WHERE rowid = ?")
        session.connection().exec_driver_sql(sql, updates)  # ints and text: nothing for a bind processor to do
        return
    if not _is_postgres(session):
        session.execute(
            update(table).where(c.id == bindparam("_id"))
            .values(paid_principal_fen=bindparam("_principal"), paid_late_fee_fen=bindparam("_fee"),
                    status=bindparam("_status")),
            [{"_principal": u.paid_principal_fen, "_fee": u.paid_late_fee_fen, "_status": u.status, "_id": u.id}
             for u in updates],
        )
        return
    rows = json_text([{"principal": u.paid_principal_fen, "fee": u.paid_late_fee_fen, "status": u.status, "id": u.id}
                      for u in updates])
    statement = text(
        f"UPDATE {_quoted(session, table.name)} AS line SET paid_principal_fen = settled.principal, "
        "paid_late_fee_fen = settled.fee, status = settled.status "
        "FROM json_to_recordset(CAST(:rows AS json)) AS settled(principal bigint, fee bigint, status text, id text) "
        "WHERE line.id = settled.id"
    )
    session.execute(statement.bindparams(bindparam("rows", rows)))
