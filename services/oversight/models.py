"""Tables of the oversight service: its own, independent copy of what other services reported (OVERSIGHT.md).

The ``mirrored_*`` tables are built only from events (streams ACCOUNTS and EXCHANGE); oversight never reads another
service's database. Each row says which event last touched it (``source_event_id``) and when it arrived.

Order tolerance (see ``mirror/handlers.py``): an event about an entity oversight has not heard of yet creates a
*placeholder* row (``placeholder = True``) holding what that event says; the registration, when it arrives, fills
in the rest without undoing what the later event set. Field changes are ordered by the producer's ``version``;
status changes (which carry no version) by the event time, kept in ``status_changed_at``.
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint, false, text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class OversightTable(SQLModel, registry=registry()):
    pass


metadata = OversightTable.metadata


def _flag() -> bool:
    return Field(default=False, sa_column_kwargs={"server_default": false()})


class MirroredEmployer(OversightTable, table=True):
    """An employer as the accounts service announced it; oversight never reads the accounts database."""

    __tablename__ = "mirrored_employer"

    employer_id: str = Field(primary_key=True, max_length=36)
    uscc: str | None = Field(default=None, max_length=18, index=True)  # None only on a placeholder
    name: str | None = Field(default=None, max_length=200)
    region: str | None = Field(default=None, max_length=6)
    unit_type: str | None = Field(default=None, max_length=30)
    industry_risk_class: int | None = None
    status: str | None = Field(default=None, max_length=20)  # active | suspended | deregistered
    status_effective_date: date | None = None
    status_reason: str | None = Field(default=None, sa_column=Column(Text))
    status_changed_at: datetime | None = None  # time of the event that set ``status``
    registered_at: datetime | None = None
    version: int = Field(default=1, sa_column_kwargs={"server_default": text("1")})  # producer's version; 0: none
    placeholder: bool = _flag()
    import_job_id: str | None = Field(default=None, max_length=36)
    source_event_id: str = Field(max_length=36)
    received_at: datetime
    updated_at: datetime | None = None


class MirroredPerson(OversightTable, table=True):
    """An insured person: identity, region and life status (from accounts; life status from its exchange feed)."""

    __tablename__ = "mirrored_person"

    person_id: str = Field(primary_key=True, max_length=36)
    citizen_id: str | None = Field(default=None, max_length=18, index=True)
    name: str | None = Field(default=None, max_length=100)
    sex: str | None = Field(default=None, max_length=1)
    birth_date: date | None = None
    region: str | None = Field(default=None, max_length=6, index=True)
    household_type: str | None = Field(default=None, max_length=10)
    life_status: str | None = Field(default=None, max_length=20)  # alive | deceased | imprisoned
    death_date: date | None = None
    imprisoned_from: date | None = None
    imprisoned_until: date | None = None
    life_status_source: str | None = Field(default=None, max_length=30)  # exchange | correction
    life_status_source_ref: str | None = Field(default=None, max_length=100)
    life_status_changed_at: datetime | None = None  # time of the event that set the life status
    registered_at: datetime | None = None
    version: int = 0
    placeholder: bool = _flag()
    import_job_id: str | None = Field(default=None, max_length=36)
    source_event_id: str = Field(max_length=36)
    received_at: datetime
    updated_at: datetime | None = None


class MirroredBankAccount(OversightTable, table=True):
    """Where a person's benefits may be paid (S07: accounts not in the beneficiary's name, shared accounts)."""

    __tablename__ = "mirrored_bank_account"

    bank_account_id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(max_length=36, index=True)
    kind: str | None = Field(default=None, max_length=20)  # bank_account | ss_card
    bank_name: str | None = Field(default=None, max_length=100)
    account_no: str | None = Field(default=None, max_length=19, index=True)
    holder_name: str | None = Field(default=None, max_length=100)
    status: str = Field(max_length=20)  # active | closed
    closed_reason: str | None = Field(default=None, sa_column=Column(Text))
    status_changed_at: datetime | None = None
    placeholder: bool = _flag()
    source_event_id: str = Field(max_length=36)
    received_at: datetime
    updated_at: datetime | None = None


class MirroredEnrolment(OversightTable, table=True):
    """参保登记 as reported: person × fund × employer, periods and status (transfers link both ends)."""

    __tablename__ = "mirrored_enrolment"
    __table_args__ = (Index("ix_mirrored_enrolment_person_fund", "person_id", "fund"),)

    enrolment_id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(max_length=36)
    fund: str = Field(max_length=10)
    employer_id: str | None = Field(default=None, max_length=36, index=True)
    start_period: int | None = None  # YYYYMM
    end_period: int | None = None
    status: str | None = Field(default=None, max_length=20)  # active | suspended | stopped
    status_reason: str | None = Field(default=None, sa_column=Column(Text))
    status_changed_at: datetime | None = None
    transferred_from: str | None = Field(default=None, max_length=36)
    transferred_to: str | None = Field(default=None, max_length=36)
    placeholder: bool = _flag()
    import_job_id: str | None = Field(default=None, max_length=36)
    source_event_id: str = Field(max_length=36)
    received_at: datetime
    updated_at: datetime | None = None


class MirroredAccountEntry(OversightTable, table=True):
    """One individual-account posting (AGENCY side of the personal accounts). Signed fen: credits +, debits −."""

    __tablename__ = "mirrored_account_entry"
    # No index but the entry id: nothing reads entries by person, year or idempotency key (the entry id makes a
    # posting count once; the person × year totals are ``mirrored_account_year``), and each index costs every posting.

    entry_id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(max_length=36)
    entry_type: str = Field(max_length=20)  # contribution | interest | transfer_in | transfer_out | withdrawal
    amount_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    balance_fen: int = Field(sa_column=Column(BigInteger, nullable=False))  # balance after this posting
    year: int
    period: int | None = None
    idempotency_key: str = Field(max_length=200)
    posted_at: datetime  # event time
    source_event_id: str = Field(max_length=36)
    received_at: datetime


class MirroredAccountYear(OversightTable, table=True):
    """Totals of one person's individual account for one year, maintained as postings arrive (each counted once)."""

    __tablename__ = "mirrored_account_year"
    __table_args__ = (UniqueConstraint("person_id", "year"),)

    id: str = Field(primary_key=True, max_length=48)  # "<person_id>:<year>", also the cursor
    person_id: str = Field(max_length=36)  # a person's cells: the (person_id, year) constraint's index
    year: int
    credited_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    debited_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    entries: int = 0
    balance_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    balance_at: datetime | None = None  # time of the posting whose balance is shown
    updated_at: datetime


