"""Major-incident reports (要情报告; 000 三(五); 001 第三十一条).

- **Record.** Misappropriation (挪用), diversion (挤占) or fraud (骗取), found by any channel (inspection, audit,
  internal control, media, whistleblowing, court, suspicious-data verification), with the discovery date, the unit,
  the amount and whether it is major. Neither the discovery nor a report may be dated in the future.
- **Deadline.** A major incident is due at the same-level and the provincial supervisor by the 5th Chinese working
  day after discovery (deadlines.py). Each level's report date is recorded once; one after the due day is marked
  late. An upgrade to major later keeps the deadline counted from discovery (a late upgrade is a late report).
- **Lists.** What is due and overdue as of a day; the half-yearly summary (by discovery date) with counts,
  amounts, the reports that came late and the major incidents still unreported past their deadline.
"""

from dataclasses import dataclass
from datetime import date

from sqlalchemy import and_, or_, select
from sqlmodel import Session

from services.contracts.oversight import IncidentRecorded, IncidentReported
from services.kernel import clock, context
from services.kernel.audit import append_audit
from services.kernel.errors import Conflict, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.money import yuan_to_fen
from services.kernel.outbox import record_event
from services.kernel.paging import oldest_first
from services.oversight.incidents.deadlines import working_day_deadline
from services.oversight.incidents.models import MajorIncident
from services.oversight.incidents.schemas import LEVEL_LABELS, ClassificationIn, IncidentIn, ReportIn

SOURCE = "oversight"
ENTITY = "major_incident"



def _not_future(day: date, what: str) -> None:
    if day > clock.china_today():
        raise Invalid("DATE_IN_FUTURE", f"{what} {day} 晚于今天")


def _set_deadline(incident: MajorIncident) -> None:
    if incident.major:
        incident.due_on, incident.due_note = working_day_deadline(incident.discovered_on)
    else:
        incident.due_on, incident.due_note = None, None
    for level in ("same_level", "provincial"):
        reported = getattr(incident, f"{level}_reported_on")
        late = None if reported is None or incident.due_on is None else reported > incident.due_on
        setattr(incident, f"{level}_late", late)


@dataclass(frozen=True)
class IncidentState:
    status: str
    late: bool
    days_overdue: int | None


def state(incident: MajorIncident, as_of: date | None = None) -> IncidentState:
    as_of = as_of or clock.china_today()
    late = bool(incident.same_level_late or incident.provincial_late)
    if not incident.major:
        return IncidentState("half_yearly", late, None)
    if incident.same_level_reported_on is not None and incident.provincial_reported_on is not None:
        return IncidentState("reported", late, None)
    if incident.due_on is None:
        return IncidentState("deadline_unknown", late, None)
    if as_of > incident.due_on:
        return IncidentState("overdue", True, (as_of - incident.due_on).days)
    return IncidentState("due", late, None)


def record(session: Session, body: IncidentIn) -> MajorIncident:
    _not_future(body.discovered_on, "发现日期")
    now = clock.utc_now()
    incident = MajorIncident(
        id=new_event_id(), kind=body.kind, title=body.title, description=body.description, unit=body.unit,
        region=body.region, channel=body.channel, source_ref=body.source_ref, discovered_on=body.discovered_on,
        amount_fen=yuan_to_fen(body.amount), major=body.major, major_reason=body.major_reason, recorded_at=now,
        recorded_by=context.actor_id(), updated_at=now,
    )
    _set_deadline(incident)
    session.add(incident)
    append_audit(session, action=f"{ENTITY}.recorded", entity_type=ENTITY, entity_id=incident.id,
                 detail={"kind": incident.kind, "channel": incident.channel, "unit": incident.unit,
                         "discovered_on": incident.discovered_on, "amount_fen": incident.amount_fen,
                         "major": incident.major, "due_on": incident.due_on, "source_ref": incident.source_ref})
    record_event(session, IncidentRecorded(
        incident_id=incident.id, kind=incident.kind, channel=incident.channel, unit=incident.unit,
        region=incident.region, discovered_on=incident.discovered_on, amount_fen=incident.amount_fen,
        major=incident.major, due_on=incident.due_on,
    ), source=SOURCE, subject=incident.id)
    session.flush()
    return incident


