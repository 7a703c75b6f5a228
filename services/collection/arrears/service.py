"""Arrears (欠费) as of a day, per employer and line, with the late fee shown line by line; arrears notices.

An assessment line is in arrears on day *D* when *D* is after its due date and, counting only the payments made on
or before *D*, some principal or late fee is still unpaid. Superseded lines (and lines of superseded assessments) are
not arrears: their replacement is. The fee of each line is computed by ``latefee.arrears_as_of`` from the line's
``LateFeeCharge`` rows (one per payment, paid on or before *D*) and the open segment to *D*, at the daily rate in
force for *D*'s month (``parameters.ParameterSets.daily_rate``); earlier segments keep the fee charged when the
payment was settled. Lines without an employer (resident PEN_RES assessments) are not in the employer views.
"""

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import or_, select
from sqlmodel import Session

from services.collection.arrears import latefee
from services.collection.arrears.parameters import load_parameter_sets
from services.collection.arrears.schemas import (
    ArrearsLine,
    ArrearsReport,
    EmployerArrears,
    EmployerTotals,
    EmployerTotalsPage,
    FundTotal,
    NoticeOut,
    NoticeSummary,
    OpenSegment,
    PaymentStep,
)
from services.collection.arrears.states import Step, chunks, load_states
from services.collection.models import (
    ArrearsNotice,
    Assessment,
    AssessmentLine,
    LateFeeCharge,
    RegistryEmployer,
    TaxPayment,
)
from services.contracts.collection import ArrearsNoticeIssued
from services.kernel import clock, context
from services.kernel.audit import append_audit
from services.kernel.auth import ensure_in_region, region_filter
from services.kernel.errors import Conflict, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.money import fen_to_yuan, yuan_to_fen
from services.kernel.outbox import record_event
from services.kernel.paging import newest_first

SOURCE = "collection"

RULE = ("滞纳金按日加收万分之五（或参数设定的日费率），自缴费期限届满次日起至缴纳之日止，按欠缴本金计算（社会保险法 第八十六条）；"
        "每个计费区段（到期日或上次缴费日至本次缴费日或截至日）本金不变，区段滞纳金 = 本金 × 日费率 × 天数，四舍五入到分；"
        "缴费先冲抵本金，再冲抵截至缴费日的滞纳金。")


def today_in_china() -> date:
    return clock.china_today()


def _candidates(employer_ids: list[str] | None, as_of: date):
    """Lines that may be in arrears on ``as_of``: past due, not superseded, and open now or paid only after it."""
    line = AssessmentLine.__table__.c
    paid_later = (
        select(LateFeeCharge.assessment_line_id)
        .join(TaxPayment, TaxPayment.id == LateFeeCharge.tax_payment_id)
        .where(TaxPayment.paid_date > as_of)
    )
    query = (
        select(line.id, line.assessment_id, line.employer_id, line.person_id, line.fund, line.period,
               line.employer_fen, line.individual_fen, line.due_date)
        .join(Assessment, Assessment.id == line.assessment_id)
        .where(line.due_date < as_of, line.status != "superseded", Assessment.status != "superseded",
               line.employer_id.is_not(None),
               or_(line.status == "open", line.id.in_(paid_later)))
    )
    if employer_ids is not None:
        query = query.where(line.employer_id.in_(employer_ids))
    return query


def _step_out(step: Step) -> PaymentStep:
    return PaymentStep(tax_payment_id=step.tax_payment_id, paid_date=step.paid_date, days=step.days,
                       principal_before=fen_to_yuan(step.principal_before_fen),
                       fee_accrued=fen_to_yuan(step.fee_accrued_fen), principal_paid=fen_to_yuan(step.principal_paid_fen),
                       fee_paid=fen_to_yuan(step.fee_paid_fen))


