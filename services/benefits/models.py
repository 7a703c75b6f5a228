"""Tables of the benefits service (待遇). They live in the benefits database only.

Money is integer fen; parameters are decimal strings; periods are ``YYYYMM`` integers. Every amount paid is
computed by the system (004 第20项), approved at the right levels by different people (004 第4项, 001 第十八条),
and paid only into the beneficiary's own account (000 二(三)).
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class BenefitsTable(SQLModel, registry=registry()):
    pass


metadata = BenefitsTable.metadata


def money_column(nullable: bool = False) -> Column:
    return Column(BigInteger, nullable=nullable)


# -- the registry as benefits knows it (ACCOUNTS / EXCHANGE / COLLECTION events) ---------------------------------------


class BeneficiaryPerson(BenefitsTable, table=True):
    __tablename__ = "beneficiary_person"

    person_id: str = Field(primary_key=True, max_length=36)
    citizen_id: str = Field(max_length=18, unique=True)
    name: str = Field(max_length=100)
    sex: str = Field(max_length=1)
    birth_date: date
    region: str = Field(max_length=6)
    life_status: str = Field(default="alive", max_length=20)
    death_date: date | None = None
    imprisoned_from: date | None = None
    imprisoned_until: date | None = None
    source_event_id: str = Field(max_length=36)


class BeneficiaryAccount(BenefitsTable, table=True):
    """A payment account of a person, from accounts; only these (holder = the person) may be paid into."""

    __tablename__ = "beneficiary_account"

    bank_account_id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(max_length=36, index=True)
    kind: str = Field(max_length=20)  # bank_account | ss_card
    bank_name: str = Field(max_length=100)
    account_no: str = Field(max_length=19)
    holder_name: str = Field(max_length=100)
    status: str = Field(max_length=20)  # active | closed


class ContributionIndex(BenefitsTable, table=True):
    """Per person and pension fund: months assessed and the sum of monthly indexes (base ÷ that year's average
    wage), kept exactly as a decimal string, from collection's assessments; the basis of 指数化月平均缴费工资."""

    __tablename__ = "contribution_index"
    # The unique key serves every read by person (its first column): no second index on person_id to write.
    __table_args__ = (UniqueConstraint("person_id", "fund", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: str = Field(max_length=36)
    fund: str = Field(max_length=10)
    period: int
    base_fen: int = Field(sa_column=money_column())
    average_wage_fen: int = Field(sa_column=money_column())
    assessment_line_id: str = Field(max_length=36)
    assessment_id: str = Field(max_length=36, index=True)  # a correction removes the rows of the one it replaces


class BenefitParameters(BenefitsTable, table=True):
    """Dated benefit parameters per region (prior-year average wage, divisors, unemployment amount, thresholds),
    a validated JSON document proposed by one person and approved by another."""

    __tablename__ = "benefit_parameters"

    id: str = Field(primary_key=True, max_length=36)
    region: str = Field(max_length=6)
    valid_from: int
    document: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=20)  # proposed | approved | rejected
    proposed_at: datetime
    proposed_by: str = Field(max_length=100)
    decided_at: datetime | None = None
    decided_by: str | None = Field(default=None, max_length=100)


# -- claims and approvals --------------------------------------------------------------------------------------------


class Claim(BenefitsTable, table=True):
    """A claim for a benefit. Verified online before it proceeds (004 第10项); computed by the system."""

    __tablename__ = "claim"
    __table_args__ = (Index("ix_claim_person_kind", "person_id", "kind", "status"),)

    id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(max_length=36)
    kind: str = Field(max_length=30)  # basic_pension | resident_pension | unemployment | injury | one_off
    fund: str = Field(max_length=10)
    importance: str = Field(max_length=10)  # ordinary (2 levels) | important (3 levels)
    region: str = Field(max_length=6)
    status: str = Field(max_length=20)  # submitted | blocked | in_review | approved | rejected | withdrawn
    blocked_reason: str | None = Field(default=None, sa_column=Column(Text))
    effective_period: int  # first month of entitlement
    end_period: int | None = None  # last month (unemployment entitlement), None = for life
    monthly_amount_fen: int | None = Field(default=None, sa_column=money_column(nullable=True))
    one_off_amount_fen: int | None = Field(default=None, sa_column=money_column(nullable=True))
    computation: str = Field(sa_column=Column(Text, nullable=False))  # JSON: inputs and each step
    verification: str = Field(sa_column=Column(Text, nullable=False))  # JSON: the online checks and their answers
    large_amount: bool = False  # needs the extra review of 001 第十八条
    documents: str | None = Field(default=None, sa_column=Column(Text))  # references to supporting documents
    submitted_at: datetime
    submitted_by: str = Field(max_length=100)
    decided_at: datetime | None = None


# The decisions that count: neither made void by a 退回 nor a return or resubmission step itself.
LIVE_DECISION = text("voided_at IS NULL AND decision IN ('approve', 'reject')")


class ClaimDecision(BenefitsTable, table=True):
    """One step on a claim: a level's decision (approve, reject), a 退回 (return, to the clerk or to the level before)
    or the clerk's resubmission after a return. One live decision per level and per person; one person never acts at
    two levels of the same claim (the service checks it over the whole history, returns and void decisions too)."""

    __tablename__ = "claim_decision"
    __table_args__ = (
        Index("uq_claim_decision_live_level", "claim_id", "level", unique=True,
              sqlite_where=LIVE_DECISION, postgresql_where=LIVE_DECISION),
        Index("uq_claim_decision_live_person", "claim_id", "decided_by", unique=True,
              sqlite_where=LIVE_DECISION, postgresql_where=LIVE_DECISION),
    )

    id: int | None = Field(default=None, primary_key=True)
    claim_id: str = Field(foreign_key="claim.id", max_length=36)
    level: str = Field(max_length=20)  # first_review | second_review | approval | large_amount_review | submission
    decision: str = Field(max_length=10)  # approve | reject | return | resubmit
    reason: str = Field(sa_column=Column(Text, nullable=False))
    decided_at: datetime
    decided_by: str = Field(max_length=100)
    role: str = Field(max_length=50)
    returned_to: str | None = Field(default=None, max_length=20)  # a return: "clerk" or the level sent back to
    voided_at: datetime | None = None  # a later return made this decision void: its level is decided again


class Entitlement(BenefitsTable, table=True):
    """An approved, payable benefit: the payroll pays every active entitlement each month."""

    __tablename__ = "entitlement"
    __table_args__ = (Index("ix_entitlement_fund_status", "fund", "status"),)

    id: str = Field(primary_key=True, max_length=36)
    claim_id: str = Field(foreign_key="claim.id", max_length=36, unique=True)
    person_id: str = Field(max_length=36, index=True)
    kind: str = Field(max_length=30)
    fund: str = Field(max_length=10)
    monthly_amount_fen: int = Field(sa_column=money_column())
    start_period: int
    end_period: int | None = None
    status: str = Field(max_length=20)  # active | suspended | ended
    suspended_reason: str | None = Field(default=None, max_length=200)
    suspended_at: datetime | None = None
    bank_account_id: str | None = Field(default=None, max_length=36)
    region: str = Field(max_length=6)
    created_at: datetime


# -- payroll and bank payment ----------------------------------------------------------------------------------------


class PayrollRun(BenefitsTable, table=True):
    """A monthly payroll per fund and period: the same period twice gives the same run; frozen once approved."""

    __tablename__ = "payroll_run"
    __table_args__ = (UniqueConstraint("fund", "period"),)

    id: str = Field(primary_key=True, max_length=36)
    fund: str = Field(max_length=10)
    period: int
    status: str = Field(max_length=20)  # computed | approved | funded | paid
    lines: int = 0
    total_fen: int = Field(sa_column=money_column())
    large_lines: int = 0
    computed_at: datetime
    computed_by: str = Field(max_length=100)
    approved_at: datetime | None = None
    approved_by: str | None = Field(default=None, max_length=100)
    funding_requested_at: datetime | None = None


class PayrollLine(BenefitsTable, table=True):
    __tablename__ = "payroll_line"
    __table_args__ = (UniqueConstraint("run_id", "entitlement_id"), Index("ix_payroll_line_person", "person_id"))

    id: str = Field(primary_key=True, max_length=36)
    run_id: str = Field(foreign_key="payroll_run.id", max_length=36)
    entitlement_id: str = Field(max_length=36)
    person_id: str = Field(max_length=36)
    period: int
    amount_fen: int = Field(sa_column=money_column())
    bank_account_id: str | None = Field(default=None, max_length=36)
    status: str = Field(max_length=20)  # pending | in_file | paid | failed | reissued | withheld
    failure_reason: str | None = Field(default=None, max_length=200)


class BankFile(BenefitsTable, table=True):
    """A payment file to the bank: the documented CSV format with a batch checksum."""

    __tablename__ = "bank_file"

    id: str = Field(primary_key=True, max_length=36)
    run_id: str = Field(foreign_key="payroll_run.id", max_length=36, index=True)
    sequence: int  # 1 for the first file of a run, 2… for re-issues
    lines: int
    total_fen: int = Field(sa_column=money_column())
    checksum: str = Field(max_length=64)
    content: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(max_length=20)  # issued | settled
    created_at: datetime
    created_by: str = Field(max_length=100)


class BankFileLine(BenefitsTable, table=True):
    __tablename__ = "bank_file_line"
    __table_args__ = (UniqueConstraint("file_id", "line_no"),)

    id: str = Field(primary_key=True, max_length=36)
    file_id: str = Field(foreign_key="bank_file.id", max_length=36)
    line_no: int
    payroll_line_id: str = Field(foreign_key="payroll_line.id", max_length=36, index=True)
    account_no: str = Field(max_length=19)
    holder_name: str = Field(max_length=100)
    amount_fen: int = Field(sa_column=money_column())
    result: str | None = Field(default=None, max_length=20)  # paid | failed
    result_reason: str | None = Field(default=None, max_length=200)
    result_at: datetime | None = None


# -- eligibility upkeep and recovery ---------------------------------------------------------------------------------


class SurvivalCertification(BenefitsTable, table=True):
    """生存认证 (001 第二十六条): at least once a year."""

    __tablename__ = "survival_certification"
    __table_args__ = (Index("ix_survival_person_date", "person_id", "certified_on"),)

    id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(max_length=36)
    channel: str = Field(max_length=20)  # app | face | on_site | data_match
    certified_on: date
    recorded_at: datetime
    recorded_by: str = Field(max_length=100)


class SurvivalNotice(BenefitsTable, table=True):
    __tablename__ = "survival_notice"

    id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(max_length=36, index=True)
    issued_on: date
    respond_by: date
    status: str = Field(max_length=20)  # open | certified | suspended


class Overpayment(BenefitsTable, table=True):
    """A payment made for a period the person was not entitled to (after death, in prison…)."""

    __tablename__ = "overpayment"
    __table_args__ = (UniqueConstraint("payroll_line_id"),)

    id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(max_length=36, index=True)
    payroll_line_id: str = Field(max_length=36)
    period: int
    amount_fen: int = Field(sa_column=money_column())
    reason: str = Field(max_length=200)
    found_at: datetime
    recovery_notice_id: str | None = Field(default=None, max_length=36)


class RecoveryNotice(BenefitsTable, table=True):
    """追回通知 (001 第二十九条(四)、第二十九条(五)): amount and deadline; what remains after it escalates to audit."""

    __tablename__ = "recovery_notice"

    id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(max_length=36, index=True)
    amount_fen: int = Field(sa_column=money_column())
    recovered_fen: int = Field(default=0, sa_column=money_column())
    deadline: date
    status: str = Field(max_length=20)  # open | recovered | escalated | written_off
    issued_at: datetime
    issued_by: str = Field(max_length=100)
    escalated_at: datetime | None = None


class Recovery(BenefitsTable, table=True):
    """A repayment or an offset against a recovery notice; each happens once (idempotency key). Never deleted: a
    payroll offset whose line is held back (nothing deducted from any payment) is ``reversed`` with its reason and no
    longer counts on the notice (recovery/service.py ``reverse_payroll_offsets``)."""

    __tablename__ = "recovery"

    id: str = Field(primary_key=True, max_length=36)
    notice_id: str = Field(foreign_key="recovery_notice.id", max_length=36, index=True)
    method: str = Field(max_length=30)  # repayment | payroll_offset | one_off_offset | individual_account
    amount_fen: int = Field(sa_column=money_column())
    idempotency_key: str = Field(max_length=200, unique=True)
    reference: str | None = Field(default=None, max_length=200)
    recorded_at: datetime
    recorded_by: str = Field(max_length=100)
    status: str = Field(default="recorded", max_length=20,
                        sa_column_kwargs={"server_default": "recorded"})  # recorded | reversed
    reversed_at: datetime | None = None
    reversed_by: str | None = Field(default=None, max_length=100)
    reversal_reason: str | None = Field(default=None, max_length=300)


class AverageWage(BenefitsTable, table=True):
    """The prior-year average monthly wage in force from ``valid_from``, mirrored from collection's approved
    parameters (ParametersApproved): the denominator of each month's contribution index."""

    __tablename__ = "average_wage"
    __table_args__ = (UniqueConstraint("region", "valid_from"),)

    id: int | None = Field(default=None, primary_key=True)
    region: str = Field(max_length=6)
    valid_from: int
    average_monthly_wage_fen: int = Field(sa_column=money_column())
    parameters_id: str = Field(max_length=36, unique=True)


class MirroredAssessment(BenefitsTable, table=True):
    """Which collection assessments the contribution index holds, and which were replaced by a correction (so that
    a late part of a replaced assessment is not added back)."""

    __tablename__ = "mirrored_assessment"

    assessment_id: str = Field(primary_key=True, max_length=36)
    employer_id: str | None = Field(default=None, max_length=36)
    period: int
    status: str = Field(max_length=20)  # issued | superseded
    superseded_by_id: str | None = Field(default=None, max_length=36)
