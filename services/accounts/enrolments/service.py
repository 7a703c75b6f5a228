"""Enrolments (参保登记): enrol, transfer between employers, suspend, resume, stop; and the online verification the
other services call before granting a claim (004 第10项). Business rules live in ``rules``; this module loads the
rows, applies the rules, and writes the change, its history, its audit entry and its event in one transaction.

The partial unique index ``uq_enrolment_active_group`` (one active enrolment per person and fund group) is the
second line of defence: two concurrent enrolments that both passed the rule check cannot both commit, and the loser
gets the same 409 the rule would have given.
"""

from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.accounts.enrolments import rules
from services.accounts.enrolments.schemas import (
    ContributionMonthsVerification,
    EnrolmentRequest,
    EnrolmentVerification,
    ResumeRequest,
    StopRequest,
    SuspendRequest,
    TransferRequest,
)
from services.accounts.history import diff, record_change
from services.accounts.models import FUNDS, ContributionMonth, Employer, Enrolment, Person, fund_group
from services.contracts.accounts import (
    EnrolmentOpened,
    EnrolmentResumed,
    EnrolmentStopped,
    EnrolmentSuspended,
    EnrolmentTransferred,
)
from services.kernel import archives, clock, context
from services.kernel.auth import ensure_in_region
from services.kernel.errors import Conflict, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.models import AuditEntry
from services.kernel.outbox import record_event
from services.kernel.paging import oldest_first
from services.kernel.periods import period_of

SOURCE = "accounts"
ENTITY = "enrolment"


# -- loading ---------------------------------------------------------------------------------------------------------


def _person(session: Session, person_id: str) -> Person:
    person = session.get(Person, person_id)
    if person is None:
        raise NotFound("PERSON_NOT_FOUND", "参保人员不存在")
    ensure_in_region(context.current().actor, person.region)
    return person


def _employer(session: Session, employer_id: str) -> Employer:
    employer = session.get(Employer, employer_id)
    if employer is None:
        raise NotFound("EMPLOYER_NOT_FOUND", "用人单位不存在")
    ensure_in_region(context.current().actor, employer.region)
    return employer


def _locked_enrolment(session: Session, enrolment_id: str) -> Enrolment:
    enrolment = session.execute(
        select(Enrolment).where(Enrolment.id == enrolment_id).with_for_update()
    ).scalar_one_or_none()
    if enrolment is None:
        raise NotFound("ENROLMENT_NOT_FOUND", "参保登记不存在")
    return enrolment


def _enrolments_of(session: Session, person_id: str, *, lock: bool = False) -> list[Enrolment]:
    query = select(Enrolment).where(Enrolment.person_id == person_id).order_by(Enrolment.start_period, Enrolment.id)
    if lock:
        query = query.with_for_update()
    return list(session.execute(query).scalars())


def _open(enrolments: list[Enrolment]) -> list[Enrolment]:
    return [e for e in enrolments if e.status in rules.OPEN_STATUSES]


# -- writing ---------------------------------------------------------------------------------------------------------



def _creation_changes(enrolment: Enrolment) -> dict[str, list]:
    fields = ("person_id", "fund", "employer_id", "start_period", "status", "transferred_from")
    return {f: [None, getattr(enrolment, f)] for f in fields if getattr(enrolment, f) is not None}


def _update(session: Session, enrolment: Enrolment, updates: dict[str, Any], *, action: str,
            reason: str | None, now: datetime | None = None) -> AuditEntry:
    """Apply ``updates``, bump the version, keep the history and the audit entry (returned)."""
    changes = diff(enrolment, updates)
    for key, value in updates.items():
        setattr(enrolment, key, value)
    enrolment.version += 1
    enrolment.updated_at = now or clock.utc_now()
    session.add(enrolment)
    return record_change(session, entity_type=ENTITY, entity_id=enrolment.id, version=enrolment.version,
                         action=action, changes=changes, reason=reason)


def _is_active_group_violation(exc: IntegrityError) -> bool:
    text = str(exc.orig)
    # PostgreSQL names the index; SQLite names its columns.
    return "uq_enrolment_active_group" in text or "enrolment.person_id, enrolment.fund_group" in text


def _guarded(session: Session, person_id: str, fund: str, *, ignore: str | None = None) -> None:
    """Flush now; a breach of the one-active-per-group index becomes the 409 the rule check would have
    given, and the transaction is rolled back."""
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        if not _is_active_group_violation(exc):
            raise
        conflict = rules.group_conflict(fund, _enrolments_of(session, person_id), ignore=ignore)
        raise conflict or Conflict("ALREADY_ENROLLED", f"该人员在险种 {fund} 所属组已有有效参保登记") from None


