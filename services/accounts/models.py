"""Tables of the accounts service (参保登记). They live in the accounts database only.

Money is integer fen. Periods (费款所属期) are ``YYYYMM`` integers. Every table that others may change carries a
``version`` that increases with each change; ``change_history`` keeps the before/after of every change.
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from services.contracts import codes
from services.contracts.codes import Fund


class AccountsTable(SQLModel, registry=registry()):
    pass


metadata = AccountsTable.metadata


class Employer(AccountsTable, table=True):
    """用人单位, identified by its 统一社会信用代码 (USCC)."""

    __tablename__ = "employer"

    id: str = Field(primary_key=True, max_length=36)
    uscc: str = Field(max_length=18, unique=True)
    name: str = Field(max_length=200, index=True)
    region: str = Field(max_length=6, index=True)  # 行政区划代码 of the agency district that manages it
    unit_type: str = Field(default="enterprise", max_length=30)  # enterprise | public_institution | government | individual_business
    industry_risk_class: int = Field(default=1)  # 1–8, drives the work-injury rate (DOMAIN.md, Funds)
    contact_name: str | None = Field(default=None, max_length=50)
    contact_phone: str | None = Field(default=None, max_length=30)
    address: str | None = Field(default=None, max_length=200)
    bank_name: str | None = Field(default=None, max_length=100)  # 基本存款账户
    bank_account_no: str | None = Field(default=None, max_length=40)
    status: str = Field(default="active", max_length=20)  # active | suspended | deregistered
    registered_at: datetime
    registered_by: str = Field(max_length=100)
    updated_at: datetime | None = None
    version: int = 1


class Person(AccountsTable, table=True):
    """参保人员, identified by the 公民身份号码 (also the social security number)."""

    __tablename__ = "person"

    id: str = Field(primary_key=True, max_length=36)
    citizen_id: str = Field(max_length=18, unique=True)
    name: str = Field(max_length=100, index=True)
    sex: str = Field(max_length=1)  # M | F, derived from the citizen id
    birth_date: date  # derived from the citizen id
    nationality: str = Field(default="CHN", max_length=3)
    phone: str | None = Field(default=None, max_length=30)
    address: str | None = Field(default=None, max_length=200)
    household_type: str = Field(default="urban", max_length=10)  # urban | rural
    region: str = Field(max_length=6, index=True)  # 参保地 district
    # Life status changes only through the exchange feed or an approved correction.
    life_status: str = Field(default="alive", max_length=20)  # alive | deceased | imprisoned
    death_date: date | None = None
    imprisoned_from: date | None = None
    imprisoned_until: date | None = None
    registered_at: datetime
    registered_by: str = Field(max_length=100)
    updated_at: datetime | None = None
    version: int = 1


class PersonBankAccount(AccountsTable, table=True):
    """A bank account or social security card benefits may be paid to; the holder must be the person (000 二(三))."""

    __tablename__ = "person_bank_account"
    __table_args__ = (UniqueConstraint("person_id", "account_no"),)

    id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(foreign_key="person.id", max_length=36, index=True)
    kind: str = Field(max_length=20)  # bank_account | ss_card
    bank_name: str = Field(max_length=100)
    account_no: str = Field(max_length=19, index=True)
    holder_name: str = Field(max_length=100)
    status: str = Field(default="active", max_length=20)  # active | closed
    added_at: datetime
    added_by: str = Field(max_length=100)
    closed_at: datetime | None = None


class LifeEvent(AccountsTable, table=True):
    """A fact about a person's life from a partner department, or an approved correction of one."""

    __tablename__ = "life_event"

    id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(foreign_key="person.id", max_length=36, index=True)
    kind: str = Field(max_length=20)  # died | cremated | imprisoned | released | corrected
    event_date: date
    until_date: date | None = None  # imprisonment end where known
    source: str = Field(max_length=30)  # exchange | correction
    source_ref: str = Field(max_length=100)  # exchange record id or correction id
    recorded_at: datetime


class LifeStatusCorrection(AccountsTable, table=True):
    """后台修改 of a life status needs a request and an approval by a different person (004 第24项)."""

    __tablename__ = "life_status_correction"

    id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(foreign_key="person.id", max_length=36, index=True)
    new_status: str = Field(max_length=20)
    death_date: date | None = None
    imprisoned_from: date | None = None
    imprisoned_until: date | None = None
    reason: str = Field(sa_column=Column(Text, nullable=False))
    evidence: str | None = Field(default=None, sa_column=Column(Text))
    status: str = Field(default="requested", max_length=20)  # requested | approved | rejected
    requested_at: datetime
    requested_by: str = Field(max_length=100)
    decided_at: datetime | None = None
    decided_by: str | None = Field(default=None, max_length=100)
    decision_reason: str | None = Field(default=None, sa_column=Column(Text))


