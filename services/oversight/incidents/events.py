"""Events of major-incident reports (stream OVERSIGHT): a higher-level supervisor's system can follow what was
recorded and when each level was told (000 三(五))."""

from datetime import date

from services.kernel.events import EventPayload


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
