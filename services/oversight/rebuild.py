"""Rebuild the ledger, the mirror and the rules' facts from the streams (OVERSIGHT.md: oversight keeps its own books,
built only from events).

``rebuild_ledger(app)`` empties every ledger table and replays the streams COLLECTION, ACCOUNTS and BENEFITS from
sequence 1 through an ephemeral pull consumer (deliver all, no acks, in memory, removed afterwards) into the same
handlers the live consumers run, in ONE database transaction: a failure leaves the ledger as it was. Month-close
snapshots are not ledger tables and are kept (a closed month then shows what the rebuild changed as post-close
adjustments, if anything).

Exactness. Each part rebuilt must end up equal to what the live consumers built, no more and no less:

- the live consumers of the streams replayed are paused for the duration (they finish the batch in hand; messages
  fetched but not acknowledged come back later and the inbox skips them), and restarted afterwards;
- an event is replayed only if the inbox holds it — i.e. the live consumer applied it (to the mirror's, the
  ledger's and the rules' handlers alike, in one transaction). An event published but not consumed yet is left to the live consumer,
  which applies it once it resumes; a dead-lettered event was never applied and stays so until an operator replays
  it. So the rebuild reproduces exactly the set of events the service has applied;
- an event stored twice in a stream (published again outside the duplicate window) is replayed once, as the inbox
  applied it once;
- on PostgreSQL the tables rebuilt are locked (EXCLUSIVE: reads go on) so that a dead letter replayed meanwhile waits
  for the rebuild and is then applied once; on SQLite the transaction's write lock does the same.

A stream whose first message is no longer sequence 1 (purged or limited) cannot be replayed exactly: refused with
``STREAM_TRUNCATED`` before anything is touched.

Parts. The same replay rebuilds, besides the **ledger**:

- the **mirror** (``mirrored_*``: registry and partner facts, streams ACCOUNTS and EXCHANGE);
- the **facts** the suspicion rules and the case workflow keep from events (``rules.models.EVENT_FACT_TABLES``:
  paid periods, beneficiaries, payees, claims and their decisions, contribution bases and clamps, life-status
  changes; ``benefit_signal``; streams BENEFITS, ACCOUNTS and COLLECTION). Their handlers are ``FactHandler``s
  (``services/oversight/facts.py``) whose ``record`` step writes the facts and touches no case; the replay runs that
  step alone (``rules.handlers.FACTS_CONSUMERS``, ``cases.handlers.SIGNALS_CONSUMER``), never the ``act`` step that
  opens, counts or confirms cases. So a rebuild gives the fact tables back and leaves every case — its state,
  occurrences, follow-ups, history — as officers left it. The sweep's own tables (``rule_sweep``, and the corrections
  and cursor it reads from accounts' audit chain) do not come from events and are kept;
- the **receipts** of the agency's internal-control yearly reports (``control_report_receipt``, 001 第二十四条:
  ``accounts.internal_control.report_submitted.v1`` on stream ACCOUNTS, the first report of a year and area kept),
  which the deadline view reads. The non-conformities on the same stream open cases: not replayed
  (``internal_control.handlers.RECEIPTS_CONSUMER`` holds the receipt's handler alone).

``replay_streams(..., parts=("mirror", "ledger", "facts", "receipts"))`` empties the tables of every part named and runs, per
event in stream order, the handlers of those parts in the order the live consumer runs them (mirror, ledger, facts,
as ``app.py`` declares them). A part is replayed with the parts it ``needs``: the facts need the ledger (the rules
skip an assessment the ledger already knows superseded — as the ledger stood at that event, not at its end), so
asking for the facts rebuilds the ledger with them.

Columns that say when this process applied an event rather than what the event said (``received_at``,
``updated_at``) are set anew by a replay; every other column comes back equal.

Running or stopped. ``rebuild_oversight(app)`` (every part by default) runs inside a running oversight (the officer's job endpoint) and
pauses that process's consumers of the streams replayed. ``sifund oversight rebuild`` (``replay_streams``) runs
against a *stopped* oversight's database and refuses while any oversight replica answers ``/health/live``: another
process's consumers cannot be paused from outside, and they would race the replay.
"""

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import anyio
import nats.errors
import structlog
from fastapi import APIRouter, Request
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import Engine, delete, select, text

