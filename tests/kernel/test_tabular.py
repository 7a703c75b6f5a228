"""The tabular upload reader (services/kernel/tabular.py) on its own, with a column set of its own: format by content,
encodings, header matching, row numbers, and the file-level refusals every service's upload shares."""

import io
from datetime import date, datetime

import openpyxl
import pytest

from services.kernel import tabular
from services.kernel.tabular import Column, ImportFileError, read_table

pytestmark = pytest.mark.unit  # pure: no NATS, no app, no database (make test-unit)

COLUMNS = (
    Column("code", "编号", ("number",), True),
    Column("name", "名称", ("title",), True),
    Column("note", "备注"),
)


def workbook_bytes(*rows: list) -> bytes:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def refusal(data: bytes) -> ImportFileError:
    with pytest.raises(ImportFileError) as caught:
        read_table(data, COLUMNS)
    assert caught.value.status == 422
    return caught.value


@pytest.mark.parametrize(("data", "encoding"), [
    ("编号,名称\n1,甲\n".encode(), "utf-8"),
    (b"\xef\xbb\xbf" + "编号,名称\n1,甲\n".encode(), "utf-8-sig"),
    ("编号,名称\n1,甲\n".encode("gbk"), "gbk"),
])
def test_csv_encodings_are_recognised(data, encoding):
    table = read_table(data, COLUMNS)
    assert (table.file_format, table.encoding) == ("csv", encoding)
    assert list(table.rows()) == [(2, {"code": "1", "name": "甲"}, [])]


def test_headers_match_aliases_star_marks_blanks_and_full_width_forms():
    data = " *Ｎｕｍｂｅｒ \tTI TLE\t备 注\nA1\t乙\t\n".encode()
    table = read_table(data, COLUMNS)
    assert table.fields == ["code", "name", "note"]
    assert list(table.rows()) == [(2, {"code": "A1", "name": "乙"}, [])]


def test_row_numbers_count_blank_rows_and_extra_cells_are_reported():
    table = read_table("编号,名称\n\n1,甲\n,,\n2,乙,,多余\n".encode(), COLUMNS)
    rows = list(table.rows())
    assert rows == [(3, {"code": "1", "name": "甲"}, []), (5, {"code": "2", "name": "乙"}, ["多余"])]
    assert table.raw(rows[1][1], rows[1][2]) == {"编号": "2", "名称": "乙", "（多余的单元格）": ["多余"]}


def test_excel_is_read_by_content_with_typed_cells_below_a_title_row():
    data = workbook_bytes(["导出的名册"], [], ["编号", "名称", "备注"], [7, "丙", date(2024, 1, 31)])
    table = read_table(data, COLUMNS)
    assert (table.file_format, table.encoding, table.header_row_no) == ("xlsx", None, 3)
    [(row_no, values, extra)] = list(table.rows())
    assert (row_no, values, extra) == (4, {"code": 7, "name": "丙", "note": datetime(2024, 1, 31)}, [])  # as Excel keeps it
    assert table.raw(values) == {"编号": 7, "名称": "丙", "备注": "2024-01-31T00:00:00"}


def test_a_wrong_column_set_is_refused_naming_missing_unknown_and_repeated_columns():
    error = refusal("编号,编号,颜色\n1,2,红\n".encode())
    assert error.code == "IMPORT_COLUMNS_INVALID"
    assert error.message == "导入文件的列不符合模板。缺少必需的列：名称（name）；无法识别的列：颜色；重复的列：编号"
    assert (error.details["missing_fields"], error.details["unknown"], error.details["repeated"]) == (
        ["name"], ["颜色"], ["编号"])


@pytest.mark.parametrize(("data", "code"), [
    (b"", "IMPORT_FILE_EMPTY"),
    (b"\r\n \r\n", "IMPORT_FILE_EMPTY"),
    (b"\xef\xbb\xbf", "IMPORT_FILE_EMPTY"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "IMPORT_FORMAT_UNSUPPORTED"),
    ("编号,名称\n".encode() + b"\xff\xfe\x80\xff\x00\x81", "IMPORT_ENCODING_INVALID"),
    (b"PK\x03\x04 not really a workbook", "IMPORT_FILE_MALFORMED"),
])
def test_file_level_refusals(data, code):
    assert refusal(data).code == code


