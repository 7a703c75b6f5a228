"""The cyclic garbage collector held off while a bulk request builds and writes one large set.

A tax batch of 10 000 lines keeps some 200 000 small containers alive until it is written (checked lines, rows,
states, event lines): each one allocated counts towards the collector's thresholds, so the collector runs many
times during the batch and every full collection walks all those young objects again (10-20 % of the batch's
CPU), to find nothing: the batch's objects are freed by reference counting when it ends. ``collector_paused``
switches automatic collection off for the duration and back on after the last of any overlapping pauses
(concurrent batches in other threads); it never switches on a collector that was off before the first pause.
Process-wide, as the collector is: other threads allocate without automatic collection meanwhile, and any cycle
made then is collected after the pause.
"""

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def collector_paused() -> Iterator[None]:
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()
