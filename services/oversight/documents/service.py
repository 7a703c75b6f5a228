"""Oversight's documents.

- **问题反馈函** (001 第十一条(三)): after an on-site inspection, the letter to the inspected unit listing each
  finding (逐条) with the amount involved and its rectification deadline, from the inspection as recorded (the
  letter's own registration number, date and requirements included).
- **预算表及执行情况报告** (002 二(三)、三(一)): a fund's budget in force, item by item with totals and surplus, and
  its execution to a month from oversight's own ledger against time progress, with the early warnings; as PDF, or
  its tables as a workbook for the supervisor's files.
- **要情半年汇总报告** (001 第三十一条): the incidents discovered in a half-year by kind and channel, each with its
  amount and, for a major one, when it reached the same-level and the provincial supervisor (late ones marked),
  and the major ones still unreported past their deadline.
"""

from collections import Counter
from collections.abc import Callable
from datetime import date

from sqlalchemy import Engine
from sqlmodel import Session

from services.kernel import archives
from services.kernel.db import snapshot_session
from services.kernel.documents.models import IssuedDocument
from services.kernel.documents.pdf import Amount, Cell, DocumentBody, Table
from services.kernel.documents.registry import DocumentKind, Subject, issue, issuing_unit
from services.kernel.documents.text import chinese_date, chinese_period, legal_basis, yuan
from services.kernel.errors import Conflict
from services.kernel.money import yuan_to_fen
from services.oversight.budget import service as budget
from services.oversight.budget.items import EXPENDITURE_ITEMS, INCOME_ITEMS, ITEMS
from services.oversight.incidents import service as incidents
from services.oversight.incidents.models import MajorIncident
from services.oversight.incidents.schemas import CHANNEL_LABELS, KIND_LABELS, LEVEL_LABELS
from services.oversight.inspections import service as inspections
from services.oversight.inspections.filing import letter_dossiers

FEEDBACK_LETTER = DocumentKind(code="inspection_feedback", title="问题反馈函", prefix="社保监函")
SUPERVISOR = "社会保险基金监督机构"


def feedback_letter_body(engine: Engine, inspection_id: str) -> DocumentBody:
    with snapshot_session(engine) as session:
        inspection = inspections.get(session, inspection_id)
        if inspection.letter_issued_on is None:
            raise Conflict("FEEDBACK_LETTER_NOT_ISSUED",
                           "该现场监督尚未下发问题反馈函（先登记反馈函及各项整改期限）")
        team = inspections.members_of(session, [inspection.id])[inspection.id]
        findings = inspections.findings_of(session, [inspection.id])[inspection.id]
    members = "、".join(f"{m.name}（组长）" if m.leader else m.name for m in team)
    oral = (f"，并于 {chinese_date(inspection.oral_feedback_on)} 口头反馈了检查情况"
            if inspection.oral_feedback_on else "")
    rows = [[str(f.seq), f.title, f.description, yuan(f.amount_fen),
             chinese_date(f.rectify_by) if f.rectify_by else ""] for f in findings]
    total = sum(f.amount_fen for f in findings)
    closing = [f"以上问题共 {len(findings)} 项，涉及资金合计人民币 {yuan(total)} 元。"
               "请你单位对照所列问题逐项整改，在各项整改期限内将整改情况书面报送本机构。"]
    if inspection.letter_requirements:
        closing.append(f"整改要求：{inspection.letter_requirements}")
    closing.append(f"本函登记文号：{inspection.letter_no}；发函日期：{chinese_date(inspection.letter_issued_on)}。")
    return DocumentBody(
        addressee=inspection.target_unit,
        paragraphs=[f"本机构监督检查组（{members}）于 {chinese_date(inspection.planned_on)} 对你单位实施了现场监督检查"
                    f"（检查范围：{inspection.scope}）{oral}。现将检查发现的问题书面反馈如下："],
        tables=[Table(caption="检查发现的问题及整改期限",
                      headers=["序号", "问题", "具体情况", "涉及资金（元）", "整改期限"], rows=rows,
                      widths=[2, 6, 10, 5, 5])],
        closing=closing,
        issuer=issuing_unit(SUPERVISOR),
        legal_basis=[legal_basis("001 第十一条(三)")],
    )


