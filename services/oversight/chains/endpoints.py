"""HTTP API of audit-chain verification: check now (on demand or by the scheduler), read checkpoints and checks,
re-baseline after a handled CHAIN case. See ``service.py`` for the credential and the schedule."""

from datetime import datetime
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from services.kernel import context
from services.kernel.errors import NotFound
from services.kernel.auth import allow
from services.kernel.service_app import SessionDep
from services.kernel.strict import RowId, RequestModel
from services.oversight.chains import service
from services.oversight.chains.models import ChainCheck, ChainCheckpoint
from services.kernel.settings import SettingsDep

OFFICERS = allow("oversight_officer")
READERS = allow("oversight_officer", "internal_auditor")
Component = Literal["accounts", "collection", "benefits", "gateway"]

router = APIRouter(prefix="/chains", tags=["audit chains"])


class VerifyRun(RequestModel):
    components: list[Component] | None = Field(None, description="default: all four")
    trigger: Literal["on_demand", "schedule"] = "on_demand"


class Rebaseline(RequestModel):
    reason: str = Field(min_length=1, max_length=4000)


class CheckOut(BaseModel):
    id: int
    component: str
    checked_at: datetime
    trigger: str
    credential: str
    checked_by: str
    status: str = Field(description="ok | broken | rewound | broken+rewound | unreachable | error | rebaselined")
    length: int | None
    head_seq: int | None
    head_hash: str | None
    first_bad_seq: int | None
    baseline_seq: int | None
    baseline_hash: str | None
    problem: str | None
    case_id: str | None


class CheckpointOut(BaseModel):
    component: str
    seq: int
    hash: str
    verified_at: datetime | None
    last_checked_at: datetime | None
    last_status: str | None
    last_problem: str | None
    last_case_id: str | None
    checks: int


def _caller_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:] if header.lower().startswith("bearer ") else None


@router.post("/verify", response_model=list[CheckOut], dependencies=[OFFICERS],
             summary="Pull and verify the audit chains now; a broken or rewound chain opens a severe CHAIN case",
             description="Called by officers on demand and by the scheduler with `{\"trigger\": \"schedule\"}`.")
async def verify_chains(request: Request, settings: SettingsDep, body: VerifyRun | None = None) -> list[CheckOut]:
    body = body or VerifyRun()
    state = request.app.state
    checks = await service.verify_components(
        state.http, state.engine, settings, list(body.components or service.COMPONENTS),
        caller_token=_caller_token(request), trigger=body.trigger, checked_by=context.actor_id())
    return [CheckOut.model_validate(c, from_attributes=True) for c in checks]


@router.get("", response_model=list[CheckpointOut], dependencies=[READERS],
            summary="Each component's last verified head and last check")
def checkpoints(session: SessionDep) -> list[CheckpointOut]:
    rows = session.execute(select(ChainCheckpoint).order_by(ChainCheckpoint.component)).scalars()
    return [CheckpointOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/checks", response_model=list[CheckOut], dependencies=[READERS], summary="Checks, newest first")
def checks(session: SessionDep, component: Component | None = None, status: str | None = None,
           before_id: RowId | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[CheckOut]:
    query = select(ChainCheck)
    if component:
        query = query.where(ChainCheck.component == component)
    if status:
        query = query.where(ChainCheck.status == status)
    if before_id:
        query = query.where(ChainCheck.id < before_id)
    rows = session.execute(query.order_by(ChainCheck.id.desc()).limit(limit)).scalars()
    return [CheckOut.model_validate(r, from_attributes=True) for r in rows]


@router.post("/{component}/rebaseline", response_model=CheckOut, dependencies=[OFFICERS],
             summary="Accept the component's current (verifying) chain as the new checkpoint, with a reason")
async def rebaseline(component: str, body: Rebaseline, request: Request, settings: SettingsDep) -> CheckOut:
    if component not in service.COMPONENTS:
        raise NotFound("CHAIN_COMPONENT_NOT_FOUND", f"没有名为 {component} 的审计链")
    state = request.app.state
    token = service.service_token(settings)
    credential = "service" if token else "caller"
    obs = await service.observe(state.http, settings, component, token or _caller_token(request) or "", None)
    check = await anyio.to_thread.run_sync(lambda: service.rebaseline(
        state.engine, obs, reason=body.reason, checked_by=context.actor_id(), credential=credential))
    return CheckOut.model_validate(check, from_attributes=True)
