"""HTTP API of the suspicion rules: the catalogue, the sweep, and the sweep log (oversight officers).

``POST /rules/sweeps`` is what an officer calls on demand; oversight's scheduler runs the same sweep daily
(``scheduler/jobs.py``, through ``collect_inputs`` with its own client token). Before sweeping it pulls, with the
caller's own bearer token (the services and the gateway answer these to ``oversight_officer``):

- the gateway's ``GET /identity/reports/long-tenure?years=1`` and ``GET /identity/conflict-rules`` (S20, S18 roles);
- accounts' ``GET /audit/entries?entity_type=life_status_correction`` after the stored cursor (S19 corrections).

A source that cannot be read is recorded in the run's ``inputs`` and the rules that need it are ``skipped`` — never
judged on missing data.
"""

import json
from datetime import date, datetime
from typing import Annotated, Any

import anyio
import httpx
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import Engine, select
from sqlmodel import Session

from services.kernel import context
from services.kernel.auth import allow
from services.kernel.errors import Invalid, NotFound
from services.kernel.periods import Period, add_months, months_between, period_of
from services.kernel.service_app import SessionDep
from services.kernel.settings import Settings, SettingsDep
from services.kernel.strict import RequestModel
from services.oversight.chains.service import component_url
from services.oversight.rules import registry_data
from services.oversight.rules.models import RuleSweep
from services.oversight.rules.registry import RULES, catalogue
from services.oversight.rules.sweep import SWEPT, SweepInputs, run_sweep
from services.kernel import clock

OFFICERS = allow("oversight_officer")
AUDIT_PAGE = 1000
AUDIT_MAX_PAGES = 200

router = APIRouter(prefix="/rules", tags=["suspicion rules"])


class RuleOut(BaseModel):
    id: str
    severity: str
    clause: str
    title: str
    description: str
    mode: str = Field(description="event | sweep | event+sweep")
    sources: list[str]
    suggested_class: int | None
    month_end: bool = Field(description="judges a month at its end: never a month that has not ended")


MAX_MONTHS = 24


class SweepIn(RequestModel):
    as_of: date | None = Field(None, description="the day judged (default: today in China)")
    month: Period | None = Field(None, description="one reconciliation month YYYYMM for S12–S16")
    from_month: Period | None = Field(None, description="first month of a range (with to_month, inclusive)")
    to_month: Period | None = Field(None, description="last month of a range (with from_month, inclusive)")
    months: list[Period] | None = Field(None, max_length=MAX_MONTHS,
                                        description="reconciliation months for S12–S16 (default: the month before)")
    rules: list[str] | None = Field(None, description=f"default: all swept rules ({', '.join(SWEPT)})")


def months_of(body: SweepIn, as_of: date) -> list[int] | None:
    """The months asked for (``month``, ``from_month``–``to_month`` or ``months``; None: the default, the month
    before ``as_of``'s). A month after ``as_of``'s month is refused; ``as_of``'s own month is swept, but the
    month-end rules (S13, S15) skip it until it has ended (``registry.judgeable``)."""
    given = [name for name, value in (("month", body.month), ("months", body.months)) if value is not None]
    if body.from_month is not None or body.to_month is not None:
        given.append("from_month/to_month")
    if len(given) > 1:
        raise Invalid("MONTHS_AMBIGUOUS", f"月份只能以一种方式指定：{'、'.join(given)}")
    if body.month is not None:
        months = [body.month]
    elif body.from_month is not None or body.to_month is not None:
        if body.from_month is None or body.to_month is None:
            raise Invalid("MONTH_RANGE_INCOMPLETE", "月份区间须同时指定 from_month 和 to_month")
        count = months_between(body.from_month, body.to_month)
        if count == 0:
            raise Invalid("MONTH_RANGE_REVERSED", "from_month 不能晚于 to_month")
        if count > MAX_MONTHS:
            raise Invalid("MONTH_RANGE_TOO_LONG", f"一次最多扫描 {MAX_MONTHS} 个月")
        months = [add_months(body.from_month, i) for i in range(count)]
    elif body.months:
        months = sorted(set(body.months))
    else:
        return None
    if future := [m for m in months if m > period_of(as_of)]:
        raise Invalid("MONTH_NOT_STARTED", f"月份尚未开始，无可扫描：{'、'.join(map(str, future))}",
                      details={"as_of": as_of.isoformat(), "months": future})
    return months


class SweepOut(BaseModel):
    id: str
    as_of: date
    status: str = Field(description="running | done | partial (a rule skipped or failed)")
    started_at: datetime
    finished_at: datetime | None
    started_by: str
    months: list[int]
    rules: dict[str, dict[str, Any]]
    inputs: dict[str, Any]

    @classmethod
    def of(cls, run: RuleSweep) -> "SweepOut":
        summary = json.loads(run.summary)
        return cls(id=run.id, as_of=run.as_of, status=run.status, started_at=run.started_at,
                   finished_at=run.finished_at, started_by=run.started_by, months=summary.get("months", []),
                   rules=summary.get("rules", {}), inputs=summary.get("inputs", {}))


@router.get("", response_model=list[RuleOut], dependencies=[OFFICERS],
            summary="The suspicion-rule catalogue: id, severity, seed clause, mode (event / sweep)")
def rules_catalogue() -> list[RuleOut]:
    return [RuleOut(**r) for r in catalogue()]


def _caller_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:] if header.lower().startswith("bearer ") else ""


