"""Benefits' mirror of the registry, kept from three streams (one ``ConsumerSpec`` each):

- ACCOUNTS: persons (registered one by one or imported in batches), their life status, and the payment accounts and
  social security cards benefits may pay into (000 二(三));
- EXCHANGE: deaths, cremations, imprisonments and releases reported by partner departments (001 第二十七条);
- COLLECTION: the contribution index of pension lines (registry/index.py).

Each handler runs in the consumer's transaction (``kernel.inbox``): the inbox makes a redelivered event a no-op and
the handlers are idempotent on their own too (rows merged by id, effects driven by the resulting state). The same
patterns as collection's mirror (services/collection/registry/handlers.py), whose generic helpers are reused:
a person row remembers the event that last wrote it (``source_event_id``); event ids are UUIDv7, time-ordered, so an
older event is stale and does not overwrite a newer state; an event about a person not mirrored yet raises
``MirrorGap`` (retried, then dead-lettered for an operator to replay).

A life status change — from ACCOUNTS (``life_status_changed``) or EXCHANGE (died, cremated, imprisoned, released),
whichever arrives first; accounts publishes both for one fact — updates the person and, in the same transaction,
applies its effects (eligibility/service.py ``apply_life_status``): a death or an imprisonment suspends every active
entitlement of the person at once, and payroll lines already paid for periods after the death month or inside the
imprisonment become overpayments with a recovery notice. The effects depend only on the resulting state, so the
second event of a pair changes nothing.

Every type on each stream is either handled or listed as ignored (tests/test_event_catalogue.py).
"""

from collections.abc import Callable

from sqlmodel import Session

import services.contracts.accounts as accounts_events
import services.contracts.collection as collection_events
from services.benefits.eligibility.service import apply_life_status
from services.benefits.models import BeneficiaryAccount, BeneficiaryPerson
from services.benefits.registry import index
from services.contracts.accounts import (
    BusinessRegistered,
    PersonBankAccountAdded,
    PersonBankAccountClosed,
    PersonCremated,
    PersonDied,
    PersonImprisoned,
    PersonLifeStatusChanged,
    PersonRegistered,
    PersonReleased,
    PersonsImported,
)
from services.kernel.events import EventEnvelope
from services.kernel.mirror import MirrorGap
from services.kernel.mirror import is_fresh as _fresh
from services.kernel.mirror import merge_rows as _merge
from services.kernel.mirror import typed_payload as _payload
from services.kernel.service_app import ConsumerSpec

__all__ = ["ACCOUNTS_CONSUMER", "COLLECTION_CONSUMER", "EXCHANGE_CONSUMER", "MirrorGap"]

Handler = Callable[[Session, EventEnvelope], None]

PERSON_FIELDS = ("citizen_id", "name", "sex", "birth_date", "region")


def _person(session: Session, person_id: str) -> BeneficiaryPerson:
    row = session.get(BeneficiaryPerson, person_id)
    if row is None:
        raise MirrorGap(f"person {person_id} is not in benefits' registry yet")
    return row


# -- persons ---------------------------------------------------------------------------------------------------------


def on_person_registered(session: Session, envelope: EventEnvelope) -> None:
    # A new row starts alive (the column default); the life status only ever changes by its own events.
    e = _payload(envelope, PersonRegistered)
    _merge(session, BeneficiaryPerson, "person_id",
           [{"person_id": e.person_id, **{f: getattr(e, f) for f in PERSON_FIELDS}}], envelope)


def on_persons_imported(session: Session, envelope: EventEnvelope) -> None:
    e = envelope.payload_view(PersonsImported)  # read only: the persons as structs, not a model each
    _merge(session, BeneficiaryPerson, "person_id",
           [{"person_id": p.person_id, **{f: getattr(p, f) for f in PERSON_FIELDS}} for p in e.persons], envelope)


def _set_life(session: Session, envelope: EventEnvelope, row: BeneficiaryPerson, **values: object) -> None:
    """Write the new life state if the event is not older than the row, then apply the effects of the row's state
    (a stale event still re-applies the current state's effects, which is a no-op when they are in place)."""
    if _fresh(row, envelope):
        for field, value in values.items():
            setattr(row, field, value)
        row.source_event_id = envelope.id
        session.add(row)
        session.flush()
    apply_life_status(session, row)


def on_person_life_status_changed(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, PersonLifeStatusChanged)
    # The event carries the whole target state (accounts' apply_life_status contract).
    _set_life(session, envelope, _person(session, e.person_id), life_status=e.life_status, death_date=e.death_date,
              imprisoned_from=e.imprisoned_from, imprisoned_until=e.imprisoned_until)


def on_person_died(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, PersonDied)
    _set_life(session, envelope, _person(session, e.person_id), life_status="deceased", death_date=e.death_date)


def on_person_cremated(session: Session, envelope: EventEnvelope) -> None:
    """A cremation without a known death: the person died on or before that day, which stands in as the death date
    until a death record refines it (as accounts does). With a death on file it changes nothing."""
    e = _payload(envelope, PersonCremated)
    row = _person(session, e.person_id)
    if row.life_status == "deceased" and row.death_date is not None:
        _set_life(session, envelope, row)
    else:
        _set_life(session, envelope, row, life_status="deceased", death_date=e.cremation_date)


def on_person_imprisoned(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, PersonImprisoned)
    row = _person(session, e.person_id)
    if row.life_status == "deceased":  # accounts refuses it too; nothing to do for the dead
        _set_life(session, envelope, row)
        return
    _set_life(session, envelope, row, life_status="imprisoned", imprisoned_from=e.imprisoned_from,
              imprisoned_until=e.imprisoned_until)


