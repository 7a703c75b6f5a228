"""How the console writes things: amounts in 元 with thousands separators (exact Decimal from the API's yuan strings
or from fen, never float), instants in China time, Chinese labels for every code it shows."""

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from services.contracts.codes import CaseClass, CaseStatus, Fund, Severity
from services.kernel.auth import ROLES
from services.kernel.clock import CHINA

FUND_LABELS = {
    Fund.PEN_EMP: "企业职工基本养老保险", Fund.PEN_GOV: "机关事业单位基本养老保险", Fund.PEN_RES: "城乡居民基本养老保险",
    Fund.UNEMP: "失业保险", Fund.INJURY: "工伤保险",
}
CASE_STATUS_LABELS = {
    CaseStatus.issued: "已下发", CaseStatus.investigating: "核查中", CaseStatus.classified: "已分类",
    CaseStatus.rectifying: "整改中", CaseStatus.closed: "已销号", CaseStatus.dismissed: "已排除",
}
SEVERITY_LABELS = {Severity.low: "低", Severity.medium: "中", Severity.high: "高", Severity.severe: "严重"}
CASE_CLASS_LABELS = {
    CaseClass.DATA_ENTRY_ERROR: "（一）经办操作或后台修改导致数据错误",
    CaseClass.DATA_CONVERSION_ERROR: "（二）数据转换导致数据错误",
    CaseClass.EMPLOYER_NOT_REGISTERED: "（三）用人单位不依法办理社会保险登记",
    CaseClass.NOT_ENTITLED: "（四）不符合待遇领取条件",
    CaseClass.LARGE_UNRETURNED: "（五）违规领取金额较大且限期内未退还",
    CaseClass.SUSPECTED_FRAUD: "（六）涉嫌欺诈骗保",
}
# services/oversight/reconciliation/cells.py STATUSES
RECONCILIATION_STATUS_LABELS = {
    "matched": "一致", "mismatch": "不一致", "missing_tax": "缺税务数据", "missing_finance": "缺财政数据",
    "missing_agency": "缺经办数据", "late": "逾期",
}
# The legs and differences of R1 and R2 (services/oversight/reconciliation/cells.py amounts, differences).
LEG_LABELS = {"tax": "税务征收", "finance": "财政专户", "agency": "经办入账", "tax_principal": "税务征收（本金）",
              "tax_late_fee": "滞纳金", "assessed": "核定应缴", "arrears": "欠费（核定−征收）",
              "finance_minus_tax": "财政 − 税务", "agency_minus_tax_principal": "经办 − 税务本金",
              "agency_minus_tax": "经办 − 税务"}
WHISTLEBLOWING_CATEGORY_LABELS = {"collection": "征缴/收入", "payment": "待遇支付/支出", "management": "基金管理（挤占、挪用等）",
                                  "investment": "投资运营", "other": "其他"}
ROLE_LABELS = dict(ROLES)

LABELS = {"fund": FUND_LABELS, "case_status": CASE_STATUS_LABELS, "severity": SEVERITY_LABELS,
          "case_class": CASE_CLASS_LABELS, "reconciliation_status": RECONCILIATION_STATUS_LABELS, "leg": LEG_LABELS,
          "category": WHISTLEBLOWING_CATEGORY_LABELS, "role": ROLE_LABELS}


def label(code: object, kind: str) -> str:
    """The Chinese label of a code; an unknown code is shown as it is (never hidden)."""
    if code is None:
        return "—"
    table = LABELS[kind]
    try:
        return table[code]  # type: ignore[index]
    except KeyError:
        return str(code)


def yuan(value: object) -> str:
    """``"1234567.5"`` (the API's yuan string) or a Decimal → ``"1,234,567.50"``; None → ``—``."""
    if value is None or value == "":
        return "—"
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return f"{amount.quantize(Decimal('0.01')):,}"


def yuan_from_fen(fen: int | None) -> str:
    return "—" if fen is None else yuan(Decimal(int(fen)).scaleb(-2))


def china_time(value: object) -> str:
    """An ISO instant (any zone; naive = UTC, as the API writes them) in China time, to the minute."""
    if value is None or value == "":
        return "—"
    instant = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


def china_date(value: object) -> str:
    if value is None or value == "":
        return "—"
    day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    return day.strftime("%Y年%m月%d日")


def month_label(month: int | str) -> str:
    """202612 → 2026年12月."""
    text = str(month)
    return f"{text[:4]}年{int(text[4:6])}月"


FILTERS = {"yuan": yuan, "yuan_from_fen": yuan_from_fen, "china_time": china_time, "china_date": china_date,
           "month_label": month_label, "label": label}