async def _get(http: httpx.AsyncClient, url: str, token: str, params: dict[str, Any]) -> tuple[Any, str | None]:
    try:
        response = await http.get(url, params=params, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"[:300]
    if response.status_code != 200:
        return None, f"HTTP {response.status_code} from {url}"
    try:
        return response.json(), None
    except ValueError:
        return None, f"not JSON from {url}"


async def gather_inputs(request: Request, settings: Settings, selected: set[str], months: list[int] | None,
                        ) -> SweepInputs:
    state = request.app.state
    return await collect_inputs(state.http, settings, state.engine, _caller_token(request), selected, months)


async def collect_inputs(http: httpx.AsyncClient, settings: Settings, engine: Engine, token: str,
                         selected: set[str], months: list[int] | None) -> SweepInputs:
    """The sweep's inputs from the gateway and accounts, read with ``token`` (the caller's, or the scheduler's own
    client token for a scheduled sweep)."""
    inputs = SweepInputs(months=months)
    if selected & {"S18", "S20"}:
        gateway = component_url(settings, "gateway")
        rows, problem = await _get(http, f"{gateway}/identity/reports/long-tenure", token, {"years": 1})
        if problem is None and isinstance(rows, list):
            inputs.tenure_rows, inputs.notes["tenure"] = rows, f"read: {len(rows)} rows"
        else:
            inputs.notes["tenure"] = problem or "unexpected body"
        rules, problem = await _get(http, f"{gateway}/identity/conflict-rules", token, {})
        if problem is None and isinstance(rules, list):
            inputs.conflict_rules, inputs.notes["conflict_rules"] = rules, f"read: {len(rules)} rules"
        else:
            inputs.notes["conflict_rules"] = f"defaults used ({problem or 'unexpected body'})"
    if "S19" in selected:
        cursor = await anyio.to_thread.run_sync(_cursor, engine)
        entries: list[dict[str, Any]] = []
        accounts = settings.service_url("accounts")
        for _ in range(AUDIT_MAX_PAGES):
            page, problem = await _get(http, f"{accounts}/audit/entries", token, {
                "after_seq": cursor, "limit": AUDIT_PAGE, "entity_type": registry_data.CORRECTION_ENTITY})
            if problem is not None or not isinstance(page, list):
                inputs.notes["corrections"] = problem or "unexpected body"
                entries = None  # type: ignore[assignment]
                break
            entries.extend(page)
            if len(page) < AUDIT_PAGE:
                break
            cursor = max(int(e["seq"]) for e in page)
        if entries is not None:
            inputs.correction_entries = entries
            inputs.notes["corrections"] = f"read: {len(entries)} audit entries"
    return inputs


def _cursor(engine) -> int:  # noqa: ANN001
    with Session(engine) as session:
        return registry_data.correction_cursor(session)


@router.post("/sweeps", response_model=SweepOut, status_code=201, dependencies=[OFFICERS],
             summary="Run the sweep now (S01–S05, S11–S16, S18 roles, S19, S20); cases through open_case",
             description="Called by the scheduler (e.g. nightly) and by officers on demand. Idempotent in effect: a "
                         "fact already found counts an occurrence on its case. Reconciliation months (S12–S16): "
                         "``month``, a range ``from_month``–``to_month`` (inclusive, at most 24) or a list "
                         "``months`` — one of them; default the month before ``as_of``. A month after ``as_of``'s "
                         "is refused (422 ``MONTH_NOT_STARTED``); the month-end rules S13 and S15 skip a month that "
                         "has not ended (listed in the rule's ``months_not_ended``).")
async def sweep(request: Request, settings: SettingsDep, body: SweepIn | None = None) -> SweepOut:
    body = body or SweepIn()
    selected = set(body.rules or SWEPT)
    unknown = sorted(selected - set(SWEPT))
    if unknown:
        raise Invalid("RULE_NOT_SWEPT", f"这些规则不在定期扫描中（由事件触发或不存在）：{'、'.join(unknown)}",
                      details={"swept": list(SWEPT)})
    as_of = body.as_of or clock.china_today()
    inputs = await gather_inputs(request, settings, selected, months_of(body, as_of))
    actor = context.current().actor
    run = await anyio.to_thread.run_sync(lambda: run_sweep(request.app.state.engine, as_of=as_of, inputs=inputs,
                                                           rules=sorted(selected), actor=actor))
    return SweepOut.of(run)


@router.get("/sweeps", response_model=list[SweepOut], dependencies=[OFFICERS], summary="Sweep runs, newest first")
def sweeps(session: SessionDep, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[SweepOut]:
    rows = session.execute(select(RuleSweep).order_by(RuleSweep.id.desc()).limit(limit)).scalars()
    return [SweepOut.of(r) for r in rows]


@router.get("/sweeps/{sweep_id}", response_model=SweepOut, dependencies=[OFFICERS], summary="One sweep run")
def sweep_run(session: SessionDep, sweep_id: str) -> SweepOut:
    run = session.get(RuleSweep, sweep_id)
    if run is None:
        raise NotFound("SWEEP_NOT_FOUND", "扫描记录不存在")
    return SweepOut.of(run)


@router.get("/{rule_id}", response_model=RuleOut, dependencies=[OFFICERS], summary="One rule of the catalogue")
def rule(rule_id: str) -> RuleOut:
    if rule_id not in RULES:
        raise NotFound("RULE_NOT_FOUND", "没有该疑点规则")
    return next(RuleOut(**r) for r in catalogue() if r["id"] == rule_id)
