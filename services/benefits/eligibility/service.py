"""Eligibility upkeep (DOMAIN.md money-out flow 5): life status effects and survival certification.

**Death and imprisonment (001 第二十七条).** ``apply_life_status`` runs in the consumer's transaction whenever a
person's life status is mirrored (registry/handlers.py), and acts on the resulting state, so applying it twice changes
nothing:

- *deceased*: every active entitlement of the person is suspended at once (``EntitlementSuspended``, reason
  ``deceased``, since the death date); every payroll line already paid or sent to the bank (``paid``, ``in_file``) for
  a period after the month of death becomes an ``Overpayment`` (``OverpaymentFound``, reason ``paid_after_death``);
- *imprisoned*: the same, reason ``imprisoned`` since the first day; overpaid are the lines for periods after the month
  the imprisonment began up to the month it ends (``imprisoned_until``, open while unknown) — reason
  ``paid_during_imprisonment`` (the month of the event itself is still payable, payment stops from the next one);
- *alive* again (a release, or an approved correction): the entitlements suspended for ``imprisoned`` (or
  ``deceased``, when a death is corrected) are resumed (``EntitlementResumed``, reason ``released`` /
  ``life_status_corrected``); lines paid inside a served imprisonment are still found as overpayments.

Overpayments found go at once onto a recovery notice (recovery/service.py ``issue_notice``). Lines of one-off
entitlements are never overpayments (a one-off death benefit is paid after the death by design). A line already
recorded as an overpayment (unique ``payroll_line_id``) is not recorded again.

**Survival certification (生存认证, 001 第二十六条).** A certification (app, face, on site, or a data match supplied
by a partner department in batches) is recorded once per person, day and channel. It closes the person's open
survival notices and resumes the entitlements suspended for ``survival_overdue`` (the person must be alive; a
deceased person cannot be certified: 409 ``PERSON_DECEASED``).

The yearly cycle is a sweep as of a date (``POST /eligibility/survival-sweeps``), over the caller's area:

1. an open notice whose response date has passed without a certification suspends every active entitlement of the
   person (reason ``survival_overdue``) and becomes ``suspended``;
2. a person with an active entitlement whose latest proof of life is older than ``survival_interval_months`` (12) —
   the latest certification, or the grant of their most recent active entitlement (granting verifies the claimant),
   whichever is later — and who has no open notice gets one, answerable within ``survival_notice_days`` (30).

Running the same sweep twice issues and suspends nothing more.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, insert, select
from sqlmodel import Session

from services.benefits.config import months_before
from services.benefits.models import (
    BeneficiaryPerson,
    Entitlement,
    Overpayment,
    PayrollLine,
    SurvivalCertification,
    SurvivalNotice,
)
from services.benefits.recovery.service import issue_notice
from services.benefits.registry.service import get_person, person_by_citizen_id
from services.contracts.benefits import EntitlementResumed, EntitlementSuspended, OverpaymentFound, SurvivalCertified
from services.kernel import clock, context
from services.kernel.auth import region_filter
from services.kernel.settings import get_settings
from services.kernel.audit import append_audit
from services.kernel.errors import Conflict, DomainError, Forbidden, Invalid
from services.kernel.events import new_event_id
from services.kernel.outbox import record_event
from services.kernel.paging import oldest_first
from services.kernel.periods import add_months, period_of

SOURCE = "benefits"
ENTITLEMENT_ENTITY = "entitlement"
PERSON_ENTITY = "beneficiary_person"
NOTICE_ENTITY = "survival_notice"
PAID_STATUSES = ("paid", "in_file")
CHANNELS = ("app", "face", "on_site", "data_match")
CHUNK = 500


# -- suspension and resumption ---------------------------------------------------------------------------------------


def suspend_entitlements(session: Session, person_id: str, *, reason: str, since: date | None,
                         note: str) -> list[Entitlement]:
    """Suspend every active entitlement of the person (one event each). Does not commit."""
    rows = list(session.execute(select(Entitlement).where(Entitlement.person_id == person_id,
                                                          Entitlement.status == "active")
                                .order_by(Entitlement.id).with_for_update()).scalars())
    at = clock.utc_now()
    for entitlement in rows:
        entitlement.status, entitlement.suspended_reason, entitlement.suspended_at = "suspended", reason, at
        session.add(entitlement)
        append_audit(session, action="entitlement.suspend", entity_type=ENTITLEMENT_ENTITY, entity_id=entitlement.id,
                     detail={"person_id": person_id, "reason": reason, "since": since}, reason=note)
        record_event(session, EntitlementSuspended(entitlement_id=entitlement.id, person_id=person_id, reason=reason,
                                                   since=since),
                     source=SOURCE, subject=entitlement.id)
    return rows


def resume_entitlements(session: Session, person_id: str, *, suspended_for: Iterable[str],
                        why: dict[str, str], note: str) -> list[Entitlement]:
    """Resume the person's entitlements suspended for one of ``suspended_for``; ``why`` names the event's reason per
    suspension reason. Does not commit."""
    reasons = list(suspended_for)
    rows = list(session.execute(select(Entitlement).where(Entitlement.person_id == person_id,
                                                          Entitlement.status == "suspended",
                                                          Entitlement.suspended_reason.in_(reasons))
                                .order_by(Entitlement.id).with_for_update()).scalars())
    for entitlement in rows:
        reason = why[entitlement.suspended_reason]
        before = entitlement.suspended_reason
        entitlement.status, entitlement.suspended_reason, entitlement.suspended_at = "active", None, None
        session.add(entitlement)
        append_audit(session, action="entitlement.resume", entity_type=ENTITLEMENT_ENTITY, entity_id=entitlement.id,
                     detail={"person_id": person_id, "reason": reason, "suspended_for": before}, reason=note)
        record_event(session, EntitlementResumed(entitlement_id=entitlement.id, person_id=person_id, reason=reason),
                     source=SOURCE, subject=entitlement.id)
    return rows


# -- overpayments ----------------------------------------------------------------------------------------------------


def find_overpayments(session: Session, person_id: str, *, first_period: int, last_period: int | None,
                      reason: str) -> list[Overpayment]:
    """Record every line paid (or sent to the bank) for the person in [first, last] as an overpayment, once."""
    if last_period is not None and last_period < first_period:
        return []
    one_off = select(Entitlement.id).where(Entitlement.kind == "one_off")
    query = select(PayrollLine).where(PayrollLine.person_id == person_id, PayrollLine.status.in_(PAID_STATUSES),
                                      PayrollLine.period >= first_period,
                                      PayrollLine.entitlement_id.not_in(one_off))
    if last_period is not None:
        query = query.where(PayrollLine.period <= last_period)
    lines = list(session.execute(query.order_by(PayrollLine.period, PayrollLine.id)).scalars())
    if not lines:
        return []
    known = set(session.execute(select(Overpayment.payroll_line_id).where(
        Overpayment.payroll_line_id.in_([line.id for line in lines]))).scalars())
    found = []
    for line in lines:
        if line.id in known:
            continue
        overpayment = Overpayment(id=new_event_id(), person_id=person_id, payroll_line_id=line.id, period=line.period,
                                  amount_fen=line.amount_fen, reason=reason, found_at=clock.utc_now())
        session.add(overpayment)
        append_audit(session, action="overpayment.find", entity_type="overpayment", entity_id=overpayment.id,
                     detail={"person_id": person_id, "payroll_line_id": line.id, "period": line.period,
                             "amount_fen": line.amount_fen, "line_status": line.status, "reason": reason})
        record_event(session, OverpaymentFound(overpayment_id=overpayment.id, person_id=person_id,
                                               payroll_line_id=line.id, period=line.period,
                                               amount_fen=line.amount_fen, reason=reason),
                     source=SOURCE, subject=overpayment.id)
        found.append(overpayment)
    session.flush()
    return found


@dataclass
class LifeEffects:
    suspended: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    overpayments: list[str] = field(default_factory=list)
    notice_id: str | None = None


def _imprisonment_window(person: BeneficiaryPerson) -> tuple[int, int | None] | None:
    if person.imprisoned_from is None:
        return None
    last = period_of(person.imprisoned_until) if person.imprisoned_until else None
    return add_months(period_of(person.imprisoned_from), 1), last


def apply_life_status(session: Session, person: BeneficiaryPerson) -> LifeEffects:
    """The effects of the person's current life status (see the module docstring). Does not commit."""
    effects = LifeEffects()
    found: list[Overpayment] = []
    status = person.life_status
    if status == "deceased":
        effects.suspended = [e.id for e in suspend_entitlements(
            session, person.person_id, reason="deceased", since=person.death_date,
            note=f"人员死亡（{person.death_date or '日期未知'}），立即暂停发放（001 第二十七条）")]
        if person.death_date is not None:
            found += find_overpayments(session, person.person_id,
                                       first_period=add_months(period_of(person.death_date), 1), last_period=None,
                                       reason="paid_after_death")
    elif status == "imprisoned":
        effects.suspended = [e.id for e in suspend_entitlements(
            session, person.person_id, reason="imprisoned", since=person.imprisoned_from,
            note=f"人员服刑（自 {person.imprisoned_from or '日期未知'}），立即暂停发放（001 第二十七条）")]
    else:
        effects.resumed = [e.id for e in resume_entitlements(
            session, person.person_id, suspended_for=("imprisoned", "deceased"),
            why={"imprisoned": "released", "deceased": "life_status_corrected"},
            note="人员生存状态恢复正常（刑满释放或更正），恢复发放")]
    window = _imprisonment_window(person)
    if window is not None:
        found += find_overpayments(session, person.person_id, first_period=window[0], last_period=window[1],
                                   reason="paid_during_imprisonment")
    effects.overpayments = [o.id for o in found]
    if found:
        effects.notice_id = issue_notice(session, person.person_id).id
    return effects


