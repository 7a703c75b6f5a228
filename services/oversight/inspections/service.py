"""On-site inspections (现场监督; 001 第八条、第十一条; 000 三(二)) and the yearly programme.

- **Plan** (监督方案): target unit, level, scope, planned date; optionally part of the year's programme (then the
  target must be one of its same-level agencies or sampled lower-level agencies, in the programme's year).
- **Notification** at least 3 days before the planned date (001 第十一条(一): 至少提前3日通知): a later one is refused
  with 409 ``NOTICE_TOO_LATE``. Rescheduling after notification to a day less than 3 days after the notice withdraws
  the notice (it must be given again).
- **Team** of at least 2 inspectors (001 第八条): fewer is refused (422 ``TEAM_TOO_SMALL``); findings, the letter and
  the report need the team.
- **Findings** from the planned day on, each with the amount involved (000 三(二): 涉及资金数额).
- **Feedback letter** (问题反馈函, 001 第十一条(三)) with a rectification deadline for every finding, after the
  issue date; then each finding can be marked rectified. **Report** (001 第十一条(四)), after the letter when
  anything was found; whether it went to the higher-level supervisor is recorded.
- **Programme** (programme.py): one per year; same-level agencies always in; the lower-level sample drawn from
  the recorded seed; ``verify`` re-derives it.
"""

from collections import defaultdict
from datetime import date
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.contracts.oversight import InspectionFeedbackIssued, InspectionReported
from services.kernel import clock, context
from services.kernel.audit import append_audit
from services.kernel.errors import Conflict, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.money import yuan_to_fen
from services.kernel.outbox import record_event
from services.kernel.paging import oldest_first
from services.oversight.inspections import programme as sampling
from services.oversight.inspections.models import (
    Inspection,
    InspectionFinding,
    InspectionMember,
    InspectionProgramme,
    InspectionProgrammeAgency,
)
from services.oversight.inspections.schemas import (
    FeedbackLetterIn,
    FindingIn,
    InspectionIn,
    InspectionReportIn,
    MemberIn,
    NotificationIn,
    ProgrammeIn,
    RectifiedIn,
    RescheduleIn,
)

SOURCE = "oversight"
ENTITY = "inspection"
PROGRAMME_ENTITY = "inspection_programme"
NOTICE_DAYS = 3
MIN_TEAM = 2
STATUS_LABELS = {"planned": "已制定方案", "notified": "已通知", "inspecting": "检查中", "feedback_issued": "已下发问题反馈函",
                 "reported": "已形成监督报告"}



def _not_future(day: date, what: str) -> None:
    if day > clock.china_today():
        raise Invalid("DATE_IN_FUTURE", f"{what} {day} 晚于今天")


def _require(inspection: Inspection, allowed: tuple[str, ...], what: str) -> None:
    if inspection.status not in allowed:
        raise Conflict("INVALID_INSPECTION_STATUS",
                       f"现场监督当前状态为「{STATUS_LABELS[inspection.status]}」，不能{what}",
                       details={"status": inspection.status, "allowed": list(allowed)})


def _audit(session: Session, inspection: Inspection, action: str, detail: dict | None = None,
           reason: str | None = None) -> None:
    inspection.updated_at = clock.utc_now()
    append_audit(session, action=f"{ENTITY}.{action}", entity_type=ENTITY, entity_id=inspection.id,
                 detail={"status": inspection.status, **(detail or {})}, reason=reason)


# -- reads -----------------------------------------------------------------------------------------------------------


def get(session: Session, inspection_id: str, *, lock: bool = False) -> Inspection:
    query = select(Inspection).where(Inspection.id == inspection_id)
    inspection = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if inspection is None:
        raise NotFound("INSPECTION_NOT_FOUND", "现场监督不存在")
    return inspection


def members_of(session: Session, inspection_ids: list[str]) -> dict[str, list[InspectionMember]]:
    out: dict[str, list[InspectionMember]] = defaultdict(list)
    if inspection_ids:
        for m in session.execute(select(InspectionMember).where(InspectionMember.inspection_id.in_(inspection_ids))
                                 .order_by(InspectionMember.id)).scalars():
            out[m.inspection_id].append(m)
    return out


def findings_of(session: Session, inspection_ids: list[str]) -> dict[str, list[InspectionFinding]]:
    out: dict[str, list[InspectionFinding]] = defaultdict(list)
    if inspection_ids:
        for f in session.execute(select(InspectionFinding).where(InspectionFinding.inspection_id.in_(inspection_ids))
                                 .order_by(InspectionFinding.inspection_id, InspectionFinding.seq)).scalars():
            out[f.inspection_id].append(f)
    return out


