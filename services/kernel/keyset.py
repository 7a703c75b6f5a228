"""A lookup of many keys bound as one parameter (not one per key): ``column IN :keys``."""

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY


def in_parameter(dialect: str, column: Any, name: str | None = None,
                 values: Iterable[str] | None = None) -> ColumnElement[bool]:
    """``column IN :name`` with the values as one parameter — a JSON array read by ``json_each`` on SQLite, an array
    on PostgreSQL (``= ANY``) — instead of one parameter per value: SQLAlchemy renders and names each of a thousand
    expanding parameters, most of a bulk lookup's CPU. Both use the column's index. For statements built once per
    dialect and cached, ``name`` the parameter ``parameter_values`` gives a value to (text keys); for a one-off
    statement, ``values`` bound at once (an anonymous parameter)."""
    bound = {} if values is None else {"value": parameter_values(dialect, values)}
    if dialect == "sqlite":
        return column.in_(select(func.json_each(bindparam(name, type_=String, **bound)).table_valued("value").c.value))
    return column == any_(bindparam(name, type_=ARRAY(String), **bound))


def parameter_values(dialect: str, values: Iterable[str]) -> Any:
    """The value of an ``in_parameter`` parameter."""
    return json.dumps(list(values)) if dialect == "sqlite" else list(values)
