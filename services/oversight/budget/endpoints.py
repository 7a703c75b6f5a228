"""Fund budgets (002 二(三)、二(四)、三(一)、三(二)、三(三)).

Roles (``items.py``): the agency (``accountant``, ``agency_approver``) drafts and submits budgets, adjustments and
final accounts; ``finance_officer`` reviews, returns and approves (two different officers); oversight officers and
internal auditors read everything, execution and early warnings included.
"""

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from sqlmodel import Session

from services.kernel.auth import allow
from services.kernel.money import fen_to_yuan
from services.kernel.service_app import SessionDep
from services.oversight.budget import items as it
from services.oversight.budget import service
from services.oversight.budget.models import Budget, BudgetAdjustment, BudgetFinalAccounts
from services.oversight.budget.schemas import (
    AdjustmentIn,
    AdjustmentLineOut,
    AdjustmentOut,
    ApproveIn,
    BudgetIn,
    BudgetLineOut,
    BudgetLinesIn,
    BudgetOut,
    ExecutionOut,
    FinalAccountsIn,
    FinalAccountsOut,
    FinalLineOut,
    FinalTotals,
    ItemOut,
    ReturnIn,
    ReviewIn,
    Totals,
)

DRAFTERS = allow(*it.DRAFTERS)
FINANCE = allow(*sorted({*it.REVIEWERS, *it.APPROVERS}))
READERS = allow(*it.READERS)

router = APIRouter(prefix="/budget", tags=["budget"])

FundPath = Annotated[str, Path(pattern=r"^[A-Z][A-Z_]{1,9}$", description="fund code, e.g. PEN_EMP")]
YearPath = Annotated[int, Path(ge=2000, le=2200)]


def _chain(obj: Budget | BudgetAdjustment | BudgetFinalAccounts) -> dict:
    return {"status": obj.status, "created_by": obj.created_by, "created_role": obj.created_role,
            "created_at": obj.created_at, "submitted_by": obj.submitted_by, "submitted_at": obj.submitted_at,
            "reviewed_by": obj.reviewed_by, "reviewed_at": obj.reviewed_at, "review_note": obj.review_note,
            "approved_by": obj.approved_by, "approved_at": obj.approved_at, "approval_ref": obj.approval_ref,
            "approved_on": obj.approved_on, "returned_reason": obj.returned_reason}


def _totals(values: dict[str, int]) -> Totals:
    return Totals(**{k: fen_to_yuan(v) for k, v in service.totals(values).items()})


def _budget(session: Session, budget: Budget) -> BudgetOut:
    lines = service.budget_lines(session, budget.id)
    adjustments = service.adjustments_of(session, budget.id)
    final = service.final_accounts_of(session, budget.id)
    return BudgetOut(
        id=budget.id, fund=budget.fund, fund_name=service.fund_name(budget.fund), year=budget.year,
        version=budget.version, note=budget.note, **_chain(budget),
        lines=[BudgetLineOut(item=i, name=it.ITEMS[i], side=ln.side, amount=fen_to_yuan(ln.amount_fen),
                             approved=None if ln.approved_fen is None else fen_to_yuan(ln.approved_fen))
               for i, ln in lines.items()],
        totals=_totals({i: ln.amount_fen for i, ln in lines.items()}),
        adjustments=sum(1 for a in adjustments if a.status == service.APPROVED),
        open_adjustment=next((a.id for a in adjustments if a.status in service.OPEN), None),
        final_accounts=final.status if final else None,
    )


def _adjustment(session: Session, budget: Budget, adjustment: BudgetAdjustment) -> AdjustmentOut:
    return AdjustmentOut(
        id=adjustment.id, fund=budget.fund, year=budget.year, seq=adjustment.seq, reason=adjustment.reason,
        base_version=adjustment.base_version, applied_version=adjustment.applied_version, **_chain(adjustment),
        lines=[AdjustmentLineOut(item=ln.item, name=it.ITEMS[ln.item], side=ln.side, before=fen_to_yuan(ln.before_fen),
                                 after=fen_to_yuan(ln.after_fen), change=fen_to_yuan(ln.after_fen - ln.before_fen))
               for ln in service.adjustment_lines(session, adjustment.id)],
    )


