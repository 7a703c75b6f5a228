"""The registry of issued documents, a kernel table every service database carries (branch ``kernel``)."""

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field

from services.kernel.models import KernelTable


class IssuedDocument(KernelTable, table=True):
    """One document as handed out: its number, its verification code and the SHA-256 of its exact bytes (kept, so
    the holder of the right role can print it again byte for byte). ``subject_type``/``subject_id`` name the
    business object it is about inside the issuing service; the public verification never shows them."""

    __tablename__ = "issued_document"
    __table_args__ = (
        UniqueConstraint("kind", "year", "serial", name="uq_issued_document_serial"),
        Index("ix_issued_document_subject", "subject_type", "subject_id"),
    )

    id: str = Field(primary_key=True, max_length=36)
    kind: str = Field(max_length=50)
    year: int
    serial: int
    number: str = Field(max_length=80, unique=True)
    verification_code: str = Field(max_length=20)
    sha256: str = Field(max_length=64, unique=True)
    title: str = Field(max_length=100)
    subject_type: str = Field(max_length=50)
    subject_id: str = Field(max_length=100)
    issued_at: datetime
    issued_by: str = Field(max_length=100)
    issued_role: str | None = Field(default=None, max_length=50)
    size_bytes: int
    pdf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # The workbook of a kind that files its tables as Excel (``DocumentKind.workbook``), as handed out.
    xlsx: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
