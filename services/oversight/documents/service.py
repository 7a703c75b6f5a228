"""Oversight's documents.

- **问题反馈函** (001 第十一条(三)): after an on-site inspection, the letter to the inspected unit listing each
  finding (逐条) with the amount involved and its rectification deadline, from the inspection as recorded (the
  letter's own registration number, date and requirements included).
"""

from sqlalchemy import Engine

from services.kernel.db import snapshot_session
from services.kernel.documents.models import IssuedDocument
from services.kernel.documents.pdf import DocumentBody, Table
from services.kernel.documents.registry import DocumentKind, Subject, issue, issuing_unit
from services.kernel.documents.text import chinese_date, legal_basis, yuan
from services.kernel.errors import Conflict
from services.oversight.inspections import service as inspections

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
