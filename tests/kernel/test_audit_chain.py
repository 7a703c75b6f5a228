"""The hash-chained audit log: appends chain, any tampering is found."""

import threading

from sqlalchemy import delete, update
from sqlmodel import Session

from services.kernel import context
from services.kernel.audit import GENESIS, append_audit, chain_head, verify_chain
from services.kernel.models import AuditEntry
from tests.kernel.support import migrated_engine


def append_n(engine, n: int, start: int = 0) -> None:  # noqa: ANN001
    for i in range(start, start + n):
        with Session(engine) as session:
            append_audit(session, action="thing.change", entity_type="thing", entity_id=str(i), detail={"i": i})
            session.commit()


def test_appends_chain_and_verify(database_urls):
    engine = migrated_engine(database_urls["collection"])
    assert verify_chain(engine).ok and verify_chain(engine).head_hash == GENESIS
    with context.trace(actor=context.Actor(id="clerk-7", role="agency_clerk"), request_id="req-1"):
        append_n(engine, 5)
    result = verify_chain(engine)
    assert result.ok and result.length == 5
    with Session(engine) as session:
        assert chain_head(session) == {"seq": 5, "hash": result.head_hash}
        first = session.get(AuditEntry, 1)
        assert (first.actor_id, first.actor_role, first.request_id, first.prev_hash) == ("clerk-7", "agency_clerk", "req-1", GENESIS)


def test_a_modified_row_breaks_verification(database_urls):
    engine = migrated_engine(database_urls["collection"])
    append_n(engine, 5)
    with Session(engine) as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(detail='{"i":300}'))
        session.commit()
    result = verify_chain(engine)
    assert not result.ok and result.first_bad_seq == 3 and "hash" in result.problem


def test_a_deleted_row_or_truncated_tail_breaks_verification(database_urls):
    engine = migrated_engine(database_urls["collection"])
    append_n(engine, 6)
    with Session(engine) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 6))
        session.commit()
    tail = verify_chain(engine)
    assert not tail.ok and "head" in tail.problem
    with Session(engine) as session:
        session.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
        session.commit()
    middle = verify_chain(engine)
    assert not middle.ok and middle.first_bad_seq == 2


def test_a_rehashed_forgery_is_still_caught_by_the_next_link(database_urls):
    """Rewriting an entry and recomputing its own hash breaks the link from the entry after it."""
    from services.kernel.audit import chain_hash  # noqa: PLC0415

    engine = migrated_engine(database_urls["collection"])
    append_n(engine, 4)
    with Session(engine) as session:
        entry = session.get(AuditEntry, 2)
        entry.detail = '{"i":999}'
        entry.hash = chain_hash(entry.prev_hash, entry)
        session.add(entry)
        session.commit()
    result = verify_chain(engine)
    assert not result.ok and result.first_bad_seq == 3


def test_concurrent_appends_never_fork_the_chain(database_urls):
    engine = migrated_engine(database_urls["collection"])
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            append_n(engine, 25, start=k * 100)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    result = verify_chain(engine)
    assert result.ok and result.length == 100
