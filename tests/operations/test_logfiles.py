"""The launcher's log files (sifund/logfiles.py): JSON lines, rotation by size, following across a rotation."""

import io
import json
import time

import pytest

from services.kernel.logging import REQUIRED_KEYS
from sifund.logfiles import LogFile, as_json_line, follow, last_lines, nats_json_line, read_lines
from tests.support.registry import make_citizen_id

pytestmark = pytest.mark.unit
CITIZEN_ID = make_citizen_id(3, area="110105")


def test_a_line_that_is_not_json_is_wrapped_and_masked():
    wrapped = json.loads(as_json_line(f"Traceback: bad {CITIZEN_ID}", "accounts"))
    assert set(REQUIRED_KEYS) <= wrapped.keys() and wrapped["service"] == "accounts"
    assert CITIZEN_ID not in wrapped["event"] and "110105********" in wrapped["event"]
    assert as_json_line('{"event": "x"}', "accounts") == '{"event": "x"}'
    assert json.loads(as_json_line("{not json}", "accounts"))["event"] == "{not json}"


def test_a_nats_server_line_keeps_its_level_and_text():
    ready = json.loads(nats_json_line("[4242] 2026/12/06 21:00:00.123456 [INF] Server is ready", "nats-2"))
    assert set(REQUIRED_KEYS) <= ready.keys()
    assert (ready["service"], ready["logger"], ready["level"], ready["event"]) == (
        "nats-2", "nats-server", "info", "Server is ready")
    lost = json.loads(nats_json_line(f"[1] 2026/12/06 21:00:01.000001 [ERR] route lost {CITIZEN_ID}", "nats"))
    assert lost["level"] == "error" and CITIZEN_ID not in lost["event"]
    assert json.loads(nats_json_line("[2] 2026/12/06 21:00:02.5 [WRN] slow consumer", "nats"))["level"] == "warning"
    # Not the server's format (a panic's trace): wrapped as any other line.
    assert json.loads(nats_json_line("goroutine 1 [running]:", "nats"))["event"] == "goroutine 1 [running]:"


def test_the_file_rotates_past_its_size_and_keeps_the_backups(tmp_path):
    log = LogFile(tmp_path / "gateway.log", max_bytes=4096, backup_count=3)
    stream = io.BytesIO(b"".join(f"plain line {i:04d} ".encode() + b"x" * 80 + b"\n" for i in range(400)))
    log.pump(stream, "gateway").join(10)
    log.close()
    files = sorted(tmp_path.glob("gateway.log*"))
    assert [p.name for p in files] == ["gateway.log", "gateway.log.1", "gateway.log.2", "gateway.log.3"]
    for path in files:
        assert path.stat().st_size <= 4096 + 400
        assert all(line["service"] == "gateway" for line in read_lines(path))
    assert json.loads(last_lines(tmp_path / "gateway.log", 1)[0])["event"].startswith("plain line 0399")
    # More lines than the current file holds: the rest from the rotated files, oldest first, as one log.
    current = sum(1 for _ in read_lines(tmp_path / "gateway.log"))
    shown = [json.loads(line)["event"][:15] for line in last_lines(tmp_path / "gateway.log", current + 20)]
    assert shown == [f"plain line {i:04d}" for i in range(400 - current - 20, 400)]
    everything = last_lines(tmp_path / "gateway.log", 10_000)  # all the backups hold, no error past the last
    assert len(everything) == sum(1 for path in files for _ in read_lines(path))


def test_following_continues_in_the_new_file_after_a_rotation(tmp_path):
    log = LogFile(tmp_path / "accounts.log", max_bytes=4096, backup_count=2)
    log.event("accounts", "before")
    deadline = time.monotonic() + 20
    lines = follow(tmp_path / "accounts.log", stop=lambda: time.monotonic() > deadline, poll_seconds=0.01)
    log.event("accounts", "line 0")
    assert json.loads(next(lines))["event"] == "line 0"
    for i in range(1, 16):  # about 1.3 files of ~330-byte lines: one rotation
        log.event("accounts", f"line {i}", padding="y" * 100)
    seen = [json.loads(next(lines))["event"] for _ in range(1, 16)]
    log.close()
    assert (tmp_path / "accounts.log.1").exists() and not (tmp_path / "accounts.log.2").exists()
    assert seen == [f"line {i}" for i in range(1, 16)]


def test_lines_written_together_rotate_at_the_same_line_as_one_by_one(tmp_path):
    lines = [json.dumps({"event": f"line {i}", "padding": "z" * (i % 90)}) for i in range(300)]
    together, one_by_one = (LogFile(tmp_path / name, max_bytes=4096, backup_count=20)
                            for name in ("together.log", "single.log"))
    together.write_lines(lines[:150])
    together.write_lines(lines[150:])
    for line in lines:
        one_by_one.write(line)
    together.close()
    one_by_one.close()
    for suffix in ["", *(f".{n}" for n in range(1, 21))]:
        mine, theirs = tmp_path / f"together.log{suffix}", tmp_path / f"single.log{suffix}"
        assert mine.exists() == theirs.exists()
        if mine.exists():
            assert mine.read_bytes() == theirs.read_bytes(), suffix
