"""Fund budgets (002 二(三)、二(四)、三(一)、三(二)、三(三)).

- **Draft** (``create`` / ``set_lines``): the agency (``accountant``, ``agency_approver``) drafts one budget per fund
  and year with the line items of 002 二(三) (``items.py``), in fen; items not given are 0.
- **Chain** (``advance``): draft → submitted (the agency) → reviewed (财政复审, ``finance_officer``) → approved (the
  approval's reference recorded by another ``finance_officer``); each step by a person who did none of the earlier
  steps (``SAME_PERSON``, 403). A reviewer or approver may return the item to draft with a reason. The same chain
  carries adjustments and final accounts.
- **Execution** (``execution``, 002 三(一)): for an approved budget, month by month up to ``month``, the ledger's
  contributions (AGENCY leg, by 费款所属期) and bank-confirmed benefit payments (by payroll month) of the fund,
  cumulated and divided by the budget in force, against the time progress ``m / 12``. An item whose execution
  deviates from the time progress by more than the threshold (percentage points, ``config.py``; default 10) either
  way is an early warning (预警); actual money against a zero budget is one too (``unbudgeted``). Compared exactly
  (fractions), shown rounded half-up to 0.01.
- **Adjustments** (002 三(二) 未经批准，不得调整): only of an approved budget, one open at a time, through the same chain;
  the budget lines change only when it is approved (``version`` + 1), and it keeps the amounts before and after.
- **Final accounts** (002 三(三)): once the year is over (China time): the ledger's actuals for ``contributions`` and
  ``benefits``, the other items as entered, each against the budget in force (variance = actual − budget); redrawn
  while a draft, then through the same chain. Approval is refused if the budget changed since it was computed.

Every step is an audit entry.
"""

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.kernel import clock, context
from services.kernel.audit import append_audit
from services.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.money import fen_to_yuan, yuan_to_fen
from services.oversight.budget.items import (
    APPROVERS,
    DRAFTERS,
    EXPENDITURE_ITEMS,
    FUND_NAMES,
    INCOME_ITEMS,
    ITEMS,
    LEDGER_ITEMS,
    REVIEWERS,
    SIDE,
)
from services.oversight.budget.models import (
    Budget,
    BudgetAdjustment,
    BudgetAdjustmentLine,
    BudgetFinalAccounts,
    BudgetFinalLine,
    BudgetLine,
)
from services.oversight.ledger.models import LedgerFundMonthOut, LedgerFundPeriodAgency
from services.oversight.reconciliation.models import ReconciliationClose
from services.kernel.clock import china_today
from services.kernel.settings import get_settings

DRAFT, SUBMITTED, REVIEWED, APPROVED, WITHDRAWN = "draft", "submitted", "reviewed", "approved", "withdrawn"
OPEN = (DRAFT, SUBMITTED, REVIEWED)
STATUS_LABELS = {DRAFT: "草稿", SUBMITTED: "已报送", REVIEWED: "已复审", APPROVED: "已批准", WITHDRAWN: "已撤回"}
ENTITY = {Budget: "budget", BudgetAdjustment: "budget_adjustment", BudgetFinalAccounts: "budget_final_accounts"}
WHAT = {Budget: "预算", BudgetAdjustment: "预算调整", BudgetFinalAccounts: "决算"}
_CENT = Decimal("0.01")

Chained = Budget | BudgetAdjustment | BudgetFinalAccounts


def fund_name(fund: str) -> str:
    return FUND_NAMES.get(fund, fund)


# -- amounts ---------------------------------------------------------------------------------------------------------


def _fen_lines(lines: dict[str, Decimal], *, allowed: tuple[str, ...] | None = None) -> dict[str, int]:
    unknown = sorted(set(lines) - ITEMS.keys())
    if unknown:
        raise Invalid("UNKNOWN_ITEM", f"未知的预算科目：{'、'.join(unknown)}",
                      details={"unknown": unknown, "items": list(ITEMS)})
    if allowed is not None:
        refused = sorted(set(lines) - set(allowed))
        if refused:
            raise Invalid("LEDGER_ITEM_NOT_ENTERED", f"{'、'.join(ITEMS[i] for i in refused)}的决算数取自监督台账，不能录入",
                          details={"items": refused})
    fen = {item: yuan_to_fen(amount) for item, amount in lines.items()}
    negative = sorted(item for item, value in fen.items() if value < 0)
    if negative:
        raise Invalid("NEGATIVE_AMOUNT", f"预算金额不能为负数：{'、'.join(ITEMS[i] for i in negative)}",
                      details={"items": negative})
    return fen