def _event(session: Session, payload: Any, person_id: str) -> None:
    record_event(session, payload, source=SOURCE, subject=person_id)


ACT_TITLES = {"open": "参保登记", "transfer_out": "参保关系转出", "transfer_in": "参保关系转入", "suspend": "暂停参保",
              "resume": "恢复参保", "stop": "停止参保"}


def _file(session: Session, enrolment: Enrolment, action: str, entry: AuditEntry) -> None:
    """The act into the person's dossier and, for an enrolment through an employer, the employer's."""
    dossiers = [(archives.PERSON, enrolment.person_id)]
    if enrolment.employer_id:
        dossiers.append((archives.EMPLOYER, enrolment.employer_id))
    period = f"{enrolment.end_period} 止" if action in ("stop", "transfer_out") else f"{enrolment.start_period} 起"
    archives.file_act(session, dossiers, "enrolment", f"{enrolment.id}/{action}", ACT_TITLES[action],
                      f"{ACT_TITLES[action]}：险种 {enrolment.fund}，{period}，状态 {enrolment.status}", audit=entry,
                      references={"enrolment_id": enrolment.id, "employer_id": enrolment.employer_id})


# -- operations ------------------------------------------------------------------------------------------------------


def enrol(session: Session, request: EnrolmentRequest) -> Enrolment:
    person = _person(session, request.person_id)
    employer = _employer(session, request.employer_id) if request.employer_id else None
    history = _enrolments_of(session, person.id, lock=True)
    rules.check_new_enrolment(person=person, fund=request.fund, employer=employer, active=_open(history))
    rules.check_no_overlap(request.fund, request.start_period, history)
    enrolment = Enrolment(
        id=new_event_id(), person_id=person.id, fund=request.fund, fund_group=fund_group(request.fund),
        employer_id=employer.id if employer else None, start_period=request.start_period, status="active",
        created_at=clock.utc_now(), created_by=context.actor_id(),
    )
    session.add(enrolment)
    _guarded(session, person.id, enrolment.fund)
    entry = record_change(session, entity_type=ENTITY, entity_id=enrolment.id, version=1, action="open",
                          changes=_creation_changes(enrolment))
    _event(session, EnrolmentOpened(enrolment_id=enrolment.id, person_id=person.id, fund=enrolment.fund,
                                    employer_id=enrolment.employer_id, start_period=enrolment.start_period), person.id)
    _guarded(session, person.id, enrolment.fund)
    _file(session, enrolment, "open", entry)
    return enrolment


def transfer(session: Session, enrolment_id: str, request: TransferRequest) -> tuple[Enrolment, Enrolment]:
    """Close the enrolment on the month before ``start_period`` and open one with the new employer, together."""
    old = _locked_enrolment(session, enrolment_id)
    person = _person(session, old.person_id)
    if old.status != "active":
        raise Conflict("ENROLMENT_NOT_ACTIVE", f"参保登记状态为 {old.status}，只有有效的参保登记可以转移")
    if old.employer_id is None:
        raise Conflict("TRANSFER_NOT_APPLICABLE", "城乡居民养老保险不关联单位，不办理单位间转移")
    if request.employer_id == old.employer_id:
        raise Conflict("SAME_EMPLOYER", "转入单位与原参保单位相同")
    employer = _employer(session, request.employer_id)
    others = [e for e in _open(_enrolments_of(session, person.id, lock=True)) if e.id != old.id]
    rules.check_new_enrolment(person=person, fund=old.fund, employer=employer, active=others)
    closed_period = rules.transfer_close_period(old, request.start_period)
    reason = request.reason or f"转移至单位 {employer.id}"
    now = clock.utc_now()  # one instant: the old enrolment closes as the new one opens
    closed = _update(session, old, {"status": "stopped", "end_period": closed_period, "stop_reason": reason[:200]},
                     action="transfer_out", reason=reason, now=now)
    session.flush()  # the old row leaves the active index before the new one enters it
    new = Enrolment(
        id=new_event_id(), person_id=person.id, fund=old.fund, fund_group=old.fund_group, employer_id=employer.id,
        start_period=request.start_period, status="active", transferred_from=old.id,
        created_at=now, created_by=context.actor_id(),
    )
    session.add(new)
    _guarded(session, person.id, old.fund)
    opened = record_change(session, entity_type=ENTITY, entity_id=new.id, version=1, action="transfer_in",
                           changes=_creation_changes(new), reason=reason)
    _event(session, EnrolmentTransferred(
        person_id=person.id, fund=old.fund, from_enrolment_id=old.id, from_employer_id=old.employer_id,
        to_enrolment_id=new.id, to_employer_id=employer.id, closed_period=closed_period,
        start_period=new.start_period,
    ), person.id)
    _guarded(session, person.id, old.fund)
    _file(session, old, "transfer_out", closed)
    _file(session, new, "transfer_in", opened)
    return old, new


