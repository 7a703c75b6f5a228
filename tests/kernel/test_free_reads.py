"""Reads never wait for writers: oversight's reconciliation report answers while its ACCOUNTS consumer applies a
burst of 1 000-line events (and while that consumer holds its write transaction open), and 64 concurrent readers
are all answered with a writer active. Speeds are compared as ratios to an idle read of the same report, on the same
machine in the same run: no absolute timing."""

import asyncio
import statistics
import threading
import time
from contextlib import asynccontextmanager

from services.contracts.accounts import ContributionsPosted
from tests.support.oversight import PEN, posted, publish
from tests.support.pipeline import eventually

MONTH = 202403
BURST = 6  # events of 1 000 lines each
HELD_EVENT = 2  # the consumer holds its transaction open on this event of the burst until the test lets it go


def burst_events() -> list[ContributionsPosted]:
    return [posted(*[(PEN, MONTH, f"e{line % 50}", 1600, 800) for line in range(1000)], batch=f"burst-{k}",
                   prefix=f"b{k}-") for k in range(BURST)]


class HeldWriter:
    """Wraps the consumer's handler of ``accounts.contributions.posted``: on the held event it stops, inside the
    consumer's open write transaction (earlier chunks committed), until ``release()``."""

    def __init__(self, consumer) -> None:  # noqa: ANN001
        self.consumer = consumer
        self.holding = threading.Event()
        self.released = threading.Event()
        self.timed_out = False
        self.original = consumer.handlers[ContributionsPosted.event_type]
        consumer.handlers[ContributionsPosted.event_type] = self.handle

    def handle(self, session, envelope) -> None:  # noqa: ANN001
        if envelope.data.get("source_batch_id") == f"burst-{HELD_EVENT}":
            self.holding.set()
            self.timed_out = not self.released.wait(timeout=60)
        self.original(session, envelope)

    def release(self) -> None:
        self.released.set()


@asynccontextmanager
async def oversight_with_report(start_service):  # noqa: ANN001
    async with start_service("oversight") as oversight:
        await publish(oversight, posted((PEN, MONTH, "e1", 16000, 8000), batch="seed"))
        consumer = oversight.app.state.consumers["ACCOUNTS"]
        await eventually(lambda: consumer.applied_total >= 1)
        yield oversight, consumer


async def timed_read(client, headers) -> float:  # noqa: ANN001
    started = time.perf_counter()
    response = await client.get(f"/reconciliation/months/{MONTH}", headers=headers)
    assert response.status_code == 200, response.text
    return time.perf_counter() - started


async def test_the_reconciliation_report_answers_while_a_burst_of_large_events_is_applied(start_service, auth):
    officer = auth("oversight_officer", subject="officer.wang")
    async with oversight_with_report(start_service) as (oversight, consumer):
        idle = [await timed_read(oversight, officer) for _ in range(7)]
        writer = HeldWriter(consumer)
        applied_before = consumer.applied_total
        await publish(oversight, *burst_events())

        # The consumer is inside the burst, its write transaction open: reads answer at once all the same.
        await eventually(writer.holding.is_set, timeout=60)
        during_held = [await timed_read(oversight, officer) for _ in range(3)]
        assert consumer.applied_total < applied_before + BURST  # read while the burst was still being applied
        writer.release()

        under_burst = list(during_held)
        while consumer.applied_total < applied_before + BURST:
            under_burst.append(await timed_read(oversight, officer))
        assert not writer.timed_out
        print(f"idle median {statistics.median(idle) * 1000:.1f} ms; under the burst {len(under_burst)} reads, median "
              f"{statistics.median(under_burst) * 1000:.1f} ms, max {max(under_burst) * 1000:.1f} ms")
        ratio = statistics.median(under_burst) / statistics.median(idle)
        assert ratio <= 10, (f"median read under the burst {statistics.median(under_burst) * 1000:.1f} ms is "
                             f"{ratio:.1f}x the idle read {statistics.median(idle) * 1000:.1f} ms")


async def test_sixty_four_concurrent_readers_are_all_answered_while_a_writer_holds_the_lock(start_service, auth):
    officer = auth("oversight_officer", subject="officer.wang")
    async with oversight_with_report(start_service) as (oversight, consumer):
        writer = HeldWriter(consumer)
        applied_before = consumer.applied_total
        await publish(oversight, *burst_events())
        await eventually(writer.holding.is_set, timeout=60)
        try:
            responses = await asyncio.gather(*(oversight.get(f"/reconciliation/months/{MONTH}", headers=officer)
                                               for _ in range(64)))
            assert [r.status_code for r in responses] == [200] * 64
            assert not writer.released.is_set()  # every one answered while the writer still held its transaction
        finally:
            writer.release()
        await eventually(lambda: consumer.applied_total >= applied_before + BURST, timeout=120)
        assert not writer.timed_out
