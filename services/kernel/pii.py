"""Personal data masking (DOMAIN.md, Personal data).

Response schemas declare ``citizen_id: CitizenIdOut`` or ``account_no: BankAccountOut``; the value is shown in
full only when the caller's acting role needs it, otherwise masked (``110105********002X``). Logs never carry
either: ``redact`` masks anything shaped like them, whatever the role.
"""

import logging
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
# Both shapes above hold at least 12 digits in a row: text without such a run has nothing to mask (most log
# arguments: methods, paths with ids, statuses), found with one search instead of two substitutions.
_DIGIT_RUN = re.compile(r"\d{12}")


def redact(text: str) -> str:
    """Mask citizen ids and long account-like numbers inside free text."""
    if _DIGIT_RUN.search(text) is None:
        return text
    text = _CITIZEN_ID.sub(lambda m: f"{m.group(1)}********{m.group(2)}", text)
    return _LONG_NUMBER.sub(lambda m: "*" * (len(m.group(0)) - 4) + m.group(1), text)


def redact_value(value: Any) -> Any:
    """``redact`` applied to every string inside ``value`` (dicts, lists and tuples walked, other values kept)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(item) for item in value)
    return value


def redact_log_event(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: no personal number reaches a log line, however deep in the event it sits."""
    return {key: redact_value(value) for key, value in event_dict.items()}


def _redact_arg(value: Any) -> Any:
    """A log argument: numbers stay numbers (``%d``), anything else (an ``httpx.URL``, an exception) is masked as
    the text it would print as."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict | list | tuple):
        return redact_value(value)
    return redact(value if isinstance(value, str) else str(value))


def redact_log_record(record: logging.LogRecord) -> logging.LogRecord:
    """The same for a stdlib record (uvicorn's access and error logs, httpx's request log, anything else): the
    message, its arguments (kept as a tuple or mapping: uvicorn's access formatter unpacks them) and the exception
    text, formatted and masked now, before any handler or formatter sees the record."""
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    if isinstance(record.args, dict):
        record.args = {key: _redact_arg(value) for key, value in record.args.items()}
    elif record.args:
        record.args = tuple(_redact_arg(value) for value in record.args)
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record
