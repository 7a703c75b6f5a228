"""docs/traceability.md — seed clause → code → tests — is what ``sifund docs trace`` writes from the code as it is
now, and every clause the code cites has a test that cites it (the rule is in sifund/docs_trace.py)."""

import pytest

from sifund import docs_trace


@pytest.fixture(scope="module")
def trace() -> docs_trace.Trace:
    return docs_trace.collect()


def test_traceability_table_is_current(trace):
    current = (docs_trace.ROOT / docs_trace.OUTPUT).read_text(encoding="utf-8")
    assert current == docs_trace.render(trace), (
        "docs/traceability.md is not current: run `sifund docs trace` (or "
        "`python -m sifund.cli docs trace`) and commit the result")


def test_every_clause_cited_in_code_has_a_test_citing_it(trace):
    missing = docs_trace.untested(trace)
    assert not missing, (
        "seed clauses cited in code with no test citing them (cite the clause in the docstring or a comment of the "
        "test that proves it):\n" + "\n".join(missing))


def test_a_test_citing_an_item_proves_its_article():
    trace = docs_trace.Trace()
    trace.code["001 第二十九条"].add("services.x:f")
    trace.tests["001 第二十九条(五)"].add("tests.x::test_f")
    assert docs_trace.untested(trace) == []
    assert "`tests.x::test_f`" in docs_trace.render(trace)