def list_inspections(session: Session, *, status: str | None = None, programme_id: str | None = None,
                     year: int | None = None, target_code: str | None = None, after: str | None = None,
                     limit: int = 50) -> tuple[list[Inspection], str | None]:
    query = select(Inspection)
    if status:
        query = query.where(Inspection.status == status)
    if programme_id:
        query = query.where(Inspection.programme_id == programme_id)
    if year:
        query = query.where(Inspection.planned_on >= date(year, 1, 1), Inspection.planned_on <= date(year, 12, 31))
    if target_code:
        query = query.where(Inspection.target_code == target_code)
    return oldest_first(session, query, Inspection.id, after=after, limit=limit)


def rectification_overdue(finding: InspectionFinding, today: date | None = None) -> bool:
    return finding.rectify_by is not None and finding.rectified_on is None and finding.rectify_by < (today or clock.china_today())


# -- plan, team, notification ----------------------------------------------------------------------------------------


def _team(session: Session, inspection: Inspection, members: list[MemberIn]) -> list[InspectionMember]:
    distinct = {m.inspector_id: m for m in members}
    if len(distinct) < MIN_TEAM:
        raise Invalid("TEAM_TOO_SMALL", f"现场监督应当由 {MIN_TEAM} 名以上监督人员共同进行（001 第八条），"
                                        f"本次只有 {len(distinct)} 名")
    if sum(1 for m in distinct.values() if m.leader) > 1:
        raise Invalid("MORE_THAN_ONE_LEADER", "检查组只能有一名组长")
    for old in session.execute(select(InspectionMember).where(InspectionMember.inspection_id == inspection.id)).scalars():
        session.delete(old)
    session.flush()
    rows = [InspectionMember(inspection_id=inspection.id, inspector_id=m.inspector_id, name=m.name, leader=m.leader)
            for m in distinct.values()]
    session.add_all(rows)
    return rows


def _team_size(session: Session, inspection_id: str) -> int:
    return session.execute(select(func.count()).select_from(InspectionMember)
                           .where(InspectionMember.inspection_id == inspection_id)).scalar_one()


def _require_team(session: Session, inspection: Inspection) -> None:
    if _team_size(session, inspection.id) < MIN_TEAM:
        raise Conflict("TEAM_REQUIRED", f"须先组成 {MIN_TEAM} 名以上监督人员的检查组（001 第八条）")


def plan(session: Session, body: InspectionIn) -> Inspection:
    if body.programme_id is not None:  # "" too: an id that names no programme, never "no programme"
        programme = session.get(InspectionProgramme, body.programme_id)
        if programme is None:
            raise NotFound("PROGRAMME_NOT_FOUND", "年度监督计划不存在")
        if body.planned_on.year != programme.year:
            raise Invalid("OUTSIDE_PROGRAMME_YEAR", f"计划日期不在 {programme.year} 年度计划内")
        agency = session.execute(select(InspectionProgrammeAgency).where(
            InspectionProgrammeAgency.programme_id == programme.id,
            InspectionProgrammeAgency.code == (body.target_code or ""))).scalar_one_or_none()
        if agency is None or not agency.selected:
            raise Conflict("NOT_IN_PROGRAMME", f"{body.target_code or '（未填机构代码）'} 不是 {programme.year} 年度计划"
                                               "中的同级经办机构或抽中的下一级经办机构")
        if agency.level != body.target_level:
            raise Invalid("LEVEL_MISMATCH", f"年度计划中该机构为 {agency.level}")
    now = clock.utc_now()
    inspection = Inspection(
        id=new_event_id(), programme_id=body.programme_id, target_code=body.target_code, target_unit=body.target_unit,
        target_level=body.target_level, scope=body.scope, planned_on=body.planned_on, status="planned",
        created_at=now, created_by=context.actor_id(), updated_at=now,
    )
    session.add(inspection)
    session.flush()
    team = _team(session, inspection, body.members) if body.members is not None else []
    _audit(session, inspection, "planned", {"target_unit": inspection.target_unit, "target_code": inspection.target_code,
                                            "planned_on": inspection.planned_on, "programme_id": body.programme_id,
                                            "team": [m.inspector_id for m in team]})
    session.flush()
    return inspection


