"""accounts consumes the archive items the other services file (``<service>.archive_items.filed.v1``) into the
dossiers; the consumer's inbox row, written in the same transaction, makes a redelivered event file nothing twice
(and ``filing.file_lines`` skips an act already in its dossier)."""

from sqlmodel import Session

from services.accounts.archives.filing import file_lines
from services.contracts.benefits import BenefitsArchiveItemsFiled
from services.contracts.collection import CollectionArchiveItemsFiled
from services.contracts.oversight import OversightArchiveItemsFiled
from services.kernel.events import EventEnvelope
from services.kernel.mirror import typed_payload
from services.kernel.service_app import ConsumerSpec


def _handler(payload_type: type) -> object:
    def on_items_filed(session: Session, envelope: EventEnvelope) -> None:
        payload = typed_payload(envelope, payload_type)
        file_lines(session, [item.model_dump() for item in payload.items], event_id=envelope.id)

    return on_items_filed


def _consumer(stream: str, payload_type: type) -> ConsumerSpec:
    # Only the archive family of the stream is delivered for this package; the stream's other families are the
    # business of accounts' other consumers (or of nobody in accounts).
    family = payload_type.event_type.rsplit(".", 2)[0] + ".>"
    return ConsumerSpec(stream=stream, handlers={payload_type.event_type: _handler(payload_type)},
                        subjects=frozenset({family}))


ARCHIVE_CONSUMERS = [
    _consumer("COLLECTION", CollectionArchiveItemsFiled),
    _consumer("BENEFITS", BenefitsArchiveItemsFiled),
    _consumer("OVERSIGHT", OversightArchiveItemsFiled),
]
