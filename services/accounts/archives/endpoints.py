"""The electronic archive (社会保险业务档案): dossiers per person and employer, their items, exports that verify on
their own, and the access register (利用登记)."""

from typing import Annotated, Any, Literal

import anyio

from fastapi import APIRouter, File, Path, Query, Request, UploadFile
from fastapi.responses import StreamingResponse

from services.accounts.archives import backfill, disposal, export, seals, service
from services.accounts.archives.schemas import (
    AccessOut,
    AccessPage,
    DisposalDecision,
    DisposalDetail,
    DisposalLineOut,
    DisposalOut,
    DisposalPage,
    DisposalProposal,
    DossierOut,
    DossierPage,
    ItemOut,
    ItemPage,
    PackageVerification,
    Purpose,
    YearSealOut,
    YearVerification,
)
from services.kernel.auth import allow
from services.kernel.db import snapshot_session
from services.kernel.errors import TooLarge
from services.kernel.jobs import JobKind, JobOut, accepted
from services.kernel.service_app import EngineDep, SessionDep, WriteSessionDep

# The agency's staff read dossiers (the citizen id masked as the API masks it for their role); the internal
# auditors also read who used them.
READERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "internal_auditor")
AUDITORS = allow("internal_auditor", "oversight_officer")
CHECKERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "internal_auditor", "oversight_officer")
MAX_PACKAGE_BYTES = 256 * 1024 * 1024
PURPOSE = Query(description="利用目的: why the dossier is read (kept in the access register)")

router = APIRouter(prefix="/archives", tags=["archives"])


async def _started(request: Request, kind: JobKind, **submission: Any) -> Any:
    """The job submitted (stored in a transaction of its own, in a worker thread) and answered 202 with its address."""
    runner = request.app.state.jobs
    job, _ = await anyio.to_thread.run_sync(lambda: runner.submit(kind.name, **submission))
    return accepted(request, job)


@router.get("/dossiers", response_model=DossierPage, dependencies=[READERS],
            summary="Find dossiers by registration number (citizen id or USCC), subject, name or type")
