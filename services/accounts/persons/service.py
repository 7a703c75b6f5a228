"""Person registry (参保人员登记): the business rules, independent of HTTP.

Every state change writes, in one transaction: the row (version + 1 where the table has one), its change history
and audit-chain entry (``history.record_change``) and its event in the outbox (``outbox.record_event``).

Life status (alive / deceased / imprisoned) never changes through a plain edit. It changes only through
``LifeStatusWrites`` (what a change writes, for a whole partner batch of the inter-department exchange feed) and
``apply_life_status`` (a batch of one, for an approved life-status correction).
"""

import json
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from services.accounts.employers.service import masked_history
from services.accounts.history import diff, record_change
from services.accounts.models import (
    ChangeHistory,
    Enrolment,
    LifeEvent,
    LifeStatusCorrection,
    Person,
    PersonBankAccount,
)
from services.accounts.persons.identity import derive_and_check
from services.accounts.persons.schemas import (
    BankAccountClose,
    BankAccountIn,
    CorrectionDecision,
    LifeStatusCorrectionIn,
    PersonRegistration,
    PersonUpdate,
)
from services.contracts.accounts import (
    PersonBankAccountAdded,
    PersonBankAccountClosed,
    PersonLifeStatusChanged,
    PersonRegistered,
    PersonUpdated,
)
from services.contracts.codes import LifeStatus
from services.kernel import archives, clock, context
from services.kernel.audit import append_audit_many
from services.kernel.models import AuditEntry
from services.kernel.auth import ensure_in_region, region_filter
from services.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.outbox import record_event, record_events
from services.kernel.paging import SortKeys, newest_first

SOURCE = "accounts"
ENTITY = "person"
BANK_ENTITY = "person_bank_account"
CORRECTION_ENTITY = "life_status_correction"

LIFE_STATUSES = tuple(LifeStatus)
LIFE_STATUS_SOURCES = ("exchange", "correction")
STATUS_LABELS = {"alive": "正常", "deceased": "死亡", "imprisoned": "服刑"}



# -- register and read -----------------------------------------------------------------------------------------------


