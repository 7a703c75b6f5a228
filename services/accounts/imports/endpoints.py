import json
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, File, Header, Query, Request, UploadFile, status
from fastapi.responses import JSONResponse
from sqlalchemy import Engine

from services.accounts.imports import service
from services.accounts.imports.jobs import IMPORT_KINDS, check_file
from services.accounts.imports.schemas import (
    COLUMNS_DOC,
    ImportJobOut,
    ImportJobPage,
    ImportKind,
    ImportMode,
    RejectionOut,
    RejectionPage,
)
from services.accounts.models import ImportJob, ImportRejection
from services.kernel import context
from services.kernel.auth import allow
from services.kernel.jobs import JobOut, accepted, save_upload
from services.kernel.pii import CITIZEN_ID_READERS, redact
from services.kernel.service_app import EngineDep, SessionDep
from services.kernel.settings import SettingsDep
from services.kernel.paging import SortQuery

# A clerk runs imports and reads their own jobs; internal control reads every job.
READERS = allow("agency_clerk", "internal_auditor")

router = APIRouter(prefix="/imports", tags=["imports"])

# Up to this size a file is imported inside the request (201 with the finished import, well inside the gateway's
# 30 s); a larger one, or any file sent with ``Prefer: respond-async``, becomes a background job (202).
SYNC_MAX_BYTES = 512 * 1024


def job_out(job: ImportJob, overlaps: int) -> ImportJobOut:
    return ImportJobOut.model_validate({**job.model_dump(), "reported_overlaps": overlaps})


def finding_out(row: ImportRejection) -> RejectionOut:
    raw = json.loads(row.raw) if row.raw else None
    if raw is not None and context.current().actor.role not in CITIZEN_ID_READERS:
        raw = json.loads(redact(row.raw))
    return RejectionOut(row_no=row.row_no, code=row.code, message=row.message, raw=raw)


@router.post(
    "/{kind}", status_code=status.HTTP_201_CREATED, response_model=ImportJobOut,
    responses={202: {"model": JobOut, "description": "accepted as a background job: poll `Location` (/jobs/{id})"}},
    summary="Bulk import employers, persons or enrolments from CSV or Excel (legacy migration)",
    description=(
        "Multipart upload (field `file`): CSV in UTF-8 (with or without BOM) or GBK, or Excel `.xlsx` (first "
        "sheet). The header is the first row naming a known column (title rows above it are skipped); Chinese "
        "headers and English aliases are accepted:\n\n"
        f"{COLUMNS_DOC}\n\n"
        "`mode=per_row` stores the good rows and reports the bad ones; `mode=all_or_nothing` stores nothing if any "
        "row is bad (the job is `rejected`, every bad row reported). Rows outside the caller's region are refused "
        "with `OUT_OF_REGION` (for enrolments: the person's district and the employer's). Import employers and "
        "persons before their enrolments. Overlapping pension periods in imported history are stored and reported "
        "(`DuplicateEnrolmentFound`, listed at `/imports/{job_id}/overlaps`). A wrong column set is refused with 422 `IMPORT_COLUMNS_INVALID` (naming the missing "
        "columns), an undecodable file with 422 `IMPORT_ENCODING_INVALID`, an empty one with 422 "
        "`IMPORT_FILE_EMPTY`.\n\n"
        f"A file larger than {SYNC_MAX_BYTES // 1024} KiB, or any file sent with `Prefer: respond-async`, is "
        "accepted as a background job (up to `SIFUND_MAX_UPLOAD_BYTES`, 512 MiB by default: a city's person or "
        "enrolment file; larger: 413 `IMPORT_FILE_TOO_LARGE`): 202 with the job and `Location: …/jobs/{id}`; `GET /jobs/{id}` shows rows "
        "done of total, rejected so far, the ETA, and when it has finished the import report (the import itself is "
        "at `/imports/{id}`). The same file with the same mode (and the same `Idempotency-Key`, or none) again is "
        "the same job, never a second run."
    ),
    dependencies=[allow("agency_clerk")],
)
async def start_import(
    kind: ImportKind,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="the CSV or .xlsx file")],
    mode: ImportMode = ImportMode.per_row,
    prefer: Annotated[str | None, Header()] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> ImportJobOut | JSONResponse:
    limit = settings.max_upload_bytes
    path = await save_upload(file, limit, "IMPORT_FILE_TOO_LARGE",
                             f"导入文件不能超过 {limit // (1024 * 1024)} MB，请分批导入")
    try:
        return await _import_or_submit(request, engine, kind, path, file.filename or "upload", mode,
                                       async_wanted="respond-async" in (prefer or ""),
                                       idempotency_key=idempotency_key)
    finally:
        path.unlink(missing_ok=True)


async def _import_or_submit(request: Request, engine: Engine, kind: ImportKind, path: Path, filename: str,
                            mode: ImportMode, *, async_wanted: bool,
                            idempotency_key: str | None) -> ImportJobOut | JSONResponse:
    """A small file is imported at once; any other becomes a job, its file read from disk a part at a time."""
    if path.stat().st_size <= SYNC_MAX_BYTES and not async_wanted:
        data = path.read_bytes()
        job, overlaps = await anyio.to_thread.run_sync(lambda: service.run_import(
            engine, kind=kind, data=data, filename=filename, mode=mode))
        return job_out(job, overlaps)
    await anyio.to_thread.run_sync(check_file, path, kind)
    runner = request.app.state.jobs
    background, _ = await anyio.to_thread.run_sync(lambda: runner.submit(
        IMPORT_KINDS[kind].name, data=path, filename=filename, params={"mode": mode.value},
        idempotency_key=idempotency_key))
    return accepted(request, background)


@router.get("", response_model=ImportJobPage, summary="My import jobs, newest first", dependencies=[READERS])
def list_imports(
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    sort: SortQuery = None,
) -> ImportJobPage:
    jobs, next_cursor = service.list_jobs(session, after=after, limit=limit, sort=sort)
    return ImportJobPage(items=[job_out(j, n) for j, n in jobs], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=ImportJobOut, summary="An import job's summary", dependencies=[READERS])
def get_import(job_id: str, session: SessionDep) -> ImportJobOut:
    job, overlaps = service.get_job(session, job_id)
    return job_out(job, overlaps)


@router.get("/{job_id}/rejections", response_model=RejectionPage,
            summary="Rejected rows of an import job: row number, stable code, Chinese message, the row as uploaded",
            dependencies=[READERS])
def list_rejections(
    job_id: str,
    session: SessionDep,
    code: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RejectionPage:
    rows, next_cursor = service.list_findings(session, job_id, overlaps=False, after=after, limit=limit, code=code)
    return RejectionPage(items=[finding_out(r) for r in rows], next_cursor=next_cursor)


@router.get("/{job_id}/overlaps", response_model=RejectionPage,
            summary="Overlapping pension periods found in imported history (stored, reported to oversight, S03)",
            dependencies=[READERS])
def list_overlaps(
    job_id: str,
    session: SessionDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> RejectionPage:
    rows, next_cursor = service.list_findings(session, job_id, overlaps=True, after=after, limit=limit)
    return RejectionPage(items=[finding_out(r) for r in rows], next_cursor=next_cursor)