def set_team(session: Session, inspection_id: str, members: list[MemberIn]) -> Inspection:
    inspection = get(session, inspection_id, lock=True)
    _require(inspection, ("planned", "notified", "inspecting"), "调整检查组")
    team = _team(session, inspection, members)
    _audit(session, inspection, "team_set", {"team": [m.inspector_id for m in team]})
    session.flush()
    return inspection


def reschedule(session: Session, inspection_id: str, body: RescheduleIn) -> Inspection:
    inspection = get(session, inspection_id, lock=True)
    _require(inspection, ("planned", "notified"), "改期")
    before = inspection.planned_on
    inspection.planned_on = body.planned_on
    withdrawn = False
    if inspection.notified_on is not None and (body.planned_on - inspection.notified_on).days < NOTICE_DAYS:
        inspection.notified_on, inspection.notice_ref, inspection.status = None, None, "planned"
        withdrawn = True
    _audit(session, inspection, "rescheduled", {"from": before, "to": body.planned_on, "notice_withdrawn": withdrawn},
           reason=body.reason)
    session.flush()
    return inspection


def notify(session: Session, inspection_id: str, body: NotificationIn) -> Inspection:
    inspection = get(session, inspection_id, lock=True)
    _require(inspection, ("planned",), "通知")
    _not_future(body.notified_on, "通知日期")
    ahead = (inspection.planned_on - body.notified_on).days
    if ahead < NOTICE_DAYS:
        raise Conflict("NOTICE_TOO_LATE",
                       f"现场监督须至少提前 {NOTICE_DAYS} 日通知被监督单位（001 第十一条(一)）：计划 {inspection.planned_on}，"
                       f"通知 {body.notified_on} 只提前 {ahead} 日；请改期后再通知",
                       details={"planned_on": str(inspection.planned_on), "notified_on": str(body.notified_on),
                                "days_ahead": ahead, "required": NOTICE_DAYS})
    inspection.notified_on, inspection.notice_ref, inspection.status = body.notified_on, body.notice_ref, "notified"
    _audit(session, inspection, "notified", {"notified_on": body.notified_on, "days_ahead": ahead,
                                             "notice_ref": body.notice_ref})
    session.flush()
    return inspection


# -- findings, letter, report ----------------------------------------------------------------------------------------


def add_finding(session: Session, inspection_id: str, body: FindingIn) -> InspectionFinding:
    inspection = get(session, inspection_id, lock=True)
    _require(inspection, ("notified", "inspecting"), "记录检查发现（须先通知被监督单位）")
    _require_team(session, inspection)
    if clock.china_today() < inspection.planned_on:
        raise Conflict("INSPECTION_NOT_STARTED", f"现场检查计划于 {inspection.planned_on} 开始")
    seq = session.execute(select(func.coalesce(func.max(InspectionFinding.seq), 0))
                          .where(InspectionFinding.inspection_id == inspection.id)).scalar_one() + 1
    finding = InspectionFinding(id=new_event_id(), inspection_id=inspection.id, seq=seq, title=body.title,
                                description=body.description, fund=body.fund, amount_fen=yuan_to_fen(body.amount),
                                created_at=clock.utc_now(), created_by=context.actor_id())
    session.add(finding)
    inspection.status = "inspecting"
    _audit(session, inspection, "finding_recorded", {"finding_id": finding.id, "seq": seq,
                                                     "amount_fen": finding.amount_fen, "fund": finding.fund})
    session.flush()
    return finding


