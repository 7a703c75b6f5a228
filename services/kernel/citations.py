"""Citations of the seed documents' clauses: one written form, in code and in stored data (docs/citations.md).

A citation names a seed document by its three-digit number and then one or more of its clauses, in the way each
document numbers them::

    000 二(二)            000, 002: outline headings — section, (item), point: 000 二(四)1
    001 第十八条          001: articles, with an item 001 第二十九条(五) or a paragraph 001 第三十三条第二款
    003 三.5              003: the survey report's section and numbered point
    004 第24项            004: the task table's item (序号)
    001 第十二条、第十三条   several clauses of one document, each written in full, joined by 、
    001 第三十二条至第三十八条   a range of articles

Parentheses are ASCII; a citation of two documents is two citations (``004 第3项；001 第十六条``). ``cite()`` builds
one, ``is_canonical()`` checks one, ``find_citations()`` finds what looks like a citation in a text (canonical or
not: a test fails on the ones that are not) and ``clauses()`` splits a citation into single clauses, which is what
the traceability table (``sifund docs trace``) lists.
"""

import re
from dataclasses import dataclass

SEEDS: dict[str, str] = {
    "000": "内蒙古自治区：关于进一步加强社会保险基金管理与监督工作的意见（2014）",
    "001": "赣州市社会保险基金监督办法（试行）（2020）",
    "002": "内蒙古自治区：关于进一步加强社会保险基金预算管理的意见",
    "003": "社保基金监管调研报告、社会保险档案管理、教材定义、湖南专项治理方案、南通实践（汇编）",
    "004": "池州市加强社会保险基金管理风险防控工作实施方案（2019）及任务分解表",
}

_CN = "[一二三四五六七八九十]+"
_ITEM = rf"\({_CN}\)"
_OUTLINE = rf"{_CN}(?:{_ITEM}(?:[0-9]+)?)?"
_ARTICLE = rf"第{_CN}条(?:{_ITEM}|第{_CN}款)?"
_ARTICLES = rf"{_ARTICLE}(?:至{_ARTICLE})?"
_SECTION = rf"{_CN}\.[0-9]+"
_TABLE_ITEM = r"第[0-9]+项"

CLAUSE_FORMS: dict[str, str] = {
    "000": _OUTLINE,
    "001": _ARTICLES,
    "002": _OUTLINE,
    "003": _SECTION,
    "004": _TABLE_ITEM,
}

CANONICAL: dict[str, re.Pattern[str]] = {
    seed: re.compile(rf"{seed} (?:{form})(?:、(?:{form}))*") for seed, form in CLAUSE_FORMS.items()
}

# What looks like an attempt at a citation: a seed number followed by a clause-like locator in any of the forms
# seen in the code base (Chinese or English words, full-width or ASCII brackets, lists with commas).
_LOCATOR_START = r"(?:第|[一二三四五六七八九十]+(?:[(（.、]|(?=[\s,，;；)）。:：]|$))|rows?\b|items?\b|table\b|art\.|§)"
_LOCATOR_BODY = r"[第条款项行至一二三四五六七八九十0-9()（）.、]"
_LIST_CONTINUATION = rf"(?:\s*[,，、]\s*|\s*(?:and|和|及|与)\s*|\s*[-–—]\s*)(?=第|[0-9]+项|{_CN}[(（.])"
DETECT = re.compile(
    rf"(?<![0-9A-Za-z.])(?<![0-9] )(?:seed\s+)?(00[0-4])\s*((?:{_LOCATOR_START})(?:{_LOCATOR_BODY}|{_LIST_CONTINUATION}"
    rf"|(?<=row)s?\s*[0-9]+|(?<=rows)\s*[0-9]+|(?<=item)\s*[0-9]+|(?<=art\.)\s*[0-9]+|(?<=§)\s*[0-9]+)*)"
)


class CitationError(ValueError):
    """A citation not in the one written form."""


@dataclass(frozen=True, order=True)
class Citation:
    """A citation as found in a text: what it says, its document, and whether it is in the canonical form."""

    text: str
    seed: str
    canonical: bool


def is_canonical(text: str) -> bool:
    seed = text[:3]
    pattern = CANONICAL.get(seed)
    return pattern is not None and pattern.fullmatch(text) is not None