def _final(session: Session, budget: Budget, final: BudgetFinalAccounts) -> FinalAccountsOut:
    lines = service.final_lines(session, final.id)
    planned = {ln.item: ln.budget_fen for ln in lines}
    actual = {ln.item: ln.actual_fen for ln in lines}
    variance = {i: actual[i] - planned[i] for i in planned}
    closed = service.closed_months(session, budget.year)
    return FinalAccountsOut(
        id=final.id, fund=budget.fund, year=budget.year, budget_version=final.budget_version,
        computed_at=final.computed_at, note=final.note, **_chain(final),
        lines=[FinalLineOut(item=ln.item, name=it.ITEMS[ln.item], side=ln.side, source=ln.source,
                            budget=fen_to_yuan(ln.budget_fen), actual=fen_to_yuan(ln.actual_fen),
                            variance=fen_to_yuan(ln.actual_fen - ln.budget_fen),
                            execution=service.percent(ln.actual_fen, ln.budget_fen)) for ln in lines],
        totals=FinalTotals(budget=_totals(planned), actual=_totals(actual), variance=_totals(variance)),
        open_months=[budget.year * 100 + m for m in range(1, 13) if budget.year * 100 + m not in closed],
    )


# -- budgets ---------------------------------------------------------------------------------------------------------


@router.get("/items", response_model=list[ItemOut], summary="The line items of a fund budget (002 二(三))",
            dependencies=[READERS])
def list_items() -> list[ItemOut]:
    return [ItemOut(item=i, name=name, side=it.SIDE[i], from_ledger=i in it.LEDGER_ITEMS)
            for i, name in it.ITEMS.items()]


@router.post("", response_model=BudgetOut, status_code=status.HTTP_201_CREATED,
             summary="Draft the budget of a fund and year (the agency)", dependencies=[DRAFTERS])
def create_budget(body: BudgetIn, session: SessionDep) -> BudgetOut:
    return _budget(session, service.create(session, body.fund, body.year, body.lines, body.note))


@router.get("", response_model=list[BudgetOut], summary="Budgets, newest year first", dependencies=[READERS])
def list_budgets(session: SessionDep, year: Annotated[int | None, Query(ge=2000, le=2200)] = None,
                 fund: Annotated[str | None, Query(pattern=r"^[A-Z][A-Z_]{1,9}$")] = None) -> list[BudgetOut]:
    return [_budget(session, b) for b in service.list_budgets(session, year=year, fund=fund)]


@router.get("/{fund}/{year}", response_model=BudgetOut, summary="One budget: lines in force, chain, adjustments",
            dependencies=[READERS])
def get_budget(fund: FundPath, year: YearPath, session: SessionDep) -> BudgetOut:
    return _budget(session, service.get_budget(session, fund, year))


@router.put("/{fund}/{year}/lines", response_model=BudgetOut, summary="Change a draft's amounts (the agency)",
            dependencies=[DRAFTERS])
def set_lines(fund: FundPath, year: YearPath, body: BudgetLinesIn, session: SessionDep) -> BudgetOut:
    return _budget(session, service.set_lines(session, fund, year, body.lines, body.note))


@router.post("/{fund}/{year}/submit", response_model=BudgetOut, summary="Submit the draft for review (the agency)",
             dependencies=[DRAFTERS])
def submit(fund: FundPath, year: YearPath, session: SessionDep) -> BudgetOut:
    return _budget(session, service.advance(session, fund, year, "submit"))


@router.post("/{fund}/{year}/review", response_model=BudgetOut,
             summary="财政复审: review a submitted budget (not its drafter)", dependencies=[FINANCE])
def review(fund: FundPath, year: YearPath, session: SessionDep, body: ReviewIn | None = None) -> BudgetOut:
    return _budget(session, service.advance(session, fund, year, "review", note=body.note if body else None))


@router.post("/{fund}/{year}/approve", response_model=BudgetOut,
             summary="Record the approval (人大批准, 批复下达) — a finance officer other than the reviewer",
             dependencies=[FINANCE])
def approve(fund: FundPath, year: YearPath, body: ApproveIn, session: SessionDep) -> BudgetOut:
    return _budget(session, service.advance(session, fund, year, "approve", note=body.note,
                                            approval_ref=body.approval_ref, approved_on=body.approved_on))


