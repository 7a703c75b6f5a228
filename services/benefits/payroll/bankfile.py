"""The bank payment file (代发文件) and the bank result file: the one format benefits sends and reads.

Both are UTF-8 text without a BOM, one record per line, lines ending in ``\\n`` (LF), fields separated by commas and
quoted as in RFC 4180 only when a field contains a comma, a quote or a line break (Python's ``csv`` module,
``QUOTE_MINIMAL``). Amounts in the file are yuan with exactly two decimals; the header's total is integer fen.

Payment file (benefits → bank)
------------------------------
::

    SIFUND-PAY-1,<file_id>,<run_id>,<fund>,<period>,<sequence>,<line_count>,<total_fen>
    <line_no>,<account_no>,<holder_name>,<amount>,<payroll_line_id>
    …
    SHA256,<checksum>

- **header**: the format tag ``SIFUND-PAY-1``; the file id; the payroll run id; the fund; the month paid
  (``YYYYMM``); the file's sequence in its run (1 for the first file, 2… for re-issues of failed payments); the
  number of detail lines; their total in fen.
- **detail lines**, ``line_no`` 1, 2, … in order: the account number of the beneficiary's own bank account or
  social security card (000 二(三): there is no other kind of line; cash is never paid); the account holder's name
  (= the beneficiary); the amount in yuan, e.g. ``3500.00``; the payroll line id (the bank echoes it back).
- **trailer**: ``SHA256`` and the lower-case hexadecimal SHA-256 of the canonical detail lines: every detail line
  exactly as written in the file, UTF-8, each followed by ``\\n``, concatenated in ``line_no`` order (header and
  trailer excluded). The header's count and total are the count and sum of the detail lines.

Result file (bank → benefits)
-----------------------------
::

    SIFUND-RES-1,<file_id>,<checksum of the payment file>
    <line_no>,<payroll_line_id>,<paid|failed>,<reason>
    …

One line per payment the bank has settled (a file's results may come in several result files); ``reason`` is
required for ``failed`` (wrong account number, account closed, …) and empty for ``paid``. The same content may also
be posted as JSON (``{"checksum": …, "lines": [{"line_no", "payroll_line_id", "result", "reason"}]}``).
"""

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass

from services.kernel.errors import DomainError, Invalid
from services.kernel.money import checked_total_fen

PAYMENT_TAG = "SIFUND-PAY-1"
RESULT_TAG = "SIFUND-RES-1"
TRAILER_TAG = "SHA256"


@dataclass(frozen=True)
class PaymentLine:
    line_no: int
    account_no: str
    holder_name: str
    amount_fen: int
    payroll_line_id: str


@dataclass(frozen=True)
class Rendered:
    content: str
    checksum: str
    lines: int
    total_fen: int


@dataclass(frozen=True)
class PaymentFile:
    file_id: str
    run_id: str
    fund: str
    period: int
    sequence: int
    lines: list[PaymentLine]
    total_fen: int
    checksum: str


@dataclass(frozen=True)
class ResultLine:
    line_no: int
    payroll_line_id: str
    result: str
    reason: str | None


def yuan_text(amount_fen: int) -> str:
    """``350000`` → ``"3500.00"`` (payments are positive)."""
    if amount_fen <= 0:
        raise ValueError("a payment is a positive amount")
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


def fen_of(text: str) -> int:
    whole, dot, cents = text.partition(".")
    if not (whole.isdigit() and dot == "." and len(cents) == 2 and cents.isdigit()):
        raise ValueError(f"amount {text!r} is not yuan with two decimals")
    return int(whole) * 100 + int(cents)


def _writer(buffer: io.StringIO) -> "csv._writer":
    return csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)


def checksum_of(detail: str) -> str:
    """SHA-256 of the canonical detail lines (each already terminated by ``\\n``)."""
    return hashlib.sha256(detail.encode("utf-8")).hexdigest()


