"""HTTP API of the case workflow: cases, the rectification ledger (整改台账) and the dishonesty list.

Roles (see ``service.py``): oversight officers run the workflow; the responsible unit's staff (agency roles,
including the agency's finance, information and internal-control posts) read the cases issued to their unit or
area and submit follow-up and rectification evidence.
"""

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import select
from sqlmodel import Session

from services.kernel import context
from services.kernel.auth import allow
from services.kernel.paging import SortKeys, SortQuery, oldest_first
from services.kernel.service_app import SessionDep
from services.kernel.strict import IsoDate
from services.oversight.cases import dishonesty, service
from services.oversight.cases import workflow as wf
from services.oversight.cases.models import (
    Case,
    CaseHistory,
    CaseOccurrence,
    RectificationEntry,
    RectificationEvidence,
)
from services.oversight.cases.schemas import (
    CaseDetail,
    CaseOpen,
    CaseOpenResult,
    CaseOut,
    CasePage,
    Classification,
    CloseIn,
    DishonestyIn,
    DishonestyOut,
    DishonestyPage,
    DismissalDecision,
    EscalationResult,
    EscalationRun,
    EvidenceIn,
    EvidenceOut,
    FollowUpIn,
    FollowUpOut,
    HistoryOut,
    Note,
    OccurrenceOut,
    Reason,
    RectificationIn,
    RectificationOut,
    RectificationPage,
    RequirementOut,
)
from services.kernel import clock

OFFICERS = allow("oversight_officer")
UNIT_STAFF = allow("oversight_officer", *service.AGENCY_ROLES)
Limit = Annotated[int, Query(ge=1, le=500)]

router = APIRouter(prefix="/cases", tags=["cases"])
rectification_router = APIRouter(prefix="/rectification-ledger", tags=["cases"])
dishonesty_router = APIRouter(prefix="/dishonesty-list", tags=["dishonesty list"])


def _detail(session: Session, case: Case) -> CaseDetail:
    follow_ups = service.follow_ups(session, case.id)
    confirmed = {f.kind for f in follow_ups if f.withdrawn_at is None}
    required = []
    if case.class_code:
        required = [RequirementOut(any_of=list(group), satisfied=bool(confirmed.intersection(group)),
                                   by_event_only=all(k in wf.EVENT_CONFIRMED_KINDS for k in group))
                    for group in wf.CLASSES[case.class_code].required]
    entry = service.rectification_of(session, case.id)
    rectification = None
    if entry is not None:
        evidence = list(session.execute(select(RectificationEvidence).where(
            RectificationEvidence.entry_id == entry.id).order_by(RectificationEvidence.id)).scalars())
        rectification = RectificationOut.of(entry, evidence)
    history = session.execute(select(CaseHistory).where(CaseHistory.case_id == case.id)
                              .order_by(CaseHistory.id)).scalars()
    occurrences = session.execute(select(CaseOccurrence).where(CaseOccurrence.case_id == case.id)
                                  .order_by(CaseOccurrence.id)).scalars()
    return CaseDetail(**CaseOut.of(case).model_dump(), required_follow_up=required,
                      follow_ups=[FollowUpOut.of(f) for f in follow_ups], rectification=rectification,
                      occurrence_log=[OccurrenceOut.of(o) for o in occurrences],
                      history=[HistoryOut.of(h) for h in history])


# -- cases -----------------------------------------------------------------------------------------------------------


CASE_SORT = SortKeys(Case.id, descending_by_default=True, opened_at=Case.opened_at, severity=Case.severity,
                     rule_id=Case.rule_id, status=Case.status, unit=Case.unit, deadline=Case.current_deadline,
                     last_seen_at=Case.last_seen_at, occurrences=Case.occurrences, subject_type=Case.subject_type)


@router.get("", response_model=CasePage, dependencies=[UNIT_STAFF],
            summary="Cases, newest first (a unit's staff: the cases issued to their unit or area)")
