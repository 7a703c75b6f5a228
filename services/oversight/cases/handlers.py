"""What the case workflow takes from the BENEFITS stream.

- ``EntitlementSuspended`` and ``RecoveryNoticeIssued``: the follow-up a class-4 case (不符合待遇领取条件, 001 第二十九条
  （四）) requires — the benefit suspended *and* a recovery notice issued. They are kept per person
  (``benefit_signal``) and recorded as confirmations on the person's open class-4 cases (classified or
  rectifying) when the event happened at or after the fact that opened the case (the event a rule opened it on, else
  the opening: ``service.confirmations_since``); a case classified later picks them up at classification. Only
  these events can confirm those two kinds; an officer cannot enter them by hand (earlier events can be linked by
  their id, see ``service.record_follow_up``).
- ``EntitlementResumed``: a resumed entitlement withdraws the suspension confirmation it had given (the case can
  no longer be closed on it).
- ``RecoveryEscalated`` (unrecovered after the notice's deadline, 001 第二十九条(五)): opens a case with
  ``rule_id = "R-ESC"``, ``fact_key = "notice:<notice_id>"``, severity ``high``, suggested class 5 (audit), issued
  to the default agency unit for the person's region (from oversight's mirror) with
  ``SIFUND_OVERSIGHT_RECOVERY_CASE_DEADLINE_DAYS`` (*default* 30). A redelivered or repeated escalation of the same
  notice finds the same case (an occurrence is counted).

Each is a ``FactHandler`` (``services/oversight/facts.py``): keeping the signal is the fact, which a rebuild replays
(part ``facts``, ``SIGNALS_CONSUMER``); confirming, withdrawing and opening are the acts on cases, live only.

Everything else on BENEFITS is for the suspicion rules and reconciliation (their own ConsumerSpecs; the kernel
merges them into one consumer, and a type one of them handles is not ignored).
"""


from sqlmodel import Session

from services.contracts import benefits as benefits_events
from services.contracts.benefits import (
    EntitlementResumed,
    EntitlementSuspended,
    RecoveryEscalated,
    RecoveryNoticeIssued,
)
from services.kernel import clock
from services.kernel.events import EventEnvelope
from services.kernel.inbox import Handler
from services.kernel.service_app import ConsumerSpec
from services.oversight.cases import service
from services.oversight.cases.models import BenefitSignal
from services.oversight.facts import FactHandler, acts_only, live_handlers, record_handlers
from services.oversight.models import MirroredPerson
from services.kernel.settings import get_settings

R_ESC = "R-ESC"


def _signal(session: Session, envelope: EventEnvelope, **values) -> BenefitSignal:  # noqa: ANN003
    signal = session.get(BenefitSignal, envelope.id)
    if signal is None:
        signal = BenefitSignal(event_id=envelope.id, at=envelope.time, received_at=clock.utc_now(), **values)
        session.add(signal)
        session.flush()
    return signal


def _suspended(session: Session, envelope: EventEnvelope) -> BenefitSignal:
    event = envelope.payload_view(EntitlementSuspended)
    return _signal(session, envelope, kind="suspended", person_id=event.person_id,
                   entitlement_id=event.entitlement_id, reason=event.reason)


def _confirm_suspension(session: Session, envelope: EventEnvelope, signal: BenefitSignal) -> None:
    for case in service.open_class4_cases(session, signal.person_id):
        if service.confirms(session, case, signal):
            service.confirm_benefit_event(session, case, "benefit_suspended", signal)


def _resumed(session: Session, envelope: EventEnvelope) -> BenefitSignal:
    event = envelope.payload_view(EntitlementResumed)
    return _signal(session, envelope, kind="resumed", person_id=event.person_id,
                   entitlement_id=event.entitlement_id, reason=event.reason)


def _withdraw_suspension(session: Session, envelope: EventEnvelope, signal: BenefitSignal) -> None:
    for case in service.open_class4_cases(session, signal.person_id):
        service.withdraw_suspension(session, case, signal.entitlement_id, signal)


def _notice_issued(session: Session, envelope: EventEnvelope) -> BenefitSignal:
    event = envelope.payload_view(RecoveryNoticeIssued)
    return _signal(session, envelope, kind="notice_issued", person_id=event.person_id, notice_id=event.notice_id,
                   amount_fen=event.amount_fen)


def _confirm_notice(session: Session, envelope: EventEnvelope, signal: BenefitSignal) -> None:
    for case in service.open_class4_cases(session, signal.person_id):
        if service.confirms(session, case, signal):
            service.confirm_benefit_event(session, case, "recovery_notice_issued", signal)


on_entitlement_suspended = FactHandler(_suspended, _confirm_suspension)
on_entitlement_resumed = FactHandler(_resumed, _withdraw_suspension)
on_recovery_notice_issued = FactHandler(_notice_issued, _confirm_notice)


def on_recovery_escalated(session: Session, envelope: EventEnvelope) -> None:
    event = envelope.payload_view(RecoveryEscalated)
    person = session.get(MirroredPerson, event.person_id)
    service.open_case(
        session, rule_id=R_ESC, severity="high", subject_type="person", subject_id=event.person_id,
        fact_key=f"notice:{event.notice_id}",
        title=f"追回告知书逾期未退还 {event.remaining_fen / 100:.2f} 元，须开展稽核检查",
        details={"notice_id": event.notice_id, "remaining_fen": event.remaining_fen,
                 "deadline": event.deadline.isoformat(), "event_id": envelope.id},
        seed_clause="001 第二十九条(五)", region=person.region if person else None,
        deadline_days=get_settings().oversight_cases.recovery_case_deadline_days, suggested_class=5,
        amount_fen=event.remaining_fen,
    )


SIGNAL_HANDLERS: dict[str, FactHandler] = {
    EntitlementSuspended.event_type: on_entitlement_suspended,
    EntitlementResumed.event_type: on_entitlement_resumed,
    RecoveryNoticeIssued.event_type: on_recovery_notice_issued,
    RecoveryEscalated.event_type: acts_only(on_recovery_escalated),
}
HANDLERS: dict[str, Handler] = live_handlers(SIGNAL_HANDLERS)

# For the suspicion rules and reconciliation (S01/S02/S04–S09/S18, R5), not for the case workflow.
IGNORED: frozenset[str] = frozenset(getattr(benefits_events, n).event_type for n in (
    "ClaimSubmitted", "ClaimDecided", "EntitlementGranted", "EntitlementEnded", "PayrollApproved",
    "FundingRequested", "PaymentsIssued", "PaymentsSettled", "SurvivalCertified", "OverpaymentFound",
    "RecoveryRecorded", "PayrollLinesRetained",
))

BENEFITS_CONSUMER = ConsumerSpec(stream="BENEFITS", handlers=HANDLERS, ignores=IGNORED)
# What a rebuild replays (part "facts"): the signals alone, no case confirmed or opened again.
SIGNALS_CONSUMER = ConsumerSpec(stream="BENEFITS", handlers=record_handlers(SIGNAL_HANDLERS))
