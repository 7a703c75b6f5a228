"""Read access to oversight's own copy of the registry and of partner data, for oversight officers only.

Lists are cursor-paginated: pass ``next_cursor`` back as ``?after=``. (``/mirror/employers`` predates the page
envelope and answers a bare list; its cursor is the last ``employer_id``.)
"""

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import Select, select
from sqlmodel import Session

from services.kernel import clock
from services.kernel.auth import allow
from services.kernel.errors import NotFound
from services.kernel.paging import oldest_first
from services.kernel.pii import CitizenIdOut
from services.kernel.periods import Period
from services.kernel.service_app import SessionDep
from services.kernel.strict import IsoDate
from services.oversight.models import (
    MirroredAccountYear,
    MirroredAgencyLine,
    MirroredBusinessRegistration,
    MirroredDuplicateEnrolment,
    MirroredEmployer,
    MirroredEnrolment,
    MirroredLifeEvent,
    MirroredPerson,
)

OFFICERS = allow("oversight_officer")
Limit = Annotated[int, Query(ge=1, le=500)]

router = APIRouter(prefix="/mirror", tags=["mirror"])


def _page(session: Session, query: Select, key: Any, after: str | None, limit: int) -> tuple[list, str | None]:
    """Rows after the cursor ``after`` (ordered by ``key``) and the cursor of the next page, if any."""
    return oldest_first(session, query, key, after=after, limit=limit)


def _upper(value: str | None) -> str | None:
    return value.strip().upper() if value else None


# -- employers -------------------------------------------------------------------------------------------------------


class MirroredEmployerOut(BaseModel):
    employer_id: str
    uscc: str | None
    name: str | None
    region: str | None
    unit_type: str | None
    industry_risk_class: int | None
    status: str | None
    status_effective_date: date | None
    registered_at: datetime | None
    version: int
    placeholder: bool = Field(description="known only from a later event so far; the registration has not arrived")
    source_event_id: str
    received_at: datetime


@router.get("/employers", response_model=list[MirroredEmployerOut], summary="Employers as oversight received them",
            dependencies=[OFFICERS])
def list_mirrored_employers(
    session: SessionDep,
    uscc: str | None = None,
    status: str | None = None,
    after: str | None = None,
    limit: Limit = 50,
) -> list[MirroredEmployerOut]:
    query = select(MirroredEmployer)
    if uscc:
        query = query.where(MirroredEmployer.uscc == _upper(uscc))
    if status:
        query = query.where(MirroredEmployer.status == status)
    rows, _ = _page(session, query, MirroredEmployer.employer_id, after, limit)
    return [MirroredEmployerOut.model_validate(r, from_attributes=True) for r in rows]


# -- persons ---------------------------------------------------------------------------------------------------------


class MirroredPersonOut(BaseModel):
    person_id: str
    citizen_id: CitizenIdOut | None
    name: str | None
    sex: str | None
    birth_date: date | None
    region: str | None
    household_type: str | None
    life_status: str | None
    death_date: date | None
    imprisoned_from: date | None
    imprisoned_until: date | None
    life_status_source: str | None
    life_status_source_ref: str | None
    version: int
    placeholder: bool
    source_event_id: str
    received_at: datetime


class MirroredEnrolmentOut(BaseModel):
    enrolment_id: str
    person_id: str
    fund: str
    employer_id: str | None
    start_period: int | None
    end_period: int | None
    status: str | None
    status_reason: str | None
    transferred_from: str | None
    transferred_to: str | None
    placeholder: bool
    source_event_id: str
    received_at: datetime


class MirroredLifeEventOut(BaseModel):
    id: str
    kind: str
    person_id: str
    citizen_id: CitizenIdOut
    event_date: date
    until_date: date | None
    source: str
    record_id: str
    source_event_id: str
    received_at: datetime


class AccountYearOut(BaseModel):
    id: str
    person_id: str
    year: int
    credited_fen: int
    debited_fen: int
    entries: int
    balance_fen: int = Field(description="balance after the latest posting of the year, in fen")


