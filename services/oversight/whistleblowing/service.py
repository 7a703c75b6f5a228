"""Whistleblower reports (举报; OVERSIGHT.md; 000 三(四); 001 第三十二条至第三十八条).

- **Intake.** The public files by the web form without an account (``channel=web``); an oversight officer records
  reports that came by phone, e-mail, letter or visit. Anonymous or named (one reporter, or several for a joint
  report). The reporter gets a tracking code — 20 characters from a 30-letter alphabet (~98 bits) drawn with
  ``secrets`` — shown once and stored only as its SHA-256. Nothing about the connection (IP address) is stored.
- **Urgent and major reports** (000 三(四): 涉及重大问题和紧急事项的举报…应当立即向有关领导报告) are flagged at intake
  when the reporter asks for urgency, when the text names a major matter (``MAJOR_KEYWORDS``), or when the amount
  claimed reaches ``MAJOR_AMOUNT_FEN``; an officer may flag one later. A flag raises an alert (listed until an
  officer acknowledges it with what was done), a warning log line and an event — none carrying the identity.
- **Workflow.** received → assigned (to an officer; reassignment keeps an investigation going) → investigating →
  answered (the answer is shown to the reporter; the outcome and verified amount are internal) → closed. A report
  may be closed before an answer (out of scope, transferred) with a reason, which the reporter sees.
- **Identity.** Only oversight officers see who reported; internal auditors read everything else, with the free
  text redacted (citizen ids, long numbers). Audit entries and events name the report, never the reporter.
- **Matters and rewards.** See rewards.py. Reports of the same fact share a matter (linked by an officer).
"""

import hashlib
import json
import re
import secrets
from datetime import UTC, datetime

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.contracts.oversight import WhistleblowerReportFlagged, WhistleblowerRewardGranted
from services.kernel import clock, context
from services.kernel.audit import append_audit
from services.kernel.errors import Conflict, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.money import fen_to_yuan, yuan_to_fen
from services.kernel.outbox import record_event
from services.kernel.paging import oldest_first
from services.kernel.pii import redact
from services.oversight.whistleblowing import rewards
from services.oversight.whistleblowing.models import (
    WhistleblowerAlert,
    WhistleblowerNote,
    WhistleblowerReport,
    WhistleblowerReporter,
    WhistleblowerReward,
    WhistleblowerStep,
)
from services.oversight.whistleblowing.schemas import AnswerIn, ReportIn, RewardIn

log = structlog.get_logger(__name__)

SOURCE = "oversight"
ENTITY = "whistleblower_report"
OFFICER_ROLE = "oversight_officer"

# Tracking codes: no 0/O, 1/I/L, U (read out on the phone without confusion); 20 characters ≈ 98 bits.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"
CODE_LENGTH = 20
_CODE_CHARS = re.compile(r"[\s-]")

# 000 三(四): 涉及重大问题和紧急事项的举报. Words that mark a report as major or urgent at intake.
MAJOR_KEYWORDS = ("紧急", "重大", "巨额", "携款", "潜逃", "外逃", "转移资金", "销毁", "挪用", "挤占", "群体性")
MAJOR_AMOUNT_FEN = 100_000_000  # 1 000 000 yuan claimed

STATUS_LABELS = {
    "received": "已受理",
    "assigned": "已分派办理",
    "investigating": "调查核实中",
    "answered": "已答复",
    "closed": "已办结",
}
OPEN_STATUSES = ("received", "assigned", "investigating")



def can_see_identity() -> bool:
    """The reporter's identity is shown to oversight officers only (DOMAIN.md, Personal data)."""
    actor = context.current().actor
    return actor.role == OFFICER_ROLE or OFFICER_ROLE in actor.roles


# -- tracking codes --------------------------------------------------------------------------------------------------


def new_tracking_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i:i + 4] for i in range(0, CODE_LENGTH, 4))


def normalise_code(code: str) -> str:
    return _CODE_CHARS.sub("", code).upper()


