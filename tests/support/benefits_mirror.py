"""Benefits' registry mirror written directly: persons, entitlements, payroll lines, and accounts/exchange events
applied as the consumer would."""

import asyncio
import json
from datetime import date, datetime

from sqlalchemy import select
from sqlmodel import Session

from services.contracts import accounts as ae
from services.benefits.models import (
    BeneficiaryPerson,
    Claim,
    Entitlement,
    PayrollLine,
    PayrollRun,
)
from services.benefits.registry import handlers
from services.kernel import clock
from services.kernel.events import EventActor, EventEnvelope, EventPayload, build_envelope, new_event_id
from services.kernel.models import OutboxMessage
from tests.support.exchange import citizen_id as make_citizen_id
from tests.support.registry import engine_of

REGION = "150102"  # 呼和浩特市新城区


BORN = date(1960, 3, 1)  # make_citizen_id's default birth date (serials below 1 000)


async def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):  # noqa: ANN001, ANN201
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


def rows(client, model, *where) -> list:  # noqa: ANN001
    with Session(engine_of(client), expire_on_commit=False) as session:
        return list(session.execute(select(model).where(*where)).scalars())


def get(client, model, key):  # noqa: ANN001, ANN201
    with Session(engine_of(client), expire_on_commit=False) as session:
        return session.get(model, key)


def events(client, event_type: str) -> list[dict]:  # noqa: ANN001
    with Session(engine_of(client)) as session:
        found = session.execute(select(OutboxMessage.envelope).where(OutboxMessage.event_type == event_type)
                                .order_by(OutboxMessage.seq)).scalars()
        return [json.loads(e)["data"] for e in found]


def add_person(client, serial: int, *, name: str | None = None, region: str = REGION, **life) -> str:  # noqa: ANN001
    """A person written straight into benefits' mirror (the mirror through events is tested below)."""
    born = BORN
    person = BeneficiaryPerson(person_id=new_event_id(), citizen_id=make_citizen_id(serial),
                               name=name or f"领取人{serial}", sex="M", birth_date=born, region=region,
                               source_event_id=new_event_id(), **life)
    with Session(engine_of(client), expire_on_commit=False) as session:
        session.add(person)
        session.commit()
    return person.person_id


def grant(client, person_id: str, *, kind: str = "basic_pension", fund: str = "PEN_EMP",  # noqa: ANN001
          monthly_fen: int = 300_000, created_at: datetime | None = None, status: str = "active",
          suspended_reason: str | None = None, one_off_fen: int | None = None) -> str:
    """An approved claim and its entitlement, as claims would write them."""
    now = clock.utc_now()
    claim = Claim(id=new_event_id(), person_id=person_id, kind=kind, fund=fund, importance="ordinary", region=REGION,
                  status="approved", effective_period=202001, monthly_amount_fen=monthly_fen,
                  one_off_amount_fen=one_off_fen, computation="{}", verification="{}", submitted_at=now,
                  submitted_by="test")
    entitlement = Entitlement(id=new_event_id(), claim_id=claim.id, person_id=person_id, kind=kind, fund=fund,
                              monthly_amount_fen=monthly_fen, start_period=202001, status=status,
                              suspended_reason=suspended_reason, suspended_at=now if status == "suspended" else None,
                              region=REGION, created_at=created_at or now)
    with Session(engine_of(client), expire_on_commit=False) as session:
        session.add(claim)
        session.flush()
        session.add(entitlement)
        session.commit()
    return entitlement.id


def payroll_line(client, entitlement_id: str, period: int, *, status: str = "paid",  # noqa: ANN001
                 amount_fen: int = 300_000) -> str:
    """A payroll line as payroll would write it (its run created on first use)."""
    with Session(engine_of(client), expire_on_commit=False) as session:
        entitlement = session.get(Entitlement, entitlement_id)
        run = session.execute(select(PayrollRun).where(PayrollRun.fund == entitlement.fund,
                                                       PayrollRun.period == period)).scalar_one_or_none()
        if run is None:
            run = PayrollRun(id=new_event_id(), fund=entitlement.fund, period=period, status="paid", lines=0,
                             total_fen=0, computed_at=clock.utc_now(), computed_by="test")
            session.add(run)
            session.flush()
        line = PayrollLine(id=new_event_id(), run_id=run.id, entitlement_id=entitlement_id,
                           person_id=entitlement.person_id, period=period, amount_fen=amount_fen, status=status)
        session.add(line)
        session.commit()
        return line.id


def envelope(payload: EventPayload, source: str = "accounts") -> EventEnvelope:
    return build_envelope(payload, source=source, subject="test", actor=EventActor(id="system", role="system"),
                          correlation_id=None, causation_id=None)


HANDLERS = {**handlers.ACCOUNTS_HANDLERS, **handlers.EXCHANGE_HANDLERS, **handlers.COLLECTION_HANDLERS}


def apply(client, *envelopes: EventEnvelope) -> None:  # noqa: ANN001
    """Apply events as the consumer would (each in the consumer's transaction)."""
    with Session(engine_of(client)) as session:
        for env in envelopes:
            HANDLERS[env.type](session, env)
        session.commit()


def life(person_id: str, status: str, previous: str = "alive", **dates) -> EventEnvelope:  # noqa: ANN003
    return envelope(ae.PersonLifeStatusChanged(person_id=person_id, citizen_id="x", life_status=status,
                                               previous_status=previous, source="exchange", source_ref="r", **dates))