def issue_letter(session: Session, inspection_id: str, body: FeedbackLetterIn) -> Inspection:
    inspection = get(session, inspection_id, lock=True)
    _require(inspection, ("inspecting",), "下发问题反馈函（须有检查发现）")
    _require_team(session, inspection)
    _not_future(body.issued_on, "反馈函日期")
    if body.issued_on < inspection.planned_on:
        raise Invalid("LETTER_BEFORE_INSPECTION", "问题反馈函日期早于现场检查日期")
    if body.oral_feedback_on is not None and not inspection.planned_on <= body.oral_feedback_on <= body.issued_on:
        raise Invalid("INVALID_ORAL_FEEDBACK_DATE", "口头反馈应在现场检查之后、书面反馈函之前")
    findings = {f.id: f for f in session.execute(select(InspectionFinding).where(
        InspectionFinding.inspection_id == inspection.id)).scalars()}
    given: dict[str, date] = {}
    for d in body.deadlines:
        if d.finding_id not in findings:
            raise Invalid("UNKNOWN_FINDING", f"{d.finding_id} 不是本次检查的发现")
        if d.finding_id in given:
            raise Invalid("DUPLICATE_DEADLINE", f"检查发现 {d.finding_id} 的整改期限重复")
        if d.rectify_by <= body.issued_on:
            raise Invalid("DEADLINE_NOT_AFTER_LETTER", f"整改期限 {d.rectify_by} 须晚于反馈函日期 {body.issued_on}")
        given[d.finding_id] = d.rectify_by
    missing = sorted((f.seq for fid, f in findings.items() if fid not in given))
    if missing:
        raise Invalid("DEADLINE_MISSING", f"每条检查发现都须明确整改时限，第 {'、'.join(map(str, missing))} 条没有",
                      details={"missing_seq": missing})
    for fid, rectify_by in given.items():
        findings[fid].rectify_by = rectify_by
    inspection.letter_no, inspection.letter_issued_on = body.letter_no, body.issued_on
    inspection.oral_feedback_on, inspection.letter_requirements = body.oral_feedback_on, body.requirements
    inspection.status = "feedback_issued"
    total = sum(f.amount_fen for f in findings.values())
    _audit(session, inspection, "feedback_issued", {"letter_no": body.letter_no, "issued_on": body.issued_on,
                                                    "findings": len(findings), "amount_fen": total,
                                                    "deadlines": {findings[k].seq: v for k, v in given.items()}})
    record_event(session, InspectionFeedbackIssued(
        inspection_id=inspection.id, target_unit=inspection.target_unit, target_code=inspection.target_code,
        letter_no=body.letter_no, issued_on=body.issued_on, findings=len(findings), amount_fen=total,
        earliest_deadline=min(given.values()), latest_deadline=max(given.values()),
    ), source=SOURCE, subject=inspection.id)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("LETTER_NO_TAKEN", f"反馈函文号 {body.letter_no} 已被使用") from None
    return inspection


def mark_rectified(session: Session, inspection_id: str, finding_id: str, body: RectifiedIn) -> InspectionFinding:
    inspection = get(session, inspection_id, lock=True)
    _require(inspection, ("feedback_issued", "reported"), "登记整改（须先下发问题反馈函）")
    finding = session.get(InspectionFinding, finding_id)
    if finding is None or finding.inspection_id != inspection.id:
        raise NotFound("FINDING_NOT_FOUND", "检查发现不存在")
    if finding.rectified_on is not None:
        raise Conflict("ALREADY_RECTIFIED", "该问题已登记整改")
    _not_future(body.rectified_on, "整改日期")
    if inspection.letter_issued_on and body.rectified_on < inspection.letter_issued_on:
        raise Invalid("RECTIFIED_BEFORE_LETTER", "整改日期早于问题反馈函日期")
    finding.rectified_on, finding.rectification_note = body.rectified_on, body.note
    _audit(session, inspection, "finding_rectified", {"finding_id": finding.id, "seq": finding.seq,
                                                      "rectified_on": body.rectified_on,
                                                      "late": body.rectified_on > finding.rectify_by},
           reason=body.note)
    session.flush()
    return finding


def report(session: Session, inspection_id: str, body: InspectionReportIn) -> Inspection:
    inspection = get(session, inspection_id, lock=True)
    findings = findings_of(session, [inspection.id])[inspection.id]
    if findings:
        _require(inspection, ("feedback_issued",), "形成监督报告（有检查发现的须先下发问题反馈函）")
    else:
        _require(inspection, ("notified", "inspecting"), "形成监督报告（须先通知被监督单位并开展检查）")
        if clock.china_today() < inspection.planned_on:
            raise Conflict("INSPECTION_NOT_STARTED", f"现场检查计划于 {inspection.planned_on} 开始")
    _require_team(session, inspection)
    _not_future(body.reported_on, "报告日期")
    earliest = inspection.letter_issued_on or inspection.planned_on
    if body.reported_on < earliest:
        raise Invalid("REPORT_TOO_EARLY", f"报告日期不能早于 {earliest}")
    inspection.reported_on, inspection.report_summary = body.reported_on, body.summary
    inspection.reported_to_higher, inspection.status = body.reported_to_higher, "reported"
    total = sum(f.amount_fen for f in findings)
    _audit(session, inspection, "reported", {"reported_on": body.reported_on, "findings": len(findings),
                                             "amount_fen": total, "reported_to_higher": body.reported_to_higher})
    record_event(session, InspectionReported(
        inspection_id=inspection.id, programme_id=inspection.programme_id, target_unit=inspection.target_unit,
        target_code=inspection.target_code, target_level=inspection.target_level, reported_on=body.reported_on,
        findings=len(findings), amount_fen=total, reported_to_higher=body.reported_to_higher,
    ), source=SOURCE, subject=inspection.id)
    session.flush()
    return inspection


