"""Personal numbers are masked in every log record (stdlib and structlog), and the suite fails when a
log file it wrote holds one (tests/log_scan.py)."""

import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from uvicorn.logging import AccessFormatter

from services.kernel.logging import configure_logging
from tests.support.registry import make_card, make_citizen_id
from tests.support.log_scan import personal_numbers, scan_logs

CITIZEN_ID = make_citizen_id(3, area="110105")
CARD = make_card(77)


def _capture(name: str, path: Path, formatter: logging.Formatter) -> tuple[logging.Logger, logging.Handler]:
    handler = logging.FileHandler(path)
    handler.setFormatter(formatter)
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, handler


def test_stdlib_records_are_masked_whatever_the_logger(tmp_path):
    configure_logging("INFO")
    path = tmp_path / "out.log"
    access, access_handler = _capture("test.uvicorn.access", path,
                                      AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s'))
    other, other_handler = _capture("test.httpx", path, logging.Formatter("%(message)s"))
    try:
        # exactly as uvicorn's h11 protocol logs a request (its formatter unpacks the five arguments)
        access.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET",
                    f"/persons?citizen_id={CITIZEN_ID}&account_no={CARD}", "1.1", 200)
        # as httpx logs a call between services: the URL is an httpx.URL, not a str
        other.info('HTTP Request: %s %s "%s %d %s"', "GET", httpx.URL(f"http://accounts/v?citizen_id={CITIZEN_ID}"),
                   "HTTP/1.1", 200, "OK")
        try:
            raise ValueError(f"bad card {CARD}")
        except ValueError:
            other.exception("failed for %(who)s", {"who": CITIZEN_ID})
    finally:
        for logger, handler in ((access, access_handler), (other, other_handler)):
            logger.removeHandler(handler)
            handler.close()
    text = path.read_text()
    assert "GET /persons?citizen_id=110105********" in text and " 200" in text
    assert "HTTP Request: GET http://accounts/v?citizen_id=110105****" in text
    assert "failed for 110105****" in text and "ValueError: bad card" in text
    assert list(personal_numbers(text)) == [], text


def test_structlog_events_are_masked_at_any_depth(capsys):
    before = structlog.get_config()  # the loggers print to this test's captured stderr: put the old one back
    try:
        configure_logging("INFO", json_lines=True)
        structlog.get_logger("t").info("registered", citizen_id=CITIZEN_ID,
                                       details={"accounts": [CARD], "note": f"id {CITIZEN_ID}"})
    finally:
        structlog.configure(**before)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["citizen_id"].startswith("110105********")
    assert list(personal_numbers(json.dumps(line))) == []


@pytest.fixture
def outside_tmp() -> Iterator[Path]:
    """A directory outside this session's temporary directory: the leaks planted here must not fail the run."""
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


def test_the_scan_finds_full_numbers_only(outside_tmp):
    tmp_path = outside_tmp
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.log").write_text(f"ok 110105********0153\nleak {CITIZEN_ID}\nleak {CARD}\n")
    (tmp_path / "b.txt").write_text(CITIZEN_ID)  # not a log file
    leaks = scan_logs(tmp_path)
    assert [leak.split(": ", 1)[1] for leak in leaks] == [
        f"full citizen id {CITIZEN_ID[:6]}…{CITIZEN_ID[-4:]}", f"full bank account {CARD[:6]}…{CARD[-4:]}"]
    assert ":2:" in leaks[0] and ":3:" in leaks[1]


def test_a_run_that_wrote_a_number_to_a_log_file_fails(outside_tmp):
    tmp_path = outside_tmp
    test_file = tmp_path / "test_leaky.py"
    test_file.write_text(f"def test_leaks(tmp_path):\n    (tmp_path / 'svc.log').write_text('id {CITIZEN_ID}')\n")
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.support.log_scan",
                          "--basetemp", str(tmp_path / "base"), "--rootdir", str(tmp_path), str(test_file)],
                         cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed" in run.stdout and "LOG LEAK" in run.stdout and "full citizen id 110105…" in run.stdout