def percent(numerator: int, denominator: int) -> Decimal | None:
    if denominator == 0:
        return None
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(_CENT, rounding=ROUND_HALF_UP)


def _points(value: Fraction) -> Decimal:
    """A fraction (0.0417 = 4.17 points) as percentage points, half-up to 0.01."""
    return (Decimal(value.numerator) * 100 / Decimal(value.denominator)).quantize(_CENT, rounding=ROUND_HALF_UP)


# -- reading ---------------------------------------------------------------------------------------------------------


def get_budget(session: Session, fund: str, year: int, *, lock: bool = False) -> Budget:
    query = select(Budget).where(Budget.fund == fund, Budget.year == year)
    budget = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if budget is None:
        raise NotFound("BUDGET_NOT_FOUND", f"{fund_name(fund)} {year} 年度预算不存在")
    return budget


def list_budgets(session: Session, *, year: int | None = None, fund: str | None = None) -> list[Budget]:
    query = select(Budget).order_by(Budget.year.desc(), Budget.fund)
    if year is not None:
        query = query.where(Budget.year == year)
    if fund is not None:
        query = query.where(Budget.fund == fund)
    return list(session.execute(query).scalars())


def budget_lines(session: Session, budget_id: str) -> dict[str, BudgetLine]:
    rows = {r.item: r for r in session.execute(select(BudgetLine).where(BudgetLine.budget_id == budget_id)).scalars()}
    return {item: rows[item] for item in ITEMS if item in rows}


def amounts(session: Session, budget_id: str) -> dict[str, int]:
    lines = budget_lines(session, budget_id)
    return {item: lines[item].amount_fen if item in lines else 0 for item in ITEMS}


def totals(values: dict[str, int]) -> dict[str, int]:
    income = sum(values.get(i, 0) for i in INCOME_ITEMS)
    expenditure = sum(values.get(i, 0) for i in EXPENDITURE_ITEMS)
    return {"income": income, "expenditure": expenditure, "surplus": income - expenditure}


def adjustments_of(session: Session, budget_id: str) -> list[BudgetAdjustment]:
    return list(session.execute(select(BudgetAdjustment).where(BudgetAdjustment.budget_id == budget_id)
                                .order_by(BudgetAdjustment.seq)).scalars())


def adjustment_lines(session: Session, adjustment_id: str) -> list[BudgetAdjustmentLine]:
    rows = {r.item: r for r in session.execute(
        select(BudgetAdjustmentLine).where(BudgetAdjustmentLine.adjustment_id == adjustment_id)).scalars()}
    return [rows[item] for item in ITEMS if item in rows]


def get_adjustment(session: Session, budget: Budget, adjustment_id: str, *, lock: bool = False) -> BudgetAdjustment:
    query = select(BudgetAdjustment).where(BudgetAdjustment.id == adjustment_id,
                                           BudgetAdjustment.budget_id == budget.id)
    adjustment = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if adjustment is None:
        raise NotFound("ADJUSTMENT_NOT_FOUND", "预算调整不存在")
    return adjustment


def open_adjustment(session: Session, budget_id: str) -> BudgetAdjustment | None:
    return session.execute(select(BudgetAdjustment).where(BudgetAdjustment.budget_id == budget_id,
                                                          BudgetAdjustment.status.in_(OPEN))).scalars().first()


def final_accounts_of(session: Session, budget_id: str, *, lock: bool = False) -> BudgetFinalAccounts | None:
    query = select(BudgetFinalAccounts).where(BudgetFinalAccounts.budget_id == budget_id)
    return session.execute(query.with_for_update() if lock else query).scalar_one_or_none()