def _payment_steps(session: Session, line_ids: list[str], as_of: date) -> dict[str, list[PaymentStep]]:
    """The recorded charges of each line, by paid date."""
    steps: dict[str, list[PaymentStep]] = defaultdict(list)
    for part in chunks(sorted(line_ids)):
        rows = session.execute(
            select(LateFeeCharge, TaxPayment.paid_date)
            .join(TaxPayment, TaxPayment.id == LateFeeCharge.tax_payment_id)
            .where(LateFeeCharge.assessment_line_id.in_(part), TaxPayment.paid_date <= as_of)
            .order_by(TaxPayment.paid_date, LateFeeCharge.id)
        ).all()
        for charge, paid_date in rows:
            steps[charge.assessment_line_id].append(PaymentStep(
                tax_payment_id=charge.tax_payment_id, paid_date=paid_date, days=charge.days_late,
                principal_before=fen_to_yuan(charge.principal_before_fen),
                fee_accrued=fen_to_yuan(charge.fee_accrued_fen),
                principal_paid=fen_to_yuan(charge.principal_paid_fen), fee_paid=fen_to_yuan(charge.fee_paid_fen)))
    return steps


def _employer_arrears(session: Session, employer_ids: list[str], as_of: date, rate: Decimal,
                      rate_on: Callable[[date], Decimal], *, with_steps: bool = True) -> dict[str, tuple[list[ArrearsLine], list[dict]]]:
    """Per employer: its arrears lines (and the raw fen figures for totals), zero lines dropped."""
    rows = []
    for part in chunks(employer_ids):
        rows.extend(session.execute(_candidates(part, as_of)).all())
    loaded = load_states(session, rows, through=as_of, rate_on=rate_on)
    states = loaded.states
    steps = _payment_steps(session, [r.id for r in rows if r.id not in loaded.history], as_of) if with_steps else {}
    for line_id, replayed in loaded.replayed.items():
        steps[line_id] = [_step_out(s) for s in replayed]
    out: dict[str, tuple[list[ArrearsLine], list[dict]]] = defaultdict(lambda: ([], []))
    for r in sorted(rows, key=lambda x: (x.employer_id, x.period, x.fund, x.person_id, x.id)):
        state = states[r.id]
        result = latefee.arrears_as_of(state, as_of, rate)
        if result.total_fen <= 0:
            continue
        segment = result.open_segment
        fee_before = max(0, state.outstanding_fee_fen)
        lines, figures = out[r.employer_id]
        figures.append({"fund": r.fund, "due_date": r.due_date, "principal": result.principal_outstanding_fen,
                        "fee": result.fee_outstanding_fen})
        lines.append(ArrearsLine(
            assessment_line_id=r.id, assessment_id=r.assessment_id, person_id=r.person_id, fund=r.fund,
            period=r.period, due_date=r.due_date, principal=fen_to_yuan(state.principal_fen),
            principal_paid=fen_to_yuan(state.paid_principal_fen),
            principal_outstanding=fen_to_yuan(result.principal_outstanding_fen), days_late=result.days_late,
            fee_unpaid_before=fen_to_yuan(fee_before),
            open_segment=OpenSegment(from_date=segment.start, through=segment.end, days=segment.days,
                                     principal=fen_to_yuan(segment.principal_fen), rate=str(segment.rate),
                                     exact_fee=f"{(segment.exact_fen / 100).normalize():f}",
                                     fee=fen_to_yuan(segment.fee_fen), explanation=segment.explain()),
            late_fee=fen_to_yuan(result.fee_outstanding_fen), total=fen_to_yuan(result.total_fen),
            payments=steps.get(r.id, []),
            corrects=loaded.history.get(r.id, [])))
    return dict(out)


def _sum(figures: list[dict], key: str) -> int:
    return sum(f[key] for f in figures)


def _by_fund(figures: list[dict]) -> list[FundTotal]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for f in figures:
        groups[f["fund"]].append(f)
    return [FundTotal(fund=fund, lines=len(items), principal_outstanding=fen_to_yuan(_sum(items, "principal")),
                      late_fee=fen_to_yuan(_sum(items, "fee")),
                      total=fen_to_yuan(_sum(items, "principal") + _sum(items, "fee")))
            for fund, items in sorted(groups.items())]


def _registry(session: Session, employer_ids: list[str]) -> dict[str, RegistryEmployer]:
    out: dict[str, RegistryEmployer] = {}
    for part in chunks(employer_ids):
        for row in session.execute(select(RegistryEmployer).where(RegistryEmployer.employer_id.in_(part))).scalars():
            out[row.employer_id] = row
    return out


