"""Transaction-level advisory locks on business keys (PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises
writers). Under READ COMMITTED two transactions may each find no row for a key and both insert, or miss each other's
uncommitted half; taking the keys' lock first makes the second wait for the first to commit and then see its rows.
Keys are locked in one order (by their hash), so two lockers of overlapping sets cannot deadlock."""

from collections.abc import Iterable

from sqlalchemy import text
from sqlmodel import Session

_LOCK_KEYS = text("SELECT pg_advisory_xact_lock(k) FROM (SELECT DISTINCT hashtextextended(:namespace || ':' || id, 0)"
                  " AS k FROM unnest(CAST(:ids AS text[])) AS id) AS keys ORDER BY k")


def lock_keys(session: Session, namespace: str, keys: Iterable[str]) -> None:
    """Hold, until this transaction ends, the lock of each of ``keys`` in ``namespace`` (no-op but on PostgreSQL)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted(set(keys))
    if ids:
        session.execute(_LOCK_KEYS, {"namespace": namespace, "ids": ids})