def final_lines(session: Session, final_id: str) -> list[BudgetFinalLine]:
    rows = {r.item: r for r in session.execute(
        select(BudgetFinalLine).where(BudgetFinalLine.final_id == final_id)).scalars()}
    return [rows[item] for item in ITEMS if item in rows]


# -- the approval chain ----------------------------------------------------------------------------------------------


def _actor() -> tuple[str, str | None]:
    actor = context.current().actor
    return actor.id, actor.role


def _earlier_persons(obj: Chained, step: str) -> set[str]:
    persons = {obj.created_by, obj.submitted_by}
    if step == "approve":
        persons.add(obj.reviewed_by)
    return {p for p in persons if p}


def _audit(session: Session, obj: Chained, action: str, detail: dict[str, Any], reason: str | None = None) -> None:
    entity = ENTITY[type(obj)]
    append_audit(session, action=f"{entity}.{action}", entity_type=entity, entity_id=obj.id, detail=detail,
                 reason=reason)


def _expect(obj: Chained, *statuses: str) -> None:
    if obj.status not in statuses:
        raise Conflict("INVALID_BUDGET_STATUS",
                       f"{WHAT[type(obj)]}当前状态为「{STATUS_LABELS.get(obj.status, obj.status)}」，不能办理此操作",
                       details={"status": obj.status, "expected": list(statuses)})


def _distinct(obj: Chained, step: str, person: str) -> None:
    if person in _earlier_persons(obj, step):
        raise Forbidden("SAME_PERSON", f"{WHAT[type(obj)]}的编制、复审、批准须由不同人员办理，本人已办理过前一环节",
                        details={"step": step})


def _role(role: str | None, roles: tuple[str, ...]) -> None:
    if role not in roles:  # the routes guard this; a direct call must not bypass it
        raise Forbidden("FORBIDDEN", "无权执行此操作")


def _submit(obj: Chained) -> None:
    person, role = _actor()
    _role(role, DRAFTERS)
    _expect(obj, DRAFT)
    obj.status, obj.submitted_by, obj.submitted_role, obj.submitted_at = SUBMITTED, person, role, clock.utc_now()
    obj.returned_reason = None


def _review(obj: Chained, note: str | None) -> None:
    person, role = _actor()
    _role(role, REVIEWERS)
    _expect(obj, SUBMITTED)
    _distinct(obj, "review", person)
    obj.status, obj.reviewed_by, obj.reviewed_role, obj.reviewed_at = REVIEWED, person, role, clock.utc_now()
    obj.review_note = note


def _approve(obj: Chained, approval_ref: str, approved_on: date) -> None:
    person, role = _actor()
    _role(role, APPROVERS)
    _expect(obj, REVIEWED)
    _distinct(obj, "approve", person)
    if approved_on > china_today():
        raise Invalid("DATE_IN_FUTURE", f"批准日期 {approved_on} 晚于今天")
    obj.status, obj.approved_by, obj.approved_role, obj.approved_at = APPROVED, person, role, clock.utc_now()
    obj.approval_ref, obj.approved_on = approval_ref.strip(), approved_on


def _return(obj: Chained, reason: str) -> None:
    person, role = _actor()
    _role(role, (*REVIEWERS, *APPROVERS))
    _expect(obj, SUBMITTED, REVIEWED)
    _distinct(obj, "review", person)
    obj.status, obj.returned_reason = DRAFT, reason
    obj.submitted_by = obj.submitted_role = obj.submitted_at = None
    obj.reviewed_by = obj.reviewed_role = obj.reviewed_at = obj.review_note = None


def _chain_detail(obj: Chained) -> dict[str, Any]:
    return {"status": obj.status, "created_by": obj.created_by, "submitted_by": obj.submitted_by,
            "reviewed_by": obj.reviewed_by, "approved_by": obj.approved_by}


# -- budgets ---------------------------------------------------------------------------------------------------------


