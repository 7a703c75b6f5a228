"""Events the oversight service publishes (stream OVERSIGHT).

Cases (疑点/问题 cases, OVERSIGHT.md Case workflow) announce their opening, every status change and every
escalation, so that a notification channel (the higher-level supervisor, the responsible unit's inbox) can follow
them without reading oversight's database. The dishonesty list (001 第三十条) announces additions and removals: the
list is reported onwards for joint punishment (联合惩戒).
"""

from datetime import date

from services.kernel.events import EventPayload


class CaseOpened(EventPayload, event_type="oversight.case.opened.v1"):
    """A case issued (下发) to a responsible unit with a deadline; opened by a rule, reconciliation or an officer."""

    case_id: str
    rule_id: str
    fact_key: str
    severity: str  # low | medium | high | severe
    subject_type: str
    subject_id: str
    title: str
    seed_clause: str
    unit: str
    region: str | None
    deadline: date
    suggested_class: int | None = None


class CaseTransitioned(EventPayload, event_type="oversight.case.transitioned.v1"):
    """A step of the workflow: investigate, classify, rectify, close (销号), dismissal proposed/decided."""

    case_id: str
    rule_id: str
    action: str
    from_status: str
    to_status: str
    class_code: int | None
    severity: str
    unit: str
    region: str | None


class CaseEscalated(EventPayload, event_type="oversight.case.escalated.v1"):
    """Overdue (deadline passed, not closed): severity raised one step and the case flagged for the supervisor."""

    case_id: str
    rule_id: str
    status: str
    severity_before: str
    severity: str
    escalation_level: int
    deadline: date
    days_overdue: int
    unit: str
    region: str | None


class DishonestyListed(EventPayload, event_type="oversight.dishonesty.listed.v1"):
    """A person or employer put on the dishonesty list (严重失信人名单) after a confirmed serious case."""

    entry_id: str
    subject_type: str  # person | employer
    subject_id: str
    case_id: str
    class_code: int
    reason: str


class DishonestyRemoved(EventPayload, event_type="oversight.dishonesty.removed.v1"):
    entry_id: str
    subject_type: str
    subject_id: str
    case_id: str
    reason: str
