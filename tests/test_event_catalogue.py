"""The event catalogue: every published type is well named and on a stream; every consumer covers its stream; the
contracts are strict for producers and lenient for consumers; every type matches its committed schema snapshot;
docs/events.md is current."""

import asyncio
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlmodel import Session

from services.collection.models import RegistryPerson
from services.contracts import accounts as acc
from services.contracts import snapshots
from services.contracts.codes import Fund
from services.kernel.events import EVENT_TYPES, STREAMS, EventActor, EventEnvelope, build_envelope, stream_for
from services.kernel.service_app import merge_consumer_specs
from services.kernel.settings import SERVICES
from sifund import event_catalogue
from sifund import services as catalogue


def service_event_types() -> dict[str, type]:
    for name in SERVICES:
        catalogue.spec(name)  # importing the app imports its contract modules
    return {t: cls for t, cls in EVENT_TYPES.items() if cls.__module__.startswith("services.contracts.")}


def test_every_service_event_type_is_a_contract_named_and_streamed():
    types = service_event_types()
    assert "accounts.employer.registered.v1" in types
    assert not {t for t, cls in EVENT_TYPES.items() if cls.__module__.startswith("services.")} - set(types), \
        "an event payload declared outside services/contracts"
    for event_type in types:
        service, entity, verb, version = event_type.split(".")
        assert service in {p for p in STREAMS.values()}
        assert version.startswith("v") and entity and verb
        assert stream_for(event_type) in STREAMS


def test_every_consumer_handles_or_ignores_every_type_on_its_stream():
    types = service_event_types()
    for name in SERVICES:
        for consumer in merge_consumer_specs(catalogue.spec(name).consumers):
            on_stream = {t for t in types if stream_for(t) == consumer.stream}
            covered = set(consumer.handlers) | set(consumer.ignores)
            assert on_stream <= covered, f"{name}-{consumer.stream} neither handles nor ignores {on_stream - covered}"
            assert set(consumer.handlers) <= on_stream, "a handler for a type that does not exist"


def matches(subject: str, pattern: str) -> bool:
    """NATS subject matching: ``*`` is one token, ``>`` the rest (one token or more)."""
    tokens, wanted = subject.split("."), pattern.split(".")
    for i, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > i
        if i >= len(tokens) or token not in ("*", tokens[i]):
            return False
    return len(tokens) == len(wanted)


def test_subject_filters_deliver_every_handled_type_and_hold_back_only_ignored_ones():
    types = service_event_types()
    filtered = 0
    for name in SERVICES:
        for consumer in merge_consumer_specs(catalogue.spec(name).consumers):
            if not consumer.subjects:
                continue
            filtered += 1
            delivered = {t for t in types if any(matches(t, p) for p in consumer.subjects)}
            on_stream = {t for t in types if stream_for(t) == consumer.stream}
            assert set(consumer.handlers) <= delivered, f"{name}-{consumer.stream}: a handled type is filtered out"
            assert on_stream - delivered <= consumer.ignores, f"{name}-{consumer.stream}: a type filtered out unread"
    assert filtered >= 3  # accounts COLLECTION, benefits ACCOUNTS and COLLECTION


def test_subject_matching():
    assert matches("accounts.person.registered.v1", "accounts.person.>")
    assert not matches("accounts.persons.imported.v1", "accounts.person.>")
    assert matches("accounts.persons.imported.v1", "accounts.*.imported.v1")
    assert not matches("accounts.person", "accounts.person.>")


def employer_registered(**extra) -> acc.EmployerRegistered:  # noqa: ANN003
    return acc.EmployerRegistered(employer_id="e1", uscc="91110000600037341L", name="某公司", region="150102",
                                  registered_at=datetime(2026, 1, 1, tzinfo=UTC), **extra)


def envelope_of(payload) -> EventEnvelope:  # noqa: ANN001
    return build_envelope(payload, source="accounts", subject="s", actor=EventActor(id="u1", role="agency_clerk"),
                          correlation_id="req-9", causation_id=None)


