"""Whistleblower reports: public intake and tracking, officers' workflow, alerts and rewards.

``POST /whistleblowing/reports`` and ``GET /whistleblowing/track/{code}`` are public (no account), each with its own
per-IP limit (ratelimit.py). A report by phone, e-mail, letter or visit is recorded through the same endpoint by an
oversight officer, whose token the endpoint then requires. Everything else: oversight officers; internal auditors
read, without the reporter's identity.
"""

import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from sqlmodel import Session

from services.kernel import context, openapi
from services.kernel.auth import Unauthenticated, allow, public
from services.kernel.context import Actor
from services.kernel.money import fen_to_yuan
from services.kernel.service_app import SessionDep
from services.oversight.whistleblowing import ratelimit, service
from services.oversight.whistleblowing.models import WhistleblowerAlert, WhistleblowerReport, WhistleblowerReward
from services.oversight.whistleblowing.schemas import (
    AcknowledgeIn,
    AlertOut,
    AnswerIn,
    AssignIn,
    CheckOut,
    CloseIn,
    FlagIn,
    LinkIn,
    NoteIn,
    NoteOut,
    PublicStep,
    ReportDetail,
    ReportIn,
    ReporterOut,
    ReportOut,
    ReportPage,
    ReportReceived,
    RewardIn,
    RewardOut,
    StartIn,
    StepOut,
    TrackingOut,
)

OFFICERS = allow("oversight_officer")
READERS = allow("oversight_officer", "internal_auditor")
Limit = Annotated[int, Query(ge=1, le=500)]

router = APIRouter(prefix="/whistleblowing", tags=["whistleblowing"])


def _yuan(fen: int | None):  # noqa: ANN202
    return fen_to_yuan(fen) if fen is not None else None


def _report_out(report: WhistleblowerReport, reporters: dict[str, list], first: dict[str, str],
                cls: type = ReportOut, **extra) -> ReportOut:
    reveal = service.can_see_identity()
    own = reporters.get(report.id, [])

    def text(value: str) -> str:  # free text may name the reporter: only officers read it as written
        return value if reveal else service.withhold_identity(value, own)

    return cls(
        id=report.id, channel=report.channel, anonymous=report.anonymous, reporter_count=report.reporter_count,
        identity_withheld=not reveal and not report.anonymous,
        reporters=[ReporterOut(name=r.name, citizen_id=r.citizen_id, phone=r.phone, email=r.email, address=r.address)
                   for r in own] if reveal else None,
        subject_name=report.subject_name, subject_type=report.subject_type, category=report.category,
        title=text(report.title), content=text(report.content), region=report.region,
        occurred_on=report.occurred_on, amount_claimed=_yuan(report.amount_claimed_fen),
        urgent_requested=report.urgent_requested, flagged=report.flagged,
        flag_reasons=[{**r, "detail": text(r["detail"])} for r in json.loads(report.flag_reasons or "[]")],
        status=report.status,
        assigned_to=report.assigned_to, outcome=report.outcome, verified_amount=_yuan(report.verified_amount_fen),
        answer=text(report.answer) if report.answer else None, answered_at=report.answered_at,
        closed_reason=text(report.closed_reason) if report.closed_reason else None,
        closed_at=report.closed_at, matter_id=report.matter_id,
        first_in_matter=first.get(report.matter_id) == report.id, received_at=report.received_at,
        recorded_by=report.recorded_by, status_changed_at=report.status_changed_at, **extra,
    )


def _one(session: Session, report: WhistleblowerReport) -> ReportOut:
    return _report_out(report, service.reporters_of(session, [report.id]),
                       service.first_of_matters(session, {report.matter_id}))


def _reward_out(reward: WhistleblowerReward) -> RewardOut:
    checks, steps = service.decision_of(reward)
    return RewardOut(
        id=reward.id, report_id=reward.report_id, matter_id=reward.matter_id, eligible=reward.eligible,
        kind=reward.kind, checks=[CheckOut(**c) for c in checks], failed=[c["code"] for c in checks if not c["ok"]],
        verified_amount=fen_to_yuan(reward.verified_amount_fen), standard=reward.standard,
        computed=_yuan(reward.computed_fen), amount=_yuan(reward.amount_fen), floor_applied=reward.floor_applied,
        cap_applied=reward.cap_applied, steps=steps, decided_at=reward.decided_at, decided_by=reward.decided_by,
    )


