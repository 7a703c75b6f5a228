"""The accounts service's consumer of stream COLLECTION: it posts what the tax bureau collected (AGENCY leg) and
deliberately ignores every other collection fact (rates, assessments, arrears, treasury and bank movements are
collection's and oversight's business, not the registry's)."""

from sqlmodel import Session

from services.accounts.posting import service
from services.contracts.collection import (
    ArrearsNoticeIssued,
    AssessmentIssued,
    AssessmentIssuedV1,
    AssessmentSuperseded,
    BankAccountRegistered,
    BankTransactionRecorded,
    ParametersApproved,
    PaymentsCollected,
    PaymentsRejected,
    TreasuryRemitted,
)
from services.kernel.events import EventEnvelope
from services.kernel.service_app import ConsumerSpec


def on_payments_collected(session: Session, envelope: EventEnvelope) -> None:
    # Read only: the lines as msgspec structs (``payload_view``), not a model per line.
    service.post_collected(session, envelope.payload_view(PaymentsCollected), event_id=envelope.id)


# Listed one by one: a new collection type fails tests/test_event_catalogue.py until someone decides about it.
IGNORED = frozenset(t.event_type for t in (
    ParametersApproved, AssessmentIssued, AssessmentIssuedV1, AssessmentSuperseded, PaymentsRejected,
    ArrearsNoticeIssued, TreasuryRemitted, BankTransactionRecorded, BankAccountRegistered,
))

# The server delivers the payments family only: the assessments (a line each, as many as the payments) and the
# other ignored families never reach accounts.
SUBJECTS = frozenset({"collection.payments.>"})

POSTING_CONSUMER = ConsumerSpec(
    stream="COLLECTION",
    handlers=dict.fromkeys(PaymentsCollected.versions(), on_payments_collected),
    ignores=IGNORED,
    subjects=SUBJECTS,
)
