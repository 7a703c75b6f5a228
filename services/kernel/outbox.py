"""Transactional outbox: events are rows written in the business transaction, published after commit.

``record_event`` (one) and ``record_events`` (many, one executemany) insert the rows; the ``OutboxRelay`` publishes
unpublished rows in ``seq`` order with ``Nats-Msg-Id`` = event id (JetStream drops a re-publish inside the duplicate
window), marks the published prefix with one UPDATE per batch, and on any failure (NATS down, a timed-out ack) backs off and starts again from the first unpublished row. A crash
between publishing and marking re-publishes, which JetStream and the consumers' inboxes both absorb.

The relay reads unpublished rows through a snapshot session (no write lock: producers are not held up by its
polling) and, when idle, deletes rows published longer ago than the retention (``outbox_retention_hours``) in small
transactions, so the table holds the recent past, not every event ever written.

**Several processes of one service (replicas on one PostgreSQL database).** Every replica runs a relay, and one batch
at a time is published across them: a relay takes a transaction-level advisory lock (``pg_try_advisory_xact_lock``,
key ``RELAY_LOCK``, scoped to the service's database) before it reads a batch, publishes the batch, marks it in the
same transaction and commits, which frees the lock. A relay that finds the lock taken does nothing this round (the
holder is publishing; it tries again after ``poll_seconds`` or the next wake-up). A relay that dies while holding it
loses its connection, and PostgreSQL drops the lock with it: no lease to expire, no row marked by a dead process.

Why one relay at a time and not ``SELECT … FOR UPDATE SKIP LOCKED`` batches: with SKIP LOCKED the second relay takes
the *next* batch and may publish it before the first batch is acknowledged, so events of one subject (an account's
postings, a case's transitions) would reach the stream out of ``seq`` order, and a failed batch would no longer be a
prefix to restart from. The relay's throughput is bounded by JetStream's acknowledgements, not by the database, so a
second concurrent relay would buy little. The lock is taken per batch, not held for good: whichever replica is up
publishes, with no election to wait out after a crash.

A double publish is harmless anyway within the stream's duplicate window (``stream_duplicate_window_seconds``):
the message id is the event id, and JetStream drops the second copy; beyond the window a consumer's inbox (keyed by
event id) still applies it once. The lock makes a second publish the exception (a crash between publishing and
committing the mark), not the rule.

SQLite has one writer and is the embedded, single-process store: the relay there takes no lock (replicas need
PostgreSQL).
"""

import asyncio
import contextlib
import time
import weakref
from collections.abc import Iterable
from datetime import datetime, timedelta

import anyio
import structlog
from sqlalchemy import Connection, Engine, delete, event, func, insert, select, update
from sqlmodel import Session

from services.kernel import clock, context, metrics, wire
from services.kernel.bus import Bus
from services.kernel.db import is_sqlite, snapshot_session
from services.kernel.events import EventActor, EventEnvelope, EventPayload, PayloadFields, build_encoded_envelope
from services.kernel.models import OutboxMessage

log = structlog.get_logger(__name__)

# Advisory lock key of the relay (PostgreSQL advisory locks are per database: one key per service's outbox).
RELAY_LOCK = 0x5F1F_0D00_0002

_wakers: "weakref.WeakKeyDictionary[Engine, OutboxRelay]" = weakref.WeakKeyDictionary()


def _envelope(payload: EventPayload | PayloadFields, *, source: str, subject: str) -> tuple[EventEnvelope, str]:
    ctx = context.current()
    return build_encoded_envelope(
        payload,
        source=source,
        subject=subject,
        actor=EventActor(id=ctx.actor.id, role=ctx.actor.role),
        correlation_id=ctx.correlation_id or ctx.request_id,
        causation_id=ctx.causation_id,
    )


def record_event(session: Session, payload: EventPayload, *, source: str, subject: str) -> EventEnvelope:
    """Write ``payload`` to the outbox inside the caller's transaction; it is published only if that commits."""
    [envelope] = record_events(session, [(payload, subject)], source=source)
    return envelope


