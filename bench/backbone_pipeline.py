"""Pieces of the backbone benchmark shared by the producer (parent) and consumer (child) processes.

Bench-only event types (on the OVERSIGHT stream, which no real consumer reads ``oversight.benchmark.*`` from), a bench
table in the consumer's database, the kernel's ``OutboxRelay`` and ``EventConsumer`` subclassed only to time their
phases (their logic is untouched), and the consumer process, driven by the parent over a pipe.

Timestamps are ``time.monotonic()``: CLOCK_MONOTONIC is system-wide on Linux, so the two processes' clocks agree.
"""

import asyncio
import hashlib
import logging
import time
import traceback
from datetime import UTC, datetime

import structlog
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import registry
from sqlmodel import Field, Session, SQLModel

from services.kernel.bus import Bus
from services.kernel.db import make_engine
from services.kernel.events import EventEnvelope, EventPayload
from services.kernel.inbox import EventConsumer
from services.kernel.models import DeadLetter, InboxMessage, OutboxMessage, kernel_metadata
from services.kernel.outbox import OutboxRelay

DUPLICATE_WINDOW = 600.0  # the production default (Settings.stream_duplicate_window_seconds)
STREAM = "OVERSIGHT"
CONSUMER_SERVICE = "benchsink"  # durable consumer "benchsink-OVERSIGHT"


def quiet_logs() -> None:
    """The kernel logs every connect at INFO; keep warnings and errors (a failed event must be seen)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


# -- events ----------------------------------------------------------------------------------------------------------


class BenchPinged(EventPayload, event_type="oversight.benchmark.pinged.v1"):
    """A single-entity event: the size of a typical registration or status change."""

    seq: int
    employer_id: str
    amount_fen: int


class BenchLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    person_id: str
    period: str
    base_fen: int
    amount_fen: int


class BenchLinesPosted(EventPayload, event_type="oversight.benchmark.posted.v1"):
    """A bulk event (ARCHITECTURE.md principle 6): up to 1 000 contribution lines."""

    seq: int
    employer_id: str
    period: str
    lines: list[BenchLine]


def make_payload(seq: int, lines_per_event: int) -> EventPayload:
    if lines_per_event == 0:
        return BenchPinged(seq=seq, employer_id=f"E{seq:09d}", amount_fen=(seq * 7919) % 1_000_000)
    # Validated from plain data, as a bulk endpoint would build it from a request body.
    lines = []
    for i in range(lines_per_event):
        base = 400_000 + (seq * 31 + i * 17) % 2_000_000
        lines.append({"person_id": f"11010119{seq % 100:02d}0101{i:04d}", "period": "2025-01",
                      "base_fen": base, "amount_fen": base * 16 // 100})
    return BenchLinesPosted.model_validate({"seq": seq, "employer_id": f"E{seq:09d}", "period": "2025-01",
                                            "lines": lines})


def payload_totals(payload: EventPayload) -> tuple[int, int]:
    """(lines, amount_fen) of one payload, as the consumer's handler records them."""
    if isinstance(payload, BenchLinesPosted):
        return len(payload.lines), sum(line.amount_fen for line in payload.lines)
    assert isinstance(payload, BenchPinged)
    return 0, payload.amount_fen


# -- the consumer's table and handlers -------------------------------------------------------------------------------


class BenchTable(SQLModel, registry=registry()):
    pass


bench_metadata = BenchTable.metadata


class BenchApplied(BenchTable, table=True):
    """One row per applied event; both keys are unique, so an event applied twice fails instead of counting twice."""

    __tablename__ = "bench_applied"

    event_id: str = Field(primary_key=True, max_length=36)
    seq: int = Field(unique=True)
    lines: int
    amount_fen: int
    latency_ms: float  # envelope built (producer, before its commit) -> handler ran (consumer, before its commit)


def apply_event(session: Session, envelope: EventEnvelope) -> None:
    payload = envelope.payload()  # parse and validate, as real handlers do
    lines, amount = payload_totals(payload)
    latency_ms = (datetime.now(UTC) - envelope.time).total_seconds() * 1000.0
    session.add(BenchApplied(event_id=envelope.id, seq=payload.seq, lines=lines, amount_fen=amount,
                             latency_ms=latency_ms))


HANDLERS = {BenchPinged.event_type: apply_event, BenchLinesPosted.event_type: apply_event}


def create_schema(engine: Engine, *, consumer: bool) -> None:
    """Bench is not a production path: ``create_all`` instead of the alembic branches."""
    kernel_metadata.create_all(engine)
    if consumer:
        bench_metadata.create_all(engine)


def ids_digest(ids) -> str:
    h = hashlib.sha256()
    for event_id in sorted(ids):
        h.update(event_id.encode())
        h.update(b"\n")
    return h.hexdigest()


def percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    values = sorted(values)

    def pct(p: float) -> float:
        return round(values[min(len(values) - 1, int(p * len(values)))], 2)

    return {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": round(values[-1], 2)}


# -- instrumented kernel classes (timing only) -----------------------------------------------------------------------


class TimedRelay(OutboxRelay):
    """``OutboxRelay`` with counters around its phases; sets ``done`` once ``target`` rows were published."""

    def __init__(self, *args, target: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.target = target
        self.done = asyncio.Event()
        self.t_started: float | None = None
        self.t_first_publish: float | None = None
        self.t_done: float | None = None
        self.load_s = 0.0  # inside the worker thread: SELECT of a batch
        self.mark_s = 0.0  # inside the worker thread: UPDATE ... WHERE seq IN (...) (+ COMMIT on SQLite)
        self.batch_s = 0.0  # whole publish_pending calls that published something
        self.batches = 0
        self.empty_polls = 0
        self.batch_sizes: list[int] = []
        self.load_ms: list[float] = []
        self.mark_ms: list[float] = []
        self.publish_ms: list[float] = []

    async def start(self) -> None:
        self.t_started = time.monotonic()
        await super().start()

    def _load_batch(self):
        t = time.monotonic()
        try:
            return super()._load_batch()
        finally:
            self.load_s += time.monotonic() - t
            self.load_ms.append((time.monotonic() - t) * 1000)

    def _mark_published(self, connection, seqs: list[int]) -> None:  # noqa: ANN001
        t = time.monotonic()
        try:
            super()._mark_published(connection, seqs)
        finally:
            self.mark_s += time.monotonic() - t
            self.mark_ms.append((time.monotonic() - t) * 1000)

    async def publish_pending(self) -> int:
        t = time.monotonic()
        load_before, mark_before = self.load_s, self.mark_s
        n = await super().publish_pending()
        if n:
            self.t_first_publish = self.t_first_publish or t
            elapsed = time.monotonic() - t
            self.batch_s += elapsed
            self.publish_ms.append((elapsed - (self.load_s - load_before) - (self.mark_s - mark_before)) * 1000)
            self.batches += 1
            self.batch_sizes.append(n)
            if self.published_total >= self.target and not self.done.is_set():
                self.t_done = time.monotonic()
                self.done.set()
        else:
            self.empty_polls += 1
        return n

    def stats(self) -> dict:
        return {
            "batches": self.batches,
            "mean_batch": round(sum(self.batch_sizes) / len(self.batch_sizes), 1) if self.batch_sizes else 0,
            "empty_polls": self.empty_polls,
            "load_seconds": round(self.load_s, 4),
            "mark_seconds": round(self.mark_s, 4),
            # publish_async of the batch, waiting for every ack, and the two worker-thread hops
            "publish_ack_seconds": round(self.batch_s - self.load_s - self.mark_s, 4),
            "load_ms": percentiles(self.load_ms),
            "mark_ms": percentiles(self.mark_ms),
            "publish_ack_ms": percentiles(self.publish_ms),
        }


class TimedConsumer(EventConsumer):
    """``EventConsumer`` with counters; sets ``done`` once ``expected`` events were applied (committed)."""

    def __init__(self, *args, expected: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.expected = expected
        self.done = asyncio.Event()
        self.subscribed = asyncio.Event()
        self.t_first_apply: float | None = None
        self.t_last_commit: float | None = None
        self.apply_s = 0.0  # inside the worker thread: parse, savepoint per event, handler, inbox row, COMMIT
        self.process_s = 0.0  # apply + thread hops + acks
        self.batches = 0
        self.delivered = 0
        self.redelivered = 0
        self.fetch_ms: list[float] = []  # fetches that returned messages
        self.apply_ms: list[float] = []

    async def _subscribe(self):
        sub = _TimedSubscription(await super()._subscribe(), self.fetch_ms)
        self.subscribed.set()
        return sub

    def _apply_batch(self, deliveries, **bounds) -> int:  # noqa: ANN003
        t = time.monotonic()
        taken = super()._apply_batch(deliveries, **bounds)
        deliveries = deliveries[:taken]
        end = time.monotonic()
        self.apply_s += end - t
        self.apply_ms.append((end - t) * 1000)
        self.t_first_apply = self.t_first_apply or t
        self.t_last_commit = end
        self.batches += 1
        self.delivered += len(deliveries)
        self.redelivered += sum(1 for d in deliveries if d.num_delivered > 1)
        return taken

    async def process(self, messages: list) -> None:
        t = time.monotonic()
        await super().process(messages)
        self.process_s += time.monotonic() - t
        if self.applied_total >= self.expected or self.dead_lettered_total:
            self.done.set()  # a dead letter fails the verification at once instead of timing out


class _TimedSubscription:
    def __init__(self, sub, fetch_ms: list[float]):  # noqa: ANN001
        self._sub = sub
        self._fetch_ms = fetch_ms

    async def fetch(self, batch: int, timeout: float | None = None) -> list:
        t = time.monotonic()
        msgs = await self._sub.fetch(batch, timeout=timeout)
        self._fetch_ms.append((time.monotonic() - t) * 1000)
        return msgs

    def __getattr__(self, name: str):
        return getattr(self._sub, name)


# -- the consumer process --------------------------------------------------------------------------------------------


def consumer_process(conn) -> None:  # noqa: ANN001 - multiprocessing Connection
    """Entry point of the consumer process (spawned): one 'service' with its own database and NATS connection."""
    quiet_logs()
    try:
        asyncio.run(_ConsumerSide(conn).serve())
    except Exception:  # noqa: BLE001
        conn.send(("error", traceback.format_exc()))


class _ConsumerSide:
    def __init__(self, conn):  # noqa: ANN001
        self.conn = conn
        self.engine: Engine | None = None
        self.bus: Bus | None = None

    async def recv(self):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.conn.recv)

    async def serve(self) -> None:
        while True:
            cmd, args = await self.recv()
            if cmd == "exit":
                return
            try:
                reply = await getattr(self, f"cmd_{cmd}")(**args)
                self.conn.send(("ok", reply))
            except Exception:  # noqa: BLE001 - reported to the parent, which fails loudly
                self.conn.send(("error", traceback.format_exc()))

    async def cmd_setup(self, db_path: str, nats_url: str) -> dict:
        self.engine = make_engine(f"sqlite:///{db_path}")
        create_schema(self.engine, consumer=True)
        self.bus = Bus(nats_url, client_name="bench-consumer", duplicate_window=DUPLICATE_WINDOW)
        await self.bus.start()
        if not await self.bus.wait_ready(timeout=15):
            raise RuntimeError("consumer: bus not ready")
        return {}

    async def cmd_run(self, expected: int, timeout: float, batch_size: int, fetch_timeout: float) -> dict:
        assert self.engine is not None and self.bus is not None
        consumer = TimedConsumer(service=CONSUMER_SERVICE, stream=STREAM, engine=self.engine, bus=self.bus,
                                 handlers=HANDLERS, batch_size=batch_size, fetch_timeout=fetch_timeout,
                                 expected=expected)
        t_start = time.monotonic()
        await consumer.start()
        await asyncio.wait_for(consumer.subscribed.wait(), 15)
        # Tell the parent we are listening (it starts producing in concurrent mode), then wait for the last event.
        self.conn.send(("started", {"t_start": t_start}))
        try:
            await asyncio.wait_for(consumer.done.wait(), timeout)
        except TimeoutError:
            raise RuntimeError(f"consumer applied {consumer.applied_total} of {expected} within {timeout}s "
                               f"(dead-lettered {consumer.dead_lettered_total})") from None
        await asyncio.sleep(0.3)  # let any stray redelivery arrive, so a duplicate would show up below
        await consumer.stop()
        return {
            "t_start": t_start,
            "t_first_apply": consumer.t_first_apply,
            "t_last_commit": consumer.t_last_commit,
            "applied_total": consumer.applied_total,
            "dead_lettered_total": consumer.dead_lettered_total,
            "batches": consumer.batches,
            "delivered": consumer.delivered,
            "redelivered": consumer.redelivered,
            "apply_seconds": consumer.apply_s,
            "process_seconds": consumer.process_s,
            "fetch_ms": percentiles(consumer.fetch_ms),
            "apply_ms": percentiles(consumer.apply_ms),
            "db": await asyncio.to_thread(self.inspect),
        }

    def inspect(self) -> dict:
        with Session(self.engine) as session:
            rows, distinct_seq, min_seq, max_seq, lines, amount = session.execute(
                select(func.count(), func.count(func.distinct(BenchApplied.seq)), func.min(BenchApplied.seq),
                       func.max(BenchApplied.seq), func.coalesce(func.sum(BenchApplied.lines), 0),
                       func.coalesce(func.sum(BenchApplied.amount_fen), 0))
            ).one()
            ids = session.execute(select(BenchApplied.event_id)).scalars().all()
            inbox_ids = session.execute(select(InboxMessage.event_id)).scalars().all()
            dead = session.execute(select(func.count()).select_from(DeadLetter)).scalar_one()
            latencies = session.execute(select(BenchApplied.latency_ms)).scalars().all()
            session.rollback()
        return {
            "rows": rows, "distinct_seq": distinct_seq, "min_seq": min_seq, "max_seq": max_seq,
            "lines": lines, "amount_fen": amount, "ids_digest": ids_digest(ids),
            "inbox_rows": len(inbox_ids), "inbox_digest": ids_digest(inbox_ids), "dead_letters": dead,
            "latency_ms": percentiles(latencies),
        }

    async def cmd_teardown(self) -> dict:
        if self.bus is not None:
            await self.bus.close()
        if self.engine is not None:
            self.engine.dispose()
        self.bus = self.engine = None
        return {}


def outbox_inspect(engine: Engine) -> dict:
    with Session(engine) as session:
        ids = session.execute(select(OutboxMessage.event_id)).scalars().all()
        unpublished = session.execute(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.published_at.is_(None))
        ).scalar_one()
        mean_bytes = session.execute(select(func.avg(func.length(OutboxMessage.envelope)))).scalar_one()
        session.rollback()
    return {"rows": len(ids), "unpublished": unpublished, "ids_digest": ids_digest(ids),
            "mean_envelope_bytes": round(mean_bytes or 0)}
