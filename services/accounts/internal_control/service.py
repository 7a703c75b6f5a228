"""Samples and findings of the agency's internal control (稽核内控).

An internal auditor draws a sample of a past month or quarter of the area's business (``sampling``), and records a
finding on each act drawn: conform, or not conform with the reason. The reviewer is never the one who decided the
act (岗位相互监督: 004 第6项 checks the others' work). A non-conformity goes to oversight
(``accounts.internal_control.nonconformity_found.v1``), which opens a case for it."""

import json
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.accounts.internal_control import risk, sampling
from services.accounts.internal_control.models import ControlSample, SampledItem
from services.contracts.accounts import InternalControlNonconformity
from services.kernel import clock, context
from services.kernel.audit import append_audit, canonical_json
from services.kernel.auth import ensure_in_region, region_filter
from services.kernel.db import snapshot_session, unit_of_work
from services.kernel.errors import Conflict, Forbidden, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.outbox import record_event
from services.kernel.paging import newest_first

SOURCE = "accounts"
CONFORM, NOT_CONFORM = "conform", "not_conform"


def auditor_region() -> str:
    """The area an internal auditor checks: their own (a city auditor's covers its districts)."""
    actor = context.current().actor
    if not actor.region:
        raise Forbidden("OUT_OF_REGION", "本人未设行政区划，不能抽查业务")
    return actor.region


def check_drawable(session: Session, *, kind: str, period_label: str) -> None:
    """What refuses a draw at once, before a job is queued: a malformed or unended period, one already drawn."""
    period = sampling.period_of(kind, period_label)
    if session.execute(select(ControlSample.id).where(
            ControlSample.kind == kind, ControlSample.period == period.label,
            ControlSample.region == auditor_region())).first() is not None:
        raise _already_drawn(period.label)


def _already_drawn(label: str) -> Conflict:
    return Conflict("CONTROL_SAMPLE_EXISTS", f"{label} 已抽样（本区划）：同一期间只抽一次，可按记录的种子复核")


def draw_sample(engine: Engine, *, kind: str, period_label: str, rate_percent: int, seed: int) -> ControlSample:
    """The draw reads the population in a snapshot (seconds for a city's month: no write lock held meanwhile),
    then the sample is stored in a short transaction of its own."""
    period = sampling.period_of(kind, period_label)
    region = auditor_region()
    weights = risk.current_weights()
    with snapshot_session(engine) as session:
        result = sampling.draw(session, period, region, seed=seed, rate_percent=rate_percent, weights=weights)
    with unit_of_work(engine) as session:
        sample = _store_sample(session, period, region, seed=seed, rate_percent=rate_percent, weights=weights,
                               result=result)
        session.expunge(sample)
    return sample


def _store_sample(session: Session, period: sampling.Period, region: str, *, seed: int, rate_percent: int,
                  weights: dict[str, int], result: sampling.Draw) -> ControlSample:
    kind = period.kind
    actor = context.current().actor
    sample = ControlSample(
        id=new_event_id(), kind=kind, period=period.label, year=period.year, first_day=period.first_day,
        last_day=period.last_day, region=region, seed=seed, rate_percent=rate_percent,
        weights=canonical_json(weights), population=result.population, population_sha256=result.population_sha256,
        size=len(result.drawn), drawn_at=clock.utc_now(), drawn_by=actor.id)
    try:
        with session.begin_nested():
            session.add(sample)
            session.flush()
    except IntegrityError:
        raise _already_drawn(period.label) from None
    session.add_all([SampledItem(
        id=new_event_id(), sample_id=sample.id, rank=rank, item_id=unit.item_id, dossier_id=unit.dossier_id,
        subject_type=unit.subject_type, subject_id=unit.subject_id, region=unit.region, source=unit.source,
        item_type=unit.item_type, act_id=unit.act_id, title=unit.title, decided_by=unit.decided_by,
        risk=unit.risk, weight=weight) for rank, (unit, weight) in enumerate(result.drawn, start=1)])
    append_audit(session, action="internal_control.sample.draw", entity_type="control_sample", entity_id=sample.id,
                 detail={"kind": kind, "period": period.label, "region": region, "seed": seed,
                         "rate_percent": rate_percent, "population": result.population,
                         "population_sha256": result.population_sha256, "size": sample.size})
    return sample


