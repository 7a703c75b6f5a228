"""Tax-line files beyond one request: the tax bureau's system uploads a whole file (up to a month of lines), accepted
with 202 and a job id (``services.kernel.jobs``), and applied in chunks of ``MAX_LINES`` (10 000) lines (fewer under
``SIFUND_JOBS_CHUNK_ROWS``), each through ``service.receive_batch`` exactly as a posted batch: each chunk becomes
one payment batch, stored, matched and settled in the chunk's transaction together with the job's progress. A line
received before (the same line id and content) counts as a duplicate, never twice. The job's result lists the
batches, the totals and the first rejected lines with their codes and Chinese reasons (every one is at
``/tax-payments/batches/{id}``).
"""

import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, File, Header, Request, UploadFile, status
from sqlmodel import Session

from services.collection.payments import service
from services.collection.payments.schemas import CSV_COLUMNS, CSV_DOC, MAX_LINES
from services.kernel.auth import allow
from services.kernel.settings import SettingsDep
from services.kernel.jobs import JobContext, JobKind, JobOut, Step, accepted, save_upload
from services.kernel.tabular import empty_file, file_head, read_table

REPORTED_REJECTIONS = 100


def file_lines(data: bytes | Path) -> Iterator[tuple[int, Any]]:
    """(row number, line) of every row, read as ``service.read_csv_lines`` reads one batch's file."""
    for row_no, values, extra in read_table(data, CSV_COLUMNS).rows():
        line: dict[str, Any] = {k: service._cell(v) for k, v in values.items()}
        if extra:
            line["_extra_cells"] = [str(v) for v in extra]
        yield row_no, line


def check_file(data: bytes | Path) -> None:
    """Columns, encoding and format answer 422 before a job exists; so does a file without lines (checked on the
    file's head: see ``file_head``)."""
    if next(file_lines(file_head(data)), None) is None:
        raise empty_file("缴费明细文件只有表头，没有数据行")


class TaxFileWork:
    """One run of a tax-file job, resumed at the job's offset (lines already applied)."""

    def __init__(self, ctx: JobContext):
        self.data: bytes | Path = ctx.input or b""
        self.region: str = ctx.state.settings.region
        self.chunk_lines = ctx.rows_per_chunk(MAX_LINES)
        self.state: dict[str, Any] = json.loads(ctx.job.state) if ctx.job.state else {
            "batches": [], "totals": {}, "rejections_by_code": {}, "rejections": []}
        self.total: int | None = sum(1 for _ in read_table(self.data, CSV_COLUMNS).rows())
        self.lines: Iterator[tuple[int, Any]] | None = None
        self.position = 0

    def run_chunk(self, session: Session, offset: int) -> Step:
        if self.lines is None or self.position != offset:
            self.lines = file_lines(self.data)
            for _ in islice(self.lines, offset):
                pass
        chunk = list(islice(self.lines, self.chunk_lines))
        if not chunk:
            return Step(0, 0, offset, True, self.state)
        result = service.receive_batch(session, chunk, source_format="csv", region=self.region)
        self.position = offset + len(chunk)
        self._note(result, chunk)
        return Step(len(chunk), result.rejected, self.position, False, self.state)

    def _note(self, result: Any, chunk: list[tuple[int, Any]]) -> None:
        counts = {k: getattr(result, k) for k in ("lines", "accepted", "duplicates", "rejected", "matched",
                                                    "unmatched")}
        self.state["batches"].append({"batch_id": result.id, "first_line": chunk[0][0], "last_line": chunk[-1][0],
                                      **counts})
        totals = self.state["totals"]
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + value
        by_code = self.state["rejections_by_code"]
        listed = self.state["rejections"]
        for rejection in result.rejections:
            by_code[rejection.code] = by_code.get(rejection.code, 0) + 1
            if len(listed) < REPORTED_REJECTIONS:
                listed.append({"line_no": rejection.line_no, "code": rejection.code, "message": rejection.message,
                               "batch_id": result.id})

    def result(self, session: Session) -> dict[str, Any]:
        return {**self.state, "rejections_more": max(0, sum(self.state["rejections_by_code"].values())
                                                     - len(self.state["rejections"]))}


TAX_FILE = JobKind(name="collection.tax_file", submitters=frozenset({"tax_system"}),
                   readers=frozenset({"agency_clerk", "agency_reviewer", "accountant", "internal_auditor"}),
                   open=TaxFileWork)
JOB_KINDS = [TAX_FILE]

router = APIRouter(prefix="/tax-payments", tags=["payments"])


@router.post(
    "/files", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut,
    summary="Upload a whole file of collected payments (CSV or .xlsx, any number of lines) as a background job",
    description=(
        f"Multipart field `file`, the columns of `/tax-payments/batches/csv`:\n\n{CSV_DOC}\n\nAccepted with 202 and "
        f"`Location: …/jobs/{{id}}`; applied in batches of {MAX_LINES} lines (each one a payment batch, as if posted "
        "to `/tax-payments/batches`), with progress at `GET /jobs/{id}` and, when finished, the batches, totals and "
        "rejected lines. At most `SIFUND_MAX_UPLOAD_BYTES` (512 MiB by default: some 3.7 million lines; larger: 413 "
        "`FILE_TOO_LARGE`). The same file again (with the same `Idempotency-Key`, or none) is the same job. A wrong "
        "column set is refused at once with 422 `IMPORT_COLUMNS_INVALID`."
    ),
    dependencies=[allow("tax_system")],
)
async def upload_tax_file(
    request: Request,
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV (UTF-8, UTF-8 BOM or GBK) or .xlsx with a header row")],
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    limit = settings.max_upload_bytes
    path = await save_upload(file, limit, "FILE_TOO_LARGE", f"上传文件超过 {limit // (1024 * 1024)} MB")
    try:
        await anyio.to_thread.run_sync(check_file, path)
        runner = request.app.state.jobs
        job, _ = await anyio.to_thread.run_sync(lambda: runner.submit(
            TAX_FILE.name, data=path, filename=file.filename or "upload", idempotency_key=idempotency_key))
    finally:
        path.unlink(missing_ok=True)
    return accepted(request, job)
