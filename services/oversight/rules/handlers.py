"""What the suspicion rules take from the streams (their own ConsumerSpecs; the kernel merges them with the mirror's,
the ledger's and the cases' into one consumer per stream, handlers of one type running in declaration order in one
transaction — the rules are appended last in ``app.py``, so the mirror and the ledger have applied the event first).

Each handler records the facts its rules need (``models.py``) and evaluates the rules the event can trigger for the
keys it touches, opening cases through ``open_case`` in the consumer's transaction:

==========================================  ==========================================================================
event                                       rules
==========================================  ==========================================================================
benefits.payments.settled                   S01, S02, S03 (two pensions), S04, S05 (UNEMP) for the persons paid
benefits.payments.issued                    S07
benefits.survival.certified                 (S04's fact)
benefits.claim.submitted                    S08, S09, S10 (base rise)
benefits.claim.decided                      S18 (two levels), S06 (approved without large-amount review)
benefits.entitlement.granted                S06
accounts.person.life_status_changed         S19 (source), S01/S02 for payments already recorded
accounts.person.updated                     S19 (identity fields)
accounts.enrolment.duplicate_found          S03 (reported)
accounts.enrolment.enrolled / resumed /     S03 (active in two pension schemes)
transferred, accounts.enrolments.imported
exchange.person.died / imprisoned /         S01, S02 for payments already recorded
released
collection.assessment.issued / superseded   S10 (clamps; base history)
collection.payments.rejected / collected    S17 (refused method reported; a refused method accepted)
==========================================  ==========================================================================

Every other type on these streams is handled by the other oversight packages (tests/test_event_catalogue.py checks
the merged consumers cover their streams).
"""

from sqlmodel import Session

from services.contracts import accounts as acc
from services.contracts import benefits as ben
from services.contracts import collection as col
from services.kernel.events import EventEnvelope
from services.kernel.inbox import Handler
from services.kernel.service_app import ConsumerSpec
from services.oversight.rules import claims, contributions, payments, registry_data


def _person_life_fact(session: Session, envelope: EventEnvelope) -> None:
    payments.on_life_fact(session, envelope.payload().person_id)  # type: ignore[attr-defined]


def _life_status_changed(session: Session, envelope: EventEnvelope) -> None:
    registry_data.on_life_status_changed(session, envelope)
    _person_life_fact(session, envelope)


def _quiet(handler):  # noqa: ANN001, ANN202 - the rule functions return a tally; handlers return nothing
    def run(session: Session, envelope: EventEnvelope) -> None:
        handler(session, envelope)

    run.__name__ = getattr(handler, "__name__", "rule_handler")
    return run


BENEFITS_HANDLERS: dict[str, Handler] = {
    ben.PaymentsSettled.event_type: _quiet(payments.on_payments_settled),
    ben.PaymentsIssued.event_type: _quiet(payments.on_payments_issued),
    ben.SurvivalCertified.event_type: payments.on_survival_certified,
    ben.ClaimSubmitted.event_type: _quiet(claims.on_claim_submitted),
    ben.ClaimDecided.event_type: _quiet(claims.on_claim_decided),
    ben.EntitlementGranted.event_type: _quiet(claims.on_entitlement_granted),
}

ACCOUNTS_HANDLERS: dict[str, Handler] = {
    acc.PersonLifeStatusChanged.event_type: _life_status_changed,
    acc.PersonUpdated.event_type: _quiet(registry_data.on_person_updated),
    acc.DuplicateEnrolmentFound.event_type: _quiet(registry_data.on_duplicate_enrolment_found),
    acc.EnrolmentOpened.event_type: _quiet(registry_data.on_enrolment_changed),
    acc.EnrolmentResumed.event_type: _quiet(registry_data.on_enrolment_changed),
    acc.EnrolmentTransferred.event_type: _quiet(registry_data.on_enrolment_changed),
    acc.EnrolmentsImported.event_type: _quiet(registry_data.on_enrolment_changed),
}

EXCHANGE_HANDLERS: dict[str, Handler] = {
    acc.PersonDied.event_type: _person_life_fact,
    acc.PersonImprisoned.event_type: _person_life_fact,
    acc.PersonReleased.event_type: _person_life_fact,
}

COLLECTION_HANDLERS: dict[str, Handler] = {
    col.AssessmentIssued.event_type: _quiet(contributions.on_assessment_issued),
    col.AssessmentSuperseded.event_type: _quiet(contributions.on_assessment_superseded),
    col.PaymentsRejected.event_type: _quiet(contributions.on_payments_rejected),
    col.PaymentsCollected.event_type: _quiet(contributions.on_payments_collected),
}

RULE_HANDLERS: dict[str, Handler] = {**BENEFITS_HANDLERS, **ACCOUNTS_HANDLERS, **EXCHANGE_HANDLERS,
                                     **COLLECTION_HANDLERS}

RULES_CONSUMERS = [
    ConsumerSpec(stream="BENEFITS", handlers=BENEFITS_HANDLERS),
    ConsumerSpec(stream="ACCOUNTS", handlers=ACCOUNTS_HANDLERS),
    ConsumerSpec(stream="EXCHANGE", handlers=EXCHANGE_HANDLERS),
    ConsumerSpec(stream="COLLECTION", handlers=COLLECTION_HANDLERS),
]
