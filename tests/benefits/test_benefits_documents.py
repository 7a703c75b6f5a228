"""The recovery notice as a document (追回社会保险待遇告知书, 001 第二十九条(四)) through the gateway: a pensioner paid
two months after death (the overpayments and the notice written straight into benefits' database, as eligibility
writes them from a death record: tests/benefits/test_recovery.py covers that path); a clerk of the area issues the
notice as PDF; its Chinese text extracts exactly; it verifies on the public page and fails when altered."""

from services.benefits.models import BeneficiaryPerson, RecoveryNotice
from services.kernel.documents.models import IssuedDocument
from services.kernel.models import AuditEntry
from services.kernel.periods import add_months, period_of
from services.kernel import clock
from tests.support.apps import bearer
from tests.support.benefits import day_in
from tests.support.benefits_mirror import REGION, add_person, apply, get, grant, life, payroll_line, rows
from tests.support.documents import fetch_again, issued, pdf_text, platform, verifies
from tests.support.registry import error_code


async def test_a_recovery_notice_is_issued_as_pdf_and_verifies(make_settings, nats_server):
    async with platform(make_settings, nats_server.url) as p:
        benefits = p.services["benefits"]
        person_id = add_person(benefits, 71, name="张建国")
        pension = grant(benefits, person_id, monthly_fen=312_345)
        death_month = add_months(period_of(clock.china_today()), -3)
        for n in (1, 2):
            payroll_line(benefits, pension, add_months(death_month, n), amount_fen=312_345)
        apply(benefits, life(person_id, "deceased", death_date=day_in(death_month, 20)))
        [notice] = rows(benefits, RecoveryNotice, RecoveryNotice.person_id == person_id)
        citizen_id = get(benefits, BeneficiaryPerson, person_id).citizen_id

        url = f"/api/benefits/documents/recovery-notices/{notice.id}"
        clerk = bearer(make_settings(nats_server.url), "agency_clerk", region=REGION, subject="clerk.li",
                       unit="新城区社会保险事业管理局")
        pdf, number, code = issued(await p.gateway.post(url, headers=clerk))

        text = pdf_text(pdf)
        year = clock.china_today().year
        assert number == f"社保追字〔{year}〕1号"
        for expected in ("追回社会保险待遇告知书", number, "张建国", citizen_id,  # a clerk reads it in full
                         "的继承人或遗产管理人", "多领待遇共计人民币6,246.90元", "死亡后仍发放",
                         f"{add_months(death_month, 1) // 100}年{add_months(death_month, 1) % 100}月",
                         "尚需退还6,246.90元", "《赣州市社会保险基金监督办法（试行）（2020）》第二十九条(四)",
                         "新城区社会保险事业管理局"):
            assert expected in text, expected

        await verifies(p.gateway, pdf, number, code, private=("张建国", citizen_id))

        # Printed again: a new number, the registry keeps both, each issue in the audit chain.
        again, second, _ = issued(await p.gateway.post(url, headers=clerk))
        assert second == f"社保追字〔{year}〕2号" and again != pdf
        registered = sorted(rows(benefits, IssuedDocument), key=lambda d: d.serial)
        audited = rows(benefits, AuditEntry, AuditEntry.action == "document.issued")
        assert [(d.number, d.subject_id, d.issued_by) for d in registered] == [
            (number, notice.id, "clerk.li"), (second, notice.id, "clerk.li")]
        assert [a.entity_id for a in audited] == [number, second]

        # Fetched again byte for byte (nothing masked: it is the document issued) by a reader of the person's area,
        # the fetch in the audit chain with its purpose; refused elsewhere, to other roles, without a purpose.
        reviewer = bearer(make_settings(nats_server.url), "agency_reviewer", region=REGION, subject="reviewer.wu")
        again_pdf = await fetch_again(p.gateway, "benefits", number, reviewer)
        assert again_pdf.status_code == 200 and again_pdf.content == pdf, again_pdf.text
        assert again_pdf.headers["x-document-sha256"] == registered[0].sha256
        [fetched] = rows(benefits, AuditEntry, AuditEntry.action == "document.fetched")
        assert (fetched.entity_id, fetched.actor_id, fetched.actor_role, fetched.reason) == (
            number, "reviewer.wu", "agency_reviewer", "当事人遗失，补打")
        for refused, status, code in (
                (await fetch_again(p.gateway, "benefits", number, bearer(
                    make_settings(nats_server.url), "agency_reviewer", region="150103")), 403, "OUT_OF_REGION"),
                (await fetch_again(p.gateway, "benefits", number, bearer(
                    make_settings(nats_server.url), "oversight_officer", region=REGION)), 403, "FORBIDDEN"),
                (await fetch_again(p.gateway, "benefits", number, reviewer, purpose=None), 422, None),
                (await fetch_again(p.gateway, "benefits", number, reviewer, form="xlsx"), 404,
                 "DOCUMENT_WORKBOOK_NOT_FOUND"),
                (await fetch_again(p.gateway, "benefits", "社保追字〔1999〕1号", reviewer), 404, "DOCUMENT_NOT_FOUND"),
                (await fetch_again(p.gateway, "benefits", number, {}), 401, None)):
            assert refused.status_code == status and (code is None or error_code(refused) == code), refused.text
        assert len(rows(benefits, AuditEntry, AuditEntry.action == "document.fetched")) == 1

        # Who may issue it: a clerk of the person's area only.
        elsewhere = await p.gateway.post(url, headers=bearer(make_settings(nats_server.url), "agency_clerk",
                                                             region="150103"))
        assert elsewhere.status_code == 403 and error_code(elsewhere) == "OUT_OF_REGION"
        cashier = await p.gateway.post(url, headers=bearer(make_settings(nats_server.url), "cashier", region=REGION))
        assert cashier.status_code == 403
        anonymous = await p.gateway.post(url)
        assert anonymous.status_code == 401
        unknown = await p.gateway.post("/api/benefits/documents/recovery-notices/nope", headers=clerk)
        assert unknown.status_code == 404 and error_code(unknown) == "RECOVERY_NOTICE_NOT_FOUND"
