"""Rules on benefit claims and their review levels: S06 (large amount without the extra review), S08 (retirement
below the statutory age), S09 (one-off back payment over many months or a large amount), S10 (a sharp rise of the
contribution base before retirement) and S18 (one user at two levels of one claim, or deciding their own claim).

Facts: ``ClaimSubmitted`` → ``rule_claim`` (with the submitting clerk, the event's actor); ``ClaimDecided`` →
``rule_claim_decision`` (one row per level; the first report of a level stays) and the claim's status.

- **S06** (001 第十八条) on ``EntitlementGranted``: the payment (``monthly_amount_fen``; a one-off entitlement carries
  its one-off amount there) is above oversight's threshold, or benefits flagged the claim large, and the
  ``large_amount_review`` level is not among ``levels``; and on ``ClaimDecided`` approving a claim that is large
  without an approving ``large_amount_review`` decision. Both report the same fact (``S06:<claim_id>``).
- **S08** (001 第二十二条) on ``ClaimSubmitted`` of a basic pension in review: ``age_at_effective`` below the statutory
  age — men 60, women 50 (worker posts). *Limit*: the event does not say whether a woman's post is a cadre post
  (statutory age 55), so a woman aged 50–54 is not flagged; a person the mirror has no sex for is judged against
  the lowest age (50). Every early retirement is flagged, with or without a 特殊工种 basis: the rule asks the unit
  to verify the basis (坚决制止违规办理特殊工种提前退休).
- **S09** (001 第二十一条) on ``ClaimSubmitted`` in review with ``back_payment_months``: at least
  ``back_payment_months`` months (default 36), or at least ``back_payment_amount_fen`` (the one-off amount, else
  monthly × months).
- **S10** (003 三.6) on ``ClaimSubmitted`` of a basic pension in review: the average assessed PEN_EMP/PEN_GOV base of
  the 12 months before the effective month is at least 150 % of the average of the 36 months before those (each
  window needs 6 assessed months; bases of one month from several employers are added).
- **S18** (004 第3项、第22项) on ``ClaimDecided``: one user at two levels of one claim, or the submitting clerk at any
  level. Benefits refuses both (403 SAME_PERSON_TWO_LEVELS / SUBMITTER_CANNOT_DECIDE, and a unique constraint): the
  rule watches the events, so a decision that got past the service (a direct database write, another code path)
  is still seen.

Blocked claims (``status = blocked``) are refusals on record, not payments: S08–S10 look at claims in review only.
"""

from collections import defaultdict

from sqlalchemy import func, select
from sqlmodel import Session

from services.contracts import benefits as ben
from services.kernel.events import EventEnvelope
from services.kernel.periods import add_months
from services.oversight.facts import FactHandler
from services.oversight.rules.common import INDEX_FUNDS, insert_for, persons, regions_of, yuan
from services.oversight.rules.models import RuleClaim, RuleClaimDecision, RuleContributionBase
from services.oversight.rules.registry import Finding, Tally, raise_findings
from services.kernel.settings import get_settings
from services.kernel import clock

LARGE_LEVEL = "large_amount_review"


# -- facts -----------------------------------------------------------------------------------------------------------


def record_claim(session: Session, e: ben.ClaimSubmitted, envelope: EventEnvelope) -> RuleClaim:
    claim = session.get(RuleClaim, e.claim_id)
    values = dict(person_id=e.person_id, kind=e.kind, fund=e.fund, importance=e.importance,
                  large_amount=e.large_amount, monthly_amount_fen=e.monthly_amount_fen,
                  one_off_amount_fen=e.one_off_amount_fen, effective_period=e.effective_period,
                  age_at_effective=e.age_at_effective, back_payment_months=e.back_payment_months,
                  submitted_by=envelope.actor.id, submitted_at=envelope.time, updated_at=clock.utc_now())
    if claim is None:
        claim = RuleClaim(claim_id=e.claim_id, claim_status=e.status, **values)
    else:  # a placeholder made by a decision that arrived first keeps its later status
        for key, value in values.items():
            setattr(claim, key, value)
    session.add(claim)
    session.flush()
    return claim


