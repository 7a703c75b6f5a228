"""Tables of the collection service (征缴与资金). They live in the collection database only.

Money is integer fen; rates are decimal strings (``"0.16"``), never float; periods are ``YYYYMM`` integers.
Three parties keep three legs: the tax bureau's payments (TAX), finance's treasury and special-account records
(FINANCE); the agency's posting (AGENCY) happens in accounts.
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, ForeignKeyConstraint, Index, Text, UniqueConstraint, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from services.kernel.models import SQLITE_ONLY


class CollectionTable(SQLModel, registry=registry()):
    pass


metadata = CollectionTable.metadata


def money_column(nullable: bool = False) -> Column:
    return Column(BigInteger, nullable=nullable)


# -- configuration: rates and bases ----------------------------------------------------------------------------------


class ContributionParameters(CollectionTable, table=True):
    """A dated set of rates and bases for the region, valid from ``valid_from`` until the next
    approved set. The content is a validated JSON document (collection/parameters/schemas.py). Proposed by one
    person, approved by another; past periods keep the set that applied to them."""

    __tablename__ = "contribution_parameters"
    __table_args__ = (Index("ix_parameters_region_valid", "region", "valid_from", "status"),)

    id: str = Field(primary_key=True, max_length=36)
    region: str = Field(max_length=6)
    valid_from: int  # YYYYMM
    document: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=20)  # proposed | approved | rejected
    reason: str = Field(sa_column=Column(Text, nullable=False))
    proposed_at: datetime
    proposed_by: str = Field(max_length=100)
    decided_at: datetime | None = None
    decided_by: str | None = Field(default=None, max_length=100)
    decision_reason: str | None = Field(default=None, sa_column=Column(Text))


class EmployerInjuryAdjustment(CollectionTable, table=True):
    """Per-employer floating of the work-injury rate (浮动费率), as a factor of the class rate, approved."""

    __tablename__ = "employer_injury_adjustment"

    id: str = Field(primary_key=True, max_length=36)
    employer_id: str = Field(max_length=36, index=True)
    valid_from: int
    factor: str = Field(max_length=10)  # e.g. "1.2" (+20 %) or "0.8"
    status: str = Field(max_length=20)  # proposed | approved | rejected
    reason: str = Field(sa_column=Column(Text, nullable=False))
    proposed_at: datetime
    proposed_by: str = Field(max_length=100)
    decided_at: datetime | None = None
    decided_by: str | None = Field(default=None, max_length=100)


# -- the registry, as collection knows it from ACCOUNTS events --------------------------------------------------------


class RegistryEmployer(CollectionTable, table=True):
    __tablename__ = "registry_employer"

    employer_id: str = Field(primary_key=True, max_length=36)
    uscc: str = Field(max_length=18, unique=True)
    name: str = Field(max_length=200)
    region: str = Field(max_length=6)
    unit_type: str = Field(max_length=30)
    industry_risk_class: int
    status: str = Field(max_length=20)
    source_event_id: str = Field(max_length=36)


class RegistryPerson(CollectionTable, table=True):
    __tablename__ = "registry_person"

    person_id: str = Field(primary_key=True, max_length=36)
    citizen_id: str = Field(max_length=18, unique=True)
    name: str = Field(max_length=100)
    life_status: str = Field(default="alive", max_length=20)
    source_event_id: str = Field(max_length=36)


class RegistryEnrolment(CollectionTable, table=True):
    __tablename__ = "registry_enrolment"
    __table_args__ = (Index("ix_registry_enrolment_employer", "employer_id", "status"),)

    enrolment_id: str = Field(primary_key=True, max_length=36)
    # Not indexed: collection reads enrolments by employer (declarations, the registry pages) or by id (the events),
    # never by person; an index on it cost every imported enrolment a random-order index write.
    person_id: str = Field(max_length=36)
    fund: str = Field(max_length=10)
    employer_id: str | None = Field(default=None, max_length=36)
    start_period: int
    end_period: int | None = None
    status: str = Field(max_length=20)
    source_event_id: str = Field(max_length=36)


# -- declarations and assessments ------------------------------------------------------------------------------------


class Declaration(CollectionTable, table=True):
    """An employer's monthly declaration of contribution bases (申报)."""

    __tablename__ = "declaration"
    __table_args__ = (Index("ix_declaration_employer_period", "employer_id", "period"),)

    id: str = Field(primary_key=True, max_length=36)
    employer_id: str = Field(max_length=36)
    period: int
    status: str = Field(max_length=20)  # submitted | assessed | superseded
    source: str = Field(max_length=10)  # api | csv | xlsx
    lines: int = 0
    submitted_at: datetime
    submitted_by: str = Field(max_length=100)


