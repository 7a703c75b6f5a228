"""A lookup of many keys bound as one parameter (not one per key): ``column IN :keys``."""

from collections.abc import Iterable
from typing import Any

import msgspec
from sqlalchemy import JSON, ColumnElement, String, bindparam, cast, func, select

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


def parameter_values(dialect: str, values: Iterable[str]) -> Any:
    """The value of an ``in_parameter`` parameter: a JSON array as text (msgspec's encoder, several times quicker
    than ``json.dumps`` for the thousand keys of a bulk event; text, not bytes, which SQLite would read as JSONB)."""
    return _JSON.encode(list(values)).decode()
