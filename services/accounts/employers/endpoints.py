from typing import Annotated

from fastapi import APIRouter, Query, status

from services.accounts.employers import service
from services.accounts.employers.schemas import EmployerOut, EmployerPage, EmployerRegistration
from services.kernel.auth import allow
from services.kernel.service_app import SessionDep

READERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "internal_auditor")

router = APIRouter(prefix="/employers", tags=["employers"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EmployerOut, summary="Register an employer (单位参保登记)", dependencies=[allow("agency_clerk")])
def register_employer(registration: EmployerRegistration, session: SessionDep) -> EmployerOut:
    employer = service.register_employer(session, registration)
    return EmployerOut.model_validate(employer, from_attributes=True)


@router.get("/{employer_id}", response_model=EmployerOut, summary="One employer", dependencies=[READERS])
def get_employer(employer_id: str, session: SessionDep) -> EmployerOut:
    return EmployerOut.model_validate(service.get_employer(session, employer_id), from_attributes=True)


@router.get("", response_model=EmployerPage, summary="Find employers by USCC or name, cursor-paginated",
            dependencies=[READERS])
def list_employers(
    session: SessionDep,
    uscc: str | None = None,
    name: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> EmployerPage:
    rows, next_cursor = service.list_employers(session, uscc=uscc, name=name, after=after, limit=limit)
    return EmployerPage(items=[EmployerOut.model_validate(r, from_attributes=True) for r in rows], next_cursor=next_cursor)