class DuplicateEnrolmentOut(BaseModel):
    id: str
    person_id: str
    citizen_id: CitizenIdOut
    funds: list[str]
    overlap_from: int
    overlap_to: int | None
    import_job_id: str | None
    received_at: datetime


class MirroredPersonDetail(MirroredPersonOut):
    enrolments: list[MirroredEnrolmentOut]
    life_events: list[MirroredLifeEventOut]
    account_years: list[AccountYearOut]
    duplicate_enrolments: list[DuplicateEnrolmentOut]


class PersonPage(BaseModel):
    items: list[MirroredPersonOut]
    next_cursor: str | None


def _duplicate_out(row: MirroredDuplicateEnrolment) -> DuplicateEnrolmentOut:
    return DuplicateEnrolmentOut(id=row.id, person_id=row.person_id, citizen_id=row.citizen_id,
                                 funds=row.funds.split(","), overlap_from=row.overlap_from,
                                 overlap_to=row.overlap_to, import_job_id=row.import_job_id,
                                 received_at=row.received_at)


@router.get("/persons", response_model=PersonPage, summary="Persons by citizen id, name or life status",
            dependencies=[OFFICERS])
def list_persons(
    session: SessionDep,
    citizen_id: str | None = None,
    name: str | None = None,
    life_status: str | None = None,
    region: str | None = None,
    after: str | None = None,
    limit: Limit = 50,
) -> PersonPage:
    query = select(MirroredPerson)
    if citizen_id:
        query = query.where(MirroredPerson.citizen_id == _upper(citizen_id))
    if name:
        query = query.where(MirroredPerson.name == name.strip())
    if life_status:
        query = query.where(MirroredPerson.life_status == life_status)
    if region:
        query = query.where(MirroredPerson.region == region)
    rows, next_cursor = _page(session, query, MirroredPerson.person_id, after, limit)
    return PersonPage(items=[MirroredPersonOut.model_validate(r, from_attributes=True) for r in rows],
                      next_cursor=next_cursor)


@router.get("/persons/{person_id}", response_model=MirroredPersonDetail,
            summary="One person with enrolments, life events, account totals and duplicate reports",
            dependencies=[OFFICERS])
def get_person(person_id: str, session: SessionDep) -> MirroredPersonDetail:
    person = session.get(MirroredPerson, person_id)
    if person is None:
        raise NotFound("MIRRORED_PERSON_NOT_FOUND", "监督库中没有该人员")

    def rows(query: Select) -> list:
        return list(session.execute(query).scalars())

    return MirroredPersonDetail(
        **MirroredPersonOut.model_validate(person, from_attributes=True).model_dump(),
        enrolments=[MirroredEnrolmentOut.model_validate(r, from_attributes=True) for r in rows(
            select(MirroredEnrolment).where(MirroredEnrolment.person_id == person_id)
            .order_by(MirroredEnrolment.start_period, MirroredEnrolment.enrolment_id))],
        life_events=[MirroredLifeEventOut.model_validate(r, from_attributes=True) for r in rows(
            select(MirroredLifeEvent).where(MirroredLifeEvent.person_id == person_id).order_by(MirroredLifeEvent.id))],
        account_years=[AccountYearOut.model_validate(r, from_attributes=True) for r in rows(
            select(MirroredAccountYear).where(MirroredAccountYear.person_id == person_id)
            .order_by(MirroredAccountYear.year))],
        duplicate_enrolments=[_duplicate_out(r) for r in rows(
            select(MirroredDuplicateEnrolment).where(MirroredDuplicateEnrolment.person_id == person_id)
            .order_by(MirroredDuplicateEnrolment.id))],
    )


# -- enrolments, life events, accounts, duplicates --------------------------------------------------------------


class EnrolmentPage(BaseModel):
    items: list[MirroredEnrolmentOut]
    next_cursor: str | None


@router.get("/enrolments", response_model=EnrolmentPage, summary="Enrolments by person, employer, fund or status",
            dependencies=[OFFICERS])