def record_decision(session: Session, e: ben.ClaimDecided, envelope: EventEnvelope) -> RuleClaim | None:
    session.execute(insert_for(session, RuleClaimDecision).values(
        claim_id=e.claim_id, level=e.level, person_id=e.person_id, decided_by=e.decided_by, role=e.role,
        decision=e.decision, decided_at=envelope.time, event_id=envelope.id,
    ).on_conflict_do_nothing(index_elements=["claim_id", "level"]))
    claim = session.get(RuleClaim, e.claim_id)
    if claim is not None:
        claim.claim_status, claim.updated_at = e.claim_status, clock.utc_now()
        session.add(claim)
        session.flush()
    return claim


def _decisions(session: Session, claim_id: str) -> list[RuleClaimDecision]:
    return list(session.execute(select(RuleClaimDecision).where(RuleClaimDecision.claim_id == claim_id)
                                .order_by(RuleClaimDecision.decided_at, RuleClaimDecision.level)).scalars())


# -- S06 -------------------------------------------------------------------------------------------------------------


def _is_large(amounts: list[int | None], flagged: bool) -> bool:
    threshold = get_settings().oversight_rules.large_amount_threshold_fen
    return flagged or any(a is not None and a > threshold for a in amounts)


def find_s06_granted(session: Session, e: ben.EntitlementGranted) -> list[Finding]:
    claim = session.get(RuleClaim, e.claim_id)
    flagged = bool(claim and claim.large_amount)
    amounts = [e.monthly_amount_fen, *([claim.monthly_amount_fen, claim.one_off_amount_fen] if claim else [])]
    if not _is_large(amounts, flagged) or e.large_amount_reviewed or LARGE_LEVEL in e.levels:
        return []
    return [_s06(session, e.claim_id, e.person_id, amount=max(a for a in amounts if a is not None),
                 levels=list(e.levels), flagged=flagged, via="entitlement_granted",
                 entitlement_id=e.entitlement_id)]


def find_s06_decided(session: Session, e: ben.ClaimDecided, claim: RuleClaim | None) -> list[Finding]:
    if claim is None or e.claim_status != "approved":
        return []
    amounts = [claim.monthly_amount_fen, claim.one_off_amount_fen]
    if not _is_large(amounts, claim.large_amount):
        return []
    decisions = _decisions(session, e.claim_id)
    if any(d.level == LARGE_LEVEL and d.decision == "approve" for d in decisions):
        return []
    return [_s06(session, e.claim_id, e.person_id, amount=max((a for a in amounts if a is not None), default=0),
                 levels=[d.level for d in decisions], flagged=claim.large_amount, via="claim_decided",
                 entitlement_id=None)]


def _s06(session: Session, claim_id: str, person_id: str, *, amount: int, levels: list[str], flagged: bool,
         via: str, entitlement_id: str | None) -> Finding:
    threshold = get_settings().oversight_rules.large_amount_threshold_fen
    return Finding(
        key=claim_id, subject_type="claim", subject_id=claim_id, person_id=person_id,
        region=regions_of(session, [person_id]).get(person_id), amount_fen=amount,
        title=f"大额待遇未经复核即核准：单笔 {yuan(amount)} 元（限额 {yuan(threshold)} 元），审核环节 {'、'.join(levels) or '无'}",
        details={"claim_id": claim_id, "entitlement_id": entitlement_id, "amount_fen": amount,
                 "threshold_fen": threshold, "flagged_large_by_benefits": flagged, "levels": levels, "seen_on": via})


# -- S08, S09, S10 ---------------------------------------------------------------------------------------------------


