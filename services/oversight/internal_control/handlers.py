"""What oversight takes from the agency's internal control (ACCOUNTS stream).

- ``accounts.internal_control.nonconformity_found.v1``: an internal auditor found a sampled act not conforming.
  Oversight opens a case for it (``rule_id = "IC"``, ``fact_key = "IC:<finding id>"``: a redelivery finds the same
  case), about the dossier's person or employer, in its area, severity ``high`` for an act of a high-risk category
  (004 第6项) and ``medium`` otherwise.
- ``accounts.internal_control.report_submitted.v1``: the yearly report received (001 第二十四条), kept once per
  year and area for the deadline view.
"""

from sqlalchemy import select
from sqlmodel import Session

from services.contracts.accounts import InternalControlNonconformity, InternalControlReportSubmitted
from services.kernel import clock
from services.kernel.events import EventEnvelope
from services.kernel.service_app import ConsumerSpec
from services.oversight.cases.service import open_case
from services.oversight.internal_control.models import ControlReportReceipt

IC = "IC"
ORDINARY = "ordinary"


def on_nonconformity(session: Session, envelope: EventEnvelope) -> None:
    event = envelope.payload_view(InternalControlNonconformity)
    open_case(
        session, rule_id=IC, severity="medium" if event.risk == ORDINARY else "high",
        subject_type=event.subject_type, subject_id=event.subject_id, fact_key=f"{IC}:{event.finding_id}",
        title=f"内控抽查不符合规定：{event.item_type} {event.act_id}"[:200],
        details={"finding_id": event.finding_id, "sample_id": event.sample_id, "period": event.period,
                 "item_type": event.item_type, "risk": event.risk, "act_id": event.act_id, "source": event.source,
                 "decided_by": event.decided_by, "reviewed_by": event.reviewed_by, "reason": event.reason,
                 "event_id": envelope.id},
        seed_clause="001 第十九条", region=event.region)


def on_report_submitted(session: Session, envelope: EventEnvelope) -> None:
    event = envelope.payload_view(InternalControlReportSubmitted)
    if session.execute(select(ControlReportReceipt.id).where(
            ControlReportReceipt.year == event.year, ControlReportReceipt.region == event.region)).first() is not None:
        return  # one report per year and area: accounts refuses a second, a redelivery changes nothing
    session.add(ControlReportReceipt(
        year=event.year, region=event.region, document_id=event.document_id, document_number=event.document_number,
        document_sha256=event.document_sha256, submitted_at=event.submitted_at, submitted_by=event.submitted_by,
        received_at=clock.utc_now(), samples=event.samples, sampled_items=event.sampled_items,
        nonconforming=event.nonconforming, event_id=envelope.id))


# The receipts alone: what a rebuild from the streams replays (services/oversight/rebuild.py), never the case step.
RECEIPTS_CONSUMER = ConsumerSpec(stream="ACCOUNTS", handlers={
    InternalControlReportSubmitted.event_type: on_report_submitted,
})
INTERNAL_CONTROL_CONSUMER = ConsumerSpec(stream="ACCOUNTS", handlers={
    InternalControlNonconformity.event_type: on_nonconformity,
    **RECEIPTS_CONSUMER.handlers,
})
