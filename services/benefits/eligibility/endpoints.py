"""Eligibility upkeep (待遇资格认证): survival certifications, the yearly sweep, a person's eligibility status."""

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic_core import PydanticCustomError

from services.benefits.eligibility import service
from services.benefits.eligibility.schemas import (
    CertificationIn,
    CertificationOut,
    CertificationRow,
    DataMatchBatch,
    DataMatchLine,
    DataMatchResult,
    EntitlementStatus,
    PersonEligibility,
    SurvivalNoticeOut,
    SurvivalNoticePage,
    SweepIn,
    SweepOut,
)
from services.kernel.auth import allow
from services.kernel.identifiers import validate_citizen_id
from services.kernel.money import fen_to_yuan
from services.kernel.service_app import SessionDep

CERTIFIERS = allow("agency_clerk", "partner_system")
PARTNERS = allow("partner_system")
CLERKS = allow("agency_clerk")
READERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "internal_auditor")

router = APIRouter(prefix="/eligibility", tags=["eligibility"])

_CREATED = {201: {"description": "recorded"}, 200: {"description": "already recorded: nothing changed"}}


def _notice(notice) -> SurvivalNoticeOut:  # noqa: ANN001
    return SurvivalNoticeOut.model_validate(notice, from_attributes=True)


@router.post("/survival-certifications", response_model=CertificationOut, status_code=status.HTTP_201_CREATED,
             responses=_CREATED, dependencies=[CERTIFIERS],
             summary="Record a survival certification (生存认证, 001 第二十六条)",
             description="Clerks record app, face and on-site certifications; a partner system only data_match. "
                         "Closes the person's open notices and resumes benefits suspended for survival_overdue. "
                         "The same person, day and channel again answers 200 with the original.")
def record_certification(body: CertificationIn, session: SessionDep, response: Response) -> CertificationOut:
    result = service.certify(session, body.person_id, body.channel, body.certified_on)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    c = result.certification
    return CertificationOut(id=c.id, person_id=c.person_id, channel=c.channel, certified_on=c.certified_on,
                            recorded_at=c.recorded_at, recorded_by=c.recorded_by, created=result.created,
                            notices_closed=result.notices_closed, resumed_entitlement_ids=result.resumed)


@router.post("/survival-certifications/batches", response_model=DataMatchResult, status_code=status.HTTP_201_CREATED,
             dependencies=[PARTNERS], summary="A partner department's data-match batch (up to 10 000 lines)")
def record_data_match(body: DataMatchBatch, session: SessionDep) -> DataMatchResult:
    records, invalid = [], []
    for line_no, record in enumerate(body.records, start=1):
        try:
            records.append((line_no, validate_citizen_id(record.citizen_id.strip().upper()), record.certified_on))
        except PydanticCustomError as exc:
            invalid.append(DataMatchLine(line_no=line_no, citizen_id=record.citizen_id, status="invalid",
                                         code=exc.type, message=exc.message(), person_id=None))
    lines = service.certify_batch(session, [(cid, day) for _n, cid, day in records])
    problems = list(invalid)
    for (line_no, _cid, _day), line in zip(records, lines, strict=True):
        if line.status != "recorded":
            problems.append(DataMatchLine(line_no=line_no, citizen_id=line.citizen_id, status=line.status,
                                          code=line.code, message=line.message, person_id=line.person_id))
    problems.sort(key=lambda p: p.line_no)
    count = {s: sum(1 for x in lines if x.status == s) for s in ("recorded", "duplicate", "unmatched", "conflict")}
    return DataMatchResult(batch_key=body.batch_key, total=len(body.records), recorded=count["recorded"],
                           duplicates=count["duplicate"], unmatched=count["unmatched"], conflicts=count["conflict"],
                           invalid=len(invalid) + sum(1 for x in lines if x.status == "invalid"), problems=problems)


@router.post("/survival-sweeps", response_model=SweepOut, dependencies=[CLERKS],
             summary="The yearly survival cycle as of a day: suspend overdue notices, notify those due")
def run_sweep(body: SweepIn, session: SessionDep) -> SweepOut:
    result = service.sweep(session, body.as_of)
    return SweepOut(as_of=result.as_of, notices_issued=result.notices_issued, notices_expired=result.notices_expired,
                    entitlements_suspended=result.entitlements_suspended, notice_ids=result.notice_ids,
                    suspended_person_ids=result.suspended_person_ids)


@router.get("/survival-notices", response_model=SurvivalNoticePage, dependencies=[READERS],
            summary="Survival notices of the caller's area, cursor-paginated")
def list_notices(
    session: SessionDep,
    person_id: str | None = None,
    notice_status: Annotated[str | None, Query(alias="status", pattern="^(open|certified|suspended)$")] = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SurvivalNoticePage:
    rows, cursor = service.notices_of(session, person_id=person_id, status=notice_status, after=after, limit=limit)
    return SurvivalNoticePage(items=[_notice(n) for n in rows], next_cursor=cursor)


@router.get("/persons/{person_id}", response_model=PersonEligibility, dependencies=[READERS],
            summary="A person's life status, last certification, open notice and entitlements")
def person_eligibility(person_id: str, session: SessionDep) -> PersonEligibility:
    found = service.person_status(session, person_id)
    p = found["person"]
    return PersonEligibility(
        person_id=p.person_id, citizen_id=p.citizen_id, name=p.name, life_status=p.life_status,
        death_date=p.death_date, imprisoned_from=p.imprisoned_from, imprisoned_until=p.imprisoned_until,
        last_certified_on=found["last_certified_on"],
        open_notice=_notice(found["open_notice"]) if found["open_notice"] else None,
        entitlements=[EntitlementStatus(id=e.id, kind=e.kind, fund=e.fund, monthly_amount=fen_to_yuan(e.monthly_amount_fen),
                                        start_period=e.start_period, end_period=e.end_period, status=e.status,
                                        suspended_reason=e.suspended_reason, suspended_at=e.suspended_at)
                      for e in found["entitlements"]],
    )


@router.get("/persons/{person_id}/survival-certifications", response_model=list[CertificationRow],
            dependencies=[READERS], summary="A person's survival certifications, newest first")
def person_certifications(person_id: str, session: SessionDep) -> list[CertificationRow]:
    return [CertificationRow.model_validate(c, from_attributes=True)
            for c in service.certifications_of(session, person_id)]
