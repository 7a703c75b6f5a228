"""Request and response bodies of the case workflow, the rectification ledger and the dishonesty list."""

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field
from pydantic_core import PydanticCustomError

from services.kernel.money import MAX_FEN
from services.kernel.strict import RequestModel

from services.oversight.cases import workflow as wf
from services.oversight.cases.models import (
    Case,
    CaseFollowUp,
    CaseHistory,
    CaseOccurrence,
    DishonestyEntry,
    RectificationEntry,
    RectificationEvidence,
)


def _check_class(value: int) -> int:
    if value not in wf.CLASSES:
        raise PydanticCustomError("INVALID_CASE_CLASS", "问题分类应为 1 至 6（001 第二十九条）")
    return value


ClassCode = Annotated[int, AfterValidator(_check_class)]
Severity = Literal["low", "medium", "high", "severe"]
FollowUpKind = Literal[tuple(wf.FOLLOW_UP_KINDS)]  # type: ignore[valid-type]
Text = Annotated[str, Field(min_length=1, max_length=4000)]


# -- requests --------------------------------------------------------------------------------------------------------


class CaseOpen(RequestModel):
    """A case opened by hand (e.g. from an inspection finding). Rules call ``service.open_case`` directly."""

    rule_id: str = Field("MANUAL", min_length=1, max_length=40)
    fact_key: str = Field(min_length=1, max_length=300)
    severity: Severity
    subject_type: str = Field(min_length=1, max_length=30)
    subject_id: str = Field(min_length=1, max_length=100)
    title: str = Field(min_length=1, max_length=200)
    details: dict[str, Any] = Field(default_factory=dict)
    seed_clause: str = Field(min_length=1, max_length=100)
    unit: str | None = Field(None, max_length=100)
    region: str | None = Field(None, pattern=r"^\d{6}$")
    deadline_days: int | None = Field(None, ge=1, le=366)
    suggested_class: ClassCode | None = None
    amount_fen: int | None = Field(None, ge=0, le=MAX_FEN)


class Note(RequestModel):
    note: str | None = Field(None, max_length=4000)


class Classification(RequestModel):
    class_code: ClassCode = Field(description="001 第二十九条: 1 经办/后台修改错误, 2 数据转换错误, 3 单位未登记, "
                                              "4 不符合待遇条件, 5 金额较大未退还, 6 涉嫌欺诈骗保")
    finding: Text = Field(description="核实情况")
    person_id: str | None = Field(None, max_length=36, description="class 4: the beneficiary, if not the subject")
    employer_id: str | None = Field(None, max_length=36, description="class 3: the employer, if not the subject")
    amount_fen: int | None = Field(None, ge=0, le=MAX_FEN, description="amount involved (多领金额), fen")
    reason: str | None = Field(None, max_length=4000, description="required when re-classifying")


class FollowUpIn(RequestModel):
    kind: FollowUpKind
    evidence: Text = Field(description="what was done: letter no., referral receipt, correction ticket, …")
    reference: str | None = Field(None, max_length=200, description="document number; for the benefits kinds "
                                                                    "the entitlement id / notice id to link")


class RectificationIn(RequestModel):
    measures: Text = Field(description="整改措施")
    due_date: date
    responsible: str | None = Field(None, max_length=100, description="整改责任人")


class EvidenceIn(RequestModel):
    note: Text
    document_ref: str | None = Field(None, max_length=200)


class CloseIn(RequestModel):
    verification_note: Text = Field(description="the officer's verification (核查意见) for 销号")


class Reason(RequestModel):
    reason: Text


class DismissalDecision(RequestModel):
    approve: bool
    reason: str | None = Field(None, max_length=4000)


class EscalationRun(RequestModel):
    as_of: date | None = Field(None, description="the day to judge deadlines on; default today (China)")


class DishonestyIn(RequestModel):
    subject_type: Literal["person", "employer"]
    subject_id: str = Field(min_length=1, max_length=36)
    case_id: str = Field(min_length=1, max_length=36)
    reason: Text


# -- responses -------------------------------------------------------------------------------------------------------


