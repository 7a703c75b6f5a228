"""On-site inspections and the yearly programme: oversight officers; internal auditors read."""

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlmodel import Session

from services.kernel.auth import allow
from services.kernel.money import fen_to_yuan
from services.kernel.service_app import SessionDep
from services.oversight.inspections import service
from services.oversight.inspections.models import Inspection, InspectionFinding, InspectionProgramme
from services.oversight.inspections.schemas import (
    FeedbackLetterIn,
    FindingIn,
    FindingOut,
    InspectionIn,
    InspectionOut,
    InspectionPage,
    InspectionReportIn,
    MemberOut,
    NotificationIn,
    ProgrammeAgencyOut,
    ProgrammeIn,
    ProgrammeOut,
    ProgrammeVerification,
    RectifiedIn,
    RescheduleIn,
    TeamIn,
)

OFFICERS = allow("oversight_officer")
READERS = allow("oversight_officer", "internal_auditor")
Limit = Annotated[int, Query(ge=1, le=500)]

router = APIRouter(prefix="/inspections", tags=["inspections"])


def _finding(f: InspectionFinding) -> FindingOut:
    return FindingOut(id=f.id, seq=f.seq, title=f.title, description=f.description, fund=f.fund,
                      amount=fen_to_yuan(f.amount_fen), rectify_by=f.rectify_by, rectified_on=f.rectified_on,
                      rectification_note=f.rectification_note,
                      rectification_overdue=service.rectification_overdue(f), created_at=f.created_at,
                      created_by=f.created_by)


def _many(session: Session, rows: list[Inspection]) -> list[InspectionOut]:
    ids = [r.id for r in rows]
    members, findings = service.members_of(session, ids), service.findings_of(session, ids)
    return [
        InspectionOut(
            id=i.id, programme_id=i.programme_id, target_unit=i.target_unit, target_code=i.target_code,
            target_level=i.target_level, scope=i.scope, planned_on=i.planned_on, status=i.status,
            notified_on=i.notified_on, notice_ref=i.notice_ref,
            members=[MemberOut(inspector_id=m.inspector_id, name=m.name, leader=m.leader) for m in members[i.id]],
            findings=[_finding(f) for f in findings[i.id]],
            findings_amount=fen_to_yuan(sum(f.amount_fen for f in findings[i.id])),
            oral_feedback_on=i.oral_feedback_on, letter_no=i.letter_no, letter_issued_on=i.letter_issued_on,
            letter_requirements=i.letter_requirements, reported_on=i.reported_on, report_summary=i.report_summary,
            reported_to_higher=i.reported_to_higher, created_at=i.created_at, created_by=i.created_by,
        )
        for i in rows
    ]


def _one(session: Session, inspection: Inspection) -> InspectionOut:
    return _many(session, [inspection])[0]


def _programme(session: Session, programme: InspectionProgramme) -> ProgrammeOut:
    agencies = service.programme_agencies(session, programme.id)
    inspections = service.programme_inspections(session, programme.id)
    return ProgrammeOut(
        id=programme.id, year=programme.year, seed=programme.seed, algorithm=programme.algorithm,
        sample_rate=Decimal(programme.sample_rate), lower_level_count=programme.lower_level_count,
        sample_size=programme.sample_size, same_level=[a.code for a in agencies if a.level == "same_level"],
        sample=service.recorded_sample(agencies),
        agencies=[ProgrammeAgencyOut(code=a.code, name=a.name, level=a.level, selected=a.selected,
                                     rank_key=a.rank_key, inspections=[i.id for i in inspections.get(a.code, [])],
                                     inspected=any(i.status == "reported" for i in inspections.get(a.code, [])))
                  for a in agencies],
        created_at=programme.created_at, created_by=programme.created_by,
    )


# -- programmes (before /{inspection_id}) ----------------------------------------------------------------------------


@router.post("/programmes", response_model=ProgrammeOut, status_code=status.HTTP_201_CREATED,
             summary="The year's programme: same-level agency once, ≥ 20 % (rounded up) of lower-level agencies "
                     "sampled from a recorded seed",
             description="The seed is generated when not given and recorded either way; "
                         "``GET /inspections/programmes/{id}/verify`` re-derives the sample from it (algorithm in "
                         "services/oversight/inspections/programme.py).", dependencies=[OFFICERS])
def create_programme(body: ProgrammeIn, session: SessionDep) -> ProgrammeOut:
    return _programme(session, service.create_programme(session, body))


@router.get("/programmes", response_model=list[ProgrammeOut], summary="Yearly programmes", dependencies=[READERS])
def list_programmes(session: SessionDep,
                    year: Annotated[int | None, Query(ge=2000, le=2200)] = None) -> list[ProgrammeOut]:
    return [_programme(session, p) for p in service.list_programmes(session, year)]


