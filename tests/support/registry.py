"""Helpers for the employer and person registry tests: valid identifiers, outbox and database access."""

import json
from datetime import date

from sqlalchemy import select
from sqlmodel import Session
from stdnum import luhn
from stdnum.cn import ric
from stdnum.cn import uscc as uscc_mod

from services.kernel.events import plain_data
from services.kernel.models import OutboxMessage

REGION = "150102"  # 呼和浩特市新城区
OTHER_DISTRICT = "150103"  # 呼和浩特市回民区
CITY = "150100"


def make_uscc(serial: int) -> str:
    body = f"91150102{serial:09d}"
    return body + uscc_mod.calc_check_digit(body)


def make_citizen_id(serial: int = 1, *, born: date = date(1985, 6, 15), sex: str = "M", area: str = "150102") -> str:
    """A valid 公民身份号码: the 17th digit is odd for men, even for women."""
    sequence = (serial * 2 + (1 if sex == "M" else 0)) % 1000
    body = f"{area}{born:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")


def make_card(serial: int) -> str:
    """A 19-digit bank card number passing the Luhn check."""
    body = f"622202{serial:012d}"
    return body + luhn.calc_check_digit(body)


def engine_of(client):  # noqa: ANN001, ANN201
    return client.app.state.engine


def outbox(client, event_type: str | None = None) -> list[dict]:  # noqa: ANN001
    """Payloads written to the outbox, oldest first (the table keeps published rows too)."""
    with Session(engine_of(client)) as session:
        rows = session.execute(select(OutboxMessage).order_by(OutboxMessage.seq)).scalars().all()
    found = [(r.event_type, json.loads(r.envelope)) for r in rows]
    # Compact lines (arrays, docs/events.md) as objects, so a test reads a line's fields by name in every version.
    return [{"type": t, **plain_data(t, env["data"]), "_actor": env["actor"]} for t, env in found
            if event_type in (None, t)]


def error_code(response) -> str:  # noqa: ANN001
    return response.json()["error"]["code"]
