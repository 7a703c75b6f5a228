"""``sifund backup DIR`` and ``sifund restore DIR``: a consistent online copy of the platform and its way back.

What a backup holds (``manifest.json`` lists every file with its SHA-256):

- ``databases/<name>.sqlite`` — each SQLite database (the four services and the gateway's identity store), copied
  with SQLite's online backup API (``sqlite3.Connection.backup``: a consistent snapshot while the services write);
  ``databases/<name>.pgdump`` — ``pg_dump --format=custom`` of a database on PostgreSQL (one consistent snapshot
  per database, taken without blocking writers);
- ``streams/<STREAM>.jsonl`` — every message of each JetStream stream, read through an ephemeral pull consumer
  (no acks, in memory): its stream sequence, subject, headers (``Nats-Msg-Id`` = the event id) and data;
  ``streams/<STREAM>.json`` — the stream's configuration and the state of each durable consumer (configuration,
  ack floor, delivered);
- ``files/`` — the small files of the data directory a platform needs to resume: the token signing keys
  (``keys/``), ``demo-credentials.txt`` and the scheduler client's secret, when present (mode 0600, as at the source).

Order, and why it makes the copy consistent across services. Each service's database and the streams are separate
stores, copied at different instants, so the order is chosen for the invariants the platform relies on:

1. the durable consumers' states first (instant T0): every event a consumer acknowledged by T0 was applied, in
   the same transaction as its inbox row, before T0 — so it is in the database copied after;
2. the databases (T1 ≥ T0): an event applied between T0 and T1 is in the database copy *and* beyond the ack floor,
   so it is delivered again after a restore and **the inbox table skips it** (what makes this harmless);
3. the streams last (T2 ≥ T1): every outbox row a database copy shows as published is in the stream copy. A row
   published between T1 and T2 is in the stream and unpublished in the restored outbox: the relay publishes it
   again after a restore, JetStream's duplicate window drops it (or, outside the window, the consumers' inboxes do).

Restore (the platform stopped; refuses a non-empty target unless ``--force``; checks every SHA-256 first): copies the
SQLite files into the target data directory (or ``pg_restore --clean`` into the configured PostgreSQL databases),
starts a temporary nats-server on the target's embedded store (or uses ``--nats-url`` for a cluster), creates each
stream with its saved configuration, publishes every message again with its subject and headers and checks that it
gets its original sequence, and recreates each durable consumer with its saved configuration, moved forward to its
saved ack floor by fetching and acknowledging exactly the messages up to it (no handler runs). Messages beyond the
ack floor are delivered to the service when it starts, and its inbox skips those it had applied.

Not restored: message timestamps (JetStream stamps the time of the restore's publish); interior gaps in a stream
(deleted messages) — refused, as the ledger rebuild refuses a truncated stream.
"""

import base64
import hashlib
import json
import os
import platform as host_platform
import shutil
import socket
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import URL

from services.kernel import clock
from services.kernel.events import STREAMS, new_event_id
from services.kernel.settings import SERVICES, Settings
from sifund.natsd import NatsServer

FORMAT = 1
DATABASES = (*SERVICES, "gateway")
MANIFEST = "manifest.json"
# Files of the data directory a restored platform needs (relative paths; directories copied whole).
DATA_FILES = ("keys", "demo-credentials.txt")  # keys/ holds the JWT key pair and the scheduler client's secret
FETCH_BATCH = 1000
FETCH_TIMEOUT = 5.0


class BackupError(Exception):
    """The backup or restore cannot be done as asked; the message says why."""


# -- small helpers -------------------------------------------------------------------------------------------------


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_path(url: str) -> Path:
    return Path(make_url(url).database)