from services.kernel import clock, context, wire
from services.kernel.audit import append_audit
from services.kernel.db import unit_of_work
from services.kernel.errors import Conflict
from services.kernel.events import STREAMS, EventEnvelope, new_event_id
from services.kernel.auth import allow
from services.kernel.inbox import EventConsumer
from services.kernel.jobs import JobContext, JobKind, JobOut, accepted
from services.kernel.models import InboxMessage
from services.oversight import models as mirror_models
from services.oversight.cases.handlers import SIGNALS_CONSUMER
from services.oversight.cases.models import BenefitSignal
from services.oversight.internal_control.handlers import RECEIPTS_CONSUMER
from services.oversight.internal_control.models import ControlReportReceipt
from services.oversight.ledger.handlers import LEDGER_CONSUMERS
from services.oversight.ledger.models import LEDGER_TABLES
from services.oversight.mirror.handlers import ACCOUNTS_CONSUMER, EXCHANGE_CONSUMER
from services.oversight.rules.handlers import FACTS_CONSUMERS
from services.oversight.rules.models import EVENT_FACT_TABLES

log = structlog.get_logger(__name__)

FETCH_BATCH = 1000
FETCH_TIMEOUT = 5.0
ID_CHUNK = 500
SYSTEM = context.Actor(id="system:oversight-ledger", role="system")


@dataclass(frozen=True)
class Part:
    """Derived tables rebuilt together, the consumer specs whose handlers fill them, and the parts whose tables
    those handlers read as they stood at each event (replayed with it, in the same pass)."""

    name: str
    tables: tuple[type, ...]
    specs: tuple[Any, ...]
    needs: tuple[str, ...] = ()

    @property
    def streams(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(spec.stream for spec in self.specs))


MIRROR_TABLES = tuple(getattr(mirror_models, name) for name in dir(mirror_models)
                      if name.startswith("Mirrored") and hasattr(getattr(mirror_models, name), "__table__"))
FACT_TABLES = (*EVENT_FACT_TABLES, BenefitSignal)
# In the order the live consumers run the handlers (app.py): the mirror first, then the ledger, then the facts the
# case workflow and the rules keep (their record steps only: nothing that opens or updates a case).
PARTS = {
    "mirror": Part("mirror", MIRROR_TABLES, (ACCOUNTS_CONSUMER, EXCHANGE_CONSUMER)),
    "ledger": Part("ledger", tuple(LEDGER_TABLES), tuple(LEDGER_CONSUMERS)),
    # the rules skip an assessment the ledger already knows superseded: the ledger as it stood at that event
    "facts": Part("facts", FACT_TABLES, (SIGNALS_CONSUMER, *FACTS_CONSUMERS), needs=("ledger",)),
    # the internal-control reports received: they read no other part
    "receipts": Part("receipts", (ControlReportReceipt,), (RECEIPTS_CONSUMER,)),
}
ALL_PARTS = tuple(PARTS)


def with_needs(parts: Iterable[str]) -> tuple[str, ...]:
    """``parts`` and every part they need, in the live order."""
    wanted = set(parts)
    for name in reversed(ALL_PARTS):
        if name in wanted:
            wanted.update(PARTS[name].needs)
    return tuple(p for p in ALL_PARTS if p in wanted)


def _handlers(parts: Iterable[str]) -> dict[str, list]:
    """Event type → the handlers of ``parts`` for it, in the live order."""
    handlers: dict[str, list] = {}
    for name in ALL_PARTS:
        if name in parts:
            for spec in PARTS[name].specs:
                for event_type, handler in spec.handlers.items():
                    handlers.setdefault(event_type, []).append(handler)
    return handlers


def part_streams(parts: Iterable[str]) -> tuple[str, ...]:
    streams: list[str] = []
    for name in ALL_PARTS:
        if name in parts:
            streams += [s for s in PARTS[name].streams if s not in streams]
    return tuple(streams)


def part_tables(parts: Iterable[str]) -> list[type]:
    return [table for name in ALL_PARTS if name in parts for table in PARTS[name].tables]


@dataclass
class StreamReplay:
    last_seq: int
    read: int = 0
    applied: int = 0  # events the service had applied, replayed into the parts rebuilt
    not_applied: int = 0  # events not (yet) in the inbox: left to the live consumer
    duplicates: int = 0
    unreadable: int = 0


@dataclass
class RebuildResult:
    streams: dict[str, StreamReplay] = field(default_factory=dict)
    rows_deleted: int = 0
    seconds: float = 0.0
    parts: tuple[str, ...] = ("ledger",)

    def as_dict(self) -> dict[str, Any]:
        return {"parts": list(self.parts), "streams": {s: vars(r) for s, r in self.streams.items()},
                "rows_deleted": self.rows_deleted, "seconds": round(self.seconds, 3)}