def register_person(session: Session, registration: PersonRegistration) -> Person:
    """Register a person; sex and birth date are derived from the citizen id and checked against any declaration."""
    ensure_in_region(context.current().actor, registration.region)
    sex, birth_date = derive_and_check(registration.citizen_id, declared_sex=registration.sex,
                                       declared_birth_date=registration.birth_date)
    existing = session.execute(
        select(Person.id).where(Person.citizen_id == registration.citizen_id)
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict("PERSON_ALREADY_REGISTERED", f"该公民身份号码已登记（人员编号 {existing}）")
    fields = registration.model_dump(exclude={"sex", "birth_date"})
    person = Person(id=new_event_id(), **fields, sex=sex, birth_date=birth_date, life_status="alive",
                    registered_at=clock.utc_now(), registered_by=context.actor_id(), version=1)
    session.add(person)
    changes = {k: [None, v] for k, v in fields.items() if v is not None}
    changes |= {"sex": [None, sex], "birth_date": [None, birth_date.isoformat()], "life_status": [None, "alive"]}
    entry = record_change(session, entity_type=ENTITY, entity_id=person.id, version=1, action="register",
                          changes=changes)
    record_event(
        session,
        PersonRegistered(person_id=person.id, citizen_id=person.citizen_id, name=person.name, sex=sex,
                         birth_date=birth_date, region=person.region, household_type=person.household_type,
                         registered_at=person.registered_at),
        source=SOURCE, subject=person.id,
    )
    try:
        session.flush()
    except IntegrityError:  # a concurrent registration of the same citizen id won the unique index
        session.rollback()
        raise Conflict("PERSON_ALREADY_REGISTERED", "该公民身份号码已登记") from None
    archives.file_act(session, [(archives.PERSON, person.id)], "person_registration", person.id, "参保人员登记",
                      f"登记参保人员 {person.name}，参保地 {person.region}", audit=entry,
                      registration=(person.citizen_id, person.name, person.region))
    return person


def get_person(session: Session, person_id: str, *, for_update: bool = False) -> Person:
    """The person, if the caller's region covers theirs (404 if unknown, 403 OUT_OF_REGION if elsewhere)."""
    query = select(Person).where(Person.id == person_id)
    if for_update:
        query = query.with_for_update()
    person = session.execute(query).scalar_one_or_none()
    if person is None:
        raise NotFound("PERSON_NOT_FOUND", "参保人员不存在")
    ensure_in_region(context.current().actor, person.region)
    return person


def bank_accounts_of(session: Session, person_id: str) -> list[PersonBankAccount]:
    return list(session.execute(
        select(PersonBankAccount).where(PersonBankAccount.person_id == person_id)
        .order_by(PersonBankAccount.added_at, PersonBankAccount.id)
    ).scalars())


def list_bank_accounts(session: Session, person_id: str) -> list[PersonBankAccount]:
    get_person(session, person_id)
    return bank_accounts_of(session, person_id)


PERSON_SORT = SortKeys(Person.id, descending_by_default=False, name=Person.name, birth_date=Person.birth_date,
                       region=Person.region, life_status=Person.life_status, registered_at=Person.registered_at,
                       sex=Person.sex)


def search_persons(
    session: Session, *, citizen_id: str | None = None, name: str | None = None, employer_id: str | None = None,
    after: str | None = None, limit: int = 50, sort: str | None = None,
) -> tuple[list[Person], str | None]:
    """Persons of the caller's area by citizen id (exact), name (contains) or employer (an active enrolment
    there), ordered by id or by ``sort`` (PERSON_SORT); ``after`` is the cursor from the previous page."""
    query = (
        select(Person)
        .where(region_filter(Person.region))
    )
    if citizen_id:
        query = query.where(Person.citizen_id == citizen_id.strip().upper())
    if name:
        query = query.where(Person.name.contains(name.strip(), autoescape=True))
    if employer_id:
        query = query.where(Person.id.in_(
            select(Enrolment.person_id).where(Enrolment.employer_id == employer_id, Enrolment.status == "active")
        ))
    return PERSON_SORT.page(session, query, sort=sort, after=after, limit=limit)


def person_history(session: Session, person_id: str) -> list[dict[str, Any]]:
    """The person's own changes with those of their bank accounts and life-status corrections, oldest first."""
    get_person(session, person_id)
    entries = masked_history(session, ENTITY, person_id)
    for account_id in session.execute(
        select(PersonBankAccount.id).where(PersonBankAccount.person_id == person_id)
    ).scalars():
        entries += masked_history(session, BANK_ENTITY, account_id)
    for correction_id in session.execute(
        select(LifeStatusCorrection.id).where(LifeStatusCorrection.person_id == person_id)
    ).scalars():
        entries += masked_history(session, CORRECTION_ENTITY, correction_id)
    entries.sort(key=lambda e: e["changed_at"])  # stable: same-instant entries keep their order
    return entries


# -- update ----------------------------------------------------------------------------------------------------------


def update_person(session: Session, person_id: str, update: PersonUpdate) -> Person:
    """Contact details only (phone, address, household type, nationality). Identity fields and life status are
    refused by the schema before this runs. A request that changes nothing changes nothing."""
    person = get_person(session, person_id, for_update=True)
    if update.expected_version is not None and update.expected_version != person.version:
        raise Conflict("VERSION_CONFLICT",
                       f"人员信息已被他人修改（当前版本 {person.version}，请求基于版本 {update.expected_version}），请刷新后重试")
    updates = update.updates()
    changes = diff(person, updates)
    if not changes:
        return person
    for field in changes:
        setattr(person, field, updates[field])
    person.version += 1
    person.updated_at = clock.utc_now()
    entry = record_change(session, entity_type=ENTITY, entity_id=person.id, version=person.version,
                          action="update", changes=changes, reason=update.reason)
    record_event(session, PersonUpdated(person_id=person.id, version=person.version, changes=changes),
                 source=SOURCE, subject=person.id)
    session.flush()
    archives.file_act(session, [(archives.PERSON, person.id)], "person_change", f"{person.id}/v{person.version}",
                      "参保人员信息变更", f"变更 {'、'.join(sorted(changes))}（第 {person.version} 版）", audit=entry)
    return person


# -- bank accounts and social security cards -------------------------------------------------------------------------


def add_bank_account(session: Session, person_id: str, account: BankAccountIn) -> PersonBankAccount:
    """Benefits are paid only to the person's own bank account or social security card (000 二(三)): the holder
    must be the person, and one account cannot be registered for two persons."""
    person = get_person(session, person_id, for_update=True)
    if person.life_status == "deceased":
        raise Conflict("PERSON_DECEASED", "参保人员已死亡，不能新增待遇发放账户")
    if account.holder_name != person.name:
        raise Invalid(
            "ACCOUNT_HOLDER_MISMATCH",
            f"户名「{account.holder_name}」与参保人员姓名「{person.name}」不一致：社会保险待遇只能发放到本人的"
            "银行账户或社会保障卡，不得发放到他人账户（000 二(三)）",
        )
    same = session.execute(
        select(PersonBankAccount).where(PersonBankAccount.person_id == person.id,
                                        PersonBankAccount.account_no == account.account_no)
    ).scalar_one_or_none()
    if same is not None:
        state = "（已关闭，不能重复登记）" if same.status == "closed" else ""
        raise Conflict("BANK_ACCOUNT_ALREADY_REGISTERED", f"该账号已登记为本人的发放账户{state}（账户编号 {same.id}）")
    elsewhere = session.execute(
        select(PersonBankAccount.id).where(PersonBankAccount.account_no == account.account_no,
                                           PersonBankAccount.person_id != person.id,
                                           PersonBankAccount.status == "active").limit(1)
    ).scalar_one_or_none()
    if elsewhere is not None:
        raise Conflict("BANK_ACCOUNT_HELD_BY_ANOTHER_PERSON", "该账号已登记为其他参保人员的发放账户，一个账户不能用于两人")
    if account.kind == "ss_card":
        card = session.execute(
            select(PersonBankAccount.id).where(PersonBankAccount.person_id == person.id,
                                               PersonBankAccount.kind == "ss_card",
                                               PersonBankAccount.status == "active").limit(1)
        ).scalar_one_or_none()
        if card is not None:
            raise Conflict("SS_CARD_ALREADY_ACTIVE", f"本人已有在用的社会保障卡（账户编号 {card}），须先关闭旧卡")
    row = PersonBankAccount(id=new_event_id(), person_id=person.id, **account.model_dump(), status="active",
                            added_at=clock.utc_now(), added_by=context.actor_id())
    session.add(row)
    record_change(session, entity_type=BANK_ENTITY, entity_id=row.id, version=1, action="add",
                  changes={k: [None, v] for k, v in account.model_dump().items()} | {"status": [None, "active"]})
    record_event(
        session,
        PersonBankAccountAdded(person_id=person.id, bank_account_id=row.id, kind=row.kind, bank_name=row.bank_name,
                               account_no=row.account_no, holder_name=row.holder_name),
        source=SOURCE, subject=person.id,
    )
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("BANK_ACCOUNT_ALREADY_REGISTERED", "该账号已登记为本人的发放账户") from None
    return row


def close_bank_account(session: Session, person_id: str, account_id: str, request: BankAccountClose) -> PersonBankAccount:
    get_person(session, person_id)
    row = session.execute(
        select(PersonBankAccount).where(PersonBankAccount.id == account_id).with_for_update()
    ).scalar_one_or_none()
    if row is None or row.person_id != person_id:
        raise NotFound("BANK_ACCOUNT_NOT_FOUND", "该人员没有此发放账户")
    if row.status != "active":
        raise Conflict("BANK_ACCOUNT_ALREADY_CLOSED", "该发放账户已关闭")
    row.status, row.closed_at = "closed", clock.utc_now()
    record_change(session, entity_type=BANK_ENTITY, entity_id=row.id, version=2, action="close",
                  changes={"status": ["active", "closed"]}, reason=request.reason)
    record_event(session, PersonBankAccountClosed(person_id=person_id, bank_account_id=row.id, reason=request.reason),
                 source=SOURCE, subject=person_id)
    session.flush()
    return row


# -- life status -----------------------------------------------------------------------------------------------------


def check_life_status(person: Person, *, new_status: str, death_date: date | None, imprisoned_from: date | None,
                      imprisoned_until: date | None, today: date | None = None) -> None:
    """Raise a 422 DomainError if the target state is impossible: a status needs its own dates and no others;
    death and the start of imprisonment are not in the future and not before birth; release not before arrest."""
    today = today or clock.china_today()
    if new_status not in LIFE_STATUSES:
        raise Invalid("INVALID_LIFE_STATUS", f"生存状态 {new_status} 无效（可选：{'、'.join(LIFE_STATUSES)}）")
    if new_status == "deceased":
        if death_date is None:
            raise Invalid("DEATH_DATE_REQUIRED", "死亡状态须填写死亡日期")
        if death_date > today:
            raise Invalid("DEATH_DATE_IN_FUTURE", f"死亡日期 {death_date.isoformat()} 晚于今天")
        if death_date < person.birth_date:
            raise Invalid("DEATH_DATE_BEFORE_BIRTH", f"死亡日期 {death_date.isoformat()} 早于出生日期")
    elif death_date is not None:
        raise Invalid("DEATH_DATE_NOT_APPLICABLE", "只有死亡状态才能填写死亡日期")
    if new_status == "imprisoned" and imprisoned_from is None:
        raise Invalid("IMPRISONMENT_DATE_REQUIRED", "服刑状态须填写服刑起始日期")
    if imprisoned_until is not None and imprisoned_from is None:
        raise Invalid("IMPRISONMENT_DATE_REQUIRED", "填写服刑截止日期时须同时填写服刑起始日期")
    if imprisoned_from is not None:
        if imprisoned_from > today:
            raise Invalid("IMPRISONMENT_DATE_IN_FUTURE", f"服刑起始日期 {imprisoned_from.isoformat()} 晚于今天")
        if imprisoned_from < person.birth_date:
            raise Invalid("IMPRISONMENT_DATE_BEFORE_BIRTH", "服刑起始日期早于出生日期")
        if imprisoned_until is not None and imprisoned_until < imprisoned_from:
            raise Invalid("IMPRISONMENT_END_BEFORE_START", "服刑截止日期早于起始日期")
        if new_status == "alive" and (imprisoned_until is None or imprisoned_until > today):
            raise Invalid("RELEASE_DATE_REQUIRED", "恢复正常状态时须填写已到的服刑截止（释放）日期")


def life_status_changes(person: Person, *, new_status: str, death_date: date | None, imprisoned_from: date | None,
                        imprisoned_until: date | None) -> dict[str, list]:
    return diff(person, {"life_status": new_status, "death_date": death_date, "imprisoned_from": imprisoned_from,
                         "imprisoned_until": imprisoned_until})


class LifeStatusWrites:
    """Life-status changes, collected and then written together by ``flush``: the one definition of what a change
    writes, for one person (``apply_life_status``, a batch of one) or thousands (the exchange's partner batches).

    Per changed person: the row (``life_status``, the three dates, version + 1, ``updated_at``), one
    ``change_history`` row and one audit entry ``person.life_status_change`` (reason ``"<source> <source_ref>"``)
    and ``PersonLifeStatusChanged`` in the outbox. ``flush`` writes them in a few statements: one ``UPDATE person``
    executemany, one ``change_history`` insert, the audit entries under one lock of the chain's head
    (``append_audit_many``), the events in one outbox insert (``record_events``, in the order recorded). The
    in-memory ``Person`` is kept current at once (without making it dirty for the ORM), so a later change of the
    same person, before or after ``flush``, starts from this one. Never commits."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._clear()

    def _clear(self) -> None:
        self.persons: dict[str, dict[str, Any]] = {}  # person id → the row's final values since the last flush
        self.history: list[dict[str, Any]] = []
        self.audit: list[dict[str, Any]] = []
        self.events: list[tuple[Any, str]] = []  # (payload, subject), in order
        # Archive items of changes from the exchange feed, each with the index of its audit entry in ``audit``.
        self.archive: list[tuple[int, archives.ArchiveItem]] = []

    def change(self, person: Person, *, new_status: str, death_date: date | None = None,
               imprisoned_from: date | None = None, imprisoned_until: date | None = None, source: str,
               source_ref: str) -> dict[str, list]:
        """Change ``person``'s life status to the target state; the changes ``{field: [before, after]}``.

        Contract:

        - The target state is given in full: ``life_status``, ``death_date``, ``imprisoned_from`` and
          ``imprisoned_until`` are set to exactly the values passed, and an omitted date is cleared. To keep a
          date, pass the current one. For example
            * death reported:  ``new_status="deceased", death_date=d`` (pass ``person.imprisoned_from/until`` to
              keep a known imprisonment);
            * imprisonment:    ``new_status="imprisoned", imprisoned_from=f, imprisoned_until=u_or_None``;
            * release:         ``new_status="alive", imprisoned_from=person.imprisoned_from,
              imprisoned_until=released_on``.
        - The target is checked by ``check_life_status`` (a DomainError with status 422 and a stable code, e.g.
          DEATH_DATE_IN_FUTURE); nothing is collected then.
        - If the person is already in exactly that state, nothing is collected and ``{}`` is returned (a repeated
          feed line is harmless).
        - ``source`` is ``"exchange"`` or ``"correction"``; ``source_ref`` the exchange record id or correction id.
        - The CALLER loads ``person`` in the same session (preferably ``with_for_update()``), writes its own
          ``LifeEvent`` row, calls ``flush`` and commits. No region check here (the exchange feed is not bound
          to one district).
        """
        if source not in LIFE_STATUS_SOURCES:
            raise ValueError(f"life status source must be one of {LIFE_STATUS_SOURCES}, not {source!r}")
        target = {"new_status": new_status, "death_date": death_date, "imprisoned_from": imprisoned_from,
                  "imprisoned_until": imprisoned_until}
        check_life_status(person, **target)
        changes = life_status_changes(person, **target)
        if not changes:
            return {}
        previous = person.life_status
        now = clock.utc_now()
        values = {"life_status": new_status, "death_date": death_date, "imprisoned_from": imprisoned_from,
                  "imprisoned_until": imprisoned_until, "version": person.version + 1, "updated_at": now}
        for field, value in values.items():
            set_committed_value(person, field, value)
        self.persons[person.id] = {"_id": person.id, **values}
        reason = f"{source} {source_ref}"
        ctx = context.current()
        self.history.append({
            "entity_type": ENTITY, "entity_id": person.id, "version": person.version, "action": "life_status_change",
            "changes": json.dumps(changes, ensure_ascii=False, sort_keys=True), "reason": reason,
            "changed_at": now, "changed_by": ctx.actor.id, "request_id": ctx.request_id,
        })
        self.audit.append({"action": f"{ENTITY}.life_status_change", "entity_type": ENTITY, "entity_id": person.id,
                           "detail": {"version": person.version, "changes": changes}, "reason": reason})
        if source == "exchange":  # an approved correction files its own item (approve_correction)
            self.archive.append((len(self.audit) - 1, archives.act(
                archives.PERSON, person.id, "exchange_record", source_ref, "部门共享数据：生存状态变更",
                f"{STATUS_LABELS.get(previous, previous)} → {STATUS_LABELS.get(new_status, new_status)}",
                references={"exchange_record_id": source_ref},
                registration=(person.citizen_id, person.name, person.region))))
        self.event(PersonLifeStatusChanged(
            person_id=person.id, citizen_id=person.citizen_id, life_status=new_status, previous_status=previous,
            death_date=death_date, imprisoned_from=imprisoned_from, imprisoned_until=imprisoned_until,
            source=source, source_ref=source_ref,
        ), subject=person.id)
        return changes

    def event(self, payload: Any, *, subject: str) -> None:
        """An event of the same transaction, in order with the life-status events and written in the same outbox
        insert (a caller's own facts about the change, e.g. the exchange's ``exchange.person.died``)."""
        self.events.append((payload, subject))

    def flush(self) -> None:
        session = self.session
        if self.persons:
            table = Person.__table__
            session.execute(
                update(table).where(table.c.id == bindparam("_id")).values(
                    {name: bindparam(name) for name in ("life_status", "death_date", "imprisoned_from",
                                                        "imprisoned_until", "version", "updated_at")}),
                list(self.persons.values()),
            )
        if self.history:  # Core insert, not ORM bulk (which splits the rows wherever their NULLs differ)
            session.execute(insert(ChangeHistory.__table__), self.history)
        append_audit_many(session, self.audit)
        record_events(session, self.events, source=SOURCE)
        if self.archive:
            positions = archives.latest_positions(session, len(self.audit))
            archives.file_items(session, [replace(item, audit_seq=positions[index][0],
                                                  audit_hash=positions[index][1]) for index, item in self.archive])
        self._clear()


def apply_life_status(session: Session, person: Person, *, new_status: str, death_date: date | None = None,
                      imprisoned_from: date | None = None, imprisoned_until: date | None = None, source: str,
                      source_ref: str) -> dict[str, list]:
    """The one way a person's life status changes, for one person: ``LifeStatusWrites.change`` (its contract)
    written at once, a batch of one. Used by approved corrections; the exchange feed uses ``LifeStatusWrites``
    for a whole partner batch. Never commits."""
    writes = LifeStatusWrites(session)
    changes = writes.change(person, new_status=new_status, death_date=death_date, imprisoned_from=imprisoned_from,
                            imprisoned_until=imprisoned_until, source=source, source_ref=source_ref)
    writes.flush()
    return changes


# -- life status corrections (后台修改: request by a clerk, decision by a different reviewer) --------------------------


def request_correction(session: Session, person_id: str, request: LifeStatusCorrectionIn) -> LifeStatusCorrection:
    person = get_person(session, person_id, for_update=True)
    target = {"new_status": request.new_status, "death_date": request.death_date,
              "imprisoned_from": request.imprisoned_from, "imprisoned_until": request.imprisoned_until}
    check_life_status(person, **target)
    if not life_status_changes(person, **target):
        raise Conflict("CORRECTION_CHANGES_NOTHING", "更正内容与人员当前生存状态一致，无需更正")
    pending = session.execute(
        select(LifeStatusCorrection.id).where(LifeStatusCorrection.person_id == person.id,
                                              LifeStatusCorrection.status == "requested").limit(1)
    ).scalar_one_or_none()
    if pending is not None:
        raise Conflict("CORRECTION_ALREADY_PENDING", f"该人员已有待审核的生存状态更正（{pending}），须先审核")
    correction = LifeStatusCorrection(
        id=new_event_id(), person_id=person.id, **target, reason=request.reason, evidence=request.evidence,
        status="requested", requested_at=clock.utc_now(), requested_by=context.actor_id(),
    )
    session.add(correction)
    changes = {k: [None, v.isoformat() if isinstance(v, date) else v] for k, v in target.items() if v is not None}
    changes |= {"status": [None, "requested"], "current_life_status": [None, person.life_status]}
    record_change(session, entity_type=CORRECTION_ENTITY, entity_id=correction.id, version=1, action="request",
                  changes=changes, reason=request.reason)
    session.flush()
    return correction


def list_corrections(session: Session, person_id: str) -> list[LifeStatusCorrection]:
    get_person(session, person_id)
    return list(session.execute(
        select(LifeStatusCorrection).where(LifeStatusCorrection.person_id == person_id)
        .order_by(LifeStatusCorrection.requested_at, LifeStatusCorrection.id)
    ).scalars())


def correction_queue(session: Session, *, status: str | None, new_status: str | None, requested_by: str | None,
                     exclude_mine: bool, after: str | None, limit: int) -> tuple[list[tuple[LifeStatusCorrection, Person]],
                                                                              str | None]:
    """Life-status corrections of every person of the caller's area, newest first: by default those waiting for a
    second person (004 第24项); ``exclude_mine`` leaves out the caller's own requests (which they may not decide)."""
    query = (select(LifeStatusCorrection, Person).join(Person, Person.id == LifeStatusCorrection.person_id)
             .where(region_filter(Person.region)))
    if status:
        query = query.where(LifeStatusCorrection.status == status)
    if new_status:
        query = query.where(LifeStatusCorrection.new_status == new_status)
    if requested_by:
        query = query.where(LifeStatusCorrection.requested_by == requested_by)
    if exclude_mine:
        query = query.where(LifeStatusCorrection.requested_by != context.actor_id())
    return newest_first(session, query, LifeStatusCorrection.id, after=after, limit=limit, rows=True)


def _pending_correction(session: Session, person_id: str, correction_id: str) -> LifeStatusCorrection:
    correction = session.execute(
        select(LifeStatusCorrection).where(LifeStatusCorrection.id == correction_id).with_for_update()
    ).scalar_one_or_none()
    if correction is None or correction.person_id != person_id:
        raise NotFound("CORRECTION_NOT_FOUND", "该人员没有此生存状态更正申请")
    if correction.status != "requested":
        raise Conflict("CORRECTION_ALREADY_DECIDED", f"该更正申请已{'批准' if correction.status == 'approved' else '驳回'}")
    if correction.requested_by == context.actor_id():
        raise Forbidden("SAME_PERSON_CANNOT_APPROVE", "申请人不能审核本人提交的更正申请（同一业务不得由一人兼任两个环节）")
    return correction


def approve_correction(session: Session, person_id: str, correction_id: str,
                       decision: CorrectionDecision) -> LifeStatusCorrection:
    """On approval, in one transaction: the person's life status and dates (``apply_life_status``), a LifeEvent
    of kind ``corrected``, the correction's decision with its history and audit, and PersonLifeStatusChanged."""
    person = get_person(session, person_id, for_update=True)
    correction = _pending_correction(session, person_id, correction_id)
    changes = apply_life_status(session, person, new_status=correction.new_status, death_date=correction.death_date,
                                imprisoned_from=correction.imprisoned_from,
                                imprisoned_until=correction.imprisoned_until, source="correction",
                                source_ref=correction.id)
    if not changes:
        raise Conflict("CORRECTION_CHANGES_NOTHING", "人员当前生存状态已与更正内容一致（可能已由共享数据更新），请驳回该申请")
    now = clock.utc_now()
    event_date = {"deceased": correction.death_date, "imprisoned": correction.imprisoned_from}.get(
        correction.new_status) or now.date()
    session.add(LifeEvent(
        id=new_event_id(), person_id=person.id, kind="corrected", event_date=event_date,
        until_date=correction.imprisoned_until, source="correction", source_ref=correction.id, recorded_at=now,
    ))
    entry = _decide(session, correction, "approved", decision.reason, now)
    session.flush()
    archives.file_act(session, [(archives.PERSON, person.id)], "correction", correction.id, "生存状态更正",
                      f"更正为 {STATUS_LABELS.get(correction.new_status, correction.new_status)}"
                      f"（申请人 {correction.requested_by}，审核通过）", audit=entry,
                      references={"correction_id": correction.id})
    return correction


def reject_correction(session: Session, person_id: str, correction_id: str,
                      decision: CorrectionDecision) -> LifeStatusCorrection:
    if not decision.reason:
        raise Invalid("DECISION_REASON_REQUIRED", "驳回更正申请须填写审核意见")
    get_person(session, person_id, for_update=True)
    correction = _pending_correction(session, person_id, correction_id)
    _decide(session, correction, "rejected", decision.reason, clock.utc_now())
    session.flush()
    return correction


def _decide(session: Session, correction: LifeStatusCorrection, status: str, reason: str | None,
            now: datetime) -> AuditEntry:
    correction.status, correction.decided_at = status, now
    correction.decided_by, correction.decision_reason = context.actor_id(), reason
    return record_change(session, entity_type=CORRECTION_ENTITY, entity_id=correction.id, version=2,
                  action="approve" if status == "approved" else "reject",
                  changes={"status": ["requested", status]}, reason=reason)
