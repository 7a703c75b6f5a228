"""Request and response bodies of the electronic archive (社会保险业务档案)."""

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

Purpose = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=500)]


class DossierOut(BaseModel):
    id: str
    subject_type: str = Field(description="person 参保人员 | employer 参保单位")
    subject_id: str
    registration_number: str | None = Field(description="公民身份号码 (masked unless the role needs it) or 统一社会信用代码")
    name: str | None
    region: str | None
    opened_at: datetime
    item_count: int
    last_filed_at: datetime | None


class DossierPage(BaseModel):
    items: list[DossierOut]
    next_cursor: str | None = Field(description="pass as ?after= to get the next page; null on the last page")


class ItemOut(BaseModel):
    id: str
    serial: int = Field(description="件号 within the dossier")
    year: int = Field(description="归档年度 (the year of the act, China time)")
    source: str = Field(description="the service where the act was done")
    item_type: str
    item_label: str = Field(description="the item type as the catalogue prints it")
    act_id: str
    title: str
    decision: str
    decided_by: str
    decided_role: str | None
    level: str | None
    references: dict[str, str]
    audit_seq: int | None = Field(description="position of the act's entry in the source service's audit chain")
    audit_hash: str | None
    retention_class: str = Field(description="permanent 永久 | long 长期 | short 短期")
    retention_years: int | None = Field(description="the term in years (None: permanent)")
    retention_basis: str
    expires_after_year: int | None
    occurred_at: datetime
    filed_at: datetime


class ItemPage(BaseModel):
    dossier: DossierOut
    items: list[ItemOut]
    next_cursor: int | None = Field(description="pass as ?after= to get the next page; null on the last page")


class AccessOut(BaseModel):
    id: int
    dossier_id: str
    accessed_at: datetime
    actor_id: str
    actor_role: str | None
    action: str = Field(description="read | export")
    purpose: str
    request_id: str | None


class AccessPage(BaseModel):
    items: list[AccessOut]
    next_cursor: int | None


class PackageVerification(BaseModel):
    result: str = Field(description="genuine | altered | unknown (a well-formed package this archive never exported)")
    export_id: str | None = None
    dossier_id: str | None = None
    altered_files: list[str] = Field(default_factory=list, description="files whose bytes are not the manifest's")
    missing_files: list[str] = Field(default_factory=list)
    extra_files: list[str] = Field(default_factory=list, description="files the manifest does not list")
    manifest_altered: bool = False


class DisposalProposal(BaseModel):
    reason: Purpose = Field(description="鉴定意见: why the expired items may be destroyed")


class DisposalDecision(BaseModel):
    reason: Purpose = Field(description="审批意见")


class DisposalLineOut(BaseModel):
    item_id: str
    dossier_id: str
    registration_number: str | None
    serial: int
    year: int
    item_type: str
    title: str
    retention_class: str
    retention_years: int | None
    expires_after_year: int | None
    item_sha256: str


class DisposalOut(BaseModel):
    id: str
    status: str = Field(description="proposed | approved_once | destroyed | rejected")
    expired_before_year: int
    item_count: int
    reason: str
    proposed_at: datetime
    proposed_by: str
    first_approved_by: str | None
    first_approved_at: datetime | None
    second_approved_by: str | None
    second_approved_at: datetime | None
    rejected_by: str | None
    rejected_at: datetime | None
    rejection_reason: str | None
    destroyed_at: datetime | None


class DisposalDetail(DisposalOut):
    lines: list[DisposalLineOut] = Field(description="销毁清册: every item, as it was when proposed")


class DisposalPage(BaseModel):
    items: list[DisposalOut]
    next_cursor: str | None


class YearSealOut(BaseModel):
    year: int
    sealed_at: datetime
    sealed_by: str
    dossiers: int
    items: int
    root_sha256: str


class SupplementOut(BaseModel):
    dossier_id: str
    serial: int


class YearVerification(BaseModel):
    year: int
    intact: bool = Field(description="every dossier-year still hashes to what was sealed")
    changed_dossiers: list[str]
    supplements: list[SupplementOut] = Field(description="items filed after the seal (补充归档)")
    root_sha256: str
    sealed_at: datetime
    sealed_by: str
    dossiers: int
    items: int
