"""Fact tables of the suspicion rules (疑点规则): what the rules need to remember from events beyond the mirror and the
ledger, kept in the consumer's transaction, plus the sweep log.

=============================  ==================================  ====================================================
table                          one row per                         fed by (used by)
=============================  ==================================  ====================================================
rule_paid_period               person × fund × paid period         PaymentsSettled, paid lines (S01, S02, S03, S05)
rule_beneficiary               person                              PaymentsSettled, SurvivalCertified (S04)
rule_payee                     bank account × person               PaymentsIssued (S07 shared accounts)
rule_claim                     claim                               ClaimSubmitted, ClaimDecided (S06, S08–S10, S18)
rule_claim_decision            claim × review level                ClaimDecided (S06, S18)
rule_contribution_base         person × pension fund × period ×    AssessmentIssued, PEN_EMP/PEN_GOV lines (S10 rise)
                               employer
rule_base_clamp                clamped assessment line             AssessmentIssued lines with a clamp (S10)
rule_life_change               life-status change event            PersonLifeStatusChanged (S19)
rule_correction                life-status correction              accounts' audit chain, pulled by the sweep (S19)
rule_cursor                    named cursor                        the sweep (how far accounts' audit chain was read)
rule_sweep                     sweep run                           ``POST /rules/sweeps``
=============================  ==================================  ====================================================

Periods are ``YYYYMM``; ``*_index`` columns are the same month as a month count (``year × 12 + month − 1``) so that
"N months after" is integer arithmetic on every database; ``period_start`` is the month's first day, so that
"a period after the death month" is a plain date comparison (``period_start > death_date``). Money is integer fen.
Bank account numbers are not copied: ``account_key`` is a SHA-256 digest of the number (enough to see that two persons
are paid into one account), with the last four digits for people to read.
"""

from datetime import date, datetime

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field

from services.oversight.models import OversightTable


def _fen() -> int:
    return Field(default=0, sa_column_kwargs={"server_default": "0"}, sa_type=BigInteger)


class RulePaidPeriod(OversightTable, table=True):
    """A benefit the bank confirmed paid to a person for a period (sum of the paid lines of that fund and period)."""

    __tablename__ = "rule_paid_period"
    __table_args__ = (Index("ix_rule_paid_period_fund_period", "fund", "period"),)

    person_id: str = Field(primary_key=True, max_length=36)
    fund: str = Field(primary_key=True, max_length=10)
    period: int = Field(primary_key=True)
    period_start: date
    paid_fen: int = _fen()
    lines: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    last_line_id: str = Field(max_length=36)
    first_paid_at: datetime  # event time of the first settlement seen
    updated_at: datetime


class RuleBeneficiary(OversightTable, table=True):
    """Per person: the range of periods paid and the last survival certification (S04)."""

    __tablename__ = "rule_beneficiary"

    person_id: str = Field(primary_key=True, max_length=36)
    first_paid_period: int | None = None
    first_paid_index: int | None = None
    last_paid_period: int | None = None
    last_paid_index: int | None = None
    last_certified_on: date | None = None
    certified_index: int | None = None  # month index of last_certified_on
    updated_at: datetime


class RulePayee(OversightTable, table=True):
    """A bank account (by digest) a person was paid into (S07)."""

    __tablename__ = "rule_payee"

    account_key: str = Field(primary_key=True, max_length=64)
    person_id: str = Field(primary_key=True, max_length=36)
    account_tail: str = Field(max_length=4)
    bank_account_id: str = Field(max_length=36)
    holder_name: str = Field(max_length=100)
    first_period: int
    last_period: int
    updated_at: datetime


class RuleClaim(OversightTable, table=True):
    """A benefit claim as ``ClaimSubmitted`` reported it; ``claim_status`` follows ``ClaimDecided``."""

    __tablename__ = "rule_claim"

    claim_id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(max_length=36, index=True)
    kind: str = Field(max_length=30)
    fund: str = Field(max_length=10)
    importance: str = Field(max_length=20)
    claim_status: str = Field(max_length=20)
    large_amount: bool = False
    monthly_amount_fen: int | None = Field(default=None, sa_type=BigInteger)
    one_off_amount_fen: int | None = Field(default=None, sa_type=BigInteger)
    effective_period: int
    age_at_effective: int | None = None
    back_payment_months: int | None = None
    submitted_by: str | None = Field(default=None, max_length=100)  # the submitting clerk (event actor)
    submitted_at: datetime
    updated_at: datetime


