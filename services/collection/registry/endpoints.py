from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Query, Response
from sqlalchemy import select
from sqlmodel import Session

from services.collection.models import RegistryEmployer, RegistryEnrolment, RegistryPerson
from services.collection.registry.schemas import RegistryEmployerOut, RegistryEnrolmentOut, RegistryEnrolmentPage
from services.kernel import context
from services.kernel.auth import allow, ensure_in_region
from services.kernel.errors import NotFound
from services.kernel.pii import reveal_citizen_id
from services.kernel.service_app import SessionDep

READERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "accountant", "internal_auditor")

router = APIRouter(prefix="/registry", tags=["registry"])


def registry_employer(session: Session, employer_id: str) -> RegistryEmployer:
    employer = session.get(RegistryEmployer, employer_id)
    if employer is None:
        raise NotFound("EMPLOYER_NOT_FOUND", "用人单位不存在（征缴系统尚未收到该单位的登记信息）")
    ensure_in_region(context.current().actor, employer.region)
    return employer


@router.get("/employers/{employer_id}", response_model=RegistryEmployerOut, dependencies=[READERS],
            summary="An employer as collection knows it from the ACCOUNTS events")
def get_employer(employer_id: str, session: SessionDep) -> RegistryEmployerOut:
    return RegistryEmployerOut.model_validate(registry_employer(session, employer_id), from_attributes=True)


@router.get("/employers/{employer_id}/enrolments", response_model=RegistryEnrolmentPage, dependencies=[READERS],
            summary="The employer's enrolments as collection knows them, with the person, cursor-paginated")
def employer_enrolments(
    employer_id: str,
    session: SessionDep,
    fund: str | None = None,
    status: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    registry_employer(session, employer_id)
    # Plain rows, not ORM objects: the clerk's client reads every enrolment of every employer.
    e, p = RegistryEnrolment.__table__.c, RegistryPerson.__table__.c
    query = (
        select(e.enrolment_id, e.person_id, e.fund, e.employer_id, e.start_period, e.end_period, e.status,
               p.citizen_id, p.name, p.life_status)
        .join_from(RegistryEnrolment.__table__, RegistryPerson.__table__, p.person_id == e.person_id, isouter=True)
        .where(e.employer_id == employer_id)
    )
    if fund:
        query = query.where(e.fund == fund)
    if status:
        query = query.where(e.status == status)
    if after:
        query = query.where(e.enrolment_id > after)
    rows = session.connection().execute(query.order_by(e.enrolment_id).limit(limit + 1)).all()
    next_cursor = rows[limit - 1].enrolment_id if len(rows) > limit else None
    return Response(enrolment_page_json(rows[:limit], next_cursor), media_type="application/json")


# A ``RegistryEnrolmentOut`` as msgspec writes it (the model's fields in its order): the clerk's client reads every
# enrolment of every employer, so a page is encoded in one pass, not validated and dumped model by model.
_Enrolment = msgspec.defstruct("_Enrolment", list(RegistryEnrolmentOut.model_fields))
_ENCODER = msgspec.json.Encoder()


def enrolment_page_json(rows: list[Any], next_cursor: str | None) -> bytes:
    """A ``RegistryEnrolmentPage`` as JSON from the rows of ``employer_enrolments``' query, the citizen id shown or
    masked as ``CitizenIdOut`` does for the caller's role (a test holds the bytes equal to the model's)."""
    items = _ENCODER.encode([
        _Enrolment(enrolment_id=enrolment_id, person_id=person_id, fund=fund, employer_id=employer_id,
                   citizen_id=reveal_citizen_id(citizen_id) if citizen_id is not None else None, name=name,
                   life_status=life_status, start_period=start, end_period=end, status=status)
        for enrolment_id, person_id, fund, employer_id, start, end, status, citizen_id, name, life_status in rows])
    return b'{"items":%s,"next_cursor":%s}' % (items, _ENCODER.encode(next_cursor))
