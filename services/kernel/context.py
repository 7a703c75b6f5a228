"""Who and why of the work in progress, carried from an HTTP request (or a consumed event) into the events and
audit entries it produces, so that a flow can be traced end to end."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Actor:
    id: str
    role: str | None = None
    unit: str | None = None
    region: str | None = None
    roles: tuple[str, ...] = field(default_factory=tuple)
    kind: str | None = None  # the token's kind: "user" (a member of staff) or "client" (a system); None: internal


ANONYMOUS = Actor(id="anonymous")


@dataclass(frozen=True)
class TraceContext:
    actor: Actor = ANONYMOUS
    request_id: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None  # the event being handled, when work is caused by an event


_current: ContextVar[TraceContext] = ContextVar("sifund_trace", default=TraceContext())


def current() -> TraceContext:
    return _current.get()


@contextmanager
def trace(**changes) -> Iterator[TraceContext]:
    ctx = replace(_current.get(), **changes)
    token = _current.set(ctx)
    try:
        yield ctx
    finally:
        _current.reset(token)


def actor_id() -> str:
    """Who is doing the work in progress (``anonymous`` outside a request or event): what ``*_by`` columns record."""
    return _current.get().actor.id


def set_actor(actor: Actor) -> None:
    """Record the authenticated caller for the rest of the current request (its task's context only)."""
    _current.set(replace(_current.get(), actor=actor))