@router.post("/{fund}/{year}/return", response_model=BudgetOut, summary="Return a submitted or reviewed budget to "
                                                                        "draft, with a reason", dependencies=[FINANCE])
def return_budget(fund: FundPath, year: YearPath, body: ReturnIn, session: SessionDep) -> BudgetOut:
    return _budget(session, service.advance(session, fund, year, "return", note=body.reason))


# -- execution -------------------------------------------------------------------------------------------------------


@router.get("/{fund}/{year}/execution", response_model=ExecutionOut,
            summary="Monthly execution from the ledger vs time progress, with early warnings (002 三(一))",
            description="Contributions (the agency's postings, by 费款所属期) and bank-confirmed benefit payments "
                        "(by payroll month) from oversight's ledger, cumulated to ``month`` and divided by the "
                        "budget in force; a deviation from the time progress (month / 12) beyond ``threshold`` "
                        "percentage points (default SIFUND_OVERSIGHT_BUDGET_WARNING_THRESHOLD_POINTS = 10) is an "
                        "early warning.", dependencies=[READERS])
def execution(fund: FundPath, year: YearPath, session: SessionDep,
              month: Annotated[int | None, Query(ge=1, le=12, description="1–12; default: the last month over")] = None,
              threshold: Annotated[Decimal | None, Query(gt=0, le=100, description="percentage points")] = None,
              ) -> ExecutionOut:
    return ExecutionOut(**service.execution(session, fund, year, month, threshold))


# -- adjustments -----------------------------------------------------------------------------------------------------


@router.post("/{fund}/{year}/adjustments", response_model=AdjustmentOut, status_code=status.HTTP_201_CREATED,
             summary="Propose an adjustment of an approved budget (002 三(二)): the new amounts and the reason",
             dependencies=[DRAFTERS])
def create_adjustment(fund: FundPath, year: YearPath, body: AdjustmentIn, session: SessionDep) -> AdjustmentOut:
    adjustment = service.create_adjustment(session, fund, year, body.lines, body.reason)
    return _adjustment(session, service.get_budget(session, fund, year), adjustment)


@router.get("/{fund}/{year}/adjustments", response_model=list[AdjustmentOut],
            summary="The budget's adjustments (its history), in order", dependencies=[READERS])
def list_adjustments(fund: FundPath, year: YearPath, session: SessionDep) -> list[AdjustmentOut]:
    budget = service.get_budget(session, fund, year)
    return [_adjustment(session, budget, a) for a in service.adjustments_of(session, budget.id)]


@router.get("/{fund}/{year}/adjustments/{adjustment_id}", response_model=AdjustmentOut,
            summary="One adjustment", dependencies=[READERS])
def get_adjustment(fund: FundPath, year: YearPath, adjustment_id: str, session: SessionDep) -> AdjustmentOut:
    budget = service.get_budget(session, fund, year)
    return _adjustment(session, budget, service.get_adjustment(session, budget, adjustment_id))


def _step(session: Session, fund: str, year: int, adjustment_id: str, step: str, **kwargs) -> AdjustmentOut:
    adjustment = service.advance_adjustment(session, fund, year, adjustment_id, step, **kwargs)
    return _adjustment(session, service.get_budget(session, fund, year), adjustment)


@router.post("/{fund}/{year}/adjustments/{adjustment_id}/submit", response_model=AdjustmentOut,
             summary="Submit an adjustment for review (the agency)", dependencies=[DRAFTERS])
def submit_adjustment(fund: FundPath, year: YearPath, adjustment_id: str, session: SessionDep) -> AdjustmentOut:
    return _step(session, fund, year, adjustment_id, "submit")


@router.post("/{fund}/{year}/adjustments/{adjustment_id}/withdraw", response_model=AdjustmentOut,
             summary="Withdraw a draft adjustment (the agency)", dependencies=[DRAFTERS])
def withdraw_adjustment(fund: FundPath, year: YearPath, adjustment_id: str, session: SessionDep) -> AdjustmentOut:
    return _step(session, fund, year, adjustment_id, "withdraw")


@router.post("/{fund}/{year}/adjustments/{adjustment_id}/review", response_model=AdjustmentOut,
             summary="Review an adjustment (finance)", dependencies=[FINANCE])
