"""A document's tables as an Excel workbook a supervisor files (openpyxl): the document's title, number,
verification code and the SHA-256 of its PDF on top (what the workbook belongs to, verifiable on the public page),
then the text and each table, amounts as numbers in yuan."""

import io

from openpyxl import Workbook
from openpyxl.styles import Font

from services.kernel.documents.models import IssuedDocument
from services.kernel.documents.pdf import Amount, DocumentBody
from services.kernel.money import fen_to_yuan

MONEY_FORMAT = "#,##0.00"
BOLD = Font(bold=True)


def render_xlsx(body: DocumentBody, document: IssuedDocument) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = document.title[:31]
    workbook.properties.created = workbook.properties.modified = document.issued_at.replace(tzinfo=None)
    workbook.properties.title = f"{document.title} {document.number}"
    sheet.append([document.title])
    sheet["A1"].font = BOLD
    for label, value in (("文书编号", document.number), ("验证码", document.verification_code),
                         ("PDF 文件 SHA-256", document.sha256), ("签发单位", body.issuer)):
        sheet.append([label, value])
    for text in [*body.paragraphs, *body.closing]:
        sheet.append([text])
    for table in body.tables:
        sheet.append([])
        if table.caption:
            sheet.append([table.caption])
            sheet.cell(sheet.max_row, 1).font = BOLD
        sheet.append(table.headers)
        for cell in sheet[sheet.max_row]:
            cell.font = BOLD
        for row in table.rows:
            sheet.append([fen_to_yuan(c.fen) if isinstance(c, Amount) else c for c in row])
            for cell, value in zip(sheet[sheet.max_row], row, strict=False):
                if isinstance(value, Amount):
                    cell.number_format = MONEY_FORMAT
    if body.legal_basis:
        sheet.append([])
        sheet.append(["依据：" + "；".join(body.legal_basis)])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