def render_payment_file(*, file_id: str, run_id: str, fund: str, period: int, sequence: int,
                        lines: Sequence[PaymentLine]) -> Rendered:
    for ln in lines:
        if any(c in ln.holder_name or c in ln.account_no for c in "\r\n"):
            raise ValueError(f"line {ln.line_no}: a line break in the account number or holder name")
    body = io.StringIO()
    _writer(body).writerows(
        (ln.line_no, ln.account_no, ln.holder_name, yuan_text(ln.amount_fen), ln.payroll_line_id) for ln in lines
    )
    detail = body.getvalue()
    checksum = checksum_of(detail)
    total = checked_total_fen(ln.amount_fen for ln in lines)
    head = io.StringIO()
    _writer(head).writerow((PAYMENT_TAG, file_id, run_id, fund, period, sequence, len(lines), total))
    return Rendered(content=f"{head.getvalue()}{detail}{TRAILER_TAG},{checksum}\n", checksum=checksum,
                    lines=len(lines), total_fen=total)


def parse_payment_file(content: str) -> PaymentFile:
    """Read a payment file and check it completely: header, consecutive line numbers, count, total, checksum.
    Raises ``ValueError`` naming the first problem (what a bank does before paying)."""
    if not content.endswith("\n"):
        raise ValueError("the file does not end with a line break")
    records = content[:-1].split("\n")
    if len(records) < 2:
        raise ValueError("header and trailer expected")
    header = next(csv.reader([records[0]]))
    if len(header) != 8 or header[0] != PAYMENT_TAG:
        raise ValueError(f"not a {PAYMENT_TAG} header")
    trailer = records[-1].split(",")
    if len(trailer) != 2 or trailer[0] != TRAILER_TAG:
        raise ValueError("no SHA256 trailer")
    detail_records = records[1:-1]
    detail = "".join(f"{r}\n" for r in detail_records)
    if checksum_of(detail) != trailer[1]:
        raise ValueError("checksum does not match the detail lines")
    lines = []
    for expected_no, row in enumerate(csv.reader(detail_records), start=1):
        if len(row) != 5:
            raise ValueError(f"line {expected_no}: 5 fields expected")
        if int(row[0]) != expected_no:
            raise ValueError(f"line {expected_no}: numbered {row[0]}")
        lines.append(PaymentLine(line_no=expected_no, account_no=row[1], holder_name=row[2],
                                 amount_fen=fen_of(row[3]), payroll_line_id=row[4]))
    total = sum(ln.amount_fen for ln in lines)
    if int(header[6]) != len(lines) or int(header[7]) != total:
        raise ValueError("header count or total does not match the detail lines")
    return PaymentFile(file_id=header[1], run_id=header[2], fund=header[3], period=int(header[4]),
                       sequence=int(header[5]), lines=lines, total_fen=total, checksum=trailer[1])


def render_result_file(file_id: str, checksum: str, results: Sequence[ResultLine]) -> str:
    """What the bank sends back (used by tests and the bench as the bank's side)."""
    out = io.StringIO()
    writer = _writer(out)
    writer.writerow((RESULT_TAG, file_id, checksum))
    writer.writerows((r.line_no, r.payroll_line_id, r.result, r.reason or "") for r in results)
    return out.getvalue()


def invalid_result_file(message: str) -> DomainError:
    return Invalid("BANK_RESULT_FILE_INVALID", f"银行回盘文件格式错误：{message}")


def parse_result_file(content: str) -> tuple[str, str, list[dict]]:
    """(file id, checksum, result lines as dicts for ``ResultsIn``); the lines themselves are validated there."""
    try:  # newline="": a CR inside the text is data, not the end of a record (a fuzzed body crashed here)
        rows = list(csv.reader(io.StringIO(content.lstrip("\ufeff"), newline="")))
    except csv.Error as exc:
        raise invalid_result_file(f"CSV 无法解析（{exc}）") from None
    rows = [r for r in rows if r]
    if not rows:
        raise invalid_result_file("文件为空")
    header = rows[0]
    if len(header) != 3 or header[0] != RESULT_TAG:
        raise invalid_result_file(f"首行应为 {RESULT_TAG},<文件编号>,<校验值>")
    lines = []
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 4:
            raise invalid_result_file(f"第 {number} 行应有 4 个字段（序号,发放明细编号,结果,原因）")
        try:
            line_no = int(row[0])
        except ValueError:
            raise invalid_result_file(f"第 {number} 行序号不是整数") from None
        lines.append({"line_no": line_no, "payroll_line_id": row[1], "result": row[2], "reason": row[3] or None})
    return header[1], header[2], lines
