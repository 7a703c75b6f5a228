"""Cases (疑点/问题 cases): opening, the workflow of OVERSIGHT.md, follow-up, rectification ledger, overdue list and
escalation. Every step writes a ``case_history`` row, a kernel audit-chain entry and (for a status change) an
``oversight.case.*`` event, in the caller's transaction.

Who does what (001 第十二条):

- **Oversight officers** (``oversight_officer``) own the workflow: they open cases by hand, move a case through
  investigating → classified → rectifying → closed, propose and (another officer) confirm dismissals, escalate,
  and keep the dishonesty list. Closing (销号) is an officer's verification.
- **The responsible unit's staff** (agency roles: ``agency_clerk``, ``agency_reviewer``, ``agency_approver``,
  ``accountant``, ``it_admin``, ``internal_auditor``) read the cases issued to their unit (same ``unit`` name in
  their token) or their area (case region inside their region), and submit what the unit did: follow-up evidence
  (data corrected, employer notified, referral, audit, …) and rectification evidence. They cannot change a case's
  status: per 001 第十二条 the unit verifies and reports (报送), the supervisor reviews. This is the only way
  operators write to oversight (ARCHITECTURE.md principle 2).

The workflow functions (investigate, classify, …) take the request's session and flush their step; the request's
unit of work commits it. ``open_case`` and the event-side helpers (``confirm_benefit_event``,
``withdraw_suspension``) likewise run inside the caller's transaction (a consumer's batch, a rule sweep, the chain
check).
"""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from fastapi import HTTPException
from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session

from services.contracts.oversight import CaseEscalated, CaseOpened, CaseTransitioned
from services.kernel import archives, clock, context
from services.kernel.audit import append_audit_many, canonical_json, chain_head
from services.kernel.auth import region_covers, region_filter
from services.kernel.bulk import dialect_insert, dialect_of
from services.kernel.context import Actor
from services.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.outbox import record_event
from services.oversight.cases import workflow as wf
from services.oversight.cases.models import (
    BenefitSignal,
    Case,
    CaseFollowUp,
    CaseHistory,
    CaseOccurrence,
    RectificationEntry,
    RectificationEvidence,
)
from services.kernel.settings import get_settings

SOURCE = "oversight"
ENTITY = "oversight_case"
OFFICER = "oversight_officer"
AGENCY_ROLES = ("agency_clerk", "agency_reviewer", "agency_approver", "accountant", "it_admin", "internal_auditor")


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; they were stored as UTC."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _actor() -> Actor:
    return context.current().actor


def _officer_in_person() -> Actor:
    """Verifying a rectification and dismissing a finding are an officer's own judgement (001 第二十九条 销号; the
    four-eyes dismissal): a system client holding the officer role — the scheduler — may not do either, nor count
    as the second officer."""
    actor = _actor()
    if actor.kind == "client":
        raise Forbidden("OFFICER_IN_PERSON_REQUIRED", "销号、排除须由监督人员本人办理，系统客户端不能办理")
    return actor


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- opening ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseOpening:
    case: Case
    created: bool  # False: the (rule_id, fact_key) case already existed; an occurrence was counted on it


