"""Structured logs (structlog): one JSON object per line for every line a process writes — its own events, uvicorn's
access and error logs, httpx's and alembic's — readable lines in a terminal instead. Every line carries the time in
UTC (``time``) and China time (``time_cst``), the level, the logger, the ``service``, and the ``request_id``,
``correlation_id`` and ``actor`` of the work in progress (null outside a request or event). Personal data never goes
into a log: log ids, not citizen id numbers or bank accounts (masked here whatever a caller passed).

Files and rotation are the launcher's (``sifund up`` writes each child's lines to ``<data dir>/logs/<name>.log``
and rotates it by size, see ``sifund/logfiles.py``): a process writes to stderr only, so that uvicorn's workers
sharing one output never race over a rotation.
"""

import json
import logging
import logging.config
import os
import stat
import sys
from datetime import datetime
from json.encoder import encode_basestring  # type: ignore[attr-defined] - json.dumps' own, ensure_ascii=False
from typing import Any

import structlog

from services.kernel import clock, context
from services.kernel.pii import redact, redact_log_event, redact_log_record, redact_value

_base_record_factory = logging.getLogRecordFactory()
# uvicorn's own loggers (its default config gives them handlers of their own and no propagation).
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
REQUIRED_KEYS = ("time", "time_cst", "level", "event", "service", "request_id", "correlation_id", "actor")


def _redacted_record(*args, **kwargs) -> logging.LogRecord:  # noqa: ANN002, ANN003
    return redact_log_record(_base_record_factory(*args, **kwargs))


def install_log_record_redaction() -> None:
    """Every stdlib log record is masked as it is created, whichever logger and handler it goes to: uvicorn's
    access log (the query string of ``GET /persons?citizen_id=…``), its error log, httpx's "HTTP Request: …" line
    of a call between services. A record factory rather than a handler filter, so that handlers configured by
    uvicorn before the app (its own log config) or after it are covered alike."""
    if logging.getLogRecordFactory() is not _redacted_record:
        logging.setLogRecordFactory(_redacted_record)


def _add_trace(_logger, _name, event_dict):  # noqa: ANN001
    ctx = context.current()
    event_dict.setdefault("request_id", ctx.request_id)
    event_dict.setdefault("correlation_id", ctx.correlation_id)
    event_dict.setdefault("actor", None if ctx.actor is context.ANONYMOUS else ctx.actor.id)
    return event_dict


def _service(name: str | None):  # noqa: ANN202
    def add_service(_logger, _name, event_dict):  # noqa: ANN001
        event_dict.setdefault("service", name)
        event_dict.setdefault("pid", os.getpid())
        return event_dict

    return add_service


def add_times(_logger, _name, event_dict):  # noqa: ANN001
    event_dict["time"], event_dict["time_cst"] = _times(clock.utc_now())
    return event_dict


# The two times' texts but for the milliseconds, for the second they were last asked in: a line needs only the
# milliseconds formatted (two isoformat calls and a time-zone conversion were a third of an access line's cost).
# One tuple, replaced whole: a thread never reads half of one second and half of another.
_second: tuple = (None, "", "", "", "")


def _times(now: datetime) -> tuple[str, str]:
    """``now`` in UTC (``…Z``) and China time (``…+08:00``), to the millisecond, as ``isoformat`` writes them."""
    global _second  # noqa: PLW0603 - the one-entry cache above
    second = now.replace(microsecond=0)
    cached = _second
    if second != cached[0]:
        utc = second.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        cst = second.astimezone(clock.CHINA).isoformat(timespec="milliseconds")
        cached = _second = (second, utc[:20], utc[23:], cst[:20], cst[23:])
    milliseconds = "%03d" % (now.microsecond // 1000)
    return cached[1] + milliseconds + cached[2], cached[3] + milliseconds + cached[4]


def _access_fields(_logger, _name, event_dict):  # noqa: ANN001
    """uvicorn's access line as fields too: ``'%s - "%s %s HTTP/%s" %d'`` with (client, method, path, version,
    status) — already masked by the record factory."""
    args = event_dict.pop("positional_args", None)
    record = event_dict.get("_record")
    if record is not None and record.name == ACCESS_LOGGER and isinstance(args, tuple) and len(args) == 5:
        client, method, path, _version, status = args
        event_dict.update(client=client, method=method, path=path, status=status)
    return event_dict


def _shared_processors(service: str | None) -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        add_times,
        _service(service),
        _add_trace,
    ]