class DeclarationLine(CollectionTable, table=True):
    __tablename__ = "declaration_line"
    __table_args__ = (
        UniqueConstraint("declaration_id", "person_id"),
        # Foreign key on SQLite only (PostgreSQL: migration 3f9d2c7be1a4, the lines written with their declaration).
        ForeignKeyConstraint(["declaration_id"], ["declaration.id"], info={SQLITE_ONLY: True}),
    )

    id: int | None = Field(default=None, primary_key=True)
    declaration_id: str = Field(max_length=36)
    person_id: str = Field(max_length=36)
    declared_base_fen: int = Field(sa_column=money_column())
    base_fen: int = Field(sa_column=money_column())  # after clamping to [floor, cap]
    clamp: str | None = Field(default=None, max_length=10)  # floor | cap | None: the clamp is recorded


class Assessment(CollectionTable, table=True):
    """核定: the collection plan for one employer and period. Never edited; a correction supersedes it."""

    __tablename__ = "assessment"
    __table_args__ = (
        Index("ix_assessment_employer_period", "employer_id", "period", "status"),
        Index("ix_assessment_period", "period", "status", "id"),  # a month's lines read in pages
        # One issued collection plan per employer and month, even for two concurrent issues.
        Index("uq_assessment_issued", "employer_id", "period", unique=True,
              sqlite_where=text("status = 'issued'"), postgresql_where=text("status = 'issued'")),
    )

    id: str = Field(primary_key=True, max_length=36)
    declaration_id: str | None = Field(default=None, foreign_key="declaration.id", max_length=36)
    employer_id: str | None = Field(default=None, max_length=36)  # None for resident (PEN_RES) assessments
    period: int
    parameters_id: str = Field(max_length=36)  # the rate set applied
    status: str = Field(max_length=20)  # issued | superseded
    supersedes_id: str | None = Field(default=None, max_length=36)
    superseded_by_id: str | None = Field(default=None, max_length=36)
    due_date: date
    lines: int = 0
    employer_total_fen: int = Field(sa_column=money_column())
    individual_total_fen: int = Field(sa_column=money_column())
    issued_at: datetime
    issued_by: str = Field(max_length=100)
    reason: str | None = Field(default=None, sa_column=Column(Text))


class AssessmentLine(CollectionTable, table=True):
    """One person × fund × period with the employer and individual parts, each rounded half-up once."""

    __tablename__ = "assessment_line"
    __table_args__ = (
        UniqueConstraint("assessment_id", "person_id", "fund"),
        # The payments' match (a batch's persons in its periods), led by the period: a month's lines go into its own
        # part of the index rather than at random places over every month's.
        Index("ix_assessment_line_period_match", "period", "person_id", "fund"),
        # Its assessment: a foreign key on SQLite only. On PostgreSQL the check of each row of a COPY (a query run
        # by a trigger) cost as much of the server's CPU as the row's insert and index entries; the lines are written
        # only with their assessment, in its transaction, and neither is ever deleted (migration 3f9d2c7be1a4).
        ForeignKeyConstraint(["assessment_id"], ["assessment.id"], info={SQLITE_ONLY: True}),
        # PostgreSQL: half of each page left free, so that settling a line (paid amounts and status, none indexed) is
        # a HOT update on the same page instead of a new entry in each index. A 10 000-line batch's lock and update
        # went from 28 to 12 us a line and from 164 to 29 MB of WAL per 200 000 lines (migration b42f713a3440;
        # PostgreSQL alone, durable settings). The table is no larger: its indexes no longer grow with each settlement.
        {"postgresql_with": {"fillfactor": 50}},
    )

    id: str = Field(primary_key=True, max_length=36)
    assessment_id: str = Field(max_length=36)
    employer_id: str | None = Field(default=None, max_length=36)
    person_id: str = Field(max_length=36)
    fund: str = Field(max_length=10)
    period: int
    base_fen: int = Field(sa_column=money_column())
    employer_rate: str = Field(max_length=12)
    individual_rate: str = Field(max_length=12)
    employer_fen: int = Field(sa_column=money_column())
    individual_fen: int = Field(sa_column=money_column())
    due_date: date
    status: str = Field(max_length=20)  # open | paid | superseded
    paid_principal_fen: int = Field(default=0, sa_column=money_column())
    paid_late_fee_fen: int = Field(default=0, sa_column=money_column())