def cite(seed: str, *clauses: str) -> str:
    """The canonical citation of ``clauses`` of seed document ``seed``: ``cite("001", "第十八条")`` → ``001 第十八条``.

    Raises ``CitationError`` if a clause is not written the way its document numbers clauses."""
    if seed not in CANONICAL:
        raise CitationError(f"unknown seed document {seed!r}")
    if not clauses:
        raise CitationError("a citation names at least one clause")
    text = f"{seed} {'、'.join(clauses)}"
    if not is_canonical(text):
        raise CitationError(f"{text!r} is not a canonical citation (docs/citations.md)")
    return text


def check(text: str) -> str:
    """``text`` if it is one canonical citation, else ``CitationError``: for constants that hold a citation."""
    if not is_canonical(text):
        raise CitationError(f"{text!r} is not a canonical citation (docs/citations.md)")
    return text


def find_citations(text: str) -> list[Citation]:
    """Everything in ``text`` that looks like a seed citation, canonical or not."""
    return [citation for _, citation in find_citations_at(text)]


def find_citations_at(text: str) -> list[tuple[int, Citation]]:
    """``find_citations`` with the offset of each citation in ``text``."""
    found = []
    for match in DETECT.finditer(text):
        raw = match.group(0).rstrip("、,，.;；:： -–—")
        # a trailing closing bracket belongs to the surrounding prose unless it closes an item of the citation
        while raw.endswith((")", "）")) and raw.count("(") + raw.count("（") < raw.count(")") + raw.count("）"):
            raw = raw[:-1]
        found.append((match.start(), Citation(text=raw, seed=match.group(1), canonical=is_canonical(raw))))
    return found


_BARE_ARTICLE = re.compile(rf"第{_CN}条")
_LAW_ENDINGS = ("法", "条例", "》", "办法", "规定")


def find_bare_articles(text: str) -> list[tuple[int, str]]:
    """Articles cited without their document (``第三十七条`` alone): (offset, text). An article of a law or a
    regulation (``社会保险法 第八十六条``, ``《…》第八十六条``) is not a seed citation and is not reported."""
    covered = [m.span() for m in DETECT.finditer(text)]
    found = []
    for match in _BARE_ARTICLE.finditer(text):
        start = match.start()
        if any(a <= start < b for a, b in covered):
            continue
        if text[:start].rstrip().endswith(_LAW_ENDINGS):
            continue
        found.append((start, match.group(0)))
    return found


_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def cn_number(text: str) -> int:
    """十 → 10, 二十九 → 29, 三十八 → 38 (the numbers the seeds use, below 100)."""
    if "十" not in text:
        return _CN_DIGITS[text]
    tens, _, units = text.partition("十")
    return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[units] if units else 0)


def _cn(number: int) -> str:
    digits = "一二三四五六七八九"
    tens, units = divmod(number, 10)
    text = ("" if tens == 0 else ("十" if tens == 1 else digits[tens - 1] + "十"))
    return text + (digits[units - 1] if units else "")


def clauses(text: str) -> list[str]:
    """The single clauses of a canonical citation, each as a citation: ``001 第三十二条至第三十四条`` →
    ``001 第三十二条``, ``001 第三十三条``, ``001 第三十四条``; ``000 二(一)、二(四)1`` → ``000 二(一)``, ``000 二(四)1``."""
    check(text)
    seed, _, rest = text.partition(" ")
    out: list[str] = []
    for part in rest.split("、"):
        if "至" in part:
            first, last = part.split("至")
            low = cn_number(first.removeprefix("第").split("条")[0])
            high = cn_number(last.removeprefix("第").split("条")[0])
            out.extend(f"{seed} 第{_cn(n)}条" for n in range(low, high + 1))
        else:
            out.append(f"{seed} {part}")
    return out


def sort_key(citation: str) -> tuple:
    """Document order: seed, then the clause's numbers as the document counts them."""
    seed, _, clause = citation.partition(" ")
    numbers = []
    for token in re.findall(rf"{_CN}|[0-9]+", clause):
        numbers.append(int(token) if token.isdigit() else cn_number(token))
    return (seed, numbers, clause)
