"""Public disclosure (信息披露, 003 二.4; 社会保险法 经办机构应当定期向社会公布收支情况).

What the public sees, per fund and month: **income** (社会保险费收入: the contributions the agency posted for that
month, by 费款所属期 — the AGENCY leg of the three-way reconciliation), **expenditure** (社会保险待遇支出: the benefit
payments the bank confirmed for that payroll month), **period_surplus** (当期收支结余 = income − expenditure: the
month's, not the fund's balance) and **accumulated_balance** (累计结余: the period surpluses of every closed month up
to this one, from the first month closed on this platform — the balance a fund carried over from before it is not
known here and not included, as ``basis`` says); the year view adds the running year-to-date figures. Nothing else: no person, no employer, no account, no staff name —
only sums per fund and month, read from fund-level cells.

Which months: **only months the supervisor has closed** (reconciliation 月结); by default the latest closed month. The figures are those frozen in the
close's snapshot (the R1 cell's AGENCY amount and the R5 cell's bank-confirmed amount), so a published figure never
changes afterwards: events that arrive for a closed month appear to officers as post-close adjustments and are not
folded into what the public was shown. An open month, even a past one, is not disclosed.

The year view also shows the fund's approved budget totals (a budget approved by the people's congress is public);
drafts and budgets under review are not shown.
"""

from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from services.kernel.errors import Invalid, NotFound
from services.oversight.budget import service as budgets
from services.oversight.budget.items import FUND_NAMES
from services.oversight.reconciliation.models import ReconciliationClose, ReconciliationSnapshotCell

INCOME_CHECK, EXPENDITURE_CHECK = "R1", "R5"  # fund × period (AGENCY leg), fund × month (bank-confirmed)
BASIS = {
    "income": "社会保险费收入：经办机构到账确认记账的单位和个人缴费（按费款所属期，不含滞纳金）",
    "expenditure": "社会保险待遇支出：银行确认支付成功的待遇（按发放月份，退回的不计）",
    "period_surplus": "当期收支结余 = 当月收入 − 当月支出（当期数，不是基金累计结余）",
    "accumulated_balance": ("累计结余：自本系统首个已月结月份起，截至该月各已月结月份当期收支结余之和"
                            "（不含本系统启用前的历年滚存结余）"),
    "months": "仅公布已月结（对账封账）的月份，数字取自月结快照，公布后不再变动",
}


def fund_name(fund: str) -> str:
    return FUND_NAMES.get(fund, fund)


def closed_months(session: Session, year: int | None = None) -> list[int]:
    query = select(ReconciliationClose.month).order_by(ReconciliationClose.month)
    if year is not None:
        query = query.where(ReconciliationClose.month.between(year * 100 + 1, year * 100 + 12))
    return list(session.execute(query).scalars())


def figures(session: Session, months: list[int], fund: str | None = None) -> dict[int, dict[str, dict[str, int]]]:
    """month → fund → {income, expenditure, period_surplus} (fen) from the closed months' snapshots."""
    found: dict[int, dict[str, dict[str, int]]] = {m: {} for m in months}
    if not months:
        return found
    query = (select(ReconciliationSnapshotCell.month, ReconciliationSnapshotCell.check_id,
                    ReconciliationSnapshotCell.fund, ReconciliationSnapshotCell.amounts)
             .where(ReconciliationSnapshotCell.month.in_(months),
                    ReconciliationSnapshotCell.check_id.in_((INCOME_CHECK, EXPENDITURE_CHECK))))
    if fund is not None:
        query = query.where(ReconciliationSnapshotCell.fund == fund)
    for month, check, cell_fund, amounts in session.execute(query):
        if cell_fund is None:
            continue
        row = found[month].setdefault(cell_fund, {"income": 0, "expenditure": 0})
        if check == INCOME_CHECK:
            row["income"] += int(amounts.get("agency", 0))
        else:
            row["expenditure"] += int(amounts.get("paid", 0))
    for funds in found.values():
        for row in funds.values():
            row["period_surplus"] = row["income"] - row["expenditure"]
    return found


def accumulated(session: Session, up_to: int, fund: str | None = None) -> dict[int, dict[str, int]]:
    """month → fund → accumulated balance: the period surpluses of every closed month up to ``month``, for each
    closed month up to ``up_to``."""
    months = [m for m in closed_months(session) if m <= up_to]
    data = figures(session, months, fund)
    running: dict[str, int] = {}
    found: dict[int, dict[str, int]] = {}
    for m in months:
        for f, row in data[m].items():
            running[f] = running.get(f, 0) + row["period_surplus"]
        found[m] = dict(running)
    return found


def funds_view(session: Session, year: int | None, month: int | None) -> dict[str, Any]:
    """Every fund's figures for one closed month (``year`` and ``month``), for every closed month of ``year``, or —
    with neither — for the latest closed month."""
    if month is not None and year is None:
        raise Invalid("YEAR_REQUIRED", "指定月份时须同时指定年度")
    closed = closed_months(session, year)
    if month is not None:
        wanted = year * 100 + month  # type: ignore[operator]
        if wanted not in closed:
            raise NotFound("MONTH_NOT_DISCLOSED", f"{wanted} 尚未月结，暂不公布")
        months = [wanted]
    elif year is not None:
        months = closed
    else:
        months = closed[-1:]  # the latest closed month (an open month, even a past one, is not disclosed)
        if months:
            year, month = divmod(months[0], 100)
    data = figures(session, months)
    balances = accumulated(session, months[-1]) if months else {}

    def row(m: int, f: str) -> dict[str, Any]:
        return {"fund": f, "fund_name": fund_name(f), **data[m][f], "accumulated_balance": balances[m].get(f, 0)}

    return {"year": year, "month": months[0] if month is not None else None, "months": [
        {"month": m, "funds": [row(m, f) for f in sorted(data[m])],
         "totals": {**_sum(data[m].values()), "accumulated_balance": sum(balances[m].values())}}
        for m in months], "basis": BASIS}


def fund_year_view(session: Session, fund: str, year: int) -> dict[str, Any]:
    closed = closed_months(session, year)
    data = figures(session, closed, fund)
    balances = accumulated(session, closed[-1], fund) if closed else {}
    months, running = [], {"income": 0, "expenditure": 0, "period_surplus": 0}
    for m in closed:
        row = data[m].get(fund, {"income": 0, "expenditure": 0, "period_surplus": 0})
        running = {k: running[k] + row[k] for k in running}
        months.append({"month": m, **row, "accumulated_balance": balances[m].get(fund, 0),
                       "year_to_date": dict(running)})
    budget = None
    try:
        approved = budgets.get_budget(session, fund, year)
    except NotFound:
        approved = None
    if approved is not None and approved.status == budgets.APPROVED:
        totals = budgets.totals(budgets.amounts(session, approved.id))
        budget = {"income": totals["income"], "expenditure": totals["expenditure"],
                  "period_surplus": totals["surplus"],
                  "approved_on": approved.approved_on, "approval_ref": approved.approval_ref,
                  "adjustments": approved.version - 1}
    if not months and budget is None:
        raise NotFound("NOTHING_DISCLOSED", f"{fund_name(fund)} {year} 年度暂无公布信息")
    return {"fund": fund, "fund_name": fund_name(fund), "year": year, "months": months, "totals": dict(running),
            "budget": budget, "basis": BASIS}


def _sum(rows: Any) -> dict[str, int]:
    total = {"income": 0, "expenditure": 0, "period_surplus": 0}
    for row in rows:
        total = {k: total[k] + row[k] for k in total}
    return total
