"""The reconciliation checks R1–R6 (OVERSIGHT.md), computed on request from the ledger's aggregate rows: a month
costs one row read per cell, never the payment lines behind it.

Every cell has a ``status``: ``matched``, ``mismatch`` (the amounts and the difference), ``missing_tax``,
``missing_finance``, ``missing_agency`` or ``late``. The rules, as decided here:

**R1 fund × period** (000 二(二): 征缴部门、财政部门、社保经办机构每月至少相互对账一次). Amounts: TAX = principal
(employer + individual parts) + late fee the bureau collected; FINANCE = what the special account received against
the treasury remittances of the period; AGENCY = the principal the agency posted. The agency posts contributions to
persons and employers, not late fees, so AGENCY is compared with TAX's principal and FINANCE with TAX's total (the
bureau remits everything it collected, late fees included). A leg that is zero while another is not is *missing*
(TAX first, then FINANCE, then AGENCY); otherwise any difference is a *mismatch*.

**R2 employer × fund × period.** TAX (principal) must equal AGENCY; ASSESSED − TAX is the arrears, reported with the
cell (negative: collected beyond the current assessment). Arrears alone are not a discrepancy between the legs (they
are collection's to pursue); TAX without AGENCY is *missing_agency*, AGENCY without TAX *missing_tax*, two different
figures a *mismatch*.

**R3 each treasury remittance** (000 二(二)): due in the special account in full by the 10th Chinese working day
after ``remitted_on``. In full by then: *matched*; the last receipt after the deadline, or the deadline passed
(as of the report's day) without the full amount: *late*; not yet in full but still within the deadline:
*missing_finance*; receipts above the remitted amount: *mismatch*; receipts for a remittance oversight has not
heard of: *missing_tax*. A remittance belongs to the month it was remitted in.

**R4 income account × month** (000 二(四)1 收入户月末无余额): the closing balance at the month's end (every movement
with a value date up to that day, flagged ones included: they happened) is zero: *matched*; else *mismatch*.

**R5 fund × month, money out**: the approved payroll of the month = the allocations the expenditure account
received that month (value date) = bank-confirmed payments + payments returned (failed and not paid since) + lines
held back when the first bank file was made (entitlement suspended or ended, person dead or imprisoned since the
approval: never sent to the bank, the money stays in the expenditure account, 001 第二十七条) + recovery offsets
deducted from lines (001 第二十九条(五): a line offset in part is paid net, one offset in full has no bank line).
The last four together are the *accounted* figure; held-back lines and offsets come from benefits'
``PayrollLinesRetained``. Allocated is compared with approved as before. No approved payroll: *missing_agency*; no
allocation: *missing_finance*; otherwise any difference: *mismatch* (bank results still outstanding show as a
difference until they arrive).

**R6 fund** (000 二(一) 不得相互挤占或调剂): every movement of the month whose counterparty belongs to another fund's
books, or that collection flagged against a usage rule, is a *mismatch* cell of its own; a fund with movements and
none of those is one *matched* cell.

Each cell names the suspicion rule it feeds (S15 for R1/R2/R5, S12 for R3, S13 for R4, S14 for a cross-fund
movement, S16 for a usage-rule violation of the income or expenditure account) and the seed clause.
"""

import calendar
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from services.oversight.ledger.models import (
    LedgerAccountMonth,
    LedgerBankAccount,
    LedgerEmployerPeriod,
    LedgerEmployerPeriodAgency,
    LedgerFlaggedTransaction,
    LedgerFundMonthOut,
    LedgerFundPeriod,
    LedgerFundPeriodAgency,
    LedgerRemittance,
)
from services.oversight.ledger.workdays import remittance_deadline

CHECKS = ("R1", "R2", "R3", "R4", "R5", "R6")
STATUSES = ("matched", "mismatch", "missing_tax", "missing_finance", "missing_agency", "late")


@dataclass(frozen=True)
class CheckInfo:
    id: str
    title: str
    granularity: str
    rule: str
    clause: str