class _Replay:
    """The database side: one session, one transaction, driven batch by batch from worker threads."""

    def __init__(self, engine: Engine, parts: Iterable[str] = ("ledger",)):
        self.parts = tuple(parts)
        self.tables = part_tables(self.parts)
        self.handlers = _handlers(self.parts)
        # The rebuild's one unit of work, entered here and left by finish (commit) or abort (rollback).
        self._work = unit_of_work(engine)
        self.session = self._work.__enter__()
        self.seen: set[str] = set()

    def start(self) -> int:
        session = self.session
        if session.get_bind().dialect.name == "postgresql":
            names = ", ".join(model.__tablename__ for model in self.tables)
            session.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
        deleted = 0
        for model in self.tables:
            deleted += session.execute(delete(model)).rowcount or 0
        return deleted

    def apply(self, raws: list[bytes], replay: StreamReplay) -> None:
        envelopes: list[EventEnvelope] = []
        for raw in raws:
            try:
                envelope = EventEnvelope.from_bytes(raw)
            except ValueError:
                replay.unreadable += 1  # the live consumer dead-lettered it: never applied
                continue
            if envelope.type not in self.handlers:
                continue
            if envelope.id in self.seen:
                replay.duplicates += 1
                continue
            self.seen.add(envelope.id)
            envelopes.append(envelope)
        applied: set[str] = set()
        ids = [e.id for e in envelopes]
        for start in range(0, len(ids), ID_CHUNK):
            applied.update(self.session.execute(
                select(InboxMessage.event_id).where(InboxMessage.event_id.in_(ids[start:start + ID_CHUNK]))
            ).scalars())
        for envelope in envelopes:
            if envelope.id not in applied:
                replay.not_applied += 1
                continue
            with context.trace(actor=SYSTEM, correlation_id=envelope.correlation_id, causation_id=envelope.id):
                for handler in self.handlers[envelope.type]:
                    handler(self.session, envelope)
            replay.applied += 1

    def finish(self, result: RebuildResult) -> None:
        with context.trace(actor=SYSTEM):
            append_audit(self.session, action="ledger.rebuilt", entity_type="ledger", entity_id="+".join(self.parts),
                         detail=result.as_dict())
        work, self._work = self._work, None
        work.__exit__(None, None, None)

    def abort(self) -> None:
        if self._work is not None:
            work, self._work = self._work, None
            work.__exit__(RuntimeError, RuntimeError("ledger rebuild aborted"), None)

    def close(self) -> None:
        self.session.close()


async def _horizons(js: Any, streams: Iterable[str]) -> dict[str, StreamReplay]:
    horizons = {}
    for stream in streams:
        state = (await js.stream_info(stream)).state
        if state.messages and state.first_seq > 1:
            raise Conflict("STREAM_TRUNCATED", f"事件流 {stream} 已不从第 1 条开始（首条序号 {state.first_seq}），"
                                               "无法从事件完整重建监督台账")
        horizons[stream] = StreamReplay(last_seq=state.last_seq if state.messages else 0)
    return horizons


async def _read_stream(js: Any, stream: str, replay: StreamReplay, db: _Replay) -> None:
    if replay.last_seq == 0:
        return
    name = f"oversight-ledger-rebuild-{new_event_id()[-12:]}"
    await js.add_consumer(stream, ConsumerConfig(
        name=name, deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE,
        filter_subject=f"{STREAMS[stream]}.>", inactive_threshold=120.0, mem_storage=True))
    subscription = await js.pull_subscribe_bind(stream=stream, name=name)
    try:
        done = False
        while not done:
            try:
                messages = await subscription.fetch(FETCH_BATCH, timeout=FETCH_TIMEOUT)
            except (TimeoutError, nats.errors.TimeoutError):
                raise RuntimeError(f"{stream}: no message after sequence {replay.read} of {replay.last_seq}") from None
            raws = []
            for message in messages:
                if message.metadata.sequence.stream > replay.last_seq:
                    done = True
                    break
                raws.append(wire.body_of(message))
                if message.metadata.sequence.stream == replay.last_seq:
                    done = True
                    break
            replay.read += len(raws)
            await anyio.to_thread.run_sync(db.apply, raws, replay)
    finally:
        try:
            await subscription.unsubscribe()
        finally:
            try:
                await js.delete_consumer(stream, name)
            except Exception:  # noqa: BLE001 - it expires on its own (inactive_threshold)
                log.warning("ledger.rebuild_consumer_not_deleted", stream=stream, consumer=name)


