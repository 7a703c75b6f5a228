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
# services/oversight/cases/workflow.py FOLLOW_UP_KINDS (the API also sends kind_name; the forms need the codes).
FOLLOW_UP_LABELS = {
    "data_corrected": "业务/财务/信息数据部门已按程序修改数据", "extraction_fixed": "信息数据部门已更正并校验联网数据抽取程序",
    "employer_notified": "已书面/短信告知用人单位办理参保登记并申报缴费", "employer_registered": "用人单位经告知后已办理社会保险登记",
    "referred_to_labour_inspection": "已汇总佐证材料提交劳动保障监察部门",
    "benefit_suspended": "待遇已暂停发放（待遇系统事件确认）", "recovery_notice_issued": "已下达《追回社会保险待遇告知书》（待遇系统事件确认）",
    "audit_conducted": "经办机构已开展稽核检查", "referred_to_police": "涉嫌社会保险欺诈犯罪，已移送公安机关",
}
CLAIM_STATUS_LABELS = {"in_review": "审核中", "blocked": "校验未通过", "approved": "已核准", "rejected": "已驳回",
                       "withdrawn": "已撤回", "returned": "已退回经办（待补正）"}
CLAIM_KIND_LABELS = {"basic_pension": "基本养老金", "resident_pension": "城乡居民养老金", "unemployment": "失业保险金",
                     "injury": "工伤保险待遇", "one_off": "一次性待遇"}
CLAIM_LEVEL_LABELS = {"first_review": "初审", "second_review": "复核/复审", "approval": "审批",
                      "large_amount_review": "大额复核", "submission": "经办（补正重报）"}
DECISION_LABELS = {"approve": "同意", "reject": "驳回", "return": "退回", "resubmit": "补正后重新提交"}
IMPORTANCE_LABELS = {"ordinary": "一般事项（两级审核）", "important": "重要事项（三级审核）"}
INCIDENT_STATUS_LABELS = {"reported": "已报告", "due": "待报告（期限内）", "overdue": "逾期未报（急情缓报）",
                          "deadline_unknown": "期限未知（日历未覆盖）", "half_yearly": "半年汇总报告"}
INCIDENT_KIND_LABELS = {"misappropriation": "挪用", "diversion": "挤占", "fraud": "骗取"}
INCIDENT_CHANNEL_LABELS = {"inspection": "监督检查", "audit": "审计", "internal_control": "内控检查", "media": "媒体报道",
                           "whistleblowing": "举报", "court": "司法机关", "data_verification": "数据核查"}
WHISTLEBLOWING_STATUS_LABELS = {"received": "已受理", "assigned": "已分派", "investigating": "调查中",
                                "answered": "已答复", "closed": "已办结"}
WHISTLEBLOWING_CHANNEL_LABELS = {"web": "网站", "phone": "电话", "email": "电子邮件", "letter": "信件", "visit": "来访"}
OUTCOME_LABELS = {"substantiated": "属实", "partly_substantiated": "部分属实", "unsubstantiated": "不属实"}
INSPECTION_STATUS_LABELS = {"planned": "已制定方案", "notified": "已通知", "inspecting": "检查中",
                            "feedback_issued": "已下发问题反馈函", "reported": "已形成监督报告"}
CHAIN_STATUS_LABELS = {"ok": "完好", "broken": "链断裂", "rewound": "被回退", "broken+rewound": "断裂且回退",
                       "unreachable": "无法连接", "error": "校验出错", "rebaselined": "已重设基线"}
COMPONENT_LABELS = {"accounts": "参保登记服务", "collection": "征缴与财务服务", "benefits": "待遇服务",
                    "gateway": "网关与身份认证"}
RUN_STATUS_LABELS = {"running": "运行中", "done": "已完成", "ok": "成功", "partial": "部分完成", "failed": "失败",
                     "skipped": "已跳过", "error": "出错", "queued": "排队中", "succeeded": "成功", "completed": "已完成",
                     "pending": "排队中", "rejected": "已拒绝"}
TRIGGER_LABELS = {"schedule": "定时", "manual": "手动", "on_demand": "按需"}
REMITTANCE_STATUS_LABELS = {"received": "已到账", "partly_received": "部分到账", "outstanding": "未到账",
                            "overdue": "逾期未到账"}
LATENESS_LABELS = {"on_time": "按时", "late": "逾期", "pending": "未到期", "overdue": "已逾期", "unknown": "日历未知"}
ACCOUNT_KIND_LABELS = {"special": "财政专户", "income": "收入户", "expenditure": "支出户"}
OPEN_CLOSED_LABELS = {"open": "开立", "closed": "已销户", "active": "正常", "suspended": "暂停", "deregistered": "已注销",
                      "stopped": "已终止", "ended": "已终止", "accepted": "已入账", "flagged": "疑点"}
