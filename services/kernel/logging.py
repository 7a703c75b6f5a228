"""Structured logs (structlog): JSON lines in production, readable lines in a terminal; the request id is bound
to every line. Personal data never goes into a log: log ids, not citizen id numbers or bank accounts."""

import logging
import sys

import structlog

from services.kernel import context
from services.kernel.pii import redact_log_event, redact_log_record

_base_record_factory = logging.getLogRecordFactory()


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
    if ctx.request_id:
        event_dict.setdefault("request_id", ctx.request_id)
    return event_dict


def configure_logging(level: str = "INFO", *, json_lines: bool | None = None) -> None:
    json_lines = not sys.stderr.isatty() if json_lines is None else json_lines
    install_log_record_redaction()
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _add_trace,
            structlog.processors.format_exc_info,
            redact_log_event,
            structlog.processors.JSONRenderer(ensure_ascii=False) if json_lines else structlog.dev.ConsoleRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
