"""Tables every service database carries: outbox, inbox, dead letters, the audit chain and background jobs.

They live in their own metadata (``kernel_metadata``) and their own alembic branch (``kernel``), so each
service's migrations apply them to that service's database without repeating their DDL.
"""

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class KernelTable(SQLModel, registry=registry()):
    pass


kernel_metadata = KernelTable.metadata

# A constraint's ``info`` key: the constraint exists on SQLite only, where a PostgreSQL migration dropped it (the
# schema comparison, ``kernel.migrations.compared_on``, does not expect it on PostgreSQL).
SQLITE_ONLY = "sifund_sqlite_only"


class OutboxMessage(KernelTable, table=True):
    """An event written in the business transaction, waiting for the relay to publish it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "seq"),)

    # SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
    seq: int | None = Field(default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True))
    event_id: str = Field(max_length=36, unique=True)
    event_type: str = Field(max_length=200)  # also the NATS subject
    envelope: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime
    published_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class InboxMessage(KernelTable, table=True):
    """Proof that an event was applied; written in the same transaction as its effect."""

    __tablename__ = "inbox"

    event_id: str = Field(primary_key=True, max_length=36)
    consumer: str = Field(max_length=100)
    event_type: str = Field(max_length=200)
    applied_at: datetime


class DeadLetter(KernelTable, table=True):
    """An event a consumer could not apply after its bounded retries; an operator can inspect and replay it."""

    __tablename__ = "dead_letter"

    id: int | None = Field(default=None, primary_key=True)
    consumer: str = Field(max_length=100, index=True)
    stream: str = Field(max_length=50)
    event_id: str | None = Field(default=None, max_length=36, index=True)
    event_type: str | None = Field(default=None, max_length=200)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    error: str = Field(sa_column=Column(Text, nullable=False))
    attempts: int
    failed_at: datetime
    replayed_at: datetime | None = None
    replayed_by: str | None = Field(default=None, max_length=100)


class AuditEntry(KernelTable, table=True):
    """One link of the service's hash chain: h_i = SHA-256(h_{i-1} ‖ canonical(entry_i)) (OVERSIGHT.md)."""

    __tablename__ = "audit_log"

    seq: int = Field(primary_key=True)
    at: str = Field(max_length=40)  # RFC 3339 text, so the hashed value round-trips exactly on every database
    actor_id: str = Field(max_length=100)
    actor_role: str | None = Field(default=None, max_length=50)
    action: str = Field(max_length=100)
    entity_type: str = Field(max_length=50)
    entity_id: str = Field(max_length=100)
    detail: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON
    reason: str | None = Field(default=None, sa_column=Column(Text))
    request_id: str | None = Field(default=None, max_length=64)
    prev_hash: str = Field(max_length=64, unique=True)  # a chain cannot fork
    hash: str = Field(max_length=64, unique=True)


class AuditHead(KernelTable, table=True):
    """The chain's head in a single row: appenders lock it (FOR UPDATE on PostgreSQL) so they queue up."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(max_length=64)


class Job(KernelTable, table=True):
    """Long work accepted by a request and run in the background (``services.kernel.jobs``): an import, a tax file,
    a rebuild. Progress commits with each chunk's business writes, so a job resumes exactly where it stopped."""

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_claim", "status", "lease_until"), Index("ix_job_kind_creator", "kind", "created_by"))

    id: str = Field(primary_key=True, max_length=36)  # UUIDv7: newest first is id order
    kind: str = Field(max_length=50)
    # sha256(kind, creator, file, parameters, Idempotency-Key): the same upload again is the same job.
    dedup_key: str = Field(max_length=64, unique=True)
    status: str = Field(max_length=20)  # queued | running | succeeded | failed
    created_by: str = Field(max_length=100)
    created_role: str | None = Field(default=None, max_length=50)
    created_unit: str | None = Field(default=None, max_length=200)
    created_region: str | None = Field(default=None, max_length=20)
    created_roles: str = Field(default="[]", sa_column=Column(Text, nullable=False))  # JSON list
    created_at: datetime
    request_id: str | None = Field(default=None, max_length=64)
    filename: str | None = Field(default=None, max_length=200)
    file_sha256: str | None = Field(default=None, max_length=64)
    file_bytes: int | None = None
    idempotency_key: str | None = Field(default=None, max_length=200)
    params: str = Field(default="{}", sa_column=Column(Text, nullable=False))  # JSON
    rows_total: int | None = None
    rows_done: int = 0
    rows_rejected: int = 0
    next_offset: int = 0  # where the next chunk starts (the kind's unit: data rows for a file)
    chunks_done: int = 0
    # The kind's own running totals (JSON), committed with each chunk's progress: what a resumed run needs to
    # report on the chunks before it (e.g. the payment batches a tax file became).
    state: str | None = Field(default=None, sa_column=Column(Text))
    attempts: int = 0  # how many times a runner took it (1 + resumptions)
    # When this run's first chunk began and the rows done by then: the ETA's pace is measured from there, not from
    # the file's opening (counting a city's rows takes a while) nor across a time the job lay unfinished.
    run_began_at: datetime | None = None
    run_began_rows: int | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    result: str | None = Field(default=None, sa_column=Column(Text))  # JSON, when succeeded
    error_code: str | None = Field(default=None, max_length=100)
    error: str | None = Field(default=None, sa_column=Column(Text))
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_until: datetime | None = None


class JobInputPart(KernelTable, table=True):
    """The uploaded file of a job, in parts of at most ``services.kernel.jobs.INPUT_PART_BYTES``, kept in the service's
    database until the job has finished (and after: it is the evidence of what was submitted; its SHA-256 is on the
    job). Parts, not one value: a city's file (hundreds of megabytes) is written and read back a part at a time,
    never whole in memory, and every replica of the service can resume the job from its database."""

    __tablename__ = "job_input_part"

    job_id: str = Field(primary_key=True, foreign_key="job.id", max_length=36)
    part_no: int = Field(primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
