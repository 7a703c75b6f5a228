"""Retention of archive items (保管期限), per item type: data, with its basis.

The national rule is 《社会保险业务档案管理规定（试行）》(人力资源社会保障部、国家档案局令第3号, 2009). Under
《社会保险业务档案管理规定（试行）》第七条 business records are collected, arranged and filed by its attachment
《社会保险业务材料归档范围与保管期限》; retention is permanent (永久) or for a fixed term of 10, 30, 50 or 100 years,
counted from 1 January of the year after the record was formed; records past their term are appraised, those to be
destroyed are listed in a 销毁清册, approved, and destroyed under the watch of at least two people, and the 销毁清册
is kept permanently. The agency files one dossier per insured person and per employer with these classes
(004 第7项: 制定档案管理办法并严格执行).

The three classes of the archive report (permanent, long, short) are kept as ``retention_class``; the term the
national attachment sets, where it is more precise, is ``years`` (None: permanent). Where the attachment's item
is not certain for an act, the longer term is taken: keeping a record longer never breaks the rule, destroying it
early does.
"""

from dataclasses import dataclass

PERMANENT, LONG, SHORT = "permanent", "long", "short"
CLASS_LABELS = {PERMANENT: "永久", LONG: "长期", SHORT: "短期"}
NATIONAL_RULE = "《社会保险业务档案管理规定（试行）》附件《社会保险业务材料归档范围与保管期限》"


@dataclass(frozen=True)
class Retention:
    retention_class: str
    years: int | None  # None: permanent
    basis: str
    label: str  # the item type in Chinese, as the catalogue prints it


def _term(years: int | None) -> str:
    return "〔永久〕" if years is None else f"〔{years}年〕"


def _rule(item: str, years: int | None) -> str:
    return f"{NATIONAL_RULE} {item}{_term(years)}"


RETENTION: dict[str, Retention] = {
    "employer_registration": Retention(PERMANENT, None, _rule("一(一) 参保单位登记材料", None), "参保单位登记"),
    "employer_change": Retention(PERMANENT, None, _rule("一(一) 参保单位变更、注销登记材料", None), "参保单位变更登记"),
    "person_registration": Retention(LONG, 100, _rule("一(二) 参保人员登记材料", 100), "参保人员登记"),
    "person_change": Retention(LONG, 100, _rule("一(二) 参保人员基本信息变更材料", 100), "参保人员信息变更"),
    "enrolment": Retention(LONG, 100, _rule("一(二) 参保人员参保登记、社会保险关系变动材料", 100), "参保登记"),
    "correction": Retention(LONG, 100, _rule("一(二)、一(三) 基本信息变更、个人账户修改材料", 100), "数据更正"),
    "exchange_record": Retention(LONG, 50, _rule("一(六) 社会保险待遇领取资格核查材料", 50), "部门共享数据"),
    "claim_decision": Retention(LONG, 100, _rule("待遇核定材料（条目待核，取较长期限）", 100), "待遇核定"),
    "payroll_line": Retention(SHORT, 30, _rule("待遇支付明细表", 30), "待遇支付明细"),
    "assessment": Retention(SHORT, 30, _rule("社会保险费征缴材料（条目待核，取较长期限）", 30), "缴费核定"),
    "case_step": Retention(SHORT, 30, _rule("九(一) 社会保险稽核材料", 30), "稽核监督"),
    "issued_document": Retention(LONG, 100, _rule("文书随所属业务归档（取较长期限）", 100), "文书"),
}


def retention_of(item_type: str) -> Retention:
    """The retention of ``item_type``; an item type the table does not know is kept permanently until someone
    classifies it (never destroyed by default)."""
    return RETENTION.get(item_type) or Retention(PERMANENT, None, f"{NATIONAL_RULE}（未分类，永久保存待鉴定）",
                                                 item_type)


def expires_after(year_formed: int, retention: Retention) -> int | None:
    """The last year of the term: a record formed in 2026 kept 10 years is kept through 2036 (counted from
    1 January 2027). None: permanent."""
    return None if retention.years is None else year_formed + retention.years
