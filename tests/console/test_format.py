"""Amounts in 元 with thousands separators from Decimal (never float), China time, a label for every code."""

from decimal import Decimal

import pytest

from gateway.console import format as fmt
from services.contracts.codes import CaseClass, CaseStatus, Fund, Severity
from services.kernel.auth import ROLES

pytestmark = pytest.mark.unit


def test_amounts_are_exact_yuan_with_thousands_separators():
    assert fmt.yuan("1234567.5") == "1,234,567.50"
    assert fmt.yuan("-0.01") == "-0.01"
    assert fmt.yuan(Decimal("999999999999.99")) == "999,999,999,999.99"
    assert fmt.yuan("90071992547409.93") == "90,071,992,547,409.93"  # past float's exact range
    assert fmt.yuan_from_fen(9007199254740993) == "90,071,992,547,409.93"
    assert fmt.yuan(None) == "—" and fmt.yuan_from_fen(None) == "—"


def test_instants_in_china_time():
    assert fmt.china_time("2026-12-31T16:30:00Z") == "2027-01-01 00:30"
    assert fmt.china_time("2026-12-31T16:30:00") == "2027-01-01 00:30"  # naive: UTC as the API writes
    assert fmt.china_time("2026-12-31T16:30:00+08:00") == "2026-12-31 16:30"
    assert fmt.month_label(202612) == "2026年12月"


@pytest.mark.parametrize(("kind", "codes"), [
    ("fund", list(Fund)), ("case_status", list(CaseStatus)), ("severity", list(Severity)),
    ("case_class", list(CaseClass)), ("role", list(ROLES)),
    ("reconciliation_status", ["matched", "mismatch", "missing_tax", "missing_finance", "missing_agency", "late"]),
])
def test_every_code_has_a_chinese_label(kind, codes):
    for code in codes:
        text = fmt.label(code, kind)
        assert text != str(code) and any("\u4e00" <= ch <= "\u9fff" for ch in text), (kind, code)


def test_reconciliation_statuses_are_the_checks_own():
    from services.oversight.reconciliation.cells import STATUSES  # noqa: PLC0415
    assert set(fmt.RECONCILIATION_STATUS_LABELS) == set(STATUSES)
