"""Dated documents per region, proposed by one person and approved or rejected by another (four eyes).

The mechanics behind collection's rates and bases and benefits' benefit parameters: each service owns its table,
its document schema, its wording, its roles and what an approval publishes; this module owns the lifecycle.

- ``propose``: a document for a region from ``valid_from`` on (409 ``PARAMETERS_ALREADY_APPROVED`` when that
  region and month already have an approved one: a change is proposed with a new first month);
- ``decide``: approve or reject a proposed document, never by its proposer (403 ``SAME_PERSON_CANNOT_APPROVE``),
  once (409 ``PARAMETERS_ALREADY_DECIDED``);
- ``in_force``: the approved document with the greatest ``valid_from`` ≤ the month, walking up the 行政区划 levels
  district → city → province and using the most specific one that has one (422 ``NO_PARAMETERS`` if none).

Every change writes its row and an audit-chain entry in one transaction (plus what ``on_approve`` adds, e.g. an
outbox event). ``dated_document_routes`` adds the API of one kind of document to a router.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, Protocol, TypeVar

from fastapi import APIRouter, Path, Query, status
from fastapi.params import Depends as DependsParam
from pydantic import BaseModel
from sqlalchemy import false, select
from sqlmodel import Session

from services.kernel import clock, context
from services.kernel.audit import append_audit, canonical_json
from services.kernel.auth import ensure_in_region, region_filter, region_levels
from services.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.paging import newest_first
from services.kernel.periods import Period, validate_period
from services.kernel.schemas import DatedDocumentProposal, Decision, RejectDecision
from services.kernel.service_app import SessionDep

Row = TypeVar("Row", bound=Any)  # a table model with the columns of ``DatedDocumentRow``
Doc = TypeVar("Doc", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)


class DatedDocumentRow(Protocol):
    """The columns a dated-document table has (``reason`` / ``decision_reason`` too if ``reasons_on_row``)."""

    id: str
    region: str
    valid_from: int  # YYYYMM
    document: str  # canonical JSON
    status: str  # proposed | approved | rejected
    proposed_at: datetime
    proposed_by: str
    decided_at: datetime | None
    decided_by: str | None



def ensure_other_person(proposed_by: str, what: str) -> None:
    """Four eyes: the person who proposed ``what`` (e.g. "参数") may neither approve nor reject it."""
    if proposed_by == context.actor_id():
        raise Forbidden("SAME_PERSON_CANNOT_APPROVE", f"提出人不能审批（或驳回）本人提出的{what}，须由另一人办理")


@dataclass(frozen=True)
class Wording:
    """How a service names its documents in messages (business wording; the codes are the same for all)."""

    subject: str  # "统筹区 150100 自 202601 起的{subject}已审批", e.g. "费率基数"
    document: str  # "{document}不存在", "没有适用于 202601 的已审批{document}", e.g. "费率基数方案"
    item: str  # "该{item}已审批，不能再次处理", e.g. "方案"
    four_eyes: str  # "提出人不能审批（或驳回）本人提出的{four_eyes}", e.g. "事项"


@dataclass(frozen=True)
class InForce(Generic[Doc]):
    """The approved document in force: its row id (recorded by what uses it) and the parsed document."""

    id: str
    region: str
    valid_from: int
    document: Doc


@dataclass(frozen=True)
class DatedDocuments(Generic[Row, Doc]):
    """The lifecycle of one kind of dated document, kept in ``model`` (a table with ``DatedDocumentRow``'s columns)
    and parsed with ``document``.

    ``entity`` is the audit entity type, ``action`` the audit action prefix (``<action>.propose`` / ``.approve`` /
    ``.reject``); ``reasons_on_row`` keeps the proposal's and the decision's reasons in the row's ``reason`` and
    ``decision_reason`` columns as well as in the audit chain; ``on_approve`` runs in the approving transaction.
    """

    model: type[Row]
    document: type[Doc]
    entity: str
    action: str
    wording: Wording
    reasons_on_row: bool = False
    on_approve: Callable[[Session, Row], None] | None = None

    def document_of(self, row: Row) -> Doc:
        return self.document.model_validate(json.loads(row.document))

    def _approved_exists(self, session: Session, region: str, valid_from: int, *,
                         exclude: str | None = None) -> str | None:
        m = self.model
        query = select(m.id).where(m.region == region, m.valid_from == valid_from, m.status == "approved")
        if exclude:
            query = query.where(m.id != exclude)
        return session.execute(query.limit(1)).scalar_one_or_none()

    def _already_approved(self, region: str, valid_from: int, existing: str, hint: str = "") -> Conflict:
        return Conflict("PARAMETERS_ALREADY_APPROVED",
                        f"统筹区 {region} 自 {valid_from} 起的{self.wording.subject}已审批（{existing}）{hint}")

    def propose(self, session: Session, proposal: DatedDocumentProposal) -> Row:
        ensure_in_region(context.current().actor, proposal.region)
        existing = self._approved_exists(session, proposal.region, proposal.valid_from)
        if existing:
            raise self._already_approved(proposal.region, proposal.valid_from, existing, "；调整请以新的起始月份提出")
        document = proposal.document.model_dump(mode="json")
        extra = {"reason": proposal.reason} if self.reasons_on_row else {}
        row = self.model(
            id=new_event_id(), region=proposal.region, valid_from=proposal.valid_from,
            document=canonical_json(document), status="proposed", proposed_at=clock.utc_now(),
            proposed_by=context.actor_id(), **extra,
        )
        session.add(row)
        append_audit(session, action=f"{self.action}.propose", entity_type=self.entity, entity_id=row.id,
                     detail={"region": row.region, "valid_from": row.valid_from, "document": document},
                     reason=proposal.reason)
        session.flush()
        return row

    def get(self, session: Session, document_id: str, *, for_update: bool = False) -> Row:
        query = select(self.model).where(self.model.id == document_id)
        if for_update:
            query = query.with_for_update()
        row = session.execute(query).scalar_one_or_none()
        if row is None:
            raise NotFound("PARAMETERS_NOT_FOUND", f"{self.wording.document}不存在")
        return row

    def decide(self, session: Session, document_id: str, *, approve: bool, reason: str | None) -> Row:
        row = self.get(session, document_id, for_update=True)
        ensure_in_region(context.current().actor, row.region)
        if row.status != "proposed":
            raise Conflict("PARAMETERS_ALREADY_DECIDED",
                           f"该{self.wording.item}已{'审批' if row.status == 'approved' else '驳回'}，不能再次处理")
        ensure_other_person(row.proposed_by, self.wording.four_eyes)
        if approve:
            existing = self._approved_exists(session, row.region, row.valid_from, exclude=row.id)
            if existing:
                raise self._already_approved(row.region, row.valid_from, existing)
        row.status = "approved" if approve else "rejected"
        row.decided_at, row.decided_by = clock.utc_now(), context.actor_id()
        if self.reasons_on_row:
            row.decision_reason = reason
        session.add(row)
        append_audit(session, action=f"{self.action}.{'approve' if approve else 'reject'}", entity_type=self.entity,
                     entity_id=row.id, reason=reason,
                     detail={"region": row.region, "valid_from": row.valid_from, "status": row.status})
        if approve and self.on_approve is not None:
            self.on_approve(session, row)
        session.flush()
        return row

    def list_page(self, session: Session, *, region: str | None = None, status: str | None = None,
                  after: str | None = None, limit: int = 50) -> tuple[list[Row], str | None]:
        """Documents of the caller's area (and of the levels above it, which apply to it), newest first by id."""
        m = self.model
        actor = context.current().actor
        above = m.region.in_(region_levels(actor.region)) if actor.region else false()
        query = select(m).where(region_filter(m.region, actor) | above)
        if region:
            query = query.where(m.region == region)
        if status:
            query = query.where(m.status == status)
        return newest_first(session, query, m.id, after=after, limit=limit)

    def in_force(self, session: Session, region: str, period: int) -> InForce[Doc]:
        """The approved document with the greatest ``valid_from`` ≤ ``period`` for ``region`` (walking up district →
        city → province); 422 NO_PARAMETERS if none applies."""
        m = self.model
        for level in region_levels(region):
            row = session.execute(
                select(m).where(m.region == level, m.status == "approved", m.valid_from <= period)
                .order_by(m.valid_from.desc(), m.decided_at.desc())
                .limit(1)
            ).scalar_one_or_none()
            if row is not None:
                return InForce(id=row.id, region=row.region, valid_from=row.valid_from, document=self.document_of(row))
        raise Invalid("NO_PARAMETERS", f"行政区划 {region} 没有适用于 {period} 的已审批{self.wording.document}")


# -- the API of one kind of document --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RouteTexts:
    """The OpenAPI summaries (and the proposal's description) of the routes, in the service's words."""

    propose: str
    propose_description: str
    listing: str
    effective: str
    one: str
    approve: str
    reject: str


def dated_document_routes(router: APIRouter, documents: DatedDocuments[Any, Any], *,
                          proposal_model: type[DatedDocumentProposal], out: Callable[[Any], Out],
                          out_model: type[Out], page_model: type[BaseModel], texts: RouteTexts,
                          proposers: DependsParam, approvers: DependsParam, readers: DependsParam) -> None:
    """Add ``POST ""`` (propose), ``GET ""`` (list), ``GET /effective/{region}/{period}``, ``GET /{parameters_id}``
    and ``POST /{parameters_id}/approve`` / ``reject`` to ``router``. Call it after the service's own routes, so
    that a fixed path (``/template``) is matched before ``/{parameters_id}``. ``out`` turns a row into ``out_model``;
    ``page_model`` has ``items`` and ``next_cursor``."""

    @router.post("", status_code=status.HTTP_201_CREATED, response_model=out_model, summary=texts.propose,
                 description=texts.propose_description, dependencies=[proposers])
    def propose_parameters(proposal: proposal_model, session: SessionDep) -> Any:  # type: ignore[valid-type]
        return out(documents.propose(session, proposal))

    @router.get("", response_model=page_model, summary=texts.listing, dependencies=[readers])
    def list_parameters(
        session: SessionDep,
        region: str | None = None,
        status_: Annotated[str | None, Query(alias="status", pattern="^(proposed|approved|rejected)$")] = None,
        after: str | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> Any:
        rows, next_cursor = documents.list_page(session, region=region, status=status_, after=after, limit=limit)
        return page_model(items=[out(r) for r in rows], next_cursor=next_cursor)

    @router.get("/effective/{region}/{period}", response_model=out_model, summary=texts.effective,
                dependencies=[readers])
    def effective_parameters(region: str, period: Annotated[Period, Path()], session: SessionDep) -> Any:
        try:
            validate_period(period)
        except ValueError as exc:  # PydanticCustomError is a ValueError
            raise Invalid("INVALID_PERIOD", str(exc)) from None
        found = documents.in_force(session, region, period)
        return out(documents.get(session, found.id))

    @router.get("/{parameters_id}", response_model=out_model, summary=texts.one, dependencies=[readers])
    def get_parameters(parameters_id: str, session: SessionDep) -> Any:
        return out(documents.get(session, parameters_id))

    @router.post("/{parameters_id}/approve", response_model=out_model, summary=texts.approve,
                 dependencies=[approvers])
    def approve_parameters(parameters_id: str, decision: Decision, session: SessionDep) -> Any:
        return out(documents.decide(session, parameters_id, approve=True, reason=decision.reason))

    @router.post("/{parameters_id}/reject", response_model=out_model, summary=texts.reject, dependencies=[approvers])
    def reject_parameters(parameters_id: str, decision: RejectDecision, session: SessionDep) -> Any:
        return out(documents.decide(session, parameters_id, approve=False, reason=decision.reason))