def list_enrolments(
    session: SessionDep,
    person_id: str | None = None,
    citizen_id: str | None = None,
    employer_id: str | None = None,
    fund: str | None = None,
    status: str | None = None,
    after: str | None = None,
    limit: Limit = 50,
) -> EnrolmentPage:
    query = select(MirroredEnrolment)
    if person_id:
        query = query.where(MirroredEnrolment.person_id == person_id)
    if citizen_id:
        ids = select(MirroredPerson.person_id).where(MirroredPerson.citizen_id == _upper(citizen_id))
        query = query.where(MirroredEnrolment.person_id.in_(ids))
    if employer_id:
        query = query.where(MirroredEnrolment.employer_id == employer_id)
    if fund:
        query = query.where(MirroredEnrolment.fund == fund.strip().upper())
    if status:
        query = query.where(MirroredEnrolment.status == status)
    rows, next_cursor = _page(session, query, MirroredEnrolment.enrolment_id, after, limit)
    return EnrolmentPage(items=[MirroredEnrolmentOut.model_validate(r, from_attributes=True) for r in rows],
                         next_cursor=next_cursor)


class LifeEventPage(BaseModel):
    items: list[MirroredLifeEventOut]
    next_cursor: str | None


@router.get("/life-events", response_model=LifeEventPage,
            summary="Deaths, cremations, imprisonments and releases reported by partner departments",
            dependencies=[OFFICERS])
def list_life_events(
    session: SessionDep,
    person_id: str | None = None,
    citizen_id: str | None = None,
    kind: str | None = None,
    after: str | None = None,
    limit: Limit = 50,
) -> LifeEventPage:
    query = select(MirroredLifeEvent)
    if person_id:
        query = query.where(MirroredLifeEvent.person_id == person_id)
    if citizen_id:
        query = query.where(MirroredLifeEvent.citizen_id == _upper(citizen_id))
    if kind:
        query = query.where(MirroredLifeEvent.kind == kind)
    rows, next_cursor = _page(session, query, MirroredLifeEvent.id, after, limit)
    return LifeEventPage(items=[MirroredLifeEventOut.model_validate(r, from_attributes=True) for r in rows],
                         next_cursor=next_cursor)


class AccountYearPage(BaseModel):
    items: list[AccountYearOut]
    next_cursor: str | None


@router.get("/account-years", response_model=AccountYearPage,
            summary="Individual-account postings totalled per person and year", dependencies=[OFFICERS])
def list_account_years(
    session: SessionDep,
    person_id: str | None = None,
    year: Annotated[int | None, Query(ge=1950, le=2200)] = None,
    after: str | None = None,
    limit: Limit = 50,
) -> AccountYearPage:
    query = select(MirroredAccountYear)
    if person_id:
        query = query.where(MirroredAccountYear.person_id == person_id)
    if year:
        query = query.where(MirroredAccountYear.year == year)
    rows, next_cursor = _page(session, query, MirroredAccountYear.id, after, limit)
    return AccountYearPage(items=[AccountYearOut.model_validate(r, from_attributes=True) for r in rows],
                           next_cursor=next_cursor)


class DuplicateEnrolmentPage(BaseModel):
    items: list[DuplicateEnrolmentOut]
    next_cursor: str | None


@router.get("/duplicate-enrolments", response_model=DuplicateEnrolmentPage,
            summary="Overlapping pension schemes reported by accounts (S03)", dependencies=[OFFICERS])
def list_duplicate_enrolments(
    session: SessionDep,
    person_id: str | None = None,
    after: str | None = None,
    limit: Limit = 50,
) -> DuplicateEnrolmentPage:
    query = select(MirroredDuplicateEnrolment)
    if person_id:
        query = query.where(MirroredDuplicateEnrolment.person_id == person_id)
    rows, next_cursor = _page(session, query, MirroredDuplicateEnrolment.id, after, limit)
    return DuplicateEnrolmentPage(items=[_duplicate_out(r) for r in rows], next_cursor=next_cursor)


# -- business registrations (S11) ------------------------------------------------------------------------------------