# -- survival certification ------------------------------------------------------------------------------------------


@dataclass
class Certified:
    certification: SurvivalCertification
    created: bool
    notices_closed: int = 0
    resumed: list[str] = field(default_factory=list)


def _certify(session: Session, person: BeneficiaryPerson, channel: str, certified_on: date) -> Certified:
    """Record one certification (once per person, day and channel) and its effects. Does not commit."""
    if channel not in CHANNELS:
        raise Invalid("INVALID_CHANNEL", f"认证方式应为 {'、'.join(CHANNELS)} 之一")
    if certified_on > clock.china_today():
        raise Invalid("DATE_IN_FUTURE", f"认证日期 {certified_on} 晚于今天")
    if person.life_status == "deceased":
        raise Conflict("PERSON_DECEASED", f"该人员已登记死亡（{person.death_date or '日期未知'}），不能登记生存认证")
    if certified_on < person.birth_date:
        raise Invalid("DATE_BEFORE_BIRTH", "认证日期早于出生日期")
    existing = session.execute(select(SurvivalCertification).where(
        SurvivalCertification.person_id == person.person_id, SurvivalCertification.certified_on == certified_on,
        SurvivalCertification.channel == channel)).scalar_one_or_none()
    if existing is not None:
        return Certified(existing, created=False)
    row = SurvivalCertification(id=new_event_id(), person_id=person.person_id, channel=channel,
                                certified_on=certified_on, recorded_at=clock.utc_now(), recorded_by=context.actor_id())
    session.add(row)
    append_audit(session, action="survival.certify", entity_type=PERSON_ENTITY, entity_id=person.person_id,
                 detail={"certification_id": row.id, "channel": channel, "certified_on": certified_on})
    record_event(session, SurvivalCertified(person_id=person.person_id, channel=channel, certified_on=certified_on),
                 source=SOURCE, subject=person.person_id)
    # A certification answers the notices it could have prevented: those issued less than an interval after it.
    interval = get_settings().benefits_upkeep.survival_interval_months
    notices = list(session.execute(select(SurvivalNotice).where(
        SurvivalNotice.person_id == person.person_id, SurvivalNotice.status.in_(("open", "suspended")))
        .with_for_update()).scalars())
    closed = 0
    for notice in notices:
        if certified_on > months_before(notice.issued_on, interval):
            notice.status = "certified"
            session.add(notice)
            append_audit(session, action="survival_notice.certified", entity_type=NOTICE_ENTITY, entity_id=notice.id,
                         detail={"person_id": person.person_id, "certification_id": row.id})
            closed += 1
    resumed: list[str] = []
    if person.life_status == "alive":
        resumed = [e.id for e in resume_entitlements(
            session, person.person_id, suspended_for=("survival_overdue",), why={"survival_overdue": "survival_certified"},
            note=f"已完成生存认证（{channel}，{certified_on}），恢复发放")]
    session.flush()
    return Certified(row, created=True, notices_closed=closed, resumed=resumed)


