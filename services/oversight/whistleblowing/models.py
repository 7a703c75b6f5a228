"""Tables of whistleblower reports (举报, OVERSIGHT.md; 000 三(四); 001 第三十二条至第三十八条).

- ``whistleblower_report``: one report as received, by any channel. The tracking code is stored only as its SHA-256
  (``tracking_hash``): the code is shown once, to the reporter, and is the reporter's only key.
- ``whistleblower_reporter``: who reported, for a named report (several rows for a joint report, 联名举报). These rows
  are the only place the reporter's identity lives; it is never copied into events, audit entries or logs, and
  only oversight officers are shown it.
- ``whistleblower_step``: every status change, timestamped and attributed (the public tracking view shows the
  statuses and dates, never who or the internal notes).
- ``whistleblower_note``: internal investigation notes (officers only).
- ``whistleblower_alert``: a major or urgent report flagged for an officer at once (000 三(四)).
- ``whistleblower_reward``: each reward decision with its eligibility checks, granted or refused (001 第三十六条至第三十八条).
  ``award_key`` / ``main_key`` are set only on granted rewards and are unique: one granted reward per report, one
  main reward per matter (001 第三十七条: the first reporter of a fact is the main beneficiary).

A *matter* (``matter_id``) is the fact reported: at intake every report is its own matter; an officer links a later
report about the same fact to the earlier one. Money is integer fen.
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Text, UniqueConstraint, false
from sqlmodel import Field

from services.oversight.models import OversightTable


class WhistleblowerReport(OversightTable, table=True):
    __tablename__ = "whistleblower_report"
    __table_args__ = (Index("ix_whistleblower_report_status_received", "status", "received_at"),)

    id: str = Field(primary_key=True, max_length=36)  # UUIDv7: time-ordered, also the list cursor
    tracking_hash: str = Field(max_length=64, unique=True)  # SHA-256 of the normalised tracking code
    channel: str = Field(max_length=10)  # web | phone | email | letter | visit
    anonymous: bool
    reporter_count: int = 0  # named reporters (a joint report counts as one reporter, 001 第三十七条)
    subject_name: str | None = Field(default=None, max_length=200)  # 被举报主体
    subject_type: str | None = Field(default=None, max_length=20)  # employer | person | agency | institution | other
    category: str = Field(max_length=20)  # collection | payment | management | investment | other
    title: str = Field(max_length=200)
    content: str = Field(sa_column=Column(Text, nullable=False))
    region: str | None = Field(default=None, max_length=6, index=True)
    occurred_on: date | None = None
    amount_claimed_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    urgent_requested: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    flagged: bool = Field(default=False, sa_column_kwargs={"server_default": false()})  # major/urgent (000 三(四))
    flag_reasons: str | None = Field(default=None, sa_column=Column(Text))  # JSON list
    status: str = Field(max_length=20)  # received | assigned | investigating | answered | closed
    assigned_to: str | None = Field(default=None, max_length=100, index=True)
    outcome: str | None = Field(default=None, max_length=30)  # substantiated | partly_substantiated | unsubstantiated
    verified_amount_fen: int | None = Field(default=None, sa_column=Column(BigInteger))
    answer: str | None = Field(default=None, sa_column=Column(Text))  # shown to the reporter
    answered_at: datetime | None = None
    closed_reason: str | None = Field(default=None, sa_column=Column(Text))  # shown to the reporter
    closed_at: datetime | None = None
    matter_id: str = Field(max_length=36, index=True)
    received_at: datetime
    recorded_by: str = Field(max_length=100)  # "anonymous" for the public web form, else the officer
    # No IP address or other connection data is kept: it could identify an anonymous reporter.
    status_changed_at: datetime
    updated_at: datetime


class WhistleblowerReporter(OversightTable, table=True):
    __tablename__ = "whistleblower_reporter"
    __table_args__ = (UniqueConstraint("report_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: str = Field(foreign_key="whistleblower_report.id", max_length=36, index=True)
    seq: int  # 1 = the first signatory
    name: str = Field(max_length=100)
    citizen_id: str | None = Field(default=None, max_length=18, index=True)
    phone: str | None = Field(default=None, max_length=30)
    email: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=300)


class WhistleblowerStep(OversightTable, table=True):
    __tablename__ = "whistleblower_step"

    id: int | None = Field(default=None, primary_key=True)
    report_id: str = Field(foreign_key="whistleblower_report.id", max_length=36, index=True)
    at: datetime
    actor_id: str = Field(max_length=100)
    action: str = Field(max_length=30)  # received | assigned | investigating | answered | closed | flagged | linked
    from_status: str | None = Field(default=None, max_length=20)
    to_status: str = Field(max_length=20)
    note: str | None = Field(default=None, sa_column=Column(Text))  # internal


class WhistleblowerNote(OversightTable, table=True):
    __tablename__ = "whistleblower_note"

    id: int | None = Field(default=None, primary_key=True)
    report_id: str = Field(foreign_key="whistleblower_report.id", max_length=36, index=True)
    at: datetime
    author: str = Field(max_length=100)
    text: str = Field(sa_column=Column(Text, nullable=False))


class WhistleblowerAlert(OversightTable, table=True):
    __tablename__ = "whistleblower_alert"

    id: str = Field(primary_key=True, max_length=36)
    report_id: str = Field(foreign_key="whistleblower_report.id", max_length=36, index=True)
    reasons: str = Field(sa_column=Column(Text, nullable=False))  # JSON list of {code, detail}
    raised_at: datetime
    raised_by: str = Field(max_length=100)
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = Field(default=None, max_length=100)
    action_taken: str | None = Field(default=None, sa_column=Column(Text))


class WhistleblowerReward(OversightTable, table=True):
    __tablename__ = "whistleblower_reward"

    id: str = Field(primary_key=True, max_length=36)
    report_id: str = Field(foreign_key="whistleblower_report.id", max_length=36, index=True)
    matter_id: str = Field(max_length=36, index=True)
    eligible: bool
    kind: str | None = Field(default=None, max_length=20)  # main | supplementary (granted only)
    decision: str = Field(sa_column=Column(Text, nullable=False))  # JSON: checks, officer's findings, amount steps
    verified_amount_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    standard: str = Field(max_length=40)  # the reward standard applied (rewards.py)
    computed_fen: int | None = Field(default=None, sa_column=Column(BigInteger))  # before floor and cap
    amount_fen: int | None = Field(default=None, sa_column=Column(BigInteger))  # granted amount
    floor_applied: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    cap_applied: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    award_key: str | None = Field(default=None, max_length=36, unique=True)  # report id, granted only
    main_key: str | None = Field(default=None, max_length=36, unique=True)  # matter id, main reward only
    decided_at: datetime
    decided_by: str = Field(max_length=100)
    note: str | None = Field(default=None, sa_column=Column(Text))
