"""Report tables without a platform: the API query from the screen's filters (unknown options dropped, the cursor
passed on), sorting by a column (amounts as exact numbers, empty values last), the workbook of the rows shown
(amounts as exact numbers with the 元 format, labels in Chinese), and the form bodies (元 typed → exact fen)."""

from dataclasses import replace
from decimal import Decimal
from io import BytesIO

import pytest
from openpyxl import load_workbook

from gateway.console import forms, reports
from gateway.console.tables import Column, Filter, Table, workbook

pytestmark = pytest.mark.unit

TABLE = Table("测试表", "/api/x/things", (Column("name", "名称", link="/console/x/{id}"),
                                          Column("fund", "险种", "label:fund"), Column("amount", "金额", "yuan"),
                                          Column("fee_fen", "滞纳金", "fen"), Column("totals.income", "收入", "yuan")),
              (Filter("fund", "险种", ("PEN_EMP", "UNEMP"), "fund"), Filter("unit", "单位")), page_size=50)
ROWS = [{"id": "a", "name": "甲", "fund": "UNEMP", "amount": "90071992547409.93", "fee_fen": 5, "totals": {"income": "1"}},
        {"id": "b", "name": "乙", "fund": "PEN_EMP", "amount": "2.50", "fee_fen": None, "totals": {"income": "3"}},
        {"id": "c", "name": "丙", "fund": "NEW_FUND", "amount": None, "fee_fen": 100, "totals": {}}]


def test_the_api_query_keeps_known_filters_and_the_cursor():
    assert TABLE.params({"fund": "UNEMP", "unit": " 某单位 ", "after": "c1", "sort": "amount", "other": "x"}) == {
        "limit": 50, "fund": "UNEMP", "unit": "某单位", "after": "c1"}
    assert TABLE.params({"fund": "NOT_A_FUND", "unit": ""}) == {"limit": 50}  # an unknown option is not sent


def test_the_next_page_cursor_from_the_answer_or_its_header():
    assert TABLE.next_cursor({"items": [], "next_cursor": "n2"}, {}) == "n2"
    listed = Table("列表", "/api/x/list", TABLE.columns, items=None, cursor=None, cursor_header="X-Next-Cursor")
    assert listed.next_cursor([], {"X-Next-Cursor": "n3"}) == "n3" and listed.next_cursor([], {}) is None
    assert listed.params({"after": "n3"})["after"] == "n3"


def test_every_filter_of_the_screens_offers_labelled_options():
    for table in [v for v in vars(reports).values() if isinstance(v, Table)]:
        for f in table.filters:
            assert not f.options or f.labels, (table.title, f.name)  # no bare code offered to a user


def test_a_whole_list_is_sorted_here_by_a_column_exact_amounts_empty_last():
    whole = replace(TABLE, cursor=None)  # no cursor: the table holds the whole list
    assert [r["id"] for r in whole.sorted(ROWS, "amount")] == ["b", "a", "c"]
    assert [r["id"] for r in whole.sorted(ROWS, "-amount")] == ["a", "b", "c"]
    assert [r["id"] for r in whole.sorted(ROWS, "-totals.income")] == ["b", "a", "c"]
    assert whole.sorted(ROWS, "no_such_column") == ROWS
    assert all(whole.sortable(c) for c in whole.columns)


def test_a_paged_list_is_sorted_by_the_api_never_the_page_shown():
    """A column with the list route's sort key is sorted by the API (``sort`` passed, ``-`` kept); a column without
    one is not sortable at all: sorting one page of a longer list would mislead."""
    paged = replace(TABLE, columns=(Column("name", "名称", sort="name"), *TABLE.columns[1:]))
    assert paged.params({"sort": "-name", "after": "c1"}) == {"limit": 50, "sort": "-name", "after": "c1"}
    assert paged.params({"sort": "amount"}) == {"limit": 50}  # no API key for it: not sent, not sorted here
    assert paged.sorted(ROWS, "-name") == ROWS and paged.sorted(ROWS, "amount") == ROWS
    assert [c.key for c in paged.columns if paged.sortable(c)] == ["name"]
    by_key = {c.key: c.sort for c in reports.PERSONS.columns}
    assert by_key["name"] == "name" and by_key["citizen_id"] is None  # masked numbers give no order


def test_cells_are_written_in_chinese_and_yuan():
    name, fund, amount, fee, income = TABLE.columns
    assert name.href(ROWS[0]) == "/console/x/a" and fund.text(ROWS[1]) == "企业职工基本养老保险"
    assert fund.text(ROWS[2]) == "NEW_FUND"  # an unknown code is shown, never hidden
    assert amount.text(ROWS[0]) == "90,071,992,547,409.93" and amount.text(ROWS[2]) == "—"
    assert fee.text(ROWS[2]) == "1.00" and income.text(ROWS[1]) == "3.00"


def test_the_workbook_holds_the_rows_shown_with_exact_amounts():
    book = load_workbook(BytesIO(workbook(TABLE, ROWS, "险种：UNEMP")))
    sheet = book.active
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0] == ["测试表（险种：UNEMP）", None, None, None, None]
    assert rows[1] == ["名称", "险种", "金额", "滞纳金", "收入"]
    assert rows[2][:2] == ["甲", "失业保险"]
    assert Decimal(str(rows[2][2])) == Decimal("90071992547409.93") or rows[2][2] == 90071992547409.93
    assert rows[2][3] == Decimal("0.05") or rows[2][3] == 0.05
    assert sheet["C3"].number_format == "#,##0.00"
    assert rows[4][2] == "—"
    assert len(rows) == 2 + len(ROWS)


def test_every_filter_option_and_label_column_has_chinese_labels():
    from gateway.console.format import LABELS
    tables = [v for v in vars(reports).values() if isinstance(v, Table)]
    assert len(tables) >= 15
    for table in tables:
        for f in table.filters:
            if f.labels:
                assert all(code in LABELS[f.labels] for code in f.options), (table.title, f.name)
        for column in table.columns:
            if column.kind.startswith("label:"):
                assert column.kind.split(":", 1)[1] in LABELS, (table.title, column.key)


def test_form_bodies_send_exact_fen_and_leave_empty_optionals_out():
    fields = {"class_code": "int", "finding": "text", "amount_fen": "fen?", "reason": "text?", "ok": "bool"}
    assert forms.body_of(fields, {"class_code": "1", "finding": " 属实 ", "amount_fen": "90071992547409.93",
                                  "ok": "true"}) == {
        "class_code": 1, "finding": "属实", "amount_fen": 9007199254740993, "ok": True}
    # malformed: passed on as typed for the API's own 422; an unticked box is false
    assert forms.body_of(fields, {"class_code": "x", "finding": "", "amount_fen": "1.005"}) == {
        "class_code": "x", "finding": "", "amount_fen": "1.005", "ok": False}  # never rounded silently
    for typed in ("abc", "NaN", "Infinity", "-inf"):
        assert forms.body_of({"amount_fen": "fen"}, {"amount_fen": typed}) == {"amount_fen": typed}
