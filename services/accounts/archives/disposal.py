"""Disposal (鉴定销毁) of archive items past their retention: a proposal lists every expired item in a 销毁清册; the
items are destroyed only after two approvals by two different people, neither of them the proposer; the list and
its lines stay for good (《社会保险业务档案管理规定（试行）》: 销毁清册永久保存, destruction watched by at least two people).
An item is in at most one open list; a rejected list frees its items for a later proposal."""

import hashlib
from typing import Any

from sqlalchemy import delete, insert, select
from sqlmodel import Session

from services.accounts.archives import service
from services.accounts.archives.models import Disposal, DisposalLine, Dossier, DossierItem
from services.kernel import clock, context
from services.kernel.audit import append_audit, canonical_json
from services.kernel.errors import Conflict, Forbidden, NotFound
from services.kernel.events import new_event_id
from services.kernel.paging import newest_first

OPEN = ("proposed", "approved_once")
MAX_ITEMS = 10_000  # per list: one request's work; a larger backlog is proposed in several lists


# Read from the retention table when an item is shown, not stored with it: a seal or a 销毁清册 line must not change
# when the table's wording does.
DERIVED = ("item_label", "retention_basis")


def item_sha256(item: DossierItem) -> str:
    """The SHA-256 of an item's stored metadata: a package's ``items/*.json`` less what the retention table derives
    (``DERIVED``)."""
    view = {k: v for k, v in service.item_view(item).items() if k not in DERIVED}
    return hashlib.sha256(canonical_json(view).encode()).hexdigest()


def _in_open_lists(session: Session) -> Any:
    return select(DisposalLine.item_id).join(Disposal, Disposal.id == DisposalLine.disposal_id).where(
        Disposal.status.in_(OPEN))


def propose(session: Session, *, reason: str) -> Disposal:
    """A 销毁清册 of the items whose term ended before this year (China time), not already in an open list."""
    this_year = clock.china_today().year
    rows = session.execute(
        select(DossierItem, Dossier.registration_number).join(Dossier, Dossier.id == DossierItem.dossier_id)
        .where(DossierItem.expires_after_year.is_not(None), DossierItem.expires_after_year < this_year,
               DossierItem.id.not_in(_in_open_lists(session)))
        .order_by(DossierItem.dossier_id, DossierItem.serial).limit(MAX_ITEMS)).all()
    if not rows:
        raise Conflict("NOTHING_TO_DISPOSE", f"没有保管期限已满（{this_year} 年前到期）且未列入待批销毁清册的档案")
    actor = context.current().actor
    disposal = Disposal(id=new_event_id(), status="proposed", expired_before_year=this_year, item_count=len(rows),
                        reason=reason, proposed_at=clock.utc_now(), proposed_by=actor.id)
    session.add(disposal)
    session.flush()
    session.execute(insert(DisposalLine.__table__), [{
        "disposal_id": disposal.id, "item_id": item.id, "dossier_id": item.dossier_id, "source": item.source,
        "act_id": item.act_id,
        "registration_number": number, "serial": item.serial, "year": item.year, "item_type": item.item_type,
        "title": item.title, "retention_class": item.retention_class, "retention_years": item.retention_years,
        "expires_after_year": item.expires_after_year, "item_sha256": item_sha256(item),
        "supplement": item.supplement} for item, number in rows])
    append_audit(session, action="archive.disposal.propose", entity_type="archive_disposal", entity_id=disposal.id,
                 detail={"items": len(rows), "expired_before_year": this_year}, reason=reason)
    return disposal


def get(session: Session, disposal_id: str, *, lock: bool = False) -> Disposal:
    query = select(Disposal).where(Disposal.id == disposal_id)
    disposal = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
    if disposal is None:
        raise NotFound("DISPOSAL_NOT_FOUND", f"销毁清册 {disposal_id} 不存在")
    return disposal


def approve(session: Session, disposal_id: str, *, reason: str) -> Disposal:
    """The first approval marks the list; the second, by someone else, destroys the items."""
    disposal = get(session, disposal_id, lock=True)
    actor = context.actor_id()
    if disposal.status not in OPEN:
        raise Conflict("DISPOSAL_NOT_OPEN", f"销毁清册状态为 {disposal.status}，不能审批")
    if actor == disposal.proposed_by:
        raise Forbidden("SAME_PERSON_CANNOT_APPROVE", "提出销毁的人不能审批本销毁清册")
    if actor == disposal.first_approved_by:
        raise Forbidden("SAME_PERSON_TWO_APPROVALS", "销毁须经两名不同的人审批，本人已审批过本清册")
    now = clock.utc_now()
    if disposal.status == "proposed":
        disposal.status, disposal.first_approved_by, disposal.first_approved_at = "approved_once", actor, now
        append_audit(session, action="archive.disposal.approve", entity_type="archive_disposal",
                     entity_id=disposal.id, detail={"approval": 1}, reason=reason)
        return disposal
    disposal.status, disposal.second_approved_by, disposal.second_approved_at = "destroyed", actor, now
    disposal.destroyed_at = now
    destroyed = session.execute(delete(DossierItem).where(DossierItem.id.in_(
        select(DisposalLine.item_id).where(DisposalLine.disposal_id == disposal.id)))).rowcount
    append_audit(session, action="archive.disposal.destroy", entity_type="archive_disposal", entity_id=disposal.id,
                 detail={"approval": 2, "items": destroyed, "first_approved_by": disposal.first_approved_by},
                 reason=reason)
    return disposal


def reject(session: Session, disposal_id: str, *, reason: str) -> Disposal:
    disposal = get(session, disposal_id, lock=True)
    if disposal.status not in OPEN:
        raise Conflict("DISPOSAL_NOT_OPEN", f"销毁清册状态为 {disposal.status}，不能驳回")
    disposal.status, disposal.rejected_by, disposal.rejected_at = "rejected", context.actor_id(), clock.utc_now()
    disposal.rejection_reason = reason
    append_audit(session, action="archive.disposal.reject", entity_type="archive_disposal", entity_id=disposal.id,
                 reason=reason)
    return disposal


def list_disposals(session: Session, *, after: str | None, limit: int) -> tuple[list[Disposal], str | None]:
    return newest_first(session, select(Disposal), Disposal.id, after=after, limit=limit)


def lines_of(session: Session, disposal_id: str) -> list[DisposalLine]:
    return list(session.execute(select(DisposalLine).where(DisposalLine.disposal_id == disposal_id)
                                .order_by(DisposalLine.id)).scalars())
