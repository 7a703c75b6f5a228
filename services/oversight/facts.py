"""An oversight event handler in two steps: record the facts, then act on cases.

The suspicion rules (``rules/handlers.py``) and the case workflow's benefit signals (``cases/handlers.py``) keep
facts from events and open, count or confirm cases from them. A ``FactHandler`` keeps the two apart:

- ``record`` writes the fact tables from the event (and from what the mirror and the ledger applied before it in
  the same transaction), and touches no case;
- ``act`` evaluates the rules on those facts and opens or updates cases; it gets what ``record`` returned.

The live consumer runs both in one transaction, ``record`` first. A rebuild from the streams (``rebuild.py``,
part ``facts``) runs ``record`` alone: it reproduces the fact tables and leaves the cases as officers left them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import update_wrapper
from typing import Any

from sqlmodel import Session

from services.kernel.events import EventEnvelope

Record = Callable[[Session, EventEnvelope], Any]
Act = Callable[[Session, EventEnvelope, Any], Any]


@dataclass(frozen=True)
class FactHandler:
    """One event type's handling: ``record`` (facts only) and ``act`` (cases, given what ``record`` returned)."""

    record: Record | None = None
    act: Act | None = None

    def __call__(self, session: Session, envelope: EventEnvelope) -> Any:
        """The live handling: the facts, then the cases; returns what ``act`` returns."""
        recorded = self.record(session, envelope) if self.record is not None else None
        return self.act(session, envelope, recorded) if self.act is not None else None


def _named_after(wrapper: Callable, origin: Callable) -> Callable:
    """The wrapper carries its origin's module and name (the event catalogue names a consumer by its package)."""
    return update_wrapper(wrapper, origin, assigned=("__module__", "__name__", "__qualname__"), updated=())


def acts_only(handler: Callable[[Session, EventEnvelope], Any]) -> FactHandler:
    """A handler that keeps no fact of its own (it reads the mirror or the ledger): nothing to replay."""
    def act(session: Session, envelope: EventEnvelope, _recorded: None) -> Any:
        return handler(session, envelope)

    return FactHandler(act=_named_after(act, handler))


def live_handlers(handlers: dict[str, FactHandler]) -> dict[str, Callable[[Session, EventEnvelope], None]]:
    """What the live consumer runs: both steps, the result dropped (consumer handlers return nothing)."""
    def live(handler: FactHandler) -> Callable[[Session, EventEnvelope], None]:
        def run(session: Session, envelope: EventEnvelope) -> None:
            handler(session, envelope)
        return _named_after(run, handler.record or handler.act)

    return {event_type: live(handler) for event_type, handler in handlers.items()}


def record_handlers(handlers: dict[str, FactHandler]) -> dict[str, Record]:
    """What a rebuild replays: the ``record`` steps alone, for the types that keep a fact."""
    return {event_type: handler.record for event_type, handler in handlers.items() if handler.record is not None}
