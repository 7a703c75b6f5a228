"""Layout of an official document as PDF (fpdf2): title, number, addressee, body, tables, legal basis, issuer and
date, and on every page the number and verification code with where to verify them."""

import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from fpdf import FPDF
from fpdf.enums import Align, WrapMode
from fpdf.fonts import FontFace

from services.kernel.documents.fonts import subset_truetype
from services.kernel.documents.text import chinese_date, yuan

FAMILY = "NotoSerifSC"
HEADINGS = FontFace(emphasis="", fill_color=(235, 235, 235))  # one weight only: the font has no bold
REFERENCE_TAG = "sifund-document:"
VERIFY_HINT = "真伪核验：社会保险基金平台公开核验页 /verify，凭文书编号和验证码，或上传本文件"


@dataclass(frozen=True)
class Amount:
    """Money in a table cell: printed in yuan with separators, a number in a workbook (excel.py)."""

    fen: int

    def __str__(self) -> str:
        return yuan(self.fen)


Cell = str | Amount


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[Cell]]
    caption: str | None = None
    # Relative column widths; equal when not given.
    widths: list[int] | None = None


@dataclass(frozen=True)
class DocumentBody:
    """What a service writes: the wording and the figures. Personal data in it is already masked as the reader's
    role allows."""

    addressee: str | None
    paragraphs: list[str]
    issuer: str  # the issuing body, as signed under the text
    legal_basis: list[str] = field(default_factory=list)  # e.g. 《中华人民共和国社会保险法》第八十六条
    tables: list[Table] = field(default_factory=list)
    closing: list[str] = field(default_factory=list)  # paragraphs after the tables


@dataclass(frozen=True)
class Stamp:
    """What the registry adds: the number, the verification code, the title of the kind and the issue instant."""

    title: str
    number: str
    verification_code: str
    issued_at: datetime
    issued_on: date
    # ASCII "kind/year/serial" in the file's metadata: a verifier finds which document a presented file claims to
    # be without reading its Chinese text (registry.presented_reference).
    reference: str


def _all_text(body: DocumentBody, stamp: Stamp) -> str:
    parts = [stamp.title, stamp.number, stamp.verification_code, body.addressee or "", body.issuer, VERIFY_HINT,
             *body.paragraphs, *body.legal_basis, *body.closing, chinese_date(stamp.issued_on),
             "依据：", "第页共", "文书编号", "验证码"]
    for table in body.tables:
        parts += [table.caption or "", *table.headers, *(str(cell) for row in table.rows for cell in row)]
    return "".join(parts)


class _Page(FPDF):
    stamp: Stamp

    def footer(self) -> None:
        self.set_y(-18)
        self.set_font(FAMILY, size=8)
        self.cell(0, 4, f"文书编号 {self.stamp.number} · 验证码 {self.stamp.verification_code} · "
                        f"第 {self.page_no()} 页 共 {{nb}} 页", align=Align.C, new_x="LMARGIN", new_y="NEXT")
        self.cell(0, 4, VERIFY_HINT, align=Align.C)


def render_pdf(body: DocumentBody, stamp: Stamp) -> bytes:
    """The document's bytes. The same body and stamp give the same bytes (creation date = issue instant)."""
    pdf = _Page(format="A4")
    pdf.stamp = stamp
    pdf.set_margins(25, 25, 25)
    pdf.set_auto_page_break(True, margin=25)
    pdf.set_creation_date(stamp.issued_at)
    pdf.set_title(f"{stamp.title} {stamp.number}")
    pdf.set_producer("sifund")
    pdf.set_keywords(f"{REFERENCE_TAG}{stamp.reference}")
    pdf.alias_nb_pages()
    with tempfile.TemporaryDirectory(prefix="sifund-font-") as folder:
        font_file = Path(folder) / f"{FAMILY}.ttf"
        font_file.write_bytes(subset_truetype(_all_text(body, stamp)))
        pdf.add_font(FAMILY, fname=font_file)
        pdf.add_page()
        _write(pdf, body, stamp)
        return bytes(pdf.output())


def _write(pdf: FPDF, body: DocumentBody, stamp: Stamp) -> None:
    pdf.set_font(FAMILY, size=20)
    pdf.multi_cell(0, 12, stamp.title, align=Align.C, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, size=11)
    pdf.cell(0, 8, stamp.number, align=Align.C, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font(FAMILY, size=12)
    if body.addressee:
        pdf.multi_cell(0, 8, f"{body.addressee}：", wrapmode=WrapMode.CHAR, new_x="LMARGIN", new_y="NEXT")
    _paragraphs(pdf, body.paragraphs)
    for table in body.tables:
        _table(pdf, table)
    _paragraphs(pdf, body.closing)
    if body.legal_basis:
        pdf.ln(2)
        pdf.multi_cell(0, 8, "依据：" + "；".join(body.legal_basis) + "。", wrapmode=WrapMode.CHAR,
                       new_x="LMARGIN", new_y="NEXT")
    pdf.ln(10)
    pdf.multi_cell(0, 8, body.issuer, align=Align.R, new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(0, 8, chinese_date(stamp.issued_on), align=Align.R, new_x="LMARGIN", new_y="NEXT")


def _paragraphs(pdf: FPDF, paragraphs: list[str]) -> None:
    for text in paragraphs:
        # No two-character indent: fpdf2 drops a leading ideographic space (U+3000) as it wraps.
        pdf.multi_cell(0, 8, text, wrapmode=WrapMode.CHAR, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)


def _table(pdf: FPDF, table: Table) -> None:
    pdf.ln(2)
    if table.caption:
        pdf.multi_cell(0, 8, table.caption, align=Align.C, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, size=10)
    widths = tuple(table.widths) if table.widths else None
    with pdf.table(col_widths=widths, text_align="CENTER", line_height=6, wrapmode=WrapMode.CHAR,
                   first_row_as_headings=True,
                   headings_style=HEADINGS) as grid:
        for row in [table.headers, *table.rows]:
            line = grid.row()
            for cell in row:
                line.cell(str(cell))
    pdf.set_font(FAMILY, size=12)
    pdf.ln(2)