def create(session: Session, fund: str, year: int, lines: dict[str, Decimal], note: str | None) -> Budget:
    person, role = _actor()
    _role(role, DRAFTERS)
    fen = _fen_lines(lines)
    if session.execute(select(Budget.id).where(Budget.fund == fund, Budget.year == year)).first():
        raise Conflict("BUDGET_EXISTS", f"{fund_name(fund)} {year} 年度预算已存在")
    now = clock.utc_now()
    budget = Budget(id=new_event_id(), fund=fund, year=year, status=DRAFT, version=0, note=note,
                    created_by=person, created_role=role, created_at=now, updated_at=now)
    try:
        session.add(budget)
        session.flush()  # a concurrent draft of the same fund and year fails here (unique fund, year)
        for item in ITEMS:
            session.add(BudgetLine(budget_id=budget.id, item=item, side=SIDE[item], amount_fen=fen.get(item, 0)))
        _audit(session, budget, "drafted", {"fund": fund, "year": year, "lines": fen, "totals": totals(fen)}, note)
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict("BUDGET_EXISTS", f"{fund_name(fund)} {year} 年度预算已存在") from None
    return budget


def set_lines(session: Session, fund: str, year: int, lines: dict[str, Decimal], note: str | None) -> Budget:
    _, role = _actor()
    _role(role, DRAFTERS)
    budget = get_budget(session, fund, year, lock=True)
    _expect(budget, DRAFT)
    fen = _fen_lines(lines)
    current = budget_lines(session, budget.id)
    before = {item: line.amount_fen for item, line in current.items()}
    for item, value in fen.items():
        current[item].amount_fen = value
        session.add(current[item])
    if note is not None:
        budget.note = note
    budget.updated_at = clock.utc_now()
    after = {item: line.amount_fen for item, line in current.items()}
    _audit(session, budget, "lines_set", {"changed": {i: [before[i], after[i]] for i in after if before[i] != after[i]},
                                          "totals": totals(after)}, note)
    session.flush()
    return budget


def advance(session: Session, fund: str, year: int, step: str, *, note: str | None = None,
            approval_ref: str | None = None, approved_on: date | None = None) -> Budget:
    budget = get_budget(session, fund, year, lock=True)
    if step == "submit":
        _submit(budget)
    elif step == "review":
        _review(budget, note)
    elif step == "approve":
        _approve(budget, approval_ref or "", approved_on or china_today())
        budget.version = 1
        for line in budget_lines(session, budget.id).values():
            line.approved_fen = line.amount_fen
            session.add(line)
    elif step == "return":
        _return(budget, note or "")
    else:  # pragma: no cover - the routes name the steps
        raise ValueError(step)
    budget.updated_at = clock.utc_now()
    detail = _chain_detail(budget)
    if step == "approve":
        detail.update(approval_ref=budget.approval_ref, approved_on=budget.approved_on,
                      lines=amounts(session, budget.id), version=budget.version)
    _audit(session, budget, {"submit": "submitted", "review": "reviewed", "approve": "approved",
                             "return": "returned"}[step], detail, note)
    session.flush()
    return budget


# -- adjustments -----------------------------------------------------------------------------------------------------


def create_adjustment(session: Session, fund: str, year: int, lines: dict[str, Decimal],
                      reason: str) -> BudgetAdjustment:
    person, role = _actor()
    _role(role, DRAFTERS)
    budget = get_budget(session, fund, year, lock=True)
    if budget.status != APPROVED:
        raise Conflict("BUDGET_NOT_APPROVED", "预算尚未批准，不存在预算调整；请修改预算草案")
    final = final_accounts_of(session, budget.id)
    if final is not None and final.status != DRAFT:
        raise Conflict("FINAL_ACCOUNTS_STARTED", "决算已报送，不能再调整预算")
    if open_adjustment(session, budget.id) is not None:
        raise Conflict("ADJUSTMENT_OPEN", "已有一项预算调整在办理中，须批准或撤回后再提出新的调整")
    current = amounts(session, budget.id)
    changed = {item: value for item, value in _fen_lines(lines).items() if value != current[item]}
    if not changed:
        raise Invalid("NO_CHANGE", "调整后的金额与现行预算相同")
    seq = (session.execute(select(func.max(BudgetAdjustment.seq)).where(BudgetAdjustment.budget_id == budget.id))
           .scalar_one() or 0) + 1
    now = clock.utc_now()
    adjustment = BudgetAdjustment(id=new_event_id(), budget_id=budget.id, seq=seq, status=DRAFT,
                                  reason=reason.strip(), base_version=budget.version, created_by=person,
                                  created_role=role, created_at=now, updated_at=now)
    session.add(adjustment)
    session.flush()
    for item, value in changed.items():
        session.add(BudgetAdjustmentLine(adjustment_id=adjustment.id, item=item, side=SIDE[item],
                                         before_fen=current[item], after_fen=value))
    _audit(session, adjustment, "drafted", {"fund": fund, "year": year, "seq": seq, "base_version": budget.version,
                                            "lines": {i: [current[i], v] for i, v in changed.items()}}, reason)
    session.flush()
    return adjustment