def _alert_out(alert: WhistleblowerAlert, reporters: dict[str, list] | None = None) -> AlertOut:
    reveal = service.can_see_identity()
    own = (reporters or {}).get(alert.report_id, [])

    def text(value: str) -> str:
        return value if reveal else service.withhold_identity(value, own)

    return AlertOut(id=alert.id, report_id=alert.report_id,
                    reasons=[{**r, "detail": text(r["detail"])} for r in json.loads(alert.reasons)],
                    raised_at=alert.raised_at, raised_by=alert.raised_by, acknowledged_at=alert.acknowledged_at,
                    acknowledged_by=alert.acknowledged_by,
                    action_taken=text(alert.action_taken) if alert.action_taken else None)


def _staff(request: Request) -> None:
    """Reports by phone, e-mail, letter or visit are recorded by an oversight officer: verify the token here (the
    route itself is public for the web form)."""
    authorization = request.headers.get("authorization", "")
    if not authorization.lower().startswith("bearer "):
        raise Unauthenticated("电话、电子邮件、信函、来访举报须由基金监督人员登记（缺少访问令牌）")
    principal = request.app.state.token_verifier.verify(authorization[7:].strip())
    if "oversight_officer" not in principal.roles:
        raise HTTPException(403, detail={"code": "FORBIDDEN",
                                         "message": "电话、电子邮件、信函、来访举报须由基金监督(oversight_officer)人员登记"})
    actor = Actor(id=principal.id, role="oversight_officer", unit=principal.unit, region=principal.region,
                  roles=principal.roles)
    request.state.actor = actor
    context.set_actor(actor)


# -- public ----------------------------------------------------------------------------------------------------------


@router.post("/reports", response_model=ReportReceived, status_code=status.HTTP_201_CREATED,
             responses=openapi.refusals(401),  # channels other than web need an officer's token
             summary="File a report (public web form; officers record phone, e-mail, letter and visit reports)",
             description="No account needed for ``channel=web``. Anonymous or named (one reporter or a joint report). "
                         "The answer carries a tracking code, shown once: keep it to follow the report at "
                         "``GET /whistleblowing/track/{code}``. Limited per IP (429 RATE_LIMITED).",
             dependencies=[public()])
def file_report(body: ReportIn, request: Request, session: SessionDep) -> ReportReceived:
    if body.channel != "web":
        _staff(request)
    else:
        ratelimit.limit_intake(request)
    report, code = service.receive(session, body)
    prefix = request.headers.get("x-forwarded-prefix", "")
    return ReportReceived(
        report_id=report.id, tracking_code=code, status=report.status, received_at=report.received_at,
        track_url=f"{prefix}/whistleblowing/track/{code}",
        message="举报已受理。请妥善保存查询码，凭查询码可查询办理进度和答复；查询码遗失无法找回。",
    )


@router.get("/track/{code}", response_model=TrackingOut, summary="Follow a report with its tracking code (public)",
            description="Status, dates and the answer; never internal notes, outcome details or who handles it. "
                        "An unknown code is 404.", dependencies=[public()])
def track_report(code: str, request: Request, session: SessionDep) -> TrackingOut:
    ratelimit.limit_tracking(request)
    report, steps = service.track(session, code)
    return TrackingOut(
        status=report.status, status_label=service.STATUS_LABELS[report.status], received_at=report.received_at,
        last_update_at=report.status_changed_at,
        answer=report.answer if report.status in ("answered", "closed") else None, answered_at=report.answered_at,
        closed_reason=report.closed_reason, closed_at=report.closed_at,
        steps=[PublicStep(status=s.to_status, at=s.at) for s in steps],
    )


# -- officers --------------------------------------------------------------------------------------------------------


@router.get("/reports", response_model=ReportPage, summary="Reports (identity shown to oversight officers only)",
            dependencies=[READERS])
def list_reports(
    session: SessionDep,
    status_: Annotated[str | None, Query(alias="status",
                                         pattern="^(received|assigned|investigating|answered|closed)$")] = None,
    flagged: bool | None = None,
    assigned_to: str | None = None,
    category: Annotated[str | None, Query(pattern="^(collection|payment|management|investment|other)$")] = None,
    channel: Annotated[str | None, Query(pattern="^(web|phone|email|letter|visit)$")] = None,
    matter_id: str | None = None,
    after: str | None = None,
    limit: Limit = 50,
) -> ReportPage:
    rows, next_cursor = service.list_reports(session, status=status_, flagged=flagged, assigned_to=assigned_to,
                                             category=category, channel=channel, matter_id=matter_id, after=after,
                                             limit=limit)
    reporters = service.reporters_of(session, [r.id for r in rows])
    first = service.first_of_matters(session, {r.matter_id for r in rows})
    return ReportPage(items=[_report_out(r, reporters, first) for r in rows], next_cursor=next_cursor)


@router.get("/reports/{report_id}", response_model=ReportDetail,
            summary="One report with its steps, internal notes and reward decisions", dependencies=[READERS])