def get(session: Session, incident_id: str, *, lock: bool = False) -> MajorIncident:
    query = select(MajorIncident).where(MajorIncident.id == incident_id)
    incident = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if incident is None:
        raise NotFound("INCIDENT_NOT_FOUND", "要情不存在")
    return incident


def report(session: Session, incident_id: str, body: ReportIn) -> MajorIncident:
    incident = get(session, incident_id, lock=True)
    _not_future(body.reported_on, "上报日期")
    if body.reported_on < incident.discovered_on:
        raise Invalid("REPORTED_BEFORE_DISCOVERY", f"上报日期 {body.reported_on} 早于发现日期 {incident.discovered_on}")
    if getattr(incident, f"{body.level}_reported_on") is not None:
        raise Conflict("ALREADY_REPORTED", f"该要情已上报{LEVEL_LABELS[body.level]}")
    setattr(incident, f"{body.level}_reported_on", body.reported_on)
    setattr(incident, f"{body.level}_ref", body.reference)
    _set_deadline(incident)
    incident.updated_at = clock.utc_now()
    late = getattr(incident, f"{body.level}_late")
    append_audit(session, action=f"{ENTITY}.reported", entity_type=ENTITY, entity_id=incident.id,
                 detail={"level": body.level, "reported_on": body.reported_on, "reference": body.reference,
                         "due_on": incident.due_on, "late": late})
    record_event(session, IncidentReported(
        incident_id=incident.id, level=body.level, reported_on=body.reported_on, major=incident.major,
        due_on=incident.due_on, late=late,
    ), source=SOURCE, subject=incident.id)
    session.flush()
    return incident


def classify(session: Session, incident_id: str, body: ClassificationIn) -> MajorIncident:
    """Major or not, with a reason (大情小报 is accountable: every change is kept in the audit chain)."""
    incident = get(session, incident_id, lock=True)
    if incident.major == body.major:
        return incident
    before = incident.major
    incident.major, incident.major_reason = body.major, body.reason
    _set_deadline(incident)
    incident.updated_at = clock.utc_now()
    append_audit(session, action=f"{ENTITY}.classified", entity_type=ENTITY, entity_id=incident.id,
                 detail={"major_before": before, "major": body.major, "due_on": incident.due_on}, reason=body.reason)
    session.flush()
    return incident


def _half(year: int, half: int) -> tuple[date, date]:
    return (date(year, 1, 1), date(year, 6, 30)) if half == 1 else (date(year, 7, 1), date(year, 12, 31))


def list_incidents(session: Session, *, year: int | None = None, half: int | None = None, major: bool | None = None,
                   kind: str | None = None, channel: str | None = None, after: str | None = None,
                   limit: int = 50) -> tuple[list[MajorIncident], str | None]:
    query = select(MajorIncident)
    if year is not None:
        first, last = _half(year, half) if half else (date(year, 1, 1), date(year, 12, 31))
        query = query.where(MajorIncident.discovered_on >= first, MajorIncident.discovered_on <= last)
    if major is not None:
        query = query.where(MajorIncident.major == major)
    if kind:
        query = query.where(MajorIncident.kind == kind)
    if channel:
        query = query.where(MajorIncident.channel == channel)
    return oldest_first(session, query, MajorIncident.id, after=after, limit=limit)


def unreported_major(session: Session) -> list[MajorIncident]:
    return list(session.execute(
        select(MajorIncident).where(MajorIncident.major.is_(True), or_(
            MajorIncident.same_level_reported_on.is_(None), MajorIncident.provincial_reported_on.is_(None)))
        .order_by(MajorIncident.due_on, MajorIncident.id)
    ).scalars())


def in_half(session: Session, year: int, half: int) -> list[MajorIncident]:
    first, last = _half(year, half)
    return list(session.execute(
        select(MajorIncident).where(and_(MajorIncident.discovered_on >= first, MajorIncident.discovered_on <= last))
        .order_by(MajorIncident.discovered_on, MajorIncident.id)
    ).scalars())


def half_bounds(year: int, half: int) -> tuple[date, date]:
    return _half(year, half)
