"""The producer serialises a payload once: the outbox row is exactly the envelope's JSON, its ``data`` exactly what a
consumer parses off the wire; and the strict check still runs in the producer, so a payload that is invalid by the
time it is recorded (a line changed after it was built, ``model_construct``) fails there and writes nothing."""

import json
from datetime import date

import pytest
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlmodel import Session

from services.contracts import accounts as acc
from services.kernel import context
from services.kernel.context import Actor
from services.kernel.db import unit_of_work
from services.kernel.events import EventEnvelope, PayloadFields
from services.kernel.models import OutboxMessage
from services.kernel.outbox import record_event, record_events
from tests.support.pipeline import migrated_engine


def posted(**changes) -> acc.PostedLine:  # noqa: ANN003
    return acc.PostedLine(**{"payment_id": "pay-1", "person_id": None, "employer_id": "emp-甲", "fund": "PEN_EMP",
                             "period": 202609, "employer_fen": 128_000, "individual_fen": 0, "credited_fen": 0,
                             "entry_id": None, **changes})


def stored(engine) -> dict[str, str]:  # noqa: ANN001
    with Session(engine) as session:
        return dict(session.execute(select(OutboxMessage.event_id, OutboxMessage.envelope)).all())


def test_the_outbox_row_is_the_envelope_json_and_data_is_the_wire(database_urls):
    engine = migrated_engine(database_urls["collection"])
    payloads = [
        acc.ContributionsPosted(source_batch_id='tb-"引号"\\\n', lines=[posted(), posted(person_id="per-1",
                                                                                       fund="UNEMP")]),
        acc.EnrolmentResumed(enrolment_id="en-1", person_id="per-1", fund="INJURY"),
        acc.PersonsImported(import_job_id="j", persons=[acc.ImportedPerson(
            person_id="p", citizen_id="x", name="张三", sex="M", birth_date=date(1980, 1, 1), region="150102",
            household_type="urban")]),
    ]
    with context.trace(actor=Actor(id="clerk-1", role="agency_clerk"), correlation_id="req-1"), \
            unit_of_work(engine) as session:
        envelopes = record_events(session, [(p, "s") for p in payloads], source="accounts")
    rows = stored(engine)
    for envelope, payload in zip(envelopes, payloads, strict=True):
        row = rows[envelope.id]
        assert row == envelope.model_dump_json() == envelope.to_bytes().decode()
        assert envelope.data == json.loads(payload.model_dump_json())
        received = EventEnvelope.from_bytes(row.encode())
        assert received == envelope and received.payload() == payload
        assert received.actor.id == "clerk-1" and received.correlation_id == "req-1"
    engine.dispose()


@pytest.mark.parametrize("invalid", ["line changed after it was built", "payload built without validation",
                                     "field changed past the frozen model"])
def test_a_payload_invalid_when_recorded_fails_in_the_producer_and_writes_nothing(database_urls, invalid):
    engine = migrated_engine(database_urls["collection"])
    if invalid == "line changed after it was built":
        line = acc.CompactPostedLine.model_validate(posted())  # v2's line (a PostedLine would be checked again)
        line.fund = "MEDICAL"  # not a fund code: a line model is not re-checked on assignment
        payload = acc.ContributionsPosted(source_batch_id="b", lines=[line])
    elif invalid == "payload built without validation":
        payload = acc.ContributionsPosted.model_construct(source_batch_id="b", lines=[{"payment_id": "p"}])
    else:
        payload = acc.EnrolmentResumed(enrolment_id="en-1", person_id="per-1", fund="PEN_EMP")
        object.__setattr__(payload, "person_id", 5)
    # The serialiser warns of the value it did not expect, then the strict check refuses it.
    with pytest.raises(ValidationError), pytest.warns(UserWarning, match="may not be as expected"), \
            unit_of_work(engine) as session:
        record_event(session, payload, source="accounts", subject="s")
    with Session(engine) as session:
        assert session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == 0
    engine.dispose()


def test_a_payload_given_as_fields_is_validated_once_and_written_as_the_built_payload(database_urls):
    engine = migrated_engine(database_urls["collection"])
    lines = [posted(employer_id='emp-"甲"\\\n'), posted(person_id="per-1", fund="UNEMP", entry_id="e-1")]
    fields = {"source_batch_id": "tb-1", "lines": [line.model_dump() for line in lines]}
    with context.trace(actor=Actor(id="clerk-1", role="agency_clerk"), correlation_id="req-1"), \
            unit_of_work(engine) as session:
        built, given = record_events(session, [(acc.ContributionsPosted(**fields), "s"),
                                               (PayloadFields(acc.ContributionsPosted, fields), "s")], source="accounts")
    rows = stored(engine)
    assert json.loads(rows[given.id])["data"] == json.loads(rows[built.id])["data"]
    assert rows[given.id].split('"data":')[1] == rows[built.id].split('"data":')[1]  # the same bytes
    assert rows[given.id] == given.model_dump_json() == given.to_bytes().decode()
    assert given.payload() == built.payload() == acc.ContributionsPosted(**fields) and given.data == built.data
    received = EventEnvelope.from_bytes(rows[given.id].encode())
    assert received == given and received.type == "accounts.contributions.posted.v2" and received.subject == "s"
    assert (received.actor.id, received.correlation_id) == ("clerk-1", "req-1")
    # An invalid field fails in the producer, and nothing is written.
    with pytest.raises(ValidationError), unit_of_work(engine) as session:
        record_events(session, [(PayloadFields(acc.ContributionsPosted, {**fields, "lines": [
            {**fields["lines"][0], "fund": "MEDICAL"}]}), "s")], source="accounts")
    assert len(stored(engine)) == 2
    engine.dispose()
