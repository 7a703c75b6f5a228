"""Events the collection service publishes (stream COLLECTION). Line events carry at most 1 000 lines; a larger
assessment or batch is split into parts (``part`` of ``parts``). Amounts are integer fen; rates decimal strings."""

from datetime import date

from pydantic import Field

from services.contracts.codes import Fund, MatchStatus
from services.contracts.archives import ArchiveItemsFiled
from services.kernel.events import ContractModel, EventPayload, compact_line

MAX_LINES = 1000


class ParametersApproved(EventPayload, event_type="collection.parameters.approved.v1"):
    parameters_id: str
    region: str
    valid_from: int
    document: dict


class AssessedLine(ContractModel):
    line_id: str
    person_id: str
    fund: Fund
    declared_base_fen: int | None  # None for flat (PEN_RES) lines
    base_fen: int
    clamp: str | None  # floor | cap: the base was outside the limits (S10)
    employer_fen: int
    individual_fen: int


CompactAssessedLine = compact_line(AssessedLine, "CompactAssessedLine",
                                   "An ``AssessedLine`` as an array of its values, in ``AssessedLine``'s field order "
                                   "(v2).")


class AssessmentIssued(EventPayload, event_type="collection.assessment.issued.v2"):
    """The collection plan (征缴计划) sent to the tax bureau; oversight's ASSESSED figure for R2. v2: the lines as
    arrays (``CompactAssessedLine``); v1 (``AssessmentIssuedV1``, lines as objects) is read the same way."""

    assessment_id: str
    employer_id: str | None
    period: int
    due_date: date
    supersedes_id: str | None
    part: int
    parts: int
    employer_total_fen: int  # of the whole assessment
    individual_total_fen: int
    lines: list[CompactAssessedLine] = Field(max_length=MAX_LINES)


class AssessmentIssuedV1(AssessmentIssued, event_type="collection.assessment.issued.v1"):
    """The collection plan with its lines as objects: published before v2, still read (streams, replays)."""

    lines: list[AssessedLine] = Field(max_length=MAX_LINES)


class AssessmentSuperseded(EventPayload, event_type="collection.assessment.superseded.v1"):
    assessment_id: str
    superseded_by_id: str
    employer_id: str | None
    period: int
    reason: str


class CollectedLine(ContractModel):
    payment_id: str
    tax_line_id: str
    payer_uscc: str | None
    employer_id: str | None
    person_id: str | None
    citizen_id: str | None
    fund: str  # as the tax bureau reported it: a region's parameters may add funds to the catalogue
    period: int
    employer_fen: int
    individual_fen: int
    late_fee_fen: int
    method: str
    voucher_no: str
    paid_date: date
    assessment_line_id: str | None
    match_status: MatchStatus


CompactCollectedLine = compact_line(CollectedLine, "CompactCollectedLine",
                                    "A ``CollectedLine`` as an array of its values, in ``CollectedLine``'s field order "
                                    "(v2).")


class PaymentsCollected(EventPayload, event_type="collection.payments.collected.v2"):
    """The TAX leg: what the tax bureau reports collected. Accounts posts it (AGENCY leg). v2: the lines as arrays
    (``CompactCollectedLine``); v1 (``PaymentsCollectedV1``, lines as objects) is read the same way."""

    batch_id: str
    part: int
    parts: int
    lines: list[CompactCollectedLine] = Field(max_length=MAX_LINES)


class PaymentsCollectedV1(PaymentsCollected, event_type="collection.payments.collected.v1"):
    """What the tax bureau reports collected, with its lines as objects: published before v2, still read."""

    lines: list[CollectedLine] = Field(max_length=MAX_LINES)


class RejectedLine(ContractModel):
    tax_line_id: str | None
    line_no: int
    code: str
    message: str
    method: str | None = None
    payer_uscc: str | None = None
    fund: str | None = None
    period: int | None = None
    amount_fen: int | None = None


class PaymentsRejected(EventPayload, event_type="collection.payments.rejected.v1"):
    """Lines refused at intake; a refused payment method (cash …, 002 四) is suspicion S17 for oversight."""

    batch_id: str
    lines: list[RejectedLine] = Field(max_length=MAX_LINES)


class ArrearsNoticeIssued(EventPayload, event_type="collection.arrears.notice_issued.v1"):
    notice_id: str
    employer_id: str
    as_of: date
    principal_fen: int
    late_fee_fen: int
    lines: int


class TreasuryRemitted(EventPayload, event_type="collection.treasury.remitted.v1"):
    """Tax → treasury, as finance records it; R3 starts the 10-working-day clock here (000 二(二))."""

    remittance_id: str
    fund: Fund
    period: int
    amount_fen: int
    remitted_on: date
    voucher_no: str


class BankTransactionRecorded(EventPayload, event_type="collection.bank_transaction.recorded.v1"):
    """Any movement on a fund bank account. A receipt of a remittance into the special account is the FINANCE leg
    (R1) and closes R3; allocations special → expenditure feed R5; ``violation`` is set when flagged (S13/S14/S16)."""

    transaction_id: str
    account_id: str
    account_kind: str  # special | income | expenditure
    fund: Fund
    direction: str  # in | out
    amount_fen: int
    counterparty: str
    counterparty_fund: Fund | None
    purpose: str
    remittance_id: str | None
    period: int | None  # the contribution period a receipt belongs to, when known
    value_date: date
    source: str
    status: str  # accepted | flagged
    violation: str | None
    # For a receipt of a remittance: the 10th Chinese working day after it (000 二(二)) and whether the receipt is
    # later; None when not a receipt or when the calendar does not reach the deadline yet.
    deadline: date | None = None
    late: bool | None = None


class BankAccountRegistered(EventPayload, event_type="collection.bank_account.registered.v1"):
    account_id: str
    kind: str
    fund: Fund
    bank_name: str
    opened_on: date
    annual_inspection_due: date


class CollectionArchiveItemsFiled(ArchiveItemsFiled, event_type="collection.archive_items.filed.v1"):
    """Archive items of acts done in collection, for the dossiers accounts keeps (services/contracts/archives.py)."""
