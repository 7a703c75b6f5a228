"""Two oversight processes on one database (issue 13, item 3), each with its scheduler loop running: a due job runs
once across them (the lease in ``scheduled_job``), whichever process wins it. On PostgreSQL under
``make test-postgres``, on SQLite otherwise."""

from datetime import timedelta

from sqlalchemy import select, update
from sqlmodel import Session

from services.oversight.scheduler.models import ScheduledJob, ScheduledJobRun
from services.oversight.scheduler.service import utcnow
from tests.conftest import running_app
from tests.e2e.test_employer_slice import wait_for
from tests.oversight.test_scheduler import nowhere, oversight_app, schedule


def finished_runs(engine) -> list[ScheduledJobRun]:  # noqa: ANN001
    with Session(engine, expire_on_commit=False) as session:
        return list(session.execute(select(ScheduledJobRun).where(ScheduledJobRun.job == "escalations")).scalars())


async def test_two_oversight_processes_run_a_due_job_once(make_settings, nats_server):
    settings = nowhere(make_settings, nats_server)
    config = schedule(escalations_interval_seconds=3600.0)  # not due until its start is moved back (below)
    async with running_app(oversight_app(settings, config)) as here, \
            running_app(oversight_app(settings, config)) as there:
        schedulers = [here.app.state.scheduler, there.app.state.scheduler]
        assert schedulers[0].owner != schedulers[1].owner
        engine = here.app.state.engine
        assert finished_runs(engine) == []
        # Both loops poll every 50 ms; the job becomes due for both at once.
        with Session(engine) as session:
            session.execute(update(ScheduledJob).where(ScheduledJob.job == "escalations")
                            .values(created_at=utcnow() - timedelta(hours=2)))
            session.commit()

        async def one_finished() -> bool:
            return any(r.outcome == "ok" for r in finished_runs(engine))

        await wait_for(one_finished)
        for scheduler in schedulers:  # each loop ends its current round: a second run would be recorded by now
            await scheduler.stop()
        [run] = finished_runs(engine)
        assert run.outcome == "ok" and run.owner in {s.owner for s in schedulers}
        with Session(engine) as session:
            assert session.get(ScheduledJob, "escalations").lease_owner is None  # released at the end
