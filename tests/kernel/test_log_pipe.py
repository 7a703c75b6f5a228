"""A process's log lines go to the launcher through a pipe: ``roomy_pipe`` gives that pipe a 1 MiB buffer, so that a
burst of lines does not block the writer (a process's event loop) while the launcher's reader catches up."""

import fcntl
import os

import pytest

from services.kernel.logging import PIPE_BYTES, roomy_pipe

GET_PIPE_SIZE = getattr(fcntl, "F_GETPIPE_SZ", 1032)


def test_a_pipe_gets_a_larger_buffer_and_still_carries_every_line():
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as reader, os.fdopen(write_end, "w") as writer:
        if not roomy_pipe(writer):
            pytest.skip("this system refuses a larger pipe buffer (fs.pipe-max-size)")
        assert fcntl.fcntl(writer.fileno(), GET_PIPE_SIZE) >= PIPE_BYTES
        line = '{"event": "x"}\n' * 10
        lines = 200 * 1024 // len(line) + 1  # more than the default 64 KiB: written without a reader
        for _ in range(lines):
            writer.write(line)
        writer.flush()
        writer.close()
        assert reader.read() == (line * lines).encode()


def test_a_file_is_left_alone(tmp_path):
    with open(tmp_path / "log", "w") as file:
        assert roomy_pipe(file) is False
