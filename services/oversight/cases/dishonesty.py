"""The dishonesty list (严重失信人名单, 001 第三十条): persons and employers confirmed in serious cases, reported onwards
for joint punishment (联合惩戒).

- **Who qualifies.** The subject must be the case's person or employer, and the case must be *confirmed*
  (classified, rectifying or closed — not merely issued, never dismissed) and *serious*: class 6 (suspected fraud),
  or class 4 or 5 with an amount involved of at least ``SIFUND_OVERSIGHT_SERIOUS_AMOUNT_FEN`` (*default* 10 000
  yuan).
- **Who decides.** An oversight officer adds an entry with a reason; another officer (not the one who added it)
  removes it with a reason. One active entry per subject; removed entries are kept.
"""


from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.contracts.oversight import DishonestyListed, DishonestyRemoved
from services.kernel import clock, context
from services.kernel.audit import append_audit
from services.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.outbox import record_event
from services.kernel.paging import oldest_first
from services.oversight.cases import workflow as wf
from services.oversight.cases.models import DishonestyEntry
from services.oversight.cases.service import SOURCE, get_case
from services.kernel.settings import get_settings

ENTITY = "dishonesty_entry"
CONFIRMED_STATUSES = (wf.CLASSIFIED, wf.RECTIFYING, wf.CLOSED)


def add(session: Session, *, subject_type: str, subject_id: str, case_id: str, reason: str) -> DishonestyEntry:
    case = get_case(session, case_id)
    if case.status not in CONFIRMED_STATUSES or case.class_code is None:
        raise Conflict("CASE_NOT_CONFIRMED", "案件尚未核实分类（或已排除），不能据此列入失信名单")
    threshold = get_settings().oversight_cases.serious_amount_fen
    serious = case.class_code == 6 or (case.class_code in (4, 5) and (case.amount_fen or 0) >= threshold)
    if not serious:
        raise Conflict("CASE_NOT_SERIOUS",
                       f"仅第（六）类，或涉及金额不低于 {threshold / 100:.2f} 元的第（四）、（五）类案件可列入失信名单",
                       details={"class_code": case.class_code, "amount_fen": case.amount_fen,
                                "threshold_fen": threshold})
    expected = case.person_id if subject_type == "person" else case.employer_id
    if subject_id != expected:
        raise Invalid("SUBJECT_NOT_IN_CASE", "列入对象须为该案件所涉的人员或用人单位")
    active = session.execute(select(DishonestyEntry.id).where(
        DishonestyEntry.subject_type == subject_type, DishonestyEntry.subject_id == subject_id,
        DishonestyEntry.removed_at.is_(None))).first()
    if active:
        raise Conflict("ALREADY_LISTED", "该对象已在失信名单中")
    actor = context.current().actor
    entry = DishonestyEntry(id=new_event_id(), subject_type=subject_type, subject_id=subject_id, case_id=case.id,
                            class_code=case.class_code, amount_fen=case.amount_fen, reason=reason,
                            listed_at=clock.utc_now(), listed_by=actor.id)
    try:
        with session.begin_nested():
            session.add(entry)
            session.flush()
    except IntegrityError:
        raise Conflict("ALREADY_LISTED", "该对象已在失信名单中") from None
    append_audit(session, action="dishonesty.add", entity_type=ENTITY, entity_id=entry.id, reason=reason, detail={
        "subject_type": subject_type, "subject_id": subject_id, "case_id": case.id, "class_code": case.class_code,
        "amount_fen": case.amount_fen})
    record_event(session, DishonestyListed(entry_id=entry.id, subject_type=subject_type, subject_id=subject_id,
                                           case_id=case.id, class_code=case.class_code, reason=reason),
                 source=SOURCE, subject=entry.id)
    session.flush()
    return entry


def remove(session: Session, entry_id: str, *, reason: str) -> DishonestyEntry:
    entry = session.execute(
        select(DishonestyEntry).where(DishonestyEntry.id == entry_id).with_for_update()
    ).scalar_one_or_none()
    if entry is None:
        raise NotFound("DISHONESTY_ENTRY_NOT_FOUND", "失信名单记录不存在")
    if entry.removed_at is not None:
        raise Conflict("ALREADY_REMOVED", "该记录已移出失信名单")
    actor = context.current().actor
    if entry.listed_by == actor.id:
        raise Forbidden("SAME_OFFICER", "移出失信名单须由列入人以外的另一名监督人员办理")
    entry.removed_at, entry.removed_by, entry.removal_reason = clock.utc_now(), actor.id, reason
    session.add(entry)
    append_audit(session, action="dishonesty.remove", entity_type=ENTITY, entity_id=entry.id, reason=reason,
                 detail={"subject_type": entry.subject_type, "subject_id": entry.subject_id,
                         "listed_by": entry.listed_by})
    record_event(session, DishonestyRemoved(entry_id=entry.id, subject_type=entry.subject_type,
                                            subject_id=entry.subject_id, case_id=entry.case_id, reason=reason),
                 source=SOURCE, subject=entry.id)
    session.flush()
    return entry


def listing(session: Session, *, subject_type: str | None, subject_id: str | None, include_removed: bool,
            after: str | None, limit: int) -> tuple[list[DishonestyEntry], str | None]:
    query = select(DishonestyEntry)
    if subject_type:
        query = query.where(DishonestyEntry.subject_type == subject_type)
    if subject_id:
        query = query.where(DishonestyEntry.subject_id == subject_id)
    if not include_removed:
        query = query.where(DishonestyEntry.removed_at.is_(None))
    return oldest_first(session, query, DishonestyEntry.id, after=after, limit=limit)
