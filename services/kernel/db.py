"""Engines and sessions for SQLite (embedded default) and PostgreSQL (scale).

SQLite: WAL so readers do not block the writer, foreign keys on, and every transaction begins with
``BEGIN IMMEDIATE``. The driver's default (a deferred BEGIN issued only before the first write) lets two
transactions read the same audit-chain head and then both append to it; taking the write lock up front makes
read-then-write sequences such as the audit chain and the outbox correct without retries.

A session that only reads asks for ``snapshot_session``: on SQLite a plain (deferred) ``BEGIN``, which under WAL
reads a consistent snapshot and never waits for, or holds up, the writer; on PostgreSQL a ``REPEATABLE READ READ
ONLY`` transaction. Every GET and HEAD request gets one (``services.kernel.service_app.SessionDep``), as do the
outbox relay's polling and health. Writing through it fails at once on both databases (on SQLite the engine refuses
the statement: a deferred transaction that writes would queue on the write lock after all, or fail on a stale
snapshot).

Who commits (one transaction owner)
-----------------------------------
A business operation is one transaction, committed in one place, by ``unit_of_work``:

* a request that writes (any method but GET and HEAD, or an endpoint taking ``WriteSessionDep``): the session
  dependency (``services.kernel.service_app.SessionDep``) is the request's unit of work. It commits once, after the endpoint has returned and its response is serialised but before the response is sent (a
  function-scoped dependency), so a commit that fails answers an error and never a 2xx for something not stored;
  an exception rolls everything back.
* an event consumer: each bounded chunk of a fetched batch (about a second of work) is one unit of work; each
  event's handler writes and its inbox row share a savepoint inside it (``services.kernel.inbox``).
* a job (scheduler run, import, interest run, rebuild, CLI command): ``with unit_of_work(engine) as session:`` per
  transaction it wants, e.g. one per chunk.
* the outbox relay's own bookkeeping (marking rows published, pruning) is its own transaction
  (``services.kernel.outbox``).

Service functions take the session they are given and never commit or open a transaction of their own: they
``flush()`` when they need generated ids or want a constraint checked now (to answer a unique-index race as 409),
and use ``session.begin_nested()`` when part of the work must be undone alone. Events are recorded with
``record_event`` in the same session, so the outbox row commits (or not) with the business write; an
idempotency key's stored response and the audit chain's head are likewise written in the caller's transaction.

A refusal that is itself a record (a failed sign-in counted towards a lockout, a reused refresh token revoking
its family, the audit entry of a refused bank transaction) raises ``keep_writes(error)``: the unit of work then
commits what was written and re-raises the error. ``tests/kernel/test_unit_of_work.py`` fails when any module of
the services, the gateway or the launcher calls ``commit()`` outside this module and the relay.
"""

import threading
from collections import namedtuple
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool
from sqlmodel import Session


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


SQLITE_CACHE_MB = 64  # Settings.sqlite_cache_mb's default, for engines made without settings (tests, tools)
SQLITE_WAL_PAGES = 16384  # Settings.sqlite_wal_pages' default, likewise
SQLITE_PAGE_BYTES = 4096  # SQLite's default page size, which the services keep


def make_engine(url: str, *, echo: bool = False, pool_size: int | None = None, max_overflow: int | None = None,
                pool_timeout: float = 20.0, sqlite_cache_mb: int = SQLITE_CACHE_MB,
                sqlite_wal_pages: int = SQLITE_WAL_PAGES) -> Engine:
    """An engine for a service's database. SQLite connections are cheap and its readers do not block each other
    (WAL, snapshot sessions), so its pool is large by default (20 + 40): concurrent readers are not queued behind a
    handful of connections held by writers waiting for the lock. A PostgreSQL connection is a server process: 10 + 10
    unless told otherwise."""
    if is_sqlite(url):
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=20 if pool_size is None else pool_size,
                               max_overflow=40 if max_overflow is None else max_overflow, pool_timeout=pool_timeout)
        _configure_sqlite(engine, sqlite_cache_mb, sqlite_wal_pages)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10 if pool_size is None else pool_size,
                         max_overflow=10 if max_overflow is None else max_overflow, pool_timeout=pool_timeout)


