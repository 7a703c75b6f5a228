"""Events of on-site inspections (stream OVERSIGHT): the feedback letter with its rectification deadlines and the
report, for the inspected unit's and the higher-level supervisor's systems."""

from datetime import date

from services.kernel.events import EventPayload


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
