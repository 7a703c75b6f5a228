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

Each handler is a ``FactHandler`` (``services/oversight/facts.py``): ``record`` writes the fact tables of
``models.py`` from the event alone and touches no case; ``act`` evaluates the rules and opens cases. The live
consumer runs both; a rebuild (``services/oversight/rebuild.py``, part ``facts``) replays ``record`` alone
(``FACTS_CONSUMERS``), so the fact tables come back exactly and the cases stay as they are. An event that brings no
fact of the rules' own (the rules read what the mirror keeps: enrolments, deaths, registered employers) only acts.

Every other type on these streams is handled by the other oversight packages (tests/test_event_catalogue.py checks
the merged consumers cover their streams).
"""

from sqlmodel import Session

from services.contracts import accounts as acc
from services.contracts import benefits as ben
from services.contracts import collection as col
from services.kernel.events import EventEnvelope
from services.kernel.service_app import ConsumerSpec
from services.oversight.facts import FactHandler, acts_only, live_handlers, record_handlers
from services.oversight.rules import claims, contributions, payments, registry_data
from services.oversight.rules.models import RuleLifeChange


def _person_life_fact(session: Session, envelope: EventEnvelope) -> None:
    payments.on_life_fact(session, envelope.payload().person_id)  # type: ignore[attr-defined]


def _check_life_status_changed(session: Session, envelope: EventEnvelope, row: RuleLifeChange) -> None:
    registry_data.check_life_change(session, envelope, row)
    _person_life_fact(session, envelope)


BENEFITS_RULES: dict[str, FactHandler] = {
    ben.PaymentsSettled.event_type: payments.on_payments_settled,
    ben.PaymentsIssued.event_type: payments.on_payments_issued,
    ben.SurvivalCertified.event_type: payments.on_survival_certified,
    ben.ClaimSubmitted.event_type: claims.on_claim_submitted,
    ben.ClaimDecided.event_type: claims.on_claim_decided,
    ben.EntitlementGranted.event_type: acts_only(claims.on_entitlement_granted),
}

ACCOUNTS_RULES: dict[str, FactHandler] = {
    acc.PersonLifeStatusChanged.event_type: FactHandler(registry_data.record_life_change,
                                                        _check_life_status_changed),
    acc.PersonUpdated.event_type: acts_only(registry_data.on_person_updated),
    acc.DuplicateEnrolmentFound.event_type: acts_only(registry_data.on_duplicate_enrolment_found),
    acc.EnrolmentOpened.event_type: acts_only(registry_data.on_enrolment_changed),
    acc.EnrolmentResumed.event_type: acts_only(registry_data.on_enrolment_changed),
    acc.EnrolmentTransferred.event_type: acts_only(registry_data.on_enrolment_changed),
    acc.EnrolmentsImported.event_type: acts_only(registry_data.on_enrolment_changed),
}

EXCHANGE_RULES: dict[str, FactHandler] = {
    acc.PersonDied.event_type: acts_only(_person_life_fact),
    acc.PersonImprisoned.event_type: acts_only(_person_life_fact),
    acc.PersonReleased.event_type: acts_only(_person_life_fact),
}

COLLECTION_RULES: dict[str, FactHandler] = {
    **dict.fromkeys(col.AssessmentIssued.versions(), contributions.on_assessment_issued),
    col.AssessmentSuperseded.event_type: contributions.on_assessment_superseded,
    col.PaymentsRejected.event_type: acts_only(contributions.on_payments_rejected),
    **dict.fromkeys(col.PaymentsCollected.versions(), acts_only(contributions.on_payments_collected)),
}

RULES_BY_STREAM = {"BENEFITS": BENEFITS_RULES, "ACCOUNTS": ACCOUNTS_RULES, "EXCHANGE": EXCHANGE_RULES,
                   "COLLECTION": COLLECTION_RULES}

# The live consumers: facts, then cases.
RULES_CONSUMERS = [ConsumerSpec(stream=stream, handlers=live_handlers(rules))
                   for stream, rules in RULES_BY_STREAM.items()]
# What a rebuild replays: the facts alone (EXCHANGE keeps none: its events only act on the mirror's facts).
FACTS_CONSUMERS = [ConsumerSpec(stream=stream, handlers=record_handlers(rules))
                   for stream, rules in RULES_BY_STREAM.items() if record_handlers(rules)]