def open_case(
    session: Session,
    *,
    rule_id: str,
    severity: str,
    subject_type: str,
    subject_id: str,
    fact_key: str,
    title: str,
    details: dict[str, Any],
    seed_clause: str,
    unit: str | None = None,
    deadline_days: int | None = None,
    region: str | None = None,
    suggested_class: int | None = None,
    amount_fen: int | None = None,
    person_id: str | None = None,
    employer_id: str | None = None,
) -> CaseOpening:
    """Open (issue, 下发) a case for one fact found by one rule, or find the one already open for it.

    This is the entry point for the suspicion-rule engine, reconciliation, the audit-chain check and officers.

    Idempotent on ``(rule_id, fact_key)`` (a unique constraint): a rule that fires again on the same fact — a
    redelivered event, a daily sweep, two concurrent sweeps — gets the existing case back (``created=False``) with
    ``occurrences`` incremented and ``last_seen_at`` moved. A report whose ``details`` differ from the last one is
    kept as a new ``case_occurrence`` row and becomes the case's ``details``; an identical repeat only counts. A
    fact reported again after the case was closed or dismissed is kept as an occurrence with that status (the case
    stays closed; the history says it recurred, so an officer can see it) — choose a ``fact_key`` that names the
    fact precisely (e.g. ``"S01:<person_id>:<period>"``) so that a genuinely new fact opens a new case.

    Arguments:
        rule_id: the rule's stable id (``S01``…``S20``, ``R1``…``R6``, ``CHAIN``, ``R-ESC``, ``MANUAL``).
        severity: ``low`` | ``medium`` | ``high`` | ``severe``.
        subject_type, subject_id: what the case is about. ``person`` / ``employer`` subjects also set
            ``person_id`` / ``employer_id`` (which class-4 confirmation and the dishonesty list use); pass those
            explicitly when the subject is something else (a payment line of a person).
        fact_key: identifies the fact within the rule (≤ 300 characters).
        title: one line for lists (≤ 200 characters, Chinese for the unit).
        details: JSON-able facts (amounts in fen, periods, ids); stored as canonical JSON.
        seed_clause: the clause the rule enforces, e.g. ``"001 第二十七条"``.
        unit: the responsible unit (责任单位) the case is issued to; default ``SIFUND_OVERSIGHT_DEFAULT_UNIT``.
        deadline_days: calendar days (China) the unit has to verify and report; default 30.
        region: 行政区划 code of the subject, so that the area's agency staff can read the case.
        suggested_class: the 001 第二十九条 class the opener expects (a hint; an officer classifies).
        amount_fen: the amount involved, if known.

    Must run inside the caller's transaction: nothing is committed here. Writes the case, its first occurrence, a
    history row, an audit-chain entry and ``oversight.case.opened.v1``.
    """
    settings = get_settings().oversight_cases
    if severity not in wf.SEVERITIES:
        raise Invalid("INVALID_SEVERITY", f"严重程度应为 {'/'.join(wf.SEVERITIES)}")
    if not rule_id or len(rule_id) > 40 or not fact_key or len(fact_key) > 300:
        raise Invalid("INVALID_CASE", "规则编号（≤40）与事实键（≤300）不能为空")
    if not title or len(title) > 200 or not subject_type or not subject_id:
        raise Invalid("INVALID_CASE", "标题（≤200）与对象不能为空")
    if suggested_class is not None and suggested_class not in wf.CLASSES:
        raise Invalid("INVALID_CASE_CLASS", "问题分类应为 1 至 6（001 第二十九条）")
    deadline_days = settings.default_deadline_days if deadline_days is None else deadline_days
    if deadline_days < 1:
        raise Invalid("INVALID_DEADLINE", "办理时限至少 1 天")
    details_json = canonical_json(details)

    existing = _find(session, rule_id, fact_key)
    if existing is not None:
        return CaseOpening(_reoccur(session, existing, details_json), created=False)

    now, opened_on = clock.utc_now(), clock.china_today()
    deadline = opened_on + timedelta(days=deadline_days)
    case = _new_case({
        "id": new_event_id(), "rule_id": rule_id, "fact_key": fact_key, "severity": severity,
        "subject_type": subject_type, "subject_id": str(subject_id),
        "person_id": person_id or (str(subject_id) if subject_type == "person" else None),
        "employer_id": employer_id or (str(subject_id) if subject_type == "employer" else None),
        "title": title, "details": details_json, "seed_clause": seed_clause, "unit": unit or settings.default_unit,
        "region": region, "status": wf.ISSUED, "suggested_class": suggested_class, "amount_fen": amount_fen,
        "deadline_days": deadline_days, "deadline": deadline, "current_deadline": deadline, "occurrences": 1,
        "first_seen_at": now, "last_seen_at": now, "opened_at": now, "opened_by": _actor().id,
        "status_changed_at": now, "updated_at": now,
    })
    if not _insert_case(session, case):  # a concurrent opener of the same fact won: count an occurrence on its case
        existing = _find(session, rule_id, fact_key)
        if existing is None:
            raise LookupError(f"the case of {rule_id} {fact_key} conflicts but cannot be read")
        return CaseOpening(_reoccur(session, existing, details_json), created=False)
    _insert_occurrence(session, case.id, seen_at=now, details_json=details_json, case_status=wf.ISSUED)
    _history(session, case, "open", from_status=None, detail={
        "rule_id": rule_id, "fact_key": fact_key, "severity": severity, "unit": case.unit, "region": region,
        "deadline": deadline.isoformat(), "seed_clause": seed_clause, "subject": f"{subject_type}:{subject_id}"})
    record_event(session, CaseOpened(
        case_id=case.id, rule_id=rule_id, fact_key=fact_key, severity=severity, subject_type=subject_type,
        subject_id=case.subject_id, title=title, seed_clause=seed_clause, unit=case.unit, region=region,
        deadline=deadline, suggested_class=suggested_class), source=SOURCE, subject=case.id)
    return CaseOpening(case, created=True)