def on_person_released(session: Session, envelope: EventEnvelope) -> None:
    """Alive again; the served period stays on the row (from … until the release), as in accounts."""
    e = _payload(envelope, PersonReleased)
    row = _person(session, e.person_id)
    if row.life_status == "deceased":
        _set_life(session, envelope, row)
        return
    _set_life(session, envelope, row, life_status="alive", imprisoned_until=e.released_on)


# -- payment accounts ------------------------------------------------------------------------------------------------


def on_bank_account_added(session: Session, envelope: EventEnvelope) -> None:
    """The facts of an account never change and a closed account is never reopened (accounts adds a new one), so an
    account already mirrored is left as it is: a replayed ``added`` cannot reopen a closed account."""
    e = _payload(envelope, PersonBankAccountAdded)
    if session.get(BeneficiaryAccount, e.bank_account_id) is None:
        session.add(BeneficiaryAccount(bank_account_id=e.bank_account_id, person_id=e.person_id, kind=e.kind,
                                       bank_name=e.bank_name, account_no=e.account_no, holder_name=e.holder_name,
                                       status="active"))


def on_bank_account_closed(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, PersonBankAccountClosed)
    row = session.get(BeneficiaryAccount, e.bank_account_id)
    if row is None:
        raise MirrorGap(f"bank account {e.bank_account_id} is not in benefits' registry yet")
    if row.status != "closed":
        row.status = "closed"
        session.add(row)


# -- the consumers ---------------------------------------------------------------------------------------------------

ACCOUNTS_HANDLERS: dict[str, Handler] = {
    PersonRegistered.event_type: on_person_registered,
    PersonsImported.event_type: on_persons_imported,
    PersonLifeStatusChanged.event_type: on_person_life_status_changed,
    PersonBankAccountAdded.event_type: on_bank_account_added,
    PersonBankAccountClosed.event_type: on_bank_account_closed,
}

# Employers, enrolments and the individual-account ledger are not benefits' to mirror: contribution status is asked
# online at claim time (004, synchronous verification), the contribution index comes from COLLECTION, and an offset
# against a deceased person's individual account is recorded with the accounts withdrawal as its reference
# (recovery/service.py). PersonUpdated changes only contact details (identity fields are refused by accounts). The
# agency's internal control reports to oversight.
ACCOUNTS_IGNORED: frozenset[str] = frozenset(getattr(accounts_events, n).event_type for n in (
    "EmployerRegistered", "EmployerUpdated", "EmployerStatusChanged", "EmployersImported", "PersonUpdated",
    "EnrolmentOpened", "EnrolmentTransferred", "EnrolmentSuspended", "EnrolmentResumed", "EnrolmentStopped",
    "EnrolmentsImported", "DuplicateEnrolmentFound", "AccountCredited", "AccountsCredited", "AccountDebited",
    "ContributionsPosted", "ContributionsPostedV1", "ContributionsHeld", "InternalControlNonconformity",
    "InternalControlReportSubmitted",
))

EXCHANGE_HANDLERS: dict[str, Handler] = {
    PersonDied.event_type: on_person_died,
    PersonCremated.event_type: on_person_cremated,
    PersonImprisoned.event_type: on_person_imprisoned,
    PersonReleased.event_type: on_person_released,
}

# New businesses are oversight's (S11), not a benefits matter.
EXCHANGE_IGNORED: frozenset[str] = frozenset({BusinessRegistered.event_type})

COLLECTION_HANDLERS: dict[str, Handler] = {
    collection_events.ParametersApproved.event_type: index.on_parameters_approved,
    **dict.fromkeys(collection_events.AssessmentIssued.versions(), index.on_assessment_issued),
    collection_events.AssessmentSuperseded.event_type: index.on_assessment_superseded,
}

# The index is built from what was assessed; payments, arrears and the treasury are collection's and oversight's.
COLLECTION_IGNORED: frozenset[str] = frozenset(getattr(collection_events, n).event_type for n in (
    "PaymentsCollected", "PaymentsCollectedV1", "PaymentsRejected", "ArrearsNoticeIssued", "TreasuryRemitted",
    "BankTransactionRecorded", "BankAccountRegistered",
    "CollectionArchiveItemsFiled",  # the archive items are for accounts
))

# The server delivers only the families benefits uses: the person facts of ACCOUNTS and the parameters and
# assessments of COLLECTION. The bulk families it ignores (credits, posted and held contributions, enrolments,
# employers; payments, bank and treasury movements) never reach it, so they cost benefits nothing per line; a type
# of these families that benefits neither handles nor ignores is still dead-lettered.
ACCOUNTS_SUBJECTS = frozenset({"accounts.person.>", "accounts.persons.>"})
COLLECTION_SUBJECTS = frozenset({"collection.parameters.>", "collection.assessment.>"})

ACCOUNTS_CONSUMER = ConsumerSpec(stream="ACCOUNTS", handlers=ACCOUNTS_HANDLERS, ignores=ACCOUNTS_IGNORED,
                                 subjects=ACCOUNTS_SUBJECTS)
EXCHANGE_CONSUMER = ConsumerSpec(stream="EXCHANGE", handlers=EXCHANGE_HANDLERS, ignores=EXCHANGE_IGNORED)
COLLECTION_CONSUMER = ConsumerSpec(stream="COLLECTION", handlers=COLLECTION_HANDLERS, ignores=COLLECTION_IGNORED,
                                   subjects=COLLECTION_SUBJECTS)
