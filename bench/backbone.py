"""Event backbone throughput on this machine: ``make bench`` (``python -m bench.backbone [--quick] [--n N]``).

Measured in one run, each scenario on a fresh ``nats-server`` (``sifund.natsd``, file store, ``sync_interval:
always`` as in production) and fresh SQLite databases (WAL, ``synchronous=FULL``, ``BEGIN IMMEDIATE``: the kernel's
settings):

* ``pipeline_*``: business transactions call ``record_event`` (producer database) -> ``OutboxRelay`` -> JetStream ->
  ``EventConsumer`` (inbox, one savepoint per event) whose handler inserts one row in the consumer's database. The
  producer (a worker thread, like a sync endpoint, plus the relay on the event loop) and the consumer are two
  processes, as two services would be. Each scenario runs twice:

  - ``end_to_end``: everything live; from the start of the first producer transaction to the commit of the last
    event in the consumer's database;
  - ``staged``: produce everything with no relay running, then run the relay alone until the outbox is drained, then
    the consumer alone until everything is applied: the separate rates of each stage.

  ``single`` writes one small event per transaction, ``batch100`` 100 small events per transaction, ``bulk1000`` 10
  events of 1 000 contribution lines per transaction (a 10 000-line bulk upload, ARCHITECTURE.md principle 6).
* ``raw_*``: the ceiling, nats-py alone with the same message sizes and the same stream configuration:
  ``publish_async`` with ``Nats-Msg-Id``, wait for every ack; then a durable pull consumer, ``fetch`` batches, ack each.
* ``kernel_costs``: the per-event costs of the kernel's pieces without NATS (building an envelope, parsing one, the
  consumer's transaction as the kernel runs it and two counterfactuals: a savepoint per event, no savepoint; a
  worker-thread hop).

Every scenario is verified (counts, event-id sets on both sides, no duplicate, no dead letter, JetStream stored each
event once); any discrepancy fails the run with exit status 1 and no results file.
"""

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import anyio
import nats
import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from sqlalchemy import func, select
from sqlmodel import Session

from bench.backbone_pipeline import (
    CONSUMER_SERVICE,
    DUPLICATE_WINDOW,
    HANDLERS,
    STREAM,
    BenchApplied,
    TimedRelay,
    consumer_process,
    create_schema,
    make_payload,
    outbox_inspect,
    payload_totals,
    percentiles,
    quiet_logs,
)
from services.kernel import context
from services.kernel.bus import Bus, stream_config
from services.kernel.db import make_engine, unit_of_work
from services.kernel.events import EventActor, build_envelope, new_event_id
from services.kernel.inbox import EventConsumer, _Delivery
from services.kernel.outbox import record_event
from services.kernel.settings import Settings
from sifund.natsd import NatsServer, nats_server_binary

RESULTS = Path(__file__).parent / "results" / "backbone.json"

# The production defaults, not whatever SIFUND_* says in this shell.
_DEFAULTS = Settings.model_fields
OUTBOX_BATCH = _DEFAULTS["outbox_batch_size"].default
OUTBOX_POLL = _DEFAULTS["outbox_poll_seconds"].default
CONSUMER_BATCH = _DEFAULTS["consumer_batch_size"].default
FETCH_TIMEOUT = 1.0  # EventConsumer's default

RAW_SUBJECT = "oversight.benchmark.raw.v1"


class BenchFailure(RuntimeError):
    pass


@dataclass(frozen=True)
class Scenario:
    name: str
    transactions: int
    events_per_tx: int
    lines_per_event: int

    @property
    def events(self) -> int:
        return self.transactions * self.events_per_tx

    @property
    def lines(self) -> int:
        return self.events * self.lines_per_event


