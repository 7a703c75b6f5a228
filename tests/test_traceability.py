"""docs/traceability.md — seed clause → code → tests — is what ``sifund docs trace`` writes from the code as it is
now; the clauses the code cites with no test citing them are listed there and shown here as a warning."""

import warnings

from sifund import docs_trace


def test_traceability_table_is_current():
    trace = docs_trace.collect()
    current = (docs_trace.ROOT / docs_trace.OUTPUT).read_text(encoding="utf-8")
    assert current == docs_trace.render(trace), (
        "docs/traceability.md is not current: run `sifund docs trace` (or "
        "`python -m sifund.cli docs trace`) and commit the result")


def test_clauses_cited_in_code_with_no_test_are_listed():
    trace = docs_trace.collect()
    missing = docs_trace.untested(trace)
    table = (docs_trace.ROOT / docs_trace.OUTPUT).read_text(encoding="utf-8")
    listed = table.split("## Clauses cited in code with no test citing them", 1)[1]
    assert all(f"- {clause}\n" in listed for clause in missing)
    if missing:
        warnings.warn("seed clauses cited in code with no test citing them: " + ", ".join(missing), stacklevel=1)


def test_a_test_citing_an_item_proves_its_article():
    trace = docs_trace.Trace()
    trace.code["001 第二十九条"].add("services.x:f")
    trace.tests["001 第二十九条(五)"].add("tests.x::test_f")
    assert docs_trace.untested(trace) == []
    assert "`tests.x::test_f`" in docs_trace.render(trace)