# -- tax collection (TAX leg) ----------------------------------------------------------------------------------------


class TaxPaymentBatch(CollectionTable, table=True):
    __tablename__ = "tax_payment_batch"

    id: str = Field(primary_key=True, max_length=36)
    received_at: datetime
    received_by: str = Field(max_length=100)
    source_format: str = Field(max_length=10)  # json | csv
    lines: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    matched: int = 0
    unmatched: int = 0


class TaxPayment(CollectionTable, table=True):
    """A payment line the tax bureau reports collected (征收), keyed by the bureau's own line id."""

    __tablename__ = "tax_payment"
    __table_args__ = (
        Index("ix_tax_payment_voucher", "voucher_no"),
        # The reviewer's work list (GET /tax-payments/unmatched, oldest first): only the few unmatched payments are
        # in it, so a batch of matched lines maintains no index for it.
        Index("ix_tax_payment_unmatched", "id", sqlite_where=text("match_status = 'unmatched'"),
              postgresql_where=text("match_status = 'unmatched'")),
        # Its batch: a foreign key on SQLite only (PostgreSQL: migration 3f9d2c7be1a4, the payments written only with
        # their batch, in its transaction; batches never deleted).
        ForeignKeyConstraint(["batch_id"], ["tax_payment_batch.id"], info={SQLITE_ONLY: True}),
    )

    id: str = Field(primary_key=True, max_length=36)
    tax_line_id: str = Field(max_length=64, unique=True)  # idempotency: the same line posted twice is a no-op
    content_hash: str = Field(max_length=64)  # a re-post with other content is refused
    batch_id: str = Field(max_length=36)
    payer_uscc: str | None = Field(default=None, max_length=18)
    employer_id: str | None = Field(default=None, max_length=36)
    citizen_id: str | None = Field(default=None, max_length=18)
    person_id: str | None = Field(default=None, max_length=36)
    fund: str = Field(max_length=10)
    period: int
    employer_fen: int = Field(sa_column=money_column())
    individual_fen: int = Field(sa_column=money_column())
    late_fee_fen: int = Field(default=0, sa_column=money_column())
    method: str = Field(max_length=30)
    voucher_no: str = Field(max_length=64)
    paid_date: date
    match_status: str = Field(max_length=20)  # matched | unmatched | resolved
    assessment_line_id: str | None = Field(default=None, max_length=36)
    match_note: str | None = Field(default=None, sa_column=Column(Text))


class LateFeeCharge(CollectionTable, table=True):
    """How a payment settled an assessment line: principal first, then the late fee accrued to the paid date."""

    __tablename__ = "late_fee_charge"
    # The line and the payment a charge refers to are not foreign keys (migrations 5c0e6a1d94b2 on PostgreSQL,
    # 8f7165bfa1c3 on SQLite): integrity rests on the only writers, a tax payment batch and a reviewer's resolve,
    # each of which inserts (or locks) the payment and reads the line under its settlement lock in the same
    # transaction; neither a line nor a payment is ever deleted. On SQLite each check was two more index searches a
    # charge, 1.7 us of a tax batch's ~50 a line (in-process bench, 100 000 lines).

    id: int | None = Field(default=None, primary_key=True)
    assessment_line_id: str = Field(max_length=36, index=True)
    tax_payment_id: str = Field(max_length=36)
    days_late: int
    principal_before_fen: int = Field(sa_column=money_column())
    principal_paid_fen: int = Field(sa_column=money_column())
    fee_accrued_fen: int = Field(sa_column=money_column())
    fee_paid_fen: int = Field(sa_column=money_column())
    computed_at: datetime


