"""A lookup of many keys bound as one parameter (not one per key): ``column IN :keys``."""

from collections.abc import Iterable
from typing import Any

import msgspec
from sqlalchemy import JSON, ColumnElement, Select, String, bindparam, cast, func, select

_JSON = msgspec.json.Encoder()


def in_parameter(dialect: str, column: Any, name: str | None = None,
                 values: Iterable[str] | None = None) -> ColumnElement[bool]:
    """``column IN :name`` with the values as one parameter, a JSON array (read by ``json_each`` on SQLite,
    ``json_array_elements_text`` on PostgreSQL), instead of one parameter per value: SQLAlchemy renders and names
    each of a thousand expanding parameters, most of a bulk lookup's CPU (and psycopg dumps a list parameter value by
    value in Python, ~0.8 µs each, where a JSON encoder is one C call). Both use the column's index. For statements
    built once per dialect and cached, ``name`` the parameter ``parameter_values`` gives a value to (text keys); for
    a one-off statement, ``values`` bound at once (an anonymous parameter)."""
    bound = {} if values is None else {"value": parameter_values(dialect, values)}
    parameter = bindparam(name, type_=String, **bound)
    if dialect == "sqlite":
        return column.in_(select(func.json_each(parameter).table_valued("value").c.value))
    elements = func.json_array_elements_text(cast(parameter, JSON)).table_valued("value")
    return column.in_(select(elements.c.value))


def keyed_select(dialect: str, model: Any, key: Any, name: str, *columns: Any) -> Select:
    """``select(*columns)`` of ``model``'s rows whose ``key`` is one of the values of parameter ``name`` (a
    ``parameter_values`` of distinct keys: a set, a dict's keys), built once per dialect by its caller. On SQLite the
    rows are joined to ``json_each`` of the parameter, which drives one index search per key; ``IN`` first builds a
    temporary index of the keys, which cost as much again (1 000 payment ids: 0.70 µs a key against 0.21, most of
    a lookup finding no row). Elsewhere ``in_parameter``."""
    if dialect == "sqlite":
        keys = func.json_each(bindparam(name, type_=String)).table_valued("value")
        return select(*columns).select_from(keys).join(model, key == keys.c.value)
    return select(*columns).where(in_parameter(dialect, key, name))


def parameter_values(dialect: str, values: Iterable[str]) -> Any:
    """The value of an ``in_parameter`` parameter: a JSON array as text (msgspec's encoder, several times quicker
    than ``json.dumps`` for the thousand keys of a bulk event; text, not bytes, which SQLite would read as JSONB)."""
    return json_text(list(values))


def json_text(value: Any) -> str:
    """``value`` (keys, or rows as dicts) as the JSON text of one statement parameter: msgspec's encoder, one C
    call, several times quicker than ``json.dumps``; text, not bytes, which SQLite would read as JSONB."""
    return _JSON.encode(value).decode()