# -- programme -------------------------------------------------------------------------------------------------------


def create_programme(session: Session, body: ProgrammeIn) -> InspectionProgramme:
    if body.sample_rate < sampling.MIN_SAMPLE_RATE or body.sample_rate > 1:
        raise Invalid("SAMPLE_RATE_TOO_LOW", "抽查比例须在 20% 至 100% 之间（001 第十一条：抽查不少于20%下一级经办机构）")
    codes = [a.code for a in body.agencies]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    if duplicates:
        raise Invalid("DUPLICATE_AGENCY", f"经办机构代码重复：{'、'.join(duplicates)}")
    same = [a for a in body.agencies if a.level == "same_level"]
    lower = [a for a in body.agencies if a.level == "lower_level"]
    if not same:
        raise Invalid("SAME_LEVEL_REQUIRED", "年度计划须包括同级经办机构（每年检查一次）")
    if session.execute(select(InspectionProgramme.id).where(InspectionProgramme.year == body.year)).first():
        raise Conflict("PROGRAMME_EXISTS", f"{body.year} 年度监督计划已制定")
    seed = body.seed or sampling.new_seed()
    sample = set(sampling.draw_sample(seed, [a.code for a in lower], body.sample_rate))
    programme = InspectionProgramme(
        id=new_event_id(), year=body.year, seed=seed, algorithm=sampling.ALGORITHM,
        sample_rate=str(body.sample_rate.normalize()), lower_level_count=len(lower), sample_size=len(sample),
        created_at=clock.utc_now(), created_by=context.actor_id(),
    )
    session.add(programme)
    session.flush()
    for agency in body.agencies:
        lower_level = agency.level == "lower_level"
        session.add(InspectionProgrammeAgency(
            programme_id=programme.id, code=agency.code, name=agency.name, level=agency.level,
            selected=not lower_level or agency.code in sample,
            rank_key=sampling.rank_key(seed, agency.code) if lower_level else None,
        ))
    append_audit(session, action=f"{PROGRAMME_ENTITY}.created", entity_type=PROGRAMME_ENTITY, entity_id=programme.id,
                 detail={"year": body.year, "seed": seed, "algorithm": sampling.ALGORITHM,
                         "sample_rate": programme.sample_rate, "same_level": [a.code for a in same],
                         "lower_level": len(lower), "sample": sorted(sample)})
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("PROGRAMME_EXISTS", f"{body.year} 年度监督计划已制定") from None
    return programme


def get_programme(session: Session, programme_id: str) -> InspectionProgramme:
    programme = session.get(InspectionProgramme, programme_id)
    if programme is None:
        raise NotFound("PROGRAMME_NOT_FOUND", "年度监督计划不存在")
    return programme


def list_programmes(session: Session, year: int | None = None) -> list[InspectionProgramme]:
    query = select(InspectionProgramme).order_by(InspectionProgramme.year)
    if year:
        query = query.where(InspectionProgramme.year == year)
    return list(session.execute(query).scalars())


def programme_agencies(session: Session, programme_id: str) -> list[InspectionProgrammeAgency]:
    return list(session.execute(select(InspectionProgrammeAgency).where(
        InspectionProgrammeAgency.programme_id == programme_id).order_by(InspectionProgrammeAgency.id)).scalars())


def programme_inspections(session: Session, programme_id: str) -> dict[str, list[Inspection]]:
    out: dict[str, list[Inspection]] = defaultdict(list)
    for i in session.execute(select(Inspection).where(Inspection.programme_id == programme_id)
                             .order_by(Inspection.id)).scalars():
        out[i.target_code or ""].append(i)
    return out


def recorded_sample(agencies: list[InspectionProgrammeAgency]) -> list[str]:
    lower = [a for a in agencies if a.level == "lower_level" and a.selected]
    return [a.code for a in sorted(lower, key=lambda a: (a.rank_key or "", a.code))]


def derived_sample(programme: InspectionProgramme, agencies: list[InspectionProgrammeAgency]) -> list[str]:
    return sampling.draw_sample(programme.seed, [a.code for a in agencies if a.level == "lower_level"],
                                Decimal(programme.sample_rate))