CHECK_INFO = {
    "R1": CheckInfo("R1", "三方对账（险种×所属期）", "fund × period", "TAX = FINANCE = AGENCY", "000 二(二)"),
    "R2": CheckInfo("R2", "单位对账（单位×险种×所属期）", "employer × fund × period",
                    "TAX = AGENCY; ASSESSED − TAX = arrears", "000 二(二)"),
    "R3": CheckInfo("R3", "国库划入财政专户时限", "each treasury remittance",
                    "in the special account within 10 working days", "000 二(二)"),
    "R4": CheckInfo("R4", "收入户月末余额", "income account × month", "closing balance is zero", "000 二(四)1"),
    "R5": CheckInfo("R5", "基金支出对账（险种×月）", "fund × month, money out",
                    "approved payroll = finance allocation = bank-confirmed + returned + held back + offset",
                    "000 二(四)1"),
    "R6": CheckInfo("R6", "基金之间不得相互挤占或调剂", "fund", "no movement between funds' books; no flagged movement",
                    "000 二(一)"),
}

SUSPICION = {"R1": "S15", "R2": "S15", "R3": "S12", "R4": "S13", "R5": "S15"}
USAGE_RULE_SUSPICION = {"U1": "S16", "U3": "S16", "U7": "S14"}  # collection's usage rules (treasury/rules.py)
_RULE_ID = re.compile(r"\b(U\d+)\b")


@dataclass(frozen=True)
class Cell:
    """One reconciliation cell, shaped for the suspicion engine: ``check`` (R1 … R6), ``key`` (what identifies the
    cell: fund/period/employer_id, remittance_id, account_id, transaction_id), ``status``, ``amounts`` and
    ``differences`` in integer fen, the headline ``difference_fen``, check-specific ``detail``, the ``suspicion`` rule
    the cell feeds and the seed ``clause``. ``post_close`` is set when the cell's month is closed and the cell differs
    from the snapshot (``{"snapshot": {...}, "now": {...}, "delta": {...}, "changed": [...]}``)."""

    check: str
    key: dict[str, Any]
    status: str
    month: int
    fund: str | None
    period: int | None
    amounts: dict[str, int]
    differences: dict[str, int] = field(default_factory=dict)
    difference_fen: int = 0
    detail: dict[str, Any] = field(default_factory=dict)
    suspicion: str | None = None
    clause: str = ""
    post_close: dict[str, Any] | None = None

    @property
    def matched(self) -> bool:
        return self.status == "matched"

    @property
    def cell_key(self) -> str:
        return cell_key(self.key)


def cell_key(key: dict[str, Any]) -> str:
    return "|".join(f"{k}={'' if v is None else v}" for k, v in key.items())


def _headline(differences: dict[str, int]) -> int:
    """The largest difference by absolute value (the first on a tie)."""
    return max(differences.values(), key=abs, default=0)


def month_end(month: int) -> date:
    year, number = divmod(month, 100)
    return date(year, number, calendar.monthrange(year, number)[1])


# -- the rules, as pure functions ------------------------------------------------------------------------------------


def r1_status(tax: int, finance: int, agency: int, tax_principal: int) -> str:
    if tax == 0 and (finance or agency):
        return "missing_tax"
    if finance == 0 and tax:
        return "missing_finance"
    if agency == 0 and tax:
        return "missing_agency"
    return "matched" if finance == tax and agency == tax_principal else "mismatch"


def r2_status(tax: int, agency: int) -> str:
    if tax == agency:
        return "matched"
    if tax == 0:
        return "missing_tax"
    if agency == 0:
        return "missing_agency"
    return "mismatch"


def r3_status(amount: int | None, received: int, last_receipt_on: date | None, deadline: date | None,
              as_of: date) -> str:
    if amount is None:
        return "missing_tax"
    if received > amount:
        return "mismatch"
    if deadline is None:  # the calendar does not know the year yet: lateness cannot be judged
        return "matched" if received == amount else "missing_finance"
    if received == amount:
        return "late" if last_receipt_on is not None and last_receipt_on > deadline else "matched"
    return "late" if as_of > deadline else "missing_finance"


