"""Idempotent event consumers: a durable pull consumer per (service, stream), applied in batches.

A fetched batch is applied in bounded transactions (chunks): a chunk commits once it has applied
``transaction_seconds`` of work or ``transaction_events`` events, whichever comes first, and its messages are
acknowledged right after its commit. No writer holds the database's write lock for minutes (SQLite has one
writer at a time), a crash loses no acknowledged work, and only the messages of uncommitted chunks come back.

In a chunk, events already in the inbox (keyed by event id) are skipped; the rest are applied with their inbox rows
under one savepoint, and only if that fails is each event retried in its own savepoint, so one failing event does
not undo its neighbours. Failed events are redelivered with a delay until ``max_attempts``; then the event is
written to ``dead_letter`` (in the same transaction) and acknowledged, where an operator can see it and replay it.

An event that fails because it must *wait* is not poison: a ``MirrorGap`` (it names an entity whose event, on
another stream, has not been applied yet: that stream's consumer is behind, its process restarting, its stream
leader being elected) or a transient database error (``OperationalError``: a deadlock between replicas, a lost
connection). Such an event is retried for at least ``gap_patience`` seconds after it was published, however many
deliveries that takes, and only then dead-lettered. Counting deliveries alone dead-lettered sound events whenever a
neighbouring process took longer than the few seconds of five retries to come back (and a delivery to a process
that was killed also counts as one).
An event whose inbox row appeared meanwhile (another replica applied it: the inbox insert conflicts) is "already
applied" and acknowledged, never dead-lettered.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime
from typing import Any

import anyio
import structlog
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError
from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from services.kernel import clock, context, wire
from services.kernel.bulk import dialect_of, in_parameter, insert_many, parameter_values, read
from services.kernel.bus import Bus
from services.kernel.collector import collector_paused
from services.kernel.db import unit_of_work
from services.kernel.errors import Conflict, NotFound
from services.kernel.events import STREAMS, EventEnvelope
from services.kernel.mirror import MirrorGap
from services.kernel.models import DeadLetter, InboxMessage

log = structlog.get_logger(__name__)

Handler = Callable[[Session, EventEnvelope], None]

# Failures that say "not yet" rather than "never" (see the module docstring).
WAITING_ERRORS = (MirrorGap, OperationalError)


@dataclass
class _Delivery:
    raw: bytes  # as received; the envelope's JSON once decoded (kernel.wire)
    num_delivered: int
    encoding: str | None = None  # how ``raw`` travelled (None: plain JSON)
    published_at: datetime | None = None  # the stream's timestamp of the message
    envelope: EventEnvelope | None = None
    error: str | None = None
    outcome: str = "ack"  # ack | retry


@lru_cache(maxsize=4)
def _applied_query(dialect: str) -> Any:
    """Which of a chunk's event ids the inbox holds: built once per dialect, the ids bound as one parameter."""
    return select(InboxMessage.event_id).where(in_parameter(dialect, InboxMessage.event_id, "ids"))


