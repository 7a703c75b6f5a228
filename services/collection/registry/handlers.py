"""Collection's mirror of the registry (employers, persons, enrolments), kept from the ACCOUNTS stream.

Each handler runs in the consumer's transaction (``kernel.inbox``): the inbox makes a redelivered event a no-op, and
the handlers are idempotent on their own too — every row is merged by its id, never inserted twice.

Order. JetStream delivers the stream in order; only a failed-and-retried event can arrive after its successors. A
row remembers the event that last wrote it (``source_event_id``); event ids are UUIDv7, time-ordered, so an event
whose id is older than the row's is stale and skipped (a registration replayed after an update does not undo the
update). An event about an entity the mirror does not have yet (an update before its registration) raises
``MirrorGap``: the consumer retries it later and, after its bounded attempts, dead-letters it for an operator to
replay once the registration is in.

Every ``accounts.*`` type is either handled here or listed in ``IGNORED`` (tests/test_event_catalogue.py).
"""

from collections.abc import Callable
from typing import Any, TypeVar

from sqlmodel import Session

import services.contracts.accounts as accounts_events
from services.collection.models import RegistryEmployer, RegistryEnrolment, RegistryPerson
from services.contracts.accounts import (
    EmployerRegistered,
    EmployersImported,
    EmployerStatusChanged,
    EmployerUpdated,
    EnrolmentOpened,
    EnrolmentResumed,
    EnrolmentsImported,
    EnrolmentStopped,
    EnrolmentSuspended,
    EnrolmentTransferred,
    PersonLifeStatusChanged,
    PersonRegistered,
    PersonsImported,
    PersonUpdated,
)
from services.kernel.events import EventEnvelope, EventPayload
from services.kernel.mirror import MirrorGap
from services.kernel.mirror import is_fresh as _fresh
from services.kernel.mirror import merge_rows as _merge
from services.kernel.mirror import typed_payload as _payload
from services.kernel.service_app import ConsumerSpec

P = TypeVar("P", bound=EventPayload)
Row = TypeVar("Row", RegistryEmployer, RegistryPerson, RegistryEnrolment)
CHUNK = 1000


def _known(session: Session, model: type[Row], key: str, what: str) -> Row:
    row = session.get(model, key)
    if row is None:
        raise MirrorGap(f"{what} {key} is not in collection's registry yet")
    return row


# -- employers -------------------------------------------------------------------------------------------------------

_EMPLOYER_FIELDS = ("uscc", "name", "region", "unit_type", "industry_risk_class")


def on_employer_registered(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, EmployerRegistered)
    _merge(session, RegistryEmployer, "employer_id",
           [{"employer_id": e.employer_id, **{f: getattr(e, f) for f in _EMPLOYER_FIELDS}, "status": "active"}],
           envelope)


def on_employers_imported(session: Session, envelope: EventEnvelope) -> None:
    # An imported employer arrives active; the import states another status with EmployerStatusChanged, if at all.
    e = _payload(envelope, EmployersImported)
    _merge(session, RegistryEmployer, "employer_id",
           [{"employer_id": i.employer_id, **{f: getattr(i, f) for f in _EMPLOYER_FIELDS}, "status": "active"}
            for i in e.employers], envelope)


def on_employer_updated(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, EmployerUpdated)
    row = _known(session, RegistryEmployer, e.employer_id, "employer")
    if not _fresh(row, envelope):
        return
    for field in ("name", "region", "unit_type", "industry_risk_class"):
        if field in e.changes:
            setattr(row, field, e.changes[field][1])
    row.source_event_id = envelope.id
    session.add(row)


def on_employer_status_changed(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, EmployerStatusChanged)
    row = _known(session, RegistryEmployer, e.employer_id, "employer")
    if _fresh(row, envelope):
        row.status, row.source_event_id = e.status, envelope.id
        session.add(row)


# -- persons ---------------------------------------------------------------------------------------------------------


def on_person_registered(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, PersonRegistered)
    _merge(session, RegistryPerson, "person_id",
           [{"person_id": e.person_id, "citizen_id": e.citizen_id, "name": e.name}], envelope)


def on_persons_imported(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, PersonsImported)
    _merge(session, RegistryPerson, "person_id",
           [{"person_id": p.person_id, "citizen_id": p.citizen_id, "name": p.name} for p in e.persons], envelope)


def on_person_updated(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, PersonUpdated)
    row = _known(session, RegistryPerson, e.person_id, "person")
    if _fresh(row, envelope):
        if "name" in e.changes:
            row.name = e.changes["name"][1]
        row.source_event_id = envelope.id
        session.add(row)


def on_person_life_status_changed(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, PersonLifeStatusChanged)
    row = _known(session, RegistryPerson, e.person_id, "person")
    if _fresh(row, envelope):
        row.life_status, row.source_event_id = e.life_status, envelope.id
        session.add(row)


# -- enrolments ------------------------------------------------------------------------------------------------------