def statutory_age(sex: str | None) -> tuple[int, str]:
    s = get_settings().oversight_rules
    if sex == "M":
        return s.statutory_age_male, "男性法定退休年龄"
    if sex == "F":
        return s.statutory_age_female_worker, "女性（工人岗位）法定退休年龄；干部岗位 55 岁无法从事件判断"
    return min(s.statutory_age_male, s.statutory_age_female_worker, s.statutory_age_female_cadre), \
        "性别未知，按最低法定退休年龄判断"


def find_s08(session: Session, e: ben.ClaimSubmitted) -> list[Finding]:
    if e.kind != "basic_pension" or e.status != "in_review" or e.age_at_effective is None:
        return []
    person = persons(session, [e.person_id]).get(e.person_id)
    age, basis = statutory_age(person.sex if person else None)
    if e.age_at_effective >= age:
        return []
    return [Finding(
        key=e.claim_id, subject_type="claim", subject_id=e.claim_id, person_id=e.person_id,
        region=person.region if person else None,
        title=f"未达法定退休年龄办理退休：{e.effective_period} 时 {e.age_at_effective} 岁（法定 {age} 岁）",
        details={"claim_id": e.claim_id, "effective_period": e.effective_period,
                 "age_at_effective": e.age_at_effective, "statutory_age": age, "basis": basis,
                 "sex": person.sex if person else None, "monthly_amount_fen": e.monthly_amount_fen})]


def find_s09(session: Session, e: ben.ClaimSubmitted) -> list[Finding]:
    if e.back_payment_months is None or e.status != "in_review":
        return []
    s = get_settings().oversight_rules
    amount = e.one_off_amount_fen if e.one_off_amount_fen is not None else \
        (e.monthly_amount_fen or 0) * e.back_payment_months
    reasons = []
    if e.back_payment_months >= s.back_payment_months:
        reasons.append(f"跨度 {e.back_payment_months} 个月（≥{s.back_payment_months}）")
    if amount >= s.back_payment_amount_fen:
        reasons.append(f"金额 {yuan(amount)} 元（≥{yuan(s.back_payment_amount_fen)}）")
    if not reasons:
        return []
    return [Finding(
        key=e.claim_id, subject_type="claim", subject_id=e.claim_id, person_id=e.person_id,
        region=regions_of(session, [e.person_id]).get(e.person_id), amount_fen=amount,
        title=f"一次性补发：{'，'.join(reasons)}",
        details={"claim_id": e.claim_id, "kind": e.kind, "back_payment_months": e.back_payment_months,
                 "amount_fen": amount, "months_threshold": s.back_payment_months,
                 "amount_threshold_fen": s.back_payment_amount_fen, "effective_period": e.effective_period})]


def base_history(session: Session, person_id: str, first: int, last: int) -> dict[int, int]:
    """Assessed pension bases per period (several employers added), ``first``…``last`` inclusive."""
    B = RuleContributionBase
    rows = session.execute(
        select(B.period, func.sum(B.base_fen)).where(B.person_id == person_id, B.fund.in_(INDEX_FUNDS),
                                                     B.period >= first, B.period <= last)
        .group_by(B.period))
    return {period: int(total) for period, total in rows}


def find_s10_rise(session: Session, e: ben.ClaimSubmitted) -> list[Finding]:
    if e.kind != "basic_pension" or e.status != "in_review":
        return []
    s = get_settings().oversight_rules
    last = add_months(e.effective_period, -1)
    recent_from = add_months(e.effective_period, -s.base_rise_recent_months)
    earlier_from = add_months(recent_from, -s.base_rise_earlier_months)
    history = base_history(session, e.person_id, earlier_from, last)
    recent = [v for p, v in history.items() if p >= recent_from]
    earlier = [v for p, v in history.items() if p < recent_from]
    if len(recent) < s.base_rise_min_months or len(earlier) < s.base_rise_min_months:
        return []
    recent_avg, earlier_avg = sum(recent) / len(recent), sum(earlier) / len(earlier)
    if earlier_avg <= 0 or recent_avg * 100 < s.base_rise_percent * earlier_avg:
        return []
    ratio = round(recent_avg / earlier_avg * 100)
    return [Finding(
        key=f"rise:{e.claim_id}", subject_type="claim", subject_id=e.claim_id, person_id=e.person_id,
        region=regions_of(session, [e.person_id]).get(e.person_id),
        title=f"退休前缴费基数大幅提高：最后 {s.base_rise_recent_months} 个月平均基数为此前的 {ratio}%",
        details={"claim_id": e.claim_id, "effective_period": e.effective_period,
                 "recent": {"from": recent_from, "to": last, "months": len(recent),
                            "average_base_fen": round(recent_avg)},
                 "earlier": {"from": earlier_from, "to": add_months(recent_from, -1), "months": len(earlier),
                             "average_base_fen": round(earlier_avg)},
                 "ratio_percent": ratio, "threshold_percent": s.base_rise_percent})]


