"""Mechanics for a service's mirror of another service's entities, kept from events (each mirror row remembers the
event that last wrote it; UUIDv7 event ids sort by time, so a late, older event never overwrites a newer state)."""

from typing import Any, TypeVar

from sqlalchemy import insert, select
from sqlmodel import Session

from services.kernel.events import EventEnvelope, EventPayload

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
    """Insert the rows not yet mirrored (Core, in chunks) and overwrite the known ones unless they are newer."""
    key_column = getattr(model, key_field)
    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        keys = [item[key_field] for item in chunk]
        existing = {getattr(r, key_field): r for r in session.execute(
            select(model).where(key_column.in_(keys))).scalars()}
        new = [{**item, "source_event_id": envelope.id} for item in chunk if item[key_field] not in existing]
        if new:
            session.execute(insert(model.__table__), new)
        for item in chunk:
            row = existing.get(item[key_field])
            if row is not None and is_fresh(row, envelope):
                for field, value in item.items():
                    setattr(row, field, value)
                row.source_event_id = envelope.id
                session.add(row)
