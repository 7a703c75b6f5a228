"""Events the accounts service publishes: stream ACCOUNTS, and EXCHANGE for facts from partner departments.

Single-entity events stay single; bulk imports publish batches of at most 1 000 items (ARCHITECTURE.md, principle 6).
Amounts are integer fen; dates are ISO dates; periods are YYYYMM integers.
"""

from datetime import date, datetime

from pydantic import Field

from services.contracts.codes import EmployerStatus, EnrolmentStatus, Fund, LifeStatus
from services.kernel.events import ContractModel, EventPayload, compact_line

MAX_BATCH_ITEMS = 1000

# -- employers -------------------------------------------------------------------------------------------------------


class EmployerRegistered(EventPayload, event_type="accounts.employer.registered.v1"):
    employer_id: str
    uscc: str
    name: str
    region: str
    registered_at: datetime
    unit_type: str = "enterprise"
    industry_risk_class: int = 1


class EmployerUpdated(EventPayload, event_type="accounts.employer.updated.v1"):
    employer_id: str
    version: int
    changes: dict[str, list] = Field(description="field → [before, after]")


class EmployerStatusChanged(EventPayload, event_type="accounts.employer.status_changed.v1"):
    employer_id: str
    uscc: str
    status: EmployerStatus
    previous_status: EmployerStatus
    effective_date: date
    reason: str


class ImportedEmployer(ContractModel):
    employer_id: str
    uscc: str
    name: str
    region: str
    unit_type: str
    industry_risk_class: int


class EmployersImported(EventPayload, event_type="accounts.employers.imported.v1"):
    import_job_id: str
    employers: list[ImportedEmployer] = Field(max_length=MAX_BATCH_ITEMS)


# -- persons ---------------------------------------------------------------------------------------------------------


class PersonRegistered(EventPayload, event_type="accounts.person.registered.v1"):
    person_id: str
    citizen_id: str
    name: str
    sex: str
    birth_date: date
    region: str
    household_type: str
    registered_at: datetime


class PersonUpdated(EventPayload, event_type="accounts.person.updated.v1"):
    person_id: str
    version: int
    changes: dict[str, list]


class ImportedPerson(ContractModel):
    person_id: str
    citizen_id: str
    name: str
    sex: str
    birth_date: date
    region: str
    household_type: str


class PersonsImported(EventPayload, event_type="accounts.persons.imported.v1"):
    import_job_id: str
    persons: list[ImportedPerson] = Field(max_length=MAX_BATCH_ITEMS)


class PersonBankAccountAdded(EventPayload, event_type="accounts.person.bank_account_added.v1"):
    person_id: str
    bank_account_id: str
    kind: str  # bank_account | ss_card
    bank_name: str
    account_no: str
    holder_name: str


class PersonBankAccountClosed(EventPayload, event_type="accounts.person.bank_account_closed.v1"):
    person_id: str
    bank_account_id: str
    reason: str


class PersonLifeStatusChanged(EventPayload, event_type="accounts.person.life_status_changed.v1"):
    """Benefits suspends payments on it at once (001 第二十七条); oversight checks payments after the dates."""

    person_id: str
    citizen_id: str
    life_status: LifeStatus
    previous_status: LifeStatus
    death_date: date | None = None
    imprisoned_from: date | None = None
    imprisoned_until: date | None = None
    source: str  # exchange | correction
    source_ref: str


# -- enrolments ------------------------------------------------------------------------------------------------------


class EnrolmentOpened(EventPayload, event_type="accounts.enrolment.enrolled.v1"):
    enrolment_id: str
    person_id: str
    fund: Fund
    employer_id: str | None
    start_period: int


class EnrolmentTransferred(EventPayload, event_type="accounts.enrolment.transferred.v1"):
    """The old enrolment closes on the period before the new one starts (the same date)."""

    person_id: str
    fund: Fund
    from_enrolment_id: str
    from_employer_id: str | None
    to_enrolment_id: str
    to_employer_id: str
    closed_period: int
    start_period: int


class EnrolmentSuspended(EventPayload, event_type="accounts.enrolment.suspended.v1"):
    enrolment_id: str
    person_id: str
    fund: Fund
    reason: str


class EnrolmentResumed(EventPayload, event_type="accounts.enrolment.resumed.v1"):
    enrolment_id: str
    person_id: str
    fund: Fund


class EnrolmentStopped(EventPayload, event_type="accounts.enrolment.stopped.v1"):
    enrolment_id: str
    person_id: str
    fund: Fund
    end_period: int
    reason: str


class ImportedEnrolment(ContractModel):
    enrolment_id: str
    person_id: str
    fund: Fund
    employer_id: str | None
    start_period: int
    end_period: int | None
    status: EnrolmentStatus


class EnrolmentsImported(EventPayload, event_type="accounts.enrolments.imported.v1"):
    import_job_id: str
    enrolments: list[ImportedEnrolment] = Field(max_length=MAX_BATCH_ITEMS)


class DuplicateEnrolmentFound(EventPayload, event_type="accounts.enrolment.duplicate_found.v1"):
    """Overlapping pension schemes found in imported history (S03, 000 三(九))."""

    person_id: str
    citizen_id: str
    funds: list[Fund]
    overlap_from: int
    overlap_to: int | None
    import_job_id: str | None = None


# -- individual accounts ---------------------------------------------------------------------------------------------