# Pension schemes are mutually exclusive: a person is active in at most one of them.
PENSION_FUNDS = codes.PENSION_FUNDS
EMPLOYEE_FUNDS = (Fund.PEN_EMP, Fund.PEN_GOV, Fund.UNEMP, Fund.INJURY)  # through an employer
FUNDS = codes.FUNDS


def fund_group(fund: str) -> str:
    return "PENSION" if fund in PENSION_FUNDS else fund


class Enrolment(AccountsTable, table=True):
    """参保登记: person × fund × employer × period. Closed, never deleted."""

    __tablename__ = "enrolment"
    __table_args__ = (
        # At most one active enrolment per person and fund group (all pension schemes form one group); the
        # database enforces it too, so two concurrent enrolments cannot both pass the check.
        Index(
            "uq_enrolment_active_group", "person_id", "fund_group", unique=True,
            sqlite_where=text("status = 'active'"), postgresql_where=text("status = 'active'"),
        ),
        Index("ix_enrolment_employer_status", "employer_id", "status"),
        # Every lookup by person (one person's enrolments, a posting's enrolments of a thousand lines' persons) reads
        # its first column; the columns after it are what posting decides with, read from the index alone, without
        # a table row per enrolment (a fifth of posting's enrolment read).
        Index("ix_enrolment_person_facts", "person_id", "fund", "employer_id", "start_period", "end_period",
              "status"),
    )

    id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(foreign_key="person.id", max_length=36)
    fund: str = Field(max_length=10)
    fund_group: str = Field(max_length=10)
    employer_id: str | None = Field(default=None, foreign_key="employer.id", max_length=36)
    start_period: int  # YYYYMM, first month covered
    end_period: int | None = None  # YYYYMM, last month covered
    status: str = Field(default="active", max_length=20)  # active | suspended | stopped
    stop_reason: str | None = Field(default=None, max_length=200)
    transferred_from: str | None = Field(default=None, max_length=36)  # previous enrolment when transferred
    created_at: datetime
    created_by: str = Field(max_length=100)
    updated_at: datetime | None = None
    version: int = 1


class ContributionMonth(AccountsTable, table=True):
    """One month a person's contribution to a fund was posted: the basis of "contribution months to date"."""

    __tablename__ = "contribution_month"
    # The unique index serves every lookup by person (its first column): no second index on person_id to keep up.
    __table_args__ = (UniqueConstraint("person_id", "fund", "period"),)

    id: int | None = Field(default=None, primary_key=True)
    person_id: str = Field(foreign_key="person.id", max_length=36)
    fund: str = Field(max_length=10)
    period: int
    employer_id: str | None = Field(default=None, max_length=36)
    source: str = Field(max_length=30)  # posting | import
    recorded_at: datetime


class InterestRate(AccountsTable, table=True):
    """Yearly interest rate of pension individual accounts (记账利率), as announced; a decimal string."""

    __tablename__ = "interest_rate"

    year: int = Field(primary_key=True)
    rate: str = Field(max_length=20)  # e.g. "0.0262"; Decimal in code, never float
    set_at: datetime
    set_by: str = Field(max_length=100)


class IndividualAccount(AccountsTable, table=True):
    """个人账户: the balance is a cache of the sum of its entries, updated in the same transaction."""

    __tablename__ = "individual_account"

    person_id: str = Field(primary_key=True, foreign_key="person.id", max_length=36)
    balance_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    status: str = Field(default="open", max_length=20)  # open | closed (settled on death or transfer out)
    opened_at: datetime
    updated_at: datetime | None = None
    version: int = 1


class AccountEntry(AccountsTable, table=True):
    """One ledger line. Amount is signed fen; ``idempotency_key`` makes every money movement happen once."""

    __tablename__ = "account_entry"
    __table_args__ = (Index("ix_account_entry_person_year", "person_id", "year"),)

    id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(foreign_key="individual_account.person_id", max_length=36)
    entry_type: str = Field(max_length=20)  # contribution | interest | transfer_in | transfer_out | withdrawal
    amount_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    year: int
    period: int | None = None  # YYYYMM for contributions
    idempotency_key: str = Field(max_length=200, unique=True)
    reference: str | None = Field(default=None, max_length=200)  # payment line, transfer document, …
    reason: str | None = Field(default=None, sa_column=Column(Text))
    posted_at: datetime
    posted_by: str = Field(max_length=100)