class BusinessRegistrationOut(BaseModel):
    id: str
    uscc: str
    name: str
    registered_on: date
    source: str
    record_id: str
    employer_id: str | None = Field(description="the employer registered for social insurance under this USCC, "
                                                "as oversight knows it now (from the employer events)")
    social_insurance_registered: bool
    received_at: datetime


class BusinessRegistrationPage(BaseModel):
    items: list[BusinessRegistrationOut]
    next_cursor: str | None


@router.get("/business-registrations", response_model=BusinessRegistrationPage,
            summary="Businesses registered with market regulation, with their social-insurance registration (S11)",
            dependencies=[OFFICERS])
def list_business_registrations(
    session: SessionDep,
    uscc: str | None = None,
    unregistered: Annotated[bool, Query(description="only those with no employer registration here")] = False,
    overdue_days: Annotated[int | None, Query(ge=0, le=3650, description="only those registered with market "
                                              "regulation more than this many days ago (S11: 30)")] = None,
    as_of: Annotated[IsoDate | None, Query(description="the day ``overdue_days`` counts back from; default today")] = None,
    after: str | None = None,
    limit: Limit = 50,
) -> BusinessRegistrationPage:
    employer = (
        select(MirroredEmployer.employer_id).where(MirroredEmployer.uscc == MirroredBusinessRegistration.uscc)
        .limit(1).scalar_subquery()
    )
    query = select(MirroredBusinessRegistration, employer.label("employer"))
    if uscc:
        query = query.where(MirroredBusinessRegistration.uscc == _upper(uscc))
    if unregistered:
        query = query.where(employer.is_(None), MirroredBusinessRegistration.employer_id.is_(None))
    if overdue_days is not None:
        cutoff = (as_of or clock.china_today()) - timedelta(days=overdue_days)
        query = query.where(MirroredBusinessRegistration.registered_on < cutoff)
    rows, next_cursor = oldest_first(session, query, MirroredBusinessRegistration.id, after=after, limit=limit,
                                     rows=True)
    items = []
    for row, employer_id in rows:
        known = employer_id or row.employer_id
        items.append(BusinessRegistrationOut(
            id=row.id, uscc=row.uscc, name=row.name, registered_on=row.registered_on, source=row.source,
            record_id=row.record_id, employer_id=known, social_insurance_registered=known is not None,
            received_at=row.received_at))
    return BusinessRegistrationPage(items=items, next_cursor=next_cursor)


# -- the AGENCY leg --------------------------------------------------------------------------------------------------


class AgencyLineOut(BaseModel):
    payment_id: str
    status: str
    person_id: str | None
    citizen_id: CitizenIdOut | None
    employer_id: str | None
    fund: str
    period: int
    employer_fen: int
    individual_fen: int
    credited_fen: int
    held_fen: int
    entry_id: str | None
    reason_code: str | None
    reason: str | None
    source_batch_id: str
    received_at: datetime


class AgencyLinePage(BaseModel):
    items: list[AgencyLineOut]
    next_cursor: str | None


@router.get("/agency-lines", response_model=AgencyLinePage,
            summary="Collected lines the agency posted or held (the AGENCY leg), by fund, period, employer, person",
            dependencies=[OFFICERS])
def list_agency_lines(
    session: SessionDep,
    fund: str | None = None,
    period: Period | None = None,
    status: str | None = None,
    employer_id: str | None = None,
    person_id: str | None = None,
    after: str | None = None,
    limit: Limit = 50,
) -> AgencyLinePage:
    query = select(MirroredAgencyLine)
    if fund:
        query = query.where(MirroredAgencyLine.fund == fund.strip().upper())
    if period:
        query = query.where(MirroredAgencyLine.period == period)
    if status:
        query = query.where(MirroredAgencyLine.status == status)
    if employer_id:
        query = query.where(MirroredAgencyLine.employer_id == employer_id)
    if person_id:
        query = query.where(MirroredAgencyLine.person_id == person_id)
    rows, next_cursor = _page(session, query, MirroredAgencyLine.payment_id, after, limit)
    return AgencyLinePage(items=[AgencyLineOut.model_validate(r, from_attributes=True) for r in rows],
                          next_cursor=next_cursor)
