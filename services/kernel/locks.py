"""Transaction-level advisory locks on business keys (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises
writers). Under READ COMMITTED two transactions may each find no row for a key and both insert, or miss each other's
uncommitted half; taking the keys' lock first makes the second wait for the first to commit and then see its rows.
Keys are locked in one order (by their hash), so two lockers of overlapping sets cannot deadlock. A key may also be
held in share mode (``shared=True``): sharers do not wait for each other, only for (and block) its exclusive holder."""

from collections.abc import Iterable

from sqlalchemy import text
from sqlmodel import Session

_KEYS = ("(SELECT DISTINCT hashtextextended(:namespace || ':' || id, 0) AS k FROM unnest(CAST(:ids AS text[])) AS id)"
         " AS keys ORDER BY k")
_LOCK_KEYS = text(f"SELECT pg_advisory_xact_lock(k) FROM {_KEYS}")
_SHARE_KEYS = text(f"SELECT pg_advisory_xact_lock_shared(k) FROM {_KEYS}")


def lock_keys(session: Session, namespace: str, keys: Iterable[str], *, shared: bool = False) -> None:
    """Hold, until this transaction ends, the lock of each of ``keys`` in ``namespace`` (no-op but on PostgreSQL)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted(set(keys))
    if ids:
        session.execute(_SHARE_KEYS if shared else _LOCK_KEYS, {"namespace": namespace, "ids": ids})
