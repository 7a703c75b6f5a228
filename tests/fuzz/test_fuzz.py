"""The bounded fuzz profile of the suite: every operation of the five OpenAPI documents
(four services and the gateway), a few positive and negative examples each, authenticated as the roles it allows,
against the real apps (real database, real nats-server). No answer may be a 5xx, or undeclared, or out of its
declared schema. ``make fuzz`` runs the same campaign as long as asked (tests/fuzz/run.py)."""

import json
import os

import pytest
from hypothesis import given, settings
from stdnum.cn import ric

from services.kernel.identifiers import validate_bank_card, validate_uscc
from services.kernel.periods import validate_period
from tests.fuzz import strategies
from tests.fuzz.harness import COMPONENTS, Campaign, Platform, annotate

pytestmark = pytest.mark.once  # its own SQLite; it checks answers against the published documents, which no date changes


EXAMPLES = int(os.environ.get("FUZZ_SMOKE_EXAMPLES", "2"))  # per operation and generation mode

def test_every_operation_of_the_five_documents_answers_as_declared(make_settings, nats_server):
    with Platform(make_settings(nats_server.url), nats_monitor_url=nats_server.monitor_url) as platform:
        campaign = Campaign(examples=EXAMPLES).run(platform, derandomize=True)
    findings = campaign.as_dict()
    assert sorted(findings["documents"]) == sorted(COMPONENTS)
    assert [r.operation for r in campaign.results if r.requests == 0] == []
    # Valid identifiers, periods and amounts get requests past validation: some writes succeed.
    assert any(code in findings["statuses"] for code in ("201", "202")), findings["statuses"]
    failures = campaign.failures()
    assert failures == [], json.dumps(failures, ensure_ascii=False, indent=1, default=str)[:20000]


def mod_11_2(digits: str) -> str:
    """GB 11643 check character (ISO 7064 MOD 11-2), computed here independently of python-stdnum."""
    total = sum(int(d) * pow(2, 17 - i, 11) for i, d in enumerate(digits))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def test_check_character_of_the_standards_example():
    assert mod_11_2("11010519491231002") == "X"  # GB 11643-1999's example 11010519491231002X


@settings(max_examples=200, database=None)
@given(citizen_id=strategies.citizen_ids(), uscc=strategies.usccs(), card=strategies.bank_cards(),
       period=strategies.periods())
def test_generated_identifiers_are_valid(citizen_id, uscc, card, period):
    assert len(citizen_id) == 18 and mod_11_2(citizen_id[:17]) == citizen_id[17]
    assert ric.get_birth_date(citizen_id)  # a real calendar date
    assert citizen_id[:6] in strategies.BIRTH_PLACES
    if citizen_id.startswith("110101"):  # in python-stdnum's birth-place table (Hohhot's districts are not)
        assert ric.is_valid(citizen_id)
    assert validate_uscc(uscc) == uscc
    assert validate_bank_card(card) == card
    assert validate_period(period) == period


def test_request_fields_are_annotated_by_name():
    body = {"type": "object", "properties": {
        "citizen_id": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "payer_uscc": {"type": "string"},
        "bank_account_no": {"type": "string", "maxLength": 40},
        "period": {"type": "integer"},
        "amount": {"anyOf": [{"type": "number"}, {"type": "string"}]},
        "base_fen": {"type": "integer"},
        "lines": {"type": "array", "items": {"type": "object", "properties": {"region": {"type": "string"}}}},
    }}
    annotated = annotate(body, None)["properties"]
    assert annotated["citizen_id"]["anyOf"][0]["format"] == "sifund-citizen-id"
    assert annotated["payer_uscc"]["format"] == "sifund-uscc"
    assert annotated["bank_account_no"] == {"type": "string", "maxLength": 40, "format": "sifund-bank-card"}
    assert 202612 in annotated["period"]["enum"] and 202613 not in annotated["period"]["enum"]
    assert annotated["amount"] == {"type": "string", "format": "sifund-yuan"}
    assert annotated["base_fen"] == {"type": "integer"}
    assert annotated["lines"]["items"]["properties"]["region"]["format"] == "sifund-region"
