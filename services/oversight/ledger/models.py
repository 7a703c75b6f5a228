"""Tables of oversight's independent ledger (OVERSIGHT.md, three-way reconciliation).

Built only from events (streams COLLECTION, ACCOUNTS, BENEFITS; ``handlers.py``), never from another service's
database, and rebuildable from the streams (``services/oversight/rebuild.py``). Each *aggregate* table holds one row
per reconciliation cell with the running sums, moved in the consumer's transaction, so a month's report reads one row
per cell whatever the number of payment lines behind it:

=============================  ==============================  ===========================================================
table                          one row per                     fed by
=============================  ==============================  ===========================================================
ledger_fund_period             fund × period (R1)              PaymentsCollected (TAX), special-account receipts (FINANCE)
ledger_fund_period_agency      fund × period (R1)              ContributionsPosted (AGENCY)
ledger_employer_period         period × fund × employer (R2)   AssessmentIssued − superseded (ASSESSED), TAX
ledger_employer_period_agency  period × fund × employer (R2)   ContributionsPosted (AGENCY)
ledger_remittance              treasury remittance (R3)        TreasuryRemitted, its receipts into the special account
ledger_account_month           bank account × month (R4, R6)   every BankTransactionRecorded (in/out by value-date month)
ledger_fund_month_out          fund × month (R5)               PayrollApproved, allocations into the expenditure account,
                                                               PaymentsSettled (paid / failed = returned),
                                                               PayrollLinesRetained (held back / offset)
=============================  ==============================  ===========================================================

Line-level tables exist only where a sum alone cannot be kept exact — the inbox already applies each *event* once:

- ``ledger_assessment`` (assessment × fund): an ``AssessmentSuperseded`` names only the assessment, so what it
  assessed per fund is kept to take it back out of the R2 cells; ``ledger_superseded_assessment`` remembers a
  supersession that arrives before (a retried part of) the assessment it supersedes.
- ``ledger_settled_line`` (payroll line): a line that failed and was paid after a re-issue is counted once, as paid.
- ``ledger_retained_line`` (payroll line): a line held back or offset is counted once, however often it is reported.
- ``ledger_flagged_transaction`` (bank transaction): the few movements that cross funds or were flagged (R6).

Money is integer fen. ``employer_key`` is the employer id, or ``""`` for lines without one (individual payers, or a
payer the registry does not know).
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Text, false
from sqlmodel import Field

from services.oversight.models import OversightTable


def _fen() -> int:
    return Field(default=0, sa_column_kwargs={"server_default": "0"}, sa_type=BigInteger)


def _count() -> int:
    return Field(default=0, sa_column_kwargs={"server_default": "0"})


class LedgerFundPeriod(OversightTable, table=True):
    """R1 cell: the TAX and FINANCE legs of one fund and contribution period (the AGENCY leg is
    ``LedgerFundPeriodAgency``)."""

    __tablename__ = "ledger_fund_period"

    period: int = Field(primary_key=True)  # YYYYMM, 费款所属期
    fund: str = Field(primary_key=True, max_length=10)
    tax_principal_fen: int = _fen()  # employer + individual parts the tax bureau reported collected
    tax_late_fee_fen: int = _fen()  # late fees collected with them
    tax_lines: int = _count()
    finance_fen: int = _fen()  # receipts of remittances into the special account (FINANCE)
    finance_receipts: int = _count()
    updated_at: datetime


class LedgerFundPeriodAgency(OversightTable, table=True):
    """R1 cell's AGENCY leg: what the agency posted for one fund and contribution period. A row of its own, not
    columns of ``ledger_fund_period``: the ACCOUNTS consumer moves it while the COLLECTION consumer moves the TAX leg
    of the same fund and period; on PostgreSQL one row for both made each wait for the other's commit (its row lock),
    36.9 s at 1 000 000 lines. R1 reads the two rows of a cell side by side."""

    __tablename__ = "ledger_fund_period_agency"

    period: int = Field(primary_key=True)  # YYYYMM, 费款所属期
    fund: str = Field(primary_key=True, max_length=10)
    agency_fen: int = _fen()  # employer + individual parts the agency posted (AGENCY)
    agency_lines: int = _count()
    updated_at: datetime


class LedgerEmployerPeriod(OversightTable, table=True):
    """R2 cell: one employer's fund and period: assessed (current assessments only), collected (the posted figure is
    ``LedgerEmployerPeriodAgency``)."""

    __tablename__ = "ledger_employer_period"

    period: int = Field(primary_key=True)
    fund: str = Field(primary_key=True, max_length=10)
    employer_key: str = Field(primary_key=True, max_length=36)  # "" when the lines name no employer
    assessed_fen: int = _fen()
    tax_principal_fen: int = _fen()
    tax_late_fee_fen: int = _fen()
    updated_at: datetime


class LedgerEmployerPeriodAgency(OversightTable, table=True):
    """R2 cell's AGENCY leg: what the agency posted for one employer's fund and period, in a row of its own for the
    reason ``LedgerFundPeriodAgency`` gives (the ACCOUNTS consumer and the COLLECTION one never share a row)."""

    __tablename__ = "ledger_employer_period_agency"

    period: int = Field(primary_key=True)
    fund: str = Field(primary_key=True, max_length=10)
    employer_key: str = Field(primary_key=True, max_length=36)  # "" when the lines name no employer
    agency_fen: int = _fen()
    updated_at: datetime


class LedgerAssessment(OversightTable, table=True):
    """What one assessment assessed in one fund (the sum of its lines over all its parts), to undo on supersession."""

    __tablename__ = "ledger_assessment"

    assessment_id: str = Field(primary_key=True, max_length=36)
    fund: str = Field(primary_key=True, max_length=10)
    employer_key: str = Field(max_length=36)
    period: int
    assessed_fen: int = _fen()
    lines: int = _count()
    superseded: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    updated_at: datetime


class LedgerSupersededAssessment(OversightTable, table=True):
    """An assessment reported superseded (kept even if its parts have not all arrived yet)."""

    __tablename__ = "ledger_superseded_assessment"

    assessment_id: str = Field(primary_key=True, max_length=36)
    superseded_by_id: str = Field(max_length=36)
    source_event_id: str = Field(max_length=36)
    received_at: datetime


class LedgerRemittance(OversightTable, table=True):
    """R3 cell: one treasury remittance and what reached the special account against it.

    A receipt that arrives before its ``TreasuryRemitted`` makes the row with what it knows (``amount_fen`` None);
    the remittance fills in the rest. ``month`` is the month of ``remitted_on`` (of the first receipt until then)."""

    __tablename__ = "ledger_remittance"

    remittance_id: str = Field(primary_key=True, max_length=36)
    month: int = Field(index=True)
    fund: str = Field(max_length=10)
    period: int | None = None
    amount_fen: int | None = Field(default=None, sa_type=BigInteger)
    remitted_on: date | None = None
    voucher_no: str | None = Field(default=None, max_length=100)
    deadline: date | None = None  # 10th Chinese working day after remitted_on; None if the calendar lacks the year
    received_fen: int = _fen()
    receipts: int = _count()
    first_receipt_on: date | None = None
    last_receipt_on: date | None = None
    updated_at: datetime


class LedgerBankAccount(OversightTable, table=True):
    """A fund bank account as announced (BankAccountRegistered) or first seen in a transaction."""

    __tablename__ = "ledger_bank_account"

    account_id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=20)  # special | income | expenditure
    fund: str = Field(max_length=10)
    opened_on: date | None = None
    updated_at: datetime


class LedgerAccountMonth(OversightTable, table=True):
    """Movements of one bank account in one month (by value date). An income account's closing balance at the end
    of a month is the sum of its nets up to that month (R4)."""

    __tablename__ = "ledger_account_month"
    __table_args__ = (Index("ix_ledger_account_month_month", "month", "kind"),)

    account_id: str = Field(primary_key=True, max_length=36)
    month: int = Field(primary_key=True)
    kind: str = Field(max_length=20)
    fund: str = Field(max_length=10)
    in_fen: int = _fen()
    out_fen: int = _fen()
    movements: int = _count()
    updated_at: datetime


class LedgerFundMonthOut(OversightTable, table=True):
    """R5 cell: money out of one fund for one month."""

    __tablename__ = "ledger_fund_month_out"

    month: int = Field(primary_key=True)  # the payroll's month; an allocation's value-date month
    fund: str = Field(primary_key=True, max_length=10)
    approved_fen: int = _fen()
    approved_runs: int = _count()
    approved_lines: int = _count()
    allocated_fen: int = _fen()  # special → expenditure account (received on the expenditure account)
    allocations: int = _count()
    paid_fen: int = _fen()  # bank-confirmed payments
    paid_lines: int = _count()
    returned_fen: int = _fen()  # failed payments, returned to the expenditure account (and not paid since)
    returned_lines: int = _count()
    held_back_fen: int = _fen()  # approved lines held back when the first bank file was made (never sent)
    held_back_lines: int = _count()
    offset_fen: int = _fen()  # recovery offsets deducted from approved lines (the bank paid the rest, if any)
    offset_lines: int = _count()
    updated_at: datetime


class LedgerSettledLine(OversightTable, table=True):
    """The bank's last word on one payroll line: ``paid`` wins over ``failed`` (a re-issued line paid later)."""

    __tablename__ = "ledger_settled_line"

    payroll_line_id: str = Field(primary_key=True, max_length=64)
    fund: str = Field(max_length=10)
    month: int
    amount_fen: int = Field(sa_type=BigInteger)
    result: str = Field(max_length=10)  # paid | failed
    file_id: str = Field(max_length=36)
    updated_at: datetime


