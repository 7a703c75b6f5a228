"""Retention of archive items (保管期限), per item type: data, with its basis.

The national rule is 《社会保险业务档案管理规定（试行）》(人力资源社会保障部、国家档案局令第3号, 公布 2009-07-23, 施行
2009-09-01). By 《社会保险业务档案管理规定（试行）》第七条 the records, evidence and bases formed in social insurance
business are collected, arranged and filed by its attachment 《社会保险业务材料归档范围与保管期限》. Retention is
permanent (永久) or a fixed term (定期) of 10, 30, 50 or 100 years; a fixed term is the *shortest* time the record is kept, counted from 1 January of
the year after it was formed; records past their term are appraised, those to be destroyed are listed in a 销毁清册,
approved, and destroyed under the watch of at least two people, and the 销毁清册 is kept permanently. The agency files
one dossier per insured person and per employer with these classes (004 第7项: 制定档案管理办法并严格执行).

The three classes of the archive report (permanent, long, short) are kept as ``retention_class``; the term the
attachment sets is ``years`` (None: permanent). Each basis names the attachment's row (section and item, as the
attachment numbers them) it applies.

Where the rows come from (the attachment's text as reproduced by public copies; the state's own page carries the
order and the articles, not the table):
- 一(一)–(六) 社会保险管理类: the attachment's first section, in full;
- 四(四)–(七), 五(一)–(七), 六(一)–(四): the medical, unemployment and work-injury benefit sections;
- 七(二)–(六), 八, 九(一)–(四): maternity, statistical reports, audit and supervision (稽核监管).
Copies read (2026-12): the order and articles 1–6 at www.gov.cn/flfg/2009-07/29/content_1378536.htm; articles 7–8 and
七–九 at jingyanla.com/a/13/1101112Z942022.html (and its page 4); 四–六 at
www.fsou.com.cn/html/text/lar/172509/17250993_4.html; 一(一)–(六) in the translations at ysznh.com and
woyaojiankangwang.com; the terms (永久, 10/30/50/100 年, 最低保管期限, counted from the next 1 January) in the
ministry's announcement of 2009-08 (www.syd-pc.com, 《社会保险业务档案管理规定（试行）》9月1日施行).

**Not found: sections 二 and 三** (between 社会保险管理类 and the medical benefits; by the attachment's order the
contribution collection section and the pension benefits section). Three item types depend on them and keep the mark
``条目待核`` in their basis: ``assessment`` (缴费核定: collection), ``claim_decision`` of a pension or a one-off
payment, and ``payroll_line`` (the pension section's 支付明细表 row; every benefit section found keeps its 支付明细表
30 years, but pensions are most of a payroll and their row was not seen). ``issued_document`` follows the business
it belongs to, so the arrears notice (collection) and the recovery notice (benefits) carry the mark too. Until the
rows are confirmed these items are kept **permanently**: the longest term, the one that cannot be shorter than the
attachment's. Keeping a record longer never breaks the rule, destroying it early does, and an appraisal that finds
the row may set its term then; it cannot bring back an item destroyed too early.
"""

from dataclasses import dataclass
from typing import Any

PERMANENT, LONG, SHORT = "permanent", "long", "short"
CLASS_LABELS = {PERMANENT: "永久", LONG: "长期", SHORT: "短期"}
NATIONAL_RULE = "《社会保险业务档案管理规定（试行）》附件《社会保险业务材料归档范围与保管期限》"
UNCONFIRMED = "条目待核"


@dataclass(frozen=True)
class Retention:
    retention_class: str
    years: int | None  # None: permanent
    basis: str
    label: str  # the item type in Chinese, as the catalogue prints it


def _term(years: int | None) -> str:
    return "〔永久〕" if years is None else f"〔{years}年〕"


def _class(years: int | None) -> str:
    return PERMANENT if years is None else LONG if years >= 50 else SHORT


def _row(label: str, row: str, years: int | None) -> Retention:
    """An item type whose row of the attachment was found: ``row`` is its section, item and words."""
    return Retention(_class(years), years, f"{NATIONAL_RULE} {row}{_term(years)}", label)


def _unconfirmed(label: str, what: str) -> Retention:
    """An item type whose row was not found: kept permanently until it is (see the module docstring)."""
    return Retention(PERMANENT, None, f"{NATIONAL_RULE} {what}（{UNCONFIRMED}：原文未见，取永久，不短于附件所定期限）",
                     label)


RETENTION: dict[str, Retention] = {
    "employer_registration": _row("参保单位登记", "一(一) 参保单位登记材料", None),
    "employer_change": _row("参保单位变更登记", "一(一) 参保单位登记材料（变更登记、注销登记）", None),
    "person_registration": _row("参保人员登记", "一(二) 参保人员登记材料", 100),
    "person_change": _row("参保人员信息变更", "一(二) 参保人员登记材料（基本信息变更）", 100),
    "enrolment": _row("参保登记", "一(二) 参保人员登记材料（参保登记、社会保险关系变动）", 100),
    "correction": _row("数据更正", "一(二) 参保人员登记材料（基本信息变更）、一(三) 社会保险个人账户管理材料", 100),
    "exchange_record": _row("部门共享数据", "一(六) 社会保险待遇领取资格核查材料", 50),
    "case_step": _row("稽核监督", "九(一) 社会保险稽核材料、九(二) 社会保险监察材料", 30),
    "assessment": _unconfirmed("缴费核定", "二 社会保险费征缴材料"),
    "claim_decision": _unconfirmed("待遇核定", "三 养老保险待遇核定材料（一次性待遇同）"),
    "payroll_line": _unconfirmed("待遇支付明细", "三 养老保险支付明细表（四(六)、五(六)、七(五) 各险种支付明细表为〔30年〕）"),
    "issued_document": _unconfirmed("文书", "文书随所属业务归档：催缴随二、追回待遇告知随三"),
}

# Where an item's references tell the attachment's row more precisely than its type: (item type, reference, value).
REFERENCE_KEYS = {"claim_decision": "claim_kind", "issued_document": "document_kind"}
REFINED: dict[tuple[str, str], Retention] = {
    ("claim_decision", "unemployment"): _row("待遇核定", "五(三) 失业保险待遇核定材料", 10),
    ("claim_decision", "injury"): _row("待遇核定", "六(四) 工伤保险伤残工亡待遇核定材料", 50),
    ("issued_document", "account_statement"): _row("文书", "一(三) 社会保险个人账户管理材料（个人账户对账）", 100),
}


def retention_of(item_type: str, references: dict[str, Any] | None = None) -> Retention:
    """The retention of an item of ``item_type`` (with ``references``, the row its kind names, where one is more
    precise); an item type the table does not know is kept permanently until someone classifies it (never destroyed
    by default)."""
    key = REFERENCE_KEYS.get(item_type)
    if key and references and (refined := REFINED.get((item_type, str(references.get(key))))):
        return refined
    return RETENTION.get(item_type) or Retention(PERMANENT, None, f"{NATIONAL_RULE}（未分类，永久保存待鉴定）",
                                                 item_type)


def expires_after(year_formed: int, retention: Retention) -> int | None:
    """The last year of the term: a record formed in 2026 kept 10 years is kept through 2036 (counted from
    1 January 2027). None: permanent."""
    return None if retention.years is None else year_formed + retention.years
