"""Reading an uploaded tabular file: CSV (UTF-8 with or without BOM, or GBK/GB 18030) or Excel ``.xlsx``.

Shared mechanics only: each service owns its column sets (``Column``) and what a row means. Used by accounts'
bulk import and collection's declaration and tax-payment uploads.

The format is recognised by content, not by file name (an ``.xlsx`` renamed ``.csv`` is still read as Excel). The
header row is the first non-empty row; each header is matched against the caller's documented column set
(Chinese header or English alias, case- and blank-insensitive, a leading ``*`` "required" mark ignored). A file whose
columns do not match is refused as a whole (``IMPORT_COLUMNS_INVALID`` naming the missing, unknown and repeated
columns); so is an undecodable file (``IMPORT_ENCODING_INVALID``) and a file without data rows (``IMPORT_FILE_EMPTY``).

Rows come out one at a time (``Table.rows``) as ``(row_no, values, extra)``: ``row_no`` is the row number a clerk
sees when opening the file in Excel (the header row of a plain file is row 1), ``values`` maps field names to the
non-empty cells (strings stripped; Excel numbers and dates as Python values), ``extra`` lists non-empty cells beyond
the header (a malformed row). Blank rows are skipped but counted, so row numbers stay true.
"""

import codecs
import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, BinaryIO

from services.kernel.errors import Invalid

XLSX_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls
UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Column:
    """One documented column: the field it fills, its Chinese header, accepted aliases, whether it is required."""

    field: str
    header: str
    aliases: tuple[str, ...] = ()
    required: bool = False
    description: str = ""

    def names(self) -> tuple[str, ...]:
        return (self.header, self.field, *self.aliases)


class ImportFileError(Invalid):
    """The file as a whole cannot be imported; nothing is read from it."""


def empty_file(message: str = "导入文件为空，没有可导入的数据行") -> ImportFileError:
    return ImportFileError("IMPORT_FILE_EMPTY", message)


# -- header matching -------------------------------------------------------------------------------------------------

_BLANKS = re.compile(r"[\s_\-]+")


def normalise_header(text: Any) -> str:
    """``" *公民身份号码 "`` → ``公民身份号码``; ``"Citizen ID"`` → ``citizenid``; full-width forms folded (NFKC)."""
    value = unicodedata.normalize("NFKC", str(text or "")).replace("\ufeff", "").strip().lstrip("*").strip()
    return _BLANKS.sub("", value).lower()


def map_header(header: Sequence[Any], columns: Sequence[Column]) -> list[str | None]:
    """The field of each header cell (None for a blank cell); raises IMPORT_COLUMNS_INVALID on a wrong column set."""
    lookup: dict[str, Column] = {}
    for column in columns:
        for name in column.names():
            lookup[normalise_header(name)] = column
    fields: list[str | None] = []
    unknown: list[str] = []
    repeated: list[str] = []
    seen: set[str] = set()
    for cell in header:
        key = normalise_header(cell)
        if not key:
            fields.append(None)
            continue
        column = lookup.get(key)
        if column is None:
            unknown.append(str(cell).strip())
            fields.append(None)
            continue
        if column.field in seen:
            repeated.append(str(cell).strip())
        seen.add(column.field)
        fields.append(column.field)
    missing = [c for c in columns if c.required and c.field not in seen]
    if missing or unknown or repeated:
        problems = []
        if missing:
            problems.append("缺少必需的列：" + "、".join(f"{c.header}（{c.field}）" for c in missing))
        if unknown:
            problems.append("无法识别的列：" + "、".join(unknown))
        if repeated:
            problems.append("重复的列：" + "、".join(repeated))
        raise ImportFileError(
            "IMPORT_COLUMNS_INVALID",
            "导入文件的列不符合模板。" + "；".join(problems),
            details={
                "missing": [c.header for c in missing],
                "missing_fields": [c.field for c in missing],
                "unknown": unknown,
                "repeated": repeated,
                "expected": [{"header": c.header, "field": c.field, "required": c.required} for c in columns],
            },
        )
    return fields


HEADER_SEARCH_ROWS = 10  # legacy exports often put a title (花名册名称, 导出日期) above the header


def _known_headers(columns: Sequence[Column]) -> set[str]:
    return {normalise_header(name) for column in columns for name in column.names()}