async def replay_streams(engine: Engine, js: Any, *, parts: Iterable[str] = ("ledger",),
                         streams: Iterable[str] | None = None) -> RebuildResult:
    """Empty the tables of ``parts`` and replay their streams into them, in one transaction. The caller makes sure
    no live consumer of those streams runs meanwhile (``rebuild_oversight`` pauses them)."""
    parts = with_needs(parts)
    started = time.perf_counter()
    result = RebuildResult(streams=await _horizons(js, streams or part_streams(parts)), parts=parts)
    db = _Replay(engine, parts)
    try:
        result.rows_deleted = await anyio.to_thread.run_sync(db.start)
        for stream, replay in result.streams.items():
            await _read_stream(js, stream, replay, db)
        result.seconds = time.perf_counter() - started
        await anyio.to_thread.run_sync(db.finish, result)
    except BaseException:
        await anyio.to_thread.run_sync(db.abort)
        raise
    finally:
        db.close()
    log.info("ledger.rebuilt", **result.as_dict(), at=clock.utc_now().isoformat())
    return result


def _fresh(consumer: EventConsumer) -> EventConsumer:
    return EventConsumer(
        service=consumer.service, stream=consumer.stream, engine=consumer.engine, bus=consumer.bus,
        handlers=consumer.handlers, ignores=consumer.ignores, batch_size=consumer.batch_size,
        max_attempts=consumer.max_attempts, retry_delay=consumer.retry_delay, fetch_timeout=consumer.fetch_timeout,
        ack_wait=consumer.ack_wait, transaction_seconds=consumer.transaction_seconds,
        transaction_events=consumer.transaction_events)


async def rebuild_ledger(app: Any) -> RebuildResult:
    """Rebuild the running oversight service's ledger from its streams (see the module docstring)."""
    return await rebuild_oversight(app, parts=("ledger",))


async def rebuild_oversight(app: Any, parts: Iterable[str] = ALL_PARTS) -> RebuildResult:
    """Rebuild ``parts`` of the running oversight service from its streams, its own consumers of those streams
    paused meanwhile (see the module docstring)."""
    parts = with_needs(parts)
    state = app.state
    if not await state.bus.wait_ready(timeout=10):
        raise Conflict("BUS_UNAVAILABLE", "消息总线未连接，无法从事件重建监督台账")
    paused = {s: state.consumers[s] for s in part_streams(parts) if s in state.consumers}
    for consumer in paused.values():
        await consumer.stop()
    # A stopped consumer's last pull request stays open on the server until it expires (its fetch timeout); what it
    # receives meanwhile waits for the ack timeout before coming back. Resuming after it expired keeps events
    # published after the rebuild from that detour.
    resume_at = time.monotonic() + max((c.fetch_timeout for c in paused.values()), default=0) + 0.25
    try:
        return await replay_streams(state.engine, state.bus.js, parts=parts)
    finally:
        await asyncio.sleep(max(0.0, resume_at - time.monotonic()))
        for stream, consumer in paused.items():
            fresh = _fresh(consumer)
            state.consumers[stream] = fresh
            await fresh.start()


# -- as a background job ---------------------------------------------------------------------------------------------
# A rebuild replays whole streams in one transaction by design (a failure leaves the ledger as it was), so it is one
# step: started by an officer (202 + job id), polled at GET /jobs/{id}; one at a time (a second request while one is
# queued or running answers that one); if the process dies during it, nothing of it was committed and the
# restarted process runs it again from the start.

async def _rebuild_step(ctx: JobContext) -> dict[str, Any]:
    return (await rebuild_oversight(SimpleNamespace(state=ctx.state), parts=ALL_PARTS)).as_dict()


LEDGER_REBUILD = JobKind(name="oversight.ledger_rebuild", submitters=frozenset({"oversight_officer"}),
                         readers=frozenset({"oversight_officer", "internal_auditor"}), run_async=_rebuild_step,
                         exclusive=True)
JOB_KINDS = [LEDGER_REBUILD]

router = APIRouter(prefix="/ledger", tags=["ledger"])


@router.post("/rebuild", status_code=202, response_model=JobOut, dependencies=[allow("oversight_officer")],
             summary="Rebuild the mirror, the ledger, the rules' facts and the internal-control report receipts "
                     "from the streams, as a background job (officers only)",
             description="Empties the mirror, ledger, fact and receipt tables and replays ACCOUNTS, EXCHANGE, "
                         "COLLECTION and "
                         "BENEFITS from sequence 1 in one transaction (the live consumers pause meanwhile); cases are "
                         "not touched (the rules' record steps only). Accepted with 202 and "
                         "`Location: …/jobs/{id}`; the result gives, per stream, the events read, replayed, left to "
                         "the live consumer and duplicates. While a rebuild is queued or running, a second request "
                         "answers the same job.")
async def start_rebuild(request: Request) -> Any:
    runner = request.app.state.jobs
    job, _ = await anyio.to_thread.run_sync(lambda: runner.submit(LEDGER_REBUILD.name))
    return accepted(request, job)