def _libpq_url(url: str) -> str:
    """``postgresql+psycopg://…`` (SQLAlchemy) → ``postgresql://…`` (pg_dump, pg_restore)."""
    parsed: URL = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def _database_facts(url: str) -> dict[str, Any]:
    """The schema revisions (alembic) and the audit chain head of one database."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            revisions = sorted(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
            head = connection.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).first()
    finally:
        engine.dispose()
    return {"revisions": revisions, "audit_head": {"seq": head[0], "hash": head[1]} if head else {"seq": 0,
                                                                                                   "hash": None}}


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


# -- backup --------------------------------------------------------------------------------------------------------


def _copy_sqlite(source: Path, target: Path) -> None:
    if not source.exists():
        raise BackupError(f"no database at {source}: has the platform ever run with this data directory?")
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        with dst:
            src.backup(dst)  # online: pages are copied again if a writer changes them meanwhile
    finally:
        dst.close()
        src.close()
    os.chmod(target, 0o600)


def _pg_dump(url: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["pg_dump", "--format=custom", "--no-owner", "--file", str(target),
                           "--dbname", _libpq_url(url)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    os.chmod(target, 0o600)


def _pg_version() -> str | None:
    try:
        return subprocess.run(["pg_dump", "--version"], capture_output=True, text=True).stdout.strip() or None
    except OSError:
        return None


async def _consumer_states(js: Any) -> dict[str, list[dict]]:
    """Every durable consumer of every stream, with its ack floor (T0: before the databases)."""
    states: dict[str, list[dict]] = {}
    for stream in STREAMS:
        try:
            names = await js.consumers_info(stream)
        except NotFoundError:
            states[stream] = []
            continue
        states[stream] = [{
            "name": info.name,
            "config": info.config.as_dict(),
            "ack_floor_stream_seq": info.ack_floor.stream_seq if info.ack_floor else 0,
            "delivered_stream_seq": info.delivered.stream_seq if info.delivered else 0,
            "num_pending": info.num_pending,
        } for info in names if info.config.durable_name]
    return states


async def _dump_stream(js: Any, stream: str, target: Path) -> dict[str, Any]:
    """Every message of ``stream`` up to its last sequence now, in order, as JSON lines."""
    info = await js.stream_info(stream)
    state = info.state
    last_seq = state.last_seq if state.messages else 0
    first_seq = state.first_seq if state.messages else 0
    if state.messages and state.messages != last_seq - first_seq + 1:
        raise BackupError(f"{stream}: {last_seq - first_seq + 1 - state.messages} deleted messages inside the "
                          "stream; a copy could not keep their sequence numbers")
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with target.open("w", encoding="utf-8") as out:
        if last_seq:
            written = await _read_messages(js, stream, last_seq, out)
    os.chmod(target, 0o600)
    return {"config": info.config.as_dict(), "first_seq": first_seq, "last_seq": last_seq, "messages": written}


async def _read_messages(js: Any, stream: str, last_seq: int, out: Any) -> int:
    name = f"sifund-backup-{new_event_id()[-12:]}"
    await js.add_consumer(stream, ConsumerConfig(
        name=name, deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE, inactive_threshold=120.0,
        mem_storage=True))
    subscription = await js.pull_subscribe_bind(stream=stream, name=name)
    written, seq = 0, 0
    try:
        while seq < last_seq:
            try:
                messages = await subscription.fetch(min(FETCH_BATCH, last_seq - seq), timeout=FETCH_TIMEOUT)
            except (TimeoutError, nats.errors.TimeoutError):
                raise BackupError(f"{stream}: no message after sequence {seq} of {last_seq}") from None
            for message in messages:
                seq = message.metadata.sequence.stream
                if seq > last_seq:
                    break
                out.write(json.dumps({"seq": seq, "subject": message.subject, "headers": message.headers or {},
                                      "data": base64.b64encode(message.data).decode()}) + "\n")
                written += 1
    finally:
        await subscription.unsubscribe()
        try:
            await js.delete_consumer(stream, name)
        except Exception:  # noqa: BLE001 - it expires on its own (inactive_threshold)
            pass
    return written


async def _connect(url: str) -> Any:
    return await nats.connect(servers=[u.strip() for u in url.split(",")], connect_timeout=5,
                              max_reconnect_attempts=3, name="sifund-backup")


def _data_files(settings: Settings, target: Path) -> list[str]:
    copied = []
    for name in DATA_FILES:
        source = settings.data_dir / name
        if source.is_dir():
            for path in sorted(p for p in source.rglob("*") if p.is_file()):
                relative = path.relative_to(settings.data_dir)
                _write_private(target / "files" / relative, path.read_bytes())
                copied.append(str(relative))
        elif source.is_file():
            _write_private(target / "files" / name, source.read_bytes())
            copied.append(name)
    return copied


async def backup(settings: Settings, target: Path) -> dict[str, Any]:
    """Copy the running (or stopped) platform of ``settings`` into the empty directory ``target``."""
    target = target.resolve()
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty")
    target.mkdir(parents=True, exist_ok=True)
    started = clock.utc_now()
    nc = await _connect(settings.nats_server_url)
    try:
        js = nc.jetstream()
        consumers = await _consumer_states(js)  # T0
        databases = {}
        for name in DATABASES:  # T1
            url = settings.database_url(name)
            if _is_sqlite(url):
                relative = f"databases/{name}.sqlite"
                _copy_sqlite(_sqlite_path(url), target / relative)
                facts = _database_facts(f"sqlite:///{target / relative}")
                databases[name] = {"backend": "sqlite", "file": relative, **facts}
            else:
                facts = _database_facts(url)  # read before the dump: the dump holds at least this
                relative = f"databases/{name}.pgdump"
                _pg_dump(url, target / relative)
                databases[name] = {"backend": "postgresql", "file": relative, **facts}
        streams = {}
        for stream in STREAMS:  # T2
            relative = f"streams/{stream}.jsonl"
            streams[stream] = {"file": relative, **await _dump_stream(js, stream, target / relative),
                               "consumers": consumers.get(stream, [])}
        server_version = nc.connected_server_version
        server = f"{server_version.major}.{server_version.minor}.{server_version.patch}"
    finally:
        await nc.close()
    files = _data_files(settings, target)
    manifest = {
        "format": FORMAT,
        "started_at": started.isoformat(), "finished_at": clock.utc_now().isoformat(),
        "versions": {"sifund": _package_version("sifund"), "python": host_platform.python_version(),
                     "sqlite": sqlite3.sqlite_version, "nats_server": server, "nats_py": _package_version("nats-py"),
                     "pg_dump": _pg_version() if any(d["backend"] == "postgresql" for d in databases.values())
                     else None},
        "databases": databases,
        "streams": streams,
        "data_files": files,
        "sha256": {},
    }
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        manifest["sha256"][str(path.relative_to(target))] = sha256(path)
    _write_private(target / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode())
    return manifest


# -- restore -------------------------------------------------------------------------------------------------------


def read_manifest(source: Path) -> dict[str, Any]:
    """The manifest, once every file it lists has its SHA-256 and no file is missing."""
    try:
        manifest = json.loads((source / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"no readable {MANIFEST} in {source}: {exc}") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')!r}, this sifund reads {FORMAT}")
    bad = [name for name, digest in manifest["sha256"].items()
           if not (source / name).is_file() or sha256(source / name) != digest]
    if bad:
        raise BackupError(f"checksum mismatch or missing file: {', '.join(bad)}")
    return manifest


def _platform_running(settings: Settings) -> int | None:
    pid_file = settings.data_dir / "sifund.pid"
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _pg_has_tables(url: str) -> bool:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return bool(connection.execute(text(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'")).scalar())
    finally:
        engine.dispose()


def _check_target(settings: Settings, manifest: dict[str, Any], force: bool) -> None:
    if (pid := _platform_running(settings)) is not None:
        raise BackupError(f"a platform runs with data in {settings.data_dir} (pid {pid}): stop it first")
    if force:
        return
    data_dir = settings.data_dir
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupError(f"{data_dir} is not empty (use --force to overwrite)")
    for name, database in manifest["databases"].items():
        url = settings.database_url(name)
        if database["backend"] == "postgresql" and not _is_sqlite(url) and _pg_has_tables(url):
            raise BackupError(f"the {name} database already has tables (use --force to overwrite)")


def _restore_database(settings: Settings, name: str, database: dict[str, Any], source: Path) -> None:
    url = settings.database_url(name)
    file = source / database["file"]
    if database["backend"] == "sqlite":
        if not _is_sqlite(url):
            raise BackupError(f"{name}: the backup holds a SQLite database, the target is configured for {url}")
        path = _sqlite_path(url)
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
        _copy_sqlite(file, path)
        return
    if _is_sqlite(url):
        raise BackupError(f"{name}: the backup holds a PostgreSQL dump, the target is a SQLite file; set "
                          f"SIFUND_{name.upper()}_DATABASE_URL")
    done = subprocess.run(["pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error",
                           "--dbname", _libpq_url(url), str(file)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"pg_restore of {name} failed: {done.stderr.strip()}")


async def _restore_stream(js: Any, stream: str, saved: dict[str, Any], source: Path, replicas: int) -> None:
    config = StreamConfig.from_response(dict(saved["config"]))
    config.num_replicas = replicas
    try:
        await js.delete_stream(stream)  # --force over an existing store: the backup is the truth
    except NotFoundError:
        pass
    await js.add_stream(config)
    if saved["first_seq"] > 1:
        await js.purge_stream(stream, seq=saved["first_seq"])  # the next message gets the saved first sequence
    with (source / saved["file"]).open(encoding="utf-8") as lines:
        for line in lines:
            message = json.loads(line)
            ack = await js.publish(message["subject"], base64.b64decode(message["data"]), stream=stream,
                                   headers=message["headers"] or None)
            if ack.duplicate or ack.seq != message["seq"]:
                raise BackupError(f"{stream}: message {message['seq']} came back as sequence {ack.seq}"
                                  f"{' (a duplicate Nats-Msg-Id)' if ack.duplicate else ''}")
    for consumer in saved["consumers"]:
        await _restore_consumer(js, stream, consumer, replicas)


async def _restore_consumer(js: Any, stream: str, saved: dict[str, Any], replicas: int) -> None:
    config = ConsumerConfig.from_response(dict(saved["config"]))
    config.num_replicas = replicas
    await js.add_consumer(stream, config)
    floor = saved["ack_floor_stream_seq"]
    if not floor:
        return
    subscription = await js.pull_subscribe_bind(durable=config.durable_name, stream=stream)
    try:
        seq = 0
        while seq < floor:
            # Exactly the messages up to the floor: no message beyond it is delivered (and left waiting for ack_wait).
            messages = await subscription.fetch(min(FETCH_BATCH, floor - seq), timeout=FETCH_TIMEOUT)
            for message in messages:
                seq = message.metadata.sequence.stream
                if seq >= floor:
                    await message.ack_sync()  # the server has every ack before the floor is checked
                else:
                    await message.ack()
    finally:
        await subscription.unsubscribe()
    info = await js.consumer_info(stream, config.durable_name)
    if info.ack_floor.stream_seq < floor:
        raise BackupError(f"{stream}/{config.durable_name}: ack floor {info.ack_floor.stream_seq}, expected {floor}")


@dataclass
class RestoreResult:
    databases: list[str]
    streams: dict[str, int]
    consumers: int


async def _restore_streams(url: str, manifest: dict[str, Any], source: Path, replicas: int) -> dict[str, int]:
    nc = await _connect(url)
    try:
        js = nc.jetstream()
        for stream, saved in manifest["streams"].items():
            await _restore_stream(js, stream, saved, source, replicas)
        return {s: (await js.stream_info(s)).state.last_seq for s in manifest["streams"]}
    finally:
        await nc.close()


async def restore(settings: Settings, source: Path, *, force: bool = False, nats_url: str | None = None
                  ) -> RestoreResult:
    """Bring the backup in ``source`` back into the stopped platform of ``settings`` (see the module docstring)."""
    source = source.resolve()
    manifest = read_manifest(source)
    _check_target(settings, manifest, force)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for name, database in manifest["databases"].items():
        _restore_database(settings, name, database, source)
    for relative in manifest["data_files"]:
        _write_private(settings.data_dir / relative, (source / "files" / relative).read_bytes())
    if nats_url:
        last = await _restore_streams(nats_url, manifest, source, settings.nats_replicas)
    else:
        # The embedded topology's store (``sifund up``: <data dir>/nats), written by a temporary nats-server.
        shutil.rmtree(settings.data_dir / "nats" / "jetstream", ignore_errors=True)
        server = NatsServer(settings.data_dir / "nats", host="127.0.0.1", log_file=settings.data_dir / "restore-nats.log")
        server.start(timeout=30.0)
        try:
            last = await _restore_streams(server.url, manifest, source, 1)
        finally:
            server.stop()
    consumers = sum(len(s["consumers"]) for s in manifest["streams"].values())
    return RestoreResult(databases=list(manifest["databases"]), streams=last, consumers=consumers)


# -- NATS for a stopped platform -----------------------------------------------------------------------------------


@asynccontextmanager
async def streams_of(settings: Settings) -> AsyncIterator[Any]:
    """A JetStream context on the platform's streams: the configured NATS when it answers, else a temporary
    nats-server on the embedded topology's store (``<data dir>/nats``) while the platform is stopped."""
    # A plain TCP probe first: nats-py keeps retrying a refused first connection for a long while.
    nc = await _connect(settings.nats_server_url) if _any_listening(settings.nats_servers) else None
    if nc is not None:
        try:
            yield nc.jetstream()
        finally:
            await nc.close()
        return
    store = settings.data_dir / "nats"
    if not (store / "jetstream").is_dir():
        raise BackupError(f"NATS does not answer at {settings.nats_server_url} and there is no embedded store in {store}")
    server = NatsServer(store, host="127.0.0.1", log_file=settings.data_dir / "cli-nats.log")
    server.start(timeout=30.0)
    try:
        nc = await _connect(server.url)
        try:
            yield nc.jetstream()
        finally:
            await nc.close()
    finally:
        server.stop()


def service_answers(settings: Settings, service: str) -> list[str]:
    """The replicas of ``service`` that answer ``/health/live`` now."""
    answering = []
    for url in settings.service_urls(service):
        try:
            if httpx.get(f"{url}/health/live", timeout=2.0, trust_env=False).status_code == 200:
                answering.append(url)
        except httpx.HTTPError:
            pass
    return answering


def _any_listening(servers: list[str]) -> bool:
    for server in servers:
        url = make_url(server.replace("nats://", "nats://x@", 1)) if "://" in server else None
        try:
            with socket.create_connection((url.host, url.port or 4222), timeout=2):
                return True
        except (OSError, AttributeError):
            continue
    return False