def issue_feedback_letter(engine: Engine, inspection_id: str) -> IssuedDocument:
    body = feedback_letter_body(engine, inspection_id)
    return issue(engine, FEEDBACK_LETTER, Subject(type="inspection", id=inspection_id), body)


def document_dossiers(session: Session, document: IssuedDocument) -> list[archives.DossierRef]:
    """The feedback letter goes into the inspected employer's dossier or the inspection's own (inspections/filing.py);
    the budget report and the incident summary concern no person, employer or inspection."""
    return letter_dossiers(session, document) if document.kind == FEEDBACK_LETTER.code else []


# -- budget tables and execution report (002 二(三)、三(一)) ---------------------------------------------------------

BUDGET_REPORT = DocumentKind(code="budget_report", title="社会保险基金预算表及执行情况报告", prefix="社保预字",
                             workbook=True)


def _budget_table(current: dict[str, int]) -> Table:
    rows: list[list[Cell]] = []
    for side, items in (("收入", INCOME_ITEMS), ("支出", EXPENDITURE_ITEMS)):
        rows += [[side, name, Amount(current[item])] for item, name in items.items()]
        rows.append([side, f"{side}合计", Amount(sum(current[i] for i in items))])
    summed = budget.totals(current)
    rows.append(["结余", "本年收支结余", Amount(summed["surplus"])])
    return Table(caption="预算表（现行预算数）", headers=["收支", "项目", "预算数（元）"], rows=rows, widths=[2, 6, 5])


def _percent(value: object) -> str:
    return "—" if value is None else f"{value}%"


def budget_report_body(engine: Engine, fund: str, year: int, month: int | None) -> DocumentBody:
    with snapshot_session(engine) as session:
        found = budget.get_budget(session, fund, year)
        report = budget.execution(session, fund, year, month)
        current = budget.amounts(session, found.id)
    month_no = report["month"] % 100
    execution_rows: list[list[Cell]] = [
        [i["name"], Amount(yuan_to_fen(i["budget"])), Amount(yuan_to_fen(i["actual"])), _percent(i["execution"]),
         _percent(report["time_progress"]), "—" if i["deviation"] is None else str(i["deviation"]),
         "预警" if i["warning"] else "正常"] for i in report["items"]]
    monthly_rows: list[list[Cell]] = [
        [chinese_period(m["month"]), i["name"], Amount(yuan_to_fen(m["actual"])), Amount(yuan_to_fen(m["cumulative"])),
         _percent(m["execution"]), "已结账" if m["closed"] else "未结账"]
        for i in report["items"] for m in i["months"]]
    approval = (f"，{found.approval_ref}（{chinese_date(found.approved_on)}）批准" if found.approval_ref and found.approved_on
                else "")
    warnings = [w["message"] for w in report["warnings"]] or [
        f"各项执行进度与时间进度的偏差均在预警线 {report['threshold']} 个百分点以内。"]
    return DocumentBody(
        addressee=None,
        paragraphs=[f"{report['fund_name']} {year} 年度预算（第 {report['budget_version']} 版{approval}）及截至 {year} 年"
                    f" {month_no} 月的执行情况如下。执行数取自监督机构独立账簿：社会保险费收入为经办机构到账确认记账数，"
                    "社会保险待遇支出为银行确认支付数。"],
        tables=[
            _budget_table(current),
            Table(caption=f"预算执行情况（截至 {year} 年 {month_no} 月）",
                  headers=["项目", "预算数（元）", "累计执行（元）", "执行进度", "时间进度", "偏差（百分点）", "状态"],
                  rows=execution_rows, widths=[5, 5, 5, 3, 3, 3, 2]),
            Table(caption="分月执行明细", headers=["月份", "项目", "当月（元）", "累计（元）", "执行进度", "月结"],
                  rows=monthly_rows, widths=[3, 5, 4, 4, 3, 2]),
        ],
        closing=["预警：" + "；".join(warnings),
                 "其余收支项目（" + "、".join(ITEMS[i] for i in report["not_from_ledger"]) + "）不在监督账簿中逐笔记录，"
                 "以决算时财政部门账簿数为准。"],
        issuer=issuing_unit(SUPERVISOR),
        legal_basis=[legal_basis("002 二(三)"), legal_basis("002 三(一)")],
    )


