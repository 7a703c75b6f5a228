"""Rules on contributions: S10 (declared base outside the floor/cap) and S17 (a refused payment method), and the
contribution-base history S10's retirement check reads (``claims.find_s10_rise``).

- ``AssessmentIssued``: PEN_EMP/PEN_GOV lines → ``rule_contribution_base`` (person × fund × period × employer; a
  superseding assessment overwrites); lines with ``clamp`` (the declared base was below the floor or above the cap
  and collection assessed the limit instead) → ``rule_base_clamp``, and one S10 case per employer and period
  (``S10:clamp:<employer_id>:<period>``) whose details count the clamped lines of that employer and period as they
  stand (floor and cap apart, a sample of persons). A clamp is not wrong in itself — collection applied the limit —
  but a declared base below the floor is under-declaration (少报) the unit must check with the employer (003 三.6),
  hence severity low. An assessment oversight's ledger already knows superseded is not recorded.
- ``AssessmentSuperseded``: the superseded assessment's clamped lines and bases are taken out (the new assessment's
  rows, keyed the same, have replaced most of them already).
- ``PaymentsRejected`` (002 四: no cash, cash cheques, post-dated bills, securities): each line refused with
  ``REFUSED_PAYMENT_METHOD`` opens ``S17:<tax_line_id>`` (or ``S17:<batch_id>:<line_no>`` without a tax line id),
  about the employer when the payer's USCC is a registered employer.
- ``PaymentsCollected``: a line collection *accepted* although its method is not one of the accepted four
  (``S17:collected:<payment_id>``, severity high: the money was taken in a refused form).
"""

from collections import Counter
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlmodel import Session

from services.contracts import collection as col
from services.kernel.events import EventEnvelope
from services.oversight.ledger.handlers import is_superseded
from services.oversight.facts import FactHandler
from services.oversight.mirror.handlers import FUND_TEXT
from services.oversight.models import MirroredEmployer
from services.oversight.rules.common import INDEX_FUNDS, bump, employers_by_uscc, yuan
from services.oversight.rules.models import RuleBaseClamp, RuleContributionBase
from services.oversight.rules.registry import Finding, Tally, raise_findings

REFUSED_METHOD = "REFUSED_PAYMENT_METHOD"
# 002 四 and DOMAIN.md: bank withholding, bank transfer, online payment, social security card — nothing else.
ACCEPTED_METHODS = frozenset({"bank_withholding", "bank_transfer", "online", "ss_card"})
SAMPLE = 20


def record_assessment(session: Session, e: col.AssessmentIssued) -> bool:
    """Bases and clamps of one part; False when the assessment is already superseded (nothing recorded)."""
    if is_superseded(session, e.assessment_id):
        return False
    employer = e.employer_id or ""
    bases: dict[tuple[str, str], dict[str, Any]] = {}
    clamps = []
    for line in e.lines:  # funds as plain text: a Fund member costs the sqlite3 driver more to bind (FUND_TEXT)
        if line.fund in INDEX_FUNDS:
            bases[(line.person_id, line.fund)] = {
                "person_id": line.person_id, "fund": FUND_TEXT[line.fund], "period": e.period, "employer_key": employer,
                "base_fen": line.base_fen, "declared_base_fen": line.declared_base_fen,
                "assessment_id": e.assessment_id}
        if line.clamp:
            clamps.append({"line_id": line.line_id, "assessment_id": e.assessment_id, "employer_key": employer,
                           "period": e.period, "fund": FUND_TEXT[line.fund], "person_id": line.person_id,
                           "clamp": line.clamp,
                           "declared_base_fen": line.declared_base_fen, "base_fen": line.base_fen})
    bump(session, RuleContributionBase, bases.values(),
         overwrite=("base_fen", "declared_base_fen", "assessment_id"))
    bump(session, RuleBaseClamp, clamps, overwrite=("clamp", "declared_base_fen", "base_fen"))
    return bool(clamps)


_CLAMPS_OF = select(RuleBaseClamp.clamp, RuleBaseClamp.fund, RuleBaseClamp.person_id, RuleBaseClamp.declared_base_fen,
                    RuleBaseClamp.base_fen).where(
    RuleBaseClamp.employer_key == bindparam("employer_key"), RuleBaseClamp.period == bindparam("period")).order_by(
    RuleBaseClamp.clamp, RuleBaseClamp.person_id, RuleBaseClamp.fund)
_REGION_OF = select(MirroredEmployer.region).where(MirroredEmployer.employer_id == bindparam("employer_id"))


def find_s10_clamps(session: Session, employer_key: str, period: int) -> list[Finding]:
    # Core statements, prepared once: the clamps are written with Core (bump), so nothing needs flushing first.
    connection = session.connection()
    rows = connection.execute(_CLAMPS_OF, {"employer_key": employer_key, "period": period}).all()
    if not rows:
        return []
    counts = Counter(r[0] for r in rows)
    persons = sorted({r[2] for r in rows})
    employer = connection.execute(_REGION_OF, {"employer_id": employer_key}).first() if employer_key else None
    parts = [f"低于下限 {counts['floor']} 条" if counts["floor"] else "", f"高于上限 {counts['cap']} 条" if counts["cap"] else ""]
    return [Finding(
        key=f"clamp:{employer_key or 'none'}:{period}", subject_type="employer" if employer_key else "period",
        subject_id=employer_key or str(period), employer_id=employer_key or None,
        region=employer.region if employer else None,
        title=f"申报缴费基数超出上下限：{period} 期 {'，'.join(p for p in parts if p)}（{len(persons)} 人）",
        details={"employer_id": employer_key or None, "period": period, "lines": len(rows),
                 "floor_lines": counts["floor"], "cap_lines": counts["cap"], "persons": len(persons),
                 "sample": [{"clamp": c, "fund": f, "person_id": p, "declared_base_fen": d, "base_fen": b}
                            for c, f, p, d, b in rows[:SAMPLE]]})]