def _page_of_employers(session: Session, as_of: date, after: str | None, limit: int) -> tuple[list[str], str | None]:
    """Employers of the caller's area with lines that may be in arrears, by employer id."""
    sub = _candidates(None, as_of).subquery()
    query = (
        select(sub.c.employer_id).distinct()
        .join(RegistryEmployer, RegistryEmployer.employer_id == sub.c.employer_id)
        .where(region_filter(RegistryEmployer.region))
        .order_by(sub.c.employer_id).limit(limit + 1)
    )
    if after:
        query = query.where(sub.c.employer_id > after)
    ids = list(session.execute(query).scalars())
    next_cursor = ids[limit - 1] if len(ids) > limit else None
    return ids[:limit], next_cursor


def _rates(session: Session, region: str, as_of: date
           ) -> tuple[Decimal, str, Callable[[date], Decimal]]:
    """(rate on the as-of day, where it came from, the rate of any day) from the approved parameter sets."""
    parameters = load_parameter_sets(session, region)
    rate, source = parameters.daily_rate(as_of)
    return rate, source, lambda day: parameters.daily_rate(day)[0]


def report(session: Session, *, employer_id: str | None, as_of: date | None, region: str,
           after: str | None = None, limit: int = 20) -> ArrearsReport:
    """One employer's arrears line by line, or (without ``employer_id``) a page of employers in arrears."""
    as_of = as_of or today_in_china()
    rate, source, rate_on = _rates(session, region, as_of)
    if employer_id:
        employer = session.get(RegistryEmployer, employer_id)
        if employer is not None:
            ensure_in_region(context.current().actor, employer.region)
        ids, next_cursor = [employer_id], None
    else:
        ids, next_cursor = _page_of_employers(session, as_of, after, limit)
    found = _employer_arrears(session, ids, as_of, rate, rate_on)
    registry = _registry(session, ids)
    employers = []
    for eid in ids:
        if eid not in found:
            continue
        lines, figures = found[eid]
        employers.append(_employer_out(eid, registry.get(eid), lines, figures))
    principal = sum(yuan_to_fen(e.principal_outstanding) for e in employers)
    fee = sum(yuan_to_fen(e.late_fee) for e in employers)
    return ArrearsReport(as_of=as_of, daily_rate=str(rate), rate_source=source, rule=RULE, employers=employers,
                         principal_outstanding=fen_to_yuan(principal), late_fee=fen_to_yuan(fee),
                         total=fen_to_yuan(principal + fee), next_cursor=next_cursor)


def _employer_out(employer_id: str, registry: RegistryEmployer | None, lines: list[ArrearsLine],
                  figures: list[dict]) -> EmployerArrears:
    principal, fee = _sum(figures, "principal"), _sum(figures, "fee")
    return EmployerArrears(
        employer_id=employer_id, uscc=registry.uscc if registry else None, name=registry.name if registry else None,
        lines=lines, line_count=len(lines), oldest_due_date=min((f["due_date"] for f in figures), default=None),
        principal_outstanding=fen_to_yuan(principal), late_fee=fen_to_yuan(fee), total=fen_to_yuan(principal + fee),
        by_fund=_by_fund(figures))


def employers_page(session: Session, *, as_of: date | None, region: str,
                   after: str | None, limit: int) -> EmployerTotalsPage:
    as_of = as_of or today_in_china()
    rate, source, rate_on = _rates(session, region, as_of)
    ids, next_cursor = _page_of_employers(session, as_of, after, limit)
    found = _employer_arrears(session, ids, as_of, rate, rate_on, with_steps=False)
    registry = _registry(session, ids)
    items = []
    for eid in ids:
        if eid not in found:
            continue
        _lines, figures = found[eid]
        principal, fee = _sum(figures, "principal"), _sum(figures, "fee")
        reg = registry.get(eid)
        items.append(EmployerTotals(
            employer_id=eid, uscc=reg.uscc if reg else None, name=reg.name if reg else None, lines=len(figures),
            oldest_due_date=min(f["due_date"] for f in figures), principal_outstanding=fen_to_yuan(principal),
            late_fee=fen_to_yuan(fee), total=fen_to_yuan(principal + fee)))
    return EmployerTotalsPage(as_of=as_of, daily_rate=str(rate), rate_source=source, items=items,
                              next_cursor=next_cursor)