class RuleClaimDecision(OversightTable, table=True):
    """One review level's decision on a claim (the first report of a level stays)."""

    __tablename__ = "rule_claim_decision"

    claim_id: str = Field(primary_key=True, max_length=36)
    level: str = Field(primary_key=True, max_length=30)
    person_id: str = Field(max_length=36)
    decided_by: str = Field(max_length=100)
    role: str = Field(max_length=40)
    decision: str = Field(max_length=20)
    decided_at: datetime
    event_id: str = Field(max_length=36)


class RuleContributionBase(OversightTable, table=True):
    """The assessed pension contribution base of a person for a period and employer (S10: a sharp rise before
    retirement). A later assessment of the same employer and period (a supersession) overwrites it."""

    __tablename__ = "rule_contribution_base"

    person_id: str = Field(primary_key=True, max_length=36)
    fund: str = Field(primary_key=True, max_length=10)
    period: int = Field(primary_key=True)
    employer_key: str = Field(primary_key=True, max_length=36)  # "" without an employer
    base_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    declared_base_fen: int | None = Field(default=None, sa_type=BigInteger)
    assessment_id: str = Field(max_length=36)
    updated_at: datetime


class RuleBaseClamp(OversightTable, table=True):
    """An assessed line whose declared base was outside the floor or cap (S10); removed when its assessment is
    superseded."""

    __tablename__ = "rule_base_clamp"
    __table_args__ = (Index("ix_rule_base_clamp_employer_period", "employer_key", "period"),)

    line_id: str = Field(primary_key=True, max_length=80)
    assessment_id: str = Field(max_length=36, index=True)
    employer_key: str = Field(max_length=36)
    period: int
    fund: str = Field(max_length=10)
    person_id: str = Field(max_length=36)
    clamp: str = Field(max_length=10)  # floor | cap
    declared_base_fen: int | None = Field(default=None, sa_type=BigInteger)
    base_fen: int = Field(sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime


class RuleLifeChange(OversightTable, table=True):
    """A life-status change accounts announced, with the source it cites (S19)."""

    __tablename__ = "rule_life_change"

    event_id: str = Field(primary_key=True, max_length=36)
    person_id: str = Field(max_length=36, index=True)
    life_status: str = Field(max_length=20)
    previous_status: str = Field(max_length=20)
    death_date: date | None = None
    imprisoned_from: date | None = None
    imprisoned_until: date | None = None
    source: str = Field(max_length=30)
    source_ref: str = Field(max_length=100)
    actor_id: str | None = Field(default=None, max_length=100)
    at: datetime  # event time
    received_at: datetime


class RuleCorrection(OversightTable, table=True):
    """A life-status correction (后台修改 request) as accounts' audit chain shows it: who asked, who decided."""

    __tablename__ = "rule_correction"

    correction_id: str = Field(primary_key=True, max_length=36)
    status: str = Field(max_length=20)  # requested | approved | rejected
    requested_by: str | None = Field(default=None, max_length=100)
    requested_seq: int | None = None
    decided_by: str | None = Field(default=None, max_length=100)
    decided_at: str | None = Field(default=None, max_length=40)
    decided_seq: int | None = None
    updated_at: datetime


class RuleCursor(OversightTable, table=True):
    __tablename__ = "rule_cursor"

    name: str = Field(primary_key=True, max_length=60)
    value: int = 0
    updated_at: datetime


class RuleSweep(OversightTable, table=True):
    """One run of the sweep: when, by whom, for which day, what each rule found and what inputs were available."""

    __tablename__ = "rule_sweep"

    id: str = Field(primary_key=True, max_length=36)
    as_of: date
    started_at: datetime
    finished_at: datetime | None = None
    started_by: str = Field(max_length=100)
    status: str = Field(max_length=20)  # running | done | partial
    summary: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON: per rule counts and notes


# The tables the rules keep from events alone (rebuilt from the streams: services/oversight/rebuild.py, part
# "facts"); the corrections and the cursor come from accounts' audit chain through the sweep, the log from the sweeps.
EVENT_FACT_TABLES = (RulePaidPeriod, RuleBeneficiary, RulePayee, RuleClaim, RuleClaimDecision, RuleContributionBase,
                     RuleBaseClamp, RuleLifeChange)
