"""The service's hash-chained audit log (ARCHITECTURE.md principle 5, 004 第24项).

Every state change appends an entry in the same transaction as the change. Each entry's hash covers the previous
hash and the entry's canonical JSON, so editing, deleting or reordering any row breaks ``verify_chain``. Bulk paths
append many entries under one lock of the head row with ``append_audit_many``.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from services.kernel import clock, context
from services.kernel.db import snapshot_session
from services.kernel.models import AuditEntry, AuditHead

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _entry_body(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at,
        "actor_id": entry.actor_id,
        "actor_role": entry.actor_role,
        "action": entry.action,
        "entity_type": entry.entity_type,
        "entity_id": entry.entity_id,
        "detail": entry.detail,
        "reason": entry.reason,
        "request_id": entry.request_id,
    }


def chain_hash(prev_hash: str, entry: AuditEntry) -> str:
    return _hash_body(prev_hash, _entry_body(entry))


def _hash_body(prev_hash: str, body: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(body)).encode()).hexdigest()


# Built once: a statement built per call pays its construction and cache key again (most of a case step's lock).
_HEAD_FOR_UPDATE = select(AuditHead).where(AuditHead.id == 1).with_for_update()
_ENTRY_INSERT = insert(AuditEntry.__table__)


def _lock_head(session: Session) -> AuditHead | None:
    return session.execute(_HEAD_FOR_UPDATE).scalar_one_or_none()


def append_audit(
    session: Session,
    *,
    action: str,
    entity_type: str,
    entity_id: str,
    detail: dict[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEntry:
    """Append one entry for the current actor and request. Call inside the business transaction."""
    ctx = context.current()
    head = _locked_head(session)
    entry = AuditEntry(
        seq=head.seq + 1,
        at=clock.utc_now().isoformat(timespec="microseconds"),
        actor_id=ctx.actor.id,
        actor_role=ctx.actor.role,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        detail=canonical_json(detail or {}),
        reason=reason,
        request_id=ctx.request_id,
        prev_hash=head.hash,
        hash="",
    )
    entry.hash = chain_hash(head.hash, entry)
    head.seq, head.hash = entry.seq, entry.hash
    session.add(entry)
    session.add(head)
    return entry


AUDIT_INSERT_CHUNK = 1_000  # rows per executemany


def append_audit_many(session: Session, entries: Iterable[dict[str, Any]]) -> int:
    """Append several entries, in the given order, for the current actor and request; returns how many.

    Each item has the keyword arguments of ``append_audit``: ``action``, ``entity_type``, ``entity_id`` and
    optionally ``detail`` and ``reason``. The entries are exactly those ``append_audit`` called once per item would
    write (same fields, same chain: each links to the one before), but the head row is locked once and the rows go
    to the database with Core executemany, ``AUDIT_INSERT_CHUNK`` at a time. Call inside the business transaction;
    ``append_audit`` may be called before or after in the same session (the head row is shared through the
    session's identity map, so the chain continues where this left it)."""
    items = list(entries)
    if not items:
        return 0
    ctx = context.current()
    head = _locked_head(session)
    seq, prev = head.seq, head.hash
    rows: list[dict[str, Any]] = []
    for item in items:
        seq += 1
        body = {
            "seq": seq,
            "at": clock.utc_now().isoformat(timespec="microseconds"),
            "actor_id": ctx.actor.id,
            "actor_role": ctx.actor.role,
            "action": item["action"],
            "entity_type": item["entity_type"],
            "entity_id": str(item["entity_id"]),
            "detail": canonical_json(item.get("detail") or {}),
            "reason": item.get("reason"),
            "request_id": ctx.request_id,
        }
        digest = _hash_body(prev, body)
        rows.append(body | {"prev_hash": prev, "hash": digest})
        prev = digest
        if len(rows) == AUDIT_INSERT_CHUNK:
            session.execute(_ENTRY_INSERT, rows)
            rows = []
    if rows:
        session.execute(_ENTRY_INSERT, rows)
    head.seq, head.hash = seq, prev
    session.add(head)
    return len(items)


def _locked_head(session: Session) -> AuditHead:
    """The head row, locked for the rest of the transaction (created at genesis on the first append)."""
    head = _lock_head(session)
    if head is None:
        # First append: create the genesis head without racing a concurrent first append. On PostgreSQL FOR UPDATE
        # locks nothing while the row does not exist; ON CONFLICT DO NOTHING waits for a concurrent insert of it
        # to commit, and the second SELECT ... FOR UPDATE then queues behind that transaction.
        upsert = {"postgresql": pg_insert, "sqlite": sqlite_insert}[session.get_bind().dialect.name]
        session.execute(upsert(AuditHead).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing())
        head = _lock_head(session)
    return head


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    length: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "length": self.length,
            "head_hash": self.head_hash,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
        }


def chain_head(session: Session) -> dict[str, Any]:
    head = session.get(AuditHead, 1)
    return {"seq": head.seq if head else 0, "hash": head.hash if head else GENESIS}


def verify_chain(engine: Engine, *, page_size: int = 5000) -> ChainVerification:
    """Recompute the whole chain in pages; report the first entry whose link or hash does not hold."""
    prev, expected_seq, length = GENESIS, 1, 0
    with snapshot_session(engine) as session:  # a read: never queued behind a writer's lock
        head = session.get(AuditHead, 1)
        last_seq = 0
        while True:
            rows = session.execute(
                select(AuditEntry).where(AuditEntry.seq > last_seq).order_by(AuditEntry.seq).limit(page_size)
            ).scalars().all()
            if not rows:
                break
            for entry in rows:
                if entry.seq != expected_seq:
                    return ChainVerification(False, length, prev, expected_seq, f"entry {expected_seq} is missing")
                if entry.prev_hash != prev:
                    return ChainVerification(False, length, prev, entry.seq, "link to the previous entry is broken")
                if chain_hash(prev, entry) != entry.hash:
                    return ChainVerification(False, length, prev, entry.seq, "entry content does not match its hash")
                prev, expected_seq, length = entry.hash, expected_seq + 1, length + 1
                last_seq = entry.seq
            session.expunge_all()
        head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS)
    if (head_seq, head_hash) != (length, prev):
        return ChainVerification(False, length, prev, length + 1, "chain head does not match the last entry (truncated?)")
    return ChainVerification(True, length, prev)
