"""Rules on the funds' money: S12–S16, from the reconciliation cells (``reconciliation.service.unmatched_cells``).

Every non-matched cell of the months swept opens (or updates) one case, ``<rule>:<check>:<cell key>`` — the key names
the cell (fund and period, employer, remittance, account and month, transaction), not its status, so a cell whose
status or amounts change reports a new occurrence on the same case rather than a second case:

======  =====================================  =================================================================
rule    cells                                  notes
======  =====================================  =================================================================
S12     R3 ``late``                            not in the special account in full within 10 working days
S13     R4 (closing balance not zero)          income account at the month's end
S14     R6 with usage rule U7 (cross-fund)     money between funds' books
S15     R1, R2, R5 not matched; R3 ``mismatch``  the legs disagree (R3: more received than remitted, or a receipt
        / ``missing_tax``                      for a remittance oversight never heard of)
S16     R6 with U1, U3 (and U2, U4–U6)         the income/expenditure accounts' usage rules (000 二(四)1); the
                                               other usage rules of the fund accounts are reported here as well
======  =====================================  =================================================================

R3 ``missing_finance`` (not yet in full but still within the deadline) is not a suspicion: nothing is late yet.
S13 and S15 are month-end rules (``Rule.month_end``): the sweep judges them only for months that have ended, so a
month still running (its balance and its legs still moving) opens no S13/S15 case; S12, S14 and S16 judge facts
(a deadline passed, a movement made) and run for every month swept.
Cells of a closed month that changed since the close carry ``post_close`` in the details. The sweep's day is left
out of the details (so a daily sweep of an unchanged cell only counts an occurrence); a late remittance still not
received reports its growing ``days_late``.
"""

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlmodel import Session

from services.kernel.periods import add_months, period_of
from services.oversight.reconciliation.cells import Cell
from services.oversight.reconciliation.service import unmatched_cells
from services.oversight.rules.common import yuan
from services.oversight.rules.registry import Finding
from services.kernel.settings import get_settings

FUND_RULES = ("S12", "S13", "S14", "S15", "S16")
STATUS_NAMES = {"mismatch": "不符", "missing_tax": "缺税务数据", "missing_finance": "缺财政数据",
                "missing_agency": "缺经办数据", "late": "逾期"}


def default_months(as_of: date) -> list[int]:
    current = period_of(as_of)
    return [add_months(current, -n) for n in range(get_settings().oversight_rules.reconciliation_months, 0, -1)]


def rule_for(cell: Cell) -> str | None:
    if cell.check == "R3":
        return {"late": "S12", "mismatch": "S15", "missing_tax": "S15"}.get(cell.status)
    if cell.check == "R4":
        return "S13"
    if cell.check == "R6":
        return cell.suspicion if cell.suspicion in ("S14", "S16") else "S16"
    return "S15"


def _subject(cell: Cell) -> tuple[str, str, str | None]:
    key = cell.key
    if cell.check == "R2" and key.get("employer_id"):
        return "employer", str(key["employer_id"]), str(key["employer_id"])
    if cell.check == "R3":
        return "remittance", str(key["remittance_id"]), None
    if cell.check == "R4":
        return "bank_account", str(key["account_id"]), None
    if cell.check == "R6" and "transaction_id" in key:
        return "bank_transaction", str(key["transaction_id"]), None
    return "fund", str(cell.fund or key.get("fund") or ""), None


def _title(cell: Cell) -> str:
    where = " ".join(str(v) for v in cell.key.values() if v not in (None, ""))
    status = STATUS_NAMES.get(cell.status, cell.status)
    return f"{cell.check} {where}：{status}，差额 {yuan(cell.difference_fen)} 元"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def findings_of(cells: Iterable[Cell]) -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {rule: [] for rule in FUND_RULES}
    for cell in cells:
        rule = rule_for(cell)
        if rule is None:
            continue
        subject_type, subject_id, employer_id = _subject(cell)
        found[rule].append(Finding(
            key=f"{cell.check}:{cell.cell_key}", subject_type=subject_type, subject_id=subject_id or cell.check,
            employer_id=employer_id, amount_fen=abs(cell.difference_fen) or None, title=_title(cell),
            month=cell.month,
            details=_plain({"check": cell.check, "key": cell.key, "status": cell.status, "month": cell.month,
                            "fund": cell.fund, "period": cell.period, "amounts": cell.amounts,
                            "differences": cell.differences, "difference_fen": cell.difference_fen,
                            "detail": {k: v for k, v in cell.detail.items() if k != "as_of"}, "clause": cell.clause,
                            "post_close": cell.post_close})))
    return found


def find_fund_rules(session: Session, months: Iterable[int], as_of: date) -> dict[str, list[Finding]]:
    cells: list[Cell] = []
    for month in sorted(set(months)):
        cells.extend(unmatched_cells(session, month, as_of=as_of))
    return findings_of(cells)
