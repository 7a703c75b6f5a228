"""Collection's documents.

- **社会保险费催缴通知** (《中华人民共和国社会保险法》第八十六条): an issued arrears notice (``POST /arrears/notices``,
  whose stored computation is the source) as a document for the employer: principal outstanding and the late fee
  to the notice's as-of day, per contribution type and month, the daily rate and how the fee runs on.
"""

from collections import defaultdict
from datetime import date

from sqlalchemy import Engine
from sqlmodel import Session

from services.collection.arrears import service as arrears
from services.collection.models import ArrearsNotice
from services.collection.registry.endpoints import registry_employer
from services.kernel.db import snapshot_session
from services.kernel.documents.models import IssuedDocument
from services.kernel.documents.pdf import DocumentBody, Table
from services.kernel.documents.registry import DocumentKind, Subject, issue, issuing_unit
from services.kernel.documents.text import chinese_date, chinese_period, yuan
from services.kernel.money import yuan_to_fen

ARREARS_NOTICE = DocumentKind(code="arrears_notice", title="社会保险费催缴通知书", prefix="社保催字")
COLLECTOR = "社会保险费征收机构"
LAW = "《中华人民共和国社会保险法》第八十六条"

CONTRIBUTION_TYPES = {
    "PEN_EMP": "企业职工基本养老保险", "PEN_GOV": "机关事业单位基本养老保险", "PEN_RES": "城乡居民基本养老保险",
    "UNEMP": "失业保险", "INJURY": "工伤保险",
}


def _months(lines: list[dict]) -> list[list[str]]:
    """The notice's lines summed per contribution type and month (a line is one person's)."""
    totals: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for line in lines:
        figures = totals[(line["fund"], line["period"])]
        figures[0] += 1
        figures[1] += yuan_to_fen(line["principal_outstanding"])
        figures[2] += yuan_to_fen(line["late_fee"])
    return [[CONTRIBUTION_TYPES.get(fund, fund), chinese_period(period), str(count), yuan(principal), yuan(fee),
             yuan(principal + fee)]
            for (fund, period), (count, principal, fee) in sorted(totals.items())]


def arrears_notice_body(engine: Engine, notice_id: str) -> DocumentBody:
    with snapshot_session(engine) as session:
        notice = arrears.get_notice(session, notice_id)
        employer = registry_employer(session, notice.employer_id)
    document = notice.document
    as_of = date.fromisoformat(document["as_of"])
    principal, fee = yuan_to_fen(document["principal_outstanding"]), yuan_to_fen(document["late_fee"])
    return DocumentBody(
        addressee=f"{employer.name}（统一社会信用代码 {employer.uscc}）",
        paragraphs=[
            f"经核查，截至 {chinese_date(as_of)}，你单位有 {document['line_count']} 笔社会保险费逾期未缴，"
            f"欠缴本金人民币 {yuan(principal)} 元。依照{LAW}，自缴费期限届满次日起按日加收滞纳金"
            f"（日费率 {document['daily_rate']}），截至该日滞纳金 {yuan(fee)} 元，合计应缴 {yuan(principal + fee)} 元。"
            f"最早一笔的缴费期限为 {chinese_date(date.fromisoformat(document['oldest_due_date']))}。",
        ],
        tables=[Table(caption="欠缴明细（按险种和所属期汇总）",
                      headers=["险种", "所属期", "笔数", "欠缴本金（元）", "滞纳金（元）", "合计（元）"],
                      rows=_months(document["lines"]), widths=[7, 4, 2, 5, 5, 5])],
        closing=[
            "请你单位接到本通知后立即足额缴纳欠缴的社会保险费及滞纳金。滞纳金自缴费期限届满次日起至实际缴纳之日止"
            "逐日计算，本通知所列为截至计算日的金额；缴费先冲抵本金，再冲抵滞纳金。",
            "逾期仍不缴纳的，将依法申请县级以上有关行政部门作出划拨社会保险费的决定，或申请人民法院扣押、查封、拍卖你单位"
            "价值相当于应当缴纳社会保险费的财产。",
        ],
        issuer=issuing_unit(COLLECTOR),
        legal_basis=[LAW],
    )


def issue_arrears_notice(engine: Engine, notice_id: str) -> IssuedDocument:
    body = arrears_notice_body(engine, notice_id)
    return issue(engine, ARREARS_NOTICE, Subject(type="arrears_notice", id=notice_id), body)


def may_read(session: Session, document: IssuedDocument) -> None:
    """An arrears notice is read again by staff of the employer's area."""
    notice = session.get(ArrearsNotice, document.subject_id)
    if notice is not None:
        registry_employer(session, notice.employer_id)


def document_dossiers(session: Session, document: IssuedDocument) -> list[tuple[str, str]]:
    """An arrears notice goes into the dossier of the employer in arrears."""
    if document.subject_type != "arrears_notice":
        return []
    notice = session.get(ArrearsNotice, document.subject_id)
    return [] if notice is None else [("employer", notice.employer_id)]