def tracking_hash(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def withhold_identity(text: str, reporters: list[WhistleblowerReporter]) -> str:
    """Free text for readers other than oversight officers: the reporters' own names, numbers and addresses
    blanked out, any citizen id, long number or mobile number masked."""
    for reporter in reporters:
        for value in (reporter.name, reporter.citizen_id, reporter.phone, reporter.email, reporter.address):
            if value and len(value) >= 2:
                text = text.replace(value, "＊" * min(len(value), 6))
    return _MOBILE.sub(r"\1****\2", redact(text))


# -- flags -----------------------------------------------------------------------------------------------------------


def detect_flags(body: ReportIn) -> list[dict]:
    reasons = []
    if body.urgent:
        reasons.append({"code": "URGENT_REQUESTED", "detail": "举报人要求紧急处理"})
    text = f"{body.title}\n{body.content}"
    words = [w for w in MAJOR_KEYWORDS if w in text]
    if words:
        reasons.append({"code": "KEYWORD", "detail": f"举报内容涉及：{'、'.join(words)}"})
    if body.amount_claimed is not None and yuan_to_fen(body.amount_claimed) >= MAJOR_AMOUNT_FEN:
        reasons.append({"code": "LARGE_AMOUNT",
                        "detail": f"举报涉及金额 {body.amount_claimed} 元，达到重大举报标准 {fen_to_yuan(MAJOR_AMOUNT_FEN)} 元"})
    return reasons


def _raise_alert(session: Session, report: WhistleblowerReport, reasons: list[dict]) -> WhistleblowerAlert:
    alert = WhistleblowerAlert(id=new_event_id(), report_id=report.id, reasons=json.dumps(reasons, ensure_ascii=False),
                               raised_at=clock.utc_now(), raised_by=context.actor_id())
    session.add(alert)
    previous = json.loads(report.flag_reasons) if report.flag_reasons else []
    report.flagged = True
    report.flag_reasons = json.dumps(previous + reasons, ensure_ascii=False)
    record_event(session, WhistleblowerReportFlagged(
        report_id=report.id, alert_id=alert.id, channel=report.channel, category=report.category,
        region=report.region, reasons=[r["code"] for r in reasons],
    ), source=SOURCE, subject=report.id)
    # The alert to the officer on duty (000 三(四) 立即报告): no identity, no report text in the log line.
    log.warning("whistleblowing.major_or_urgent_report", report_id=report.id, alert_id=alert.id,
                reasons=",".join(r["code"] for r in reasons), channel=report.channel)
    return alert


# -- intake ----------------------------------------------------------------------------------------------------------


def _step(session: Session, report: WhistleblowerReport, action: str, from_status: str | None, to_status: str,
          note: str | None = None, at: datetime | None = None) -> None:
    session.add(WhistleblowerStep(report_id=report.id, at=at or clock.utc_now(), actor_id=context.actor_id(),
                                  action=action, from_status=from_status, to_status=to_status, note=note))


def receive(session: Session, body: ReportIn) -> tuple[WhistleblowerReport, str]:
    """Store a report; returns it and its tracking code (the only time the code exists in clear)."""
    now = clock.utc_now()
    received_at = body.received_at.astimezone(UTC) if body.received_at else now
    if received_at > now:
        raise Invalid("DATE_IN_FUTURE", "受理时间晚于当前时间")
    code = new_tracking_code()
    report_id = new_event_id()
    identified = [r for r in body.reporters if r.citizen_id]
    report = WhistleblowerReport(
        id=report_id, tracking_hash=tracking_hash(code), channel=body.channel, anonymous=body.anonymous,
        reporter_count=len(body.reporters), subject_name=body.subject_name or None, subject_type=body.subject_type,
        category=body.category, title=body.title, content=body.content, region=body.region,
        occurred_on=body.occurred_on,
        amount_claimed_fen=yuan_to_fen(body.amount_claimed) if body.amount_claimed is not None else None,
        urgent_requested=body.urgent, status="received", matter_id=report_id, received_at=received_at,
        recorded_by=context.actor_id(), status_changed_at=received_at, updated_at=now,
    )
    session.add(report)
    session.flush()
    for seq, reporter in enumerate(body.reporters, start=1):
        session.add(WhistleblowerReporter(report_id=report.id, seq=seq, name=reporter.name,
                                          citizen_id=reporter.citizen_id, phone=reporter.phone, email=reporter.email,
                                          address=reporter.address))
    _step(session, report, "received", None, "received", at=received_at)
    reasons = detect_flags(body)
    if reasons:
        _raise_alert(session, report, reasons)
    # The audit entry names the report, its channel and whether it is named — never who.
    append_audit(session, action=f"{ENTITY}.received", entity_type=ENTITY, entity_id=report.id,
                 detail={"channel": report.channel, "anonymous": report.anonymous,
                         "reporters": report.reporter_count, "identified_reporters": len(identified),
                         "category": report.category, "flagged": report.flagged,
                         "flag_reasons": [r["code"] for r in reasons]})
    session.flush()
    return report, code


def track(session: Session, code: str) -> tuple[WhistleblowerReport, list[WhistleblowerStep]]:
    normalised = normalise_code(code)
    if len(normalised) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in normalised):
        raise NotFound("TRACKING_CODE_NOT_FOUND", "查询码不存在，请核对后重试")
    report = session.execute(
        select(WhistleblowerReport).where(WhistleblowerReport.tracking_hash == tracking_hash(normalised))
    ).scalar_one_or_none()
    if report is None:
        raise NotFound("TRACKING_CODE_NOT_FOUND", "查询码不存在，请核对后重试")
    steps = list(session.execute(
        select(WhistleblowerStep).where(WhistleblowerStep.report_id == report.id,
                                        WhistleblowerStep.from_status.is_distinct_from(WhistleblowerStep.to_status))
        .order_by(WhistleblowerStep.id)
    ).scalars())
    return report, steps