def on_enrolment_opened(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, EnrolmentOpened)
    _merge(session, RegistryEnrolment, "enrolment_id",
           [{"enrolment_id": e.enrolment_id, "person_id": e.person_id, "fund": e.fund, "employer_id": e.employer_id,
             "start_period": e.start_period, "end_period": None, "status": "active"}], envelope)


def on_enrolments_imported(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, EnrolmentsImported)
    _merge(session, RegistryEnrolment, "enrolment_id",
           [{"enrolment_id": i.enrolment_id, "person_id": i.person_id, "fund": i.fund, "employer_id": i.employer_id,
             "start_period": i.start_period, "end_period": i.end_period, "status": i.status}
            for i in e.enrolments], envelope)


def on_enrolment_transferred(session: Session, envelope: EventEnvelope) -> None:
    """The old enrolment stops on ``closed_period``; the new one, with the new employer, opens on ``start_period``."""
    e = _payload(envelope, EnrolmentTransferred)
    old = _known(session, RegistryEnrolment, e.from_enrolment_id, "enrolment")
    if _fresh(old, envelope):
        old.status, old.end_period, old.source_event_id = "stopped", e.closed_period, envelope.id
        session.add(old)
    _merge(session, RegistryEnrolment, "enrolment_id",
           [{"enrolment_id": e.to_enrolment_id, "person_id": e.person_id, "fund": e.fund,
             "employer_id": e.to_employer_id, "start_period": e.start_period, "end_period": None,
             "status": "active"}], envelope)


def _set_enrolment(session: Session, envelope: EventEnvelope, enrolment_id: str, **values: Any) -> None:
    row = _known(session, RegistryEnrolment, enrolment_id, "enrolment")
    if _fresh(row, envelope):
        for field, value in values.items():
            setattr(row, field, value)
        row.source_event_id = envelope.id
        session.add(row)


def on_enrolment_suspended(session: Session, envelope: EventEnvelope) -> None:
    _set_enrolment(session, envelope, _payload(envelope, EnrolmentSuspended).enrolment_id, status="suspended")


def on_enrolment_resumed(session: Session, envelope: EventEnvelope) -> None:
    _set_enrolment(session, envelope, _payload(envelope, EnrolmentResumed).enrolment_id, status="active")


def on_enrolment_stopped(session: Session, envelope: EventEnvelope) -> None:
    e = _payload(envelope, EnrolmentStopped)
    _set_enrolment(session, envelope, e.enrolment_id, status="stopped", end_period=e.end_period)


# -- the consumer ----------------------------------------------------------------------------------------------------

HANDLERS: dict[str, Callable[[Session, EventEnvelope], None]] = {
    EmployerRegistered.event_type: on_employer_registered,
    EmployersImported.event_type: on_employers_imported,
    EmployerUpdated.event_type: on_employer_updated,
    EmployerStatusChanged.event_type: on_employer_status_changed,
    PersonRegistered.event_type: on_person_registered,
    PersonsImported.event_type: on_persons_imported,
    PersonUpdated.event_type: on_person_updated,
    PersonLifeStatusChanged.event_type: on_person_life_status_changed,
    EnrolmentOpened.event_type: on_enrolment_opened,
    EnrolmentsImported.event_type: on_enrolments_imported,
    EnrolmentTransferred.event_type: on_enrolment_transferred,
    EnrolmentSuspended.event_type: on_enrolment_suspended,
    EnrolmentResumed.event_type: on_enrolment_resumed,
    EnrolmentStopped.event_type: on_enrolment_stopped,
}


def _types(*names: str) -> frozenset[str]:
    return frozenset(getattr(accounts_events, n).event_type for n in names)


# What collection does not need from ACCOUNTS: payment accounts and cards (benefits pay out, collection does not),
# duplicate-enrolment findings (oversight's S03), individual-account postings and the agency's posting of collected
# lines (the AGENCY leg is reconciled by oversight, not here), the agency's internal control (reported to oversight).
IGNORED: frozenset[str] = _types(
    "PersonBankAccountAdded", "PersonBankAccountClosed", "DuplicateEnrolmentFound", "AccountCredited", "AccountsCredited",
    "AccountDebited", "ContributionsPosted", "ContributionsPostedV1", "ContributionsHeld",
    "InternalControlNonconformity", "InternalControlReportSubmitted",
)


# The server delivers only the registry's families (employers, persons, enrolments, singly or imported): the bulk
# families collection ignores (credits to individual accounts, posted and held contributions: one event per 1 000
# lines of every tax batch it posted itself) never reach it, so they cost collection nothing per line. A type of
# these families that collection neither handles nor ignores is still dead-lettered.
SUBJECTS = frozenset({"accounts.employer.>", "accounts.employers.>", "accounts.person.>", "accounts.persons.>",
                      "accounts.enrolment.>", "accounts.enrolments.>"})

ACCOUNTS_CONSUMER = ConsumerSpec(stream="ACCOUNTS", handlers=HANDLERS, ignores=IGNORED, subjects=SUBJECTS)