# -- notices ---------------------------------------------------------------------------------------------------------


def issue_notice(session: Session, *, employer_id: str, as_of: date | None, region: str) -> NoticeOut:
    """催缴通知: the employer's arrears as of a day (today by default, never in the future), with the computation
    document, an ``ArrearsNoticeIssued`` event and an audit entry."""
    today = today_in_china()
    as_of = as_of or today
    if as_of > today:
        raise Invalid("AS_OF_IN_FUTURE", f"催缴通知的计算截止日 {as_of.isoformat()} 不能晚于今天")
    employer = session.get(RegistryEmployer, employer_id)
    if employer is None:
        raise NotFound("EMPLOYER_NOT_FOUND", "用人单位不存在")
    ensure_in_region(context.current().actor, employer.region)
    computed = report(session, employer_id=employer_id, as_of=as_of, region=region)
    if not computed.employers:
        raise Conflict("NO_ARREARS", f"该单位截至 {as_of.isoformat()} 无欠费，无需催缴")
    arrears = computed.employers[0]
    now = clock.utc_now()
    actor = context.current().actor
    document = {
        "title": "社会保险费催缴通知",
        "employer": {"employer_id": employer.employer_id, "uscc": employer.uscc, "name": employer.name},
        "as_of": as_of.isoformat(),
        "daily_rate": computed.daily_rate,
        "rate_source": computed.rate_source,
        "legal_basis": "《中华人民共和国社会保险法》第八十六条",
        "rule": RULE,
        **json.loads(arrears.model_dump_json(include={"lines", "by_fund", "principal_outstanding", "late_fee",
                                                       "total", "line_count", "oldest_due_date"})),
    }
    notice = ArrearsNotice(
        id=new_event_id(), employer_id=employer_id, as_of=as_of,
        principal_fen=yuan_to_fen(arrears.principal_outstanding), late_fee_fen=yuan_to_fen(arrears.late_fee),
        lines=arrears.line_count, document=json.dumps(document, ensure_ascii=False, sort_keys=True),
        issued_at=now, issued_by=actor.id)
    session.add(notice)
    record_event(session, ArrearsNoticeIssued(
        notice_id=notice.id, employer_id=employer_id, as_of=as_of, principal_fen=notice.principal_fen,
        late_fee_fen=notice.late_fee_fen, lines=notice.lines), source=SOURCE, subject=employer_id)
    append_audit(session, action="arrears_notice.issue", entity_type="arrears_notice", entity_id=notice.id,
                 detail={"employer_id": employer_id, "as_of": as_of.isoformat(), "principal_fen": notice.principal_fen,
                         "late_fee_fen": notice.late_fee_fen, "lines": notice.lines, "daily_rate": computed.daily_rate})
    session.flush()
    return notice_out(notice)


def notice_out(notice: ArrearsNotice) -> NoticeOut:
    return NoticeOut(**_notice_fields(notice), document=json.loads(notice.document))


def _notice_fields(notice: ArrearsNotice) -> dict[str, Any]:
    return {"id": notice.id, "employer_id": notice.employer_id, "as_of": notice.as_of,
            "principal_outstanding": fen_to_yuan(notice.principal_fen), "late_fee": fen_to_yuan(notice.late_fee_fen),
            "total": fen_to_yuan(notice.principal_fen + notice.late_fee_fen), "lines": notice.lines,
            "issued_at": notice.issued_at, "issued_by": notice.issued_by}


def get_notice(session: Session, notice_id: str) -> NoticeOut:
    notice = session.get(ArrearsNotice, notice_id)
    if notice is None:
        raise NotFound("ARREARS_NOTICE_NOT_FOUND", "催缴通知不存在")
    return notice_out(notice)


def list_notices(session: Session, *, employer_id: str | None, after: str | None,
                 limit: int) -> tuple[list[NoticeSummary], str | None]:
    query = select(ArrearsNotice)
    if employer_id:
        query = query.where(ArrearsNotice.employer_id == employer_id)
    rows, next_cursor = newest_first(session, query, ArrearsNotice.id, after=after, limit=limit)
    return [NoticeSummary(**_notice_fields(n)) for n in rows], next_cursor

