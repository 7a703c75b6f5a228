"""Tables of the electronic archive (accounts database): one dossier per person and per employer, filed by
registration number, its items, every access to it (利用登记) and the exports handed out."""

from datetime import datetime

from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field

from services.accounts.models import AccountsTable


class Dossier(AccountsTable, table=True):
    """A person's or an employer's dossier (一人一档, 一户一档), filed by registration number (the citizen id of a
    person, the USCC of an employer)."""

    __tablename__ = "archive_dossier"
    __table_args__ = (UniqueConstraint("subject_type", "subject_id", name="uq_archive_dossier_subject"),)

    id: str = Field(primary_key=True, max_length=36)
    subject_type: str = Field(max_length=20)  # person | employer
    subject_id: str = Field(max_length=36)
    registration_number: str | None = Field(default=None, max_length=18, index=True)
    name: str | None = Field(default=None, max_length=200, index=True)
    region: str | None = Field(default=None, max_length=6, index=True)
    opened_at: datetime
    item_count: int = 0
    last_filed_at: datetime | None = None


class DossierItem(AccountsTable, table=True):
    """One archive item (件): a completed act, filed into one dossier. Never updated; destroyed only by an approved
    disposal, which leaves its line in the 销毁清册."""

    __tablename__ = "archive_item"
    __table_args__ = (
        UniqueConstraint("dossier_id", "source", "item_type", "act_id", name="uq_archive_item_act"),
        Index("ix_archive_item_dossier_serial", "dossier_id", "serial"),
        Index("ix_archive_item_expiry", "expires_after_year"),
    )

    id: str = Field(primary_key=True, max_length=36)
    dossier_id: str = Field(foreign_key="archive_dossier.id", max_length=36)
    serial: int  # 件号 within the dossier, in filing order
    year: int  # the year the act was done (China time): the archive year
    source: str = Field(max_length=20)
    item_type: str = Field(max_length=40)
    act_id: str = Field(max_length=100)
    title: str = Field(max_length=200)
    decision: str = Field(sa_column=Column(Text, nullable=False))
    decided_by: str = Field(max_length=100)
    decided_role: str | None = Field(default=None, max_length=50)
    level: str | None = Field(default=None, max_length=20)
    references: str = Field(sa_column=Column(Text, nullable=False))  # canonical JSON
    audit_seq: int | None = None
    audit_hash: str | None = Field(default=None, max_length=64)
    retention_class: str = Field(max_length=20)
    retention_years: int | None = None
    expires_after_year: int | None = None  # last year of the term; None: permanent
    occurred_at: datetime
    filed_at: datetime
    source_event_id: str | None = Field(default=None, max_length=36)
    # Filed after its year was sealed (a late act, a redelivered event): kept as a supplement (补充归档), outside
    # the sealed manifest of its dossier-year.
    supplement: bool = False


class DossierAccess(AccountsTable, table=True):
    """利用登记: who read or exported a dossier, when, what and why."""

    __tablename__ = "archive_access"

    id: int | None = Field(default=None, primary_key=True)
    dossier_id: str = Field(foreign_key="archive_dossier.id", max_length=36, index=True)
    accessed_at: datetime
    actor_id: str = Field(max_length=100)
    actor_role: str | None = Field(default=None, max_length=50)
    action: str = Field(max_length=20)  # read | export
    purpose: str = Field(sa_column=Column(Text, nullable=False))
    request_id: str | None = Field(default=None, max_length=64)


class DossierExport(AccountsTable, table=True):
    """A package handed out: the SHA-256 of its manifest, so a presented package is checked against what left."""

    __tablename__ = "archive_export"

    id: str = Field(primary_key=True, max_length=36)
    dossier_id: str = Field(foreign_key="archive_dossier.id", max_length=36, index=True)
    manifest_sha256: str = Field(max_length=64, unique=True)
    package_sha256: str = Field(max_length=64)
    item_count: int
    exported_at: datetime
    exported_by: str = Field(max_length=100)


class DossierExportPart(AccountsTable, table=True):
    """The bytes of an exported package, in parts (``export.PART_BYTES``): built by the export job, downloaded by the
    one who exported it, a part at a time."""

    __tablename__ = "archive_export_part"

    export_id: str = Field(primary_key=True, foreign_key="archive_export.id", max_length=36)
    part_no: int = Field(primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Disposal(AccountsTable, table=True):
    """A 销毁清册: items past their retention proposed for destruction; destroyed only after two approvals by two
    different people, neither the proposer. The list and its lines are kept for good, destroyed or not."""

    __tablename__ = "archive_disposal"

    id: str = Field(primary_key=True, max_length=36)
    status: str = Field(max_length=20)  # proposed | approved_once | destroyed | rejected
    expired_before_year: int  # items whose term ended before this year
    item_count: int
    reason: str = Field(sa_column=Column(Text, nullable=False))
    proposed_at: datetime
    proposed_by: str = Field(max_length=100)
    first_approved_by: str | None = Field(default=None, max_length=100)
    first_approved_at: datetime | None = None
    second_approved_by: str | None = Field(default=None, max_length=100)
    second_approved_at: datetime | None = None
    rejected_by: str | None = Field(default=None, max_length=100)
    rejected_at: datetime | None = None
    rejection_reason: str | None = Field(default=None, sa_column=Column(Text))
    destroyed_at: datetime | None = None


class DisposalLine(AccountsTable, table=True):
    """One item of a 销毁清册, as it was when proposed (the item itself is gone once destroyed)."""

    __tablename__ = "archive_disposal_line"
    __table_args__ = (UniqueConstraint("disposal_id", "item_id", name="uq_archive_disposal_line"),)

    id: int | None = Field(default=None, primary_key=True)
    disposal_id: str = Field(foreign_key="archive_disposal.id", max_length=36, index=True)
    item_id: str = Field(max_length=36, index=True)
    dossier_id: str = Field(max_length=36, index=True)
    source: str = Field(max_length=20)
    act_id: str = Field(max_length=100, index=True)  # a destroyed act is not filed again by a late redelivery
    registration_number: str | None = Field(default=None, max_length=18)
    serial: int
    year: int
    item_type: str = Field(max_length=40)
    title: str = Field(max_length=200)
    retention_class: str = Field(max_length=20)
    retention_years: int | None = None
    expires_after_year: int | None = None
    item_sha256: str = Field(max_length=64)  # of the item's metadata, as the package's items/*.json hold it
    supplement: bool = False  # filed after its year was sealed: not in the seal


class YearSeal(AccountsTable, table=True):
    """The yearly archive run (electronic archives formed at year end): a year sealed once, with the hash over its
    dossier-years' manifests."""

    __tablename__ = "archive_year_seal"

    year: int = Field(primary_key=True)
    sealed_at: datetime
    sealed_by: str = Field(max_length=100)
    dossiers: int
    items: int
    root_sha256: str = Field(max_length=64)


class DossierYearSeal(AccountsTable, table=True):
    """A dossier's year as sealed: its items' count and the SHA-256 over their metadata hashes, in 件号 order."""

    __tablename__ = "archive_dossier_year"
    __table_args__ = (UniqueConstraint("dossier_id", "year", name="uq_archive_dossier_year"),)

    id: int | None = Field(default=None, primary_key=True)
    dossier_id: str = Field(foreign_key="archive_dossier.id", max_length=36, index=True)
    year: int = Field(foreign_key="archive_year_seal.year", index=True)
    items: int
    manifest_sha256: str = Field(max_length=64)
