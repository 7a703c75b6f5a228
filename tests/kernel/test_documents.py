"""The kernel's official-document mechanism (services/kernel/documents): the font set-up and layout give PDFs whose
Chinese text extracts exactly (rare characters, several pages, tables); the same content and stamp give the same
bytes; numbers per kind and year stay unique when issues race; the registry verifies by code and by hash and tells
an altered file from an unknown one; the filing hook runs in the issuing transaction."""

import ast
import hashlib
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timezone
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from services.benefits import models as benefits_models
from services.kernel.db import make_engine
from services.kernel.documents import registry
from services.kernel.documents.models import IssuedDocument
from services.kernel.documents.pdf import Amount, DocumentBody, Stamp, Table, render_pdf
from services.kernel.documents.text import legal_basis
from services.kernel.migrations import upgrade_database
from services.kernel.models import AuditEntry
from tests.support.documents import altered, pdf_text

KIND = registry.DocumentKind(code="test_notice", title="测试告知书", prefix="测试字")
STAMP = Stamp(title="测试告知书", number="测试字〔2026〕7号", verification_code="ABCD-EFGH-JKMN",
              issued_at=datetime(2026, 12, 6, 8, 0, tzinfo=timezone.utc), issued_on=date(2026, 12, 6),
              reference="test_notice/2026/7")


def body(paragraphs: int = 1) -> DocumentBody:
    return DocumentBody(
        addressee="㐀鎔彧（䶮）", issuer="某市社会保险事业管理局",
        paragraphs=[f"第{n}段：依据规定责令限期退还多领待遇，逾期未退还的依法处理。" * 3 for n in range(1, paragraphs + 1)],
        tables=[Table(caption="明细", headers=["期间", "金额（元）"], rows=[["2026年8月", Amount(123_456_789)]])],
        legal_basis=[legal_basis("001 第二十九条(四)")])


@pytest.mark.unit
def test_the_chinese_text_extracts_exactly_rare_characters_tables_and_every_page():
    pdf = render_pdf(body(paragraphs=40), STAMP)
    text = pdf_text(pdf)
    for expected in ("测试告知书", "测试字〔2026〕7号", "㐀鎔彧（䶮）：", "第40段：依据规定责令限期退还多领待遇",
                     "2026年8月1,234,567.89", "《赣州市社会保险基金监督办法（试行）（2020）》第二十九条(四)",
                     "某市社会保险事业管理局2026年12月6日"):
        assert expected in text, expected
    pages = text.count("验证码ABCD-EFGH-JKMN")
    assert pages >= 2 and f"第{pages}页共{pages}页" in text  # the number and code on every page
    assert registry.presented_reference(pdf) == "test_notice/2026/7"


@pytest.mark.unit
def test_the_same_content_and_stamp_give_the_same_bytes_and_any_change_other_bytes():
    first, second = render_pdf(body(), STAMP), render_pdf(body(), STAMP)
    assert first == second
    other = render_pdf(body(), Stamp(**{**STAMP.__dict__, "verification_code": "ABCD-EFGH-JKMP"}))
    assert hashlib.sha256(other).digest() != hashlib.sha256(first).digest()


@pytest.mark.unit
def test_codes_are_normalised_as_typed_and_references_parsed_only_in_their_form():
    assert registry.normalise_code(" abcd efgh-jkmn ") == "ABCD-EFGH-JKMN"
    assert registry.normalise_code("abcd—efgh_jkmn") == "ABCD-EFGH-JKMN"
    code = registry.new_verification_code()
    assert len(code) == 14 and set(code.replace("-", "")) <= set(registry.CODE_ALPHABET)
    assert registry.document_number(KIND, 2026, 12) == "测试字〔2026〕12号"
    assert registry.presented_reference(b"%PDF-1.3 no keywords") is None
    assert registry.presented_reference(b"sifund-document:Bad/20/x") is None


@pytest.fixture
def engine(database_urls):
    engine = make_engine(database_urls["benefits"])
    upgrade_database(engine, "benefits", benefits_models.metadata)
    yield engine
    engine.dispose()