# -- S18 -------------------------------------------------------------------------------------------------------------


def find_s18_claim(session: Session, claim_id: str, claim: RuleClaim | None) -> list[Finding]:
    decisions = _decisions(session, claim_id)
    by_user: dict[str, list[RuleClaimDecision]] = defaultdict(list)
    for d in decisions:
        by_user[d.decided_by].append(d)
    submitter = claim.submitted_by if claim else None
    findings = []
    person_id = decisions[0].person_id if decisions else (claim.person_id if claim else None)
    region = regions_of(session, [person_id]).get(person_id) if person_id else None
    for user, own in sorted(by_user.items()):
        submitted = user == submitter
        if len(own) < 2 and not submitted:
            continue
        steps = (["submit"] if submitted else []) + [d.level for d in own]
        findings.append(Finding(
            key=f"claim:{claim_id}:{user}", subject_type="user", subject_id=user, region=region,
            title=f"同一人办理同一待遇申请的 {len(steps)} 个环节：{'、'.join(steps)}",
            details={"claim_id": claim_id, "person_id": person_id, "user": user, "steps": steps,
                     "decisions": [{"level": d.level, "role": d.role, "decision": d.decision,
                                    "event_id": d.event_id} for d in own], "submitted_by_same_user": submitted}))
    return findings


# -- event entry points: the facts (replayed by a rebuild), then the cases (live only) ---------------------------------


def record_submission(session: Session, envelope: EventEnvelope) -> RuleClaim:
    e = envelope.payload_view(ben.ClaimSubmitted)
    return record_claim(session, e, envelope)


def check_submission(session: Session, envelope: EventEnvelope, claim: RuleClaim) -> Tally:
    e = envelope.payload_view(ben.ClaimSubmitted)
    tally = raise_findings(session, "S08", find_s08(session, e))
    tally.add(raise_findings(session, "S09", find_s09(session, e)))
    tally.add(raise_findings(session, "S10", find_s10_rise(session, e)))
    if _decisions(session, e.claim_id):  # decisions that arrived before the submission
        tally.add(raise_findings(session, "S18", find_s18_claim(session, e.claim_id, claim)))
    return tally


def record_decided(session: Session, envelope: EventEnvelope) -> RuleClaim | None:
    e = envelope.payload_view(ben.ClaimDecided)
    return record_decision(session, e, envelope)


def check_decided(session: Session, envelope: EventEnvelope, claim: RuleClaim | None) -> Tally:
    e = envelope.payload_view(ben.ClaimDecided)
    tally = raise_findings(session, "S18", find_s18_claim(session, e.claim_id, claim))
    tally.add(raise_findings(session, "S06", find_s06_decided(session, e, claim)))
    return tally


on_claim_submitted = FactHandler(record_submission, check_submission)
on_claim_decided = FactHandler(record_decided, check_decided)


def on_entitlement_granted(session: Session, envelope: EventEnvelope) -> Tally:
    e = envelope.payload_view(ben.EntitlementGranted)
    return raise_findings(session, "S06", find_s06_granted(session, e))
