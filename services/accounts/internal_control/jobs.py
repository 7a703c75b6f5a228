"""Drawing and redrawing a sample as background jobs: a city's month is hundreds of thousands of acts, read twice
(``bench/internal_control_draw.py``: 100 000 acts, 3.8–5.5 s of CPU on SQLite), a city's month more than a request may
take."""

from typing import Any

import anyio
from sqlalchemy import Engine

from services.accounts.internal_control import service
from services.kernel.db import snapshot_session
from services.kernel.jobs import JobContext, JobKind

READERS = frozenset({"internal_auditor", "oversight_officer"})


def _draw(engine: Engine, params: dict[str, Any]) -> dict[str, Any]:
    sample = service.draw_sample(engine, kind=params["kind"], period_label=params["period"],
                                 rate_percent=int(params["rate_percent"]), seed=int(params["seed"]))
    return {"sample_id": sample.id, "period": sample.period, "seed": sample.seed, "population": sample.population,
            "population_sha256": sample.population_sha256, "size": sample.size}


async def _draw_step(ctx: JobContext) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(_draw, ctx.engine, ctx.params)


def _redraw(engine: Engine, sample_id: str) -> dict[str, Any]:
    with snapshot_session(engine) as session:
        return service.redraw(session, sample_id)


async def _redraw_step(ctx: JobContext) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(_redraw, ctx.engine, str(ctx.params["sample_id"]))


SAMPLE_DRAW = JobKind(name="accounts.control_sample_draw", submitters=frozenset({"internal_auditor"}),
                      readers=READERS, run_async=_draw_step)
SAMPLE_REDRAW = JobKind(name="accounts.control_sample_redraw", submitters=READERS, readers=READERS,
                        run_async=_redraw_step)
CONTROL_JOBS = (SAMPLE_DRAW, SAMPLE_REDRAW)