def suspend(session: Session, enrolment_id: str, request: SuspendRequest) -> Enrolment:
    enrolment = _locked_enrolment(session, enrolment_id)
    _person(session, enrolment.person_id)
    if enrolment.status != "active":
        raise Conflict("ENROLMENT_NOT_ACTIVE", f"参保登记状态为 {enrolment.status}，只有有效的参保登记可以暂停")
    entry = _update(session, enrolment, {"status": "suspended"}, action="suspend", reason=request.reason)
    _event(session, EnrolmentSuspended(enrolment_id=enrolment.id, person_id=enrolment.person_id, fund=enrolment.fund,
                                       reason=request.reason), enrolment.person_id)
    session.flush()
    _file(session, enrolment, "suspend", entry)
    return enrolment


def resume(session: Session, enrolment_id: str, request: ResumeRequest) -> Enrolment:
    enrolment = _locked_enrolment(session, enrolment_id)
    person = _person(session, enrolment.person_id)
    if enrolment.status != "suspended":
        raise Conflict("ENROLMENT_NOT_SUSPENDED", f"参保登记状态为 {enrolment.status}，只有已暂停的参保登记可以恢复")
    if person.life_status == "deceased":
        raise Conflict("PERSON_DECEASED", "参保人员已死亡，不能恢复参保")
    if enrolment.employer_id is not None:
        rules.check_employer_usable(enrolment.fund, session.get(Employer, enrolment.employer_id))
    conflict = rules.group_conflict(enrolment.fund, _enrolments_of(session, person.id, lock=True), ignore=enrolment.id)
    if conflict is not None:
        raise conflict
    entry = _update(session, enrolment, {"status": "active"}, action="resume", reason=request.reason)
    _guarded(session, person.id, enrolment.fund, ignore=enrolment.id)
    _event(session, EnrolmentResumed(enrolment_id=enrolment.id, person_id=enrolment.person_id, fund=enrolment.fund),
           enrolment.person_id)
    _guarded(session, person.id, enrolment.fund, ignore=enrolment.id)
    _file(session, enrolment, "resume", entry)
    return enrolment


def stop(session: Session, enrolment_id: str, request: StopRequest) -> Enrolment:
    enrolment = _locked_enrolment(session, enrolment_id)
    _person(session, enrolment.person_id)
    if enrolment.status not in rules.OPEN_STATUSES:
        raise Conflict("ENROLMENT_STOPPED", "参保登记已终止")
    rules.check_end_period(enrolment, request.end_period)
    entry = _update(session, enrolment, {"status": "stopped", "end_period": request.end_period,
                                         "stop_reason": request.reason}, action="stop", reason=request.reason)
    _event(session, EnrolmentStopped(enrolment_id=enrolment.id, person_id=enrolment.person_id, fund=enrolment.fund,
                                     end_period=request.end_period, reason=request.reason), enrolment.person_id)
    session.flush()
    _file(session, enrolment, "stop", entry)
    return enrolment


# -- reading ---------------------------------------------------------------------------------------------------------


def get_enrolment(session: Session, enrolment_id: str) -> Enrolment:
    enrolment = session.get(Enrolment, enrolment_id)
    if enrolment is None:
        raise NotFound("ENROLMENT_NOT_FOUND", "参保登记不存在")
    _person(session, enrolment.person_id)
    return enrolment


def _page(session: Session, query: Any, after: str | None, limit: int) -> tuple[list[Enrolment], str | None]:
    return oldest_first(session, query, Enrolment.id, after=after, limit=limit)


def _status_filter(query: Any, status: str | None, fund: str | None) -> Any:
    if status:
        query = query.where(Enrolment.status == status)
    if fund:
        query = query.where(Enrolment.fund == fund)
    return query


