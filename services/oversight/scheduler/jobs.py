"""The jobs the scheduler runs. Each is the same work as an on-demand endpoint, called in-process:

| job | on demand | default schedule |
|---|---|---|
| ``chains`` | ``POST /chains/verify`` | every 15 minutes |
| ``escalations`` | ``POST /cases/escalations`` | hourly (a case escalates at most once per escalation interval) |
| ``sweep`` | ``POST /rules/sweeps`` | daily at 02:00 China time |

Not scheduled, because nothing needs running: incident deadlines, budget early warnings, inspection and
whistleblowing overdue lists are computed when read (``GET /incidents/due``, ``/budgets/…/execution``, …); closing a
reconciliation month (月结) is an officer's decision, not a timer's.

A job returns a ``JobResult``: ``ok``; ``partial`` (it ran, but part of the work could not be done, e.g. a component
unreachable or a rule skipped — said in ``error``); ``failed`` (raised, or nothing could be done).
"""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
from sqlalchemy import Engine

from services.kernel.context import Actor
from services.kernel.db import unit_of_work
from services.oversight.cases import service as cases
from services.oversight.chains import service as chains
from services.oversight.rules.endpoints import collect_inputs
from services.oversight.rules.sweep import SWEPT, run_sweep
from services.kernel import clock


@dataclass
class JobContext:
    state: Any  # the app's state: engine, http, settings
    token: str | None  # the scheduler's client token (None for jobs that call no other service)
    actor: Actor


@dataclass
class JobResult:
    outcome: str  # ok | partial | failed
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True)
class Job:
    name: str
    title: str
    needs_token: bool  # calls other services: runs only with the scheduler's client credential
    run: Callable[[JobContext], Awaitable[JobResult]]


async def verify_chains(ctx: JobContext) -> JobResult:
    state = ctx.state
    checks = await chains.verify_components(state.http, state.engine, state.settings, list(chains.COMPONENTS),
                                            caller_token=ctx.token, trigger="schedule", checked_by=ctx.actor.id)
    components = {}
    for check in checks:
        components[check.component] = {"status": check.status, "check_id": check.id, "case_id": check.case_id}
        if check.status in ("unreachable", "error"):
            components[check.component]["problem"] = (check.problem or "")[:300]
    summary = {"components": components, "cases": sorted({c.case_id for c in checks if c.case_id})}
    unchecked = [c for c in checks if c.status in ("unreachable", "error")]
    if not unchecked:
        return JobResult("ok", summary)
    error = "；".join(f"{c.component}: {c.status} — {(c.problem or '')[:200]}" for c in unchecked)
    return JobResult("failed" if len(unchecked) == len(checks) else "partial", summary, f"not checked: {error}")


def _escalate(engine: Engine) -> list[dict[str, Any]]:
    with unit_of_work(engine) as session:
        escalated = cases.escalate(session, as_of=clock.china_today())
        return [{"case_id": c.id, "severity": c.severity, "escalation_level": c.escalation_level} for c in escalated]


async def escalate_cases(ctx: JobContext) -> JobResult:
    escalated = await anyio.to_thread.run_sync(_escalate, ctx.state.engine)
    return JobResult("ok", {"as_of": clock.china_today().isoformat(), "escalated": len(escalated), "cases": escalated})


async def sweep_rules(ctx: JobContext) -> JobResult:
    state = ctx.state
    selected = set(SWEPT)
    as_of = clock.china_today()
    inputs = await collect_inputs(state.http, state.settings, state.engine, ctx.token or "", selected, None)
    run = await anyio.to_thread.run_sync(lambda: run_sweep(state.engine, as_of=as_of, inputs=inputs,
                                                           rules=sorted(selected), actor=ctx.actor))
    swept = json.loads(run.summary)
    rules = {rule: {k: v for k, v in r.items() if k != "trace"} for rule, r in swept.get("rules", {}).items()}
    summary = {"sweep_id": run.id, "as_of": as_of.isoformat(), "status": run.status, "rules": rules,
               "inputs": swept.get("inputs", {})}
    if run.status == "done":
        return JobResult("ok", summary)
    not_done = {rule: r.get("note") or r.get("error") for rule, r in rules.items() if r.get("status") != "ok"}
    return JobResult("partial", summary, "rules not run: " + "；".join(f"{k} ({v})" for k, v in not_done.items()))


JOBS: dict[str, Job] = {job.name: job for job in (
    Job("chains", "审计链核验 (audit-chain verification of accounts, collection, benefits, gateway)", True,
        verify_chains),
    Job("escalations", "逾期案件升级 (escalation of overdue cases)", False, escalate_cases),
    Job("sweep", "疑点规则定期扫描 (suspicion-rule sweep)", True, sweep_rules),
)}