def review_adjustment(fund: FundPath, year: YearPath, adjustment_id: str, session: SessionDep,
                      body: ReviewIn | None = None) -> AdjustmentOut:
    return _step(session, fund, year, adjustment_id, "review", note=body.note if body else None)


@router.post("/{fund}/{year}/adjustments/{adjustment_id}/approve", response_model=AdjustmentOut,
             summary="Approve an adjustment: only now do the budget's amounts change", dependencies=[FINANCE])
def approve_adjustment(fund: FundPath, year: YearPath, adjustment_id: str, body: ApproveIn,
                       session: SessionDep) -> AdjustmentOut:
    return _step(session, fund, year, adjustment_id, "approve", note=body.note, approval_ref=body.approval_ref,
                 approved_on=body.approved_on)


@router.post("/{fund}/{year}/adjustments/{adjustment_id}/return", response_model=AdjustmentOut,
             summary="Return an adjustment to draft, with a reason", dependencies=[FINANCE])
def return_adjustment(fund: FundPath, year: YearPath, adjustment_id: str, body: ReturnIn,
                      session: SessionDep) -> AdjustmentOut:
    return _step(session, fund, year, adjustment_id, "return", note=body.reason)


# -- final accounts --------------------------------------------------------------------------------------------------


@router.post("/{fund}/{year}/final-accounts", response_model=FinalAccountsOut, status_code=status.HTTP_201_CREATED,
             summary="Draw (or redraw, while a draft) the year's final accounts (002 三(三))",
             description="Actuals of contributions and benefits from oversight's ledger, the other items as "
                         "entered (missing: 0); each against the budget in force. Only once the year is over.",
             dependencies=[DRAFTERS])
def draw_final_accounts(fund: FundPath, year: YearPath, session: SessionDep,
                        body: FinalAccountsIn | None = None) -> FinalAccountsOut:
    body = body or FinalAccountsIn()
    final = service.draw_final_accounts(session, fund, year, body.entered, body.note)
    return _final(session, service.get_budget(session, fund, year), final)


@router.get("/{fund}/{year}/final-accounts", response_model=FinalAccountsOut, summary="The year's final accounts",
            dependencies=[READERS])
def get_final_accounts(fund: FundPath, year: YearPath, session: SessionDep) -> FinalAccountsOut:
    return _final(session, *service.get_final_accounts(session, fund, year))


def _final_step(session: Session, fund: str, year: int, step: str, **kwargs) -> FinalAccountsOut:
    final = service.advance_final_accounts(session, fund, year, step, **kwargs)
    return _final(session, service.get_budget(session, fund, year), final)


@router.post("/{fund}/{year}/final-accounts/submit", response_model=FinalAccountsOut,
             summary="Submit the final accounts (the agency)", dependencies=[DRAFTERS])
def submit_final(fund: FundPath, year: YearPath, session: SessionDep) -> FinalAccountsOut:
    return _final_step(session, fund, year, "submit")


@router.post("/{fund}/{year}/final-accounts/review", response_model=FinalAccountsOut,
             summary="Review the final accounts (finance)", dependencies=[FINANCE])
def review_final(fund: FundPath, year: YearPath, session: SessionDep,
                 body: ReviewIn | None = None) -> FinalAccountsOut:
    return _final_step(session, fund, year, "review", note=body.note if body else None)


@router.post("/{fund}/{year}/final-accounts/approve", response_model=FinalAccountsOut,
             summary="Record the approval of the final accounts (人大常委会批准, 批复)", dependencies=[FINANCE])
def approve_final(fund: FundPath, year: YearPath, body: ApproveIn, session: SessionDep) -> FinalAccountsOut:
    return _final_step(session, fund, year, "approve", note=body.note, approval_ref=body.approval_ref,
                       approved_on=body.approved_on)


@router.post("/{fund}/{year}/final-accounts/return", response_model=FinalAccountsOut,
             summary="Return the final accounts to draft, with a reason", dependencies=[FINANCE])
def return_final(fund: FundPath, year: YearPath, body: ReturnIn, session: SessionDep) -> FinalAccountsOut:
    return _final_step(session, fund, year, "return", note=body.reason)

