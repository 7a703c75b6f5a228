"""Waiting on a NATS cluster: a condition polled until it holds, a JetStream call retried on transient errors."""

import asyncio
import time

import nats.errors
import nats.js.errors

# What a JetStream API call answers while the cluster is electing a leader or a node is slow on a loaded machine:
# worth asking again, as the services' Bus does in its connect loop.
TRANSIENT = (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError,
             TimeoutError)


async def wait_until(predicate, what: str, timeout: float = 60.0):
    """Await ``predicate()`` until it returns something truthy, and return that. A transient JetStream error counts
    as "not yet"."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = await predicate()
        except TRANSIENT as exc:
            last_error, result = exc, None
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError(f"not {what} within {timeout}s (last transient error: {last_error!r})")


async def retried(call, what: str, timeout: float = 60.0):
    """Await ``call()`` until it returns without a transient JetStream error; return its result."""
    done = object()

    async def attempt():
        result = await call()
        return (done, result)

    return (await wait_until(attempt, what, timeout))[1]