def advance_adjustment(session: Session, fund: str, year: int, adjustment_id: str, step: str, *,
                       note: str | None = None, approval_ref: str | None = None,
                       approved_on: date | None = None) -> BudgetAdjustment:
    budget = get_budget(session, fund, year, lock=True)
    adjustment = get_adjustment(session, budget, adjustment_id, lock=True)
    detail: dict[str, Any] = {}
    if step == "submit":
        _submit(adjustment)
    elif step == "review":
        _review(adjustment, note)
    elif step == "approve":
        _approve(adjustment, approval_ref or "", approved_on or china_today())
        if budget.version != adjustment.base_version:  # cannot happen with one open adjustment; kept as a guard
            raise Conflict("BUDGET_CHANGED", "预算在本调整提出后已变更，请撤回后重新提出")
        current = budget_lines(session, budget.id)
        for line in adjustment_lines(session, adjustment.id):
            current[line.item].amount_fen = line.after_fen
            session.add(current[line.item])
        budget.version += 1
        budget.updated_at = clock.utc_now()
        adjustment.applied_version = budget.version
        detail = {"version": budget.version, "approval_ref": adjustment.approval_ref,
                  "approved_on": adjustment.approved_on,
                  "lines": {ln.item: [ln.before_fen, ln.after_fen] for ln in adjustment_lines(session, adjustment.id)}}
    elif step == "return":
        _return(adjustment, note or "")
    elif step == "withdraw":
        person, role = _actor()
        _role(role, DRAFTERS)
        _expect(adjustment, DRAFT)
        adjustment.status = WITHDRAWN
    else:  # pragma: no cover
        raise ValueError(step)
    adjustment.updated_at = clock.utc_now()
    _audit(session, adjustment, {"submit": "submitted", "review": "reviewed", "approve": "approved",
                                 "return": "returned", "withdraw": "withdrawn"}[step],
           {**_chain_detail(adjustment), "budget_id": budget.id, **detail}, note)
    if step == "approve":
        _audit(session, budget, "adjusted", {"adjustment_id": adjustment.id, "seq": adjustment.seq, **detail},
               adjustment.reason)
    session.flush()
    return adjustment


# -- execution (002 三(一)) ------------------------------------------------------------------------------------------


def ledger_months(session: Session, fund: str, year: int) -> dict[str, dict[int, int]]:
    """The ledger's contributions (AGENCY leg, by 费款所属期) and bank-confirmed benefit payments (by payroll month)
    of ``fund`` in ``year``, per month YYYYMM."""
    first, last = year * 100 + 1, year * 100 + 12
    contributions = dict(session.execute(
        select(LedgerFundPeriodAgency.period, LedgerFundPeriodAgency.agency_fen)
        .where(LedgerFundPeriodAgency.fund == fund, LedgerFundPeriodAgency.period.between(first, last))).all())
    benefits = dict(session.execute(
        select(LedgerFundMonthOut.month, LedgerFundMonthOut.paid_fen)
        .where(LedgerFundMonthOut.fund == fund, LedgerFundMonthOut.month.between(first, last))).all())
    return {"contributions": {m: int(v or 0) for m, v in contributions.items()},
            "benefits": {m: int(v or 0) for m, v in benefits.items()}}


