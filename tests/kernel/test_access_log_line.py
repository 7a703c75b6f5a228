"""uvicorn's access line, one per request, is built directly (services.kernel.logging._Formatter) instead of through
structlog's processor chain: the two give the same JSON object, key for key and in the same order, masked alike."""

import json
import logging

import pytest
import structlog
from structlog.stdlib import ProcessorFormatter

from services.kernel import context
from services.kernel.context import Actor
from services.kernel.logging import install_log_record_redaction, stdlib_formatter

ACCESS_FORMAT = '%s - "%s %s HTTP/%s" %d'
TIMES = ("time", "time_cst")


def _record(path: str, status: int = 200, method: str = "GET") -> logging.LogRecord:
    install_log_record_redaction()
    return logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access", logging.INFO, __file__, 1, ACCESS_FORMAT, ("127.0.0.1:51234", method, path, "1.1", status),
        None)


def _both(record: logging.LogRecord) -> tuple[dict, dict]:
    formatter = stdlib_formatter("accounts", json_lines=True)
    short = json.loads(formatter.format(record))
    chained = json.loads(ProcessorFormatter.format(formatter, record))
    return short, chained


def _without_times(line: dict) -> dict:
    assert all(line[t] for t in TIMES)
    return {k: v for k, v in line.items() if k not in TIMES}


@pytest.mark.parametrize("path", [
    "/employers/7f3a",
    "/persons?citizen_id=11010519491231002X&page=2",  # masked in both
    "/persons/%E5%BC%A0%E4%B8%89?bank_card=6222021234567890123",
    "/api/accounts/employers/1?q=\"quoted\"",
])
def test_the_short_access_line_is_the_chains_line(path):
    short, chained = _both(_record(path))
    assert list(short) == list(chained)
    assert _without_times(short) == _without_times(chained)
    assert "11010519491231002X" not in json.dumps(short) and "6222021234567890123" not in json.dumps(short)


def test_the_same_inside_a_request_with_bound_context_variables():
    structlog.contextvars.bind_contextvars(job="import-1", note="citizen 11010519491231002X")
    try:
        with context.trace(request_id="req-1", correlation_id="corr-1", actor=Actor(id="clerk.li")):
            short, chained = _both(_record("/persons", status=404, method="POST"))
    finally:
        structlog.contextvars.clear_contextvars()
    assert list(short) == list(chained)
    assert _without_times(short) == _without_times(chained)
    assert short["request_id"] == "req-1" and short["actor"] == "clerk.li" and short["status"] == 404
    assert "11010519491231002X" not in short["note"]


def test_other_records_and_terminal_lines_take_the_chain():
    formatter = stdlib_formatter("gateway", json_lines=True)
    other = logging.getLogger("httpx").makeRecord("httpx", logging.WARNING, __file__, 1, "HTTP Request: %s", ("x",),
                                                 None)
    assert json.loads(formatter.format(other))["event"] == "HTTP Request: x"
    console = stdlib_formatter("gateway", json_lines=False)
    assert not console.format(_record("/x")).startswith("{")