def test_racing_issues_get_distinct_serials_and_each_is_registered_audited_and_filed(engine, monkeypatch):
    filed: list[tuple[str, str]] = []

    def file_it(session: Session, document: IssuedDocument) -> None:
        # Inside the issuing transaction: the registry row is there already.
        assert session.get(IssuedDocument, document.id) is not None
        filed.append((document.number, document.subject_id))

    monkeypatch.setattr(registry, "_filing_hooks", [file_it])
    with ThreadPoolExecutor(4) as pool:
        issued = list(pool.map(lambda n: registry.issue(engine, KIND, registry.Subject("notice", f"n{n}"), body()),
                               range(4)))
    year = issued[0].year
    assert sorted(d.serial for d in issued) == [1, 2, 3, 4]
    assert sorted(d.number for d in issued) == sorted(f"测试字〔{year}〕{n}号" for n in range(1, 5))
    assert sorted(filed) == sorted((d.number, d.subject_id) for d in issued)
    with Session(engine) as session:
        rows = session.execute(select(IssuedDocument)).scalars().all()
        audited = session.execute(select(AuditEntry).where(AuditEntry.action == "document.issued")).scalars().all()
    assert {r.sha256 for r in rows} == {hashlib.sha256(d.pdf).hexdigest() for d in issued}
    assert sorted(a.entity_id for a in audited) == sorted(d.number for d in issued)


def test_a_failing_filing_hook_stores_nothing(engine, monkeypatch):
    def refuse(session: Session, document: IssuedDocument) -> None:
        raise RuntimeError("dossier unavailable")

    monkeypatch.setattr(registry, "_filing_hooks", [refuse])
    with pytest.raises(RuntimeError):
        registry.issue(engine, KIND, registry.Subject("notice", "n1"), body())
    with Session(engine) as session:
        assert session.execute(select(IssuedDocument)).first() is None
        assert session.execute(select(AuditEntry)).first() is None


def test_verification_by_code_and_by_hash_shows_no_subject(engine, monkeypatch):
    monkeypatch.setattr(registry, "_filing_hooks", [])
    document = registry.issue(engine, KIND, registry.Subject("notice", "secret-person-id"), body())
    with Session(engine) as session:
        genuine = registry.verify_by_code(session, document.number, document.verification_code.lower())
        assert genuine["result"] == "genuine" and genuine["document"]["sha256"] == document.sha256
        assert "secret-person-id" not in str(genuine)
        assert registry.verify_by_code(session, document.number, "2222-2222-2222") == {"result": "not_found"}
        assert registry.verify_by_code(session, "测试字〔1999〕1号", document.verification_code) == {
            "result": "not_found"}
        assert registry.verify_by_hash(session, document.sha256)["result"] == "genuine"
        forged = altered(document.pdf)
        claimed = registry.presented_reference(forged)
        answer = registry.verify_by_hash(session, hashlib.sha256(forged).hexdigest(), claimed)
        assert answer["result"] == "altered" and answer["document"]["number"] == document.number
        assert registry.verify_by_hash(session, "0" * 64) == {"result": "not_found"}
        assert registry.verify_by_hash(session, "0" * 64, "test_notice/2026/999") == {"result": "not_found"}
        with pytest.raises(Exception) as bad:
            registry.verify_by_hash(session, "not-a-hash")
        assert getattr(bad.value, "code", None) == "INVALID_SHA256"


# The archive's catalogue and notes sheet are parts of a dossier's package, proved as the package that verifies on
# its own (tests/accounts/test_archives.py), not as documents handed to someone.
PACKAGE_KINDS = {"archive_catalogue", "archive_notes"}
ROOT = Path(__file__).resolve().parents[2]


@cache
def _declared_kinds() -> dict[str, tuple[str, str]]:
    """code → (title, module) of every ``DocumentKind(code=…, title=…)`` the services declare."""
    kinds = {}
    for path in sorted((ROOT / "services").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "DocumentKind":
                words = {k.arg: k.value.value for k in node.keywords if isinstance(k.value, ast.Constant)}
                kinds[words["code"]] = (words["title"], str(path.relative_to(ROOT)))
    return kinds


@cache
def _test_modules() -> dict[str, str]:
    return {str(path.relative_to(ROOT)): path.read_text(encoding="utf-8") for path in (ROOT / "tests").rglob("test_*.py")}


@pytest.mark.unit
@pytest.mark.parametrize("code", sorted(set(_declared_kinds()) - PACKAGE_KINDS))
def test_each_document_kind_is_proved_through_the_gateway(code):
    """Every document kind handed to someone, including kinds added later: some test issues it through the gateway's
    platform, checks its extracted Chinese text (its title among it) and runs ``verifies`` (genuine by code and
    by file, not found with a wrong code, altered by one byte)."""
    title, module = _declared_kinds()[code]
    proving = [path for path, text in _test_modules().items()
               if all(word in text for word in (title, "pdf_text(", "await verifies(", "platform("))]
    assert proving, f"{code} ({title}, {module}): no test renders it, reads its text and verifies it on /verify"
