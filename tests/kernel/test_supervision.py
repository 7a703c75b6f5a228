"""The supervisor's restart policy (exponential backoff within a restart budget) and its state file."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.kernel.settings import Settings
from services.kernel.supervision import (FAILED, RUNNING, ChildState, RestartPolicy, read_state, state_file,
                                         write_state)

pytestmark = pytest.mark.unit  # pure: no NATS, no app, no database (make test-unit)


def policy(**overrides: float) -> RestartPolicy:
    return RestartPolicy(**{"initial_seconds": 0.5, "max_seconds": 4.0, "max_restarts": 5, "window_seconds": 60.0,
                            **overrides})


def test_backoff_doubles_from_the_initial_value_up_to_the_cap():
    restarts = policy(max_restarts=10)
    assert [restarts.next_delay(t) for t in range(7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]


def test_beyond_the_budget_within_the_window_there_is_no_restart():
    restarts = policy(max_restarts=3, window_seconds=60.0)
    assert [restarts.next_delay(t) for t in (0, 1, 2)] == [0.5, 1.0, 2.0]
    assert restarts.next_delay(3) is None
    assert restarts.next_delay(59) is None  # a refused restart is not recorded, and the window has not moved yet


def test_restarts_older_than_the_window_no_longer_count_nor_lengthen_the_backoff():
    restarts = policy(max_restarts=2, window_seconds=10.0)
    assert [restarts.next_delay(t) for t in (0, 1)] == [0.5, 1.0]
    assert restarts.next_delay(5) is None
    assert restarts.next_delay(10.5) == 1.0  # the first restart left the window, the second is still in it
    assert restarts.next_delay(30) == 0.5  # a child that stayed up a whole window starts again from the beginning


def test_a_zero_budget_never_restarts():
    assert policy(max_restarts=0).next_delay(0) is None


@pytest.mark.parametrize("bad", [{"initial_seconds": 0}, {"max_seconds": 0.1}, {"max_restarts": -1},
                                 {"window_seconds": 0}])
def test_a_policy_that_makes_no_sense_is_refused(bad: dict):
    with pytest.raises(ValueError):
        policy(**bad)


def test_settings_give_the_policy_and_refuse_nonsense(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SIFUND_SUPERVISOR_MAX_RESTARTS", "2")
    monkeypatch.setenv("SIFUND_SUPERVISOR_BACKOFF_INITIAL_SECONDS", "0.1")
    settings = Settings()
    assert (settings.supervisor_max_restarts, settings.supervisor_backoff_initial_seconds) == (2, 0.1)
    monkeypatch.setenv("SIFUND_SUPERVISOR_BACKOFF_INITIAL_SECONDS", "0")
    with pytest.raises(ValueError):
        Settings()


def test_the_state_file_is_written_whole_and_read_back(tmp_path: Path):
    path = state_file(tmp_path)
    children = [ChildState("nats", 101), ChildState("benefits", None, FAILED, 5, -9)]
    write_state(path, os.getpid(), children)
    assert read_state(path) == [
        {"name": "nats", "pid": 101, "status": RUNNING, "restarts": 0, "last_exit_code": None},
        {"name": "benefits", "pid": None, "status": FAILED, "restarts": 5, "last_exit_code": -9}]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind


def test_a_state_file_left_by_a_launcher_that_is_gone_or_damaged_is_ignored(tmp_path: Path):
    path = state_file(tmp_path)
    assert read_state(path) is None
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    write_state(path, int(gone.stdout), [ChildState("nats", 101)])
    assert read_state(path) is None
    write_state(path, 0, [ChildState("nats", 101)])
    assert read_state(path) is None
    path.write_text("{not json")
    assert read_state(path) is None
    path.write_text(json.dumps({"children": []}))
    assert read_state(path) is None
