"""The catalogue of suspicion rules (OVERSIGHT.md, 疑点规则) and the one way a rule opens a case.

Every rule is a named unit: a stable id, a severity, the seed clause it enforces, a title, its mode — ``event``
(evaluated in the consumer's transaction when the fact arrives), ``sweep`` (evaluated by the scheduled sweep) or
``event+sweep`` (both: the event catches the fact at once, the sweep catches what arrived in the other order, e.g.
a death reported after the payment) — and the facts it reads (``sources``); the functions that find it live in the
rule modules (see the package docstring). A finding goes through ``open_case`` with ``fact_key = "<rule id>:<key>"``;
the key names the fact precisely (a person and a period, a claim, an account, a reconciliation cell), so a rule firing
twice on the same fact — a redelivered event, the sweep after the event, a daily sweep — counts an occurrence on the
same case.

A rule marked ``month_end`` judges a month as it stands at its end (an income account's closing balance, the month's
three-way reconciliation: 000 二(二) 每月对账, 000 二(四)1 月末无余额). Such a rule never judges a month that has not
ended: each of its findings names its ``month``, and ``judgeable`` keeps only those of months over before the day
judged (the sweep's ``as_of``, and never later than today). This is the framework's, not each rule's, check.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session

from services.kernel.clock import china_today
from services.kernel.periods import month_has_ended
from services.oversight.cases.service import open_case

EVENT, SWEEP, BOTH = "event", "sweep", "event+sweep"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str  # low | medium | high | severe
    clause: str
    title: str
    description: str
    mode: str
    sources: tuple[str, ...]
    suggested_class: int | None = None  # 001 第二十九条 class an officer is likely to choose
    deadline_days: int | None = None  # None: the case default (30 days)
    month_end: bool = False  # judges a month at its end: never a month that has not ended


def _rule(id: str, severity: str, clause: str, title: str, description: str, mode: str,  # noqa: A002
          sources: Iterable[str], suggested_class: int | None = None, deadline_days: int | None = None,
          month_end: bool = False) -> Rule:
    return Rule(id, severity, clause, title, description, mode, tuple(sources), suggested_class, deadline_days,
                month_end)


RULES: dict[str, Rule] = {r.id: r for r in (
    _rule("S01", "high", "001 第二十七条", "死亡后仍发放待遇",
          "A benefit paid for a period after the month of the person's death (the death month itself is payable).",
          BOTH, ("benefits.payments.settled", "accounts.person.life_status_changed", "exchange.person.died"), 4),
    _rule("S02", "high", "001 第二十七条", "服刑期间发放待遇",
          "A benefit paid for a period after the month imprisonment began, up to the month it ended "
          "(open while no end is known).",
          BOTH, ("benefits.payments.settled", "accounts.person.life_status_changed", "exchange.person.imprisoned"),
          4),
    _rule("S03", "medium", "000 三(九)", "重复参保或重复领取养老金",
          "Reported overlaps of pension schemes (DuplicateEnrolmentFound); a person active in two pension schemes "
          "in the mirror; or paid by two pension funds for the same period.",
          BOTH, ("accounts.enrolment.duplicate_found", "mirrored enrolments", "benefits.payments.settled"), 1),
    _rule("S04", "medium", "001 第二十六条", "生存认证逾期仍发放待遇",
          "Paid for a month beginning more than 12 months after the last survival certification (or, never "
          "certified, after the first paid month).",
          BOTH, ("benefits.survival.certified", "benefits.payments.settled"), 4),
    _rule("S05", "high", "000 三(九)", "领取失业保险金期间有在职参保",
          "Unemployment benefit paid for a period covered by an employer's PEN_EMP or UNEMP enrolment.",
          BOTH, ("benefits.payments.settled", "mirrored enrolments"), 4),
    _rule("S06", "high", "001 第十八条", "大额待遇未经复核",
          "A claim or entitlement whose single payment is above the large-amount threshold (or that benefits "
          "flagged large) approved without the large_amount_review level.",
          EVENT, ("benefits.entitlement.granted", "benefits.claim.decided", "benefits.claim.submitted"), 1),
    _rule("S07", "high", "000 二(三)", "待遇发放至非本人账户或多人共用账户",
          "A payment to an account whose holder is not the beneficiary, or one bank account receiving payments "
          "for several persons.",
          EVENT, ("benefits.payments.issued", "mirrored persons"), 6),
    _rule("S08", "medium", "001 第二十二条", "未达法定退休年龄办理退休",
          "A basic-pension claim whose age at the effective month is below the statutory age (men 60; women 50 — "
          "the post type that raises it to 55 is not in the event).",
          EVENT, ("benefits.claim.submitted", "mirrored persons"), 1),
    _rule("S09", "medium", "001 第二十一条", "一次性补发跨度长或金额大",
          "A claim with a one-off back payment covering at least the configured months or amount.",
          EVENT, ("benefits.claim.submitted",), 1),
    _rule("S10", "low", "003 三.6", "缴费基数超出上下限或退休前大幅提高",
          "Assessment lines whose declared base was outside the floor/cap (one case per employer and period), or "
          "a basic-pension claim after a sharp rise of the contribution base in the months before retirement.",
          EVENT, ("collection.assessment.issued", "collection.assessment.superseded", "benefits.claim.submitted"),
          1),
    _rule("S11", "medium", "003 三.5", "新设立单位逾期未办理社会保险登记",
          "A business registered with market regulation more than 30 days ago that is not registered as an "
          "employer.",
          SWEEP, ("exchange.business.registered", "mirrored employers"), 3),
    _rule("S12", "medium", "000 二(二)", "国库缴款未按期划入财政专户",
          "A treasury remittance not in the special account in full within 10 working days (reconciliation R3 "
          "late).",
          SWEEP, ("reconciliation R3",), 1),
    _rule("S13", "medium", "000 二(四)1", "收入户月末余额不为零",
          "An income account whose closing balance at the month's end is not zero (reconciliation R4).",
          SWEEP, ("reconciliation R4",), 1, month_end=True),
    _rule("S14", "high", "000 二(一)", "基金之间相互挤占或调剂",
          "A movement between different funds' books (reconciliation R6, usage rule U7).",
          SWEEP, ("reconciliation R6",), 6),
    _rule("S15", "medium", "000 二(二)", "三方对账不符",
          "A reconciliation cell that is not matched: R1 fund × period, R2 employer × fund × period, R5 money out, "
          "or a receipt that does not fit its remittance (R3 mismatch / missing_tax).",
          SWEEP, ("reconciliation R1", "reconciliation R2", "reconciliation R3", "reconciliation R5"), 1,
          month_end=True),
    _rule("S16", "high", "000 二(四)1", "收入户、支出户违规收支",
          "A movement collection flagged against a usage rule of the fund accounts (U1 income account paying "
          "other than the special account, U3 expenditure account receiving other than the special account or "
          "interest; the other usage rules U2, U4–U6 are reported here too).",
          SWEEP, ("reconciliation R6",), 6),
    _rule("S17", "medium", "002 四", "以现金等禁止方式缴费",
          "A contribution line refused at intake for its payment method (REFUSED_PAYMENT_METHOD), or a collected "
          "line whose method is not one of the accepted four (bank withholding, transfer, online, ss card).",
          EVENT, ("collection.payments.rejected", "collection.payments.collected"), 1),
    _rule("S18", "high", "004 第3项、第22项", "同一人办理同一业务两个审核环节或兼任不相容岗位",
          "One user deciding two review levels of one claim (or deciding a claim they submitted); or a user "
          "holding roles of an incompatible pair (from the gateway's tenure report).",
          BOTH, ("benefits.claim.decided", "benefits.claim.submitted", "gateway /identity/reports/long-tenure"), 1),
    _rule("S19", "high", "004 第24项", "未经审批修改数据（后台修改）",
          "Identity fields changed on a person (the API refuses it); a life-status change from an unknown source; "
          "one citing partner data no partner record backs; or one citing a correction accounts' audit chain "
          "shows no approval (by another person) for.",
          BOTH, ("accounts.person.updated", "accounts.person.life_status_changed", "exchange.*",
                 "accounts audit chain: life_status_correction"), 1),
    _rule("S20", "medium", "001 第十六条", "高风险岗位连续任职超过5年",
          "A high-risk post (accountant, cashier, agency reviewer/approver) held for more than 5 years.",
          SWEEP, ("gateway /identity/reports/long-tenure",), 1),
)}


# -- findings --------------------------------------------------------------------------------------------------------


@dataclass
class Finding:
    """One fact a rule found. ``key`` identifies the fact within the rule (the case's fact key is
    ``"<rule id>:<key>"``)."""

    key: str
    subject_type: str
    subject_id: str
    title: str
    details: dict[str, Any]
    person_id: str | None = None
    employer_id: str | None = None
    region: str | None = None
    amount_fen: int | None = None
    severity: str | None = None  # default: the rule's
    unit: str | None = None
    month: int | None = None  # YYYYMM the finding judges; required for a ``month_end`` rule


def judging_day(as_of: date) -> date:
    """The day a sweep judges month ends on: ``as_of``, but never a day that has not come."""
    return min(as_of, china_today())


def judgeable(rule_id: str, findings: Iterable[Finding], as_of: date) -> list[Finding]:
    """The findings ``rule_id`` may raise as of ``as_of``: all of them, or for a ``month_end`` rule only those of
    months that have ended (a finding of such a rule that names no month is a programming error)."""
    findings = list(findings)
    if not RULES[rule_id].month_end:
        return findings
    if unnamed := [f.key for f in findings if f.month is None]:
        raise ValueError(f"{rule_id} judges month ends: findings {unnamed[:5]} name no month")
    day = judging_day(as_of)
    return [f for f in findings if month_has_ended(f.month, day)]  # type: ignore[arg-type]


@dataclass
class Tally:
    found: int = 0
    created: int = 0
    existing: int = 0
    case_ids: list[str] = field(default_factory=list)

    def add(self, other: "Tally") -> None:
        self.found += other.found
        self.created += other.created
        self.existing += other.existing
        self.case_ids.extend(other.case_ids)

    def as_dict(self) -> dict[str, int]:
        return {"found": self.found, "created": self.created, "existing": self.existing}


def fact_key(rule_id: str, key: str) -> str:
    return f"{rule_id}:{key}"


def raise_findings(session: Session, rule_id: str, findings: Iterable[Finding]) -> Tally:
    """Open (or find) the case of each finding, in the caller's transaction (nothing is committed here)."""
    rule = RULES[rule_id]
    tally = Tally()
    for f in findings:
        opening = open_case(
            session, rule_id=rule.id, severity=f.severity or rule.severity, subject_type=f.subject_type,
            subject_id=f.subject_id, fact_key=fact_key(rule.id, f.key), title=f.title[:200], details=f.details,
            seed_clause=rule.clause, unit=f.unit, deadline_days=rule.deadline_days, region=f.region,
            suggested_class=rule.suggested_class, amount_fen=f.amount_fen, person_id=f.person_id,
            employer_id=f.employer_id)
        tally.found += 1
        if opening.created:
            tally.created += 1
        else:
            tally.existing += 1
        tally.case_ids.append(opening.case.id)
    return tally


def catalogue() -> list[dict[str, Any]]:
    return [{"id": r.id, "severity": r.severity, "clause": r.clause, "title": r.title, "description": r.description,
             "mode": r.mode, "sources": list(r.sources), "suggested_class": r.suggested_class,
             "month_end": r.month_end}
            for r in RULES.values()]