DIRECTION_LABELS = {"in": "收入", "out": "支出"}
MATCH_STATUS_LABELS = {"matched": "已匹配", "unmatched": "未匹配", "resolved": "已处理"}
LIFE_STATUS_LABELS = {"alive": "正常", "deceased": "死亡", "imprisoned": "服刑", "missing": "失踪"}
SEX_LABELS = {"M": "男", "F": "女"}
BUDGET_STATUS_LABELS = {"draft": "编制中", "submitted": "已报送", "reviewed": "已审核", "approved": "已批准",
                        "returned": "已退回", "withdrawn": "已撤回"}
RECTIFICATION_STATUS_LABELS = {"open": "整改中", "closed": "已销号"}
FLAG_LABELS = {"true": "是", "false": "否"}
# A sweep's result per rule (services/oversight/rules/sweep.py, registry.Tally).
SWEEP_RESULT_LABELS = {"status": "结果", "found": "发现", "created": "新立案", "existing": "已有案件", "seconds": "耗时（秒）",
                       "months_not_ended": "未结束月份", "note": "说明", "error": "错误", "trace": "跟踪"}
# A job's result (an import's report: services/accounts/imports/jobs.py; others shown with their own keys).
JOB_RESULT_LABELS = {"import_job_id": "导入编号", "kind": "类型", "mode": "方式", "status": "状态", "file_format": "文件格式",
                     "encoding": "编码", "total_rows": "总行数", "accepted_rows": "已接收", "rejected_rows": "被拒绝",
                     "reported_overlaps": "重叠参保期间", "rejections_by_code": "拒绝原因统计", "rejections": "被拒绝的行（前若干）",
                     "rejections_more": "其余被拒绝行数", "rejections_at": "全部被拒绝行",
                     # a bank result file (benefits.bank_result_file)
                     "file_id": "报盘文件编号", "run_id": "发放批次编号", "applied": "本次入账回盘", "unchanged": "已有相同结果",
                     "paid_lines": "发放成功笔数", "failed_lines": "发放失败笔数", "paid_total": "成功金额（元）",
                     "returned_total": "退回金额（元）", "file_status": "报盘文件状态", "awaiting_result": "待回盘笔数"}
REPORT_ACTION_LABELS = {"received": "受理", "assigned": "分派", "investigating": "开始调查", "answered": "答复",
                        "closed": "办结", "flagged": "标记为重大或紧急", "linked": "关联同一事项"}
# The registry's change history (services/accounts: entity types and actions of HistoryEntry).
HISTORY_ENTITY_LABELS = {"person": "人员", "person_bank_account": "银行账户", "life_status_correction": "生存状态更正",
                         "individual_account": "个人账户", "enrolment": "参保关系", "employer": "单位"}
HISTORY_ACTION_LABELS = {"register": "登记", "update": "变更", "add": "新增", "close": "关闭", "request": "申请",
                         "approve": "批准", "reject": "驳回"}
# The actions of a case's history (services/oversight/cases/service.py).
CASE_ACTION_LABELS = {
    "open": "立案下发", "investigate": "开始核查", "classify": "认定分类", "rectify": "建立整改台账",
    "rectification_evidence": "报送整改情况", "follow_up": "登记后续处理", "follow_up_confirmed": "后续处理经事件确认",
    "follow_up_withdrawn": "后续处理撤回", "close": "核查销号", "propose_dismissal": "提出排除",
    "confirm_dismissal": "确认排除", "reject_dismissal": "驳回排除申请", "escalate": "逾期升级",
    "recurred": "再次发现", "reported_again": "再次报告",
}
# services/collection/treasury/rules.py PURPOSES and COUNTERPARTY_NAMES
PURPOSE_LABELS = {"receipt": "到账", "transfer": "划转", "allocation": "拨付", "interest": "利息", "payment": "支付",
                  "return": "退回", "other": "其他"}
COUNTERPARTY_LABELS = {"treasury": "国库", "special": "财政专户", "income": "收入户", "expenditure": "支出户",
                       "interest": "利息", "payer": "缴费人", "beneficiary": "待遇领取人", "other": "其他账户"}
TARGET_LEVEL_LABELS = {"same_level": "同级经办机构", "lower_level": "下级", "service_institution": "服务机构",
                       "other": "其他"}
UNIT_TYPE_LABELS = {"enterprise": "企业", "public_institution": "事业单位", "government": "机关",
                    "individual_business": "个体工商户"}
ASSESSMENT_STATUS_LABELS = {"issued": "已核定", "superseded": "已被更正", "settled": "已结清"}
# services/accounts/exchange/schemas.py BatchKind, RecordStatus
EXCHANGE_KIND_LABELS = {"death": "死亡", "cremation": "火化", "imprisonment": "服刑", "release": "刑满释放",
                        "business_registration": "企业设立登记"}
