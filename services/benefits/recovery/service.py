"""Recovery of overpayments (追回, 001 第二十九条(四)、第二十九条(五)).

- **Notices.** A recovery notice (追回社会保险待遇告知书) gathers the person's open overpayments — those not on a
  notice yet — with their total and a deadline (``recovery_deadline_days`` after the issue date, eligibility/
  config.py). A clerk issues one with ``POST /recovery/notices``; benefits issues one *automatically*, in the same
  transaction, whenever a death or an imprisonment reveals overpayments (eligibility/service.py), so that no
  overpayment waits for someone to notice it. New overpayments found later go onto a new notice.
- **Recoveries.** Each repayment or offset is a ``Recovery`` row with its method and a unique business key:
  * ``repayment`` — money paid back, recorded by the cashier with the ``Idempotency-Key`` header as its key;
  * ``payroll_offset`` — deducted from a later regular payment of the same person (a *pending* payroll line, for a
    period after the overpaid months and at most ``offset_window_months`` after the notice: 恢复发放后一年内定期待遇);
    payroll deducts what ``offsets_for_lines`` answers from the line it pays;
  * ``one_off_offset`` — deducted from an approved one-off benefit (一次性待遇) of the person;
  * ``individual_account`` — from the individual account balance (个人账户余额), which is only paid out on death:
    the clerk records the *request* (``POST …/individual-account-requests``, an audit entry naming the key the
    accountant uses for the withdrawal in accounts), and once accounts has posted the withdrawal the accountant
    records the offset with the withdrawal entry as its reference.
  An offset's key is derived from the notice, the method and the reference (``<method>#<notice>#<reference>``), so
  the same offset can never be recorded twice; client keys may not contain ``#``. The same key with the same content
  answers the original (``replayed``), with other content 409 ``IDEMPOTENCY_KEY_REUSED``.
- **Never more than owed.** A recovery above what remains on the notice is refused (409 ``OVER_RECOVERY``), as is an
  offset above what is left of the payment it is taken from (409 ``OFFSET_EXCEEDS_PAYMENT``). The notice row is
  locked while a recovery is recorded, so concurrent repayments cannot together exceed it. A notice fully recovered
  becomes ``recovered``.
- **Only what was really deducted counts.** A ``payroll_offset`` is recorded while its line is ``pending``; payroll
  settles it when the bank file is made (payroll/service.py ``issue_bank_file``). Three outcomes:
  * the line is paid net of the offset, or in full by it (``paid`` without a bank line): the month's benefit was due
    and that part of it was applied to the debt instead of paid out — a real recovery (001 第二十九条(五): 以…恢复发放后
    一年内定期待遇…进行抵扣), the offset stands;
  * the line is *held back* (``withheld`` with a ``HELD_…`` reason: entitlement suspended or ended, person now recorded
    dead or imprisoned since approval, 001 第二十七条): the benefit is not paid, so nothing was deducted from anything
    and the offset recovered nothing. ``reverse_payroll_offsets`` *reverses* it in the bank file's transaction: the
    ``Recovery`` row is kept (never deleted) as ``reversed`` with time, actor and reason, its amount is owed again on
    the notice (a notice it had made ``recovered`` is open again — ``escalated`` again if it had been), an audit entry
    records it on the notice and ``RecoveryRecorded`` reports it with ``reversal`` and a negative amount, so the sum
    of a notice's events stays what it has recovered. Another offset can be taken from a later payment, or the money
    repaid;
  * the net line *fails* at the bank and is re-issued: the offset stays. The month's benefit was due; the deduction
    was applied when the file was made, the bank returned only the net, and the re-issue pays that same net (never
    the gross again, never a second deduction), so person and fund end up exactly where a paid net line leaves them.
  Reversed offsets no longer count anywhere (``offsets_for_lines``, what is left of a line to offset).
- **Escalation.** ``POST /recovery/escalations {as_of}`` escalates every open notice of the caller's area whose
  deadline has passed with money remaining (001 第二十九条(五): 由经办机构负责开展稽核检查); ``RecoveryEscalated`` lets
  oversight open a class-5 case. Repayments and offsets are still accepted on an escalated notice.
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.benefits.models import BeneficiaryPerson, Claim, Overpayment, PayrollLine, Recovery, RecoveryNotice
from services.benefits.registry.service import check_region, get_person
from services.contracts.benefits import RecoveryEscalated, RecoveryNoticeIssued, RecoveryRecorded
from services.kernel import clock, context
from services.kernel.auth import region_filter
from services.kernel.settings import get_settings
from services.kernel.audit import append_audit
from services.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.money import fen_to_yuan
from services.kernel.outbox import record_event
from services.kernel.paging import oldest_first
from services.kernel.periods import add_months, period_of

SOURCE = "benefits"
NOTICE_ENTITY = "recovery_notice"
OPEN = ("open", "escalated")
OFFSET_METHODS = ("payroll_offset", "one_off_offset", "individual_account")
RECORDED, REVERSED = "recorded", "reversed"  # Recovery.status
ID_CHUNK = 900  # ids per IN (…)
MAX_KEY_LENGTH = 160
DERIVED_KEY_SEPARATOR = "#"


def _yuan(fen: int) -> str:
    return f"{fen_to_yuan(fen)}"


def remaining_fen(notice: RecoveryNotice) -> int:
    return notice.amount_fen - notice.recovered_fen


# -- notices ---------------------------------------------------------------------------------------------------------


def issue_notice(session: Session, person_id: str, *, today: date | None = None) -> RecoveryNotice:
    """Gather the person's overpayments not yet on a notice into a new notice. Does not commit (the consumer's
    transaction or the endpoint commits)."""
    overpayments = list(session.execute(
        select(Overpayment).where(Overpayment.person_id == person_id, Overpayment.recovery_notice_id.is_(None))
        .order_by(Overpayment.period, Overpayment.id).with_for_update()).scalars())
    if not overpayments:
        raise Conflict("NO_OPEN_OVERPAYMENTS", "该人员没有未纳入追回通知的多发待遇")
    issued_on = today or clock.china_today()
    notice = RecoveryNotice(
        id=new_event_id(), person_id=person_id, amount_fen=sum(o.amount_fen for o in overpayments), recovered_fen=0,
        deadline=issued_on + timedelta(days=get_settings().benefits_upkeep.recovery_deadline_days), status="open",
        issued_at=clock.utc_now(), issued_by=context.actor_id(),
    )
    session.add(notice)
    for overpayment in overpayments:
        overpayment.recovery_notice_id = notice.id
        session.add(overpayment)
    ids = [o.id for o in overpayments]
    append_audit(session, action="recovery_notice.issue", entity_type=NOTICE_ENTITY, entity_id=notice.id,
                 detail={"person_id": person_id, "amount_fen": notice.amount_fen, "deadline": notice.deadline,
                         "overpayment_ids": ids, "periods": [o.period for o in overpayments]},
                 reason="追回社会保险待遇告知书 (001 第二十九条(四))")
    record_event(session, RecoveryNoticeIssued(notice_id=notice.id, person_id=person_id, amount_fen=notice.amount_fen,
                                               deadline=notice.deadline, overpayment_ids=ids),
                 source=SOURCE, subject=notice.id)
    return notice


def create_notice(session: Session, person_id: str) -> RecoveryNotice:
    get_person(session, person_id)  # known, and in the caller's area
    notice = issue_notice(session, person_id)
    session.flush()
    return notice


def get_notice(session: Session, notice_id: str, *, lock: bool = False) -> RecoveryNotice:
    query = select(RecoveryNotice).where(RecoveryNotice.id == notice_id)
    notice = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if notice is None:
        raise NotFound("RECOVERY_NOTICE_NOT_FOUND", "追回通知不存在")
    person = session.get(BeneficiaryPerson, notice.person_id)
    if person is not None:
        check_region(person.region)
    return notice


def notice_details(session: Session, notice: RecoveryNotice) -> tuple[list[Overpayment], list[Recovery]]:
    overpayments = list(session.execute(select(Overpayment).where(Overpayment.recovery_notice_id == notice.id)
                                        .order_by(Overpayment.period, Overpayment.id)).scalars())
    recoveries = list(session.execute(select(Recovery).where(Recovery.notice_id == notice.id)
                                      .order_by(Recovery.recorded_at, Recovery.id)).scalars())
    return overpayments, recoveries


def list_notices(session: Session, *, person_id: str | None, status: str | None, after: str | None,
                 limit: int) -> tuple[list[RecoveryNotice], str | None]:
    query = (select(RecoveryNotice).join(BeneficiaryPerson, BeneficiaryPerson.person_id == RecoveryNotice.person_id)
             .where(region_filter(BeneficiaryPerson.region)))
    if person_id:
        query = query.where(RecoveryNotice.person_id == person_id)
    if status:
        query = query.where(RecoveryNotice.status == status)
    return oldest_first(session, query, RecoveryNotice.id, after=after, limit=limit)


def list_overpayments(session: Session, *, person_id: str | None, open_only: bool, after: str | None,
                      limit: int) -> tuple[list[Overpayment], str | None]:
    query = (select(Overpayment).join(BeneficiaryPerson, BeneficiaryPerson.person_id == Overpayment.person_id)
             .where(region_filter(BeneficiaryPerson.region)))
    if person_id:
        query = query.where(Overpayment.person_id == person_id)
    if open_only:
        query = query.where(Overpayment.recovery_notice_id.is_(None))
    return oldest_first(session, query, Overpayment.id, after=after, limit=limit)


# -- recoveries ------------------------------------------------------------------------------------------------------


@dataclass
class Recorded:
    recovery: Recovery
    notice: RecoveryNotice
    replayed: bool


def check_key(key: str | None) -> str:
    if key is None or not key.strip():
        raise Invalid("IDEMPOTENCY_KEY_REQUIRED", "退款须带 Idempotency-Key 请求头（业务幂等键）")
    key = key.strip()
    if len(key) > MAX_KEY_LENGTH or not key.isprintable() or DERIVED_KEY_SEPARATOR in key:
        raise Invalid("INVALID_IDEMPOTENCY_KEY",
                      f"Idempotency-Key 须为不超过 {MAX_KEY_LENGTH} 个可打印字符，且不含 {DERIVED_KEY_SEPARATOR}")
    return key


def _replay(session: Session, key: str, notice_id: str, method: str, amount_fen: int,
            reference: str | None) -> Recorded | None:
    prior = session.execute(select(Recovery).where(Recovery.idempotency_key == key)).scalar_one_or_none()
    if prior is None:
        return None
    if (prior.notice_id, prior.method, prior.amount_fen, prior.reference) != (notice_id, method, amount_fen, reference):
        raise Conflict("IDEMPOTENCY_KEY_REUSED",
                       f"业务幂等键 {key} 已用于另一笔内容不同的追回记录（{prior.method}，{_yuan(prior.amount_fen)} 元）")
    return Recorded(prior, get_notice(session, prior.notice_id), replayed=True)


def _record(session: Session, notice: RecoveryNotice, *, method: str, amount_fen: int, key: str,
            reference: str | None, detail: dict[str, Any]) -> Recorded:
    """Record one recovery against a locked, open notice, never above what remains; commits."""
    if amount_fen <= 0:
        raise Invalid("INVALID_AMOUNT", "追回金额须大于 0")
    if notice.status not in OPEN:
        raise Conflict("RECOVERY_NOTICE_CLOSED", f"追回通知已{'全部追回' if notice.status == 'recovered' else '核销'}，"
                                                 "不能再登记追回")
    remaining = remaining_fen(notice)
    if amount_fen > remaining:
        raise Conflict("OVER_RECOVERY", f"追回金额 {_yuan(amount_fen)} 元超过尚欠金额 {_yuan(remaining)} 元，不得多追",
                       details={"remaining": _yuan(remaining)})
    recovery = Recovery(id=new_event_id(), notice_id=notice.id, method=method, amount_fen=amount_fen,
                        idempotency_key=key, reference=reference, recorded_at=clock.utc_now(),
                        recorded_by=context.actor_id())
    session.add(recovery)
    notice.recovered_fen += amount_fen
    if notice.recovered_fen == notice.amount_fen:
        notice.status = "recovered"
    session.add(notice)
    append_audit(session, action=f"recovery.{method}", entity_type=NOTICE_ENTITY, entity_id=notice.id,
                 detail={"recovery_id": recovery.id, "person_id": notice.person_id, "method": method,
                         "amount_fen": amount_fen, "remaining_fen": remaining_fen(notice), "reference": reference,
                         **detail})
    record_event(session, RecoveryRecorded(notice_id=notice.id, person_id=notice.person_id, method=method,
                                           amount_fen=amount_fen, remaining_fen=remaining_fen(notice),
                                           recovery_id=recovery.id),
                 source=SOURCE, subject=notice.id)
    try:
        session.flush()
    except IntegrityError:  # the same key recorded concurrently: answer as a replay (or refuse other content)
        session.rollback()
        replay = _replay(session, key, notice.id, method, amount_fen, reference)
        if replay is None:
            raise
        return replay
    return Recorded(recovery, notice, replayed=False)


def record_repayment(session: Session, notice_id: str, *, amount_fen: int, paid_on: date | None,
                     reference: str | None, key: str | None) -> Recorded:
    key = check_key(key)
    replay = _replay(session, key, notice_id, "repayment", amount_fen, reference)
    if replay is not None:
        return replay
    notice = get_notice(session, notice_id, lock=True)
    if paid_on is not None and paid_on > clock.china_today():
        raise Invalid("DATE_IN_FUTURE", f"退款日期 {paid_on} 晚于今天")
    return _record(session, notice, method="repayment", amount_fen=amount_fen, key=key, reference=reference,
                   detail={"paid_on": paid_on})


def _already_offset(session: Session, method: str, reference: str) -> int:
    return session.execute(select(func.coalesce(func.sum(Recovery.amount_fen), 0)).where(
        Recovery.method == method, Recovery.reference == reference, Recovery.status == RECORDED)).scalar_one()


def _not_allowed(message: str) -> Conflict:
    return Conflict("OFFSET_NOT_ALLOWED", message)


def _check_payroll_offset(session: Session, notice: RecoveryNotice, line_id: str, amount_fen: int) -> dict:
    line = session.execute(select(PayrollLine).where(PayrollLine.id == line_id).with_for_update()).scalar_one_or_none()
    if line is None:
        raise NotFound("PAYROLL_LINE_NOT_FOUND", "待遇发放明细不存在")
    if line.person_id != notice.person_id:
        raise _not_allowed("只能抵扣本人的待遇")
    if line.status != "pending":
        raise _not_allowed("只能抵扣尚未制盘发放的待遇（该明细已制盘、已发放或已暂停）")
    overpaid_until = session.execute(select(func.max(Overpayment.period)).where(
        Overpayment.recovery_notice_id == notice.id)).scalar_one() or 0
    window = get_settings().benefits_upkeep.offset_window_months
    window_end = add_months(period_of(notice.issued_at.date()), window)
    if not overpaid_until < line.period <= window_end:
        raise _not_allowed(f"只能抵扣多发月份之后、追回通知下达后 {window} 个月内（至 {window_end}）"
                           "的定期待遇（001 第二十九条(五)）")
    left = line.amount_fen - _already_offset(session, "payroll_offset", line.id)
    if amount_fen > left:
        raise Conflict("OFFSET_EXCEEDS_PAYMENT", f"抵扣金额超过该笔待遇可抵扣的余额 {_yuan(left)} 元")
    return {"payroll_line_id": line.id, "period": line.period}


def _check_one_off_offset(session: Session, notice: RecoveryNotice, claim_id: str, amount_fen: int) -> dict:
    claim = session.get(Claim, claim_id)
    if claim is None:
        raise NotFound("CLAIM_NOT_FOUND", "待遇申请不存在")
    if claim.person_id != notice.person_id:
        raise _not_allowed("只能抵扣本人的一次性待遇")
    if claim.one_off_amount_fen is None or claim.status != "approved":
        raise _not_allowed("只能抵扣已审批的一次性待遇")
    left = claim.one_off_amount_fen - _already_offset(session, "one_off_offset", claim.id)
    if amount_fen > left:
        raise Conflict("OFFSET_EXCEEDS_PAYMENT", f"抵扣金额超过该笔一次性待遇可抵扣的余额 {_yuan(left)} 元")
    return {"claim_id": claim.id, "kind": claim.kind}


def _check_individual_account(session: Session, notice: RecoveryNotice) -> dict:
    person = session.get(BeneficiaryPerson, notice.person_id)
    if person is None or person.life_status != "deceased":
        raise _not_allowed("个人账户余额仅在本人死亡后支取时方可抵扣")
    return {"withdrawal_idempotency_key": withdrawal_key(notice.id)}


OFFSET_ROLES = {"payroll_offset": "agency_clerk", "one_off_offset": "agency_clerk", "individual_account": "accountant"}


def record_offset(session: Session, notice_id: str, *, method: str, amount_fen: int, reference: str) -> Recorded:
    role = OFFSET_ROLES[method]
    actor = context.current().actor
    if role not in actor.roles:
        raise Forbidden("FORBIDDEN", f"{method} 抵扣须由 {role} 办理")
    if actor.role != role:
        context.set_actor(replace(actor, role=role))
    key = f"{method}{DERIVED_KEY_SEPARATOR}{notice_id}{DERIVED_KEY_SEPARATOR}{reference}"
    replay = _replay(session, key, notice_id, method, amount_fen, reference)
    if replay is not None:
        return replay
    notice = get_notice(session, notice_id, lock=True)
    if method == "payroll_offset":
        detail = _check_payroll_offset(session, notice, reference, amount_fen)
    elif method == "one_off_offset":
        detail = _check_one_off_offset(session, notice, reference, amount_fen)
    else:
        detail = _check_individual_account(session, notice)
    return _record(session, notice, method=method, amount_fen=amount_fen, key=key, reference=reference, detail=detail)


def withdrawal_key(notice_id: str) -> str:
    """The Idempotency-Key the accountant uses for the individual-account withdrawal in accounts."""
    return f"recovery-{notice_id}"


def request_individual_account_offset(session: Session, notice_id: str, note: str | None) -> dict:
    """Record that the remaining amount is to be taken from the deceased person's individual account: accounts
    pays the balance out on death (withdrawal, by an accountant there); the offset is recorded here afterwards with
    the withdrawal entry as its reference. An audit entry is the record of the request."""
    notice = get_notice(session, notice_id, lock=True)
    if notice.status not in OPEN:
        raise Conflict("RECOVERY_NOTICE_CLOSED", "追回通知已结清，无需抵扣")
    _check_individual_account(session, notice)
    request = {"notice_id": notice.id, "person_id": notice.person_id, "remaining_fen": remaining_fen(notice),
               "withdrawal_idempotency_key": withdrawal_key(notice.id), "requested_by": context.actor_id(),
               "requested_at": clock.utc_now()}
    append_audit(session, action="recovery.individual_account_request", entity_type=NOTICE_ENTITY,
                 entity_id=notice.id, detail=request, reason=note or "以个人账户余额抵扣多发待遇（001 第二十九条(五)）")
    session.flush()
    return request


def withdraw_overpayment(session: Session, payroll_line_id: str, reason: str) -> Overpayment | None:
    """For payroll: a line counted as overpaid while it was in a bank file came back *failed* — the money never
    left, so it is not owed. The overpayment row is removed (its content kept on the audit chain) and its notice
    reduced; a notice left with nothing owed and nothing recovered is ``written_off``. Refused (409) when more was
    already recovered than would remain owed: that is a refund, decided by a person. Does not commit.
    (No event reports this yet: ``benefits.overpayment.withdrawn.v1`` is wanted for oversight's S01/S02 ledger.)"""
    overpayment = session.execute(select(Overpayment).where(Overpayment.payroll_line_id == payroll_line_id)
                                  .with_for_update()).scalar_one_or_none()
    if overpayment is None:
        return None
    notice = None
    if overpayment.recovery_notice_id is not None:
        notice = session.execute(select(RecoveryNotice).where(RecoveryNotice.id == overpayment.recovery_notice_id)
                                 .with_for_update()).scalar_one()
        owed = notice.amount_fen - overpayment.amount_fen
        if owed < notice.recovered_fen:
            raise Conflict("OVERPAYMENT_ALREADY_RECOVERED",
                           f"该笔多发待遇所在追回通知已追回 {_yuan(notice.recovered_fen)} 元，撤销后仅欠 {_yuan(owed)} 元，"
                           "须人工办理退还")
        notice.amount_fen = owed
        if notice.status in OPEN and notice.recovered_fen == owed:
            notice.status = "recovered" if owed else "written_off"
        session.add(notice)
    append_audit(session, action="overpayment.withdraw", entity_type="overpayment", entity_id=overpayment.id,
                 detail={"person_id": overpayment.person_id, "payroll_line_id": payroll_line_id,
                         "period": overpayment.period, "amount_fen": overpayment.amount_fen,
                         "reason_found": overpayment.reason, "recovery_notice_id": overpayment.recovery_notice_id,
                         "notice_amount_fen": notice.amount_fen if notice else None},
                 reason=reason)
    session.delete(overpayment)
    session.flush()
    return overpayment


def offsets_for_lines(session: Session, line_ids: list[str]) -> dict[str, int]:
    """For payroll: what was offset against each of these pending lines (deduct it from the amount paid); reversed
    offsets do not count."""
    if not line_ids:
        return {}
    rows = session.execute(select(Recovery.reference, func.sum(Recovery.amount_fen)).where(
        Recovery.method == "payroll_offset", Recovery.status == RECORDED, Recovery.reference.in_(line_ids))
        .group_by(Recovery.reference)).all()
    return {reference: int(total) for reference, total in rows}


def reverse_payroll_offsets(session: Session, held: Mapping[str, str]) -> list[Recovery]:
    """For payroll, as the bank file is made: ``held`` maps the payroll lines held back to why (their ``HELD_…``
    reason text). Every offset still ``recorded`` against one of them recovered nothing — the line is never paid, so
    nothing was deducted from any payment — and is reversed: kept as ``reversed`` with time, actor and reason, its
    amount taken off its notice's recovered amount (a ``recovered`` notice is open again, or escalated again if it
    had been escalated), an audit entry on the notice, a ``RecoveryRecorded`` with ``reversal`` and the negative
    amount. Notices are locked in id order (as ``record_offset`` takes them: the notice before the line). Only
    ``recorded`` offsets are touched, so a second call reverses nothing twice. Returns the reversed rows. Does not
    commit (the bank file's transaction does)."""
    if not held:
        return []
    line_ids = sorted(held)
    found: list[Recovery] = []
    for start in range(0, len(line_ids), ID_CHUNK):
        found += session.execute(select(Recovery).where(
            Recovery.method == "payroll_offset", Recovery.status == RECORDED,
            Recovery.reference.in_(line_ids[start:start + ID_CHUNK]))).scalars()
    if not found:
        return []
    notice_ids = sorted({r.notice_id for r in found})
    notices: dict[str, RecoveryNotice] = {}
    for start in range(0, len(notice_ids), ID_CHUNK):
        notices.update((n.id, n) for n in session.execute(
            select(RecoveryNotice).where(RecoveryNotice.id.in_(notice_ids[start:start + ID_CHUNK]))
            .order_by(RecoveryNotice.id).with_for_update().execution_options(populate_existing=True)).scalars())
    at, actor = clock.utc_now(), context.actor_id()
    for recovery in sorted(found, key=lambda r: (r.notice_id, r.recorded_at, r.id)):
        notice = notices[recovery.notice_id]
        reason = (f"{held[recovery.reference]}；该笔待遇未发放，抵扣未实际发生，撤销抵扣、重新计入尚欠金额"
                  "（001 第二十九条(五)）")[:300]
        previous_status = notice.status
        notice.recovered_fen -= recovery.amount_fen
        if notice.status == "recovered":
            notice.status = "escalated" if notice.escalated_at is not None else "open"
        session.add(notice)
        recovery.status, recovery.reversed_at, recovery.reversed_by = REVERSED, at, actor
        recovery.reversal_reason = reason
        session.add(recovery)
        append_audit(session, action="recovery.reverse", entity_type=NOTICE_ENTITY, entity_id=notice.id,
                     detail={"recovery_id": recovery.id, "person_id": notice.person_id, "method": recovery.method,
                             "amount_fen": recovery.amount_fen, "payroll_line_id": recovery.reference,
                             "recorded_at": recovery.recorded_at, "recorded_by": recovery.recorded_by,
                             "recovered_fen": notice.recovered_fen, "remaining_fen": remaining_fen(notice),
                             "notice_status": notice.status, "previous_notice_status": previous_status},
                     reason=reason)
        record_event(session, RecoveryRecorded(
            notice_id=notice.id, person_id=notice.person_id, method=recovery.method, amount_fen=-recovery.amount_fen,
            remaining_fen=remaining_fen(notice), recovery_id=recovery.id, reversal=True, reason=reason,
        ), source=SOURCE, subject=notice.id)
    session.flush()
    return found


# -- escalation ------------------------------------------------------------------------------------------------------


def escalate(session: Session, as_of: date) -> list[RecoveryNotice]:
    if as_of > clock.china_today():
        raise Invalid("DATE_IN_FUTURE", f"检查日期 {as_of} 晚于今天")
    notices = list(session.execute(
        select(RecoveryNotice).join(BeneficiaryPerson, BeneficiaryPerson.person_id == RecoveryNotice.person_id)
        .where(RecoveryNotice.status == "open", RecoveryNotice.deadline < as_of,
               RecoveryNotice.recovered_fen < RecoveryNotice.amount_fen, region_filter(BeneficiaryPerson.region))
        .order_by(RecoveryNotice.id).with_for_update()).scalars())
    at = clock.utc_now()
    for notice in notices:
        notice.status, notice.escalated_at = "escalated", at
        session.add(notice)
        append_audit(session, action="recovery_notice.escalate", entity_type=NOTICE_ENTITY, entity_id=notice.id,
                     detail={"person_id": notice.person_id, "remaining_fen": remaining_fen(notice),
                             "deadline": notice.deadline, "as_of": as_of},
                     reason="逾期未退还多领待遇，转稽核检查（001 第二十九条(五)）")
        record_event(session, RecoveryEscalated(notice_id=notice.id, person_id=notice.person_id,
                                                remaining_fen=remaining_fen(notice), deadline=notice.deadline),
                     source=SOURCE, subject=notice.id)
    session.flush()
    return notices
