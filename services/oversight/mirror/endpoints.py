from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from services.kernel.auth import allow
from services.kernel.service_app import SessionDep
from services.oversight.models import MirroredEmployer

router = APIRouter(prefix="/mirror", tags=["mirror"])


class MirroredEmployerOut(BaseModel):
    employer_id: str
    uscc: str
    name: str
    region: str
    registered_at: datetime
    source_event_id: str
    received_at: datetime


@router.get("/employers", response_model=list[MirroredEmployerOut], summary="Employers as oversight received them",
            dependencies=[allow("oversight_officer")])
def list_mirrored_employers(
    session: SessionDep,
    uscc: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[MirroredEmployerOut]:
    query = select(MirroredEmployer).order_by(MirroredEmployer.employer_id).limit(limit)
    if uscc:
        query = query.where(MirroredEmployer.uscc == uscc.strip().upper())
    if after:
        query = query.where(MirroredEmployer.employer_id > after)
    return [MirroredEmployerOut.model_validate(r, from_attributes=True) for r in session.execute(query).scalars()]
