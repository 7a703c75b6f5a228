"""Personal data masking (DOMAIN.md, Personal data; issue 3 §6).

Response schemas declare ``citizen_id: CitizenIdOut`` or ``account_no: BankAccountOut``; the value is shown in
full only when the caller's acting role needs it, otherwise masked (``110105********002X``). Logs never carry
either: ``redact`` masks anything shaped like them, whatever the role.
"""

import re
from typing import Annotated, Any

from pydantic import PlainSerializer

from services.kernel import context
from services.kernel.identifiers import mask_bank_account, mask_citizen_id

# Who works with the full numbers: identity checks, investigations, data matching, payments.
CITIZEN_ID_READERS = frozenset({
    "agency_clerk", "agency_reviewer", "agency_approver", "internal_auditor", "oversight_officer",
    "partner_system", "tax_system",
})
BANK_ACCOUNT_READERS = frozenset({"agency_clerk", "agency_reviewer", "cashier", "bank_system"})


def _role_can_read(readers: frozenset[str]) -> bool:
    return context.current().actor.role in readers


def can_read_all_personal_data() -> bool:
    return _role_can_read(CITIZEN_ID_READERS) and _role_can_read(BANK_ACCOUNT_READERS)


def reveal_citizen_id(value: str) -> str:
    return value if _role_can_read(CITIZEN_ID_READERS) else mask_citizen_id(value)


def reveal_bank_account(value: str) -> str:
    return value if _role_can_read(BANK_ACCOUNT_READERS) else mask_bank_account(value)


CitizenIdOut = Annotated[str, PlainSerializer(reveal_citizen_id, return_type=str)]
BankAccountOut = Annotated[str, PlainSerializer(reveal_bank_account, return_type=str)]

_CITIZEN_ID = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_LONG_NUMBER = re.compile(r"(?<!\d)\d{8,15}(\d{4})(?!\d)")


def redact(text: str) -> str:
    """Mask citizen ids and long account-like numbers inside free text."""
    text = _CITIZEN_ID.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    return _LONG_NUMBER.sub(lambda m: "*" * (len(m.group(0)) - 4) + m.group(1), text)


def redact_log_event(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: no personal number reaches a log line."""
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict
