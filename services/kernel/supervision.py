"""Supervision of ``sifund up``'s children: when to restart a child that died on its own, and the
state every child is in, kept in ``<data dir>/supervisor.json`` for the gateway's ``/health`` and ``sifund status``.

Hand-written rather than a process supervisor library (supervisord, circus): the launcher already owns the
children's start order, environment, process groups and ``PR_SET_PDEATHSIG``; the policy below is a few lines, and an
external supervisor would add a daemon and a configuration format for what is one loop.
"""

import json
import os
import tempfile
from collections import deque
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATE_FILE_NAME = "supervisor.json"
RUNNING, RESTARTING, FAILED = "running", "restarting", "failed"


class RestartPolicy:
    """Exponential backoff within a restart budget. ``next_delay(now)`` is asked each time the child dies: the
    seconds to wait before restarting it, or ``None`` when it already used ``max_restarts`` restarts within the last
    ``window_seconds`` (the child is then failed). The backoff doubles with each restart still inside the window,
    so a child that stayed up for a whole window starts again from ``initial_seconds``."""

    def __init__(self, *, initial_seconds: float, max_seconds: float, max_restarts: int, window_seconds: float):
        if initial_seconds <= 0 or max_seconds < initial_seconds or max_restarts < 0 or window_seconds <= 0:
            raise ValueError("restart policy: need 0 < initial <= max backoff, max_restarts >= 0 and window > 0")
        self.initial_seconds = initial_seconds
        self.max_seconds = max_seconds
        self.max_restarts = max_restarts
        self.window_seconds = window_seconds
        self._restarts: deque[float] = deque()

    def _forget_before(self, now: float) -> None:
        while self._restarts and self._restarts[0] <= now - self.window_seconds:
            self._restarts.popleft()

    def next_delay(self, now: float) -> float | None:
        """Record a restart at ``now`` and return its backoff, or ``None`` (nothing recorded) beyond the budget."""
        self._forget_before(now)
        recent = len(self._restarts)
        if recent >= self.max_restarts:
            return None
        self._restarts.append(now)
        return min(self.max_seconds, self.initial_seconds * 2 ** recent)


@dataclass
class ChildState:
    name: str
    pid: int | None
    status: str = RUNNING
    restarts: int = 0
    last_exit_code: int | None = None


def state_file(data_dir: Path) -> Path:
    return Path(data_dir) / STATE_FILE_NAME


def write_state(path: Path, launcher_pid: int, children: list[ChildState]) -> None:
    """Atomically (temporary file in the same directory, then ``os.replace``): a reader never sees half a file."""
    body = {"launcher_pid": launcher_pid, "children": [asdict(c) for c in children]}
    descriptor, temporary = tempfile.mkstemp(prefix=".supervisor-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(body, file)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state(path: Path) -> list[dict[str, Any]] | None:
    """The children as the running launcher last wrote them; ``None`` without a file, an unreadable one, or one
    left behind by a launcher that is gone (killed before it could remove it)."""
    try:
        body = json.loads(Path(path).read_text(encoding="utf-8"))
        launcher_pid, children = int(body["launcher_pid"]), body["children"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    # kill(0) or kill(-n) would ask about a process group, not a launcher
    if not isinstance(children, list) or launcher_pid <= 0 or not process_alive(launcher_pid):
        return None
    return children
