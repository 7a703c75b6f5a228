"""The internal-control yearly report (内控制度运行情况年度报告, 001 第二十四条: 每年12月底前要对上年度的稽核内控工作进行
总结，并将总结报告报送至人社部门监督机构).

Generated from the year's samples and findings in the area (what was drawn, by risk, what was reviewed, what did
not conform and went to oversight as a case), the auditor's own summary, and the staff figures the gateway's
identity reports give (incompatible-duty rules in force, staff long in high-risk posts). accounts cannot read the
gateway's database, so the auditor reads those two reports (``/api/identity/conflict-rules``,
``/api/identity/reports/long-tenure``, both open to internal auditors) and enters their figures; a report without
them says so in its own section rather than leaving it out. Issued as a numbered document (registry), and submitted
to oversight (``accounts.internal_control.report_submitted.v1``), which tracks the deadline."""

from collections import Counter
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Engine, select
from sqlmodel import Session

from services.accounts.internal_control import risk
from services.accounts.internal_control.models import ControlReport, ControlSample, SampledItem
from services.accounts.internal_control.service import NOT_CONFORM, SOURCE, auditor_region
from services.accounts.issuer import AGENCY
from services.contracts.accounts import InternalControlReportSubmitted
from services.kernel import clock, context
from services.kernel.audit import append_audit
from services.kernel.auth import ensure_in_region, region_filter
from services.kernel.db import snapshot_session, unit_of_work
from services.kernel.documents.models import IssuedDocument
from services.kernel.documents.pdf import DocumentBody, Table
from services.kernel.documents.registry import DocumentKind, Subject, issue, issuing_unit
from services.kernel.documents.text import chinese_date, legal_basis
from services.kernel.errors import Conflict, Invalid, NotFound
from services.kernel.events import new_event_id
from services.kernel.outbox import record_event

CONTROL_REPORT = DocumentKind(code="internal_control_report", title="稽核内控工作年度总结报告", prefix="社保内控字")
SUPERVISOR = "人力资源社会保障部门基金监督机构"
KIND_LABELS = {"monthly": "月度抽查", "quarterly": "季度抽查"}


@dataclass(frozen=True)
class StaffFigures:
    """What the auditor read from the gateway's identity reports."""

    conflict_rules: int
    long_tenure_staff: int
    tenure_years: int
    read_on: date
    note: str | None = None


@dataclass(frozen=True)
class YearFigures:
    samples: list[ControlSample]
    items: list[SampledItem]

    @property
    def reviewed(self) -> list[SampledItem]:
        return [i for i in self.items if i.finding is not None]

    @property
    def nonconforming(self) -> list[SampledItem]:
        return [i for i in self.items if i.finding == NOT_CONFORM]


def year_figures(session: Session, year: int, region: str) -> YearFigures:
    samples = list(session.execute(select(ControlSample).where(ControlSample.year == year,
                                                               ControlSample.region == region)
                                   .order_by(ControlSample.first_day, ControlSample.kind)).scalars())
    items = list(session.execute(select(SampledItem).where(SampledItem.sample_id.in_([s.id for s in samples]))
                                 .order_by(SampledItem.sample_id, SampledItem.rank)).scalars()) if samples else []
    return YearFigures(samples, items)


def _staff_paragraph(staff: StaffFigures | None) -> str:
    if staff is None:
        return ("四、岗位制约情况：本报告未填入不相容岗位规则与高风险岗位任职年限情况（该数据由平台身份管理保管，"
                "经办系统不能读取；报送人未提供），请另附平台身份报表。")
    note = f"{staff.note}。" if staff.note else ""
    return (f"四、岗位制约情况：据平台身份报表（{chinese_date(staff.read_on)}读取），现行不相容岗位规则 "
            f"{staff.conflict_rules} 条；在高风险岗位任职超过 {staff.tenure_years} 年的人员 {staff.long_tenure_staff} "
            f"人。{note}")


