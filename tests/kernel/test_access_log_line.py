"""uvicorn's access line, one per request, is built directly (services.kernel.logging._Formatter) instead of through
structlog's processor chain: the two give the same JSON object, key for key and in the same order, masked alike. The
request middleware writes it (services.kernel.web), uvicorn's own access logger muted: the same line again."""

import io
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import structlog
from structlog.stdlib import ProcessorFormatter

from services.kernel import context
from services.kernel.context import Actor
from services.kernel.logging import configure_logging, install_log_record_redaction, stdlib_formatter
from services.kernel.web import RequestMiddleware

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
    # written as the chain's renderer writes (json.dumps, ensure_ascii=False), character for character
    text = stdlib_formatter("accounts", json_lines=True).format(_record(path))
    assert text == json.dumps(json.loads(text), ensure_ascii=False)
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


# -- the line the request middleware writes (services.kernel.web.RequestMiddleware, uvicorn's own access log muted) --


def _answering(status: int):  # noqa: ANN202
    async def app(scope, receive, send) -> None:  # noqa: ANN001
        if status == 0:
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    return app


async def _request(app, path: str, headers: dict[str, str] | None = None) -> int:  # noqa: ANN001
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("10.1.2.3", 40123))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return (await client.get(path, headers=headers)).status_code


@contextmanager
def only_our_handler() -> Iterator[io.StringIO]:
    """The root logger as under ``sifund up``: our handler alone (pytest's capture handlers, added per test phase,
    set aside), writing into a buffer. The middleware then writes its line straight to the handler's stream."""
    stream, stderr = io.StringIO(), sys.stderr
    sys.stderr = stream
    try:
        configure_logging("INFO", json_lines=True, service="accounts")
    finally:
        sys.stderr = stderr
    root = logging.getLogger()
    others = [h for h in root.handlers if type(h).__name__ != "_OurHandler"]
    for handler in others:
        root.removeHandler(handler)
    try:
        yield stream
    finally:
        for handler in others:
            root.addHandler(handler)


def _lines(stream: io.StringIO) -> list[dict]:
    return [line for text in stream.getvalue().splitlines() if (line := json.loads(text)).get("logger") == "uvicorn.access"]


PATHS = ["/employers/7f3a", "/persons?citizen_id=11010519491231002X&page=2",
         "/persons/%E5%BC%A0%E4%B8%89?bank_card=6222021234567890123"]


@pytest.mark.parametrize("path", PATHS)
async def test_the_middlewares_line_is_uvicorns_line(path):
    with only_our_handler() as stream:
        assert await _request(RequestMiddleware(_answering(404)), path, {"x-request-id": "req-7"}) == 404
    written = _lines(stream)
    assert len(written) == 1
    line = written[0]
    # What uvicorn's protocol logged for the same request, through the chain (the five arguments it passed).
    with context.trace(request_id="req-7", correlation_id="req-7"):
        _short, chained = _both(_record(path, status=404))
    chained.update(client="10.1.2.3:40123", event=chained["event"].replace("127.0.0.1:51234", "10.1.2.3:40123"))
    assert list(line) == list(chained)
    assert _without_times(line) == _without_times(chained)
    assert line["logger"] == "uvicorn.access" and line["request_id"] == "req-7" and line["status"] == 404
    assert "11010519491231002X" not in json.dumps(line) and "6222021234567890123" not in json.dumps(line)


async def test_a_failure_is_logged_and_a_service_may_say_nothing():
    with only_our_handler() as stream:
        assert await _request(RequestMiddleware(_answering(0)), "/boom") == 500
        quiet = await _request(RequestMiddleware(_answering(200), access_log=False), "/employers/1")
    assert quiet == 200
    assert [(line["path"], line["status"]) for line in _lines(stream)] == [("/boom", 500)]


async def test_beside_other_handlers_the_line_goes_through_the_chain(caplog):
    configure_logging("INFO", json_lines=True, service="accounts")
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        assert await _request(RequestMiddleware(_answering(200)), "/persons?citizen_id=11010519491231002X") == 200
    records = [r for r in caplog.records if r.name == "uvicorn.access"]
    assert len(records) == 1
    assert records[0].args[1:] == ("GET", "/persons?citizen_id=110105********002X", "1.1", 200), records[0].args
    assert "11010519491231002X" not in records[0].getMessage()


def test_uvicorns_own_access_logger_has_nothing_to_write_to():
    configure_logging("INFO", json_lines=True, service="accounts")
    assert not logging.getLogger("uvicorn.access").hasHandlers()  # uvicorn's protocol then logs nothing itself