# -- reads -----------------------------------------------------------------------------------------------------------


def get_report(session: Session, report_id: str, *, lock: bool = False) -> WhistleblowerReport:
    query = select(WhistleblowerReport).where(WhistleblowerReport.id == report_id)
    report = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if report is None:
        raise NotFound("REPORT_NOT_FOUND", "举报不存在")
    return report


def reporters_of(session: Session, report_ids: list[str]) -> dict[str, list[WhistleblowerReporter]]:
    """The reporters of each report: shown to oversight officers, used to withhold them from everyone else."""
    if not report_ids:
        return {}
    out: dict[str, list[WhistleblowerReporter]] = {}
    rows = session.execute(select(WhistleblowerReporter).where(WhistleblowerReporter.report_id.in_(report_ids))
                           .order_by(WhistleblowerReporter.report_id, WhistleblowerReporter.seq)).scalars()
    for row in rows:
        out.setdefault(row.report_id, []).append(row)
    return out


def first_of_matters(session: Session, matter_ids: set[str]) -> dict[str, str]:
    """matter id → the id of its first report (earliest received; the id breaks ties)."""
    if not matter_ids:
        return {}
    rows = session.execute(
        select(WhistleblowerReport.matter_id, WhistleblowerReport.id, WhistleblowerReport.received_at)
        .where(WhistleblowerReport.matter_id.in_(matter_ids))
    ).all()
    first: dict[str, tuple] = {}
    for matter_id, report_id, received_at in rows:
        key = (_aware(received_at), report_id)
        if matter_id not in first or key < first[matter_id]:
            first[matter_id] = key
    return {m: k[1] for m, k in first.items()}


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def list_reports(session: Session, *, status: str | None = None, flagged: bool | None = None,
                 assigned_to: str | None = None, category: str | None = None, channel: str | None = None,
                 matter_id: str | None = None, after: str | None = None, limit: int = 50
                 ) -> tuple[list[WhistleblowerReport], str | None]:
    query = select(WhistleblowerReport)
    if status:
        query = query.where(WhistleblowerReport.status == status)
    if flagged is not None:
        query = query.where(WhistleblowerReport.flagged == flagged)
    if assigned_to:
        query = query.where(WhistleblowerReport.assigned_to == assigned_to)
    if category:
        query = query.where(WhistleblowerReport.category == category)
    if channel:
        query = query.where(WhistleblowerReport.channel == channel)
    if matter_id:
        query = query.where(WhistleblowerReport.matter_id == matter_id)
    return oldest_first(session, query, WhistleblowerReport.id, after=after, limit=limit)


def steps_of(session: Session, report_id: str) -> list[WhistleblowerStep]:
    return list(session.execute(select(WhistleblowerStep).where(WhistleblowerStep.report_id == report_id)
                                .order_by(WhistleblowerStep.id)).scalars())


def notes_of(session: Session, report_id: str) -> list[WhistleblowerNote]:
    return list(session.execute(select(WhistleblowerNote).where(WhistleblowerNote.report_id == report_id)
                                .order_by(WhistleblowerNote.id)).scalars())


