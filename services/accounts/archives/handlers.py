"""accounts consumes the archive items the other services file (``<service>.archive_items.filed.v1``) into the
dossiers; the consumer's inbox row, written in the same transaction, makes a redelivered event file nothing twice
(and ``filing.file_lines`` skips an act already in its dossier)."""

from sqlmodel import Session

from services.accounts.archives.filing import file_lines
from services.contracts.benefits import BenefitsArchiveItemsFiled
from services.contracts.collection import CollectionArchiveItemsFiled
from services.contracts.oversight import OversightArchiveItemsFiled
from services.kernel.events import EVENT_TYPES, EventEnvelope, stream_for
from services.kernel.mirror import typed_payload
from services.kernel.service_app import ConsumerSpec


def _handler(payload_type: type) -> object:
    def on_items_filed(session: Session, envelope: EventEnvelope) -> None:
        payload = typed_payload(envelope, payload_type)
        file_lines(session, [item.model_dump() for item in payload.items], event_id=envelope.id)

    return on_items_filed


def _consumer(stream: str, payload_type: type) -> ConsumerSpec:
    # Only the archive family of the stream is delivered for this package (the subject filter): every other type
    # of the stream is, by design, not the archive's business, whatever types the producer adds later. A type
    # another accounts package handles is taken off the ignored ones when the specs merge.
    family = payload_type.event_type.rsplit(".", 2)[0] + ".>"
    others = frozenset(t for t in EVENT_TYPES if stream_for(t) == stream) - {payload_type.event_type}
    return ConsumerSpec(stream=stream, handlers={payload_type.event_type: _handler(payload_type)},
                        ignores=others, subjects=frozenset({family}))


ARCHIVE_CONSUMERS = [
    _consumer("COLLECTION", CollectionArchiveItemsFiled),
    _consumer("BENEFITS", BenefitsArchiveItemsFiled),
    _consumer("OVERSIGHT", OversightArchiveItemsFiled),
]