def find_header(rows: Iterator[tuple[int, Sequence[Any]]], columns: Sequence[Column]
                ) -> tuple[int, Sequence[Any], list[tuple[int, Sequence[Any]]]]:
    """The header: the first of the first non-empty rows naming a known column (else the first non-empty row, so
    that the column error names what the file has). Returns it and the rows read past it, to be read again."""
    known = _known_headers(columns)
    looked: list[tuple[int, Sequence[Any]]] = []
    for row_no, cells in rows:
        if not any(_clean(c) is not None for c in cells):
            continue
        looked.append((row_no, cells))
        if any(normalise_header(c) in known for c in cells if _clean(c) is not None):
            return row_no, cells, []
        if len(looked) == HEADER_SEARCH_ROWS:
            break
    if not looked:
        raise empty_file()
    row_no, cells = looked[0]
    return row_no, cells, looked[1:]


# -- the table -------------------------------------------------------------------------------------------------------


@dataclass
class Table:
    file_format: str  # csv | xlsx
    encoding: str | None
    fields: list[str | None]
    header_row_no: int
    _rows: Iterator[tuple[int, Sequence[Any]]] = field(repr=False)
    raw_header: list[str] = field(default_factory=list)

    def rows(self) -> Iterator[tuple[int, dict[str, Any], list[Any]]]:
        width = len(self.fields)
        for row_no, cells in self._rows:
            values: dict[str, Any] = {}
            for name, cell in zip(self.fields, cells, strict=False):
                if name is None:
                    continue
                value = _clean(cell)
                if value is not None:
                    values[name] = value
            extra = [c for c in cells[width:] if _clean(c) is not None]
            if values or extra:
                yield row_no, values, extra

    def raw(self, values: dict[str, Any], extra: Sequence[Any] = ()) -> dict[str, Any]:
        """The row as the clerk wrote it, keyed by the file's own headers (kept with a rejection)."""
        by_field = {f: h for f, h in zip(self.fields, self.raw_header, strict=False) if f}
        out = {by_field.get(k, k): _plain(v) for k, v in values.items()}
        if extra:
            out["（多余的单元格）"] = [_plain(v) for v in extra]
        return out


def _clean(cell: Any) -> Any:
    if cell is None:
        return None
    if isinstance(cell, str):
        cell = cell.strip()
        return cell or None
    return cell


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


Source = bytes | Path  # a file in memory (a small upload) or on disk (a job's file, read as a stream)
READ_BYTES = 1024 * 1024


def _open(source: Source) -> BinaryIO:
    return io.BytesIO(source) if isinstance(source, bytes) else source.open("rb")


def _blocks(source: Source) -> Iterator[bytes]:
    with _open(source) as stream:
        while block := stream.read(READ_BYTES):
            yield block


def _blank(source: Source) -> bool:
    return all(not block.strip(b" \t\r\n\x00") for block in _blocks(source))


HEAD_BYTES = 1024 * 1024


def file_head(source: Source) -> Source:
    """What to check a file's columns and first rows on while its upload request waits: a CSV file's first whole
    lines (up to ``HEAD_BYTES``; a newline byte is never part of a UTF-8 or GBK character), an Excel file whole (its
    rows are read lazily anyway). A city's file is not decoded in full inside the request: the job reads it all, and
    refuses a file undecodable further on with the same ``IMPORT_ENCODING_INVALID``."""
    with _open(source) as stream:
        head = stream.read(HEAD_BYTES + 1)
    if len(head) <= HEAD_BYTES or head.startswith(XLSX_MAGIC):
        return source
    return head[:head.rfind(b"\n") + 1] or head[:HEAD_BYTES]


def read_table(source: Source, columns: Sequence[Column]) -> Table:
    """The table of a file in memory or on disk. A file on disk is streamed: its rows are read as they are asked
    for, never the whole text at once (a city's file is hundreds of megabytes)."""
    if not source or _blank(source):
        raise empty_file()
    with _open(source) as stream:
        magic = stream.read(len(OLE2_MAGIC))
    if magic.startswith(XLSX_MAGIC):
        return _read_xlsx(source, columns)
    if magic.startswith(OLE2_MAGIC):
        raise ImportFileError("IMPORT_FORMAT_UNSUPPORTED", "不支持旧版 Excel（.xls）文件，请另存为 .xlsx 或 CSV 后再导入")
    return _read_csv(source, columns)