def rewards_of(session: Session, report_id: str) -> list[WhistleblowerReward]:
    return list(session.execute(select(WhistleblowerReward).where(WhistleblowerReward.report_id == report_id)
                                .order_by(WhistleblowerReward.id)).scalars())


# -- workflow --------------------------------------------------------------------------------------------------------


def _transition(session: Session, report: WhistleblowerReport, to_status: str, action: str,
                note: str | None = None, detail: dict | None = None) -> None:
    from_status = report.status
    now = clock.utc_now()
    if to_status != from_status:
        report.status = to_status
        report.status_changed_at = now
    report.updated_at = now
    _step(session, report, action, from_status, to_status, note)
    append_audit(session, action=f"{ENTITY}.{action}", entity_type=ENTITY, entity_id=report.id,
                 detail={"from": from_status, "to": to_status, "note": note is not None, **(detail or {})},
                 reason=note if action == "closed" else None)  # internal notes stay in whistleblower_step


def _require(report: WhistleblowerReport, allowed: tuple[str, ...], what: str) -> None:
    if report.status not in allowed:
        raise Conflict("INVALID_REPORT_STATUS",
                       f"举报当前状态为「{STATUS_LABELS[report.status]}」，不能{what}",
                       details={"status": report.status, "allowed": list(allowed)})


def assign(session: Session, report_id: str, officer_id: str, note: str | None) -> WhistleblowerReport:
    report = get_report(session, report_id, lock=True)
    _require(report, OPEN_STATUSES, "分派")
    report.assigned_to = officer_id
    _transition(session, report, "assigned" if report.status == "received" else report.status, "assigned", note,
                {"assigned_to": officer_id})
    session.flush()
    return report


def start_investigation(session: Session, report_id: str, note: str | None) -> WhistleblowerReport:
    report = get_report(session, report_id, lock=True)
    _require(report, ("assigned",), "开始调查（须先分派）")
    _transition(session, report, "investigating", "investigating", note)
    session.flush()
    return report


def answer(session: Session, report_id: str, body: AnswerIn) -> WhistleblowerReport:
    report = get_report(session, report_id, lock=True)
    _require(report, ("investigating",), "答复（须在调查核实后）")
    report.answer = body.answer
    report.outcome = body.outcome
    report.verified_amount_fen = yuan_to_fen(body.verified_amount) if body.verified_amount is not None else None
    report.answered_at = clock.utc_now()
    _transition(session, report, "answered", "answered", None,
                {"outcome": body.outcome, "verified_amount_fen": report.verified_amount_fen})
    session.flush()
    return report


def close(session: Session, report_id: str, reason: str) -> WhistleblowerReport:
    report = get_report(session, report_id, lock=True)
    _require(report, (*OPEN_STATUSES, "answered"), "办结")
    report.closed_reason = reason
    report.closed_at = clock.utc_now()
    _transition(session, report, "closed", "closed", reason)
    session.flush()
    return report


def add_note(session: Session, report_id: str, text: str) -> WhistleblowerNote:
    report = get_report(session, report_id, lock=True)
    note = WhistleblowerNote(report_id=report.id, at=clock.utc_now(), author=context.actor_id(), text=text)
    session.add(note)
    report.updated_at = note.at
    append_audit(session, action=f"{ENTITY}.noted", entity_type=ENTITY, entity_id=report.id,
                 detail={"length": len(text)})
    session.flush()
    return note


def flag(session: Session, report_id: str, reason: str) -> WhistleblowerAlert:
    report = get_report(session, report_id, lock=True)
    alert = _raise_alert(session, report, [{"code": "OFFICER", "detail": reason}])
    _step(session, report, "flagged", report.status, report.status, reason)
    append_audit(session, action=f"{ENTITY}.flagged", entity_type=ENTITY, entity_id=report.id,
                 detail={"alert_id": alert.id, "reason_length": len(reason)})
    session.flush()
    return alert


def list_alerts(session: Session, *, open_only: bool = True, limit: int = 100) -> list[WhistleblowerAlert]:
    query = select(WhistleblowerAlert).order_by(WhistleblowerAlert.id).limit(limit)
    if open_only:
        query = query.where(WhistleblowerAlert.acknowledged_at.is_(None))
    return list(session.execute(query).scalars())