EXCHANGE_STATUS_LABELS = {"applied": "已应用", "unmatched": "未匹配", "conflict": "与登记信息冲突", "invalid": "数据无效",
                          "resolved": "已处理", "dismissed": "已关闭"}
IMPORT_KIND_LABELS = {"employers": "参保单位", "persons": "参保人员", "enrolments": "参保关系"}
HALF_LABELS = {"1": "上半年", "2": "下半年"}
SOURCE_LABELS = {"manual": "手工录入", "bank_statement": "银行对账单"}
SUBJECT_TYPE_LABELS = {"person": "个人", "employer": "单位"}
RULE_MODE_LABELS = {"event": "事件触发", "sweep": "定期扫描", "event+sweep": "事件触发＋定期扫描"}
# services/benefits/payroll: a run's status, a line's, a bank file's
PAYROLL_STATUS_LABELS = {"computed": "已计算（待审批）", "approved": "已审批", "paid": "已发放"}
PAYROLL_LINE_LABELS = {"pending": "待发放", "in_file": "已报盘（待回盘）", "paid": "已发放", "failed": "发放失败（已退回）",
                       "withheld": "暂停发放（不计入总额）", "held_back": "审批后暂停（计入总额）"}
BANK_FILE_STATUS_LABELS = {"issued": "已报盘", "settled": "已回盘"}

LABELS = {"fund": FUND_LABELS, "case_status": CASE_STATUS_LABELS, "severity": SEVERITY_LABELS,
          "case_class": CASE_CLASS_LABELS, "reconciliation_status": RECONCILIATION_STATUS_LABELS, "leg": LEG_LABELS,
          "category": WHISTLEBLOWING_CATEGORY_LABELS, "role": ROLE_LABELS, "follow_up": FOLLOW_UP_LABELS,
          "claim_status": CLAIM_STATUS_LABELS, "claim_kind": CLAIM_KIND_LABELS, "claim_level": CLAIM_LEVEL_LABELS,
          "decision": DECISION_LABELS, "importance": IMPORTANCE_LABELS, "incident_status": INCIDENT_STATUS_LABELS,
          "incident_kind": INCIDENT_KIND_LABELS, "incident_channel": INCIDENT_CHANNEL_LABELS,
          "report_status": WHISTLEBLOWING_STATUS_LABELS, "report_channel": WHISTLEBLOWING_CHANNEL_LABELS,
          "outcome": OUTCOME_LABELS, "inspection_status": INSPECTION_STATUS_LABELS, "chain_status": CHAIN_STATUS_LABELS,
          "component": COMPONENT_LABELS, "run_status": RUN_STATUS_LABELS, "trigger": TRIGGER_LABELS,
          "remittance_status": REMITTANCE_STATUS_LABELS, "lateness": LATENESS_LABELS,
          "account_kind": ACCOUNT_KIND_LABELS, "status": OPEN_CLOSED_LABELS, "direction": DIRECTION_LABELS,
          "match_status": MATCH_STATUS_LABELS, "life_status": LIFE_STATUS_LABELS, "sex": SEX_LABELS,
          "budget_status": BUDGET_STATUS_LABELS, "rectification_status": RECTIFICATION_STATUS_LABELS,
          "flag": FLAG_LABELS, "case_action": CASE_ACTION_LABELS, "report_action": REPORT_ACTION_LABELS,
          "sweep_result": SWEEP_RESULT_LABELS, "job_result": JOB_RESULT_LABELS,
          "history_entity": HISTORY_ENTITY_LABELS, "history_action": HISTORY_ACTION_LABELS, "purpose": PURPOSE_LABELS, "counterparty": COUNTERPARTY_LABELS,
          "target_level": TARGET_LEVEL_LABELS, "unit_type": UNIT_TYPE_LABELS, "import_kind": IMPORT_KIND_LABELS,
          "exchange_kind": EXCHANGE_KIND_LABELS, "exchange_status": EXCHANGE_STATUS_LABELS,
          "assessment_status": ASSESSMENT_STATUS_LABELS, "half": HALF_LABELS, "source": SOURCE_LABELS, "subject_type": SUBJECT_TYPE_LABELS, "rule_mode": RULE_MODE_LABELS,
          "payroll_status": PAYROLL_STATUS_LABELS, "payroll_line": PAYROLL_LINE_LABELS,
          "bank_file_status": BANK_FILE_STATUS_LABELS}
# services/benefits/payroll: a run's funding as finance sees it (GET /payroll/runs?funding=).
LABELS["funding"] = {"requested": "已申请拨付", "awaiting": "已审批、待申请拨付"}
LABELS["client_status"] = {"active": "启用", "disabled": "已停用"}  # gateway/identity: a system client's status
# services/accounts/persons: a life-status correction's status and the corrections queue's filter.
LABELS["correction_status"] = {"requested": "待审核", "approved": "已通过", "rejected": "已驳回", "all": "全部状态"}
LABELS["exclude_mine"] = {"true": "是"}


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
