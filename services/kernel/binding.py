"""Values bound at the driver as SQLAlchemy would bind them: the bind processors of a table's columns."""

from functools import lru_cache
from typing import Any


@lru_cache(maxsize=512)
def column_binders(table: Any, dialect: Any, names: tuple[str, ...]) -> tuple[tuple[int, Any], ...]:
    """For rows whose values are ``table``'s columns ``names`` in that order: ``(position, processor)`` of each column
    whose type binds its values itself on ``dialect`` (dates and timestamps as text on SQLite, JSON serialised …);
    the others go to the driver as they are."""
    return tuple((index, process) for index, name in enumerate(names)
                 if (process := table.c[name].type.dialect_impl(dialect).bind_processor(dialect)) is not None)
