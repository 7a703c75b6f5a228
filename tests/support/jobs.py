"""Helpers of the background jobs' tests: a job run by a process that dies part-way."""

from types import SimpleNamespace

import pytest
from sqlalchemy import Engine

from services.kernel import jobs
from services.kernel.settings_sections import JobSettings


class Crash(BaseException):
    """The service process dies here."""


async def run_until_killed(engine: Engine, kind: jobs.JobKind, work_type: type, *, killed_in_chunk: int,
                           monkeypatch: pytest.MonkeyPatch, **settings: object) -> None:
    """Run the oldest queued job of ``kind`` as a runner of a process that dies inside its ``killed_in_chunk``-th
    chunk (that chunk's writes roll back, the earlier ones stay committed); its lease runs out after 0.5 s."""
    real, calls = work_type.run_chunk, {"n": 0}

    def dies_part_way(self, session, offset):  # noqa: ANN001, ANN202
        step = real(self, session, offset)
        calls["n"] += 1
        if calls["n"] == killed_in_chunk:
            raise Crash(f"killed inside chunk {killed_in_chunk}")
        return step

    monkeypatch.setattr(work_type, "run_chunk", dies_part_way)
    runner = jobs.JobRunner(SimpleNamespace(state=SimpleNamespace(engine=engine)),  # type: ignore[arg-type]
                            {kind.name: kind}, JobSettings(lease_seconds=0.5, **settings))
    try:
        with pytest.raises(Crash):
            await runner._run(jobs.claim_next(engine, [kind.name], runner.owner, runner.lease))
    finally:
        monkeypatch.setattr(work_type, "run_chunk", real)
