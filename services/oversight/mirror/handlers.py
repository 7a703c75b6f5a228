"""Event handlers that keep oversight's mirror of the registry. Each runs inside the consumer's transaction."""

from datetime import UTC, datetime

from sqlmodel import Session

import services.accounts.events  # noqa: F401 - registers every accounts event type
from services.accounts.events import EmployerRegistered
from services.kernel.events import EVENT_TYPES, EventEnvelope
from services.kernel.service_app import ConsumerSpec
from services.oversight.models import MirroredEmployer


def mirror_employer_registered(session: Session, envelope: EventEnvelope) -> None:
    event = envelope.payload()
    assert isinstance(event, EmployerRegistered)
    session.merge(
        MirroredEmployer(
            employer_id=event.employer_id,
            uscc=event.uscc,
            name=event.name,
            region=event.region,
            registered_at=event.registered_at,
            source_event_id=envelope.id,
            received_at=datetime.now(UTC),
        )
    )


ACCOUNTS_CONSUMER = ConsumerSpec(
    stream="ACCOUNTS",
    handlers={EmployerRegistered.event_type: mirror_employer_registered},
    # Not mirrored yet (issue 4 work in progress): listed so that nothing is dead-lettered meanwhile.
    ignores=frozenset(t for t in EVENT_TYPES if t.startswith("accounts.") and t != EmployerRegistered.event_type),
)