def r5_status(approved: int, allocated: int, accounted: int) -> str:
    """``accounted`` = paid + returned + held back + offset."""
    if approved == allocated == accounted:
        return "matched"
    if approved == 0:
        return "missing_agency"
    if allocated == 0:
        return "missing_finance"
    return "mismatch"


# -- the cells of a month --------------------------------------------------------------------------------------------


def r1_cells(session: Session, month: int) -> list[Cell]:
    """A cell per fund of the period: its TAX and FINANCE legs (``ledger_fund_period``) and its AGENCY leg
    (``ledger_fund_period_agency``), whichever of the two rows exist."""
    legs = {row.fund: row for row in session.execute(
        select(LedgerFundPeriod).where(LedgerFundPeriod.period == month)).scalars()}
    agency = {row.fund: row for row in session.execute(
        select(LedgerFundPeriodAgency).where(LedgerFundPeriodAgency.period == month)).scalars()}
    cells = []
    for fund in sorted(legs.keys() | agency.keys()):
        row = legs.get(fund) or LedgerFundPeriod(period=month, fund=fund)
        posted = agency.get(fund) or LedgerFundPeriodAgency(period=month, fund=fund)
        tax = row.tax_principal_fen + row.tax_late_fee_fen
        if not (tax or row.finance_fen or posted.agency_fen):
            continue
        differences = {"finance_minus_tax": row.finance_fen - tax,
                       "agency_minus_tax_principal": posted.agency_fen - row.tax_principal_fen}
        cells.append(Cell(
            check="R1", key={"fund": fund, "period": month}, month=month, fund=fund, period=month,
            status=r1_status(tax, row.finance_fen, posted.agency_fen, row.tax_principal_fen),
            amounts={"tax": tax, "finance": row.finance_fen, "agency": posted.agency_fen,
                     "tax_principal": row.tax_principal_fen, "tax_late_fee": row.tax_late_fee_fen},
            differences=differences, difference_fen=_headline(differences),
            detail={"tax_lines": row.tax_lines, "agency_lines": posted.agency_lines,
                    "finance_receipts": row.finance_receipts},
            suspicion=SUSPICION["R1"], clause=CHECK_INFO["R1"].clause))
    return cells


def r2_cells(session: Session, month: int) -> list[Cell]:
    """A cell per employer and fund of the period: assessed and collected (``ledger_employer_period``) and posted
    (``ledger_employer_period_agency``), whichever of the two rows exist."""
    E, A = LedgerEmployerPeriod, LedgerEmployerPeriodAgency  # noqa: N806
    legs = {(fund, employer): (assessed, tax, late_fee) for fund, employer, assessed, tax, late_fee in session.execute(
        select(E.fund, E.employer_key, E.assessed_fen, E.tax_principal_fen, E.tax_late_fee_fen)
        .where(E.period == month))}
    posted = {(fund, employer): agency for fund, employer, agency in session.execute(
        select(A.fund, A.employer_key, A.agency_fen).where(A.period == month))}
    cells = []
    clause, suspicion = CHECK_INFO["R2"].clause, SUSPICION["R2"]
    for fund, employer in sorted(legs.keys() | posted.keys()):
        assessed, tax, late_fee = legs.get((fund, employer), (0, 0, 0))
        agency = posted.get((fund, employer), 0)
        if not (assessed or tax or late_fee or agency):
            continue  # an assessment superseded by one for other funds
        cells.append(Cell(
            check="R2", key={"employer_id": employer or None, "fund": fund, "period": month}, month=month,
            fund=fund, period=month, status=r2_status(tax, agency),
            amounts={"assessed": assessed, "tax": tax, "agency": agency, "tax_late_fee": late_fee,
                     "arrears": assessed - tax},
            differences={"agency_minus_tax": agency - tax}, difference_fen=agency - tax,
            suspicion=suspicion, clause=clause))
    return cells