def certify(session: Session, person_id: str, channel: str, certified_on: date) -> Certified:
    actor = context.current().actor
    if actor.role == "partner_system" and channel != "data_match":
        raise Forbidden("CHANNEL_NOT_ALLOWED", "数据比对系统只能登记 data_match 方式的认证")
    person = get_person(session, person_id, for_update=True)
    result = _certify(session, person, channel, certified_on)
    session.flush()
    return result


@dataclass
class BatchLine:
    line_no: int
    citizen_id: str
    status: str  # recorded | duplicate | unmatched | conflict | invalid
    code: str | None = None
    message: str | None = None
    person_id: str | None = None


def certify_batch(session: Session, records: list[tuple[str, date]]) -> list[BatchLine]:
    """A partner department's data match (e.g. 民政/卫健 records of living persons): each line recorded, a repeat
    a duplicate, an unknown citizen id unmatched, a deceased person a conflict; one transaction."""
    lines = []
    persons: dict[str, BeneficiaryPerson | None] = {}
    for line_no, (citizen_id, certified_on) in enumerate(records, start=1):
        if citizen_id not in persons:
            persons[citizen_id] = person_by_citizen_id(session, citizen_id)
        person = persons[citizen_id]
        if person is None:
            lines.append(BatchLine(line_no, citizen_id, "unmatched", "PERSON_NOT_FOUND", "待遇系统中没有该人员"))
            continue
        try:
            with session.begin_nested():
                result = _certify(session, person, "data_match", certified_on)
        except DomainError as exc:
            status = "conflict" if exc.status == 409 else "invalid"
            lines.append(BatchLine(line_no, citizen_id, status, exc.code, exc.message, person.person_id))
            continue
        lines.append(BatchLine(line_no, citizen_id, "recorded" if result.created else "duplicate",
                               person_id=person.person_id))
    append_audit(session, action="survival.data_match_batch", entity_type="survival_batch", entity_id=new_event_id(),
                 detail={"lines": len(records), "recorded": sum(1 for x in lines if x.status == "recorded")})
    session.flush()
    return lines


