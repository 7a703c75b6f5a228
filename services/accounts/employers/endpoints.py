from typing import Annotated

from fastapi import APIRouter, Query, status

from services.accounts.employers import service
from services.accounts.employers.schemas import (
    EmployerOut,
    EmployerPage,
    EmployerRegistration,
    EmployerUpdate,
    HistoryEntry,
    StatusChange,
)
from services.kernel.auth import allow
from services.kernel.service_app import SessionDep, read_by_key
from services.kernel.paging import SortQuery

READERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "internal_auditor")
WRITERS = allow("agency_clerk")

router = APIRouter(prefix="/employers", tags=["employers"])


def _out(employer) -> EmployerOut:  # noqa: ANN001
    return EmployerOut.model_validate(employer, from_attributes=True)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EmployerOut,
             summary="Register an employer (单位参保登记)", dependencies=[WRITERS])
def register_employer(registration: EmployerRegistration, session: SessionDep) -> EmployerOut:
    return _out(service.register_employer(session, registration))


@router.get("/{employer_id}", response_model=EmployerOut, summary="One employer", dependencies=[READERS])
async def get_employer(employer_id: str, session: SessionDep) -> EmployerOut:
    return _out(await read_by_key(session, service.read_employer, session, employer_id))


@router.patch("/{employer_id}", response_model=EmployerOut,
              summary="Change registration details (only the fields sent; history and event kept)",
              dependencies=[WRITERS])
def update_employer(employer_id: str, update: EmployerUpdate, session: SessionDep) -> EmployerOut:
    return _out(service.update_employer(session, employer_id, update))


@router.post("/{employer_id}/suspend", response_model=EmployerOut, summary="Suspend an employer (暂停)",
             dependencies=[WRITERS])
def suspend_employer(employer_id: str, request: StatusChange, session: SessionDep) -> EmployerOut:
    return _out(service.change_status(session, employer_id, "suspend", request))


@router.post("/{employer_id}/reactivate", response_model=EmployerOut, summary="Reactivate a suspended employer (恢复)",
             dependencies=[WRITERS])
def reactivate_employer(employer_id: str, request: StatusChange, session: SessionDep) -> EmployerOut:
    return _out(service.change_status(session, employer_id, "reactivate", request))


@router.post("/{employer_id}/deregister", response_model=EmployerOut,
             summary="Deregister an employer (注销); refused while enrolments are open", dependencies=[WRITERS])
def deregister_employer(employer_id: str, request: StatusChange, session: SessionDep) -> EmployerOut:
    return _out(service.change_status(session, employer_id, "deregister", request))


@router.get("/{employer_id}/history", response_model=list[HistoryEntry], summary="Change history of an employer",
            dependencies=[READERS])
def employer_history(employer_id: str, session: SessionDep) -> list[HistoryEntry]:
    return [HistoryEntry.model_validate(e) for e in service.employer_history(session, employer_id)]


@router.get("", response_model=EmployerPage, summary="Find employers by USCC or name, cursor-paginated",
            dependencies=[READERS])
def list_employers(
    session: SessionDep,
    uscc: str | None = None,
    name: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    sort: SortQuery = None,
) -> EmployerPage:
    rows, next_cursor = service.list_employers(session, uscc=uscc, name=name, after=after, limit=limit, sort=sort)
    return EmployerPage(items=[_out(r) for r in rows], next_cursor=next_cursor)