def issue_budget_report(engine: Engine, fund: str, year: int, month: int | None) -> IssuedDocument:
    body = budget_report_body(engine, fund, year, month)
    return issue(engine, BUDGET_REPORT, Subject(type="budget", id=f"{fund}/{year}"), body)


# -- half-year major-incident summary (001 第三十一条) ----------------------------------------------------------------

INCIDENT_SUMMARY = DocumentKind(code="incident_summary", title="社会保险基金要情半年汇总报告", prefix="社保要字",
                                workbook=True)
HALVES = {1: "上半年", 2: "下半年"}


def _report_text(reported_on: date | None, late: bool | None) -> str:
    if reported_on is None:
        return "未报告"
    return chinese_date(reported_on) + ("（逾期）" if late else "")


def _counted(incidents: list[MajorIncident], key: Callable[[MajorIncident], str],
             labels: dict[str, str]) -> list[list[Cell]]:
    counts: Counter[str] = Counter(key(i) for i in incidents)
    amounts: Counter[str] = Counter()
    for incident in incidents:
        amounts[key(incident)] += incident.amount_fen
    return [[label, str(counts[code]), Amount(amounts[code])] for code, label in labels.items()]


def incident_summary_body(engine: Engine, year: int, half: int, as_of: date) -> DocumentBody:
    with snapshot_session(engine) as session:
        found = incidents.in_half(session, year, half)
    first, last = incidents.half_bounds(year, half)
    major = [i for i in found if i.major]
    late = [i for i in found if i.same_level_late or i.provincial_late]
    overdue = [i for i in found if incidents.state(i, as_of).status == "overdue"]
    rows: list[list[Cell]] = [
        [chinese_date(i.discovered_on), KIND_LABELS.get(i.kind, i.kind), i.title, i.unit, Amount(i.amount_fen),
         "是" if i.major else "否",
         _report_text(i.same_level_reported_on, i.same_level_late) if i.major else "半年汇总",
         _report_text(i.provincial_reported_on, i.provincial_late) if i.major else "半年汇总"] for i in found]
    closing = [f"重大要情逾期报告 {len(late)} 起" + ("：" + "、".join(i.title for i in late) if late else "") + "。",
               f"截至 {chinese_date(as_of)}，已过报告期限仍未报告的重大要情 {len(overdue)} 起"
               + ("：" + "、".join(i.title for i in overdue) if overdue else "") + "。"]
    return DocumentBody(
        addressee=LEVEL_LABELS["same_level"] + "、上级社会保险经办机构",
        paragraphs=[f"{year} 年{HALVES[half]}（{chinese_date(first)}至{chinese_date(last)}）共发现要情 {len(found)} 起，"
                    f"涉及金额 {yuan(sum(i.amount_fen for i in found))} 元；其中重大要情 {len(major)} 起，"
                    f"涉及金额 {yuan(sum(i.amount_fen for i in major))} 元。重大要情应在发现后 5 个工作日内报告同级和"
                    "省级社会保险基金监督机构，其报告情况见下表。"],
        tables=[
            Table(caption="按类型", headers=["类型", "起数", "金额（元）"],
                  rows=_counted(found, lambda i: i.kind, KIND_LABELS), widths=[4, 2, 4]),
            Table(caption="按发现渠道", headers=["发现渠道", "起数", "金额（元）"],
                  rows=_counted(found, lambda i: i.channel, CHANNEL_LABELS), widths=[6, 2, 4]),
            Table(caption="要情明细", headers=["发现日期", "类型", "要情", "单位", "金额（元）", "重大", "报同级", "报省级"],
                  rows=rows or [["", "", "本半年无要情", "", "", "", "", ""]], widths=[4, 2, 5, 5, 4, 2, 4, 4]),
        ],
        closing=closing,
        issuer=issuing_unit(SUPERVISOR),
        legal_basis=[legal_basis("001 第三十一条")],
    )


def issue_incident_summary(engine: Engine, year: int, half: int, as_of: date) -> IssuedDocument:
    body = incident_summary_body(engine, year, half, as_of)
    return issue(engine, INCIDENT_SUMMARY, Subject(type="incident_half_year", id=f"{year}-H{half}"), body)
