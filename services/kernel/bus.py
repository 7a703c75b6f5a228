"""The connection to NATS JetStream: connect (and keep reconnecting) in the background, provision the streams.

A service starts even when NATS is down: its outbox keeps the events and the relay publishes them once the bus is
back. ``Bus.connected`` is what ``/health`` reports.
"""

import asyncio
import contextlib

import nats
import structlog
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from services.kernel.events import STREAMS
from services.kernel.settings import nats_server_list

log = structlog.get_logger(__name__)


def stream_config(name: str, duplicate_window: float, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=name,
        subjects=[f"{STREAMS[name]}.>"],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        duplicate_window=duplicate_window,
        num_replicas=replicas,
    )


async def ensure_streams(js: JetStreamContext, duplicate_window: float, replicas: int = 1) -> None:
    """Create every stream, or bring an existing one to the configured settings (replica count included: the
    server moves an existing stream from R1 to R3 and back). Safe to run concurrently."""
    for name in STREAMS:
        config = stream_config(name, duplicate_window, replicas)
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            try:
                await js.add_stream(config)
                continue
            except BadRequestError:  # another service created it a moment ago
                info = await js.stream_info(name)
        current = info.config
        if (current.subjects, current.storage, current.duplicate_window, current.num_replicas or 1) != (
            config.subjects,
            config.storage,
            config.duplicate_window,
            config.num_replicas,
        ):
            await js.update_stream(config)


class Bus:
    def __init__(self, url: str, *, client_name: str, duplicate_window: float = 600.0, replicas: int = 1):
        self.url = url  # one URL or several, comma-separated (a cluster's seed servers)
        self.servers = nats_server_list(url)
        self.replicas = replicas
        self.client_name = client_name
        self.duplicate_window = duplicate_window
        self.nc: NATS | None = None
        self.js: JetStreamContext | None = None
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected and self._ready.is_set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._connect_forever(), name=f"{self.client_name}-bus-connect")

    async def wait_ready(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def _connect_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                nc = await nats.connect(
                    servers=self.servers,
                    name=self.client_name,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    ping_interval=5,
                    max_outstanding_pings=2,
                    reconnected_cb=self._on_reconnected,
                    error_cb=self._on_error,
                )
                self.nc = nc
                self.js = nc.jetstream(timeout=10)
                await ensure_streams(self.js, self.duplicate_window, self.replicas)
                self._ready.set()
                log.info("bus.connected", url=self.url, client=self.client_name)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: try again shortly
                log.warning("bus.connect_failed", url=self.url, error=str(exc) or type(exc).__name__)
                if self.nc is not None:
                    with contextlib.suppress(Exception):
                        await self.nc.close()
                    self.nc = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _on_reconnected(self) -> None:
        log.info("bus.reconnected", client=self.client_name)
        if self.js is not None:
            # A restarted server with an empty store needs its streams again.
            with contextlib.suppress(Exception):
                await ensure_streams(self.js, self.duplicate_window, self.replicas)

    async def _on_error(self, exc: Exception) -> None:
        log.debug("bus.error", client=self.client_name, error=str(exc) or type(exc).__name__)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.nc is not None:
            # close, not drain: consumers and the relay are stopped by now, and drain waits up to 30 s on a pull
            # subscription whose fetch was cancelled.
            with contextlib.suppress(Exception):
                await self.nc.close()
        self._ready.clear()
