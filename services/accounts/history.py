"""Change history: every change to a registry row is kept as field → [before, after], in the same
transaction as the change, next to the audit-chain entry."""

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from services.accounts.models import ChangeHistory
from services.kernel import clock, context
from services.kernel.audit import append_audit
from services.kernel.models import AuditEntry


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


def diff(row: Any, updates: dict[str, Any]) -> dict[str, list]:
    """The fields ``updates`` would really change on ``row``, as {field: [before, after]}."""
    return {k: [_plain(getattr(row, k)), _plain(v)] for k, v in updates.items() if getattr(row, k) != v}


def record_change(session: Session, *, entity_type: str, entity_id: str, version: int, action: str,
                  changes: dict[str, list], reason: str | None = None) -> AuditEntry:
    """Keep the change in ``change_history`` and append it to the service's audit chain (the entry returned: its
    position is what an archive item of the change records)."""
    ctx = context.current()
    session.add(ChangeHistory(
        entity_type=entity_type, entity_id=entity_id, version=version, action=action,
        changes=json.dumps(changes, ensure_ascii=False, sort_keys=True), reason=reason,
        changed_at=clock.utc_now(), changed_by=ctx.actor.id, request_id=ctx.request_id,
    ))
    return append_audit(session, action=f"{entity_type}.{action}", entity_type=entity_type, entity_id=entity_id,
                 detail={"version": version, "changes": changes}, reason=reason)


def history_of(session: Session, entity_type: str, entity_id: str) -> list[dict[str, Any]]:
    rows = session.execute(
        select(ChangeHistory)
        .where(ChangeHistory.entity_type == entity_type, ChangeHistory.entity_id == entity_id)
        .order_by(ChangeHistory.version, ChangeHistory.id)
    ).scalars()
    return [
        {"version": r.version, "action": r.action, "changes": json.loads(r.changes), "reason": r.reason,
         "changed_at": r.changed_at, "changed_by": r.changed_by, "request_id": r.request_id}
        for r in rows
    ]
