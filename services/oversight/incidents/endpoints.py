"""Major-incident reports: oversight officers record and report; internal auditors read."""

from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, status

from services.kernel.auth import allow
from services.kernel.money import fen_to_yuan
from services.kernel.service_app import SessionDep
from services.kernel.strict import IsoDate
from services.oversight.incidents import service
from services.oversight.incidents.models import MajorIncident
from services.oversight.incidents.schemas import (
    CHANNEL_LABELS,
    KIND_LABELS,
    Bucket,
    ClassificationIn,
    DueList,
    IncidentIn,
    IncidentOut,
    IncidentPage,
    ReportIn,
    Summary,
)
from services.kernel import clock

OFFICERS = allow("oversight_officer")
READERS = allow("oversight_officer", "internal_auditor")
Limit = Annotated[int, Query(ge=1, le=500)]
Year = Annotated[int, Query(ge=2000, le=2200)]
Half = Annotated[int, Query(ge=1, le=2, description="1: January–June, 2: July–December")]

router = APIRouter(prefix="/incidents", tags=["incidents"])


def _out(incident: MajorIncident, as_of: date | None = None) -> IncidentOut:
    s = service.state(incident, as_of)
    return IncidentOut(
        id=incident.id, kind=incident.kind, kind_label=KIND_LABELS[incident.kind], title=incident.title,
        description=incident.description, unit=incident.unit, region=incident.region, channel=incident.channel,
        channel_label=CHANNEL_LABELS[incident.channel], source_ref=incident.source_ref,
        discovered_on=incident.discovered_on, amount=fen_to_yuan(incident.amount_fen), major=incident.major,
        major_reason=incident.major_reason, due_on=incident.due_on, due_note=incident.due_note,
        same_level_reported_on=incident.same_level_reported_on, same_level_ref=incident.same_level_ref,
        same_level_late=incident.same_level_late, provincial_reported_on=incident.provincial_reported_on,
        provincial_ref=incident.provincial_ref, provincial_late=incident.provincial_late, late=s.late,
        status=s.status, days_overdue=s.days_overdue, recorded_at=incident.recorded_at,
        recorded_by=incident.recorded_by,
    )


@router.post("", response_model=IncidentOut, status_code=status.HTTP_201_CREATED,
             summary="Record an incident (挪用/挤占/骗取); a major one is due at the provincial level in 5 working days",
             dependencies=[OFFICERS])
def record(body: IncidentIn, session: SessionDep) -> IncidentOut:
    return _out(service.record(session, body))


@router.get("", response_model=IncidentPage, summary="Incidents by discovery year/half, kind, channel",
            dependencies=[READERS])
def list_incidents(
    session: SessionDep,
    year: Annotated[int | None, Query(ge=2000, le=2200)] = None,
    half: Annotated[int | None, Query(ge=1, le=2)] = None,
    major: bool | None = None,
    kind: Annotated[str | None, Query(pattern="^(misappropriation|diversion|fraud)$")] = None,
    channel: str | None = None,
    after: str | None = None,
    limit: Limit = 50,
) -> IncidentPage:
    rows, next_cursor = service.list_incidents(session, year=year, half=half, major=major, kind=kind,
                                               channel=channel, after=after, limit=limit)
    return IncidentPage(items=[_out(r) for r in rows], next_cursor=next_cursor)


@router.get("/due", response_model=DueList,
            summary="Major incidents not yet reported to every level: due, overdue (急情缓报)", dependencies=[READERS])
def due(session: SessionDep, as_of: IsoDate | None = None) -> DueList:
    as_of = as_of or clock.china_today()
    out = DueList(as_of=as_of, due=[], overdue=[], deadline_unknown=[])
    for incident in service.unreported_major(session):
        view = _out(incident, as_of)
        {"due": out.due, "overdue": out.overdue, "deadline_unknown": out.deadline_unknown}[view.status].append(view)
    return out


@router.get("/summary", response_model=Summary,
            summary="Half-yearly summary (001 第三十一条): counts, amounts, late and overdue reports",
            dependencies=[READERS])
def summary(session: SessionDep, year: Year, half: Half, as_of: IsoDate | None = None) -> Summary:
    as_of = as_of or clock.china_today()
    first, last = service.half_bounds(year, half)
    views = [_out(i, as_of) for i in service.in_half(session, year, half)]

    def bucket(items: list[IncidentOut]) -> Bucket:
        return Bucket(count=len(items), amount=sum((v.amount for v in items), Decimal("0.00")))

    by_kind = {k: bucket([v for v in views if v.kind == k]) for k in KIND_LABELS}
    by_channel = {c: bucket([v for v in views if v.channel == c]) for c in CHANNEL_LABELS}
    total, major = bucket(views), bucket([v for v in views if v.major])
    return Summary(
        year=year, half=half, period_from=first, period_to=last, as_of=as_of, count=total.count,
        amount=total.amount, major_count=major.count, major_amount=major.amount, by_kind=by_kind,
        by_channel=by_channel,
        reported_late=[v for v in views if v.same_level_late or v.provincial_late],
        overdue_unreported=[v for v in views if v.status == "overdue"],
        incidents=views,
    )


@router.get("/{incident_id}", response_model=IncidentOut, summary="One incident", dependencies=[READERS])
def get_incident(incident_id: str, session: SessionDep) -> IncidentOut:
    return _out(service.get(session, incident_id))


@router.post("/{incident_id}/reports", response_model=IncidentOut,
             summary="Record the report to the same-level or the provincial supervisor (late ones marked)",
             dependencies=[OFFICERS])
def report(incident_id: str, body: ReportIn, session: SessionDep) -> IncidentOut:
    return _out(service.report(session, incident_id, body))


@router.post("/{incident_id}/classification", response_model=IncidentOut,
             summary="Major or not, with a reason (the deadline still counts from discovery)", dependencies=[OFFICERS])
def classify(incident_id: str, body: ClassificationIn, session: SessionDep) -> IncidentOut:
    return _out(service.classify(session, incident_id, body))
