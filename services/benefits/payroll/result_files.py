"""Bank result files (回盘文件) uploaded by the agency's cashier: the bank hands its results to the agency as a file,
and the cashier who sent the payment file uploads them. The file is the result format of bankfile.py — its tag row
``SIFUND-RES-1,<file_id>,<checksum>``, then ``序号,发放明细编号,结果,原因`` per payment — as CSV (UTF-8 or GBK) or in
the first sheet of an .xlsx; a row naming those columns after the tag row is skipped, and 成功/失败 are read as
paid/failed.

It runs as a background job (services.kernel.jobs: 202 + job id, progress, resumed after a crash; the same file
again is the same job) in chunks of ``CHUNK_LINES`` lines, each applied by ``service.import_results`` — the very
function behind the bank system's route — with ``per_line``: a malformed row, a line not in the payment file, a
repeated line number or a line already settled otherwise is set aside with its reason instead of refusing the file,
and the other lines are applied. Each chunk's audit entry names the job and the file's SHA-256; its actor is the
person who uploaded it (the job runs as its creator)."""

import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlmodel import Session

from services.benefits.payroll import bankfile, service
from services.benefits.payroll.schemas import ResultLineIn, ResultsIn
from services.kernel.jobs import JobContext, JobKind, Step
from services.kernel.money import fen_to_yuan
from services.kernel.tabular import empty_file, raw_rows

CHUNK_LINES = 5000
REPORTED_REJECTIONS = 100
UPLOADERS = frozenset({"cashier"})
READERS = frozenset({"agency_clerk", "agency_reviewer", "agency_approver", "accountant", "cashier",
                     "internal_auditor"})
RESULT_WORDS = {"paid": "paid", "failed": "failed", "成功": "paid", "失败": "failed"}
COLUMN_ROW = {"序号", "line_no"}  # a row naming the columns, as a person writes it in Excel
LINE_INVALID = "BANK_RESULT_LINE_INVALID"
FIELD_WORDS = {"line_no": "序号应为正整数", "payroll_line_id": "发放明细编号应为 1–36 个字符",
               "result": "结果应为 paid/failed（成功/失败）", "reason": "原因不超过 200 个字符"}


def _cells(cells: list[Any]) -> list[str]:
    """The row's cells as text, trailing empty cells dropped (Excel pads rows to the sheet's width)."""
    text = ["" if c is None else (str(int(c)) if isinstance(c, float) and c.is_integer() else str(c)).strip()
            for c in cells]
    while text and not text[-1]:
        text.pop()
    return text


def _rows(source: bytes | Path) -> Iterator[tuple[int, list[str]]]:
    for row_no, cells in raw_rows(source):
        text = _cells(cells)
        if text:
            yield row_no, text


def read_head(source: bytes | Path) -> tuple[str, str]:
    """(the payment file's id the result file declares, the checksum it echoes), or 422 for a file that is not a
    result file or has no result line."""
    rows = _rows(source)
    try:
        head = next(rows, None)
        if head is None:
            raise empty_file("回盘文件为空")
        if len(head[1]) != 3 or head[1][0] != bankfile.RESULT_TAG:
            raise bankfile.invalid_result_file(f"首行应为 {bankfile.RESULT_TAG},<文件编号>,<校验值>")
        if next(data_rows(source), None) is None:
            raise empty_file("回盘文件只有首行，没有回盘明细")
    finally:
        rows.close()
    return head[1][1], head[1][2]


def data_rows(source: bytes | Path) -> Iterator[tuple[int, list[str]]]:
    """The result lines: every row after the tag row but a row naming the columns."""
    rows = _rows(source)
    next(rows, None)
    for row_no, cells in rows:
        if cells[0] not in COLUMN_ROW:
            yield row_no, cells


