"""An old event (v1 of a bulk line event: lines as objects), still in a stream or replayed by a rebuild, builds the
same ledger as its v2 (lines as arrays, docs/events.md): every consumer registers one handler for both versions."""

from datetime import date, datetime

from sqlalchemy import delete, select
from sqlmodel import Session

from services.contracts import accounts as acc
from services.contracts import collection as col
from services.kernel.events import EVENT_TYPES, EventPayload
from services.oversight.ledger.handlers import LEDGER_HANDLERS
from services.oversight.ledger.models import LEDGER_TABLES
from tests.support.oversight import MED, PEN, Feed, assessment, collected, posted, superseded
from tests.support.oversight import engine  # noqa: F401 - fixture


def as_v1(payload: EventPayload) -> EventPayload:
    return EVENT_TYPES[payload.versions()[-1]].model_validate(payload.model_dump())


def ledger(engine) -> dict[str, list]:  # noqa: ANN001
    """Every ledger row, without when and from which envelope it was applied."""
    with Session(engine) as session:
        return {table.__tablename__: sorted(
            (tuple((k, v) for k, v in row.model_dump().items()
                   if not isinstance(v, datetime) and not k.endswith("event_id"))
             for row in session.execute(select(table)).scalars()), key=repr) for table in LEDGER_TABLES}


def test_v1_and_v2_of_the_line_events_build_the_same_ledger(engine):  # noqa: F811
    lines = [(PEN if i % 2 else MED, 202401, f"e{i % 3}", 1000 + i, 400, i % 2) for i in range(20)]
    payloads = [
        assessment("a1", "e1", 202401, (PEN, 1600, 800), (MED, 800, 200)),
        superseded("a1", "a2", "e1", 202401),
        assessment("a2", "e1", 202401, (PEN, 1700, 850), supersedes="a1"),
        collected(*lines, paid=date(2024, 2, 10)),
        posted(*[line[:5] for line in lines[:12]]),
    ]
    assert [p.event_type.rsplit(".", 1)[1] for p in payloads] == ["v2", "v1", "v2", "v2", "v2"]
    old = [as_v1(p) for p in payloads]
    assert [p.event_type.rsplit(".", 1)[1] for p in old] == ["v1"] * 5
    for family in (col.AssessmentIssued, col.PaymentsCollected, acc.ContributionsPosted):
        assert len(family.versions()) == 2 and len({LEDGER_HANDLERS[t] for t in family.versions()}) == 1
    feed = Feed(engine)
    feed(*payloads)
    built = ledger(engine)
    assert built["ledger_fund_period"] and built["ledger_employer_period"] and built["ledger_assessment"]
    with Session(engine) as session:
        for table in LEDGER_TABLES:
            session.execute(delete(table))
        session.commit()
    feed(*old)
    assert ledger(engine) == built