def _renderer(json_lines: bool) -> Any:
    return structlog.processors.JSONRenderer(ensure_ascii=False) if json_lines else structlog.dev.ConsoleRenderer()


class _OurHandler(logging.StreamHandler):
    """The handler this module puts on the root logger (found again and replaced when configured twice)."""

    formatter: "_Formatter"

    def write_line(self, line: str) -> None:
        """``line`` written as ``emit`` writes a formatted record (for ``log_access``)."""
        with self.lock:
            try:
                self.stream.write(line + self.terminator)
                self.flush()
            except Exception:  # noqa: BLE001 - as logging.Handler.handleError: a log line never fails a request
                self.handleError(None)


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """``ProcessorFormatter`` with a short way for the access line, one per request: the same JSON object, key for
    key, built directly instead of through the processor chain, which cost more than the rest of a cheap read's
    logging (``tests/kernel/test_access_log_line.py`` holds the two equal). Anything else, and every line in a
    terminal, takes the chain."""

    def __init__(self, *args, service: str | None, json_lines: bool, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.service, self.short_access_lines = service, json_lines

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if (self.short_access_lines and record.name == ACCESS_LOGGER and isinstance(args, tuple)
                and len(args) == 5 and not record.exc_info and not record.stack_info):
            return self.access_line(record.getMessage(), args)
        return super().format(record)

    def access_line(self, message: str, args: tuple) -> str:
        """The JSON line of an access record whose (masked) arguments are ``args``."""
        client, method, path, _version, status = args
        bound = structlog.contextvars.get_contextvars()
        ctx = context.current()
        actor = None if ctx.actor is context.ANONYMOUS else ctx.actor.id
        time, time_cst = _times(clock.utc_now())
        if bound or not isinstance(status, int):
            line: dict[str, Any] = {"event": message, "logger": ACCESS_LOGGER}
            line.update(redact_value(bound))
            line.update(level="info", time=time, time_cst=time_cst, service=self.service, pid=os.getpid(),
                        request_id=ctx.request_id, correlation_id=ctx.correlation_id, actor=actor, client=client,
                        method=method, path=path, status=status)
            return json.dumps(line, ensure_ascii=False, default=repr)
        # Nothing bound (a request's usual case): the same text as json.dumps of the same keys in the same order,
        # each string written by json's own encoder, without walking a dict.
        return _ACCESS_JSON % (
            _text(message), _text(time), _text(time_cst), _text(self.service), os.getpid(), _text(ctx.request_id),
            _text(ctx.correlation_id), _text(actor), _text(client), _text(method), _text(path), status)


# -- the access line -------------------------------------------------------------------------------------------------

_ACCESS_JSON = ('{"event": %s, "logger": "uvicorn.access", "level": "info", "time": %s, "time_cst": %s, "service": %s, '
                '"pid": %d, "request_id": %s, "correlation_id": %s, "actor": %s, "client": %s, "method": %s, '
                '"path": %s, "status": %d}')


def _text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


# The logger name and message of uvicorn's access line, kept: ``sifund logs``, dashboards and tests read them.
ACCESS_LOGGER = "uvicorn.access"
ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'
_access_logger = logging.getLogger(ACCESS_LOGGER)


def log_access(scope: dict[str, Any], status: int) -> None:
    """One request's access line, as uvicorn wrote it (``'<client> - "<method> <path?query> HTTP/<v>" <status>'``
    with the same fields, masked alike), written by the request middleware (``services.kernel.web``) when the
    response starts; uvicorn's own access logger is muted by ``configure_logging``. Under ``sifund up`` (our handler
    alone on the root, JSON lines) the line is written straight to the handler's stream: no ``LogRecord``, record
    factory or handler dispatch per request (~8 % of a cheap read's CPU in each process, bench/gateway_reads.py).
    Anywhere else (pytest's capture handlers, a terminal) it goes through the root's handlers as a record."""
    if not _access_logger.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    raw_path = scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else scope["path"]
    if query := scope.get("query_string"):
        path = f"{path}?{query.decode('latin-1')}"
    # Masked as the record factory masks a record's arguments (services.kernel.pii): text masked, numbers kept.
    args = (redact("%s:%d" % tuple(client) if client else ""), redact(scope["method"]),
            redact(path.replace('"', "%22")), redact(scope.get("http_version", "1.1")), status)
    root = logging.getLogger()
    handlers = root.handlers
    if len(handlers) == 1 and type(handlers[0]) is _OurHandler and handlers[0].formatter.short_access_lines:
        handlers[0].write_line(handlers[0].formatter.access_line(ACCESS_FORMAT % args, args))
        return
    root.handle(_access_logger.makeRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, ACCESS_FORMAT, args, None))


