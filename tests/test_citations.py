"""One written form for seed citations (docs/citations.md): the kernel helper, and a scan of the code base and the
docs that fails on any citation not in that form — in a comment, a docstring, a rule's ``clause`` or an error text."""

from pathlib import Path

import pytest

from services.kernel.citations import (
    CitationError,
    check,
    cite,
    clauses,
    find_bare_articles,
    find_citations,
    is_canonical,
)

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("services", "gateway", "sifund", "tests", "bench", "infra")
# Migrations quote the old forms they rewrite; the format's own modules and this test show wrong forms on purpose.
NOT_SCANNED = {"services/kernel/citations.py", "sifund/docs_trace.py", "tests/test_citations.py", "docs/citations.md"}


def scanned_files() -> list[Path]:
    files = [p for top in SCANNED for p in (ROOT / top).rglob("*.py")]
    files += [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    return sorted(p for p in files if p.exists() and p.relative_to(ROOT).as_posix() not in NOT_SCANNED
                  and not ("migrations" in p.parts and "versions" in p.parts))


@pytest.mark.parametrize("text", [
    "000 二(二)", "000 二(四)1", "000 二(一)、二(四)1", "000 三(九)", "001 第十八条", "001 第二十九条(五)",
    "001 第三十三条第二款", "001 第十二条、第十三条、第二十九条、第三十条", "001 第三十二条至第三十八条", "002 四",
    "002 二(三)、二(四)", "003 三.5", "004 第24项", "004 第3项、第22项",
])
def test_canonical_forms(text):
    assert is_canonical(text)
    assert [c.text for c in find_citations(f"（依据：{text}）")] == [text]


@pytest.mark.parametrize("text", [
    "001 第二十九条（五）", "004 row 24", "004 第3、22项", "004 第24行", "001 第八、十一条", "001 第三十二至三十八条",
    "001 第十八条, 第二十一条", "002 二(三)(四)", "004 table", "seed 004 row 24", "001 二(二)", "000 第十八条",
])
def test_other_forms_are_found_and_refused(text):
    found = find_citations(f"see {text} here")
    assert found and not any(c.canonical for c in found), found


def test_cite_builds_and_checks():
    assert cite("001", "第十八条") == "001 第十八条"
    assert cite("004", "第3项", "第22项") == "004 第3项、第22项"
    with pytest.raises(CitationError):
        cite("001", "第29条")
    with pytest.raises(CitationError):
        cite("005", "第一条")
    with pytest.raises(CitationError):
        check("004 row 24")


def test_clauses_split_lists_and_ranges():
    assert clauses("001 第三十六条至第三十八条") == ["001 第三十六条", "001 第三十七条", "001 第三十八条"]
    assert clauses("000 二(一)、二(四)1") == ["000 二(一)", "000 二(四)1"]


def test_numbers_are_not_citations():
    assert find_citations("10 000 rows, 1 000 lines, 5 000.00 yuan, 2 000 二(") == []


def test_articles_of_laws_are_not_bare_seed_citations():
    assert find_bare_articles("社会保险法 第八十六条；《社会保险法》第八十六条；失业保险条例 第十七条") == []
    assert [t for _, t in find_bare_articles("joint reports count as one (第三十七条)")] == ["第三十七条"]


def test_every_citation_in_the_code_base_is_canonical():
    wrong = []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8")
        for citation in find_citations(text):
            if not citation.canonical:
                wrong.append(f"{path.relative_to(ROOT)}: {citation.text!r}")
        for offset, article in find_bare_articles(text):
            line = text.count("\n", 0, offset) + 1
            wrong.append(f"{path.relative_to(ROOT)}:{line}: {article!r} without its document (write 001 {article})")
    assert not wrong, "citations not in the form of docs/citations.md:\n" + "\n".join(wrong)
