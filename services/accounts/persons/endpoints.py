from typing import Annotated

from fastapi import APIRouter, Query, status

from services.accounts.employers.schemas import HistoryEntry
from services.accounts.persons import service
from services.accounts.persons.schemas import (
    BankAccountClose,
    BankAccountIn,
    CorrectionDecision,
    CorrectionInQueue,
    CorrectionQueuePage,
    LifeStatusCorrectionIn,
    LifeStatusCorrectionOut,
    PersonBankAccountOut,
    PersonDetail,
    PersonOut,
    PersonPage,
    PersonRegistration,
    PersonUpdate,
)
from services.kernel.auth import allow
from services.kernel.service_app import SessionDep
from services.kernel.paging import SortQuery

READERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "internal_auditor")
WRITERS = allow("agency_clerk")
REVIEWERS = allow("agency_reviewer")

router = APIRouter(prefix="/persons", tags=["persons"])
corrections_router = APIRouter(prefix="/life-status-corrections", tags=["persons"])


def _detail(session, person) -> PersonDetail:  # noqa: ANN001
    detail = PersonDetail.model_validate(person, from_attributes=True)
    detail.bank_accounts = [_account(a) for a in service.bank_accounts_of(session, person.id)]
    return detail


def _account(row) -> PersonBankAccountOut:  # noqa: ANN001
    return PersonBankAccountOut.model_validate(row, from_attributes=True)


def _correction(row) -> LifeStatusCorrectionOut:  # noqa: ANN001
    return LifeStatusCorrectionOut.model_validate(row, from_attributes=True)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PersonDetail,
             summary="Register an insured person (参保人员登记)", dependencies=[WRITERS])
def register_person(registration: PersonRegistration, session: SessionDep) -> PersonDetail:
    return _detail(session, service.register_person(session, registration))


@router.get("", response_model=PersonPage,
            summary="Find persons by citizen id, name or employer (active enrolment there), cursor-paginated",
            dependencies=[READERS])
def search_persons(
    session: SessionDep,
    citizen_id: str | None = None,
    name: str | None = None,
    employer_id: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    sort: SortQuery = None,
) -> PersonPage:
    rows, next_cursor = service.search_persons(session, citizen_id=citizen_id, name=name, employer_id=employer_id,
                                               after=after, limit=limit, sort=sort)
    return PersonPage(items=[PersonOut.model_validate(r, from_attributes=True) for r in rows], next_cursor=next_cursor)


@router.get("/{person_id}", response_model=PersonDetail,
            summary="One person with their payment accounts (numbers masked unless the role needs them)",
            dependencies=[READERS])
def get_person(person_id: str, session: SessionDep) -> PersonDetail:
    return _detail(session, service.get_person(session, person_id))


@router.patch("/{person_id}", response_model=PersonDetail,
              summary="Change contact details (identity and life status are not plain edits)", dependencies=[WRITERS])
def update_person(person_id: str, update: PersonUpdate, session: SessionDep) -> PersonDetail:
    return _detail(session, service.update_person(session, person_id, update))


@router.get("/{person_id}/history", response_model=list[HistoryEntry],
            summary="Change history of a person, their accounts and life-status corrections", dependencies=[READERS])
def person_history(person_id: str, session: SessionDep) -> list[HistoryEntry]:
    return [HistoryEntry.model_validate(e) for e in service.person_history(session, person_id)]


@router.get("/{person_id}/bank-accounts", response_model=list[PersonBankAccountOut],
            summary="Payment accounts and social security cards of a person", dependencies=[READERS])
def list_bank_accounts(person_id: str, session: SessionDep) -> list[PersonBankAccountOut]:
    return [_account(a) for a in service.list_bank_accounts(session, person_id)]


@router.post("/{person_id}/bank-accounts", status_code=status.HTTP_201_CREATED, response_model=PersonBankAccountOut,
             summary="Add a payment account or social security card in the person's own name (000 二(三))",
             dependencies=[WRITERS])
def add_bank_account(person_id: str, account: BankAccountIn, session: SessionDep) -> PersonBankAccountOut:
    return _account(service.add_bank_account(session, person_id, account))


@router.post("/{person_id}/bank-accounts/{account_id}/close", response_model=PersonBankAccountOut,
             summary="Close a payment account", dependencies=[WRITERS])
def close_bank_account(person_id: str, account_id: str, request: BankAccountClose,
                       session: SessionDep) -> PersonBankAccountOut:
    return _account(service.close_bank_account(session, person_id, account_id, request))


@router.post("/{person_id}/life-status-corrections", status_code=status.HTTP_201_CREATED,
             response_model=LifeStatusCorrectionOut,
             summary="Request a life-status correction (后台修改; decided by a different reviewer)",
             dependencies=[WRITERS])
def request_correction(person_id: str, request: LifeStatusCorrectionIn,
                       session: SessionDep) -> LifeStatusCorrectionOut:
    return _correction(service.request_correction(session, person_id, request))


@router.get("/{person_id}/life-status-corrections", response_model=list[LifeStatusCorrectionOut],
            summary="Life-status corrections of a person", dependencies=[READERS])
def list_corrections(person_id: str, session: SessionDep) -> list[LifeStatusCorrectionOut]:
    return [_correction(c) for c in service.list_corrections(session, person_id)]


@router.post("/{person_id}/life-status-corrections/{correction_id}/approve", response_model=LifeStatusCorrectionOut,
             summary="Approve a life-status correction (not by its requester)", dependencies=[REVIEWERS])
def approve_correction(person_id: str, correction_id: str, decision: CorrectionDecision,
                       session: SessionDep) -> LifeStatusCorrectionOut:
    return _correction(service.approve_correction(session, person_id, correction_id, decision))


@router.post("/{person_id}/life-status-corrections/{correction_id}/reject", response_model=LifeStatusCorrectionOut,
             summary="Reject a life-status correction (not by its requester)", dependencies=[REVIEWERS])
def reject_correction(person_id: str, correction_id: str, decision: CorrectionDecision,
                      session: SessionDep) -> LifeStatusCorrectionOut:
    return _correction(service.reject_correction(session, person_id, correction_id, decision))


@corrections_router.get(
    "", response_model=CorrectionQueuePage, dependencies=[READERS],
    summary="Life-status corrections across persons (the queue waiting for a second person), newest first",
    description="Persons of the caller's area only. `status` defaults to `requested` (waiting for a reviewer other "
                "than the requester; `all` for every status); `exclude_mine=true` leaves out the caller's own "
                "requests. Decided at `/persons/{person_id}/life-status-corrections/{id}/approve|reject`.")
def correction_queue(
    session: SessionDep,
    status_: Annotated[str, Query(alias="status", pattern="^(requested|approved|rejected|all)$")] = "requested",
    new_status: Annotated[str | None, Query(pattern="^(alive|deceased|imprisoned)$")] = None,
    requested_by: Annotated[str | None, Query(max_length=100)] = None,
    exclude_mine: bool = False,
    after: Annotated[str | None, Query(max_length=36)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CorrectionQueuePage:
    rows, next_cursor = service.correction_queue(
        session, status=None if status_ == "all" else status_, new_status=new_status, requested_by=requested_by,
        exclude_mine=exclude_mine, after=after, limit=limit)
    return CorrectionQueuePage(items=[
        CorrectionInQueue(**_correction(c).model_dump(), person_name=p.name, current_life_status=p.life_status)
        for c, p in rows], next_cursor=next_cursor)