def test_a_header_only_table_has_no_rows():
    assert list(read_table("编号,名称\n".encode(), COLUMNS).rows()) == []
    assert list(read_table(workbook_bytes(["编号", "名称"]), COLUMNS).rows()) == []


STREAMED_FILES = [
    "编号,名称\n1,甲\n2,乙\n".encode(),
    b"\xef\xbb\xbf" + "编号,名称,备注\n1,甲,\n\n3,丙,说明\n".encode(),
    "编号,名称\r\n1,甲\r\n2,\"乙\r\n丙\"\r\n".encode("gbk"),
    "编号\t名称\n1\t甲\t多余\n".encode(),
    workbook_bytes(["花名册"], ["编号", "名称"], [1, "甲"]),
]


@pytest.mark.parametrize("data", STREAMED_FILES)
def test_a_file_on_disk_is_read_as_a_stream_with_the_same_table(data, tmp_path, monkeypatch):
    """A job's file is read from disk a block at a time; blocks of 3 bytes split every multi-byte character."""
    monkeypatch.setattr(tabular, "READ_BYTES", 3)
    path = tmp_path / "upload"
    path.write_bytes(data)
    in_memory, on_disk = read_table(data, COLUMNS), read_table(path, COLUMNS)
    assert (on_disk.file_format, on_disk.encoding, on_disk.header_row_no, on_disk.fields) == (
        in_memory.file_format, in_memory.encoding, in_memory.header_row_no, in_memory.fields)
    assert list(on_disk.rows()) == list(in_memory.rows())


@pytest.mark.parametrize(("data", "code"), [
    (b"\r\n \r\n" * 1000, "IMPORT_FILE_EMPTY"),
    ("编号,名称\n".encode() + "1,甲\n".encode() * 1000 + b"2,\xff\xfe\n", "IMPORT_ENCODING_INVALID"),
    ("编号,名称\n".encode("utf-16"), "IMPORT_ENCODING_INVALID"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "IMPORT_FORMAT_UNSUPPORTED"),
])
def test_a_file_on_disk_is_refused_as_the_same_bytes_are_even_far_into_the_file(data, code, tmp_path, monkeypatch):
    monkeypatch.setattr(tabular, "READ_BYTES", 64)
    path = tmp_path / "upload"
    path.write_bytes(data)
    assert refusal(data).code == code
    with pytest.raises(ImportFileError) as caught:
        read_table(path, COLUMNS)
    assert caught.value.code == code


def test_an_upload_is_checked_on_its_head_and_the_whole_file_still_refused_when_read(tmp_path, monkeypatch):
    """Inside the request only the first whole lines are decoded; the job reading the whole file refuses what is
    undecodable further on with the same code."""
    monkeypatch.setattr(tabular, "HEAD_BYTES", 64)
    data = "编号,名称\n".encode() + "1,甲\n".encode() * 100 + b"2,\xff\xfe\n"
    path = tmp_path / "upload"
    path.write_bytes(data)
    head = tabular.file_head(path)
    assert isinstance(head, bytes) and data.startswith(head) and head.endswith(b"\n") and len(head) <= 64
    assert next(read_table(head, COLUMNS).rows()) == (2, {"code": "1", "name": "甲"}, [])
    with pytest.raises(ImportFileError) as caught:
        read_table(path, COLUMNS)
    assert caught.value.code == "IMPORT_ENCODING_INVALID"
    small = tmp_path / "small"
    small.write_bytes(data[:40])
    assert tabular.file_head(small) == small
    book = tmp_path / "book"
    book.write_bytes(workbook_bytes(["编号", "名称"], *[[i, "甲"] for i in range(200)]))
    assert tabular.file_head(book) == book