def r3_cells(session: Session, month: int, as_of: date) -> list[Cell]:
    cells = []
    for row in session.execute(select(LedgerRemittance).where(LedgerRemittance.month == month)
                               .order_by(LedgerRemittance.remitted_on, LedgerRemittance.remittance_id)).scalars():
        # A deadline the calendar could not give when the remittance arrived (a year not yet announced) is asked
        # again: the operator may have supplied the year since (services/kernel/workdays.py).
        deadline = row.deadline if row.deadline is not None or row.remitted_on is None else \
            remittance_deadline(row.remitted_on)
        status = r3_status(row.amount_fen, row.received_fen, row.last_receipt_on, deadline, as_of)
        remitted = row.amount_fen or 0
        detail: dict[str, Any] = {
            "voucher_no": row.voucher_no, "remitted_on": row.remitted_on, "deadline": deadline,
            "receipts": row.receipts, "first_receipt_on": row.first_receipt_on,
            "last_receipt_on": row.last_receipt_on, "as_of": as_of,
        }
        if deadline is not None:
            reference = row.last_receipt_on if row.amount_fen is not None and row.received_fen >= remitted else as_of
            detail["days_late"] = max(0, (reference - deadline).days) if reference else 0
        elif row.remitted_on is not None:
            detail["note"] = f"节假日安排数据不含 {row.remitted_on.year} 年后续日期，暂无法判断是否逾期"
        cells.append(Cell(
            check="R3", key={"remittance_id": row.remittance_id}, month=month, fund=row.fund, period=row.period,
            status=status,
            amounts={"remitted": remitted, "received": row.received_fen,
                     "unreceived": max(0, remitted - row.received_fen)},
            differences={"received_minus_remitted": row.received_fen - remitted},
            difference_fen=row.received_fen - remitted, detail=detail, suspicion=SUSPICION["R3"],
            clause=CHECK_INFO["R3"].clause))
    return cells


def r4_cells(session: Session, month: int) -> list[Cell]:
    last_day = month_end(month)
    accounts = list(session.execute(
        select(LedgerBankAccount).where(LedgerBankAccount.kind == "income")
        .order_by(LedgerBankAccount.fund, LedgerBankAccount.account_id)).scalars())
    net = LedgerAccountMonth.in_fen - LedgerAccountMonth.out_fen
    closing = dict(session.execute(
        select(LedgerAccountMonth.account_id, func.sum(net))
        .where(LedgerAccountMonth.kind == "income", LedgerAccountMonth.month <= month)
        .group_by(LedgerAccountMonth.account_id)).all())
    in_month = {r[0]: r[1:] for r in session.execute(
        select(LedgerAccountMonth.account_id, LedgerAccountMonth.in_fen, LedgerAccountMonth.out_fen,
               LedgerAccountMonth.movements)
        .where(LedgerAccountMonth.kind == "income", LedgerAccountMonth.month == month))}
    cells = []
    for account in accounts:
        if account.account_id not in closing and (account.opened_on is None or account.opened_on > last_day):
            continue  # not open yet at the month's end, or never moved
        balance = int(closing.get(account.account_id) or 0)
        in_fen, out_fen, movements = in_month.get(account.account_id, (0, 0, 0))
        cells.append(Cell(
            check="R4", key={"account_id": account.account_id, "month": month}, month=month, fund=account.fund,
            period=None, status="matched" if balance == 0 else "mismatch",
            amounts={"closing_balance": balance, "in": in_fen, "out": out_fen},
            differences={"closing_balance": balance}, difference_fen=balance,
            detail={"month_end": last_day, "movements": movements}, suspicion=SUSPICION["R4"],
            clause=CHECK_INFO["R4"].clause))
    return cells