@lru_cache(maxsize=1)
def _case_defaults() -> tuple[tuple[str, Any], ...]:
    """What a new case holds in the fields ``open_case`` does not set (their model defaults: None, 0)."""
    return tuple((name, field.get_default(call_default_factory=True)) for name, field in Case.model_fields.items()
                 if not field.is_required())


def _new_case(values: dict[str, Any]) -> Case:
    """A transient case with ``values`` over the model's defaults, built as the ORM builds a row it loads (the
    values straight into the instance's dict): the model's constructor, which sets each of the forty fields through
    the ORM's instrumentation, cost a tenth of a rule's case opening. ``values`` are the ones ``open_case`` made
    (validated there), so nothing is lost by not validating them again."""
    case = Case.__mapper__.class_manager.new_instance()
    case.__dict__.update(_case_defaults())
    case.__dict__.update(values)
    return case


def _insert_case(session: Session, case: Case) -> bool:
    """Write a new case with one Core ``INSERT … ON CONFLICT (rule_id, fact_key) DO NOTHING``, then attach it to the
    session as a persistent object (later changes are UPDATEs), without an ORM flush and savepoint per case: a rule
    opening many cases in one consumer transaction pays a statement each. False if the fact's case exists (a
    concurrent opener committed it first; on PostgreSQL the insert waits for that transaction)."""
    values = case.__dict__  # every column's value is there (``_new_case``): read without the instrumentation
    row = {key: values[key] for key in _case_columns()}
    if session.connection().execute(_case_insert(dialect_of(session)), row).first() is None:
        return False
    make_transient_to_detached(case)
    session.add(case)
    return True


@lru_cache(maxsize=1)
def _case_columns() -> tuple[str, ...]:
    return tuple(column.key for column in Case.__table__.columns)


@lru_cache(maxsize=2)
def _case_insert(dialect: str) -> Any:
    return dialect_insert(dialect, Case.__table__).on_conflict_do_nothing(
        index_elements=["rule_id", "fact_key"]).returning(Case.__table__.c.id)


_OCCURRENCE_INSERT = insert(CaseOccurrence.__table__)
_HISTORY_INSERT = insert(CaseHistory.__table__)


def _insert_occurrence(session: Session, case_id: str, *, seen_at: datetime, details_json: str,
                       case_status: str) -> None:
    session.connection().execute(_OCCURRENCE_INSERT, {
        "case_id": case_id, "seen_at": seen_at, "details": details_json, "details_hash": _digest(details_json),
        "case_status": case_status, "source_ref": context.current().causation_id})


_CASE_OF_FACT = select(Case.id).where(Case.rule_id == bindparam("rule_id"), Case.fact_key == bindparam("fact_key"))


def _find(session: Session, rule_id: str, fact_key: str) -> Case | None:
    """The fact's case, if any. Asked with one Core statement, which flushes nothing (cases are written with Core,
    so the database already has every case of the transaction); the case object is loaded only when it exists."""
    case_id = session.connection().execute(_CASE_OF_FACT, {"rule_id": rule_id, "fact_key": fact_key}).scalar()
    return None if case_id is None else session.get(Case, case_id)


def _reoccur(session: Session, case: Case, details_json: str) -> Case:
    now = clock.utc_now()
    session.execute(update(Case).where(Case.id == case.id)
                    .values(occurrences=Case.occurrences + 1, last_seen_at=now, updated_at=now))
    session.refresh(case)
    last_hash = session.execute(
        select(CaseOccurrence.details_hash).where(CaseOccurrence.case_id == case.id)
        .order_by(CaseOccurrence.id.desc()).limit(1)
    ).scalar_one_or_none()
    changed = last_hash != _digest(details_json)
    recurred = case.status in wf.TERMINAL_STATUSES
    if changed or recurred:
        _insert_occurrence(session, case.id, seen_at=now, details_json=details_json, case_status=case.status)
    if changed and not recurred:
        case.details = details_json
        session.add(case)
    if recurred or changed:
        _history(session, case, "recurred" if recurred else "reported_again", from_status=case.status,
                 detail={"occurrences": case.occurrences, "details_changed": changed})
    return case


# -- history ---------------------------------------------------------------------------------------------------------