def record_events(session: Session, events: Iterable[tuple[EventPayload | PayloadFields, str]], *,
                  source: str) -> list[EventEnvelope]:
    """``record_event`` for many ``(payload, subject)`` pairs: the same envelopes, written by one Core executemany
    (a bulk path's thousand events cost one statement, not a thousand ORM objects). The rows keep the given order,
    so the relay publishes them in it. A payload may be given as ``PayloadFields`` (a bulk event's lines as dicts):
    validated once here, the same envelope as the built payload's.

    The insert runs at once, without flushing the caller's pending objects first (``no_autoflush``): where a
    caller's own flush raises (a unique key lost to a concurrent request) stays where it was."""
    envelopes, rows = [], []
    for payload, subject in events:
        envelope, encoded = _envelope(payload, source=source, subject=subject)
        envelopes.append(envelope)
        rows.append({"event_id": envelope.id, "event_type": envelope.type, "envelope": encoded,
                     "created_at": envelope.time, "published_at": None, "attempts": 0, "last_error": None})
    if rows:
        with session.no_autoflush:
            session.execute(insert(OutboxMessage.__table__), rows)
        session.info["outbox_written"] = True
    return envelopes


@event.listens_for(Session, "after_commit")
def _wake_relay_after_commit(session: Session) -> None:
    if session.info.pop("outbox_written", False):
        relay = _wakers.get(session.get_bind())
        if relay is not None:
            relay.wake()


@event.listens_for(Session, "after_rollback")
def _forget_after_rollback(session: Session) -> None:
    session.info.pop("outbox_written", None)


def outbox_backlog(session: Session) -> int:
    return session.execute(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.published_at.is_(None))
    ).scalar_one()