def _configure_sqlite(engine: Engine, cache_mb: int, wal_pages: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")  # money: a committed transaction survives a power cut
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute(f"PRAGMA cache_size=-{int(cache_mb) * 1024}")  # negative: KiB (Settings.sqlite_cache_mb)
        cursor.execute(f"PRAGMA wal_autocheckpoint={int(wal_pages)}")  # Settings.sqlite_wal_pages
        cursor.execute(f"PRAGMA journal_size_limit={int(wal_pages) * SQLITE_PAGE_BYTES}")
        cursor.close()

    writers = WriterQueue()
    engine._sifund_writers = writers  # noqa: SLF001 - kept with the engine it serves (tests read it)

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # noqa: ANN001
        # On the driver's connection itself: through exec_driver_sql the BEGIN took SQLAlchemy's whole statement
        # path (events, cursor, result), as much as the read that follows on a cheap GET.
        driver = connection.connection.driver_connection
        if connection.get_execution_options().get(SNAPSHOT_OPTION, False):
            driver.execute("BEGIN")
            return
        writers.enter(connection.connection.info)
        try:
            driver.execute("BEGIN IMMEDIATE")
        except BaseException:
            writers.leave(connection.connection.info)
            raise

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(connection):  # noqa: ANN001
        writers.leave(connection.connection.info)

    # A connection invalidated or reset in the pool without SQLAlchemy's commit or rollback (a lost connection, a
    # transaction abandoned by its holder) lets the next writer in too.
    @event.listens_for(engine, "reset")
    def _on_reset(_dbapi_connection, record, _reset_state):  # noqa: ANN001
        writers.leave(record.info)

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(_dbapi_connection, record, _exception):  # noqa: ANN001
        writers.leave(record.info)

    @event.listens_for(engine, "close")
    def _on_close(_dbapi_connection, record):  # noqa: ANN001
        writers.leave(record.info)

    @event.listens_for(engine, "before_cursor_execute")
    def _refuse_writes_in_snapshots(connection, _cursor, statement, _parameters, _context, _executemany):  # noqa: ANN001, PLR0913
        if connection.get_execution_options().get(SNAPSHOT_OPTION, False) and _writes(statement):
            raise ReadOnlySessionError(
                f"a write in a read-only (snapshot) session: {statement.split(None, 3)[:3]}; an endpoint that "
                "writes on GET takes WriteSessionDep (services/kernel/service_app.py)")


class WriterQueue:
    """The process's writers of one SQLite database, let in one at a time before their ``BEGIN IMMEDIATE``.

    SQLite lets one transaction write at a time; a second ``BEGIN IMMEDIATE`` waits in SQLite's busy handler, which
    sleeps 1, 2, 5, … up to 100 ms between tries and so starts, on average, tens of milliseconds after the lock is
    free: measured on a month's tax stage, collection's and accounts' write lock stood free about 5 % of the time
    while a writer slept. Writers of the same process queue here instead and enter as soon as the previous one
    commits or rolls back (the lock is released as the commit starts: the next writer's ``BEGIN IMMEDIATE`` may still
    wait out the commit itself in SQLite). Other processes (a replica, the CLI) still meet at SQLite's lock, which
    alone keeps the database correct: a writer that waits here longer than SQLite's own busy timeout goes on to
    SQLite's lock rather than failing."""

    WAIT_SECONDS = 30.0  # as PRAGMA busy_timeout
    _HELD = "sifund_writer"

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def enter(self, info: dict) -> None:
        if self._lock.acquire(timeout=self.WAIT_SECONDS):
            info[self._HELD] = True

    def leave(self, info: dict) -> None:
        if info.pop(self._HELD, False):
            self._lock.release()

    def busy(self) -> bool:
        return self._lock.locked()


SNAPSHOT_OPTION = "sifund_snapshot"
_WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER")


def _writes(statement: str) -> bool:
    return statement.lstrip()[:7].upper().startswith(_WRITE_VERBS)


class ReadOnlySessionError(RuntimeError):
    """Something wrote through a snapshot session (a programming error: the caller needed a unit of work)."""


def snapshot_session(engine: Engine) -> Session:
    """A session for reads only, which never waits for writers: on SQLite a deferred transaction (a WAL snapshot
    that takes no write lock); on PostgreSQL ``REPEATABLE READ READ ONLY`` (one snapshot for the whole session,
    like SQLite's). Writing through it fails."""
    return Session(_snapshot_engine(engine))


def never_waits(session: Session) -> bool:
    """Whether every statement of ``session`` runs without waiting for another transaction or a server: a SQLite
    snapshot session (a deferred ``BEGIN`` under WAL reads the file and takes no lock a writer holds). A unit of
    work's ``BEGIN IMMEDIATE`` may wait for the write lock, and a PostgreSQL statement is a round trip."""
    bind = session.get_bind()  # an engine, or the connection a request's snapshot session is bound to
    return bind.dialect.name == "sqlite" and bool(bind.get_execution_options().get(SNAPSHOT_OPTION, False))


def _snapshot_engine(engine: Engine) -> Engine:
    """The engine with the snapshot options, made once per engine (``execution_options`` builds a new option engine
    on every call: a cost on every read request)."""
    snapshot = getattr(engine, "_sifund_snapshot_engine", None)
    if snapshot is None:
        if is_sqlite(engine):
            snapshot = engine.execution_options(**{SNAPSHOT_OPTION: True})
        else:
            snapshot = engine.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        engine._sifund_snapshot_engine = snapshot  # noqa: SLF001 - kept with the engine it derives from
    return snapshot


E = TypeVar("E", bound=BaseException)

_KEEP_WRITES = "sifund_keep_writes"


def keep_writes(error: E) -> E:
    """Mark an error whose unit of work commits what it wrote before the error propagates (see the module
    docstring): ``raise keep_writes(Unauthenticated(...))``."""
    setattr(error, _KEEP_WRITES, True)
    return error


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One business transaction: commits on success, rolls back on any exception (commits, then re-raises, an
    error marked with ``keep_writes``)."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        except BaseException as exc:
            if getattr(exc, _KEEP_WRITES, False):
                session.commit()
            else:
                session.rollback()
            raise
        try:
            session.commit()
        except BaseException:
            session.rollback()
            raise


# -- a request's session ---------------------------------------------------------------------------------------------


# SQLite reads on the event loop (``service_app.read_by_key``) hold their session one at a time; endpoints in worker
# threads may hold more, and the connections they open beyond these go back to the pool.
KEPT_SNAPSHOT_CONNECTIONS = 4


class RequestSessions:
    """The sessions of one app's requests (``services.kernel.service_app.SessionDep``), admitted so that requests
    can never deadlock on the connection pool.

    A request's session holds its pooled connection from its first statement, in the endpoint's worker thread, until
    it is closed after the response is serialised; FastAPI validates a sync endpoint's response model in another
    worker thread meanwhile. Unbounded, enough concurrent requests (past the thread limiter's 40 tokens plus the
    pool's connections) end with every connection held by a request waiting for a thread, and every thread held by
    an endpoint waiting for a connection, until the pool times out. So at most ``limit`` requests hold a session at
    once, half the pool's connections (``admission_limit``): the other half stays for the connections those requests
    may open beside their session and for the service's own workers (consumers, relay, jobs), whose holders never
    wait for a thread. A request beyond waits on the event loop for a slot, holding nothing.

    Opening a session opens no connection (a ``Session`` connects on its first statement), so it happens on the
    event loop; closing it happens in a worker thread of its own limiter, never queued behind endpoints (a commit
    may write to disk, a PostgreSQL rollback is a round trip), except a SQLite snapshot's, a rollback of a read
    transaction that never waits, closed on the loop.

    A SQLite snapshot session is bound to a connection of the snapshot engine that the app keeps between requests
    (at most ``KEPT_SNAPSHOT_CONNECTIONS`` and a quarter of the pool, outside any transaction: no snapshot is held between requests), instead
    of checking one out of the pool and back in, resetting it, on every read (a fifth of a cheap read's CPU in the
    service, bench/gateway_reads.py). The session begins its transaction on it and rolls it back when closed, as on
    a pooled one. ``close()`` closes the kept connections (the app's shutdown, before the engine is disposed)."""

    def __init__(self, engine: Engine, limit: int | None = None):
        self.engine = engine
        self.limit = admission_limit(engine) if limit is None else limit
        # fast_acquire: a free slot is taken without a trip through the event loop (anyio's default yields once per
        # acquire, a cost on every request); a request that must wait still waits on the loop.
        self._slots = anyio.Semaphore(self.limit, fast_acquire=True) if self.limit else None
        self._closing = anyio.CapacityLimiter(self.limit or 40)
        self._sqlite = is_sqlite(engine)
        self._kept: list[Connection] = []
        # Kept connections are taken from the requests' half of the pool, at most half of it.
        self._keep = min(KEPT_SNAPSHOT_CONNECTIONS, (self.limit or 0) // 2) if self._sqlite else 0

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Session]:
        """A request's read-only session (``snapshot_session``)."""
        session = await self.open_snapshot()
        try:
            yield session
        finally:
            await self.close_snapshot(session)

    async def open_snapshot(self) -> Session:
        """``snapshot`` in two calls, for a caller that is itself a context (the request's session dependency):
        admitted, then opened; ``close_snapshot`` closes it and lets the next request in. Two context managers
        fewer on every read request."""
        if self._slots is not None:
            await self._slots.acquire()
        if not self._sqlite:
            return snapshot_session(self.engine)
        try:
            return Session(self._kept.pop() if self._kept else _snapshot_engine(self.engine).connect())
        except BaseException:
            if self._slots is not None:
                self._slots.release()
            raise

    async def close_snapshot(self, session: Session) -> None:
        try:
            if self._sqlite:
                self._close_kept_snapshot(session)
            else:
                await self._in_thread(session.close)
        finally:
            if self._slots is not None:
                self._slots.release()

    def _close_kept_snapshot(self, session: Session) -> None:
        connection = session.bind
        try:
            session.close()  # rolls back the transaction it began on the connection
        finally:
            if (len(self._kept) < self._keep and not connection.closed and not connection.invalidated
                    and not connection.in_transaction()):
                self._kept.append(connection)
            else:
                connection.close()

    def close(self) -> None:
        """Close the connections kept for snapshot sessions (they go back to the engine's pool)."""
        kept, self._kept = self._kept, []
        for connection in kept:
            connection.close()

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[Session]:
        """A request's unit of work (``unit_of_work``): committed once when the request's work is done, rolled back
        if it raised (committed, then re-raised, for a ``keep_writes`` error)."""
        async with self._admitted():
            work = unit_of_work(self.engine)
            session = work.__enter__()
            try:
                yield session
            except BaseException as exc:
                if not await self._in_thread(work.__exit__, type(exc), exc, exc.__traceback__):
                    raise
            else:
                await self._in_thread(work.__exit__, None, None, None)

    @asynccontextmanager
    async def _admitted(self) -> AsyncIterator[None]:
        if self._slots is None:
            yield
            return
        async with self._slots:
            yield

    async def _in_thread(self, function, *args):  # noqa: ANN001, ANN002, ANN202
        with anyio.CancelScope(shield=True):  # a disconnected client must not leave a transaction open
            return await anyio.to_thread.run_sync(function, *args, limiter=self._closing)


def admission_limit(engine: Engine) -> int | None:
    """Half the connections the engine's pool can open (``RequestSessions``); None for a pool without a bound."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return None
    return max(1, (pool.size() + max(0, pool._max_overflow)) // 2)  # noqa: SLF001 - no public accessor


# -- a read by key at the driver -------------------------------------------------------------------------------------


class KeyRead:
    """A ``SELECT`` of at most a few rows by key (e.g. one employer by id), for the cheap reads of
    ``service_app.read_by_key``: ``first(session, **params)`` is ``session.connection().execute(statement,
    params).first()``, row for row and value for value.

    On SQLite the statement is compiled once and run by the driver on the session's connection (in the session's
    transaction, so in its snapshot), its values converted by the columns' own result processors (a timestamp's
    text into a ``datetime``): SQLAlchemy's execution context, events and result machinery cost several times
    SQLite's own work for one row by primary key (bench/gateway_reads.py). Elsewhere, the Core statement.
    The row is a named tuple of the statement's column names. ``all`` reads every row the same way (plain tuples)."""

    def __init__(self, statement: Any):
        self.statement = statement
        self._sqlite_plan: tuple[str, tuple[str, ...], Any, tuple] | None = None

    def first(self, session: Session, **params: Any) -> Any:
        connection = session.connection()
        if connection.dialect.name != "sqlite":
            return connection.execute(self.statement, params).first()
        sql, names, make_row, processors = self._sqlite_plan or self._plan(connection.dialect)
        values = connection.connection.driver_connection.execute(sql, [params[name] for name in names]).fetchone()
        return None if values is None else make_row(*_processed(values, _converting(processors)))

    def all(self, session: Session, **params: Any) -> list[tuple]:
        """Every row, as ``session.connection().execute(statement, params).all()`` would give them value for value,
        after flushing what is pending (as ``bulk.read``): for the bulk reads of many keys bound as one parameter
        (``keyset.keyed_select``). On SQLite plain tuples, converted only in the columns that have a processor (a
        row needing none is the driver's own tuple); elsewhere SQLAlchemy's rows. As ``first``, every parameter is
        the caller's (a literal the statement binds itself, ``column == "x"``, is a KeyError on SQLite)."""
        session.flush()
        connection = session.connection()
        if connection.dialect.name != "sqlite":
            return connection.execute(self.statement, params).all()
        sql, names, _, processors = self._sqlite_plan or self._plan(connection.dialect)
        rows = connection.connection.driver_connection.execute(sql, [params[name] for name in names]).fetchall()
        converting = _converting(processors)
        return [_processed(values, converting) for values in rows] if converting else rows

    def _plan(self, dialect: Any) -> tuple[str, tuple[str, ...], Any, tuple]:
        compiled = self.statement.compile(dialect=dialect)
        if compiled.positiontup is None or any(
                compiled.binds[name].type._cached_bind_processor(dialect) is not None  # noqa: SLF001
                for name in compiled.positiontup):
            raise ValueError("KeyRead takes keys bound as they are (text, integers)")
        columns = compiled._result_columns  # noqa: SLF001 - (key, name, objects, type) per column, as the result reads them
        make_row = namedtuple("Row", [column[0] for column in columns], rename=True)  # noqa: PYI024
        processors = tuple(column[3]._cached_result_processor(dialect, None) for column in columns)  # noqa: SLF001
        self._sqlite_plan = (compiled.string, tuple(compiled.positiontup), make_row, processors)
        return self._sqlite_plan


def _converting(processors: tuple) -> list[tuple[int, Any]]:
    """The positions of the columns that have a result processor, with it."""
    return [(i, process) for i, process in enumerate(processors) if process is not None]


def _processed(values: tuple, converting: list[tuple[int, Any]]) -> tuple:
    """A driver row with its processed columns converted (a ``None`` stays ``None``); the row itself if none is."""
    changed = None
    for i, process in converting:
        value = values[i]
        if value is not None:
            if changed is None:
                changed = list(values)
            changed[i] = process(value)
    return values if changed is None else tuple(changed)