class CaseOut(BaseModel):
    id: str
    rule_id: str
    fact_key: str
    severity: str
    subject_type: str
    subject_id: str
    person_id: str | None
    employer_id: str | None
    title: str
    details: dict[str, Any]
    seed_clause: str
    unit: str
    region: str | None
    status: str
    status_name: str
    suggested_class: int | None
    class_code: int | None
    class_name: str | None
    finding: str | None
    amount_fen: int | None
    deadline_days: int
    deadline: date
    current_deadline: date
    occurrences: int
    first_seen_at: datetime
    last_seen_at: datetime
    opened_at: datetime
    opened_by: str
    status_changed_at: datetime
    classified_at: datetime | None
    classified_by: str | None
    closed_at: datetime | None
    closed_by: str | None
    verification_note: str | None
    dismissal_proposed_at: datetime | None
    dismissal_proposed_by: str | None
    dismissal_reason: str | None
    dismissed_at: datetime | None
    dismissed_by: str | None
    escalation_level: int
    last_escalated_on: date | None

    @classmethod
    def of(cls, case: Case) -> "CaseOut":
        return cls(**case.model_dump(exclude={"details", "updated_at"}), details=json.loads(case.details),
                   status_name=wf.STATUS_NAMES[case.status],
                   class_name=wf.CLASSES[case.class_code].name if case.class_code else None)


class CaseOpenResult(CaseOut):
    created: bool = Field(description="false: the rule already had a case for this fact (an occurrence counted)")


class HistoryOut(BaseModel):
    at: datetime
    actor_id: str
    actor_role: str | None
    action: str
    from_status: str | None
    to_status: str
    detail: dict[str, Any]
    reason: str | None

    @classmethod
    def of(cls, row: CaseHistory) -> "HistoryOut":
        return cls(**row.model_dump(exclude={"id", "case_id", "detail"}), detail=json.loads(row.detail))


class OccurrenceOut(BaseModel):
    seen_at: datetime
    details: dict[str, Any]
    case_status: str
    source_ref: str | None

    @classmethod
    def of(cls, row: CaseOccurrence) -> "OccurrenceOut":
        return cls(seen_at=row.seen_at, details=json.loads(row.details), case_status=row.case_status,
                   source_ref=row.source_ref)


class FollowUpOut(BaseModel):
    id: int
    kind: str
    kind_name: str
    source: str
    reference: str | None
    event_id: str | None
    evidence: str
    recorded_at: datetime
    recorded_by: str
    recorded_role: str | None
    withdrawn_at: datetime | None
    withdrawn_reason: str | None

    @classmethod
    def of(cls, row: CaseFollowUp) -> "FollowUpOut":
        return cls(**row.model_dump(exclude={"case_id"}), kind_name=wf.FOLLOW_UP_KINDS[row.kind])


class RequirementOut(BaseModel):
    any_of: list[str]
    satisfied: bool
    by_event_only: bool


class EvidenceOut(BaseModel):
    id: int
    note: str
    document_ref: str | None
    submitted_at: datetime
    submitted_by: str
    submitted_role: str | None

    @classmethod
    def of(cls, row: RectificationEvidence) -> "EvidenceOut":
        return cls.model_validate(row, from_attributes=True)


class RectificationOut(BaseModel):
    id: str
    case_id: str
    unit: str
    region: str | None
    class_code: int
    problem: str
    measures: str
    responsible: str | None
    due_date: date
    status: str
    opened_at: datetime
    opened_by: str
    closed_at: datetime | None
    closed_by: str | None
    verification_note: str | None
    evidence: list[EvidenceOut] = Field(default_factory=list)

    @classmethod
    def of(cls, row: RectificationEntry, evidence: list[RectificationEvidence] = ()) -> "RectificationOut":
        return cls(**row.model_dump(), evidence=[EvidenceOut.of(e) for e in evidence])


class CaseDetail(CaseOut):
    required_follow_up: list[RequirementOut]
    follow_ups: list[FollowUpOut]
    rectification: RectificationOut | None
    occurrence_log: list[OccurrenceOut]
    history: list[HistoryOut]


class CasePage(BaseModel):
    items: list[CaseOut]
    next_cursor: str | None


class EscalationResult(BaseModel):
    as_of: date
    escalated: list[CaseOut]


class RectificationPage(BaseModel):
    items: list[RectificationOut]
    next_cursor: str | None


class DishonestyOut(BaseModel):
    id: str
    subject_type: str
    subject_id: str
    case_id: str
    class_code: int
    amount_fen: int | None
    reason: str
    listed_at: datetime
    listed_by: str
    removed_at: datetime | None
    removed_by: str | None
    removal_reason: str | None

    @classmethod
    def of(cls, row: DishonestyEntry) -> "DishonestyOut":
        return cls.model_validate(row, from_attributes=True)


class DishonestyPage(BaseModel):
    items: list[DishonestyOut]
    next_cursor: str | None