def _history(session: Session, case: Case, action: str, *, from_status: str | None,
             detail: dict[str, Any] | None = None, reason: str | None = None) -> None:
    actor = _actor()
    detail = detail or {}
    session.connection().execute(_HISTORY_INSERT, {
        "case_id": case.id, "at": clock.utc_now(), "actor_id": actor.id, "actor_role": actor.role, "action": action,
        "from_status": from_status, "to_status": case.status, "detail": canonical_json(detail), "reason": reason})
    # The chain's Core path (one INSERT, no ORM entry to flush); the head it leaves is this step's position. Without
    # autoflush: locking the head (an ORM query) would otherwise flush, once per case step, the head the previous
    # step moved (~0.3 ms each when a consumer's batch opens a case per event); the session's head object already
    # holds it, and the transaction's flush writes it once.
    with session.no_autoflush:
        append_audit_many(session, [{"action": f"case.{action}", "entity_type": ENTITY, "entity_id": case.id,
                                     "detail": {"from": from_status, "to": case.status, **detail}, "reason": reason}])
    head = chain_head(session)
    position = (head["seq"], head["hash"])
    # The step goes into the dossier of the person or employer the case names: what was done and the status it
    # left, not the finding's text or a report's content (the agency's archive is not oversight's file).
    dossiers = [(kind, subject) for kind, subject in ((archives.PERSON, case.person_id),
                                                       (archives.EMPLOYER, case.employer_id)) if subject]
    archives.file_act(session, dossiers, "case_step", f"{case.id}/{position[0]}", f"基金监督案件 {case.rule_id} {action}",
                      f"{action}：{from_status or '—'} → {case.status}", audit=position,
                      references={"case_id": case.id, "rule_id": case.rule_id})


def _transition(session: Session, case: Case, action: str, *, detail: dict[str, Any] | None = None,
                reason: str | None = None) -> None:
    """Apply ``action`` (checked against ``workflow.TRANSITIONS``), record it, and announce a status change."""
    allowed_from, to_status = wf.TRANSITIONS[action]
    if case.status not in allowed_from:
        raise Conflict("INVALID_TRANSITION",
                       f"案件当前状态为“{wf.STATUS_NAMES[case.status]}”（{case.status}），不能执行 {action}",
                       details={"status": case.status, "allowed_from": list(allowed_from)})
    if case.dismissal_proposed_at is not None and action not in ("confirm_dismissal", "reject_dismissal"):
        raise Conflict("DISMISSAL_PENDING", "该案件有待另一名监督人员确认的排除申请，须先确认或驳回")
    from_status = case.status
    now = clock.utc_now()
    if to_status is not None and to_status != from_status:
        case.status, case.status_changed_at = to_status, now
    case.updated_at = now
    session.add(case)
    _history(session, case, action, from_status=from_status, detail=detail, reason=reason)
    if case.status != from_status:
        record_event(session, CaseTransitioned(
            case_id=case.id, rule_id=case.rule_id, action=action, from_status=from_status, to_status=case.status,
            class_code=case.class_code, severity=case.severity, unit=case.unit, region=case.region),
            source=SOURCE, subject=case.id)


# -- access ----------------------------------------------------------------------------------------------------------


def is_officer(actor: Actor) -> bool:
    return actor.role == OFFICER


def visible(case: Case, actor: Actor) -> bool:
    """Officers see every case; a unit's staff the cases issued to their unit or to their area."""
    if is_officer(actor):
        return True
    if actor.unit and case.unit == actor.unit:
        return True
    return bool(case.region) and region_covers(actor.region, case.region)


def ensure_visible(case: Case, actor: Actor) -> None:
    if not visible(case, actor):
        raise HTTPException(403, detail={"code": "CASE_NOT_ISSUED_TO_YOU",
                                         "message": "该案件未下发给本单位或本地区，无权查看或报送"})


def visibility_filter(actor: Actor):  # noqa: ANN201 - a SQL expression, or None for everything
    if is_officer(actor):
        return None
    conditions = []
    if actor.unit:
        conditions.append(Case.unit == actor.unit)
    if actor.region:
        conditions.append(region_filter(Case.region, actor))
    return or_(*conditions) if conditions else Case.id.is_(None)


def get_case(session: Session, case_id: str, *, for_update: bool = False) -> Case:
    query = select(Case).where(Case.id == case_id)
    if for_update:
        query = query.with_for_update()
    case = session.execute(query).scalar_one_or_none()
    if case is None:
        raise NotFound("CASE_NOT_FOUND", "案件不存在")
    ensure_visible(case, _actor())
    return case


# -- the workflow ----------------------------------------------------------------------------------------------------


def investigate(session: Session, case_id: str, *, note: str | None) -> Case:
    case = get_case(session, case_id, for_update=True)
    _transition(session, case, "investigate", detail={"note": note} if note else None)
    session.flush()
    return case