@router.get("/programmes/{programme_id}", response_model=ProgrammeOut,
            summary="One programme with its coverage (inspections per agency)", dependencies=[READERS])
def get_programme(programme_id: str, session: SessionDep) -> ProgrammeOut:
    return _programme(session, service.get_programme(session, programme_id))


@router.get("/programmes/{programme_id}/verify", response_model=ProgrammeVerification,
            summary="Re-derive the sample from the recorded seed and compare", dependencies=[READERS])
def verify_programme(programme_id: str, session: SessionDep) -> ProgrammeVerification:
    programme = service.get_programme(session, programme_id)
    agencies = service.programme_agencies(session, programme.id)
    recorded, derived = service.recorded_sample(agencies), service.derived_sample(programme, agencies)
    return ProgrammeVerification(id=programme.id, year=programme.year, seed=programme.seed,
                                 algorithm=programme.algorithm, recorded_sample=recorded, derived_sample=derived,
                                 matches=recorded == derived)


# -- inspections -----------------------------------------------------------------------------------------------------


@router.post("", response_model=InspectionOut, status_code=status.HTTP_201_CREATED,
             summary="Plan an inspection (监督方案)", dependencies=[OFFICERS])
def plan(body: InspectionIn, session: SessionDep) -> InspectionOut:
    return _one(session, service.plan(session, body))


@router.get("", response_model=InspectionPage, summary="Inspections", dependencies=[READERS])
def list_inspections(
    session: SessionDep,
    status_: Annotated[str | None, Query(
        alias="status", pattern="^(planned|notified|inspecting|feedback_issued|reported)$")] = None,
    programme_id: str | None = None,
    year: Annotated[int | None, Query(ge=2000, le=2200)] = None,
    target_code: str | None = None,
    after: str | None = None,
    limit: Limit = 50,
) -> InspectionPage:
    rows, next_cursor = service.list_inspections(session, status=status_, programme_id=programme_id, year=year,
                                                 target_code=target_code, after=after, limit=limit)
    return InspectionPage(items=_many(session, rows), next_cursor=next_cursor)


@router.get("/{inspection_id}", response_model=InspectionOut, summary="One inspection", dependencies=[READERS])
def get_inspection(inspection_id: str, session: SessionDep) -> InspectionOut:
    return _one(session, service.get(session, inspection_id))


@router.put("/{inspection_id}/team", response_model=InspectionOut,
            summary="The team: at least 2 inspectors (001 第八条)", dependencies=[OFFICERS])
def set_team(inspection_id: str, body: TeamIn, session: SessionDep) -> InspectionOut:
    return _one(session, service.set_team(session, inspection_id, body.members))


@router.post("/{inspection_id}/reschedule", response_model=InspectionOut,
             summary="Move the planned date (a notice less than 3 days ahead of the new date is withdrawn)",
             dependencies=[OFFICERS])
def reschedule(inspection_id: str, body: RescheduleIn, session: SessionDep) -> InspectionOut:
    return _one(session, service.reschedule(session, inspection_id, body))


@router.post("/{inspection_id}/notification", response_model=InspectionOut,
             summary="Notify the inspected unit, at least 3 days ahead (409 NOTICE_TOO_LATE otherwise)",
             dependencies=[OFFICERS])
def notify(inspection_id: str, body: NotificationIn, session: SessionDep) -> InspectionOut:
    return _one(session, service.notify(session, inspection_id, body))


@router.post("/{inspection_id}/findings", response_model=FindingOut, status_code=status.HTTP_201_CREATED,
             summary="A finding with the amount involved", dependencies=[OFFICERS])
def add_finding(inspection_id: str, body: FindingIn, session: SessionDep) -> FindingOut:
    return _finding(service.add_finding(session, inspection_id, body))


@router.post("/{inspection_id}/feedback-letter", response_model=InspectionOut,
             summary="问题反馈函: a rectification deadline for every finding", dependencies=[OFFICERS])
def issue_letter(inspection_id: str, body: FeedbackLetterIn, session: SessionDep) -> InspectionOut:
    return _one(session, service.issue_letter(session, inspection_id, body))


@router.post("/{inspection_id}/findings/{finding_id}/rectified", response_model=FindingOut,
             summary="Record a finding as rectified", dependencies=[OFFICERS])
def mark_rectified(inspection_id: str, finding_id: str, body: RectifiedIn, session: SessionDep) -> FindingOut:
    return _finding(service.mark_rectified(session, inspection_id, finding_id, body))


@router.post("/{inspection_id}/report", response_model=InspectionOut, summary="监督报告",
             dependencies=[OFFICERS])
def report(inspection_id: str, body: InspectionReportIn, session: SessionDep) -> InspectionOut:
    return _one(session, service.report(session, inspection_id, body))