def list_cases(
    session: SessionDep,
    status_: Annotated[str | None, Query(alias="status", pattern="^(" + "|".join(wf.STATUSES) + ")$")] = None,
    open_only: bool = False,
    rule_id: str | None = None,
    severity: str | None = None,
    class_code: Annotated[int | None, Query(ge=1, le=6)] = None,
    unit: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    person_id: str | None = None,
    after: str | None = None,
    limit: Limit = 50,
    sort: SortQuery = None,
) -> CasePage:
    query = select(Case)
    scope = service.visibility_filter(context.current().actor)
    if scope is not None:
        query = query.where(scope)
    for column, value in ((Case.status, status_), (Case.rule_id, rule_id), (Case.severity, severity),
                          (Case.class_code, class_code), (Case.unit, unit), (Case.subject_type, subject_type),
                          (Case.subject_id, subject_id), (Case.person_id, person_id)):
        if value is not None:
            query = query.where(column == value)
    if open_only:
        query = query.where(Case.status.in_(wf.OPEN_STATUSES))
    rows, next_cursor = CASE_SORT.page(session, query, sort=sort, after=after, limit=limit)
    return CasePage(items=[CaseOut.of(c) for c in rows], next_cursor=next_cursor)


@router.post("", response_model=CaseOpenResult, status_code=status.HTTP_201_CREATED, dependencies=[OFFICERS],
             summary="Open (issue, 下发) a case by hand; 200 with the existing case if the rule already has one "
                     "for this fact")
def open_case(body: CaseOpen, session: SessionDep, response: Response) -> CaseOpenResult:
    opening = service.open_case(session, **body.model_dump())
    if not opening.created:
        response.status_code = status.HTTP_200_OK
    return CaseOpenResult(**CaseOut.of(opening.case).model_dump(), created=opening.created)


@router.get("/overdue", response_model=list[CaseOut], dependencies=[UNIT_STAFF],
            summary="Open cases past their deadline (the unit's deadline, or the rectification due date)")
def overdue_cases(session: SessionDep, as_of: IsoDate | None = None, limit: Limit = 200) -> list[CaseOut]:
    query = service.overdue_query(as_of or clock.china_today())
    scope = service.visibility_filter(context.current().actor)
    if scope is not None:
        query = query.where(scope)
    rows = session.execute(query.order_by(Case.current_deadline, Case.id).limit(limit)).scalars()
    return [CaseOut.of(c) for c in rows]


@router.post("/escalations", response_model=EscalationResult, dependencies=[OFFICERS],
             summary="Escalate overdue cases: severity up one step, escalation event (also run hourly by the "
                     "scheduler)")
def escalate_cases(session: SessionDep, body: EscalationRun | None = None) -> EscalationResult:
    as_of = (body.as_of if body else None) or clock.china_today()
    return EscalationResult(as_of=as_of, escalated=[CaseOut.of(c) for c in service.escalate(session, as_of=as_of)])


@router.get("/{case_id}", response_model=CaseDetail, dependencies=[UNIT_STAFF],
            summary="A case with its required follow-up, rectification, occurrences and full history")
def get_case(case_id: str, session: SessionDep) -> CaseDetail:
    return _detail(session, service.get_case(session, case_id))


@router.post("/{case_id}/investigate", response_model=CaseDetail, dependencies=[OFFICERS],
             summary="issued → investigating")
def investigate(case_id: str, session: SessionDep, body: Note | None = None) -> CaseDetail:
    return _detail(session, service.investigate(session, case_id, note=body.note if body else None))


@router.post("/{case_id}/classify", response_model=CaseDetail, dependencies=[OFFICERS],
             summary="investigating → classified into one of the six classes of 001 第二十九条")
def classify(case_id: str, body: Classification, session: SessionDep) -> CaseDetail:
    return _detail(session, service.classify(session, case_id, **body.model_dump()))


@router.post("/{case_id}/follow-ups", response_model=FollowUpOut, status_code=status.HTTP_201_CREATED,
             dependencies=[UNIT_STAFF],
             summary="Record what was done for the class's follow-up (benefits kinds: only by linking an event)")
def record_follow_up(case_id: str, body: FollowUpIn, session: SessionDep) -> FollowUpOut:
    return FollowUpOut.of(service.record_follow_up(session, case_id, **body.model_dump()))


@router.post("/{case_id}/rectification", response_model=CaseDetail, status_code=status.HTTP_201_CREATED,
             dependencies=[OFFICERS], summary="classified → rectifying: an entry in the rectification ledger")
def open_rectification(case_id: str, body: RectificationIn, session: SessionDep) -> CaseDetail:
    case, _ = service.open_rectification(session, case_id, **body.model_dump())
    return _detail(session, case)


@router.post("/{case_id}/rectification/evidence", response_model=EvidenceOut, status_code=status.HTTP_201_CREATED,
             dependencies=[UNIT_STAFF], summary="Submit rectification evidence (报送整改情况)")
def add_evidence(case_id: str, body: EvidenceIn, session: SessionDep) -> EvidenceOut:
    return EvidenceOut.of(service.add_rectification_evidence(session, case_id, **body.model_dump()))


