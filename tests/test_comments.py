"""Comments and docstrings say why the code is as it is, not how it came to be: no references to the issue or the
defect a line came from (the git history keeps those), no "found by the fuzzer" or "before the fix" stories."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = ("services", "gateway", "sifund", "tests", "bench", "infra")
HISTORY = re.compile(r"\b[Ii]ssue \d+|\bdefects? \d+|[Ff]ound by the fuzzer|before the fix\b|the old code\b")


def test_no_comment_narrates_history():
    found = []
    for path in sorted(p for top in SCANNED for p in (ROOT / top).rglob("*.py")):
        if "migrations" in path.parts and "versions" in path.parts:
            continue  # a migration records a change by nature
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if HISTORY.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "comments that narrate history (say why instead):\n" + "\n".join(found)
