"""Events the oversight service publishes (stream OVERSIGHT).

Cases (疑点/问题 cases, OVERSIGHT.md Case workflow) announce their opening, every status change and every
escalation, so that a notification channel (the higher-level supervisor, the responsible unit's inbox) can follow
them without reading oversight's database. The dishonesty list (001 第三十条) announces additions and removals: the
list is reported onwards for joint punishment (联合惩戒).
"""

from datetime import date

from services.contracts.codes import CaseClass, CaseStatus, Severity
from services.contracts.archives import ArchiveItemsFiled
from services.kernel.events import EventPayload


class CaseOpened(EventPayload, event_type="oversight.case.opened.v1"):
    """A case issued (下发) to a responsible unit with a deadline; opened by a rule, reconciliation or an officer."""

    case_id: str
    rule_id: str
    fact_key: str
    severity: Severity
    subject_type: str
    subject_id: str
    title: str
    seed_clause: str
    unit: str
    region: str | None
    deadline: date
    suggested_class: CaseClass | None = None


class CaseTransitioned(EventPayload, event_type="oversight.case.transitioned.v1"):
    """A step of the workflow: investigate, classify, rectify, close (销号), dismissal proposed/decided."""

    case_id: str
    rule_id: str
    action: str
    from_status: CaseStatus
    to_status: CaseStatus
    class_code: CaseClass | None
    severity: Severity
    unit: str
    region: str | None


class CaseEscalated(EventPayload, event_type="oversight.case.escalated.v1"):
    """Overdue (deadline passed, not closed): severity raised one step and the case flagged for the supervisor."""

    case_id: str
    rule_id: str
    status: CaseStatus
    severity_before: Severity
    severity: Severity
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
    class_code: CaseClass
    reason: str


class DishonestyRemoved(EventPayload, event_type="oversight.dishonesty.removed.v1"):
    entry_id: str
    subject_type: str
    subject_id: str
    case_id: str
    reason: str


# -- major-incident reports --------------------------------------------------------------------------------------------
# Events of major-incident reports (stream OVERSIGHT): a higher-level supervisor's system can follow what was
# recorded and when each level was told (000 三(五)).


class IncidentRecorded(EventPayload, event_type="oversight.incident.recorded.v1"):
    incident_id: str
    kind: str  # misappropriation | diversion | fraud
    channel: str
    unit: str
    region: str | None
    discovered_on: date
    amount_fen: int
    major: bool
    due_on: date | None  # major: the 5th working day after discovery


class IncidentReported(EventPayload, event_type="oversight.incident.reported.v1"):
    incident_id: str
    level: str  # same_level | provincial
    reported_on: date
    major: bool
    due_on: date | None
    late: bool | None


# -- on-site inspections -----------------------------------------------------------------------------------------------
# Events of on-site inspections (stream OVERSIGHT): the feedback letter with its rectification deadlines and the
# report, for the inspected unit's and the higher-level supervisor's systems.


class InspectionFeedbackIssued(EventPayload, event_type="oversight.inspection.feedback_issued.v1"):
    """问题反馈函 issued (001 第十一条(三)): the findings with rectification deadlines."""

    inspection_id: str
    target_unit: str
    target_code: str | None
    letter_no: str
    issued_on: date
    findings: int
    amount_fen: int
    earliest_deadline: date
    latest_deadline: date


class InspectionReported(EventPayload, event_type="oversight.inspection.reported.v1"):
    """监督报告 written (001 第十一条(四))."""

    inspection_id: str
    programme_id: str | None
    target_unit: str
    target_code: str | None
    target_level: str
    reported_on: date
    findings: int
    amount_fen: int
    reported_to_higher: bool


# -- whistleblower reports ---------------------------------------------------------------------------------------------
# Events of whistleblower reports (stream OVERSIGHT). They never carry the reporter's identity nor the report's
# text: a notification channel learns that a report needs attention and where to look, nothing more.


class WhistleblowerReportFlagged(EventPayload, event_type="oversight.whistleblower_report.flagged.v1"):
    """A major or urgent report: an officer must be alerted at once (000 三(四))."""

    report_id: str
    alert_id: str
    channel: str
    category: str
    region: str | None
    reasons: list[str]  # codes: URGENT_REQUESTED, KEYWORD, LARGE_AMOUNT, OFFICER


class WhistleblowerRewardGranted(EventPayload, event_type="oversight.whistleblower_reward.granted.v1"):
    """A reward decided (001 第三十八条); payment is made by finance against the decision id."""

    reward_id: str
    report_id: str
    matter_id: str
    kind: str  # main | supplementary
    amount_fen: int
    verified_amount_fen: int
    standard: str


class OversightArchiveItemsFiled(ArchiveItemsFiled, event_type="oversight.archive_items.filed.v1"):
    """Archive items of acts done in oversight, for the dossiers accounts keeps (services/contracts/archives.py)."""
