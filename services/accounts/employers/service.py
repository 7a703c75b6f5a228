"""Employer registration: the business rules, independent of HTTP."""

from datetime import UTC, datetime

from sqlalchemy import select
from sqlmodel import Session

from services.accounts.employers.schemas import EmployerRegistration
from services.accounts.events import EmployerRegistered
from services.accounts.models import Employer
from services.kernel import context
from services.kernel.audit import append_audit
from services.kernel.auth import ensure_in_region, region_prefix
from services.kernel.errors import Conflict, NotFound
from services.kernel.events import new_event_id
from services.kernel.outbox import record_event

SOURCE = "accounts"


def register_employer(session: Session, registration: EmployerRegistration) -> Employer:
    """Register an employer: the row, its audit entry and its event commit together or not at all."""
    ensure_in_region(context.current().actor, registration.region)
    name = registration.name.strip()
    existing = session.execute(select(Employer).where(Employer.uscc == registration.uscc)).scalar_one_or_none()
    if existing is not None:
        raise Conflict("EMPLOYER_ALREADY_REGISTERED", f"统一社会信用代码 {registration.uscc} 已登记（单位编号 {existing.id}）")
    employer = Employer(
        id=new_event_id(),
        uscc=registration.uscc,
        name=name,
        region=registration.region,
        status="active",
        registered_at=datetime.now(UTC),
        registered_by=context.current().actor.id,
    )
    session.add(employer)
    append_audit(session, action="employer.register", entity_type="employer", entity_id=employer.id,
                 detail={"uscc": employer.uscc, "name": employer.name, "region": employer.region})
    record_event(
        session,
        EmployerRegistered(employer_id=employer.id, uscc=employer.uscc, name=employer.name, region=employer.region,
                           registered_at=employer.registered_at, unit_type=employer.unit_type,
                           industry_risk_class=employer.industry_risk_class),
        source=SOURCE,
        subject=employer.id,
    )
    session.commit()
    return employer


def get_employer(session: Session, employer_id: str) -> Employer:
    employer = session.get(Employer, employer_id)
    if employer is None:
        raise NotFound("EMPLOYER_NOT_FOUND", "用人单位不存在")
    ensure_in_region(context.current().actor, employer.region)
    return employer


def list_employers(
    session: Session, *, uscc: str | None = None, name: str | None = None, after: str | None = None, limit: int = 50
) -> tuple[list[Employer], str | None]:
    # Staff see the employers of their own area only.
    query = (
        select(Employer)
        .where(Employer.region.startswith(region_prefix(context.current().actor.region or "-")))
        .order_by(Employer.id)
        .limit(limit + 1)
    )
    if uscc:
        query = query.where(Employer.uscc == uscc.strip().upper())
    if name:
        query = query.where(Employer.name.contains(name.strip()))
    if after:
        query = query.where(Employer.id > after)
    rows = list(session.execute(query).scalars())
    next_cursor = rows[limit - 1].id if len(rows) > limit else None
    return rows[:limit], next_cursor
