"""Imports as background jobs (``services.kernel.jobs``): a large upload is accepted with 202 and a job id, and runs
chunk by chunk (``CHUNK_ROWS`` data rows each, fewer under ``SIFUND_JOBS_CHUNK_ROWS``) in the accounts process.

Each chunk's rows, events, audit entry, rejections, the ``import_job`` counters *and* the kernel job's progress
commit in one transaction, so a job resumed after a crash starts exactly at the first chunk not committed. On
resume the rows before it are read again through the row checks only (no database), so a duplicate within the file
is still reported as ``DUPLICATE_IN_FILE`` naming its first row. The ``import_job`` row has the kernel job's id:
``GET /imports/{id}``, ``/rejections`` and ``/overlaps`` work for a job as for a synchronous import.

``all_or_nothing`` is one step by design (nothing is stored if any row is bad): it runs as a single chunk; a job
whose import already reached ``completed`` or ``rejected`` is not run again.
"""

from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.accounts.imports.schemas import COLUMNS, ImportKind, ImportMode
from services.accounts.imports.service import (
    CHUNK_ROWS,
    MAX_ATTEMPTS,
    OVERLAP_CODE,
    ImportRun,
    PreparedChunk,
    count_overlaps,
)
from services.accounts.models import ImportJob, ImportRejection
from services.kernel.audit import append_audit
from services.kernel.db import unit_of_work
from services.kernel.jobs import JobContext, JobKind, Step
from services.kernel.tabular import empty_file, file_head, read_table

SUBMITTERS = frozenset({"agency_clerk"})
READERS = frozenset({"internal_auditor"})  # internal control reads every import, as at /imports
REPORTED_REJECTIONS = 100  # in the job's result; every one is at /imports/{id}/rejections


def kind_name(kind: ImportKind) -> str:
    return f"accounts.import.{kind.value}"


def check_file(data: bytes | Path, kind: ImportKind) -> None:
    """File-level problems (columns, encoding, format, no data row) answer 422 before a job exists (checked on the
    file's head: see ``file_head``)."""
    table = read_table(file_head(data), COLUMNS[kind])
    if next(table.rows(), None) is None:
        raise empty_file("导入文件只有表头，没有数据行")


