"""services.kernel.collector: automatic collection off during a pause, back on after the last overlapping one."""

import gc
import threading

import pytest

from services.kernel.collector import collector_paused

pytestmark = pytest.mark.unit  # pure: no NATS, no app, no database (make test-unit)


@pytest.fixture
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_a_pause_switches_the_collector_off_and_back_on(collector_on):
    with collector_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_pauses_switch_it_on_after_the_last(collector_on):
    first = collector_paused()
    second = collector_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the first ends while the second still runs (another thread's batch)
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_failure_inside_still_switches_it_back_on(collector_on):
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("the batch failed")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    was = gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        if was:
            gc.enable()


def test_as_a_decorator_in_concurrent_threads(collector_on):
    inside = threading.Barrier(4)
    seen = []

    @collector_paused()
    def batch() -> None:
        inside.wait(timeout=30)  # all four inside at once
        seen.append(gc.isenabled())
        inside.wait(timeout=30)

    threads = [threading.Thread(target=batch) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert seen == [False] * 4
    assert gc.isenabled()