def get_sample(session: Session, sample_id: str) -> ControlSample:
    sample = session.get(ControlSample, sample_id)
    if sample is None:
        raise NotFound("CONTROL_SAMPLE_NOT_FOUND", f"抽样 {sample_id} 不存在")
    ensure_in_region(context.current().actor, sample.region)
    return sample


def list_samples(session: Session, *, year: int | None, after: str | None, limit: int) \
        -> tuple[list[ControlSample], str | None]:
    query = select(ControlSample).where(region_filter(ControlSample.region))
    if year is not None:
        query = query.where(ControlSample.year == year)
    return newest_first(session, query, ControlSample.id, after=after, limit=limit)


def items_of(session: Session, sample_id: str) -> list[SampledItem]:
    return list(session.execute(select(SampledItem).where(SampledItem.sample_id == sample_id)
                                .order_by(SampledItem.rank)).scalars())


def redraw(session: Session, sample_id: str) -> dict[str, Any]:
    """The draw made again from the recorded seed, rate and weights over the period's population as it is now."""
    sample = get_sample(session, sample_id)
    period = sampling.period_of(sample.kind, sample.period)
    result = sampling.draw(session, period, sample.region, seed=sample.seed, rate_percent=sample.rate_percent,
                           weights=json.loads(sample.weights))
    recorded = [item.item_id for item in items_of(session, sample.id)]
    again = [unit.item_id for unit, _ in result.drawn]
    return {"sample_id": sample.id, "seed": sample.seed, "population": result.population,
            "population_sha256": result.population_sha256,
            "population_unchanged": result.population_sha256 == sample.population_sha256,
            "identical": again == recorded, "drawn_item_ids": again}


def record_finding(session: Session, sample_id: str, sampled_id: str, *, finding: str,
                   reason: str | None) -> SampledItem:
    if finding == NOT_CONFORM and not reason:
        raise Invalid("CONTROL_REASON_REQUIRED", "核查结论为不符合时须说明原因")
    sample = get_sample(session, sample_id)
    item = session.get(SampledItem, sampled_id, with_for_update=True)
    if item is None or item.sample_id != sample.id:
        raise NotFound("CONTROL_ITEM_NOT_FOUND", f"抽样 {sample_id} 中无此业务 {sampled_id}")
    actor = context.current().actor
    if item.decided_by == actor.id:
        raise Forbidden("CONTROL_REVIEW_OWN_ACT", "不能核查本人经办的业务（岗位相互监督）")
    if item.finding is not None:
        raise Conflict("CONTROL_FINDING_RECORDED", f"该业务已有核查结论（{item.finding}，{item.reviewed_by}）")
    now = clock.utc_now()
    item.finding, item.reason, item.reviewed_by, item.reviewed_at = finding, reason, actor.id, now
    session.add(item)
    append_audit(session, action=f"internal_control.finding.{finding}", entity_type="control_sampled_item",
                 entity_id=item.id, detail={"sample_id": sample.id, "item_id": item.item_id, "act_id": item.act_id,
                                            "item_type": item.item_type, "risk": item.risk}, reason=reason)
    if finding == NOT_CONFORM:
        record_event(session, InternalControlNonconformity(
            finding_id=item.id, sample_id=sample.id, period=sample.period, item_type=item.item_type, risk=item.risk,
            act_id=item.act_id, source=item.source, subject_type=item.subject_type, subject_id=item.subject_id,
            region=item.region, decided_by=item.decided_by, reviewed_by=actor.id, reason=reason or "",
            found_at=now), source=SOURCE, subject=item.id)
    return item
