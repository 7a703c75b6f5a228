"""Accounts' documents.

- **个人权益记录** (individual account statement): for one insured person and year, what their pension individual
  account received and paid out — opening balance, each entry with its month, interest at the year's 记账利率,
  closing balance — and the contribution months recorded to date per fund; from the ledger as accounts keeps it
  (``ledger.service.statement``), the citizen id masked as the API masks it for the issuing role.
"""

from collections import Counter

from sqlalchemy import Engine, select

from services.accounts.ledger import service as ledger
from services.accounts.models import ContributionMonth, Person
from services.accounts.issuer import AGENCY
from services.kernel.clock import CHINA
from services.kernel.db import snapshot_session
from services.kernel.documents.models import IssuedDocument
from services.kernel.documents.pdf import DocumentBody, Table
from services.kernel.documents.registry import DocumentKind, Subject, issue, issuing_unit
from services.kernel.documents.text import chinese_date, chinese_period, yuan
from services.kernel.pii import reveal_citizen_id

ACCOUNT_STATEMENT = DocumentKind(code="account_statement", title="社会保险个人权益记录", prefix="社保权字")

ENTRY_TYPES = {"contribution": "个人缴费记账", "interest": "记账利息", "transfer_in": "转入",
               "transfer_out": "转出", "withdrawal": "支取"}
FUND_NAMES = {"PEN_EMP": "企业职工基本养老保险", "PEN_GOV": "机关事业单位基本养老保险", "PEN_RES": "城乡居民基本养老保险",
              "UNEMP": "失业保险", "INJURY": "工伤保险"}


def account_statement_body(engine: Engine, person_id: str, year: int) -> DocumentBody:
    with snapshot_session(engine) as session:
        result = ledger.statement(session, person_id, year)  # known, in the caller's area, with an account
        person = session.get(Person, person_id)
        months = Counter(session.execute(select(ContributionMonth.fund).where(
            ContributionMonth.person_id == person_id)).scalars())
    rows = [[chinese_date(e.posted_at.astimezone(CHINA).date()), ENTRY_TYPES.get(e.entry_type, e.entry_type),
             chinese_period(e.period) if e.period else "", yuan(e.amount_fen)] for e in result.entries]
    rate = f"，当年记账利率 {result.rate}" if result.rate else ""
    return DocumentBody(
        addressee=f"{person.name}（公民身份号码 {reveal_citizen_id(person.citizen_id)}）",
        paragraphs=[
            f"你的基本养老保险个人账户 {year} 年度权益记录如下（账户状态：{'正常' if result.account.status == 'open' else '已终止'}"
            f"{rate}）：年初余额 {yuan(result.opening_fen)} 元，本年记入 {yuan(result.credits_fen)} 元"
            f"（其中利息 {yuan(result.interest_fen)} 元），本年支出 {yuan(result.debits_fen)} 元，"
            f"年末余额 {yuan(result.closing_fen)} 元。",
        ],
        tables=[
            Table(caption=f"{year} 年度个人账户明细", headers=["记账日期", "项目", "费款所属期", "金额（元）"],
                  rows=rows or [["", "本年无记账", "", ""]], widths=[5, 5, 4, 4]),
            Table(caption="截至签发日的缴费月数", headers=["险种", "缴费月数"],
                  rows=[[FUND_NAMES.get(f, f), str(n)] for f, n in sorted(months.items())] or [["无", "0"]],
                  widths=[6, 3]),
        ],
        closing=["如对上述记录有异议，请携带本人有效身份证件到参保地社会保险经办机构申请核查。"],
        issuer=issuing_unit(AGENCY),
        legal_basis=["《中华人民共和国社会保险法》第七十四条"],
    )


def issue_account_statement(engine: Engine, person_id: str, year: int) -> IssuedDocument:
    body = account_statement_body(engine, person_id, year)
    return issue(engine, ACCOUNT_STATEMENT, Subject(type="person", id=person_id), body)
