"""Report tables: a table is declared once (its API route, its columns, its filters) and shown as an HTML table with
server-side filtering, paging (the API's cursor) and sorting (the API's ``sort`` parameter where its list route
admits the column's key: ``Column.sort``; a list answered whole, without a cursor, is sorted here), and downloaded as an Excel workbook built from the very
rows the table shows (openpyxl), when the API has no workbook of its own.

A column says how its value is written (``kind``): ``text``, ``yuan`` (the API's yuan string), ``fen``, ``time``
(an instant, China time), ``date``, ``month`` (YYYYMM), ``bool``, ``count`` or ``label:<kind>`` (a code, written
with its Chinese label from format.LABELS)."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from io import BytesIO
from typing import Any

from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from gateway.console import format as fmt

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
AMOUNT_FORMAT = "#,##0.00"


@dataclass(frozen=True)
class Column:
    key: str  # a dotted path into the row, e.g. "amounts.tax"
    label: str
    kind: str = "text"
    link: str | None = None  # a console href with the row's fields, e.g. "/console/oversight/incidents/{id}"
    sort: str | None = None  # the list route's sort key for this column (services.kernel.paging.SortKeys)

    def value(self, row: dict[str, Any]) -> Any:
        value: Any = row
        for part in self.key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    @property
    def numeric(self) -> bool:
        return self.kind in ("yuan", "fen", "count")

    def text(self, row: dict[str, Any]) -> str:
        return write(self.kind, self.value(row))

    def href(self, row: dict[str, Any]) -> str | None:
        if self.link is None:
            return None
        try:
            return self.link.format(**row)
        except (KeyError, IndexError):
            return None


@dataclass(frozen=True)
class Filter:
    name: str  # the API's query parameter
    label: str
    options: tuple[str, ...] = ()  # codes, shown with their labels (``labels``); empty: a free text field
    labels: str | None = None  # the format.LABELS kind of the options


@dataclass(frozen=True)
class Table:
    title: str
    api: str  # the gateway path of the API's list route, e.g. "/api/oversight/incidents"
    columns: tuple[Column, ...]
    filters: tuple[Filter, ...] = ()
    items: str | None = "items"  # where the rows are in the answer; None: the answer is the list
    cursor: str | None = "next_cursor"  # the answer's next-page cursor, passed back as ?after=
    cursor_header: str | None = None  # or the header that carries it (a route answering a bare list)
    page_size: int = 100
    fixed: dict[str, str] = field(default_factory=dict)  # query parameters always sent
    caption: str = ""

    @property
    def paged(self) -> bool:
        return bool(self.cursor or self.cursor_header)

    def sortable(self, column: Column) -> bool:
        """Sorted by the API (its key for the column), or here when the table holds the whole list: never the one
        page shown of a longer list."""
        return column.sort is not None or not self.paged

    def api_sort(self, sort: str | None) -> str | None:
        """The API's ``sort`` for the table's ``sort`` (a column key, ``-`` first for descending), if it has one."""
        key = (sort or "").removeprefix("-")
        column = next((c for c in self.columns if c.key == key and c.sort), None)
        return None if column is None else ("-" if (sort or "").startswith("-") else "") + column.sort

    def params(self, query: dict[str, str]) -> dict[str, Any]:
        """The API's query: the table's fixed parameters, the filters given, the sort, the cursor, the page size."""
        params: dict[str, Any] = {**self.fixed, "limit": self.page_size}
        if sort := self.api_sort(query.get("sort")):
            params["sort"] = sort
        for f in self.filters:
            value = (query.get(f.name) or "").strip()
            if value and (not f.options or value in f.options):
                params[f.name] = value
        if (self.cursor or self.cursor_header) and query.get("after"):
            params["after"] = query["after"]
        return params

    def rows(self, answer: Any) -> list[dict[str, Any]]:
        rows = answer if self.items is None else answer.get(self.items, [])
        return list(rows)

    def next_cursor(self, answer: Any, headers: Mapping[str, str]) -> str | None:
        if self.cursor_header:
            return headers.get(self.cursor_header)
        return answer.get(self.cursor) if self.cursor and isinstance(answer, dict) else None

    def sorted(self, rows: list[dict[str, Any]], sort: str | None) -> list[dict[str, Any]]:
        """Rows sorted by a column (``key`` or ``-key`` for descending) when the table holds the whole list; the
        API's order otherwise (sorted there by the column's key, or not sortable)."""
        if not sort or self.paged:
            return rows
        key, descending = sort.lstrip("-"), sort.startswith("-")
        column = next((c for c in self.columns if c.key == key), None)
        if column is None:
            return rows
        present = [r for r in rows if column.value(r) is not None]
        absent = [r for r in rows if column.value(r) is None]
        present.sort(key=lambda r: sort_key(column, r), reverse=descending)
        return present + absent


def sort_key(column: Column, row: dict[str, Any]) -> Any:
    value = column.value(row)
    if column.kind in ("yuan", "fen", "count"):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return Decimal(0)
    return str(value)


def _bool(value: Any) -> str:
    return "是" if value else "否"


WRITERS: dict[str, Callable[[Any], str]] = {
    "yuan": fmt.yuan, "fen": fmt.yuan_from_fen, "time": fmt.china_time, "date": fmt.china_date,
    "month": lambda v: "—" if v is None else fmt.month_label(v), "bool": _bool,
}


def write(kind: str, value: Any) -> str:
    if kind.startswith("label:"):
        return fmt.label(value, kind.split(":", 1)[1])
    if kind in WRITERS:
        return WRITERS[kind](value)
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(value)


def excel_value(column: Column, row: dict[str, Any]) -> Any:
    """Amounts as exact numbers (Decimal, never float) in 元; everything else as the table writes it."""
    value = column.value(row)
    if value is not None and column.kind == "yuan":
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return str(value)
    if value is not None and column.kind == "fen":
        return Decimal(int(value)).scaleb(-2)
    if value is not None and column.kind == "count":
        return value
    return column.text(row)


def workbook(table: Table, rows: list[dict[str, Any]], subtitle: str = "") -> bytes:
    """An .xlsx of the rows: a title line, the column labels, one line per row."""
    book = Workbook()
    sheet = book.active
    sheet.title = table.title[:31]
    sheet.append([table.title + (f"（{subtitle}）" if subtitle else "")])
    sheet.append([c.label for c in table.columns])
    for row in rows:
        sheet.append([excel_value(c, row) for c in table.columns])
    for index, column in enumerate(table.columns, start=1):
        letter = get_column_letter(index)
        sheet.column_dimensions[letter].width = max(10, len(column.label) * 2 + 2)
        if column.kind in ("yuan", "fen"):
            for (cell,) in sheet.iter_rows(min_row=3, min_col=index, max_col=index):
                cell.number_format = AMOUNT_FORMAT
    sheet.freeze_panes = "A3"
    out = BytesIO()
    book.save(out)
    return out.getvalue()
