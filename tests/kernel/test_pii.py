"""Personal data: masked in responses unless the acting role needs it, never in logs."""

import json

import pytest
import structlog
from pydantic import BaseModel

from services.kernel import context
from services.kernel.logging import configure_logging
from services.kernel.pii import BankAccountOut, CitizenIdOut, redact

CITIZEN_ID = "11010519491231002X"
ACCOUNT = "6222021234567890128"


class PersonOut(BaseModel):
    citizen_id: CitizenIdOut
    account_no: BankAccountOut


def as_role(role: str) -> dict:
    with context.trace(actor=context.Actor(id="u", role=role)):
        return PersonOut(citizen_id=CITIZEN_ID, account_no=ACCOUNT).model_dump(mode="json")


@pytest.mark.unit
def test_masked_unless_the_role_needs_it():
    assert as_role("agency_clerk") == {"citizen_id": CITIZEN_ID, "account_no": ACCOUNT}
    assert as_role("cashier") == {"citizen_id": "110105********002X", "account_no": ACCOUNT}
    assert as_role("finance_officer") == {"citizen_id": "110105********002X", "account_no": "***************0128"}
    assert as_role("oversight_officer")["account_no"] == "***************0128"


@pytest.mark.unit
def test_redact_masks_numbers_inside_text():
    assert redact(f"person {CITIZEN_ID} paid to {ACCOUNT}.") == "person 110105********002X paid to ***************0128."
    assert redact("period 202401 amount 12345") == "period 202401 amount 12345"


def test_logs_never_carry_personal_numbers(capsys):
    configure_logging("INFO", json_lines=True)
    structlog.get_logger("t").info("matched death record", citizen_id=CITIZEN_ID, note=f"card {ACCOUNT}")
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert CITIZEN_ID not in json.dumps(line) and ACCOUNT not in json.dumps(line)
    assert line["citizen_id"] == "110105********002X"


async def test_audit_entries_are_masked_for_readers_without_the_need(start_service, auth):
    from sqlmodel import Session  # noqa: PLC0415

    from services.kernel.audit import append_audit  # noqa: PLC0415

    async with start_service("benefits") as benefits:
        with Session(benefits.app.state.engine) as session:
            append_audit(session, action="person.bank_account_add", entity_type="person", entity_id="p1",
                         detail={"account_no": ACCOUNT, "citizen_id": CITIZEN_ID})
            session.commit()
        seen = (await benefits.get("/audit/entries", headers=auth("internal_auditor"))).json()[0]["detail"]
        assert ACCOUNT not in seen and "0128" in seen and CITIZEN_ID not in seen
        assert (await benefits.get("/audit/verify", headers=auth("internal_auditor"))).json()["ok"] is True
