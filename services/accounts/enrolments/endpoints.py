from typing import Annotated

from fastapi import APIRouter, Query, status

from services.accounts.enrolments import service
from services.accounts.enrolments.schemas import (
    ContributionMonthsVerification,
    EnrolmentOut,
    EnrolmentPage,
    EnrolmentRequest,
    EnrolmentVerification,
    ResumeRequest,
    StopRequest,
    SuspendRequest,
    TransferOut,
    TransferRequest,
)
from services.accounts.history import history_of
from services.kernel.auth import allow
from services.kernel.identifiers import CitizenId
from services.kernel.periods import Period
from services.kernel.service_app import SessionDep

CLERK = allow("agency_clerk")
READERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "internal_auditor")
# The online check other services make before granting a claim (004 第10项); staff roles only, region-checked.
VERIFIERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "internal_auditor")

router = APIRouter(prefix="/enrolments", tags=["enrolments"])
verification_router = APIRouter(prefix="/verification", tags=["verification"])

Limit = Annotated[int, Query(ge=1, le=500)]
StatusFilter = Annotated[str | None, Query(pattern="^(active|suspended|stopped)$")]


def _out(enrolment) -> EnrolmentOut:  # noqa: ANN001
    return EnrolmentOut.model_validate(enrolment, from_attributes=True)


def _page(rows, next_cursor) -> EnrolmentPage:  # noqa: ANN001
    return EnrolmentPage(items=[_out(r) for r in rows], next_cursor=next_cursor)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EnrolmentOut,
             summary="Enrol a person in a fund (参保登记)", dependencies=[CLERK])
def enrol(request: EnrolmentRequest, session: SessionDep) -> EnrolmentOut:
    return _out(service.enrol(session, request))


@router.get("/by-person/{person_id}", response_model=EnrolmentPage,
            summary="A person's enrolments, cursor-paginated", dependencies=[READERS])
def list_for_person(person_id: str, session: SessionDep, status: StatusFilter = None, fund: str | None = None,
                    after: str | None = None, limit: Limit = 50) -> EnrolmentPage:
    return _page(*service.list_for_person(session, person_id, status=status, fund=fund, after=after, limit=limit))


@router.get("/by-employer/{employer_id}", response_model=EnrolmentPage,
            summary="An employer's enrolments, cursor-paginated", dependencies=[READERS])
def list_for_employer(employer_id: str, session: SessionDep, status: StatusFilter = None, fund: str | None = None,
                      after: str | None = None, limit: Limit = 50) -> EnrolmentPage:
    return _page(*service.list_for_employer(session, employer_id, status=status, fund=fund, after=after, limit=limit))


@router.get("/{enrolment_id}", response_model=EnrolmentOut, summary="One enrolment", dependencies=[READERS])
def get_enrolment(enrolment_id: str, session: SessionDep) -> EnrolmentOut:
    return _out(service.get_enrolment(session, enrolment_id))


@router.get("/{enrolment_id}/history", summary="Every change of one enrolment", dependencies=[READERS])
def enrolment_history(enrolment_id: str, session: SessionDep) -> list[dict]:
    service.get_enrolment(session, enrolment_id)
    return history_of(session, "enrolment", enrolment_id)


@router.post("/{enrolment_id}/transfer", status_code=status.HTTP_201_CREATED, response_model=TransferOut,
             summary="Transfer to another employer: close this enrolment and open the new one together",
             dependencies=[CLERK])
def transfer(enrolment_id: str, request: TransferRequest, session: SessionDep) -> TransferOut:
    closed, opened = service.transfer(session, enrolment_id, request)
    return TransferOut(closed=_out(closed), opened=_out(opened))


@router.post("/{enrolment_id}/suspend", response_model=EnrolmentOut, summary="Suspend an enrolment (暂停)",
             dependencies=[CLERK])
def suspend(enrolment_id: str, request: SuspendRequest, session: SessionDep) -> EnrolmentOut:
    return _out(service.suspend(session, enrolment_id, request))


@router.post("/{enrolment_id}/resume", response_model=EnrolmentOut, summary="Resume a suspended enrolment (恢复)",
             dependencies=[CLERK])
def resume(enrolment_id: str, session: SessionDep, request: ResumeRequest | None = None) -> EnrolmentOut:
    return _out(service.resume(session, enrolment_id, request or ResumeRequest()))


@router.post("/{enrolment_id}/stop", response_model=EnrolmentOut, summary="Stop an enrolment (终止)",
             dependencies=[CLERK])
def stop(enrolment_id: str, request: StopRequest, session: SessionDep) -> EnrolmentOut:
    return _out(service.stop(session, enrolment_id, request))


# -- online verification ---------------------------------------------------------------------------------------------


@verification_router.get(
    "/enrolment", response_model=EnrolmentVerification, dependencies=[VERIFIERS],
    summary="Is the person enrolled in the fund in that month? (online check before a claim)",
    description="`enrolled` is true when an enrolment of `fund` covers `period` (default: this month); `status` is "
                "that enrolment's current state. An unregistered citizen id (or none) answers `person_found: false`, "
                "`enrolled: false`; `fund` is required as soon as the person is found.",
)
def verify_enrolment(
    session: SessionDep,
    citizen_id: Annotated[CitizenId | None, Query(description="公民身份号码")] = None,
    fund: str | None = None,
    period: Annotated[Period | None, Query(description="YYYYMM; default: this month")] = None,
) -> EnrolmentVerification:
    return service.verify_enrolment(session, citizen_id=citizen_id, fund=fund, period=period)


@verification_router.get(
    "/contribution-months", response_model=ContributionMonthsVerification, dependencies=[VERIFIERS],
    summary="Months with a posted contribution to the fund, up to a month (online check before a claim)",
)
def verify_contribution_months(
    session: SessionDep,
    citizen_id: Annotated[CitizenId | None, Query(description="公民身份号码")] = None,
    fund: str | None = None,
    until: Annotated[Period | None, Query(description="YYYYMM, inclusive; default: all")] = None,
) -> ContributionMonthsVerification:
    return service.contribution_months(session, citizen_id=citizen_id, fund=fund, until=until)