class ImportWork:
    """One run of an import job: opened from the stored file, resumed at the job's offset."""

    def __init__(self, ctx: JobContext, kind: ImportKind):
        self.kind = kind
        self.mode = ImportMode(ctx.params.get("mode", ImportMode.per_row.value))
        self.data: bytes | Path = ctx.input or b""
        job = self._import_job(ctx)
        self.run = ImportRun(ctx.engine, kind, self.mode, read_table(self.data, COLUMNS[kind]), job,
                             chunk_rows=ctx.rows_per_chunk(CHUNK_ROWS))
        self.run.total, self.run.accepted, self.run.rejected = job.total_rows, job.accepted_rows, job.rejected_rows
        self.total: int | None = sum(1 for _ in read_table(self.data, COLUMNS[kind]).rows())
        self.chunks: Iterator[PreparedChunk] | None = None
        self.position = 0  # data rows the chunk iterator has consumed

    def _import_job(self, ctx: JobContext) -> ImportJob:
        with unit_of_work(ctx.engine) as session:
            job = session.get(ImportJob, ctx.job.id)
            if job is None:
                table = read_table(self.data, COLUMNS[self.kind])
                job = ImportJob(id=ctx.job.id, kind=self.kind.value, filename=(ctx.job.filename or "upload")[:200],
                                file_format=table.file_format, encoding=table.encoding, mode=self.mode.value,
                                status="running", created_at=ctx.job.created_at, created_by=ctx.job.created_by)
                session.add(job)
                append_audit(session, action="import.started", entity_type="import_job", entity_id=job.id,
                             detail={"kind": self.kind.value, "mode": self.mode.value, "filename": job.filename,
                                     "format": table.file_format, "encoding": table.encoding, "job": True})
                session.flush()
            session.expunge(job)
            return job

    # -- chunks ----------------------------------------------------------------------------------------------------

    def run_chunk(self, session: Session, offset: int) -> Step:
        current = session.get(ImportJob, self.run.job.id)
        if current.status in ("completed", "rejected"):  # the one-step mode committed before a crash
            return Step(0, 0, offset, True)
        if self.mode is ImportMode.all_or_nothing:
            return self._all_or_nothing(offset)
        chunk = self._chunk_at(offset)
        if chunk is None:
            return Step(0, 0, offset, True)
        prepared, rows = chunk
        rejected = self._store(session, prepared)
        self.position = offset + rows
        return Step(rows, rejected, offset + rows, False)

    def _chunk_at(self, offset: int) -> tuple[PreparedChunk, int] | None:
        """The prepared chunk starting at data row ``offset``; the rows before it pass the row checks again (on
        resume) so that duplicates within the file are found as in one run."""
        if self.chunks is None or self.position != offset:
            self.run.seen.clear()
            self.run.total = 0
            rows = read_table(self.data, COLUMNS[self.kind]).rows()
            # Exactly ``offset`` rows, whatever the chunk size: it may have been configured differently when the
            # chunks before were committed.
            skipped = sum(1 for _ in self.run.chunks(islice(rows, offset)))
            self.chunks = self.run.chunks(rows, number=skipped)
            self.position = offset
        before = self.run.total
        prepared = next(self.chunks, None)
        if prepared is None:
            return None
        return prepared, self.run.total - before

    def _store(self, session: Session, chunk: PreparedChunk) -> int:
        """Check and store one chunk inside the job's transaction; a unique-constraint race with another writer
        checks it again (a savepoint per attempt), as the synchronous import does."""
        run = self.run
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                with session.begin_nested():  # released on success, rolled back on the race
                    result = run.check(session, chunk)
                    run.store(session, result, chunk.number)
                    run.write_rejections(session, result.rejections)
                    accepted, rejected = run.accepted + len(result.ids), run.rejected + len(result.rejections)
                    run.update_job(session, accepted_rows=accepted, rejected_rows=rejected, total_rows=run.total)
                    session.flush()
            except IntegrityError:
                if attempt == MAX_ATTEMPTS:
                    raise
                continue
            run.accepted, run.rejected = accepted, rejected
            run.overlaps += len(result.overlaps)
            # Not ``importer.accept``: each chunk commits, so the next one reads what this one stored from the
            # database (as a resumed run must). Kept in memory, every accepted enrolment of a city's file would be
            # held for the whole job and walked again by every chunk's check.
            return len(result.rejections)
        raise AssertionError("unreachable")

    def _all_or_nothing(self, offset: int) -> Step:
        run = self.run
        run.all_or_nothing(lambda: read_table(self.data, COLUMNS[self.kind]).rows())
        return Step(run.total - offset, run.rejected, run.total, True)

    # -- the report --------------------------------------------------------------------------------------------------

    def result(self, session: Session) -> dict[str, Any]:
        run = self.run
        job = session.get(ImportJob, run.job.id)
        if job.status == "running":
            run.total = job.total_rows
            run.overlaps = count_overlaps(session, job.id)
            run.finish(session, "completed")
            session.flush()
            session.refresh(job)
        findings = ImportRejection.code != OVERLAP_CODE
        by_code = dict(session.execute(
            select(ImportRejection.code, func.count()).where(ImportRejection.job_id == job.id, findings)
            .group_by(ImportRejection.code)).all())
        first = session.execute(
            select(ImportRejection.row_no, ImportRejection.code, ImportRejection.message)
            .where(ImportRejection.job_id == job.id, findings)
            .order_by(ImportRejection.row_no, ImportRejection.id).limit(REPORTED_REJECTIONS)).all()
        return {
            "import_job_id": job.id, "kind": job.kind, "mode": job.mode, "status": job.status,
            "file_format": job.file_format, "encoding": job.encoding, "total_rows": job.total_rows,
            "accepted_rows": job.accepted_rows, "rejected_rows": job.rejected_rows,
            "reported_overlaps": count_overlaps(session, job.id), "rejections_by_code": by_code,
            "rejections": [{"row_no": r, "code": c, "message": m} for r, c, m in first],
            "rejections_more": max(0, sum(by_code.values()) - len(first)),
            "rejections_at": f"/imports/{job.id}/rejections",
        }


def _opener(kind: ImportKind):  # noqa: ANN202
    def open_work(ctx: JobContext) -> ImportWork:
        return ImportWork(ctx, kind)

    return open_work


IMPORT_KINDS = {kind: JobKind(name=kind_name(kind), submitters=SUBMITTERS, readers=READERS, open=_opener(kind))
                for kind in ImportKind}