def certifications_of(session: Session, person_id: str) -> list[SurvivalCertification]:
    get_person(session, person_id)
    return list(session.execute(select(SurvivalCertification).where(SurvivalCertification.person_id == person_id)
                                .order_by(SurvivalCertification.certified_on.desc())).scalars())


def notices_of(session: Session, *, person_id: str | None, status: str | None, after: str | None,
               limit: int) -> tuple[list[SurvivalNotice], str | None]:
    query = (select(SurvivalNotice).join(BeneficiaryPerson, BeneficiaryPerson.person_id == SurvivalNotice.person_id)
             .where(region_filter(BeneficiaryPerson.region)))
    if person_id:
        query = query.where(SurvivalNotice.person_id == person_id)
    if status:
        query = query.where(SurvivalNotice.status == status)
    return oldest_first(session, query, SurvivalNotice.id, after=after, limit=limit)


# -- the yearly sweep ------------------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    as_of: date
    notices_issued: int
    notices_expired: int
    entitlements_suspended: int
    notice_ids: list[str]
    suspended_person_ids: list[str]


def sweep(session: Session, as_of: date) -> SweepResult:
    if as_of > clock.china_today():
        raise Invalid("DATE_IN_FUTURE", f"检查日期 {as_of} 晚于今天")
    config = get_settings().benefits_upkeep
    in_area = region_filter(BeneficiaryPerson.region)

    # 1. Notices whose time is up without a certification: suspend.
    expired = list(session.execute(
        select(SurvivalNotice).join(BeneficiaryPerson, BeneficiaryPerson.person_id == SurvivalNotice.person_id)
        .where(SurvivalNotice.status == "open", SurvivalNotice.respond_by < as_of, in_area)
        .order_by(SurvivalNotice.id).with_for_update()).scalars())
    suspended_total, suspended_persons = 0, []
    for notice in expired:
        rows = suspend_entitlements(session, notice.person_id, reason="survival_overdue", since=notice.respond_by,
                                    note=f"生存认证通知（{notice.id}）逾期未认证，暂停发放（001 第二十六条）")
        notice.status = "suspended"
        session.add(notice)
        append_audit(session, action="survival_notice.expire", entity_type=NOTICE_ENTITY, entity_id=notice.id,
                     detail={"person_id": notice.person_id, "respond_by": notice.respond_by, "as_of": as_of,
                             "suspended": [e.id for e in rows]})
        suspended_total += len(rows)
        if rows:
            suspended_persons.append(notice.person_id)
    session.flush()

    # 2. Beneficiaries due for certification without an open notice: notify.
    granted = dict(session.execute(
        select(Entitlement.person_id, func.max(Entitlement.created_at))
        .join(BeneficiaryPerson, BeneficiaryPerson.person_id == Entitlement.person_id)
        .where(Entitlement.status == "active", in_area).group_by(Entitlement.person_id)).all())
    threshold = months_before(as_of, config.survival_interval_months)
    candidates = sorted(p for p, at in granted.items() if _as_date(at) < threshold)
    notice_ids: list[str] = []
    new_rows = []
    for start in range(0, len(candidates), CHUNK):
        chunk = candidates[start:start + CHUNK]
        certified = dict(session.execute(
            select(SurvivalCertification.person_id, func.max(SurvivalCertification.certified_on))
            .where(SurvivalCertification.person_id.in_(chunk), SurvivalCertification.certified_on <= as_of)
            .group_by(SurvivalCertification.person_id)).all())
        noticed = set(session.execute(select(SurvivalNotice.person_id).where(
            SurvivalNotice.person_id.in_(chunk), SurvivalNotice.status == "open")).scalars())
        for person_id in chunk:
            last = certified.get(person_id)
            if person_id in noticed or (last is not None and last >= threshold):
                continue
            notice_id = new_event_id()
            new_rows.append({"id": notice_id, "person_id": person_id, "issued_on": as_of,
                             "respond_by": as_of + timedelta(days=config.survival_notice_days), "status": "open"})
            notice_ids.append(notice_id)
    for start in range(0, len(new_rows), CHUNK):
        session.execute(insert(SurvivalNotice.__table__), new_rows[start:start + CHUNK])
    append_audit(session, action="survival.sweep", entity_type="survival_sweep", entity_id=as_of.isoformat(),
                 detail={"as_of": as_of, "notices_issued": len(notice_ids), "notice_ids": notice_ids,
                         "notices_expired": [n.id for n in expired], "entitlements_suspended": suspended_total,
                         "interval_months": config.survival_interval_months,
                         "notice_days": config.survival_notice_days})
    session.flush()
    return SweepResult(as_of, len(notice_ids), len(expired), suspended_total, notice_ids, suspended_persons)


def _as_date(value) -> date:  # noqa: ANN001 - a datetime from the database (naive on SQLite)
    return value.date() if hasattr(value, "date") else value


# -- a person's eligibility at a glance ------------------------------------------------------------------------------


def person_status(session: Session, person_id: str) -> dict:
    # One snapshot: a death is mirrored and its entitlements suspended in one consumer transaction. On PostgreSQL
    # (READ COMMITTED) each query below would see its own moment, and a death committed between the first two showed
    # the person alive with the pension already suspended for death. (SQLite's transactions already see one state.)
    if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    person = get_person(session, person_id)
    entitlements = list(session.execute(select(Entitlement).where(Entitlement.person_id == person_id)
                                        .order_by(Entitlement.id)).scalars())
    last = session.execute(select(func.max(SurvivalCertification.certified_on)).where(
        SurvivalCertification.person_id == person_id)).scalar_one()
    open_notice = session.execute(select(SurvivalNotice).where(
        SurvivalNotice.person_id == person_id, SurvivalNotice.status == "open")).scalars().first()
    return {"person": person, "entitlements": entitlements, "last_certified_on": last, "open_notice": open_notice}