def search_dossiers(
    session: SessionDep,
    subject_type: Literal["person", "employer"] | None = None,
    registration_number: Annotated[str | None, Query(max_length=18)] = None,
    subject_id: Annotated[str | None, Query(max_length=36)] = None,
    name: Annotated[str | None, Query(max_length=100)] = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DossierPage:
    rows, next_cursor = service.search_dossiers(session, subject_type=subject_type,
                                                registration_number=registration_number, subject_id=subject_id,
                                                name=name, after=after, limit=limit)
    return DossierPage(items=[DossierOut(**service.dossier_view(d)) for d in rows], next_cursor=next_cursor)


@router.get("/dossiers/{dossier_id}/items", response_model=ItemPage, dependencies=[READERS],
            summary="A dossier's items in filing order (the read is kept in the access register)")
def dossier_items(
    dossier_id: str,
    session: WriteSessionDep,
    purpose: Annotated[Purpose, PURPOSE],
    year: Annotated[int | None, Query(ge=1990, le=2200)] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> ItemPage:
    dossier = service.get_dossier(session, dossier_id)
    service.record_access(session, dossier, action="read", purpose=purpose)
    rows, next_cursor = service.items_of(session, dossier_id, after=after, limit=limit, year=year)
    return ItemPage(dossier=DossierOut(**service.dossier_view(dossier)),
                    items=[ItemOut(**service.item_view(i)) for i in rows], next_cursor=next_cursor)


@router.post("/dossiers/{dossier_id}/exports", status_code=202, response_model=JobOut, dependencies=[READERS],
             summary="Export a dossier as a package (catalogue and 备考表 PDF, items, documents, SHA-256 manifest), "
                     "as a background job",
             description="An unknown dossier answers 404 and one out of the caller's region 403 at once; otherwise "
                         "202 with `Location: …/jobs/{id}`. The job's result gives the export's id, its manifest and "
                         "package SHA-256 and `package_at`, where the one who exported it downloads the zip. The "
                         "export is in the access register with its purpose.")
async def export_dossier(dossier_id: str, request: Request, engine: EngineDep,
                         purpose: Annotated[Purpose, PURPOSE]) -> Any:
    with snapshot_session(engine) as session:
        service.get_dossier(session, dossier_id)
    return await _started(request, export.EXPORT, params={"dossier_id": dossier_id, "purpose": purpose})


@router.get("/exports/{export_id}/package", response_class=StreamingResponse, dependencies=[READERS],
            responses={200: {"content": {"application/zip": {}},
                             "description": "the package; X-Export-Id, X-Manifest-Sha256, X-Package-Sha256 in headers"}},
            summary="Download an exported package (only the one who exported it)")
def download_package(export_id: str, session: SessionDep, engine: EngineDep) -> StreamingResponse:
    done = export.downloadable(session, export_id)
    return StreamingResponse(export.package_parts(engine, export_id), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="dossier-{done.dossier_id}.zip"',
        "X-Export-Id": done.id, "X-Manifest-Sha256": done.manifest_sha256,
        "X-Package-Sha256": done.package_sha256})


@router.post("/packages/verification", response_model=PackageVerification, dependencies=[CHECKERS],
             summary="Is this package a dossier export as handed out? (genuine | altered, naming the file | unknown)")
def verify_package(session: SessionDep, file: Annotated[UploadFile, File(description="the zip")]) \
        -> PackageVerification:
    # The upload is spooled to disk by the server; each file is hashed from the zip a part at a time (a worker
    # thread: a large package does not hold up the event loop).
    if (file.size or 0) > MAX_PACKAGE_BYTES:
        raise TooLarge("ARCHIVE_PACKAGE_TOO_LARGE", f"档案包超过 {MAX_PACKAGE_BYTES // (1024 * 1024)} MiB")
    return PackageVerification(**export.verify_package(session, file.file))


@router.get("/access-register", response_model=AccessPage, dependencies=[AUDITORS],
            summary="利用登记: who read or exported which dossier, when and why, newest first")
def access_register(
    session: SessionDep,
    dossier_id: str | None = None,
    actor_id: str | None = None,
    after: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AccessPage:
    rows, next_cursor = service.access_register(session, dossier_id=dossier_id, actor_id=actor_id, after=after,
                                                limit=limit)
    return AccessPage(items=[AccessOut.model_validate(r, from_attributes=True) for r in rows],
                      next_cursor=next_cursor)


# -- disposal (鉴定销毁) --------------------------------------------------------------------------------------------

PROPOSERS = allow("agency_clerk")
APPROVERS = allow("agency_reviewer", "agency_approver")
DISPOSAL_READERS = allow("agency_clerk", "agency_reviewer", "agency_approver", "internal_auditor", "oversight_officer")


def _disposal(session, row) -> DisposalDetail:  # noqa: ANN001
    return DisposalDetail(**DisposalOut.model_validate(row, from_attributes=True).model_dump(),
                          lines=[DisposalLineOut.model_validate(line, from_attributes=True)
                                 for line in disposal.lines_of(session, row.id)])


@router.post("/disposals", status_code=201, response_model=DisposalDetail, dependencies=[PROPOSERS],
             summary="Propose the items past their retention for destruction (a 销毁清册)")
def propose_disposal(body: DisposalProposal, session: SessionDep) -> DisposalDetail:
    return _disposal(session, disposal.propose(session, reason=body.reason))


@router.get("/disposals", response_model=DisposalPage, dependencies=[DISPOSAL_READERS],
            summary="销毁清册, newest first (kept for good, destroyed or not)")
def list_disposals(session: SessionDep, after: str | None = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50) -> DisposalPage:
    rows, next_cursor = disposal.list_disposals(session, after=after, limit=limit)
    return DisposalPage(items=[DisposalOut.model_validate(r, from_attributes=True) for r in rows],
                        next_cursor=next_cursor)


@router.get("/disposals/{disposal_id}", response_model=DisposalDetail, dependencies=[DISPOSAL_READERS],
            summary="One 销毁清册 with its lines")
def get_disposal(disposal_id: str, session: SessionDep) -> DisposalDetail:
    return _disposal(session, disposal.get(session, disposal_id))


@router.post("/disposals/{disposal_id}/approvals", response_model=DisposalDetail, dependencies=[APPROVERS],
             summary="Approve a 销毁清册: the second approval, by another person, destroys its items")
def approve_disposal(disposal_id: str, body: DisposalDecision, session: SessionDep) -> DisposalDetail:
    return _disposal(session, disposal.approve(session, disposal_id, reason=body.reason))


@router.post("/disposals/{disposal_id}/rejection", response_model=DisposalDetail, dependencies=[APPROVERS],
             summary="Reject a 销毁清册: its items are kept (and may be proposed again)")
def reject_disposal(disposal_id: str, body: DisposalDecision, session: SessionDep) -> DisposalDetail:
    return _disposal(session, disposal.reject(session, disposal_id, reason=body.reason))


# -- the yearly archive run -----------------------------------------------------------------------------------------

SEALERS = allow("agency_approver")


@router.post("/years/{year}/seal", status_code=202, response_model=JobOut, dependencies=[SEALERS],
             summary="Seal a past year as a background job: a manifest hash per dossier-year and a root hash",
             description="Refused at once for a year not ended (422 ARCHIVE_YEAR_NOT_ENDED) or already sealed "
                         "(409 ARCHIVE_YEAR_SEALED); otherwise accepted with 202 and `Location: …/jobs/{id}`, the "
                         "job's result giving the dossiers, items and root hash. Acts of the year filed afterwards "
                         "are supplements (补充归档).")
async def seal_year(year: Annotated[int, Path(ge=1990, le=2200)], request: Request, engine: EngineDep) -> Any:
    # A snapshot, not the request's unit of work: the job is stored in a transaction of its own.
    with snapshot_session(engine) as session:
        seals.check_sealable(session, year)
    return await _started(request, seals.YEAR_SEAL, params={"year": year})


@router.get("/years/{year}/seal", response_model=YearSealOut, dependencies=[DISPOSAL_READERS],
            summary="A sealed year: when, by whom, how many dossiers and items, the root hash")
def get_seal(year: Annotated[int, Path(ge=1990, le=2200)], session: SessionDep) -> YearSealOut:
    return YearSealOut.model_validate(seals.get_seal(session, year), from_attributes=True)


@router.get("/years/{year}/verification", response_model=YearVerification, dependencies=[DISPOSAL_READERS],
            summary="Does every dossier-year of a sealed year still hash to what was sealed?")
def verify_year(year: Annotated[int, Path(ge=1990, le=2200)], session: SessionDep) -> YearVerification:
    return YearVerification(**seals.verify_year(session, year))


# -- backfill (补录归档) of the acts done before the archive existed ------------------------------------------------

BACKFILLERS = allow("agency_approver")


@router.post("/backfill", status_code=202, response_model=JobOut, dependencies=[BACKFILLERS],
             summary="Open the dossiers of subjects registered before the archive, with their registration and "
                     "enrolment items, as a background job",
             description="Accepted with 202 and `Location: …/jobs/{id}`; one run at a time (a second request while "
                         "one runs answers that job). Items are marked 补录归档, with the act's original time and its "
                         "audit position where the chain has it (otherwise `audit_position: unknown`); an act "
                         "already in its dossier is never filed twice, so running it again files nothing new. The "
                         "job's result counts the items filed, with and without their audit position.")
async def backfill_archive(request: Request) -> Any:
    return await _started(request, backfill.BACKFILL)