class LedgerRetainedLine(OversightTable, table=True):
    """A payroll line whose approved amount the bank files did not (wholly) pay: ``held_back`` (all of it) or
    ``offset`` (``amount_fen`` deducted; ``fully_offset`` when nothing was left to pay). Counted once per line."""

    __tablename__ = "ledger_retained_line"

    payroll_line_id: str = Field(primary_key=True, max_length=64)
    fund: str = Field(max_length=10)
    month: int
    run_id: str = Field(max_length=36)
    kind: str = Field(max_length=10)  # held_back | offset
    amount_fen: int = Field(sa_type=BigInteger)  # held back: the approved amount; offset: the amount deducted
    fully_offset: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    reason: str | None = Field(default=None, max_length=40)  # HELD_… code of a held-back line
    updated_at: datetime


class LedgerFlaggedTransaction(OversightTable, table=True):
    """R6: a bank movement between different funds' books (000 二(一)) or flagged against a usage rule."""

    __tablename__ = "ledger_flagged_transaction"

    transaction_id: str = Field(primary_key=True, max_length=36)
    month: int = Field(index=True)
    fund: str = Field(max_length=10)
    account_id: str = Field(max_length=36)
    account_kind: str = Field(max_length=20)
    direction: str = Field(max_length=3)
    amount_fen: int = Field(sa_type=BigInteger)
    counterparty: str = Field(max_length=20)
    counterparty_fund: str | None = Field(default=None, max_length=10)
    purpose: str = Field(max_length=20)
    value_date: date
    source: str = Field(max_length=20)
    status: str = Field(max_length=10)  # accepted | flagged
    cross_fund: bool
    violation: str | None = Field(default=None, sa_column=Column(Text))
    source_event_id: str = Field(max_length=36)
    received_at: datetime


LEDGER_TABLES = (
    LedgerFundPeriod, LedgerFundPeriodAgency, LedgerEmployerPeriod, LedgerEmployerPeriodAgency, LedgerAssessment,
    LedgerSupersededAssessment, LedgerRemittance,
    LedgerBankAccount, LedgerAccountMonth, LedgerFundMonthOut, LedgerSettledLine, LedgerRetainedLine,
    LedgerFlaggedTransaction,
)