class MirroredLifeEvent(OversightTable, table=True):
    """A death, cremation, imprisonment or release reported by a partner department (S01, S02)."""

    __tablename__ = "mirrored_life_event"
    __table_args__ = (UniqueConstraint("kind", "person_id", "source", "record_id"),)

    id: str = Field(primary_key=True, max_length=36)  # the first event's id (time-ordered: also the cursor)
    kind: str = Field(max_length=20)  # died | cremated | imprisoned | released
    person_id: str = Field(max_length=36, index=True)
    citizen_id: str = Field(max_length=18, index=True)
    event_date: date
    until_date: date | None = None
    source: str = Field(max_length=64)  # partner client id
    record_id: str = Field(max_length=100)
    source_event_id: str = Field(max_length=36)
    received_at: datetime


class MirroredBusinessRegistration(OversightTable, table=True):
    """A business market regulation registered (S11: not registered for social insurance within 30 days)."""

    __tablename__ = "mirrored_business_registration"
    __table_args__ = (UniqueConstraint("uscc", "source", "record_id"),)

    id: str = Field(primary_key=True, max_length=36)
    uscc: str = Field(max_length=18, index=True)
    name: str = Field(max_length=200)
    registered_on: date = Field(index=True)
    employer_id: str | None = Field(default=None, max_length=36)  # as accounts knew it when it sent the event
    source: str = Field(max_length=64)
    record_id: str = Field(max_length=100)
    source_event_id: str = Field(max_length=36)
    received_at: datetime
    updated_at: datetime | None = None


class MirroredDuplicateEnrolment(OversightTable, table=True):
    """Overlapping pension schemes accounts found in imported history (S03, 000 三(九))."""

    __tablename__ = "mirrored_duplicate_enrolment"
    __table_args__ = (UniqueConstraint("person_id", "funds", "overlap_from"),)

    id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(max_length=36, index=True)
    citizen_id: str = Field(max_length=18)
    funds: str = Field(max_length=100)  # sorted, comma-separated: "PEN_EMP,PEN_RES"
    overlap_from: int
    overlap_to: int | None = None
    import_job_id: str | None = Field(default=None, max_length=36)
    source_event_id: str = Field(max_length=36)
    received_at: datetime


class MirroredAgencyLine(OversightTable, table=True):
    """A collected payment line as the agency reported it: posted (到账确认/记账, the AGENCY leg of the three-way
    reconciliation) or held in suspense (unknown person, no enrolment). Keyed by the payment line; a posting
    supersedes a hold, never the other way round."""

    __tablename__ = "mirrored_agency_line"
    # No (fund, period) index: a month is one period and a few funds, so it narrows nothing (the page by payment id
    # scans the primary key's order instead), and each index costs every line.
    __table_args__ = (Index("ix_mirrored_agency_line_employer", "employer_id", "fund", "period"),)

    payment_id: str = Field(primary_key=True, max_length=36)
    status: str = Field(max_length=10)  # posted | held
    person_id: str | None = Field(default=None, max_length=36, index=True)
    citizen_id: str | None = Field(default=None, max_length=18)
    employer_id: str | None = Field(default=None, max_length=36)
    fund: str = Field(max_length=10)
    period: int
    employer_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    individual_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    credited_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    held_fen: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    entry_id: str | None = Field(default=None, max_length=36)
    reason_code: str | None = Field(default=None, max_length=50)
    reason: str | None = Field(default=None, sa_column=Column(Text))
    source_batch_id: str = Field(max_length=36)
    source_event_id: str = Field(max_length=36)
    received_at: datetime
    updated_at: datetime | None = None