def record_issued(session: Session, envelope: EventEnvelope) -> bool:
    e = envelope.payload_view(col.AssessmentIssued)
    return record_assessment(session, e)


def check_issued(session: Session, envelope: EventEnvelope, clamped: bool) -> Tally:
    e = envelope.payload_view(col.AssessmentIssued)
    if not clamped:
        return Tally()
    return raise_findings(session, "S10", find_s10_clamps(session, e.employer_id or "", e.period))


def record_superseded(session: Session, envelope: EventEnvelope) -> int:
    """Take the superseded assessment's clamps and bases out; returns the clamped lines removed."""
    e = envelope.payload_view(col.AssessmentSuperseded)
    removed = session.execute(delete(RuleBaseClamp).where(RuleBaseClamp.assessment_id == e.assessment_id)).rowcount
    session.execute(delete(RuleContributionBase).where(RuleContributionBase.assessment_id == e.assessment_id))
    return removed or 0


def check_superseded(session: Session, envelope: EventEnvelope, removed: int) -> Tally:
    """If clamped lines of the employer and period remain (the new assessment's), report them again so the case
    shows the corrected counts."""
    e = envelope.payload_view(col.AssessmentSuperseded)
    if not removed:
        return Tally()
    return raise_findings(session, "S10", find_s10_clamps(session, e.employer_id or "", e.period))


on_assessment_issued = FactHandler(record_issued, check_issued)
on_assessment_superseded = FactHandler(record_superseded, check_superseded)


def find_s17(session: Session, e: col.PaymentsRejected) -> list[Finding]:
    refused = [line for line in e.lines if line.code == REFUSED_METHOD]
    employers = employers_by_uscc(session, {line.payer_uscc for line in refused if line.payer_uscc})
    findings = []
    for line in refused:
        known = employers.get(line.payer_uscc or "")
        key = line.tax_line_id or f"{e.batch_id}:{line.line_no}"
        findings.append(Finding(
            key=key, subject_type="employer" if known else "payer",
            subject_id=known[0] if known else (line.payer_uscc or f"{e.batch_id}:{line.line_no}"),
            employer_id=known[0] if known else None, region=known[1] if known else None,
            amount_fen=line.amount_fen,
            title=f"以禁止方式缴费：{line.method or '未知方式'}，{line.fund or ''} {line.period or ''} "
                  f"{yuan(line.amount_fen)} 元",
            details={"batch_id": e.batch_id, "line_no": line.line_no, "tax_line_id": line.tax_line_id,
                     "method": line.method, "payer_uscc": line.payer_uscc, "fund": line.fund,
                     "period": line.period, "amount_fen": line.amount_fen, "message": line.message}))
    return findings


def find_s17_collected(session: Session, e: col.PaymentsCollected) -> list[Finding]:
    """Collected lines (the TAX leg) paid by a method outside the accepted ones: collection should have refused them;
    money was taken in a refused form."""
    odd = [line for line in e.lines if line.method not in ACCEPTED_METHODS]
    if not odd:
        return []
    employers = employers_by_uscc(session, {line.payer_uscc for line in odd if line.payer_uscc})
    findings = []
    for line in odd:
        known = employers.get(line.payer_uscc or "")
        employer_id = line.employer_id or (known[0] if known else None)
        amount = line.employer_fen + line.individual_fen + line.late_fee_fen
        findings.append(Finding(
            key=f"collected:{line.payment_id}", subject_type="employer" if employer_id else "payer",
            subject_id=employer_id or line.payer_uscc or line.payment_id, employer_id=employer_id,
            region=known[1] if known else None, amount_fen=amount, severity="high",
            title=f"已征收的缴费使用了禁止方式：{line.method}，{line.fund} {line.period} {yuan(amount)} 元",
            details={"batch_id": e.batch_id, "payment_id": line.payment_id, "tax_line_id": line.tax_line_id,
                     "method": line.method, "voucher_no": line.voucher_no, "payer_uscc": line.payer_uscc,
                     "fund": line.fund, "period": line.period, "amount_fen": amount,
                     "paid_date": line.paid_date.isoformat()}))
    return findings


def on_payments_collected(session: Session, envelope: EventEnvelope) -> Tally:
    e = envelope.payload_view(col.PaymentsCollected)
    return raise_findings(session, "S17", find_s17_collected(session, e))


def on_payments_rejected(session: Session, envelope: EventEnvelope) -> Tally:
    e = envelope.payload_view(col.PaymentsRejected)
    return raise_findings(session, "S17", find_s17(session, e))