def closed_months(session: Session, year: int) -> set[int]:
    return set(session.execute(select(ReconciliationClose.month)
                               .where(ReconciliationClose.month.between(year * 100 + 1, year * 100 + 12))).scalars())


def default_month(year: int) -> int:
    """The last month that is over (China time): December for a past year, January at the earliest."""
    today = china_today()
    if year < today.year:
        return 12
    if year > today.year:
        return 1
    return max(1, today.month - 1)


@dataclass(frozen=True)
class Judgement:
    execution: Decimal | None
    deviation: Decimal | None
    kind: str | None  # over | under | unbudgeted | None


def judge(actual: int, budget: int, month: int, threshold: Decimal) -> Judgement:
    """Execution ``actual / budget`` against the time progress ``month / 12``, exactly."""
    if budget == 0:
        return Judgement(None, None, "unbudgeted" if actual else None)
    deviation = Fraction(actual, budget) - Fraction(month, 12)
    kind = None
    if abs(deviation) * 100 > Fraction(threshold):
        kind = "over" if deviation > 0 else "under"
    return Judgement(percent(actual, budget), _points(deviation), kind)


def _warning_message(name: str, kind: str, execution: Decimal | None, progress: Decimal, deviation: Decimal | None,
                     threshold: Decimal) -> str:
    if kind == "unbudgeted":
        return f"{name}未列预算却已发生收支"
    side = "超过" if kind == "over" else "落后于"
    return (f"{name}预算执行进度 {execution}% {side}时间进度 {progress}%，相差 {abs(deviation or 0)} 个百分点，"
            f"超过预警线 {threshold.normalize():f} 个百分点")


def execution(session: Session, fund: str, year: int, month: int | None = None,
              threshold: Decimal | None = None) -> dict[str, Any]:
    budget = get_budget(session, fund, year)
    if budget.status != APPROVED:
        raise Conflict("BUDGET_NOT_APPROVED", "预算尚未批准，无执行情况可言")
    month = month or default_month(year)
    threshold = get_settings().oversight_budget.warning_threshold_points if threshold is None else threshold
    current = amounts(session, budget.id)
    actuals = ledger_months(session, fund, year)
    closed = closed_months(session, year)
    items, warnings = [], []
    for item in LEDGER_ITEMS:
        name, planned, cumulative, rows = ITEMS[item], current[item], 0, []
        judgement = Judgement(None, None, None)
        for m in range(1, month + 1):
            period = year * 100 + m
            actual = actuals[item].get(period, 0)
            cumulative += actual
            judgement = judge(cumulative, planned, m, threshold)
            rows.append({"month": period, "closed": period in closed, "time_progress": percent(m, 12),
                         "actual": fen_to_yuan(actual), "cumulative": fen_to_yuan(cumulative),
                         "execution": judgement.execution, "deviation": judgement.deviation,
                         "warning": judgement.kind is not None})
        items.append({"item": item, "name": name, "side": SIDE[item], "budget": fen_to_yuan(planned),
                      "actual": fen_to_yuan(cumulative), "execution": judgement.execution,
                      "deviation": judgement.deviation, "warning": judgement.kind is not None, "months": rows})
        if judgement.kind is not None:
            progress = percent(month, 12)
            warnings.append({"item": item, "name": name, "month": year * 100 + month, "kind": judgement.kind,
                             "execution": judgement.execution, "time_progress": progress,
                             "deviation": judgement.deviation,
                             "message": _warning_message(name, judgement.kind, judgement.execution, progress,
                                                         judgement.deviation, threshold)})
    return {"fund": fund, "fund_name": fund_name(fund), "year": year, "month": year * 100 + month,
            "budget_version": budget.version, "time_progress": percent(month, 12), "threshold": threshold,
            "items": items, "warnings": warnings, "not_from_ledger": [i for i in ITEMS if i not in LEDGER_ITEMS],
            "open_months": [year * 100 + m for m in range(1, month + 1) if year * 100 + m not in closed]}


# -- final accounts (002 三(三)) --------------------------------------------------------------------------------------


