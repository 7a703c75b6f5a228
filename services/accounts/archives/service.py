"""Reading the electronic archive: dossiers found by registration number, name or region, a dossier's items in
filing order, and the access register (利用登记) every read and export writes to."""

import json
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from services.accounts.archives.models import Dossier, DossierAccess, DossierItem
from services.accounts.archives.retention import retention_of
from services.kernel import clock, context
from services.kernel.auth import ensure_in_region, region_filter
from services.kernel.errors import NotFound
from services.kernel.paging import newest_first, oldest_first
from services.kernel.pii import reveal_citizen_id


def search_dossiers(session: Session, *, subject_type: str | None, registration_number: str | None,
                    subject_id: str | None, name: str | None, after: str | None,
                    limit: int) -> tuple[list[Dossier], str | None]:
    query = select(Dossier)
    if subject_id:
        query = query.where(Dossier.subject_id == subject_id)
    if subject_type:
        query = query.where(Dossier.subject_type == subject_type)
    if registration_number:
        query = query.where(Dossier.registration_number == registration_number.strip().upper())
    if name:
        query = query.where(Dossier.name.startswith(name.strip(), autoescape=True))
    query = query.where(region_filter(Dossier.region))
    return oldest_first(session, query, Dossier.id, after=after, limit=limit)


def get_dossier(session: Session, dossier_id: str) -> Dossier:
    """The dossier, if the caller's region covers it (404 if unknown, 403 OUT_OF_REGION if elsewhere)."""
    dossier = session.get(Dossier, dossier_id)
    if dossier is None:
        raise NotFound("DOSSIER_NOT_FOUND", f"档案 {dossier_id} 不存在")
    ensure_in_region(context.current().actor, dossier.region or "")
    return dossier


def dossier_of(session: Session, subject_type: str, subject_id: str) -> Dossier:
    dossier = session.execute(select(Dossier).where(Dossier.subject_type == subject_type,
                                                    Dossier.subject_id == subject_id)).scalar_one_or_none()
    if dossier is None:
        raise NotFound("DOSSIER_NOT_FOUND", f"{subject_type} {subject_id} 尚无档案")
    ensure_in_region(context.current().actor, dossier.region or "")
    return dossier


def items_of(session: Session, dossier_id: str, *, after: int | None, limit: int,
             year: int | None = None) -> tuple[list[DossierItem], int | None]:
    query = select(DossierItem).where(DossierItem.dossier_id == dossier_id)
    if year is not None:
        query = query.where(DossierItem.year == year)
    return oldest_first(session, query, DossierItem.serial, after=after, limit=limit)


def all_items(session: Session, dossier_id: str) -> list[DossierItem]:
    return list(session.execute(select(DossierItem).where(DossierItem.dossier_id == dossier_id)
                                .order_by(DossierItem.serial)).scalars())


def record_access(session: Session, dossier: Dossier, *, action: str, purpose: str) -> None:
    """利用登记: who, when, what (the dossier and the action) and why."""
    ctx = context.current()
    session.add(DossierAccess(dossier_id=dossier.id, accessed_at=clock.utc_now(), actor_id=ctx.actor.id,
                              actor_role=ctx.actor.role, action=action, purpose=purpose,
                              request_id=ctx.request_id))


def access_register(session: Session, *, dossier_id: str | None, actor_id: str | None, after: int | None,
                    limit: int) -> tuple[list[DossierAccess], int | None]:
    query = select(DossierAccess)
    if dossier_id:
        query = query.where(DossierAccess.dossier_id == dossier_id)
    if actor_id:
        query = query.where(DossierAccess.actor_id == actor_id)
    return newest_first(session, query, DossierAccess.id, after=after, limit=limit)


def dossier_view(dossier: Dossier) -> dict[str, Any]:
    """A dossier as the API shows it: a person's citizen id masked unless the reader's role needs it."""
    number = dossier.registration_number
    if number and dossier.subject_type == "person":
        number = reveal_citizen_id(number)
    return {"id": dossier.id, "subject_type": dossier.subject_type, "subject_id": dossier.subject_id,
            "registration_number": number, "name": dossier.name, "region": dossier.region,
            "opened_at": dossier.opened_at, "item_count": dossier.item_count, "last_filed_at": dossier.last_filed_at}


def item_view(item: DossierItem) -> dict[str, Any]:
    references = json.loads(item.references)
    retention = retention_of(item.item_type, references)
    return {"id": item.id, "serial": item.serial, "year": item.year, "source": item.source,
            "item_type": item.item_type, "item_label": retention.label, "act_id": item.act_id, "title": item.title,
            "decision": item.decision, "decided_by": item.decided_by, "decided_role": item.decided_role,
            "level": item.level, "references": references, "audit_seq": item.audit_seq,
            "audit_hash": item.audit_hash, "retention_class": item.retention_class,
            "retention_years": item.retention_years, "retention_basis": retention.basis,
            "expires_after_year": item.expires_after_year, "occurred_at": item.occurred_at,
            "filed_at": item.filed_at}
