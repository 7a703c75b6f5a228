"""The documents stand on their own in a fresh clone: README and docs/ link only to files in the repository (no
``../shared``), and every seed document they index is there."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_no_document_points_outside_the_repository():
    outside = [f"{doc.relative_to(ROOT)}: {line.strip()}" for doc in DOCUMENTS
               for line in doc.read_text(encoding="utf-8").splitlines() if "../shared" in line]
    assert not outside, "a fresh clone has no ../shared:\n" + "\n".join(outside)


def test_every_relative_link_resolves():
    broken = []
    for doc in DOCUMENTS:
        for target in LINK.findall(doc.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)} → {target}")
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_the_seed_index_names_every_seed_the_code_cites():
    from services.kernel.citations import SEEDS

    index = (ROOT / "docs" / "seeds.md").read_text(encoding="utf-8")
    for seed in SEEDS:
        assert f"| {seed} |" in index