def get_report(report_id: str, session: SessionDep) -> ReportDetail:
    report = service.get_report(session, report_id)
    reporters = service.reporters_of(session, [report.id])
    reveal = service.can_see_identity()

    def text(value: str) -> str:
        return value if reveal else service.withhold_identity(value, reporters.get(report.id, []))

    return _report_out(
        report, reporters, service.first_of_matters(session, {report.matter_id}), cls=ReportDetail,
        steps=[StepOut(at=s.at, actor_id=s.actor_id, action=s.action, from_status=s.from_status, to_status=s.to_status,
                       note=text(s.note) if s.note else None) for s in service.steps_of(session, report.id)],
        notes=[NoteOut(id=n.id, at=n.at, author=n.author, text=text(n.text)) for n in service.notes_of(session, report.id)],
        rewards=[_reward_out(r) for r in service.rewards_of(session, report.id)],
    )


@router.post("/reports/{report_id}/assign", response_model=ReportOut, summary="Assign to an officer",
             dependencies=[OFFICERS])
def assign(report_id: str, body: AssignIn, session: SessionDep) -> ReportOut:
    return _one(session, service.assign(session, report_id, body.officer_id, body.note))


@router.post("/reports/{report_id}/investigate", response_model=ReportOut, summary="Start the investigation",
             dependencies=[OFFICERS])
def investigate(report_id: str, body: StartIn, session: SessionDep) -> ReportOut:
    return _one(session, service.start_investigation(session, report_id, body.note))


@router.post("/reports/{report_id}/answer", response_model=ReportOut,
             summary="Answer the reporter (shown on the tracking page) with the outcome", dependencies=[OFFICERS])
def answer(report_id: str, body: AnswerIn, session: SessionDep) -> ReportOut:
    return _one(session, service.answer(session, report_id, body))


@router.post("/reports/{report_id}/close", response_model=ReportOut, summary="Close (办结), with a reason",
             dependencies=[OFFICERS])
def close(report_id: str, body: CloseIn, session: SessionDep) -> ReportOut:
    return _one(session, service.close(session, report_id, body.reason))


@router.post("/reports/{report_id}/notes", response_model=NoteOut, status_code=status.HTTP_201_CREATED,
             summary="Internal investigation note (never shown to the reporter)", dependencies=[OFFICERS])
def add_note(report_id: str, body: NoteIn, session: SessionDep) -> NoteOut:
    note = service.add_note(session, report_id, body.text)
    return NoteOut(id=note.id, at=note.at, author=note.author, text=note.text)


@router.post("/reports/{report_id}/flag", response_model=AlertOut, status_code=status.HTTP_201_CREATED,
             summary="Flag as major or urgent: alert an officer at once (000 三(四))", dependencies=[OFFICERS])
def flag(report_id: str, body: FlagIn, session: SessionDep) -> AlertOut:
    return _alert_out(service.flag(session, report_id, body.reason))


@router.post("/reports/{report_id}/link", response_model=ReportOut,
             summary="Same fact as another report: one matter, whose first reporter is the main beneficiary",
             dependencies=[OFFICERS])
def link(report_id: str, body: LinkIn, session: SessionDep) -> ReportOut:
    return _one(session, service.link(session, report_id, body.same_as))


@router.post("/reports/{report_id}/reward", response_model=RewardOut, status_code=status.HTTP_201_CREATED,
             summary="Decide a reward: every eligibility condition checked, amount per the standard",
             description="001 第三十三条、第三十六条至第三十八条. The decision is recorded whether granted or refused; "
                         "``checks`` lists each condition, ``failed`` the codes that did not hold. A granted main "
                         "reward is 2 % of the verified amount, at least 200 yuan, at most 100 000 yuan per matter "
                         "(default standard, rewards.py), rounded half-up to the fen.",
             dependencies=[OFFICERS])
def decide_reward(report_id: str, body: RewardIn, session: SessionDep) -> RewardOut:
    return _reward_out(service.decide_reward(session, report_id, body))


@router.get("/alerts", response_model=list[AlertOut], summary="Major or urgent reports awaiting an officer",
            dependencies=[READERS])
def list_alerts(session: SessionDep, open_only: Annotated[bool, Query(alias="open")] = True,
                limit: Limit = 100) -> list[AlertOut]:
    alerts = service.list_alerts(session, open_only=open_only, limit=limit)
    reporters = service.reporters_of(session, sorted({a.report_id for a in alerts}))
    return [_alert_out(a, reporters) for a in alerts]


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut,
             summary="Acknowledge an alert with what was done", dependencies=[OFFICERS])
def acknowledge(alert_id: str, body: AcknowledgeIn, session: SessionDep) -> AlertOut:
    return _alert_out(service.acknowledge_alert(session, alert_id, body.action_taken))