def acknowledge_alert(session: Session, alert_id: str, action_taken: str) -> WhistleblowerAlert:
    alert = session.execute(select(WhistleblowerAlert).where(WhistleblowerAlert.id == alert_id).with_for_update()
                            ).scalar_one_or_none()
    if alert is None:
        raise NotFound("ALERT_NOT_FOUND", "提醒不存在")
    if alert.acknowledged_at is not None:
        raise Conflict("ALERT_ACKNOWLEDGED", "该提醒已处理")
    alert.acknowledged_at, alert.acknowledged_by, alert.action_taken = clock.utc_now(), context.actor_id(), action_taken
    append_audit(session, action="whistleblower_alert.acknowledged", entity_type="whistleblower_alert",
                 entity_id=alert.id, detail={"report_id": alert.report_id}, reason=action_taken)
    session.flush()
    return alert


def _granted_in(session: Session, matter_ids: list[str]) -> int:
    return session.execute(select(func.count()).select_from(WhistleblowerReward).where(
        WhistleblowerReward.matter_id.in_(matter_ids), WhistleblowerReward.eligible.is_(True))).scalar_one()


def link(session: Session, report_id: str, same_as: str) -> WhistleblowerReport:
    """Put ``report_id``'s matter (all its reports) into the matter of ``same_as``."""
    report = get_report(session, report_id, lock=True)
    target = get_report(session, same_as, lock=True)
    if report.matter_id == target.matter_id:
        return report
    if _granted_in(session, [report.matter_id, target.matter_id]):
        raise Conflict("MATTER_REWARDED", "已有奖励决定的事项不能再合并（第一举报人可能因此改变）")
    moved = list(session.execute(select(WhistleblowerReport).where(
        WhistleblowerReport.matter_id == report.matter_id)).scalars())
    old_matter = report.matter_id
    session.execute(update(WhistleblowerReport).where(WhistleblowerReport.matter_id == old_matter)
                    .values(matter_id=target.matter_id, updated_at=clock.utc_now()))
    for row in moved:
        _step(session, row, "linked", row.status, row.status, f"与举报 {target.id} 为同一事实（事项 {target.matter_id}）")
    append_audit(session, action=f"{ENTITY}.linked", entity_type=ENTITY, entity_id=report.id,
                 detail={"from_matter": old_matter, "to_matter": target.matter_id,
                         "reports": [r.id for r in moved]})
    session.flush()
    session.refresh(report)
    return report


# -- rewards ---------------------------------------------------------------------------------------------------------


def decision_of(reward: WhistleblowerReward) -> tuple[list[dict], list[str]]:
    body = json.loads(reward.decision)
    return body["checks"], body.get("steps", [])