@router.post("/{case_id}/close", response_model=CaseDetail, dependencies=[OFFICERS],
             summary="rectifying → closed (销号) after verification; 409 until the class's follow-up is confirmed")
def close(case_id: str, body: CloseIn, session: SessionDep) -> CaseDetail:
    return _detail(session, service.close(session, case_id, verification_note=body.verification_note))


@router.post("/{case_id}/dismissal", response_model=CaseDetail, dependencies=[OFFICERS],
             summary="Propose dismissal as a false positive (a second officer decides)")
def propose_dismissal(case_id: str, body: Reason, session: SessionDep) -> CaseDetail:
    return _detail(session, service.propose_dismissal(session, case_id, reason=body.reason))


@router.post("/{case_id}/dismissal/decision", response_model=CaseDetail, dependencies=[OFFICERS],
             summary="A second officer confirms (→ dismissed) or rejects a proposed dismissal; 403 for the proposer")
def decide_dismissal(case_id: str, body: DismissalDecision, session: SessionDep) -> CaseDetail:
    return _detail(session, service.decide_dismissal(session, case_id, approve=body.approve, reason=body.reason))


# -- the rectification ledger ----------------------------------------------------------------------------------------


@rectification_router.get("", response_model=RectificationPage, dependencies=[UNIT_STAFF],
                   summary="The rectification ledger (整改台账): one entry per case in rectification or closed")
def rectification_ledger(
    session: SessionDep,
    status_: Annotated[str | None, Query(alias="status", pattern="^(open|closed)$")] = None,
    unit: str | None = None,
    overdue_as_of: IsoDate | None = Query(None, description="only open entries whose due date is before this day"),
    after: str | None = None,
    limit: Limit = 50,
) -> RectificationPage:
    query = select(RectificationEntry).join(Case, Case.id == RectificationEntry.case_id)
    scope = service.visibility_filter(context.current().actor)
    if scope is not None:
        query = query.where(scope)
    if status_:
        query = query.where(RectificationEntry.status == status_)
    if unit:
        query = query.where(RectificationEntry.unit == unit)
    if overdue_as_of:
        query = query.where(RectificationEntry.status == "open", RectificationEntry.due_date < overdue_as_of)
    rows, next_cursor = oldest_first(session, query, RectificationEntry.id, after=after, limit=limit)
    evidence: dict[str, list] = {}
    if rows:
        for e in session.execute(select(RectificationEvidence).where(
                RectificationEvidence.entry_id.in_([r.id for r in rows]))
                .order_by(RectificationEvidence.id)).scalars():
            evidence.setdefault(e.entry_id, []).append(e)
    return RectificationPage(items=[RectificationOut.of(r, evidence.get(r.id, [])) for r in rows],
                             next_cursor=next_cursor)


# -- the dishonesty list ---------------------------------------------------------------------------------------------


@dishonesty_router.get("", response_model=DishonestyPage, dependencies=[UNIT_STAFF],
                       summary="The dishonesty list (严重失信人名单, 001 第三十条)")
def dishonesty_list(
    session: SessionDep,
    subject_type: Annotated[str | None, Query(pattern="^(person|employer)$")] = None,
    subject_id: str | None = None,
    include_removed: bool = False,
    after: str | None = None,
    limit: Limit = 50,
) -> DishonestyPage:
    rows, next_cursor = dishonesty.listing(session, subject_type=subject_type, subject_id=subject_id,
                                           include_removed=include_removed, after=after, limit=limit)
    return DishonestyPage(items=[DishonestyOut.of(r) for r in rows], next_cursor=next_cursor)


@dishonesty_router.post("", response_model=DishonestyOut, status_code=status.HTTP_201_CREATED,
                        dependencies=[OFFICERS],
                        summary="Put the person or employer of a confirmed serious case on the list, with a reason")
def add_to_dishonesty_list(body: DishonestyIn, session: SessionDep) -> DishonestyOut:
    return DishonestyOut.of(dishonesty.add(session, **body.model_dump()))


@dishonesty_router.post("/{entry_id}/removal", response_model=DishonestyOut, dependencies=[OFFICERS],
                        summary="Remove an entry with a reason (another officer than the one who added it)")
def remove_from_dishonesty_list(entry_id: str, body: Reason, session: SessionDep) -> DishonestyOut:
    return DishonestyOut.of(dishonesty.remove(session, entry_id, reason=body.reason))
