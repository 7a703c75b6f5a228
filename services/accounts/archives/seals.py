"""The yearly archive run (electronic archives formed at year end): a past year is sealed once — for each dossier
with items of that year, the SHA-256 over its items' metadata hashes in 件号 order, and over those a root hash. An
act of a sealed year filed later is kept as a supplement (补充归档), outside the sealed manifest; a verification
recomputes every dossier-year and names the ones that no longer match (items destroyed by an approved disposal
count with the hash their 销毁清册 line kept)."""

import hashlib
from collections import defaultdict
from typing import Any

import anyio
from sqlalchemy import Engine, insert, select
from sqlmodel import Session

from services.accounts.archives.disposal import item_sha256
from services.accounts.archives.models import Disposal, DisposalLine, DossierItem, DossierYearSeal, YearSeal
from services.kernel import clock, context
from services.kernel.audit import append_audit
from services.kernel.db import unit_of_work
from services.kernel.errors import Conflict, Invalid, NotFound
from services.kernel.jobs import JobContext, JobKind


def sealed_years(session: Session, years: set[int]) -> set[int]:
    """Which of ``years`` are sealed. Only a past year can be: a filing of this year's acts (nearly all) asks
    nothing."""
    years = {year for year in years if year < clock.china_today().year}
    if not years:
        return set()
    return set(session.execute(select(YearSeal.year).where(YearSeal.year.in_(years))).scalars())


def _manifest(hashes: list[tuple[int, str]]) -> str:
    return hashlib.sha256("\n".join(f"{serial}:{digest}" for serial, digest in sorted(hashes)).encode()).hexdigest()


def _root(manifests: dict[str, str]) -> str:
    return hashlib.sha256("\n".join(f"{d}:{m}" for d, m in sorted(manifests.items())).encode()).hexdigest()


def _year_hashes(session: Session, year: int, *, destroyed: bool) -> dict[str, list[tuple[int, str]]]:
    """Per dossier, (件号, metadata hash) of the year's sealed items (supplements left out); with ``destroyed``
    also those an approved disposal destroyed since, with the hash their 销毁清册 line kept."""
    by_dossier: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for item in session.execute(select(DossierItem).where(DossierItem.year == year,
                                                           DossierItem.supplement.is_(False))).scalars():
        by_dossier[item.dossier_id].append((item.serial, item_sha256(item)))
    if destroyed:
        for dossier_id, serial, digest in session.execute(
                select(DisposalLine.dossier_id, DisposalLine.serial, DisposalLine.item_sha256)
                .join(Disposal, Disposal.id == DisposalLine.disposal_id)
                .where(Disposal.status == "destroyed", DisposalLine.year == year,
                       DisposalLine.supplement.is_(False))):
            by_dossier[dossier_id].append((serial, digest))
    return by_dossier


def check_sealable(session: Session, year: int) -> None:
    if year >= clock.china_today().year:
        raise Invalid("ARCHIVE_YEAR_NOT_ENDED", f"{year} 年尚未结束，年度电子档案在年终形成")
    if session.get(YearSeal, year) is not None:
        raise Conflict("ARCHIVE_YEAR_SEALED", f"{year} 年度档案已封存，不能再次封存")


def seal_year(session: Session, year: int) -> YearSeal:
    check_sealable(session, year)
    by_dossier = _year_hashes(session, year, destroyed=False)
    manifests = {dossier_id: _manifest(hashes) for dossier_id, hashes in by_dossier.items()}
    seal = YearSeal(year=year, sealed_at=clock.utc_now(), sealed_by=context.actor_id(),
                    dossiers=len(manifests), items=sum(len(h) for h in by_dossier.values()),
                    root_sha256=_root(manifests))
    session.add(seal)
    session.flush()
    if manifests:
        session.execute(insert(DossierYearSeal.__table__), [
            {"dossier_id": d, "year": year, "items": len(by_dossier[d]), "manifest_sha256": m}
            for d, m in manifests.items()])
    append_audit(session, action="archive.year.seal", entity_type="archive_year", entity_id=str(year),
                 detail={"dossiers": seal.dossiers, "items": seal.items, "root_sha256": seal.root_sha256})
    return seal


def get_seal(session: Session, year: int) -> YearSeal:
    seal = session.get(YearSeal, year)
    if seal is None:
        raise NotFound("ARCHIVE_YEAR_NOT_SEALED", f"{year} 年度档案尚未封存")
    return seal


def verify_year(session: Session, year: int) -> dict[str, Any]:
    seal = get_seal(session, year)
    sealed = {row.dossier_id: row.manifest_sha256 for row in session.execute(
        select(DossierYearSeal).where(DossierYearSeal.year == year)).scalars()}
    now = {d: _manifest(h) for d, h in _year_hashes(session, year, destroyed=True).items()}
    changed = sorted(d for d in sealed.keys() | now.keys() if sealed.get(d) != now.get(d))
    supplements = session.execute(select(DossierItem.dossier_id, DossierItem.serial).where(
        DossierItem.year == year, DossierItem.supplement.is_(True)).order_by(DossierItem.dossier_id,
                                                                                DossierItem.serial)).all()
    return {"year": year, "intact": not changed and _root(sealed) == seal.root_sha256, "changed_dossiers": changed,
            "supplements": [{"dossier_id": d, "serial": s} for d, s in supplements],
            "root_sha256": seal.root_sha256, "sealed_at": seal.sealed_at, "sealed_by": seal.sealed_by,
            "dossiers": seal.dossiers, "items": seal.items}


# -- as a background job: a city's year is millions of items, more than a request may take ----------------------------

def _seal(engine: Engine, year: int) -> dict[str, Any]:
    with unit_of_work(engine) as session:
        seal = seal_year(session, year)
        return {"year": seal.year, "dossiers": seal.dossiers, "items": seal.items, "root_sha256": seal.root_sha256}


async def _seal_step(ctx: JobContext) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(_seal, ctx.engine, int(ctx.params["year"]))


YEAR_SEAL = JobKind(name="accounts.archive_year_seal", submitters=frozenset({"agency_approver"}),
                    readers=frozenset({"agency_approver", "internal_auditor", "oversight_officer"}),
                    run_async=_seal_step)