def r5_cells(session: Session, month: int) -> list[Cell]:
    cells = []
    for row in session.execute(select(LedgerFundMonthOut).where(LedgerFundMonthOut.month == month)
                               .order_by(LedgerFundMonthOut.fund)).scalars():
        bank = row.paid_fen + row.returned_fen
        accounted = bank + row.held_back_fen + row.offset_fen
        if not (row.approved_fen or row.allocated_fen or accounted):
            continue
        differences = {"allocated_minus_approved": row.allocated_fen - row.approved_fen,
                       "accounted_minus_approved": accounted - row.approved_fen}
        cells.append(Cell(
            check="R5", key={"fund": row.fund, "month": month}, month=month, fund=row.fund, period=month,
            status=r5_status(row.approved_fen, row.allocated_fen, accounted),
            amounts={"approved": row.approved_fen, "allocated": row.allocated_fen, "accounted": accounted,
                     "bank": bank, "paid": row.paid_fen, "returned": row.returned_fen,
                     "held_back": row.held_back_fen, "offset": row.offset_fen},
            differences=differences, difference_fen=_headline(differences),
            detail={"approved_runs": row.approved_runs, "approved_lines": row.approved_lines,
                    "allocations": row.allocations, "paid_lines": row.paid_lines,
                    "returned_lines": row.returned_lines, "held_back_lines": row.held_back_lines,
                    "offset_lines": row.offset_lines},
            suspicion=SUSPICION["R5"], clause=CHECK_INFO["R5"].clause))
    return cells


def usage_rule(violation: str | None) -> str | None:
    found = _RULE_ID.search(violation or "")
    return found.group(1) if found else None


def r6_cells(session: Session, month: int) -> list[Cell]:
    clause = CHECK_INFO["R6"].clause
    cells, with_violations = [], set()
    for row in session.execute(select(LedgerFlaggedTransaction).where(LedgerFlaggedTransaction.month == month)
                               .order_by(LedgerFlaggedTransaction.value_date,
                                         LedgerFlaggedTransaction.transaction_id)).scalars():
        with_violations.add(row.fund)
        rule = "U7" if row.cross_fund else usage_rule(row.violation)
        cells.append(Cell(
            check="R6", key={"transaction_id": row.transaction_id}, month=month, fund=row.fund, period=None,
            status="mismatch", amounts={"amount": row.amount_fen}, differences={"amount": row.amount_fen},
            difference_fen=row.amount_fen,
            detail={"account_id": row.account_id, "account_kind": row.account_kind, "direction": row.direction,
                    "counterparty": row.counterparty, "counterparty_fund": row.counterparty_fund,
                    "purpose": row.purpose, "value_date": row.value_date, "source": row.source,
                    "status": row.status, "cross_fund": row.cross_fund, "usage_rule": rule,
                    "violation": row.violation},
            suspicion=USAGE_RULE_SUSPICION.get(rule or ""), clause=clause))
    movements = session.execute(
        select(LedgerAccountMonth.fund, func.sum(LedgerAccountMonth.movements),
               func.sum(LedgerAccountMonth.in_fen), func.sum(LedgerAccountMonth.out_fen))
        .where(LedgerAccountMonth.month == month).group_by(LedgerAccountMonth.fund)
        .order_by(LedgerAccountMonth.fund))
    for fund, count, in_fen, out_fen in movements:
        if fund in with_violations:
            continue
        cells.append(Cell(
            check="R6", key={"fund": fund, "month": month}, month=month, fund=fund, period=None, status="matched",
            amounts={"in": int(in_fen or 0), "out": int(out_fen or 0)}, detail={"movements": int(count or 0)},
            suspicion=None, clause=clause))
    return cells


def compute_cells(session: Session, month: int, *, as_of: date) -> dict[str, list[Cell]]:
    """Every cell of ``month``, check by check, as the ledger stands now (R3 judged as of ``as_of``)."""
    return {
        "R1": r1_cells(session, month),
        "R2": r2_cells(session, month),
        "R3": r3_cells(session, month, as_of),
        "R4": r4_cells(session, month),
        "R5": r5_cells(session, month),
        "R6": r6_cells(session, month),
    }