def year_actuals(session: Session, fund: str, year: int) -> dict[str, int]:
    months = ledger_months(session, fund, year)
    return {item: sum(months[item].values()) for item in LEDGER_ITEMS}


def draw_final_accounts(session: Session, fund: str, year: int, entered: dict[str, Decimal],
                        note: str | None) -> BudgetFinalAccounts:
    person, role = _actor()
    _role(role, DRAFTERS)
    budget = get_budget(session, fund, year, lock=True)
    if budget.status != APPROVED:
        raise Conflict("BUDGET_NOT_APPROVED", "预算尚未批准，不能编制决算")
    if year >= china_today().year:
        raise Invalid("YEAR_NOT_OVER", f"{year} 年度尚未结束，不能编制决算")
    if open_adjustment(session, budget.id) is not None:
        raise Conflict("ADJUSTMENT_OPEN", "有预算调整在办理中，须批准或撤回后再编制决算")
    entered_fen = _fen_lines(entered, allowed=tuple(i for i in ITEMS if i not in LEDGER_ITEMS))
    final = final_accounts_of(session, budget.id, lock=True)
    now = clock.utc_now()
    if final is None:
        final = BudgetFinalAccounts(id=new_event_id(), budget_id=budget.id, status=DRAFT,
                                    budget_version=budget.version, computed_at=now, note=note, created_by=person,
                                    created_role=role, created_at=now, updated_at=now)
        session.add(final)
        session.flush()
        action = "drafted"
    else:
        _expect(final, DRAFT)
        for line in final_lines(session, final.id):
            session.delete(line)
        session.flush()
        final.budget_version, final.computed_at, final.updated_at = budget.version, now, now
        if note is not None:
            final.note = note
        action = "redrawn"
    planned = amounts(session, budget.id)
    actual = {**{i: entered_fen.get(i, 0) for i in ITEMS}, **year_actuals(session, fund, year)}
    for item in ITEMS:
        session.add(BudgetFinalLine(final_id=final.id, item=item, side=SIDE[item],
                                    source="ledger" if item in LEDGER_ITEMS else "entered",
                                    budget_fen=planned[item], actual_fen=actual[item]))
    _audit(session, final, action, {"fund": fund, "year": year, "budget_version": budget.version,
                                    "actual": actual, "budget": planned, "totals": totals(actual)}, note)
    session.flush()
    return final


def get_final_accounts(session: Session, fund: str, year: int) -> tuple[Budget, BudgetFinalAccounts]:
    budget = get_budget(session, fund, year)
    final = final_accounts_of(session, budget.id)
    if final is None:
        raise NotFound("FINAL_ACCOUNTS_NOT_FOUND", f"{fund_name(fund)} {year} 年度决算尚未编制")
    return budget, final


def advance_final_accounts(session: Session, fund: str, year: int, step: str, *, note: str | None = None,
                           approval_ref: str | None = None, approved_on: date | None = None) -> BudgetFinalAccounts:
    budget = get_budget(session, fund, year, lock=True)
    final = final_accounts_of(session, budget.id, lock=True)
    if final is None:
        raise NotFound("FINAL_ACCOUNTS_NOT_FOUND", f"{fund_name(fund)} {year} 年度决算尚未编制")
    if step in ("submit", "approve") and budget.version != final.budget_version:
        raise Conflict("BUDGET_CHANGED", "决算编制后预算已调整，请重新编制（或退回后重新编制）")
    if step == "submit":
        _submit(final)
    elif step == "review":
        _review(final, note)
    elif step == "approve":
        _approve(final, approval_ref or "", approved_on or china_today())
    elif step == "return":
        _return(final, note or "")
    else:  # pragma: no cover
        raise ValueError(step)
    final.updated_at = clock.utc_now()
    detail = _chain_detail(final)
    if step == "approve":
        detail.update(approval_ref=final.approval_ref, approved_on=final.approved_on)
    _audit(session, final, {"submit": "submitted", "review": "reviewed", "approve": "approved",
                            "return": "returned"}[step], {**detail, "budget_id": budget.id}, note)
    session.flush()
    return final