def test_envelope_round_trips_and_payload_is_typed():
    payload = employer_registered()
    envelope = envelope_of(payload)
    again = EventEnvelope.from_bytes(envelope.to_bytes())
    assert again == envelope
    assert again.payload() == payload
    assert len(envelope.id) == 36 and envelope.id[14] == "7"  # UUIDv7


def test_producers_are_strict_an_unknown_field_fails_where_the_payload_is_built():
    with pytest.raises(ValidationError, match="extra_forbidden|Extra inputs"):
        employer_registered(nickname="x")
    with pytest.raises(ValidationError, match="Extra inputs"):  # a line model too
        acc.PostedLine(payment_id="p", person_id=None, employer_id="e", fund="PEN_EMP", period=202401,
                       employer_fen=1, individual_fen=0, credited_fen=0, entry_id=None, note="x")
    with pytest.raises(ValidationError, match="PEN_EMP"):  # a fund code outside the enum
        acc.EnrolmentResumed(enrolment_id="n", person_id="p", fund="MEDICAL")


def test_consumers_are_lenient_unknown_fields_at_any_depth_are_dropped():
    envelope = envelope_of(acc.PersonsImported(import_job_id="j", persons=[acc.ImportedPerson(
        person_id="p", citizen_id="x", name="n", sex="M", birth_date=date(1980, 1, 1), region="150102",
        household_type="urban")]))
    newer = envelope.model_copy(update={"data": {**envelope.data, "added_in_v1_1": True,
                                                 "persons": [{**envelope.data["persons"][0], "phone": "1"}]}})
    payload = newer.payload()
    assert payload == envelope.payload()
    assert not hasattr(payload, "added_in_v1_1")
    received = EventEnvelope.from_bytes(newer.to_bytes())
    assert received.payload().persons[0].person_id == "p"


def test_fund_codes_keep_their_wire_values():
    payload = acc.EnrolmentResumed(enrolment_id="n", person_id="p", fund="PEN_EMP")
    assert payload.fund is Fund.PEN_EMP and payload.fund == "PEN_EMP"
    assert envelope_of(payload).data["fund"] == "PEN_EMP"
    assert [f.value for f in Fund] == ["PEN_EMP", "PEN_GOV", "PEN_RES", "UNEMP", "INJURY"]


async def test_a_real_consumer_applies_an_event_carrying_fields_it_does_not_know(start_service):
    """Rolling deploy: accounts already publishes a field collection does not know yet. Collection's registry
    consumer applies the event (unknown fields dropped, at the top and in the lines), nothing is dead-lettered."""
    from tests.support.registry import engine_of  # noqa: PLC0415

    async with start_service("collection") as collection:
        envelope = envelope_of(acc.PersonsImported(import_job_id="j", persons=[acc.ImportedPerson(
            person_id="p-new", citizen_id="150102198001010011", name="新字段", sex="M", birth_date=date(1980, 1, 1),
            region="150102", household_type="urban")]))
        envelope.data["source_system"] = "v2-importer"
        envelope.data["persons"][0]["nationality"] = "CN"
        bus = collection.app.state.bus
        assert await bus.wait_ready(timeout=10)
        await bus.js.publish(envelope.type, envelope.to_bytes(), headers={"Nats-Msg-Id": envelope.id})

        def mirrored() -> list:
            with Session(engine_of(collection)) as session:
                return list(session.execute(select(RegistryPerson).where(RegistryPerson.person_id == "p-new"))
                            .scalars())

        deadline = asyncio.get_running_loop().time() + 30
        while not mirrored():
            assert asyncio.get_running_loop().time() < deadline, "the event was not applied"
            await asyncio.sleep(0.05)
        assert mirrored()[0].name == "新字段"
        consumer = collection.app.state.consumers["ACCOUNTS"]
        assert consumer.dead_lettered_total == 0