class ChangeHistory(AccountsTable, table=True):
    """Before/after of every change to an employer, person, enrolment or bank account."""

    __tablename__ = "change_history"
    __table_args__ = (Index("ix_change_history_entity", "entity_type", "entity_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    entity_type: str = Field(max_length=30)
    entity_id: str = Field(max_length=36)
    version: int
    action: str = Field(max_length=50)
    changes: str = Field(sa_column=Column(Text, nullable=False))  # JSON {field: [before, after]}
    reason: str | None = Field(default=None, sa_column=Column(Text))
    changed_at: datetime
    changed_by: str = Field(max_length=100)
    request_id: str | None = Field(default=None, max_length=64)


class ExchangeBatch(AccountsTable, table=True):
    """A batch a partner department uploaded; re-uploading the same (source, batch_key) changes nothing."""

    __tablename__ = "exchange_batch"
    __table_args__ = (UniqueConstraint("source", "batch_key"),)

    id: str = Field(primary_key=True, max_length=36)
    source: str = Field(max_length=64)  # the partner client id
    batch_key: str = Field(max_length=100)  # the partner's own batch number
    kind: str = Field(max_length=30)  # death | cremation | imprisonment | release | business_registration
    content_hash: str = Field(max_length=64)
    received_at: datetime
    received_by: str = Field(max_length=100)
    total: int = 0
    matched: int = 0
    unmatched: int = 0
    conflicts: int = 0


class ExchangeRecord(AccountsTable, table=True):
    """One line of a batch. Unmatched and conflicting lines wait for review; none is dropped."""

    __tablename__ = "exchange_record"
    __table_args__ = (UniqueConstraint("batch_id", "line_no"), Index("ix_exchange_record_status", "status"))

    id: str = Field(primary_key=True, max_length=36)
    batch_id: str = Field(foreign_key="exchange_batch.id", max_length=36)
    line_no: int
    citizen_id: str | None = Field(default=None, max_length=18, index=True)
    uscc: str | None = Field(default=None, max_length=18, index=True)
    name: str | None = Field(default=None, max_length=200)
    event_date: date | None = None
    until_date: date | None = None
    payload: str = Field(sa_column=Column(Text, nullable=False))  # the line as received, JSON
    status: str = Field(max_length=20)  # applied | unmatched | conflict | invalid | resolved | dismissed
    reason: str | None = Field(default=None, sa_column=Column(Text))
    person_id: str | None = Field(default=None, max_length=36)
    employer_id: str | None = Field(default=None, max_length=36)
    reviewed_at: datetime | None = None
    reviewed_by: str | None = Field(default=None, max_length=100)
    review_note: str | None = Field(default=None, sa_column=Column(Text))


class ImportJob(AccountsTable, table=True):
    """A bulk import of employers, persons or enrolments from CSV or Excel (legacy migration)."""

    __tablename__ = "import_job"

    id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=20)  # employers | persons | enrolments
    filename: str = Field(max_length=200)
    file_format: str = Field(max_length=10)  # csv | xlsx
    encoding: str | None = Field(default=None, max_length=20)
    mode: str = Field(max_length=20)  # all_or_nothing | per_row
    status: str = Field(max_length=20)  # completed | rejected
    total_rows: int = 0
    accepted_rows: int = 0
    rejected_rows: int = 0
    created_at: datetime
    created_by: str = Field(max_length=100)
    finished_at: datetime | None = None


class ImportRejection(AccountsTable, table=True):
    __tablename__ = "import_rejection"
    __table_args__ = (Index("ix_import_rejection_job", "job_id", "row_no"),)

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="import_job.id", max_length=36)
    row_no: int
    code: str = Field(max_length=50)
    message: str = Field(sa_column=Column(Text, nullable=False))
    raw: str | None = Field(default=None, sa_column=Column(Text))


class PostingSuspense(AccountsTable, table=True):
    """暂挂: a collected payment line the agency could not post (unknown person, no enrolment covering the month,
    person deceased before the period, …). Held with a reason, never dropped; retried after the registry was fixed
    (status ``posted``) or dismissed by a reviewer with a note. ``line`` keeps the line exactly as received."""

    __tablename__ = "posting_suspense"
    __table_args__ = (Index("ix_posting_suspense_status_reason", "status", "reason_code", "id"),)

    id: str = Field(primary_key=True, max_length=36)
    payment_id: str = Field(max_length=64, unique=True)  # collection's payment line id: held once
    batch_id: str = Field(max_length=64, index=True)  # the collection batch the line came in
    source_event_id: str = Field(max_length=36)
    citizen_id: str | None = Field(default=None, max_length=18, index=True)
    person_id: str | None = Field(default=None, max_length=36, index=True)
    employer_id: str | None = Field(default=None, max_length=36)
    fund: str = Field(max_length=10)
    period: int
    employer_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    individual_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    late_fee_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    line: str = Field(sa_column=Column(Text, nullable=False))  # the CollectedLine as received, JSON
    reason_code: str = Field(max_length=50)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="held", max_length=20)  # held | posted | dismissed
    attempts: int = 0  # retries tried after the first hold
    held_at: datetime
    last_attempt_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = Field(default=None, max_length=100)
    entry_id: str | None = Field(default=None, max_length=36)  # the account entry, when posted with a credit
    note: str | None = Field(default=None, sa_column=Column(Text))
