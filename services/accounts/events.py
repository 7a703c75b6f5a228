"""Events the accounts service publishes (stream ACCOUNTS; partner-department facts go to EXCHANGE)."""

from datetime import datetime

from services.kernel.events import EventPayload


class EmployerRegistered(EventPayload, event_type="accounts.employer.registered.v1"):
    employer_id: str
    uscc: str
    name: str
    region: str
    registered_at: datetime
