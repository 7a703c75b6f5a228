"""Events the benefits service publishes (stream BENEFITS). Payment events carry at most 1 000 lines (``part`` of
``parts``). Amounts are integer fen; periods YYYYMM."""

from datetime import date

from pydantic import Field, model_validator

from services.contracts.codes import ClaimStatus, Fund, PaymentResult
from services.contracts.archives import ArchiveItemsFiled
from services.kernel.events import ContractModel, EventPayload

MAX_LINES = 1000


class ClaimSubmitted(EventPayload, event_type="benefits.claim.submitted.v1"):
    claim_id: str
    person_id: str
    kind: str
    fund: Fund
    importance: str
    status: ClaimStatus  # in_review | blocked
    blocked_reason: str | None
    effective_period: int
    monthly_amount_fen: int | None
    one_off_amount_fen: int | None
    large_amount: bool
    age_at_effective: int | None  # S08 early retirement
    back_payment_months: int | None  # S09 one-off back payment


class ClaimDecided(EventPayload, event_type="benefits.claim.decided.v1"):
    """One level's decision; oversight checks S18 (one person at two levels) and S06 (large amount reviewed)."""

    claim_id: str
    person_id: str
    level: str
    decision: str
    decided_by: str
    role: str
    claim_status: ClaimStatus  # in_review | approved | rejected


class EntitlementGranted(EventPayload, event_type="benefits.entitlement.granted.v1"):
    entitlement_id: str
    claim_id: str
    person_id: str
    kind: str
    fund: Fund
    monthly_amount_fen: int
    start_period: int
    end_period: int | None
    levels: list[str]  # the review levels passed, in order
    large_amount_reviewed: bool


class EntitlementSuspended(EventPayload, event_type="benefits.entitlement.suspended.v1"):
    entitlement_id: str
    person_id: str
    reason: str  # deceased | imprisoned | survival_overdue | manual
    since: date | None


class EntitlementResumed(EventPayload, event_type="benefits.entitlement.resumed.v1"):
    entitlement_id: str
    person_id: str
    reason: str


class EntitlementEnded(EventPayload, event_type="benefits.entitlement.ended.v1"):
    entitlement_id: str
    person_id: str
    end_period: int
    reason: str


class PayrollApproved(EventPayload, event_type="benefits.payroll.approved.v1"):
    """The approved payroll of a fund and month: R5's first figure."""

    run_id: str
    fund: str  # a run's fund as the clerk entered it: a code pattern (payroll FUND_PATTERN), not the catalogue
    period: int
    lines: int
    total_fen: int
    approved_by: str


class FundingRequested(EventPayload, event_type="benefits.funding.requested.v1"):
    """Asks finance to allocate the payroll total from the special account to the expenditure account."""

    run_id: str
    fund: str  # as the run's
    period: int
    amount_fen: int


class IssuedPayment(ContractModel):
    payroll_line_id: str
    person_id: str
    bank_account_id: str
    account_no: str
    holder_name: str
    amount_fen: int
    period: int


class PaymentsIssued(EventPayload, event_type="benefits.payments.issued.v1"):
    """A bank file sent: S07 checks account holders and accounts shared by unrelated persons."""

    file_id: str
    run_id: str
    fund: str  # as the run's
    period: int
    sequence: int
    part: int
    parts: int
    file_total_fen: int
    lines: list[IssuedPayment] = Field(max_length=MAX_LINES)


class HeldBackLine(ContractModel):
    payroll_line_id: str
    person_id: str
    amount_fen: int  # the approved amount: never sent to the bank, it stays in the expenditure account
    reason: str  # HELD_SUSPENDED | HELD_ENDED | HELD_NO_ENTITLEMENT | HELD_DECEASED | HELD_IMPRISONED


class OffsetLine(ContractModel):
    payroll_line_id: str
    person_id: str
    amount_fen: int  # the approved amount
    offset_fen: int  # recovered by deduction (001 第二十九条(五)); the bank file pays amount_fen − offset_fen
    fully_offset: bool  # nothing left to pay: the line is paid without a bank line