class AccountCredited(EventPayload, event_type="accounts.account.credited.v1"):
    """Money into a pension individual account: contribution, interest or transfer in."""

    person_id: str
    entry_id: str
    entry_type: str
    amount_fen: int
    balance_fen: int
    year: int
    period: int | None = None
    idempotency_key: str


class CreditedEntry(ContractModel):
    """One credit of an ``accounts.account.credited.v2`` batch: the fields of a v1 event, without the envelope."""

    person_id: str
    entry_id: str
    entry_type: str
    amount_fen: int
    balance_fen: int  # the person's balance after this entry
    year: int
    period: int | None = None
    idempotency_key: str


class AccountsCredited(EventPayload, event_type="accounts.account.credited.v2"):
    """Credits to pension individual accounts in bulk (a posting, an interest run): at most 1 000 entries per event,
    one event per chunk instead of one per person. v1 (``AccountCredited``) stays for single credits and for the
    consumers that still read it during the transition."""

    entries: list[CreditedEntry] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)


class AccountDebited(EventPayload, event_type="accounts.account.debited.v1"):
    """Money out of a pension individual account: transfer out or withdrawal (death, settlement)."""

    person_id: str
    entry_id: str
    entry_type: str
    amount_fen: int  # positive: the amount taken out
    balance_fen: int
    year: int
    idempotency_key: str


# -- inter-department data (stream EXCHANGE) -------------------------------------------------------------------------


class PersonDied(EventPayload, event_type="exchange.person.died.v1"):
    person_id: str
    citizen_id: str
    death_date: date
    source: str  # partner client id
    record_id: str


class PersonCremated(EventPayload, event_type="exchange.person.cremated.v1"):
    person_id: str
    citizen_id: str
    cremation_date: date
    source: str
    record_id: str


class PersonImprisoned(EventPayload, event_type="exchange.person.imprisoned.v1"):
    person_id: str
    citizen_id: str
    imprisoned_from: date
    imprisoned_until: date | None = None
    source: str
    record_id: str


class PersonReleased(EventPayload, event_type="exchange.person.released.v1"):
    person_id: str
    citizen_id: str
    released_on: date
    source: str
    record_id: str


class BusinessRegistered(EventPayload, event_type="exchange.business.registered.v1"):
    """A new business from market regulation; oversight flags it if not registered for social insurance in 30
    days (S11, 003 三.5). ``employer_id`` is set when it is already registered here."""

    uscc: str
    name: str
    registered_on: date
    employer_id: str | None = None
    source: str
    record_id: str


# -- agency posting (AGENCY leg) -------------------------------------------------------------------------------------


class PostedLine(ContractModel):
    payment_id: str
    person_id: str | None  # None for an employer-level line (no person to credit)
    employer_id: str | None
    fund: Fund
    period: int
    employer_fen: int
    individual_fen: int
    credited_fen: int  # the part credited to the pension individual account (0 for other funds)
    entry_id: str | None


CompactPostedLine = compact_line(PostedLine, "CompactPostedLine",
                                 "A ``PostedLine`` as an array of its values, in ``PostedLine``'s field order (v2).")


class ContributionsPosted(EventPayload, event_type="accounts.contributions.posted.v2"):
    """到账确认/记账: the agency confirms and posts collected lines; oversight's AGENCY leg. v2: the lines as arrays
    (``CompactPostedLine``); v1 (``ContributionsPostedV1``, lines as objects) is read the same way."""

    source_batch_id: str
    lines: list[CompactPostedLine] = Field(max_length=MAX_BATCH_ITEMS)


class ContributionsPostedV1(ContributionsPosted, event_type="accounts.contributions.posted.v1"):
    """Posted lines as objects: published before v2, still read (streams, oversight's replays)."""

    lines: list[PostedLine] = Field(max_length=MAX_BATCH_ITEMS)


class HeldLine(ContractModel):
    payment_id: str
    fund: str  # as collected: a fund not in the catalogue is one reason to hold a line (UNKNOWN_FUND)
    period: int
    citizen_id: str | None
    person_id: str | None
    amount_fen: int
    reason_code: str
    reason: str


class ContributionsHeld(EventPayload, event_type="accounts.contributions.held.v1"):
    """Collected lines that cannot be posted (unknown person, no enrolment): held in suspense, never dropped."""

    source_batch_id: str
    lines: list[HeldLine] = Field(max_length=MAX_BATCH_ITEMS)


# -- internal control (稽核内控) ---------------------------------------------------------------------------------------


class InternalControlNonconformity(EventPayload, event_type="accounts.internal_control.nonconformity_found.v1"):
    """An internal auditor found a sampled act not conforming (001 第十九条; 004 第6项): oversight opens a case,
    one per finding however often this is delivered."""

    finding_id: str  # the sampled item's id in accounts: the finding's identity
    sample_id: str
    period: str  # 2026-11 (monthly) | 2026-Q3 (quarterly)
    item_type: str
    risk: str  # the risk category the item was drawn under (ordinary for none)
    act_id: str
    source: str  # the service that did the act
    subject_type: str  # person | employer (the dossier)
    subject_id: str
    region: str | None = None
    decided_by: str
    reviewed_by: str
    reason: str
    found_at: datetime


class InternalControlReportSubmitted(EventPayload, event_type="accounts.internal_control.report_submitted.v1"):
    """The internal-control yearly report (001 第二十四条) submitted to oversight, as registered (number, hash)."""

    year: int
    region: str  # the area whose agency reports
    document_id: str
    document_number: str
    document_sha256: str
    submitted_by: str
    submitted_at: datetime
    samples: int
    sampled_items: int
    nonconforming: int