def list_for_person(session: Session, person_id: str, *, status: str | None = None, fund: str | None = None,
                    after: str | None = None, limit: int = 50) -> tuple[list[Enrolment], str | None]:
    _person(session, person_id)
    query = _status_filter(select(Enrolment).where(Enrolment.person_id == person_id), status, fund)
    return _page(session, query, after, limit)


def list_for_employer(session: Session, employer_id: str, *, status: str | None = None, fund: str | None = None,
                      after: str | None = None, limit: int = 50) -> tuple[list[Enrolment], str | None]:
    _employer(session, employer_id)
    query = _status_filter(select(Enrolment).where(Enrolment.employer_id == employer_id), status, fund)
    return _page(session, query, after, limit)


# -- online verification (004 第10项: enrolment status and contribution record before a claim) ------------------------


def _check_fund(fund: str | None) -> str:
    if not fund:
        raise Invalid("FUND_REQUIRED", "请指定险种（fund）")
    if fund not in FUNDS:
        raise Invalid("UNKNOWN_FUND", f"险种 {fund} 不存在（可选：{'、'.join(FUNDS)}）")
    return fund


def _person_by_citizen_id(session: Session, citizen_id: str | None) -> Person | None:
    if not citizen_id:
        return None
    person = session.execute(select(Person).where(Person.citizen_id == citizen_id)).scalar_one_or_none()
    if person is not None:
        ensure_in_region(context.current().actor, person.region)
    return person


def _since(session: Session, enrolment: Enrolment) -> int:
    """First month of continuous enrolment: follow ``transferred_from`` back through transfers of the same fund."""
    since, seen, current = enrolment.start_period, {enrolment.id}, enrolment
    while current.transferred_from and current.transferred_from not in seen:
        previous = session.get(Enrolment, current.transferred_from)
        if previous is None or previous.fund != enrolment.fund:
            break
        seen.add(previous.id)
        since, current = min(since, previous.start_period), previous
    return since


def verify_enrolment(session: Session, *, citizen_id: str | None, fund: str | None,
                     period: int | None) -> EnrolmentVerification:
    """Does an enrolment of ``fund`` cover ``period`` (default: this month)? ``enrolled`` says whether one covers
    the month, ``status`` its current state (a stopped enrolment still covers the months up to its end period; a
    suspended one keeps covering until it is stopped). An unknown citizen id answers ``person_found: false``."""
    period = period or period_of(clock.china_today())
    if fund is not None:
        _check_fund(fund)
    person = _person_by_citizen_id(session, citizen_id)
    if person is None:
        return EnrolmentVerification(person_found=False, enrolled=False, fund=fund, period=period)
    fund = _check_fund(fund)
    covering = session.execute(
        select(Enrolment).where(
            Enrolment.person_id == person.id,
            Enrolment.fund == fund,
            Enrolment.start_period <= period,
            or_(Enrolment.end_period >= period, and_(Enrolment.end_period.is_(None), Enrolment.status != "stopped")),
        )
    ).scalars().all()
    answer = EnrolmentVerification(person_found=True, enrolled=False, person_id=person.id, fund=fund, period=period,
                                   life_status=person.life_status)
    if not covering:
        return answer
    rank = {"active": 0, "suspended": 1, "stopped": 2}
    best = min(covering, key=lambda e: (rank.get(e.status, 3), -e.start_period))
    return answer.model_copy(update={
        "enrolled": True, "enrolment_id": best.id, "since_period": _since(session, best),
        "employer_id": best.employer_id, "status": best.status,
    })


def contribution_months(session: Session, *, citizen_id: str | None, fund: str | None,
                        until: int | None) -> ContributionMonthsVerification:
    """Months with a posted contribution (ContributionMonth rows) of ``fund``, up to ``until`` inclusive."""
    if fund is not None:
        _check_fund(fund)
    person = _person_by_citizen_id(session, citizen_id)
    if person is None:
        return ContributionMonthsVerification(person_found=False, fund=fund, until=until, months=0)
    fund = _check_fund(fund)
    query = select(func.count(), func.min(ContributionMonth.period), func.max(ContributionMonth.period)).where(
        ContributionMonth.person_id == person.id, ContributionMonth.fund == fund,
    )
    if until is not None:
        query = query.where(ContributionMonth.period <= until)
    months, first, last = session.execute(query).one()
    return ContributionMonthsVerification(person_found=True, person_id=person.id, fund=fund, until=until,
                                          months=months, first_period=first, last_period=last)
