"""The archive items (归档件) a service files into the dossiers accounts keeps (services/kernel/archives.py): one
line per act and dossier, at most 1 000 to an event. Each producing service has its own type of the same shape
(``<service>.archive_items.filed.v1``, in its contract module), on its own stream."""

from pydantic import Field

from services.kernel.events import ContractModel, EventPayload

MAX_ITEMS = 1000


class ArchiveItemLine(ContractModel):
    source: str  # the service that did the act
    subject_type: str  # person | employer
    subject_id: str
    item_type: str
    act_id: str
    title: str
    decision: str
    decided_by: str
    decided_role: str | None = None
    level: str | None = None
    references: dict[str, str] = Field(default_factory=dict)
    audit_seq: int | None = None  # the act's entry in the producer's audit chain
    audit_hash: str | None = None
    occurred_at: str
    registration_number: str | None = None  # the subject's citizen id or USCC, where the filer has it
    subject_name: str | None = None
    region: str | None = None


class ArchiveItemsFiled(EventPayload):
    """Base of the ``*.archive_items.filed.v1`` types."""

    items: list[ArchiveItemLine] = Field(min_length=1, max_length=MAX_ITEMS)