class ArrearsNotice(CollectionTable, table=True):
    """催缴通知: a notice to an employer of its arrears and late fees as of a date."""

    __tablename__ = "arrears_notice"

    id: str = Field(primary_key=True, max_length=36)
    employer_id: str = Field(max_length=36, index=True)
    as_of: date
    principal_fen: int = Field(sa_column=money_column())
    late_fee_fen: int = Field(sa_column=money_column())
    lines: int
    document: str = Field(sa_column=Column(Text, nullable=False))  # the line-by-line computation, JSON
    issued_at: datetime
    issued_by: str = Field(max_length=100)


# -- treasury and fund bank accounts (FINANCE leg) -------------------------------------------------------------------


class FundBankAccount(CollectionTable, table=True):
    """财政专户 / 收入户 / 支出户 (000 二(四)1): per fund, with its bank, opening approval and annual inspection."""

    __tablename__ = "fund_bank_account"
    __table_args__ = (UniqueConstraint("kind", "fund"),)

    id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=20)  # special | income | expenditure
    fund: str = Field(max_length=10)
    bank_name: str = Field(max_length=100)
    account_no: str = Field(max_length=40, unique=True)
    opened_on: date
    opening_approval_ref: str = Field(max_length=100)
    annual_inspection_due: date
    status: str = Field(default="open", max_length=20)  # open | closed
    balance_fen: int = Field(default=0, sa_column=money_column())
    created_at: datetime
    created_by: str = Field(max_length=100)


class TreasuryRemittance(CollectionTable, table=True):
    """The tax bureau's remittance of collected contributions to the treasury (国库), as finance records it."""

    __tablename__ = "treasury_remittance"

    id: str = Field(primary_key=True, max_length=36)
    fund: str = Field(max_length=10)
    period: int
    amount_fen: int = Field(sa_column=money_column())
    remitted_on: date
    voucher_no: str = Field(max_length=64, unique=True)
    recorded_at: datetime
    recorded_by: str = Field(max_length=100)


class BankTransaction(CollectionTable, table=True):
    """A movement on a fund bank account. Checked against the usage rules of 000 二(四)1 when recorded: a
    violation is refused when entered by hand, recorded and flagged when it comes from a bank statement."""

    __tablename__ = "bank_transaction"
    __table_args__ = (Index("ix_bank_transaction_account_date", "account_id", "value_date"),)

    id: str = Field(primary_key=True, max_length=36)
    idempotency_key: str = Field(max_length=200, unique=True)
    account_id: str = Field(foreign_key="fund_bank_account.id", max_length=36)
    fund: str = Field(max_length=10)
    direction: str = Field(max_length=3)  # in | out
    amount_fen: int = Field(sa_column=money_column())
    counterparty: str = Field(max_length=30)  # treasury | special | income | expenditure | interest | payer | beneficiary | other
    counterparty_account_id: str | None = Field(default=None, max_length=36)
    counterparty_fund: str | None = Field(default=None, max_length=10)
    purpose: str = Field(max_length=30)  # receipt | transfer | allocation | interest | payment | return | other
    remittance_id: str | None = Field(default=None, foreign_key="treasury_remittance.id", max_length=36)
    reference: str | None = Field(default=None, max_length=200)
    value_date: date
    source: str = Field(max_length=20)  # manual | bank_statement
    status: str = Field(max_length=20)  # accepted | flagged
    violation: str | None = Field(default=None, sa_column=Column(Text))
    recorded_at: datetime
    recorded_by: str = Field(max_length=100)