def decide_reward(session: Session, report_id: str, body: RewardIn) -> WhistleblowerReward:
    """Check every eligibility condition and record the decision (granted or refused); a granted reward gets the
    standard's amount (main) or the officer's amount within the standard and the matter's cap (supplementary), on the
    verified amount the answer recorded (409 ``VERIFIED_AMOUNT_MISMATCH`` when the request names another)."""
    report = get_report(session, report_id, lock=True)
    if report.status not in ("answered", "closed"):
        raise Conflict("REPORT_NOT_CONCLUDED", "举报尚未办结答复，不能认定奖励")
    # Lock the matter's reports: the cap per matter is shared by its rewards.
    matter_reports = list(session.execute(select(WhistleblowerReport).where(
        WhistleblowerReport.matter_id == report.matter_id).with_for_update()).scalars())
    granted = list(session.execute(select(WhistleblowerReward).where(
        WhistleblowerReward.matter_id == report.matter_id, WhistleblowerReward.eligible.is_(True))).scalars())
    if any(g.report_id == report.id for g in granted):
        raise Conflict("REWARD_EXISTS", "该举报已有奖励决定")
    first_id = min(matter_reports, key=lambda r: (_aware(r.received_at), r.id)).id
    reporters = list(session.execute(select(WhistleblowerReporter).where(
        WhistleblowerReporter.report_id == report.id)).scalars())
    facts = rewards.ReportFacts(
        anonymous=report.anonymous, reporters=len(reporters),
        reporters_identified=sum(1 for r in reporters if r.name and r.citizen_id),
        subject_name=report.subject_name, category=report.category, outcome=report.outcome,
        is_first_in_matter=first_id == report.id, first_report_id=first_id,
    )
    findings = rewards.OfficerFindings(
        full_civil_capacity=body.full_civil_capacity, facts_already_known=body.facts_already_known,
        statutory_duty=body.statutory_duty, substantial_contribution=body.substantial_contribution,
    )
    # The amount found true is the one the answer recorded (查证属实金额): the reward is computed on it, never on
    # another figure entered at the reward (which could only restate it).
    verified_fen = report.verified_amount_fen or 0
    if body.verified_amount is not None and yuan_to_fen(body.verified_amount) != verified_fen:
        raise Conflict("VERIFIED_AMOUNT_MISMATCH",
                       f"查证属实金额以答复时认定的 {fen_to_yuan(verified_fen)} 元为准，不能按 {body.verified_amount} 元"
                       "计算奖励", details={"verified_amount": str(fen_to_yuan(verified_fen))})
    checks, kind = rewards.eligibility(facts, findings, verified_fen)
    standard = rewards.standard_for(report.region)
    cap_left = standard.cap_fen - sum(g.amount_fen or 0 for g in granted)
    if body.supplementary_amount is not None and kind != "supplementary":
        raise Invalid("SUPPLEMENTARY_AMOUNT_NOT_APPLICABLE",
                      "补充奖励金额只适用于对查处作出实质性贡献的非第一举报人")
    reward = WhistleblowerReward(
        id=new_event_id(), report_id=report.id, matter_id=report.matter_id, eligible=kind is not None, kind=kind,
        decision="", verified_amount_fen=verified_fen, standard=standard.name, decided_at=clock.utc_now(),
        decided_by=context.actor_id(), note=body.note,
    )
    steps: list[str] = []
    if kind is not None:
        amount = rewards.reward_amount(verified_fen, standard, cap_left_fen=max(cap_left, 0))
        steps = list(amount.steps)
        reward.computed_fen = amount.computed_fen
        reward.floor_applied, reward.cap_applied = amount.floor_applied, amount.cap_applied
        if kind == "main":
            reward.amount_fen, reward.main_key = amount.amount_fen, report.matter_id
        else:
            if body.supplementary_amount is None:
                raise Invalid("SUPPLEMENTARY_AMOUNT_REQUIRED",
                              "非第一举报人的适当奖励须由基金监督人员确定金额（supplementary_amount）")
            decided = yuan_to_fen(body.supplementary_amount)
            if decided > amount.amount_fen:
                raise Conflict("SUPPLEMENTARY_AMOUNT_TOO_HIGH",
                               f"适当奖励不得超过按标准计算的 {fen_to_yuan(amount.amount_fen)} 元"
                               f"（含本事项剩余上限 {fen_to_yuan(max(cap_left, 0))} 元）")
            reward.amount_fen = decided
            steps.append(f"非第一举报人适当奖励，确定为 {fen_to_yuan(decided)} 元")
        if reward.amount_fen <= 0:
            raise Conflict("MATTER_CAP_REACHED", "本事项的奖励已达每一事项最高限额")
        reward.award_key = report.id
    reward.decision = json.dumps({
        "checks": [c.as_dict() for c in checks], "steps": steps,
        "findings": {"full_civil_capacity": findings.full_civil_capacity,
                     "facts_already_known": findings.facts_already_known,
                     "statutory_duty": findings.statutory_duty,
                     "substantial_contribution": findings.substantial_contribution},
    }, ensure_ascii=False)
    session.add(reward)
    append_audit(session, action="whistleblower_reward.decided", entity_type=ENTITY, entity_id=report.id,
                 detail={"reward_id": reward.id, "eligible": reward.eligible, "kind": kind,
                         "failed": [c.code for c in checks if not c.ok], "verified_amount_fen": verified_fen,
                         "amount_fen": reward.amount_fen, "standard": standard.name}, reason=body.note)
    if kind is not None:
        record_event(session, WhistleblowerRewardGranted(
            reward_id=reward.id, report_id=report.id, matter_id=report.matter_id, kind=kind,
            amount_fen=reward.amount_fen, verified_amount_fen=verified_fen, standard=standard.name,
        ), source=SOURCE, subject=report.id)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("REWARD_EXISTS", "该举报或该事项的主要奖励已有决定") from None
    return reward