def classify(session: Session, case_id: str, *, class_code: int, finding: str, person_id: str | None,
             employer_id: str | None, amount_fen: int | None, reason: str | None) -> Case:
    """Classify into one of the six classes of 001 第二十九条. Re-classifying (from ``classified``) needs a reason;
    follow-up already recorded stays and counts where the new class requires the same kind."""
    if class_code not in wf.CLASSES:
        raise Invalid("INVALID_CASE_CLASS", "问题分类应为 1 至 6（001 第二十九条）")
    case = get_case(session, case_id, for_update=True)
    spec = wf.CLASSES[class_code]
    if case.status == wf.CLASSIFIED and not reason:
        raise Invalid("REASON_REQUIRED", "重新分类须说明理由")
    person_id = person_id or case.person_id
    employer_id = employer_id or case.employer_id
    if spec.needs == "person" and not person_id:
        raise Invalid("PERSON_REQUIRED", f"第（{class_code}）类须指明待遇领取人（person_id）")
    if spec.needs == "employer" and not employer_id:
        raise Invalid("EMPLOYER_REQUIRED", f"第（{class_code}）类须指明用人单位（employer_id）")
    previous = case.class_code
    case.class_code, case.finding = class_code, finding
    case.person_id, case.employer_id = person_id, employer_id
    if amount_fen is not None:
        case.amount_fen = amount_fen
    case.classified_at, case.classified_by = clock.utc_now(), _actor().id
    _transition(session, case, "classify", reason=reason, detail={
        "class_code": class_code, "class_name": spec.name, "clause": spec.clause, "previous_class": previous,
        "finding": finding, "person_id": person_id, "employer_id": employer_id, "amount_fen": case.amount_fen,
        "required_follow_up": [list(g) for g in spec.required]})
    if class_code == 4:
        backfill_benefit_confirmations(session, case)
    session.flush()
    return case


def open_rectification(session: Session, case_id: str, *, measures: str, due_date: date,
                       responsible: str | None) -> tuple[Case, RectificationEntry]:
    """classified → rectifying: the case enters the rectification ledger with measures and a due date, which
    becomes the deadline the overdue list watches."""
    case = get_case(session, case_id, for_update=True)
    if due_date < clock.china_today():
        raise Invalid("DUE_DATE_IN_PAST", "整改期限不能早于今天")
    if case.status == wf.CLASSIFIED and session.execute(
            select(RectificationEntry.id).where(RectificationEntry.case_id == case.id)).first():
        raise Conflict("RECTIFICATION_EXISTS", "该案件已有整改台账记录")
    entry = RectificationEntry(
        id=new_event_id(), case_id=case.id, unit=case.unit, region=case.region, class_code=case.class_code or 0,
        problem=case.title, measures=measures, responsible=responsible, due_date=due_date, status="open",
        opened_at=clock.utc_now(), opened_by=_actor().id)
    _transition(session, case, "rectify", detail={"entry_id": entry.id, "measures": measures,
                                                  "due_date": due_date.isoformat(), "responsible": responsible})
    case.current_deadline = due_date
    session.add(case)
    session.add(entry)
    session.flush()
    return case, entry


def rectification_of(session: Session, case_id: str) -> RectificationEntry | None:
    return session.execute(
        select(RectificationEntry).where(RectificationEntry.case_id == case_id)
    ).scalar_one_or_none()


def add_rectification_evidence(session: Session, case_id: str, *, note: str,
                               document_ref: str | None) -> RectificationEvidence:
    """What the unit did to rectify (报送整改情况): officers or the unit's staff, while the case is rectifying."""
    case = get_case(session, case_id, for_update=True)
    if case.status != wf.RECTIFYING:
        raise Conflict("NOT_RECTIFYING", "案件不在整改阶段，不能报送整改材料")
    entry = rectification_of(session, case.id)
    actor = _actor()
    evidence = RectificationEvidence(entry_id=entry.id, case_id=case.id, note=note, document_ref=document_ref,
                                     submitted_at=clock.utc_now(), submitted_by=actor.id, submitted_role=actor.role)
    session.add(evidence)
    _history(session, case, "rectification_evidence", from_status=case.status,
             detail={"entry_id": entry.id, "note": note, "document_ref": document_ref})
    session.flush()
    return evidence


# -- follow-up -------------------------------------------------------------------------------------------------------


def follow_ups(session: Session, case_id: str) -> list[CaseFollowUp]:
    return list(session.execute(
        select(CaseFollowUp).where(CaseFollowUp.case_id == case_id).order_by(CaseFollowUp.id)
    ).scalars())