def stdlib_formatter(service: str | None, *, json_lines: bool = True) -> logging.Formatter:
    """structlog's ``ProcessorFormatter``: stdlib records (uvicorn, httpx, alembic, …) rendered into the same lines
    as structlog's own events."""
    return _Formatter(
        service=service, json_lines=json_lines,
        pass_foreign_args=True,
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *_shared_processors(service), _access_fields],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_log_event,
            _renderer(json_lines),
        ],
    )


# Linux's fcntl command for a pipe's capacity (fcntl.F_SETPIPE_SZ from Python 3.10, on Linux only).
_SET_PIPE_SIZE = 1031
PIPE_BYTES = 1024 * 1024


def roomy_pipe(stream: Any) -> bool:
    """When ``stream`` is a pipe (stderr under ``sifund up``, read by the launcher), ask for a 1 MiB buffer instead
    of the default 64 KiB: a burst of lines while the launcher's reader is not scheduled waits in the pipe instead of
    blocking the writer in ``write()`` — on a process's event loop, every request stalls meanwhile (a busy machine
    showed a fifth of a service's samples there). Nothing else changes: lines are written and flushed as before.
    False where the system refuses or the stream is not a pipe."""
    try:
        fd = stream.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        import fcntl  # noqa: PLC0415 - POSIX only

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", _SET_PIPE_SIZE), PIPE_BYTES)
    except (OSError, ValueError, AttributeError, ImportError):
        return False
    return True


def configure_logging(level: str = "INFO", *, json_lines: bool | None = None, service: str | None = None) -> None:
    json_lines = not sys.stderr.isatty() if json_lines is None else json_lines
    install_log_record_redaction()
    roomy_pipe(sys.stderr)
    # uvicorn's loggers lose the handlers its default config gave them and propagate to the root, whose handler
    # is this module's (pytest's capture handlers on the root stay; a previous handler of ours goes). Its access
    # logger gets nothing to write to, so that uvicorn's protocol logs no line of its own (it logs only when the
    # logger has handlers): the request middleware writes the line instead (``log_access``).
    loggers = {name: {"handlers": [], "propagate": name != ACCESS_LOGGER, "level": level.upper()}
               for name in UVICORN_LOGGERS}
    logging.config.dictConfig({"version": 1, "incremental": False, "disable_existing_loggers": False,
                               "loggers": loggers})
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _OurHandler)]:
        root.removeHandler(old)
    handler = _OurHandler(sys.stderr)
    handler.setFormatter(stdlib_formatter(service, json_lines=json_lines))
    root.addHandler(handler)
    root.setLevel(level.upper())
    structlog.configure(
        processors=[
            *_shared_processors(service),
            structlog.processors.format_exc_info,
            redact_log_event,
            _renderer(json_lines),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