def report_body(figures: YearFigures, year: int, region: str, summary: str, staff: StaffFigures | None) \
        -> DocumentBody:
    by_risk = Counter(i.risk for i in figures.items)
    failed_by_risk = Counter(i.risk for i in figures.nonconforming)
    population = sum(s.population for s in figures.samples)
    sample_rows = [[s.period, KIND_LABELS.get(s.kind, s.kind), str(s.population), str(s.size), str(s.seed),
                    s.population_sha256[:16]] for s in figures.samples]
    risk_rows = [[risk.LABELS.get(code, code), str(count), str(failed_by_risk.get(code, 0))]
                 for code, count in sorted(by_risk.items())]
    failed_rows = [[i.title, risk.LABELS.get(i.risk, i.risk), i.act_id, i.reason or ""] for i in figures.nonconforming]
    return DocumentBody(
        addressee=f"{SUPERVISOR}：",
        paragraphs=[
            f"现将本机构（行政区划 {region}）{year} 年度稽核内控工作总结报告如下。",
            f"一、抽查情况：全年按月、按季对已办结业务随机抽样 {len(figures.samples)} 次，涉及业务 {population} 件，"
            f"抽取 {len(figures.items)} 件（高风险业务加权抽取），已核查 {len(figures.reviewed)} 件，"
            f"未核查 {len(figures.items) - len(figures.reviewed)} 件。",
            f"二、核查结论：符合规定 {len(figures.reviewed) - len(figures.nonconforming)} 件，不符合规定 "
            f"{len(figures.nonconforming)} 件，均已移送基金监督机构立案跟踪。",
            f"三、工作总结：{summary}",
            _staff_paragraph(staff),
        ],
        tables=[
            Table(caption="抽样记录（种子与总体摘要可复核）", headers=["期间", "类型", "业务总数", "抽取", "种子", "总体摘要"],
                  rows=sample_rows or [["本年无抽样", "", "", "", "", ""]], widths=[3, 3, 3, 2, 6, 5]),
            Table(caption="按风险类别", headers=["风险类别", "抽取件数", "不符合件数"],
                  rows=risk_rows or [["无", "0", "0"]], widths=[5, 3, 3]),
            Table(caption="不符合规定的业务", headers=["业务", "风险类别", "业务编号", "原因"],
                  rows=failed_rows or [["无", "", "", ""]], widths=[5, 3, 5, 6]),
        ],
        closing=["本报告由系统根据抽样与核查记录生成，所列种子可按原样复核抽样结果。"],
        issuer=issuing_unit(AGENCY),
        legal_basis=[legal_basis("001 第二十四条"), legal_basis("001 第十九条")],
    )


def check_submittable(session: Session, year: int, region: str) -> None:
    if year > clock.china_today().year:
        raise Invalid("CONTROL_REPORT_FUTURE_YEAR", f"{year} 年度尚未开始，不能报送年度总结")
    if session.execute(select(ControlReport.id).where(ControlReport.year == year,
                                                      ControlReport.region == region)).first() is not None:
        raise Conflict("CONTROL_REPORT_SUBMITTED", f"{year} 年度稽核内控总结已报送（本区划）")


def submit_report(engine: Engine, year: int, summary: str, staff: StaffFigures | None) \
        -> tuple[ControlReport, IssuedDocument]:
    """Issue the report (its own transaction: rendering is outside any lock), then record and send it."""
    region = auditor_region()
    with snapshot_session(engine) as session:
        check_submittable(session, year, region)
        figures = year_figures(session, year, region)
    document = issue(engine, CONTROL_REPORT, Subject(type="internal_control_report", id=f"{year}/{region}"),
                     report_body(figures, year, region, summary, staff))
    actor = context.current().actor
    with unit_of_work(engine) as session:
        check_submittable(session, year, region)
        report = ControlReport(
            id=new_event_id(), year=year, region=region, document_id=document.id, document_number=document.number,
            document_sha256=document.sha256, samples=len(figures.samples), sampled_items=len(figures.items),
            reviewed=len(figures.reviewed), nonconforming=len(figures.nonconforming),
            submitted_at=clock.utc_now(), submitted_by=actor.id)
        session.add(report)
        session.flush()
        append_audit(session, action="internal_control.report.submit", entity_type="control_report",
                     entity_id=report.id, detail={"year": year, "region": region, "document": document.number,
                                                  "sha256": document.sha256})
        record_event(session, InternalControlReportSubmitted(
            year=year, region=region, document_id=document.id, document_number=document.number,
            document_sha256=document.sha256, submitted_by=actor.id, submitted_at=report.submitted_at,
            samples=report.samples, sampled_items=report.sampled_items, nonconforming=report.nonconforming),
            source=SOURCE, subject=report.id)
        session.expunge(report)
    return report, document


def reports_of(session: Session) -> list[ControlReport]:
    return list(session.execute(select(ControlReport).where(region_filter(ControlReport.region))
                                .order_by(ControlReport.year.desc())).scalars())


def may_read(session: Session, document: IssuedDocument) -> None:
    """A yearly report is read again by the readers of its area, as ``GET /reports`` lists them (subject
    ``<year>/<region>``)."""
    ensure_in_region(context.current().actor, document.subject_id.partition("/")[2])


def document_of(session: Session, report_id: str) -> IssuedDocument:
    """The PDF of a report submitted in the reader's area, as it was issued."""
    report = session.execute(select(ControlReport).where(ControlReport.id == report_id,
                                                         region_filter(ControlReport.region))).scalar_one_or_none()
    if report is None:
        raise NotFound("CONTROL_REPORT_NOT_FOUND", "稽核内控年度报告不存在")
    return session.get(IssuedDocument, report.document_id)