def confirmed_kinds(session: Session, case_id: str) -> set[str]:
    return {f.kind for f in follow_ups(session, case_id) if f.withdrawn_at is None}


def follow_up_missing(session: Session, case: Case) -> list[list[str]]:
    if case.class_code is None:
        return []
    return wf.missing_follow_ups(case.class_code, confirmed_kinds(session, case.id))


def record_follow_up(session: Session, case_id: str, *, kind: str, evidence: str,
                     reference: str | None) -> CaseFollowUp:
    """Record what was done for the class's follow-up (evidence: a document number, a letter, a referral).

    The two benefits kinds (``benefit_suspended``, ``recovery_notice_issued``) are not taken on anyone's word:
    benefits' events confirm them automatically; here an officer may only *link* such an event that arrived before
    the case was opened, by naming its entitlement id or notice id in ``reference`` (409 ``NO_BENEFIT_EVENT`` if
    oversight never received it for the case's person, or the suspension was resumed since).
    """
    case = get_case(session, case_id, for_update=True)
    if case.status not in (wf.CLASSIFIED, wf.RECTIFYING):
        raise Conflict("NOT_CLASSIFIED", "案件尚未分类（或已办结），不能登记处理情况")
    spec = wf.CLASSES[case.class_code]
    if kind not in spec.kinds:
        raise Invalid("FOLLOW_UP_NOT_FOR_CLASS",
                      f"第（{spec.code}）类“{spec.name}”的处理要求不包括 {kind}",
                      details={"allowed": sorted(spec.kinds)})
    if kind in ("referred_to_labour_inspection", "employer_registered") and case.class_code == 3 \
            and "employer_notified" not in confirmed_kinds(session, case.id):
        raise Conflict("NOTIFY_FIRST", "须先告知用人单位办理参保登记，经告知仍不办理的再移送劳动保障监察")
    actor = _actor()
    if kind in wf.EVENT_CONFIRMED_KINDS:
        if not reference:
            raise Invalid("REFERENCE_REQUIRED", "须注明待遇系统的待遇编号或追回告知书编号")
        signal = _linkable_signal(session, case, kind, reference)
        if signal is None:
            raise Conflict("NO_BENEFIT_EVENT", "监督系统未收到该人员的相应待遇事件（或暂停后已恢复发放），"
                                               "不能人工登记；以待遇系统事件为准")
        row = confirm_benefit_event(session, case, kind, signal, evidence=evidence, source_note="linked")
        session.flush()
        return row
    row = CaseFollowUp(case_id=case.id, kind=kind, source="recorded", reference=reference, evidence=evidence,
                       recorded_at=clock.utc_now(), recorded_by=actor.id, recorded_role=actor.role)
    session.add(row)
    _history(session, case, "follow_up", from_status=case.status,
             detail={"kind": kind, "reference": reference, "evidence": evidence})
    session.flush()
    return row


def _linkable_signal(session: Session, case: Case, kind: str, reference: str) -> BenefitSignal | None:
    if kind == "recovery_notice_issued":
        return session.execute(select(BenefitSignal).where(
            BenefitSignal.kind == "notice_issued", BenefitSignal.person_id == case.person_id,
            BenefitSignal.notice_id == reference).order_by(BenefitSignal.at.desc()).limit(1)).scalar_one_or_none()
    latest = session.execute(select(BenefitSignal).where(
        BenefitSignal.kind.in_(("suspended", "resumed")), BenefitSignal.person_id == case.person_id,
        BenefitSignal.entitlement_id == reference).order_by(BenefitSignal.at.desc()).limit(1)).scalar_one_or_none()
    return latest if latest is not None and latest.kind == "suspended" else None


def confirm_benefit_event(session: Session, case: Case, kind: str, signal: BenefitSignal, *,
                          evidence: str | None = None, source_note: str = "event") -> CaseFollowUp:
    """Record a benefits event as the case's follow-up (once per case, kind and event)."""
    existing = session.execute(select(CaseFollowUp).where(
        CaseFollowUp.case_id == case.id, CaseFollowUp.kind == kind, CaseFollowUp.event_id == signal.event_id)
    ).scalar_one_or_none()
    if existing is not None:
        if existing.withdrawn_at is not None and source_note == "linked":
            raise Conflict("NO_BENEFIT_EVENT", "该待遇事件的确认已因恢复发放撤回")
        return existing
    actor = _actor()
    reference = signal.entitlement_id if kind == "benefit_suspended" else signal.notice_id
    row = CaseFollowUp(
        case_id=case.id, kind=kind, source="event", reference=reference, event_id=signal.event_id,
        evidence=evidence or (f"待遇系统事件：待遇 {reference} 已暂停（{signal.reason}）" if kind == "benefit_suspended"
                              else f"待遇系统事件：已下达追回告知书 {reference}（{(signal.amount_fen or 0) / 100:.2f} 元）"),
        recorded_at=clock.utc_now(), recorded_by=actor.id, recorded_role=actor.role)
    session.add(row)
    _history(session, case, "follow_up_confirmed", from_status=case.status, detail={
        "kind": kind, "reference": reference, "event_id": signal.event_id, "via": source_note})
    return row


