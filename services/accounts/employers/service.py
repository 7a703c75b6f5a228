"""Employer registry (单位参保登记): the business rules, independent of HTTP.

Every state change writes, in one transaction: the row (version + 1), its change history and audit-chain entry
(``history.record_change``) and its event in the outbox (``outbox.record_event``). Either all of it commits or none.
"""

from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.accounts.employers.schemas import EmployerRegistration, EmployerUpdate, StatusChange
from services.accounts.history import diff, history_of, record_change
from services.accounts.models import Employer, Enrolment
from services.contracts.accounts import EmployerRegistered, EmployerStatusChanged, EmployerUpdated
from services.kernel import archives, clock, context
from services.kernel.auth import ensure_in_region, region_filter
from services.kernel.db import KeyRead
from services.kernel.errors import Conflict, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.models import AuditEntry
from services.kernel.outbox import record_event
from services.kernel.paging import SortKeys
from services.kernel.pii import reveal_bank_account, reveal_citizen_id

SOURCE = "accounts"
ENTITY = "employer"

STATUS_LABELS = {"active": "正常", "suspended": "已暂停", "deregistered": "已注销"}
# action → (allowed current statuses, new status)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "suspend": (frozenset({"active"}), "suspended"),
    "reactivate": (frozenset({"suspended"}), "active"),
    "deregister": (frozenset({"active", "suspended"}), "deregistered"),
}
ACTION_LABELS = {"suspend": "暂停", "reactivate": "恢复", "deregister": "注销"}
# Enrolments that still tie a person to the employer: only stopped ones are finished.
OPEN_ENROLMENT_STATUSES = ("active", "suspended")


def _commit(session: Session, uscc: str) -> None:
    """Flush; a concurrent registration of the same USCC loses on the unique index and is answered as 409."""
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("EMPLOYER_ALREADY_REGISTERED", f"统一社会信用代码 {uscc} 已登记") from None


# -- register --------------------------------------------------------------------------------------------------------


def register_employer(session: Session, registration: EmployerRegistration) -> Employer:
    """Register an employer: the row, its history/audit entry and its event commit together or not at all."""
    actor = context.current().actor
    ensure_in_region(actor, registration.region)
    existing = session.execute(select(Employer).where(Employer.uscc == registration.uscc)).scalar_one_or_none()
    if existing is not None:
        raise Conflict("EMPLOYER_ALREADY_REGISTERED", f"统一社会信用代码 {registration.uscc} 已登记（单位编号 {existing.id}）")
    employer = Employer(
        id=new_event_id(),
        **registration.model_dump(),
        status="active",
        registered_at=clock.utc_now(),
        registered_by=actor.id,
        version=1,
    )
    session.add(employer)
    entry = record_change(session, entity_type=ENTITY, entity_id=employer.id, version=1, action="register",
                          changes={k: [None, v] for k, v in registration.model_dump().items() if v is not None})
    record_event(
        session,
        EmployerRegistered(employer_id=employer.id, uscc=employer.uscc, name=employer.name, region=employer.region,
                           registered_at=employer.registered_at, unit_type=employer.unit_type,
                           industry_risk_class=employer.industry_risk_class),
        source=SOURCE,
        subject=employer.id,
    )
    _commit(session, employer.uscc)
    archives.file_act(session, [(archives.EMPLOYER, employer.id)], "employer_registration", employer.id,
                      "参保单位登记", f"登记参保单位 {employer.name}，统一社会信用代码 {employer.uscc}", audit=entry,
                      registration=(employer.uscc, employer.name, employer.region))
    return employer


# -- read ------------------------------------------------------------------------------------------------------------


def get_employer(session: Session, employer_id: str, *, for_update: bool = False) -> Employer:
    # By primary key: the ORM's cached lookup, a fraction of building and compiling a select per call.
    employer = session.get(Employer, employer_id, with_for_update=True if for_update else None)
    if employer is None:
        raise NotFound("EMPLOYER_NOT_FOUND", "用人单位不存在")
    ensure_in_region(context.current().actor, employer.region)
    return employer


_EMPLOYER_BY_ID = KeyRead(select(Employer.__table__).where(Employer.__table__.c.id == bindparam("employer_id")))


def read_employer(session: Session, employer_id: str) -> Any:
    """One employer as a plain row, for a read that answers it and changes nothing: a key read on the session's
    connection (``services.kernel.db.KeyRead``), without the ORM's object, identity map and change tracking (a third
    of a cheap read's CPU through ``session.get``, bench/gateway_reads.py). The row has the model's attributes."""
    employer = _EMPLOYER_BY_ID.first(session, employer_id=employer_id)
    if employer is None:
        raise NotFound("EMPLOYER_NOT_FOUND", "用人单位不存在")
    ensure_in_region(context.current().actor, employer.region)
    return employer


EMPLOYER_SORT = SortKeys(Employer.id, descending_by_default=False, name=Employer.name, uscc=Employer.uscc,
                         region=Employer.region, unit_type=Employer.unit_type, status=Employer.status,
                         industry_risk_class=Employer.industry_risk_class, registered_at=Employer.registered_at)


def list_employers(
    session: Session, *, uscc: str | None = None, name: str | None = None, after: str | None = None, limit: int = 50,
    sort: str | None = None,
) -> tuple[list[Employer], str | None]:
    # Staff see the employers of their own area only.
    query = (
        select(Employer)
        .where(region_filter(Employer.region))
    )
    if uscc:
        query = query.where(Employer.uscc == uscc.strip().upper())
    if name:
        query = query.where(Employer.name.contains(name.strip(), autoescape=True))
    return EMPLOYER_SORT.page(session, query, sort=sort, after=after, limit=limit)