def test_every_event_type_matches_its_committed_schema_snapshot():
    report = snapshots.check()
    assert report.ok, report.explain()


def test_docs_events_md_is_current():
    assert event_catalogue.DOCS_FILE.exists(), f"docs/events.md is missing: run `{event_catalogue.COMMAND}`"
    assert event_catalogue.DOCS_FILE.read_text(encoding="utf-8") == event_catalogue.render(), \
        f"docs/events.md is not current: run `{event_catalogue.COMMAND}` and commit it"


def test_the_catalogue_reads_producers_consumers_and_clauses_from_the_code():
    by_type = {e.type: e for e in event_catalogue.entries()}
    assert set(by_type) == set(service_event_types())
    posted = by_type["accounts.contributions.posted.v1"]
    assert posted.producer == "accounts" and posted.stream == "ACCOUNTS"
    assert "oversight.ledger" in posted.consumers  # from oversight's LEDGER_ACCOUNTS_CONSUMER
    assert by_type["exchange.person.died.v1"].producer == "accounts"
    assert "benefits.registry" in by_type["exchange.person.died.v1"].consumers
    assert by_type["benefits.recovery.escalated.v1"].clauses == ("001 第二十九条(五)",)
    assert by_type["benefits.entitlement.ended.v1"].consumers == ()
    # every type some service handles is in the catalogue with that service among its consumers
    for event_type, packages in event_catalogue.consumers_by_type().items():
        assert set(by_type[event_type].consumers) == packages


def test_consumer_specs_of_one_stream_merge_into_one_consumer():
    from services.kernel.service_app import ConsumerSpec  # noqa: PLC0415

    calls = []
    a = ConsumerSpec(stream="ACCOUNTS", handlers={"accounts.x.done.v1": lambda s, e: calls.append("a")},
                     ignores=frozenset({"accounts.y.done.v1"}))
    b = ConsumerSpec(stream="ACCOUNTS", handlers={"accounts.x.done.v1": lambda s, e: calls.append("b"),
                                                  "accounts.y.done.v1": lambda s, e: calls.append("y")})
    [merged] = merge_consumer_specs([a, b])
    merged.handlers["accounts.x.done.v1"](None, None)
    assert calls == ["a", "b"]
    assert "accounts.y.done.v1" in merged.handlers and "accounts.y.done.v1" not in merged.ignores


def test_the_codes_are_declared_once_and_the_services_use_them():
    from services.accounts import models as accounts_models  # noqa: PLC0415
    from services.collection.arrears.parameters import DEFAULT_FUNDS  # noqa: PLC0415
    from services.collection.treasury.schemas import FUNDS as TREASURY_FUNDS  # noqa: PLC0415
    from services.contracts import codes  # noqa: PLC0415
    from services.oversight.cases import workflow  # noqa: PLC0415

    assert accounts_models.FUNDS == TREASURY_FUNDS == tuple(codes.Fund) and DEFAULT_FUNDS == frozenset(codes.Fund)
    assert typing_args(codes.FundCode) == tuple(f.value for f in codes.Fund)
    assert workflow.STATUSES == tuple(codes.CaseStatus) and workflow.SEVERITIES == tuple(codes.Severity)
    assert set(workflow.CLASSES) == set(codes.CaseClass)  # the six classes of 001 第二十九条


def typing_args(alias) -> tuple:  # noqa: ANN001
    import typing  # noqa: PLC0415

    return typing.get_args(alias)


def test_sifund_docs_events_writes_the_catalogue_and_checks_the_snapshots(tmp_path, monkeypatch):
    from typer.testing import CliRunner  # noqa: PLC0415

    from sifund.cli import app  # noqa: PLC0415

    target = tmp_path / "docs" / "events.md"
    monkeypatch.setattr(event_catalogue, "DOCS_FILE", target)
    result = CliRunner().invoke(app, ["docs", "events"])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == event_catalogue.render()
    assert "event types match their snapshots" in result.output