def _event_time(event_id: str | None) -> datetime | None:
    """When an event id was minted, if it is a UUIDv7 (``kernel.events.new_event_id``: its first 48 bits are Unix
    milliseconds); None for anything else."""
    try:
        value = uuid.UUID(event_id) if event_id else None
    except (TypeError, ValueError):
        return None
    if value is None or value.version != 7:
        return None
    return datetime.fromtimestamp((value.int >> 80) / 1000, UTC)


def confirmations_since(session: Session, case: Case) -> datetime:
    """From when benefits' events confirm the case: the event that made a rule open it, if one did (its first
    occurrence's ``source_ref``), else the opening.

    A death or an imprisonment reported on the bus reaches benefits and oversight at the same time: benefits'
    suspension and recovery notice for it may well be recorded before oversight's rule opened the case. They answer
    the same fact and count; events older than that fact are linked by an officer (``record_follow_up``)."""
    opened = aware(case.opened_at)
    source = session.execute(
        select(CaseOccurrence.source_ref).where(CaseOccurrence.case_id == case.id)
        .order_by(CaseOccurrence.id).limit(1)
    ).scalar_one_or_none()
    caused = _event_time(source)
    return min(opened, caused) if caused is not None else opened


def confirms(session: Session, case: Case, signal: BenefitSignal) -> bool:
    """Whether a benefits event is recent enough to confirm the case by itself (see ``confirmations_since``)."""
    return aware(signal.at) >= confirmations_since(session, case)


def backfill_benefit_confirmations(session: Session, case: Case) -> None:
    """At classification into class 4: benefits events for the person since the fact that opened the case
    (``confirmations_since``) confirm it (a suspension only if not resumed since)."""
    signals = list(session.execute(select(BenefitSignal).where(
        BenefitSignal.person_id == case.person_id).order_by(BenefitSignal.at)).scalars())
    since = confirmations_since(session, case)
    latest_by_entitlement: dict[str, BenefitSignal] = {}
    for s in signals:
        if s.kind in ("suspended", "resumed") and s.entitlement_id:
            latest_by_entitlement[s.entitlement_id] = s
    for s in signals:
        if aware(s.at) < since:
            continue
        if s.kind == "notice_issued":
            confirm_benefit_event(session, case, "recovery_notice_issued", s)
        elif s.kind == "suspended" and latest_by_entitlement.get(s.entitlement_id) is s:
            confirm_benefit_event(session, case, "benefit_suspended", s)


def open_class4_cases(session: Session, person_id: str) -> list[Case]:
    return list(session.execute(select(Case).where(
        Case.person_id == person_id, Case.class_code == 4,
        Case.status.in_((wf.CLASSIFIED, wf.RECTIFYING))).order_by(Case.id).with_for_update()).scalars())


def withdraw_suspension(session: Session, case: Case, entitlement_id: str, resumed: BenefitSignal) -> None:
    """Benefits resumed an entitlement whose suspension confirmed this case: the confirmation no longer holds."""
    now = clock.utc_now()
    for row in follow_ups(session, case.id):
        if row.kind == "benefit_suspended" and row.reference == entitlement_id and row.withdrawn_at is None:
            row.withdrawn_at = now
            row.withdrawn_reason = f"待遇 {entitlement_id} 已恢复发放（事件 {resumed.event_id}：{resumed.reason}）"
            session.add(row)
            _history(session, case, "follow_up_withdrawn", from_status=case.status, detail={
                "kind": "benefit_suspended", "reference": entitlement_id, "event_id": resumed.event_id})


# -- closing and dismissal -------------------------------------------------------------------------------------------


