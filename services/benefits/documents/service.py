"""The recovery notice as a document (追回社会保险待遇告知书, 001 第二十九条(四)): the overpaid months, the total,
what is recovered, what remains and the deadline, from the notice as benefits keeps it."""

from sqlalchemy import Engine
from sqlmodel import Session

from services.benefits.models import BeneficiaryPerson, RecoveryNotice
from services.benefits.recovery import service as recovery
from services.benefits.registry.service import get_person
from services.kernel.db import snapshot_session
from services.kernel.documents.models import IssuedDocument
from services.kernel.documents.pdf import DocumentBody, Table
from services.kernel.documents.registry import DocumentKind, Subject, issue, issuing_unit
from services.kernel.documents.text import chinese_date, chinese_period, legal_basis, yuan
from services.kernel.pii import reveal_citizen_id

RECOVERY_NOTICE = DocumentKind(code="recovery_notice", title="追回社会保险待遇告知书", prefix="社保追字")
DEFAULT_ISSUER = "社会保险经办机构"

OVERPAYMENT_REASONS = {
    "paid_after_death": "死亡后仍发放",
    "paid_during_imprisonment": "服刑期间仍发放",
    "manual_finding": "核查发现不符合领取条件",
}


def _addressee(person: BeneficiaryPerson) -> str:
    who = f"{person.name}（公民身份号码 {reveal_citizen_id(person.citizen_id)}）"
    # A deceased person's overpayments are repaid from the estate: the notice goes to whoever holds it.
    return f"{who}的继承人或遗产管理人" if person.life_status == "deceased" else who


def recovery_notice_body(engine: Engine, notice_id: str) -> DocumentBody:
    with snapshot_session(engine) as session:
        notice: RecoveryNotice = recovery.get_notice(session, notice_id)  # known, and in the caller's area
        person = get_person(session, notice.person_id)
        overpayments, _ = recovery.notice_details(session, notice)
    remaining = recovery.remaining_fen(notice)
    rows = [[chinese_period(o.period), yuan(o.amount_fen), OVERPAYMENT_REASONS.get(o.reason, o.reason)]
            for o in overpayments]
    return DocumentBody(
        addressee=_addressee(person),
        paragraphs=[
            "经核实，下列期间发放的社会保险待遇不符合待遇领取条件，本机构已暂停发放，"
            f"多领待遇共计人民币 {yuan(notice.amount_fen)} 元。",
        ],
        tables=[Table(caption="多领待遇明细", headers=["待遇期间", "金额（元）", "原因"], rows=rows, widths=[3, 3, 4])],
        closing=[
            f"截至本告知书签发之日，已追回 {yuan(notice.recovered_fen)} 元，尚需退还 {yuan(remaining)} 元。"
            f"请于 {chinese_date(notice.deadline)} 前退还多领待遇。",
            "逾期未退还的，本机构将以个人账户余额、一次性待遇或恢复发放后一年内定期待遇抵扣；"
            "不足抵扣的，转稽核检查。",
        ],
        issuer=issuing_unit(DEFAULT_ISSUER),
        legal_basis=[legal_basis("001 第二十九条(四)"), legal_basis("001 第二十九条(五)")],
    )


def issue_recovery_notice(engine: Engine, notice_id: str) -> IssuedDocument:
    body = recovery_notice_body(engine, notice_id)
    return issue(engine, RECOVERY_NOTICE, Subject(type="recovery_notice", id=notice_id), body)


def document_dossiers(session: Session, document: IssuedDocument) -> list[tuple[str, str]]:
    """A recovery notice goes into the dossier of the person told to repay."""
    if document.subject_type != "recovery_notice":
        return []
    notice = session.get(RecoveryNotice, document.subject_id)
    return [] if notice is None else [("person", notice.person_id)]