class OutboxRelay:
    def __init__(
        self,
        engine: Engine,
        bus: Bus,
        *,
        batch_size: int = 500,
        poll_seconds: float = 0.2,
        ack_timeout: float = 10.0,
        max_backoff: float = 5.0,
        retention: timedelta | None = None,
        prune_every_seconds: float = 600.0,
        prune_chunk: int = 2000,
    ):
        self.engine = engine
        self.bus = bus
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.ack_timeout = ack_timeout
        self.max_backoff = max_backoff
        self.published_total = 0
        self.retention = retention
        self.prune_every_seconds = prune_every_seconds
        self.prune_chunk = prune_chunk
        self.pruned_total = 0
        self._next_prune = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False

    def wake(self) -> None:
        """Thread-safe: called after a commit that wrote outbox rows."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        _wakers[self.engine] = self
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        self._stopping = True
        _wakers.pop(self.engine, None)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                if not self.bus.connected:
                    await self.bus.wait_ready(timeout=self.poll_seconds)
                    await asyncio.sleep(self.poll_seconds if not self.bus.connected else 0)
                    continue
                published = await self.publish_pending()
                if published:
                    backoff = 0.1
                    continue  # there may be more
                if self.retention is not None and time.monotonic() >= self._next_prune:
                    self._next_prune = time.monotonic() + self.prune_every_seconds
                    await anyio.to_thread.run_sync(self.prune_published)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep the rows, try again later
                log.warning("outbox.publish_failed", error=str(exc) or type(exc).__name__, retry_in=backoff)
                metrics.record_publish_failure(self.bus.client_name)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    async def publish_pending(self) -> int:
        """Publish one batch; returns how many rows were confirmed. Raises if the batch stopped short."""
        if is_sqlite(self.engine):
            rows = await anyio.to_thread.run_sync(self._load_batch)
            return await self._publish_and_mark(rows, None)
        # PostgreSQL: one relay at a time across the service's processes (module docstring). The batch is read,
        # published and marked inside one transaction that holds the advisory lock.
        connection = await anyio.to_thread.run_sync(self.engine.connect)
        try:
            transaction = connection.begin()
            try:
                rows = await anyio.to_thread.run_sync(self._lock_and_load, connection)
                published = 0 if rows is None else await self._publish_and_mark(rows, connection)
            finally:
                # Commit also after a stopped batch: its confirmed prefix and the failure are recorded.
                await anyio.to_thread.run_sync(transaction.commit)
        finally:
            await anyio.to_thread.run_sync(connection.close)
        return published

    async def _publish_and_mark(self, rows: list[tuple[int, str, str, str]], connection: Connection | None) -> int:
        if not rows:
            return 0
        js = self.bus.js
        assert js is not None
        futures: list[asyncio.Future] = []
        failure: BaseException | None = None
        try:
            # Sent in order on one connection, acknowledged concurrently.
            for seq, event_id, event_type, envelope in rows:
                body, headers = wire.outgoing(envelope, event_id)
                futures.append(await js.publish_async(event_type, body, headers=headers))
            done, pending = await asyncio.wait(futures, timeout=self.ack_timeout)
            for f in pending:
                f.cancel()
        except Exception as exc:  # noqa: BLE001
            failure = exc
            for f in futures:
                if not f.done():
                    f.cancel()
        confirmed = 0
        for f in futures:
            if f.cancelled() or f.exception() is not None:
                failure = failure or (f.exception() if not f.cancelled() else TimeoutError("no ack from JetStream"))
                break
            confirmed += 1
        for f in futures[confirmed:]:
            if f.done() and not f.cancelled():
                f.exception()  # retrieved: the prefix rule above already accounts for it (no asyncio warning)
        if confirmed:
            await anyio.to_thread.run_sync(self._in_transaction, connection, self._mark_published,
                                           [r[0] for r in rows[:confirmed]])
            self.published_total += confirmed
        if failure is not None:
            await anyio.to_thread.run_sync(self._in_transaction, connection, self._record_failure, rows[confirmed][0],
                                           repr(failure))
            raise RuntimeError(f"outbox batch stopped after {confirmed} of {len(rows)}: {failure!r}")
        return confirmed

    def prune_published(self, now: datetime | None = None, max_rows: int = 50_000) -> int:
        """Delete rows published before ``now − retention``, oldest first, ``prune_chunk`` per transaction (a
        writer waits at most one small delete), at most ``max_rows`` per call. Unpublished rows are never touched."""
        if self.retention is None:
            return 0
        cutoff = (now or clock.utc_now()) - self.retention
        deleted = 0
        while deleted < max_rows:
            with Session(self.engine) as session:
                oldest = (select(OutboxMessage.seq)
                          .where(OutboxMessage.published_at.is_not(None), OutboxMessage.published_at < cutoff)
                          .order_by(OutboxMessage.seq).limit(min(self.prune_chunk, max_rows - deleted)))
                count = session.execute(delete(OutboxMessage).where(OutboxMessage.seq.in_(oldest.scalar_subquery()))
                                        ).rowcount
                session.commit()
            deleted += count
            if count < self.prune_chunk:
                break
        if deleted:
            self.pruned_total += deleted
            log.info("outbox.pruned", rows=deleted, published_before=cutoff.isoformat())
        return deleted

    def _batch_query(self):  # noqa: ANN202
        return (select(OutboxMessage.seq, OutboxMessage.event_id, OutboxMessage.event_type, OutboxMessage.envelope)
                .where(OutboxMessage.published_at.is_(None))
                .order_by(OutboxMessage.seq)
                .limit(self.batch_size))

    def _load_batch(self) -> list[tuple[int, str, str, str]]:
        with snapshot_session(self.engine) as session:
            result = session.execute(self._batch_query()).all()
            session.rollback()
            return [tuple(r) for r in result]

    def _lock_and_load(self, connection: Connection) -> list[tuple[int, str, str, str]] | None:
        """PostgreSQL: the next batch if this relay got the lock; None when another process's relay holds it."""
        if not connection.execute(select(func.pg_try_advisory_xact_lock(RELAY_LOCK))).scalar_one():
            return None
        return [tuple(r) for r in connection.execute(self._batch_query()).all()]

    def _in_transaction(self, connection: Connection | None, write, *args) -> None:  # noqa: ANN001
        """Run ``write(connection, *args)`` in the relay's open transaction, or (SQLite) in a transaction of its own."""
        if connection is not None:
            write(connection, *args)
            return
        with self.engine.begin() as own:
            write(own, *args)

    def _mark_published(self, connection: Connection, seqs: list[int]) -> None:
        connection.execute(
            update(OutboxMessage)
            .where(OutboxMessage.seq.in_(seqs))
            .values(published_at=clock.utc_now(), attempts=OutboxMessage.attempts + 1)
        )

    def _record_failure(self, connection: Connection, seq: int, error: str) -> None:
        connection.execute(
            update(OutboxMessage)
            .where(OutboxMessage.seq == seq)
            .values(attempts=OutboxMessage.attempts + 1, last_error=error[:2000])
        )