def read_line(cells: list[str]) -> ResultLineIn | str:
    """The row as a result line, or why it is not one (in Chinese)."""
    if len(cells) not in (3, 4):
        return "应有 4 个字段（序号,发放明细编号,结果,原因）"
    line_no, line_id, result, reason = (*cells, "")[:4]
    if not line_no.isdigit():
        return "序号应为正整数"
    try:
        return ResultLineIn(line_no=int(line_no), payroll_line_id=line_id,
                            result=RESULT_WORDS.get(result.lower(), result), reason=reason or None)
    except ValidationError as exc:
        where = exc.errors()[0].get("loc") or ()
        return FIELD_WORDS.get(str(where[0]), "格式错误") if where else "发放失败的行须有银行退回原因"


class ResultFileWork:
    """One run of an upload's job, resumed at the job's offset (result lines already handled)."""

    def __init__(self, ctx: JobContext):
        self.data: bytes | Path = ctx.input or b""
        self.file_id: str = ctx.params["file_id"]
        self.declared, self.checksum = read_head(self.data)
        self.audit = {"via": "upload", "job_id": ctx.job.id, "file_sha256": ctx.job.file_sha256,
                      "filename": ctx.job.filename}
        self.state: dict[str, Any] = json.loads(ctx.job.state) if ctx.job.state else {
            "applied": 0, "unchanged": 0, "paid_lines": 0, "paid_fen": 0, "failed_lines": 0, "returned_fen": 0,
            "rejections_by_code": {}, "rejections": []}
        self.total: int | None = sum(1 for _ in data_rows(self.data))
        self.chunk_lines = ctx.rows_per_chunk(CHUNK_LINES)
        self.rows: Iterator[tuple[int, list[str]]] | None = None
        self.position = 0

    def run_chunk(self, session: Session, offset: int) -> Step:
        if self.rows is None or self.position != offset:
            self.rows = data_rows(self.data)
            for _ in islice(self.rows, offset):
                pass
        chunk = list(islice(self.rows, self.chunk_lines))
        if not chunk:
            return Step(0, 0, offset, True, self.state)
        lines: list[ResultLineIn] = []
        row_of: dict[int, list[int]] = {}
        rejected = 0
        for row_no, cells in chunk:
            line = read_line(cells)
            if isinstance(line, str):
                rejected += self._reject(row_no, LINE_INVALID, line)
                continue
            lines.append(line)
            row_of.setdefault(line.line_no, []).append(row_no)
        if lines:
            applied = service.import_results(session, self.file_id,
                                             ResultsIn.model_construct(checksum=self.checksum, lines=lines),
                                             declared_file_id=self.declared, per_line=True, audit=self.audit)
            for name, value in (("applied", applied.applied), ("unchanged", applied.unchanged),
                                ("paid_lines", applied.paid[0]), ("paid_fen", applied.paid[1]),
                                ("failed_lines", applied.failed[0]), ("returned_fen", applied.failed[1])):
                self.state[name] += value
            for refused in applied.rejected:
                rejected += self._reject(row_of[refused["line_no"]].pop(0), refused["code"], refused["message"])
        self.position = offset + len(chunk)
        return Step(len(chunk), rejected, self.position, False, self.state)

    def _reject(self, row_no: int, code: str, message: str) -> int:
        by_code = self.state["rejections_by_code"]
        by_code[code] = by_code.get(code, 0) + 1
        if len(self.state["rejections"]) < REPORTED_REJECTIONS:
            self.state["rejections"].append({"row_no": row_no, "code": code, "message": message})
        return 1

    def result(self, session: Session) -> dict[str, Any]:
        file = service.get_file(session, self.file_id)
        summary = service.file_summary(session, file)
        state = {k: v for k, v in self.state.items() if not k.endswith("_fen")}
        return {"file_id": file.id, "run_id": file.run_id, **state,
                "paid_total": str(fen_to_yuan(self.state["paid_fen"])),
                "returned_total": str(fen_to_yuan(self.state["returned_fen"])),
                "file_status": file.status, "awaiting_result": summary.awaiting,
                "rejections_more": max(0, sum(self.state["rejections_by_code"].values())
                                       - len(self.state["rejections"]))}


RESULT_FILE = JobKind(name="benefits.bank_result_file", submitters=UPLOADERS, readers=READERS, open=ResultFileWork)
JOB_KINDS = [RESULT_FILE]
