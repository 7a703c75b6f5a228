"""The log files of ``sifund up``: each child's stdout and stderr go through a pipe to the launcher, which writes them
to ``<data dir>/logs/<name>.log`` and rotates the file when it passes ``log_max_bytes`` (``<name>.log.1`` …, keeping
``log_backup_count``). One writer per file, whatever the child does: uvicorn's workers share their parent's output, so
a rotation inside the processes would race (two processes renaming the same file).

A line that is not a JSON object (a traceback printed before logging was configured, uvicorn's master process with
``--workers`` announcing itself) is wrapped into one, masked, so that every line of the file is JSON with the same
keys as the processes' own (services/kernel/logging.py). nats-server's lines (``[pid] date time [INF] text``) become
the ``event`` of a line whose ``level`` is the server's and whose ``logger`` is ``nats-server``.
"""

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import IO

from services.kernel.logging import REQUIRED_KEYS, add_times
from services.kernel.pii import redact


class LogFile:
    """One child's log file, written by the launcher's pump threads only."""

    def __init__(self, path: Path, *, max_bytes: int, backup_count: int):
        self.path = path
        self.handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(message)s"))

    def write(self, line: str) -> None:
        # handle(): the handler's lock around the size check, the rollover and the write.
        self.handler.handle(logging.makeLogRecord({"msg": line, "args": None, "levelno": logging.INFO}))

    def write_lines(self, lines: list[str]) -> None:
        """Several lines as one write and one flush, rotating before any line that would take the file past its
        size, as ``write`` does line by line (the handler's per-line path formats each line twice and asks the file
        system three times: most of the launcher's CPU when the gateway and a service log a request each)."""
        handler = self.handler
        if not lines or handler.maxBytes <= 0 or not _regular_or_absent(handler.baseFilename):
            for line in lines:
                self.write(line)
            return
        handler.acquire()
        try:
            if handler.stream is None:
                handler.stream = handler._open()  # noqa: SLF001 - the handler's own opener (encoding, mode)
            size = handler.stream.seek(0, 2)
            pending: list[str] = []
            for line in lines:
                text = line + "\n"
                if size + len(text) >= handler.maxBytes and (size or pending):
                    handler.stream.write("".join(pending))
                    pending = []
                    handler.doRollover()
                    size = 0
                pending.append(text)
                size += len(text)
            handler.stream.write("".join(pending))
            handler.stream.flush()
        finally:
            handler.release()

    def event(self, service: str, event: str, level: str = "info", **fields: object) -> None:
        """A line of the launcher's own about this child (start, exit), in the processes' format."""
        self.write(json.dumps(_line(service, event, level, **fields), ensure_ascii=False))

    def pump(self, stream: IO[bytes], service: str,
             wrap: Callable[[str, str], str] | None = None) -> threading.Thread:
        """Copy ``stream`` (a child's output) into the file line by line until it closes, in a daemon thread;
        ``wrap`` makes a JSON line of each (default ``as_json_line``)."""
        thread = threading.Thread(target=self._copy, args=(stream, service, wrap or as_json_line),
                                  name=f"log-{service}", daemon=True)
        thread.start()
        return thread

    def _copy(self, stream: IO[bytes], service: str, wrap: Callable[[str, str], str]) -> None:
        # Whatever the pipe holds is taken at once and its complete lines written together (write_lines); after a
        # read that did not fill the buffer the pump pauses a moment, so that lines gather in the pipe (1 MiB, see
        # services.kernel.logging.roomy_pipe) instead of each line waking this thread — and each writer paying for
        # that wake-up — on its own.
        read = getattr(stream, "read1", stream.read)
        partial = b""
        try:
            while data := read(PUMP_BYTES):
                *complete, partial = (partial + data).split(b"\n")
                self.write_lines(_wrapped(complete, service, wrap))
                if len(data) < PUMP_BYTES:
                    time.sleep(PUMP_PAUSE_SECONDS)
            self.write_lines(_wrapped([partial], service, wrap))
        except (OSError, ValueError):  # the pipe closed under us at stop
            pass
        finally:
            stream.close()

    def close(self) -> None:
        self.handler.close()


PUMP_BYTES = 256 * 1024
# A line reaches its file at most this much later; a busy process's lines are written some tens at a time.
PUMP_PAUSE_SECONDS = 0.02


def _wrapped(raw_lines: list[bytes], service: str, wrap: Callable[[str, str], str]) -> list[str]:
    texts = (raw.decode("utf-8", errors="replace").rstrip("\r") for raw in raw_lines)
    return [wrap(text, service) for text in texts if text.strip()]


def _regular_or_absent(path: str) -> bool:
    """RotatingFileHandler never rotates anything but a regular file (bpo-45401)."""
    return not os.path.exists(path) or os.path.isfile(path)


def _line(service: str, event: str, level: str, **fields: object) -> dict[str, object]:
    line: dict[str, object] = {"event": event, "level": level, "service": service, "request_id": None,
                               "correlation_id": None, "actor": None, **fields}
    return add_times(None, None, line)


def as_json_line(text: str, service: str) -> str:
    """``text`` as it is if it is a JSON object already, else wrapped (masked) as the ``event`` of one."""
    if text.startswith("{") and text.endswith("}"):
        try:
            if isinstance(json.loads(text), dict):
                return text
        except ValueError:
            pass
    return json.dumps(_line(service, redact(text), "info", logger="stdout"), ensure_ascii=False)


# nats-server's log line: "[1234] 2026/12/06 21:00:00.123456 [INF] Server is ready".
NATS_LINE = re.compile(r"^\[\d+\] \S+ \S+ \[(?P<level>[A-Z]{3})\] (?P<text>.*)$")
NATS_LEVELS = {"INF": "info", "WRN": "warning", "ERR": "error", "FTL": "critical", "DBG": "debug", "TRC": "debug"}


def nats_json_line(text: str, service: str) -> str:
    """A nats-server line as one JSON line: its text (masked) the ``event``, its level the ``level``; the time is the
    launcher's reading of it (the server's own stamp is local time without a zone)."""
    match = NATS_LINE.match(text)
    if match is None:
        return as_json_line(text, service)
    level = NATS_LEVELS.get(match["level"], "info")
    return json.dumps(_line(service, redact(match["text"]), level, logger="nats-server"), ensure_ascii=False)


def read_lines(path: Path) -> Iterator[dict]:
    """Test and tool helper: the JSON objects of a log file, one per line (raises on a line that is not one)."""
    with open(path, encoding="utf-8") as file:
        for number, text in enumerate(file, 1):
            line = json.loads(text)
            if not isinstance(line, dict) or not set(REQUIRED_KEYS) <= line.keys():
                raise ValueError(f"{path}:{number}: not a log line with {', '.join(REQUIRED_KEYS)}: {text[:200]}")
            yield line


def last_lines(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of the log ``path`` — from its rotated files too (``.1``, ``.2`` …) when the current
    one, just started, holds fewer."""
    lines: list[str] = []
    generation = 0
    while len(lines) < count:
        current = path if generation == 0 else path.with_name(f"{path.name}.{generation}")
        if not current.is_file():
            break
        lines = _last_lines_of(current, count - len(lines)) + lines
        generation += 1
    return lines


def _last_lines_of(path: Path, count: int) -> list[str]:
    """The last ``count`` lines of one file (read from the end in blocks: a log file may be large)."""
    if count <= 0:
        return []
    with open(path, "rb") as file:
        file.seek(0, 2)
        end = position = file.tell()
        data = b""
        while position > 0 and data.count(b"\n") <= count:
            position = max(0, position - 65536)
            file.seek(position)
            data = file.read(end - position)
    return [line.decode("utf-8", errors="replace") for line in data.splitlines()[-count:]]


def follow(path: Path, stop: Callable[[], bool], poll_seconds: float = 0.25) -> Iterator[str]:
    """The lines written to ``path`` from now on (the file is opened at its end before this returns), across
    rotations (the file renamed to ``.1`` and a new one started: what is left of the old one, then the new one from
    its start), until ``stop()``. As ``tail -F``: a reader more than a whole file behind a burst of rotations skips
    the files in between."""
    file = open(path, "rb")  # noqa: SIM115 - closed by the generator
    file.seek(0, 2)
    return _follow(path, file, stop, poll_seconds)


def _follow(path: Path, file: IO[bytes], stop: Callable[[], bool], poll_seconds: float) -> Iterator[str]:
    partial = b""
    try:
        while not stop():
            chunk = file.readline()
            if chunk:
                partial += chunk
                if partial.endswith(b"\n"):
                    yield partial.decode("utf-8", errors="replace").rstrip("\n")
                    partial = b""
                continue
            if _rotated(path, file):
                file.close()
                file = open(path, "rb")  # noqa: SIM115
                continue
            time.sleep(poll_seconds)
    finally:
        file.close()


def _rotated(path: Path, file: IO[bytes]) -> bool:
    try:
        current = path.stat()
    except FileNotFoundError:
        return False  # between the rename and the new file
    opened = os.fstat(file.fileno())
    return (current.st_ino, current.st_dev) != (opened.st_ino, opened.st_dev) or current.st_size < file.tell()