# Values in change history shown like the live fields: account and id numbers masked unless the role needs them.
_BANK_FIELDS = frozenset({"bank_account_no", "account_no"})
_CITIZEN_FIELDS = frozenset({"citizen_id"})


def _mask_value(field: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if field in _BANK_FIELDS:
        return reveal_bank_account(value)
    if field in _CITIZEN_FIELDS:
        return reveal_citizen_id(value)
    return value


def masked_history(session: Session, entity_type: str, entity_id: str) -> list[dict[str, Any]]:
    """``history.history_of`` with personal numbers masked for the acting role, each entry naming its entity."""
    entries = history_of(session, entity_type, entity_id)
    for entry in entries:
        entry["entity_type"], entry["entity_id"] = entity_type, entity_id
        entry["changes"] = {f: [_mask_value(f, v) for v in pair] for f, pair in entry["changes"].items()}
    return entries


def employer_history(session: Session, employer_id: str) -> list[dict[str, Any]]:
    get_employer(session, employer_id)
    return masked_history(session, ENTITY, employer_id)


# -- update ----------------------------------------------------------------------------------------------------------


def _check_version(employer: Employer, expected: int | None) -> None:
    if expected is not None and expected != employer.version:
        raise Conflict("VERSION_CONFLICT", f"单位信息已被他人修改（当前版本 {employer.version}，请求基于版本 {expected}），请刷新后重试")


def update_employer(session: Session, employer_id: str, update: EmployerUpdate) -> Employer:
    """Change only the fields sent; a request that changes nothing changes nothing (no version, no event)."""
    employer = get_employer(session, employer_id, for_update=True)
    _check_version(employer, update.expected_version)
    if employer.status == "deregistered":
        raise Conflict("EMPLOYER_DEREGISTERED", "单位已注销，不能修改登记信息")
    updates = update.updates()
    if "region" in updates:
        ensure_in_region(context.current().actor, updates["region"])
    bank_name = updates.get("bank_name", employer.bank_name)
    bank_account_no = updates.get("bank_account_no", employer.bank_account_no)
    if (bank_name is None) != (bank_account_no is None):
        raise Invalid("BANK_ACCOUNT_INCOMPLETE", "基本存款账户须同时填写开户银行和银行账号")
    changes = diff(employer, updates)
    if not changes:
        return employer
    for field in changes:
        setattr(employer, field, updates[field])
    employer.version += 1
    employer.updated_at = clock.utc_now()
    entry = record_change(session, entity_type=ENTITY, entity_id=employer.id, version=employer.version,
                          action="update", changes=changes, reason=update.reason)
    record_event(session, EmployerUpdated(employer_id=employer.id, version=employer.version, changes=changes),
                 source=SOURCE, subject=employer.id)
    session.flush()
    _file_change(session, employer, "参保单位变更登记", f"变更 {'、'.join(sorted(changes))}", entry)
    return employer


# -- status ----------------------------------------------------------------------------------------------------------


def open_enrolment_count(session: Session, employer_id: str) -> int:
    return session.execute(
        select(func.count()).select_from(Enrolment)
        .where(Enrolment.employer_id == employer_id, Enrolment.status.in_(OPEN_ENROLMENT_STATUSES))
    ).scalar_one()


def change_status(session: Session, employer_id: str, action: str, request: StatusChange) -> Employer:
    """Suspend (active → suspended), reactivate (suspended → active) or deregister (active/suspended →
    deregistered, final). Deregistration is refused while any enrolment at the employer is not stopped.
    The effective date is today or earlier, not before the registration; the change itself applies at once."""
    allowed_from, new_status = TRANSITIONS[action]
    employer = get_employer(session, employer_id, for_update=True)
    label = ACTION_LABELS[action]
    if employer.status not in allowed_from:
        raise Conflict("INVALID_STATUS_TRANSITION",
                       f"单位当前状态为{STATUS_LABELS.get(employer.status, employer.status)}，不能办理{label}")
    today = clock.china_today()
    effective = request.effective_date or today
    if effective > today:
        raise Invalid("EFFECTIVE_DATE_IN_FUTURE", f"生效日期 {effective.isoformat()} 晚于今天；请在生效当日办理")
    if effective < employer.registered_at.date():
        raise Invalid("EFFECTIVE_DATE_BEFORE_REGISTRATION",
                      f"生效日期 {effective.isoformat()} 早于单位参保登记日期 {employer.registered_at.date().isoformat()}")
    if action == "deregister":
        open_count = open_enrolment_count(session, employer.id)
        if open_count:
            raise Conflict("EMPLOYER_HAS_ACTIVE_ENROLMENTS",
                           f"单位尚有 {open_count} 条未终止的参保登记，须先办理停保或转移后才能注销")
    previous = employer.status
    employer.status = new_status
    employer.version += 1
    employer.updated_at = clock.utc_now()
    entry = record_change(session, entity_type=ENTITY, entity_id=employer.id, version=employer.version,
                          action=action, reason=request.reason,
                          changes={"status": [previous, new_status], "effective_date": [None, effective.isoformat()]})
    record_event(
        session,
        EmployerStatusChanged(employer_id=employer.id, uscc=employer.uscc, status=new_status, previous_status=previous,
                              effective_date=effective, reason=request.reason),
        source=SOURCE,
        subject=employer.id,
    )
    session.flush()
    _file_change(session, employer, f"参保单位{label}",
                 f"{label}，{effective.isoformat()} 起状态为 {STATUS_LABELS.get(new_status, new_status)}", entry)
    return employer


def _file_change(session: Session, employer: Employer, title: str, decision: str, entry: AuditEntry) -> None:
    archives.file_act(session, [(archives.EMPLOYER, employer.id)], "employer_change",
                      f"{employer.id}/v{employer.version}", title, f"{decision}（第 {employer.version} 版）", audit=entry)