def close(session: Session, case_id: str, *, verification_note: str) -> Case:
    """销号: an oversight officer verifies the rectification. Refused (409 ``FOLLOW_UP_INCOMPLETE``) until the
    class's follow-up is confirmed — class 4: both benefits events seen; the other classes: recorded evidence."""
    _officer_in_person()
    case = get_case(session, case_id, for_update=True)
    if case.status == wf.RECTIFYING:
        missing = follow_up_missing(session, case)
        if missing:
            names = "；".join("或".join(wf.FOLLOW_UP_KINDS[k] for k in group) for group in missing)
            raise Conflict("FOLLOW_UP_INCOMPLETE", f"第（{case.class_code}）类的处理要求尚未确认：{names}",
                           details={"missing": missing})
    _transition(session, case, "close", detail={"verification_note": verification_note})
    now, actor = clock.utc_now(), _actor()
    case.closed_at, case.closed_by, case.verification_note = now, actor.id, verification_note
    session.add(case)
    entry = rectification_of(session, case.id)
    entry.status, entry.closed_at, entry.closed_by, entry.verification_note = "closed", now, actor.id, \
        verification_note
    session.add(entry)
    session.flush()
    return case


def propose_dismissal(session: Session, case_id: str, *, reason: str) -> Case:
    """An officer proposes to dismiss the case as a false positive (误报); a second officer must confirm."""
    _officer_in_person()
    case = get_case(session, case_id, for_update=True)
    if case.dismissal_proposed_at is not None:
        raise Conflict("DISMISSAL_PENDING", "已有待确认的排除申请")
    _transition(session, case, "propose_dismissal", reason=reason)
    case.dismissal_proposed_at, case.dismissal_proposed_by, case.dismissal_reason = clock.utc_now(), _actor().id, reason
    session.add(case)
    session.flush()
    return case


def decide_dismissal(session: Session, case_id: str, *, approve: bool, reason: str | None) -> Case:
    """The second officer confirms (→ dismissed) or rejects the proposal (the case continues where it was)."""
    _officer_in_person()
    case = get_case(session, case_id, for_update=True)
    if case.dismissal_proposed_at is None:
        raise Conflict("NO_DISMISSAL_PENDING", "该案件没有待确认的排除申请")
    if case.dismissal_proposed_by == _actor().id:
        raise Forbidden("SAME_OFFICER", "排除须由另一名监督人员确认，申请人不能确认本人的申请")
    if not approve and not reason:
        raise Invalid("REASON_REQUIRED", "驳回排除申请须说明理由")
    proposal = {"proposed_by": case.dismissal_proposed_by, "proposal_reason": case.dismissal_reason}
    if approve:
        _transition(session, case, "confirm_dismissal", reason=reason, detail=proposal)
        case.dismissed_at, case.dismissed_by = clock.utc_now(), _actor().id
    else:
        _transition(session, case, "reject_dismissal", reason=reason, detail=proposal)
        case.dismissal_proposed_at = case.dismissal_proposed_by = case.dismissal_reason = None
    session.add(case)
    session.flush()
    return case


# -- overdue and escalation ------------------------------------------------------------------------------------------


def overdue_query(as_of: date):  # noqa: ANN201
    """Open cases whose current deadline (the unit's deadline, or the rectification due date) is before ``as_of``."""
    return select(Case).where(Case.status.in_(wf.OPEN_STATUSES), Case.current_deadline < as_of)


def escalate(session: Session, *, as_of: date) -> list[Case]:
    """Escalate every overdue case not escalated in the last ``escalation_interval_days``: severity one step up,
    ``escalation_level`` + 1, history and audit, and ``oversight.case.escalated.v1`` (the notification to the
    supervisor and the unit). Running it twice on a day escalates nothing the second time."""
    interval = timedelta(days=get_settings().oversight_cases.escalation_interval_days)
    cases = list(session.execute(overdue_query(as_of).order_by(Case.id).with_for_update()).scalars())
    escalated = []
    for case in cases:
        if case.last_escalated_on is not None and as_of < case.last_escalated_on + interval:
            continue
        before = case.severity
        case.severity = wf.raise_severity(case.severity)
        case.escalation_level += 1
        case.last_escalated_on = as_of
        case.updated_at = clock.utc_now()
        session.add(case)
        days = (as_of - case.current_deadline).days
        _history(session, case, "escalate", from_status=case.status, detail={
            "as_of": as_of.isoformat(), "deadline": case.current_deadline.isoformat(), "days_overdue": days,
            "severity_before": before, "severity": case.severity, "escalation_level": case.escalation_level})
        record_event(session, CaseEscalated(
            case_id=case.id, rule_id=case.rule_id, status=case.status, severity_before=before,
            severity=case.severity, escalation_level=case.escalation_level, deadline=case.current_deadline,
            days_overdue=days, unit=case.unit, region=case.region), source=SOURCE, subject=case.id)
        escalated.append(case)
    session.flush()
    return escalated
