from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlmodel import Session

from services.collection.models import RegistryEmployer, RegistryEnrolment, RegistryPerson
from services.collection.registry.schemas import RegistryEmployerOut, RegistryEnrolmentOut, RegistryEnrolmentPage
from services.kernel import context
from services.kernel.auth import allow, ensure_in_region
from services.kernel.errors import NotFound
from services.kernel.paging import oldest_first
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
) -> RegistryEnrolmentPage:
    registry_employer(session, employer_id)
    query = (
        select(RegistryEnrolment, RegistryPerson)
        .join(RegistryPerson, RegistryPerson.person_id == RegistryEnrolment.person_id, isouter=True)
        .where(RegistryEnrolment.employer_id == employer_id)
    )
    if fund:
        query = query.where(RegistryEnrolment.fund == fund)
    if status:
        query = query.where(RegistryEnrolment.status == status)
    rows, next_cursor = oldest_first(session, query, RegistryEnrolment.enrolment_id, after=after, limit=limit,
                                     rows=True)
    items = [
        RegistryEnrolmentOut(
            **enrolment.model_dump(exclude={"source_event_id"}),
            citizen_id=person.citizen_id if person else None, name=person.name if person else None,
            life_status=person.life_status if person else None,
        )
        for enrolment, person in rows
    ]
    return RegistryEnrolmentPage(items=items, next_cursor=next_cursor)
