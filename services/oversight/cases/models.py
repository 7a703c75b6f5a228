"""Tables of the case workflow (OVERSIGHT.md, Case workflow; 001 第十二条、第十三条、第二十九条、第三十条).

- ``oversight_case``: one per (rule, fact) — a rule firing twice on the same fact finds the same case.
- ``case_occurrence``: each time the fact was reported (a changed report gets a row; a repeat only counts).
- ``case_history``: every step, timestamped and attributed (the kernel audit chain holds the same steps, hashed).
- ``case_follow_up``: what the class requires (data corrected, referral, …); the benefits kinds only from events.
- ``rectification_entry`` / ``rectification_evidence``: the rectification ledger (整改台账) and what units submit.
- ``benefit_signal``: benefits' suspensions, resumptions and recovery notices as they arrive, per person, so a
  class-4 case classified later still finds the events that confirm it.
- ``dishonesty_entry``: the dishonesty list (严重失信人名单), one active entry per subject.
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field

from services.oversight.models import OversightTable


class Case(OversightTable, table=True):
    __tablename__ = "oversight_case"
    __table_args__ = (
        UniqueConstraint("rule_id", "fact_key", name="uq_oversight_case_rule_fact"),
        Index("ix_oversight_case_status_deadline", "status", "current_deadline"),
    )

    id: str = Field(primary_key=True, max_length=36)  # UUIDv7: time-ordered, also the list cursor
    rule_id: str = Field(max_length=40, index=True)  # S01…S20, R1…R6, CHAIN, R-ESC, MANUAL
    fact_key: str = Field(max_length=300)
    severity: str = Field(max_length=10)  # low | medium | high | severe
    subject_type: str = Field(max_length=30)  # person | employer | audit_chain | fund | payment | …
    subject_id: str = Field(max_length=100)
    person_id: str | None = Field(default=None, max_length=36, index=True)
    employer_id: str | None = Field(default=None, max_length=36, index=True)
    title: str = Field(max_length=200)
    details: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON of the latest report
    seed_clause: str = Field(max_length=100)
    unit: str = Field(max_length=100, index=True)  # the responsible unit (责任单位) it is issued to
    region: str | None = Field(default=None, max_length=6, index=True)
    status: str = Field(max_length=20)
    suggested_class: int | None = None  # what the opener expects (R-ESC: 5); the officer classifies
    class_code: int | None = None  # 1–6, 001 第二十九条
    finding: str | None = Field(default=None, sa_column=Column(Text))
    amount_fen: int | None = Field(default=None, sa_column=Column(BigInteger))  # amount involved, if any
    deadline_days: int
    deadline: date  # for verification and report by the unit
    current_deadline: date  # ``deadline``, or the rectification due date once rectifying: what overdue means
    occurrences: int = 1
    first_seen_at: datetime
    last_seen_at: datetime
    opened_at: datetime
    opened_by: str = Field(max_length=100)
    status_changed_at: datetime
    classified_at: datetime | None = None
    classified_by: str | None = Field(default=None, max_length=100)
    closed_at: datetime | None = None
    closed_by: str | None = Field(default=None, max_length=100)
    verification_note: str | None = Field(default=None, sa_column=Column(Text))
    dismissal_proposed_at: datetime | None = None
    dismissal_proposed_by: str | None = Field(default=None, max_length=100)
    dismissal_reason: str | None = Field(default=None, sa_column=Column(Text))
    dismissed_at: datetime | None = None
    dismissed_by: str | None = Field(default=None, max_length=100)
    escalation_level: int = 0
    last_escalated_on: date | None = None
    updated_at: datetime


class CaseOccurrence(OversightTable, table=True):
    __tablename__ = "case_occurrence"

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="oversight_case.id", max_length=36, index=True)
    seen_at: datetime
    details: str = Field(sa_column=Column(Text, nullable=False))
    details_hash: str = Field(max_length=64)
    case_status: str = Field(max_length=20)  # the case's status when the fact was reported (closed: it recurred)
    source_ref: str | None = Field(default=None, max_length=100)  # the event that caused it, if any


class CaseHistory(OversightTable, table=True):
    __tablename__ = "case_history"

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="oversight_case.id", max_length=36, index=True)
    at: datetime
    actor_id: str = Field(max_length=100)
    actor_role: str | None = Field(default=None, max_length=50)
    action: str = Field(max_length=40)
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    detail: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON
    reason: str | None = Field(default=None, sa_column=Column(Text))


class CaseFollowUp(OversightTable, table=True):
    __tablename__ = "case_follow_up"
    __table_args__ = (UniqueConstraint("case_id", "kind", "event_id", name="uq_case_follow_up_event"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(foreign_key="oversight_case.id", max_length=36, index=True)
    kind: str = Field(max_length=40)
    source: str = Field(max_length=10)  # recorded (evidence entered) | event (benefits' event)
    reference: str | None = Field(default=None, max_length=200)  # document no., entitlement id, notice id
    event_id: str | None = Field(default=None, max_length=36)
    evidence: str = Field(sa_column=Column(Text, nullable=False))
    recorded_at: datetime
    recorded_by: str = Field(max_length=100)
    recorded_role: str | None = Field(default=None, max_length=50)
    withdrawn_at: datetime | None = None
    withdrawn_reason: str | None = Field(default=None, sa_column=Column(Text))


class RectificationEntry(OversightTable, table=True):
    """One line of the rectification ledger (整改台账, 001 第十三条): tracked until verified and closed (销号)."""

    __tablename__ = "rectification_entry"

    id: str = Field(primary_key=True, max_length=36)
    case_id: str = Field(foreign_key="oversight_case.id", max_length=36, unique=True)
    unit: str = Field(max_length=100, index=True)
    region: str | None = Field(default=None, max_length=6)
    class_code: int
    problem: str = Field(max_length=200)
    measures: str = Field(sa_column=Column(Text, nullable=False))
    responsible: str | None = Field(default=None, max_length=100)
    due_date: date
    status: str = Field(max_length=10)  # open | closed
    opened_at: datetime
    opened_by: str = Field(max_length=100)
    closed_at: datetime | None = None
    closed_by: str | None = Field(default=None, max_length=100)  # the verifying oversight officer
    verification_note: str | None = Field(default=None, sa_column=Column(Text))


class RectificationEvidence(OversightTable, table=True):
    __tablename__ = "rectification_evidence"

    id: int | None = Field(default=None, primary_key=True)
    entry_id: str = Field(foreign_key="rectification_entry.id", max_length=36, index=True)
    case_id: str = Field(max_length=36)
    note: str = Field(sa_column=Column(Text, nullable=False))
    document_ref: str | None = Field(default=None, max_length=200)
    submitted_at: datetime
    submitted_by: str = Field(max_length=100)
    submitted_role: str | None = Field(default=None, max_length=50)


class BenefitSignal(OversightTable, table=True):
    """A benefits event relevant to class-4 follow-up, kept per person (keyed by the event id)."""

    __tablename__ = "benefit_signal"

    event_id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=20)  # suspended | resumed | notice_issued
    person_id: str = Field(max_length=36, index=True)
    entitlement_id: str | None = Field(default=None, max_length=36)
    notice_id: str | None = Field(default=None, max_length=36)
    reason: str | None = Field(default=None, max_length=100)
    amount_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    at: datetime  # event time
    received_at: datetime


class DishonestyEntry(OversightTable, table=True):
    """严重失信人名单 (001 第三十条): a person or employer confirmed in a serious case."""

    __tablename__ = "dishonesty_entry"
    __table_args__ = (
        Index("uq_dishonesty_active", "subject_type", "subject_id", unique=True,
              sqlite_where=text("removed_at IS NULL"), postgresql_where=text("removed_at IS NULL")),
    )

    id: str = Field(primary_key=True, max_length=36)
    subject_type: str = Field(max_length=10)  # person | employer
    subject_id: str = Field(max_length=36)
    case_id: str = Field(foreign_key="oversight_case.id", max_length=36, index=True)
    class_code: int
    amount_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    listed_at: datetime
    listed_by: str = Field(max_length=100)
    removed_at: datetime | None = None
    removed_by: str | None = Field(default=None, max_length=100)
    removal_reason: str | None = Field(default=None, sa_column=Column(Text))