class PayrollLinesRetained(EventPayload, event_type="benefits.payroll.retained.v1"):
    """What the first bank file of an approved run does not pay out of the approved total (payroll/service.py
    ``issue_bank_file``): lines *held back* since approval (entitlement suspended or ended, person now recorded dead
    or imprisoned: 001 第二十七条) and recovery *offsets* deducted from lines (partly: the file pays the net; fully:
    no bank line). Recorded once per run, in the transaction that makes the first file (``file_id``), or that finds
    nothing left to pay (``file_id`` None); only when something was held back or offset. So for R5 (000 二(四)1,
    002 (一) 账账、账款相符): approved = bank-confirmed paid + returned + held back + offset. A re-issued line is
    already net: it never carries a new offset.

    The lines come in parts (``part`` of ``parts``), ``held_back`` and ``offsets`` together at most 1 000 per part;
    the totals are the run's, the same in every part."""

    run_id: str
    fund: str  # as the run's
    period: int
    file_id: str | None
    part: int
    parts: int
    held_back_lines: int
    held_back_fen: int
    offset_lines: int
    offset_fen: int
    held_back: list[HeldBackLine] = Field(default_factory=list, max_length=MAX_LINES)
    offsets: list[OffsetLine] = Field(default_factory=list, max_length=MAX_LINES)

    @model_validator(mode="after")
    def _at_most_max_lines(self) -> "PayrollLinesRetained":
        if len(self.held_back) + len(self.offsets) > MAX_LINES:
            raise ValueError(f"at most {MAX_LINES} held-back and offset lines per part")
        return self


class SettledPayment(ContractModel):
    payroll_line_id: str
    person_id: str
    amount_fen: int
    period: int
    result: PaymentResult
    reason: str | None


class PaymentsSettled(EventPayload, event_type="benefits.payments.settled.v1"):
    """The bank's results: paid lines are R5's bank-confirmed figure, failed ones are returned to the
    expenditure account; S01/S02 check paid periods against death and imprisonment."""

    file_id: str
    run_id: str
    fund: str  # as the run's
    period: int
    part: int
    parts: int
    lines: list[SettledPayment] = Field(max_length=MAX_LINES)


class SurvivalCertified(EventPayload, event_type="benefits.survival.certified.v1"):
    person_id: str
    channel: str
    certified_on: date


class OverpaymentFound(EventPayload, event_type="benefits.overpayment.found.v1"):
    overpayment_id: str
    person_id: str
    payroll_line_id: str
    period: int
    amount_fen: int
    reason: str


class RecoveryNoticeIssued(EventPayload, event_type="benefits.recovery.notice_issued.v1"):
    notice_id: str
    person_id: str
    amount_fen: int
    deadline: date
    overpayment_ids: list[str]


class RecoveryRecorded(EventPayload, event_type="benefits.recovery.recorded.v1"):
    """A change of what a recovery notice has recovered (001 第二十九条(四)、第二十九条(五)). Normally a repayment or an
    offset recorded: ``amount_fen`` > 0. A *reversal* (``reversal`` true, ``amount_fen`` < 0: the recovered amount taken
    back) when a payroll offset's line is held back as the bank file is made, so that nothing was deducted from any
    payment (recovery/service.py ``reverse_payroll_offsets``); ``reason`` says why. So the sum of ``amount_fen`` per
    notice is what it has recovered, and ``remaining_fen`` is what it owes after this event. ``recovery_id`` names
    the recovery row (absent on events recorded before the field existed)."""

    notice_id: str
    person_id: str
    method: str
    amount_fen: int
    remaining_fen: int
    recovery_id: str | None = None
    reversal: bool = False
    reason: str | None = None


class RecoveryEscalated(EventPayload, event_type="benefits.recovery.escalated.v1"):
    """Unrecovered after the deadline: to audit (001 第二十九条(五)); oversight opens a class-5 case."""

    notice_id: str
    person_id: str
    remaining_fen: int
    deadline: date


class BenefitsArchiveItemsFiled(ArchiveItemsFiled, event_type="benefits.archive_items.filed.v1"):
    """Archive items of acts done in benefits, for the dossiers accounts keeps (services/contracts/archives.py)."""