def scenarios(n: int) -> list[Scenario]:
    return [
        Scenario("single", transactions=n, events_per_tx=1, lines_per_event=0),
        Scenario("batch100", transactions=max(1, 4 * n // 100), events_per_tx=100, lines_per_event=0),
        Scenario("bulk1000", transactions=max(1, n // 125), events_per_tx=10, lines_per_event=1000),
    ]


def rate(count: float, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def check(problems: list[str], label: str, got, want) -> None:  # noqa: ANN001
    if got != want:
        problems.append(f"{label}: got {got!r}, expected {want!r}")


# -- the consumer process, driven over a pipe ------------------------------------------------------------------------


class ConsumerProcess:
    def __init__(self):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=consumer_process, args=(child_conn,), name="bench-consumer", daemon=True)
        self.process.start()

    def send(self, cmd: str, **args) -> None:
        self.conn.send((cmd, args))

    async def expect(self, kind: str, timeout: float) -> dict:
        def _recv():
            deadline = time.monotonic() + timeout
            while not self.conn.poll(0.2):
                if not self.process.is_alive():
                    raise BenchFailure(f"consumer process died (exit code {self.process.exitcode})")
                if time.monotonic() > deadline:
                    raise BenchFailure(f"consumer process: no {kind!r} within {timeout}s")
            try:
                return self.conn.recv()
            except (EOFError, OSError) as exc:
                raise BenchFailure(f"consumer process gone ({exc!r}, exit code {self.process.exitcode})") from None

        got, body = await asyncio.to_thread(_recv)
        if got == "error":
            raise BenchFailure(f"consumer process failed:\n{body}")
        if got != kind:
            raise BenchFailure(f"consumer process: expected {kind!r}, got {got!r}")
        return body

    async def call(self, cmd: str, timeout: float = 60, **args) -> dict:
        self.send(cmd, **args)
        return await self.expect("ok", timeout)

    def close(self) -> None:
        if self.process.is_alive():
            self.send("exit")
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# -- pipeline --------------------------------------------------------------------------------------------------------


def produce(engine, sc: Scenario) -> dict:  # noqa: ANN001
    """The producer's business transactions, run in a worker thread as a sync endpoint would be."""
    tx_ms: list[float] = []
    lines_total = amount_total = 0
    seq = 0
    with context.trace(actor=context.Actor(id="system:bench", role="system"), request_id="bench-backbone"):
        t_first = time.monotonic()
        for _ in range(sc.transactions):
            t = time.monotonic()
            with unit_of_work(engine) as session:
                for _ in range(sc.events_per_tx):
                    payload = make_payload(seq, sc.lines_per_event)
                    lines, amount = payload_totals(payload)
                    lines_total += lines
                    amount_total += amount
                    record_event(session, payload, source="bench", subject=payload.employer_id)
                    seq += 1
            tx_ms.append((time.monotonic() - t) * 1000)
        t_last = time.monotonic()
    return {"t_first": t_first, "t_last": t_last, "events": seq, "lines": lines_total, "amount_fen": amount_total,
            "transaction_ms": percentiles(tx_ms)}


async def run_pipeline(sc: Scenario, mode: str, workdir: Path, consumer: ConsumerProcess) -> dict:
    d = workdir / f"{sc.name}-{mode}"
    server = NatsServer(d / "nats").start()
    timeout = 60 + sc.events / 200 + sc.lines / 20_000
    try:
        engine = make_engine(f"sqlite:///{d / 'producer.db'}")
        create_schema(engine, consumer=False)
        await consumer.call("setup", db_path=str(d / "consumer.db"), nats_url=server.url)
        bus = Bus(server.url, client_name="bench-producer", duplicate_window=DUPLICATE_WINDOW)
        await bus.start()
        if not await bus.wait_ready(timeout=15):
            raise BenchFailure("producer: bus not ready")
        relay = TimedRelay(engine, bus, batch_size=OUTBOX_BATCH, poll_seconds=OUTBOX_POLL, target=sc.events)
        run_args = {"expected": sc.events, "timeout": timeout, "batch_size": CONSUMER_BATCH,
                    "fetch_timeout": FETCH_TIMEOUT}
        if mode == "end_to_end":
            consumer.send("run", **run_args)
            await consumer.expect("started", 30)
            await relay.start()
            prod = await asyncio.to_thread(produce, engine, sc)
            await _wait(relay.done, timeout, lambda: f"relay published {relay.published_total} of {sc.events}")
            res = await consumer.expect("ok", timeout)
        else:
            prod = await asyncio.to_thread(produce, engine, sc)
            await relay.start()
            await _wait(relay.done, timeout, lambda: f"relay published {relay.published_total} of {sc.events}")
            consumer.send("run", **run_args)
            await consumer.expect("started", 30)
            res = await consumer.expect("ok", timeout)
        assert bus.js is not None
        stream_messages = (await bus.js.stream_info(STREAM)).state.messages
        await relay.stop()
        await bus.close()
        outbox = outbox_inspect(engine)
        engine.dispose()
        await consumer.call("teardown")
    finally:
        server.stop()

    problems: list[str] = []
    db = res["db"]
    check(problems, "events produced", prod["events"], sc.events)
    check(problems, "outbox rows", outbox["rows"], sc.events)
    check(problems, "outbox rows still unpublished", outbox["unpublished"], 0)
    check(problems, "messages stored in the stream (a duplicate publish would add one)", stream_messages, sc.events)
    check(problems, "consumer applied_total", res["applied_total"], sc.events)
    check(problems, "consumer dead-lettered", res["dead_lettered_total"], 0)
    check(problems, "bench rows", db["rows"], sc.events)
    check(problems, "distinct seq in bench rows", db["distinct_seq"], sc.events)
    check(problems, "seq range", (db["min_seq"], db["max_seq"]), (0, sc.events - 1))
    check(problems, "inbox rows", db["inbox_rows"], sc.events)
    check(problems, "dead_letter rows", db["dead_letters"], 0)
    check(problems, "event ids applied == event ids in the outbox", db["ids_digest"], outbox["ids_digest"])
    check(problems, "event ids in inbox == event ids in the outbox", db["inbox_digest"], outbox["ids_digest"])
    check(problems, "lines applied", db["lines"], prod["lines"])
    check(problems, "amount_fen applied", db["amount_fen"], prod["amount_fen"])
    if problems:
        raise BenchFailure(f"{sc.name}/{mode}: " + "; ".join(problems))

    produce_s = prod["t_last"] - prod["t_first"]
    producer = {"seconds": round(produce_s, 3), "transactions_per_s": rate(sc.transactions, produce_s),
                "events_per_s": rate(sc.events, produce_s), "transaction_ms": prod["transaction_ms"]}
    relay_stats = relay.stats()
    consumer_stats = {
        "batches": res["batches"],
        "mean_batch": round(res["delivered"] / res["batches"], 1) if res["batches"] else 0,
        "redelivered": res["redelivered"],
        "apply_seconds": round(res["apply_seconds"], 4),  # the transaction, in the worker thread
        "ack_and_thread_hop_seconds": round(res["process_seconds"] - res["apply_seconds"], 4),
        "fetch_ms": res["fetch_ms"],  # successful fetches: waiting for messages included
        "apply_ms": res["apply_ms"],
    }
    out: dict = {"verified": True, "producer": producer}
    if mode == "end_to_end":
        seconds = res["t_last_commit"] - prod["t_first"]
        out.update({
            "seconds": round(seconds, 3),
            "events_per_s": rate(sc.events, seconds),
            "transactions_per_s": rate(sc.transactions, seconds),
            "drain_after_last_commit_seconds": round(res["t_last_commit"] - prod["t_last"], 3),
            "build_to_apply_latency_ms": db["latency_ms"],
            "relay": relay_stats,
            "consumer": consumer_stats,
        })
    else:
        relay_s = relay.t_done - relay.t_started
        consume_s = res["t_last_commit"] - res["t_start"]
        out.update({
            "relay": {"seconds": round(relay_s, 3), "events_per_s": rate(sc.events, relay_s), **relay_stats},
            "consumer": {"seconds": round(consume_s, 3), "events_per_s": rate(sc.events, consume_s),
                         **consumer_stats},
        })
        if sc.lines:
            out["relay"]["lines_per_s"] = rate(sc.lines, relay_s)
            out["consumer"]["lines_per_s"] = rate(sc.lines, consume_s)
    if sc.lines:
        producer["lines_per_s"] = rate(sc.lines, produce_s)
        if mode == "end_to_end":
            out["lines_per_s"] = rate(sc.lines, out["seconds"])
    out["message_bytes"] = outbox["mean_envelope_bytes"]
    return out


async def _wait(event: asyncio.Event, timeout: float, progress) -> None:  # noqa: ANN001
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        raise BenchFailure(f"timed out after {timeout:.0f}s: {progress()}") from None


# -- raw nats-py ceiling ---------------------------------------------------------------------------------------------


class _DefaultSyncNats(NatsServer):
    """The same server without ``sync_interval: always`` (JetStream then fsyncs every 2 minutes): what that costs."""

    def start(self, **kwargs) -> "NatsServer":
        import sifund.natsd as natsd

        original = natsd.render_config

        def render(**kw) -> str:
            text = original(**kw)
            if "  sync_interval: always\n" not in text:
                raise BenchFailure("sifund.natsd.render_config no longer sets sync_interval: always; update the bench")
            return text.replace("  sync_interval: always\n", "")

        natsd.render_config = render
        try:
            return super().start(**kwargs)
        finally:
            natsd.render_config = original


async def run_raw(name: str, count: int, payload: bytes, workdir: Path, *, pipelined: bool = True,
                  consume: bool = True, lines_per_msg: int = 0, server_cls: type[NatsServer] = NatsServer) -> dict:
    server = server_cls(workdir / f"raw-{name}" / "nats").start()
    try:
        ids = [new_event_id() for _ in range(count)]
        nc = await nats.connect(server.url, name="bench-raw-publisher")
        js = nc.jetstream(timeout=10)
        await js.add_stream(stream_config(STREAM, DUPLICATE_WINDOW))  # the kernel's stream configuration
        t0 = time.monotonic()
        if pipelined:
            futures = [await js.publish_async(RAW_SUBJECT, payload, headers={"Nats-Msg-Id": i}) for i in ids]
            acks = await asyncio.gather(*futures)
        else:
            acks = [await js.publish(RAW_SUBJECT, payload, headers={"Nats-Msg-Id": i}) for i in ids]
        publish_s = time.monotonic() - t0
        stored = (await js.stream_info(STREAM)).state.messages
        await nc.close()
        problems: list[str] = []
        check(problems, "acks flagged duplicate", sum(1 for a in acks if a.duplicate), 0)
        check(problems, "distinct stream sequences in acks", len({a.seq for a in acks}), count)
        check(problems, "messages stored", stored, count)
        out = {"n": count, "message_bytes": len(payload), "publish": {
            "seconds": round(publish_s, 3), "msgs_per_s": rate(count, publish_s),
            "mbytes_per_s": round(count * len(payload) / publish_s / 1e6, 1)}}
        if lines_per_msg:
            out["publish"]["lines_per_s"] = rate(count * lines_per_msg, publish_s)
        if consume:
            nc = await nats.connect(server.url, name="bench-raw-consumer")
            js = nc.jetstream(timeout=10)
            await js.add_consumer(STREAM, ConsumerConfig(
                durable_name="raw", ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                filter_subject="oversight.>", ack_wait=60, max_deliver=-1, max_ack_pending=4 * CONSUMER_BATCH))
            sub = await js.pull_subscribe_bind(durable="raw", stream=STREAM)
            seen: set[str] = set()
            received = 0
            t0 = last = time.monotonic()
            while received < count:
                try:
                    msgs = await sub.fetch(CONSUMER_BATCH, timeout=FETCH_TIMEOUT)
                except (nats.errors.TimeoutError, TimeoutError):
                    if time.monotonic() - last > 15:
                        raise BenchFailure(f"raw {name}: consumed {received} of {count}, then nothing") from None
                    continue
                last = time.monotonic()
                for m in msgs:
                    seen.add(m.headers["Nats-Msg-Id"])
                    await m.ack()
                received += len(msgs)
            await nc.flush()
            consume_s = time.monotonic() - t0
            info = await js.consumer_info(STREAM, "raw")
            await nc.close()
            check(problems, "messages consumed", received, count)
            check(problems, "distinct Nats-Msg-Id consumed", len(seen), count)
            check(problems, "undelivered left", info.num_pending, 0)
            out["consume"] = {"seconds": round(consume_s, 3), "msgs_per_s": rate(count, consume_s),
                              "mbytes_per_s": round(count * len(payload) / consume_s / 1e6, 1)}
            if lines_per_msg:
                out["consume"]["lines_per_s"] = rate(count * lines_per_msg, consume_s)
        if problems:
            raise BenchFailure(f"raw {name}: " + "; ".join(problems))
        out["verified"] = True
        return out
    finally:
        server.stop()


def envelope_bytes(lines_per_event: int) -> bytes:
    envelope = build_envelope(make_payload(0, lines_per_event), source="bench", subject="E000000000",
                              actor=EventActor(id="system:bench", role="system"), correlation_id="bench-backbone",
                              causation_id=None)
    return envelope.to_bytes()


# -- the kernel's per-event costs, without NATS ----------------------------------------------------------------------


class _CounterfactualConsumer(EventConsumer):
    """The kernel's consumer transaction rewritten two ways, to price the savepoints (costs only, never used live):
    ``per_event`` gives every event its own savepoint (the kernel's fallback when a batch holds a poison event, and
    its only path before commit 351c84a); ``none`` applies the batch with no savepoint at all (the lower bound)."""

    savepoints = "per_event"

    def _apply_batch(self, deliveries) -> None:
        from services.kernel.events import EventEnvelope
        from services.kernel.models import InboxMessage

        for d in deliveries:
            d.envelope = EventEnvelope.from_bytes(d.raw)
        ids = [d.envelope.id for d in deliveries]
        with Session(self.engine) as session:
            seen = set(session.execute(select(InboxMessage.event_id).where(InboxMessage.event_id.in_(ids))).scalars())
            for d in deliveries:
                if d.envelope.id in seen:
                    continue
                if self.savepoints == "per_event":
                    with session.begin_nested():
                        self._apply_one(session, d.envelope)
                else:
                    self._apply_one(session, d.envelope)
                self.applied_total += 1
            session.commit()


class _PerEventSavepointConsumer(_CounterfactualConsumer):
    savepoints = "per_event"


class _NoSavepointConsumer(_CounterfactualConsumer):
    savepoints = "none"


def kernel_costs(workdir: Path, n: int) -> dict:
    """Microseconds per event of the kernel's steps, measured in isolation."""
    from services.kernel.events import EventEnvelope

    out: dict = {}
    engine = make_engine(f"sqlite:///{workdir / 'costs-producer.db'}")
    create_schema(engine, consumer=False)
    for label, lines, count in (("small", 0, n), ("bulk1000", 1000, max(50, n // 100))):
        envelope_bytes(lines)  # warm up (pydantic's first validation of a model is slower)
        t = time.perf_counter()
        payloads = [make_payload(i, lines) for i in range(count)]
        out[f"bench_payload_model_{label}_us"] = round((time.perf_counter() - t) / count * 1e6, 1)
        with Session(engine) as session:
            t = time.perf_counter()
            for p in payloads:
                record_event(session, p, source="bench", subject="E")
            build_s = time.perf_counter() - t
            session.rollback()
        out[f"record_event_{label}_us"] = round(build_s / count * 1e6, 1)
        raw = [envelope_bytes(lines) for _ in range(min(count, 200))]
        t = time.perf_counter()
        for r in raw:
            EventEnvelope.from_bytes(r).payload()
        out[f"parse_and_validate_{label}_us"] = round((time.perf_counter() - t) / len(raw) * 1e6, 1)
    engine.dispose()

    # The consumer's transaction: batches of CONSUMER_BATCH small events, with and without per-event savepoints.
    raws = [build_envelope(make_payload(i, 0), source="bench", subject="E", actor=EventActor(id="system:bench"),
                           correlation_id=None, causation_id=None).to_bytes() for i in range(n)]
    variants = (("kernel", EventConsumer), ("per_event_savepoint", _PerEventSavepointConsumer),
                ("no_savepoint", _NoSavepointConsumer))
    for label, cls in variants:
        eng = make_engine(f"sqlite:///{workdir / f'costs-{label}.db'}")
        create_schema(eng, consumer=True)
        c = cls(service=CONSUMER_SERVICE, stream=STREAM, engine=eng, bus=None, handlers=HANDLERS)  # type: ignore[arg-type]
        t = time.perf_counter()
        for i in range(0, n, CONSUMER_BATCH):
            c._apply_batch([_Delivery(raw=r, num_delivered=1) for r in raws[i:i + CONSUMER_BATCH]])
        elapsed = time.perf_counter() - t
        with Session(eng) as s:
            applied = s.execute(select(func.count()).select_from(BenchApplied)).scalar_one()
        if applied != n or c.applied_total != n:
            raise BenchFailure(f"kernel_costs {label}: applied {applied}/{c.applied_total} of {n}")
        out[f"consumer_apply_{label}_us"] = round(elapsed / n * 1e6, 1)
        eng.dispose()

    async def hops() -> float:
        t = time.perf_counter()
        for _ in range(2000):
            await anyio.to_thread.run_sync(lambda: None)
        return (time.perf_counter() - t) / 2000

    out["worker_thread_hop_us"] = round(asyncio.run(hops()) * 1e6, 1)
    out["n"] = n
    return out


# -- main ------------------------------------------------------------------------------------------------------------


def nats_version() -> str:
    try:
        return subprocess.run([nats_server_binary(), "--version"], capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except Exception as exc:  # noqa: BLE001
        return f"unknown ({exc})"


async def run_all(n: int, workdir: Path) -> dict:
    results: dict = {}
    scs = scenarios(n)

    # The ceiling first: same message sizes and stream configuration as the pipeline scenarios.
    small, bulk = envelope_bytes(0), envelope_bytes(1000)
    by_name = {sc.name: sc for sc in scs}
    print(f"raw nats-py: {by_name['batch100'].events} x {len(small)} B, {by_name['bulk1000'].events} x {len(bulk)} B")
    results["raw_small"] = await run_raw("small", by_name["batch100"].events, small, workdir)
    results["raw_bulk1000"] = await run_raw("bulk1000", by_name["bulk1000"].events, bulk, workdir, lines_per_msg=1000)
    # Two reference points: one publish at a time (each waits for its ack), and no per-write fsync.
    results["raw_small_publish_unpipelined"] = await run_raw("small-unpipelined", min(n, 2000), small, workdir,
                                                             pipelined=False, consume=False)
    results["raw_small_without_sync_always"] = await run_raw("small-nosync", by_name["batch100"].events, small,
                                                             workdir, server_cls=_DefaultSyncNats)
    results["raw_small_without_sync_always"]["note"] = "nats-server default fsync (2 min), NOT the production config"

    consumer = ConsumerProcess()
    try:
        for sc in scs:
            print(f"pipeline {sc.name}: {sc.transactions} transactions x {sc.events_per_tx} events"
                  + (f" x {sc.lines_per_event} lines" if sc.lines_per_event else ""))
            entry: dict = {"n": sc.events, "transactions": sc.transactions, "events_per_transaction": sc.events_per_tx,
                           "lines_per_event": sc.lines_per_event}
            if sc.lines:
                entry["lines"] = sc.lines
            e2e = await run_pipeline(sc, "end_to_end", workdir, consumer)
            staged = await run_pipeline(sc, "staged", workdir, consumer)
            entry.update({"seconds": e2e["seconds"], "events_per_s": e2e["events_per_s"]})
            if sc.lines:
                entry["lines_per_s"] = e2e["lines_per_s"]
            entry["message_bytes"] = e2e.pop("message_bytes")
            staged.pop("message_bytes")
            entry["end_to_end"] = e2e
            entry["staged"] = staged
            entry["verified"] = e2e.pop("verified") and staged.pop("verified")
            results[f"pipeline_{sc.name}"] = entry
    finally:
        consumer.close()

    print("kernel per-event costs (no NATS)")
    results["kernel_costs"] = await asyncio.to_thread(kernel_costs, workdir, min(n, 5000))
    return results


def summary(doc: dict) -> str:
    r = doc["results"]
    m = doc["machine"]
    lines = [f"backbone on {m['cpu_count']} CPUs (load {m['loadavg_1m_before']} -> {m['loadavg_1m_after']}), "
             f"{doc['nats_server_version']}, {doc['total_seconds']} s total"]
    lines.append(f"{'scenario':<20}{'events':>8}{'bytes/ev':>10}{'e2e ev/s':>11}{'lines/s':>11}"
                 f"{'produce':>10}{'relay':>10}{'consume':>10}   (staged, ev/s)")
    for key, v in r.items():
        if not key.startswith("pipeline_"):
            continue
        s = v["staged"]
        lines.append(f"{key[9:]:<20}{v['n']:>8}{v['message_bytes']:>10}{v['events_per_s']:>11.0f}"
                     f"{v.get('lines_per_s', 0):>11.0f}{s['producer']['events_per_s']:>10.0f}"
                     f"{s['relay']['events_per_s']:>10.0f}{s['consumer']['events_per_s']:>10.0f}")
    for key in ("raw_small", "raw_bulk1000", "raw_small_publish_unpipelined", "raw_small_without_sync_always"):
        v = r[key]
        cons = f", consume {v['consume']['msgs_per_s']:.0f} msg/s" if "consume" in v else ""
        lines.append(f"{key:<32} {v['n']} x {v['message_bytes']} B: publish {v['publish']['msgs_per_s']:.0f} msg/s"
                     + cons)
    k = r["kernel_costs"]
    lines.append("kernel costs (us/event): " + ", ".join(f"{a}={b}" for a, b in k.items() if a != "n"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backbone", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000,
                        help="single-event transactions (batch100 writes 4n events, bulk1000 n/12.5 events)")
    parser.add_argument("--quick", action="store_true", help="n=1000 (a smoke run, figures are noisier)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--keep", action="store_true", help="keep the databases and NATS stores (path printed)")
    args = parser.parse_args(argv)
    n = 1000 if args.quick and args.n == 5000 else args.n
    if n < 100:
        parser.error("--n must be at least 100")
    quiet_logs()
    workdir = Path(tempfile.mkdtemp(prefix="sifund-bench-"))
    load_before = os.getloadavg()
    started = time.monotonic()
    try:
        results = asyncio.run(run_all(n, workdir))
    except BenchFailure as exc:
        print(f"BENCH FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)
    doc = {
        "name": "backbone",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    # Other work on the machine skews every figure: compare these with cpu_count.
                    "loadavg_1m_before": round(load_before[0], 2), "loadavg_1m_after": round(os.getloadavg()[0], 2)},
        "nats_server_version": nats_version(),
        "settings": {"n": n, "quick": args.quick, "outbox_batch_size": OUTBOX_BATCH,
                     "outbox_poll_seconds": OUTBOX_POLL, "consumer_batch_size": CONSUMER_BATCH,
                     "sqlite": "WAL, synchronous=FULL, BEGIN IMMEDIATE", "jetstream": "file store, sync_interval: always",
                     "duplicate_window_seconds": DUPLICATE_WINDOW},
        "total_seconds": round(time.monotonic() - started, 1),
        "results": results,
    }
    busiest = max(load_before[0], os.getloadavg()[0])
    if busiest > (os.cpu_count() or 1):
        doc["warning"] = (f"1-minute load average reached {busiest:.1f} on {os.cpu_count()} CPUs: other work competed "
                          "with the benchmark, its figures are low; run again on a quiet machine")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2) + "\n")
    print(summary(doc))
    if "warning" in doc:
        print(f"WARNING: {doc['warning']}", file=sys.stderr)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