def raw_rows(source: Source) -> Iterator[tuple[int, list[Any]]]:
    """Every row of a CSV or .xlsx file as it stands, numbered from 1, with no header matching: for a file whose
    first row is not a header (a bank's result file opens with its tag row). Read as the rows are asked for."""
    if not source or _blank(source):
        raise empty_file()
    with _open(source) as stream:
        magic = stream.read(len(OLE2_MAGIC))
    if magic.startswith(OLE2_MAGIC):
        raise ImportFileError("IMPORT_FORMAT_UNSUPPORTED", "不支持旧版 Excel（.xls）文件，请另存为 .xlsx 或 CSV 后再导入")
    if not magic.startswith(XLSX_MAGIC):
        encoding = detect_encoding(source)
        with _text(source, encoding) as text:
            first_line = next((line for line in text if line.strip()), "")
        yield from _csv_records(source, encoding, _sniff_delimiter(first_line))
        return
    from openpyxl import load_workbook  # noqa: PLC0415 - only when an Excel file comes

    with _open(source) as stream:
        try:
            workbook = load_workbook(stream, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise ImportFileError("IMPORT_FILE_MALFORMED",
                                  f"Excel 文件无法读取（{type(exc).__name__}），请确认是 .xlsx 格式") from None
        try:
            for row_no, cells in enumerate(workbook.worksheets[0].iter_rows(values_only=True), start=1):
                yield row_no, list(cells)
        finally:
            workbook.close()


# -- CSV -------------------------------------------------------------------------------------------------------------


def detect_encoding(source: Source) -> str:
    """The file's encoding — UTF-8 with BOM, UTF-8, then GBK (its superset GB 18030 as a last resort) — checked over
    the whole file, block by block."""
    with _open(source) as stream:
        bom = stream.read(len(UTF8_BOM)) == UTF8_BOM
    for encoding in ("utf-8-sig",) if bom else ("utf-8", "gbk", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            for block in _blocks(source):
                if "\x00" in decoder.decode(block):  # UTF-16 or a binary file that happens to decode
                    raise _undecodable()
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return encoding
    raise _undecodable()


def _undecodable() -> ImportFileError:
    return ImportFileError("IMPORT_ENCODING_INVALID",
                           "无法识别文件编码：CSV 文件应为 UTF-8（可带 BOM）或 GBK 编码，Excel 文件应为 .xlsx 格式")


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", "\t", ";", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _text(source: Source, encoding: str) -> io.TextIOWrapper:
    return io.TextIOWrapper(_open(source), encoding=encoding, newline="")


def _read_csv(source: Source, columns: Sequence[Column]) -> Table:
    encoding = detect_encoding(source)
    with _text(source, encoding) as text:
        first_line = next((line for line in text if line.strip()), "")
    numbered = _csv_records(source, encoding, _sniff_delimiter(first_line))
    row_no, header, _ = find_header(numbered, columns)
    fields = map_header(header, columns)
    return Table("csv", encoding, fields, row_no, numbered, [h.strip() for h in header])


def _csv_records(source: Source, encoding: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """One record per row (a quoted newline shifts nothing), numbered from 1, read as they are asked for."""
    with _text(source, encoding) as text:
        try:
            yield from enumerate(csv.reader(text, delimiter=delimiter), start=1)
        except csv.Error as exc:
            raise ImportFileError("IMPORT_FILE_MALFORMED", f"CSV 文件格式错误：{exc}") from None


# -- Excel -----------------------------------------------------------------------------------------------------------


def _read_xlsx(source: Source, columns: Sequence[Column]) -> Table:
    from openpyxl import load_workbook  # noqa: PLC0415 - only when an Excel file comes

    stream = _open(source)  # a file object: openpyxl would judge a path by its name's extension
    try:
        try:
            workbook = load_workbook(stream, read_only=True, data_only=True)
        except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
            raise ImportFileError("IMPORT_FILE_MALFORMED",
                                  f"Excel 文件无法读取（{type(exc).__name__}），请确认是 .xlsx 格式") from None
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            workbook.close()
            raise empty_file()
        rows = enumerate(sheet.iter_rows(values_only=True), start=1)
        try:
            row_no, header, _ = find_header(rows, columns)
            header_text = [("" if c is None else str(c)) for c in header]
            fields = map_header(header_text, columns)
        except ImportFileError:
            workbook.close()
            raise
    except BaseException:
        stream.close()
        raise

    def body() -> Iterator[tuple[int, Sequence[Any]]]:
        try:
            yield from rows
        finally:
            workbook.close()
            stream.close()

    return Table("xlsx", None, fields, row_no, body(), [h.strip() for h in header_text])