class EventConsumer:
    """Applies the events of one stream to the owning service's database.

    ``handlers`` maps event types to functions ``(session, envelope) -> None``; ``ignores`` lists the types on the
    stream this service deliberately does not need. An event of any other type is dead-lettered: a type nobody
    expected is a fact someone must look at, not something to drop.
    """

    def __init__(
        self,
        *,
        service: str,
        stream: str,
        engine: Engine,
        bus: Bus,
        handlers: dict[str, Handler],
        ignores: Iterable[str] = (),
        subjects: Iterable[str] = (),
        batch_size: int = 500,
        max_attempts: int = 5,
        retry_delay: float = 1.0,
        gap_patience: float = 600.0,
        fetch_timeout: float = 1.0,
        ack_wait: float = 30.0,
        transaction_seconds: float = 1.0,
        transaction_events: int = 500,
    ):
        if stream not in STREAMS:
            raise ValueError(f"unknown stream {stream}")
        self.service = service
        self.stream = stream
        self.name = f"{service}-{stream}"  # durable consumer name (ARCHITECTURE.md, Streams)
        self.engine = engine
        self.bus = bus
        self.handlers = dict(handlers)
        self.ignores = frozenset(ignores)
        self.subjects = sorted(subjects)  # the filters the server delivers (ConsumerSpec.subjects); none: all
        if any(not s.startswith(f"{STREAMS[stream]}.") for s in self.subjects):
            raise ValueError(f"subjects {self.subjects} are not all on stream {stream}")
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.gap_patience = gap_patience  # seconds a waiting event is retried before it is dead-lettered
        self.fetch_timeout = fetch_timeout
        self.ack_wait = ack_wait  # a batch whose acks were lost (crash, disconnect) comes back after this
        # One chunk of a batch commits after this much work or this many events (see the module docstring).
        self.transaction_seconds = transaction_seconds
        self.transaction_events = max(1, transaction_events)
        self.transactions_total = 0
        self.applied_total = 0
        self.dead_lettered_total = 0
        self._task: asyncio.Task | None = None
        self._stopping = False

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=None if len(self.subjects) > 1 else (self.subjects or [f"{STREAMS[self.stream]}.>"])[0],
            filter_subjects=self.subjects if len(self.subjects) > 1 else None,
            ack_wait=self.ack_wait,
            # Redelivery is bounded by max_attempts here, which dead-letters the event; a server-side limit would
            # drop it silently instead.
            max_deliver=-1,
            max_ack_pending=max(self.batch_size * 4, 1000),
            num_replicas=self.bus.replicas,
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.name}")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _subscribe(self):
        js = self.bus.js
        assert js is not None
        # add_consumer creates or updates the durable; pull_subscribe alone would keep a stale config.
        await js.add_consumer(self.stream, self.consumer_config())
        return await js.pull_subscribe_bind(durable=self.name, stream=self.stream)

    async def _run(self) -> None:
        subscription = None
        while not self._stopping:
            try:
                if not self.bus.connected:
                    await self.bus.wait_ready(timeout=1.0)
                    await asyncio.sleep(0.2)
                    continue
                if subscription is None:
                    subscription = await self._subscribe()
                try:
                    messages = await subscription.fetch(self.batch_size, timeout=self.fetch_timeout)
                except TimeoutError:
                    continue  # nothing to do
                await self.process(messages)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnects, a restarted server: subscribe again
                log.warning("consumer.loop_error", consumer=self.name, error=str(exc) or type(exc).__name__)
                subscription = None
                await asyncio.sleep(0.5)

    async def process(self, messages: list) -> None:
        """Apply a fetched batch chunk by chunk; each chunk's messages are acknowledged (or, for a failed event,
        negatively acknowledged with a delay) as soon as the chunk has committed."""
        fetched_at = time.monotonic()
        pending = [(m, _Delivery(raw=m.data, num_delivered=m.metadata.num_delivered, encoding=wire.encoding_of(m),
                                 published_at=m.metadata.timestamp)) for m in messages]
        while pending:
            taken = await anyio.to_thread.run_sync(self._apply_chunk, [d for _m, d in pending])
            for message, delivery in pending[:taken]:
                if delivery.outcome == "ack":
                    await message.ack()
                else:
                    await message.nak(delay=self.retry_delay * min(delivery.num_delivered, 10))
            pending = pending[taken:]
            if pending and time.monotonic() - fetched_at > self.ack_wait / 2:
                # A long batch: tell the server the rest is being worked on, or it redelivers it meanwhile.
                for message, _delivery in pending:
                    await message.in_progress()
                fetched_at = time.monotonic()

    # -- the transaction -------------------------------------------------------------------------------------------

    def _apply_chunk(self, deliveries: list[_Delivery]) -> int:
        """One bounded transaction over the first deliveries; returns how many it covered (at least one). The cyclic
        collector waits for the chunk's end: a chunk of bulk events keeps its many small objects alive until it
        commits, and full collections walked them to free nothing (a fifth of oversight's consumer CPU)."""
        with collector_paused():
            return self._apply_batch(deliveries, seconds=self.transaction_seconds, events=self.transaction_events)

    def _apply_batch(self, deliveries: list[_Delivery], *, seconds: float | None = None,
                     events: int | None = None) -> int:
        """Apply ``deliveries`` in one transaction, stopping after ``seconds`` of work or ``events`` deliveries
        (unbounded when not given); returns how many deliveries, from the first, the transaction covered."""
        started = time.monotonic()
        for d in deliveries:
            if d.envelope is None and d.error is None:
                try:
                    d.raw, d.encoding = wire.body(d.raw, d.encoding), None  # decompressed here, off the event loop
                    d.envelope = EventEnvelope.from_bytes(d.raw)
                except (ValidationError, ValueError) as exc:
                    d.error = f"not an event envelope: {exc}"
        taken = 0
        with unit_of_work(self.engine) as session:  # the chunk's one transaction: inbox rows with the handlers' writes
            seen = self._already_applied(session, [d.envelope.id for d in deliveries if d.envelope is not None])
            fresh: list[_Delivery] = []
            malformed: list[_Delivery] = []
            try:
                # Fast path: the whole chunk under one savepoint, its inbox rows in one insert.
                with session.begin_nested():
                    applied: list[dict] = []
                    for d in deliveries:
                        taken += 1
                        if d.envelope is None:
                            malformed.append(d)  # retrying cannot help
                        elif d.envelope.id not in seen:  # else already applied: a redelivery or a duplicate publish
                            seen.add(d.envelope.id)
                            fresh.append(d)
                            self._apply_one(session, d.envelope, applied)
                        if taken == events or (seconds is not None and time.monotonic() - started >= seconds):
                            break
                    insert_many(session, InboxMessage, applied)
                self.applied_total += len(fresh)
            except Exception:  # noqa: BLE001 - some event is poison: find it, one savepoint per event
                for d in fresh:
                    self._apply_isolated(session, d)
            for d in malformed:
                self._dead_letter(session, d)
        self.transactions_total += 1
        return taken

    def _already_applied(self, session: Session, event_ids: list[str]) -> set[str]:
        if not event_ids:
            return set()
        dialect = dialect_of(session)
        return set(read(session, _applied_query(dialect), {"ids": parameter_values(dialect, event_ids)}).scalars())

    def _apply_isolated(self, session: Session, d: _Delivery) -> None:
        try:
            with session.begin_nested():
                self._apply_one(session, d.envelope)
            self.applied_total += 1
        except Exception as exc:  # noqa: BLE001 - isolate the poison, keep the batch
            if self._already_applied(session, [d.envelope.id]):
                # Another replica committed this event's inbox row after this chunk looked (on PostgreSQL the
                # insert waits for it, then conflicts): applied there, so acknowledged here, not a failure.
                log.info("consumer.applied_elsewhere", consumer=self.name, event_id=d.envelope.id)
                return
            d.error = f"{type(exc).__name__}: {exc}"
            if self._given_up(d, exc):
                self._dead_letter(session, d)
            else:
                d.outcome = "retry"
                log.warning("consumer.event_failed", consumer=self.name, event_id=d.envelope.id,
                            attempt=d.num_delivered, error=d.error)

    def _given_up(self, d: _Delivery, exc: Exception) -> bool:
        if d.num_delivered < self.max_attempts:
            return False
        if not isinstance(exc, WAITING_ERRORS) or d.published_at is None:
            return True
        # Wall time, not the service clock (which a test may shift): the stream's timestamps are the server's.
        return time.time() - d.published_at.timestamp() >= self.gap_patience

    def _apply_one(self, session: Session, envelope: EventEnvelope, applied: list[dict] | None = None) -> None:
        """Apply ``envelope`` and write its inbox row — now, or appended to ``applied`` for the caller to insert
        with the rest of its chunk (one statement, not an ORM object and a flush per event)."""
        handler = self.handlers.get(envelope.type)
        if handler is None and envelope.type not in self.ignores:
            raise LookupError(f"{self.name} has no handler for event type {envelope.type}")
        if handler is not None:
            with context.trace(
                actor=context.Actor(id=f"system:{self.service}", role="system"),
                correlation_id=envelope.correlation_id,
                causation_id=envelope.id,
            ):
                try:
                    # Every handler of the type (merged consumers) shares this envelope, so its payload is
                    # validated once; then it is dropped: a batch of bulk events keeps only its parsed envelopes.
                    handler(session, envelope)
                finally:
                    envelope.forget_payload()
        row = {"event_id": envelope.id, "consumer": self.name, "event_type": envelope.type,
               "applied_at": clock.utc_now()}
        if applied is None:
            insert_many(session, InboxMessage, [row])
        else:
            applied.append(row)

    def _dead_letter(self, session: Session, d: _Delivery) -> None:
        env = d.envelope
        session.add(
            DeadLetter(
                consumer=self.name,
                stream=self.stream,
                event_id=env.id if env else None,
                event_type=env.type if env else None,
                payload=d.raw.decode("utf-8", errors="replace"),
                error=(d.error or "unknown error")[:4000],
                attempts=d.num_delivered,
                failed_at=clock.utc_now(),
            )
        )
        d.outcome = "ack"
        self.dead_lettered_total += 1
        log.error("consumer.dead_lettered", consumer=self.name, event_id=env.id if env else None, error=d.error)

    # -- operator: replay -----------------------------------------------------------------------------------------

    def replay(self, dead_letter_id: int, *, operator: str) -> dict:
        """Apply a dead-lettered event again (after the cause was fixed). Idempotent through the inbox."""
        with unit_of_work(self.engine) as session:
            letter = session.get(DeadLetter, dead_letter_id)
            if letter is None or letter.consumer != self.name:
                raise NotFound("DEAD_LETTER_NOT_FOUND", "死信记录不存在")
            if letter.replayed_at is not None:
                raise Conflict("DEAD_LETTER_ALREADY_REPLAYED", "该死信已重放")
            try:
                envelope = EventEnvelope.from_bytes(letter.payload)
            except (ValidationError, ValueError) as exc:
                raise Conflict("DEAD_LETTER_MALFORMED", "死信内容不是有效事件，无法重放", details=str(exc)) from None
            already = session.get(InboxMessage, envelope.id) is not None
            if not already:
                try:
                    with session.begin_nested():
                        self._apply_one(session, envelope)
                except Exception as exc:  # noqa: BLE001 - raising rolls the unit of work back
                    raise Conflict("DEAD_LETTER_REPLAY_FAILED", "重放失败，事件仍无法处理",
                                   details=f"{type(exc).__name__}: {exc}") from None
            letter.replayed_at = clock.utc_now()
            letter.replayed_by = operator
            session.add(letter)
            return {"id": letter.id, "event_id": envelope.id, "applied": not already}


def dead_letters_as_dicts(letters: Iterable[DeadLetter]) -> list[dict]:
    out = []
    for letter in letters:
        item = letter.model_dump()
        with contextlib.suppress(ValueError):
            item["payload"] = json.loads(letter.payload)
        out.append(item)
    return out
