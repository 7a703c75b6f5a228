"""The hash-chained audit log: appends chain (one at a time or in bulk), any tampering is found."""

import threading

from sqlalchemy import delete, update
from sqlmodel import Session

from services.kernel import context
from services.kernel.audit import GENESIS, append_audit, append_audit_many, chain_hash, chain_head, verify_chain
from services.kernel.models import AuditEntry
from tests.support.pipeline import migrated_engine


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
    # 004 第24项: every change traceable; a changed trace is found.
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


# -- bulk append -----------------------------------------------------------------------------------------------------


def items(n: int, start: int = 0) -> list[dict]:
    return [{"action": "thing.change", "entity_type": "thing", "entity_id": i, "detail": {"i": i},
             "reason": f"bulk {i}" if i % 2 else None} for i in range(start, start + n)]


def test_a_bulk_append_on_an_empty_chain_extends_it_like_single_appends(database_urls):
    engine = migrated_engine(database_urls["collection"])
    with context.trace(actor=context.Actor(id="clerk-7", role="agency_clerk"), request_id="req-9"):
        with Session(engine) as session:
            assert append_audit_many(session, []) == 0  # nothing to append: the head is not even created
            assert append_audit_many(session, items(2_345)) == 2_345  # more than one insert chunk
            session.commit()
    result = verify_chain(engine)
    assert result.ok and result.length == 2_345
    with Session(engine) as session:
        assert chain_head(session) == {"seq": 2_345, "hash": result.head_hash}
        first, second, last = (session.get(AuditEntry, s) for s in (1, 2, 2_345))
        assert (first.prev_hash, first.entity_id, first.detail, first.reason) == (GENESIS, "0", '{"i":0}', None)
        assert (second.actor_id, second.actor_role, second.request_id, second.reason) == \
            ("clerk-7", "agency_clerk", "req-9", "bulk 1")
        assert second.prev_hash == first.hash and second.hash == chain_hash(first.hash, second)
        assert last.entity_id == "2344" and last.hash == result.head_hash


def test_bulk_and_single_appends_mix_in_one_transaction_and_across_transactions(database_urls):
    engine = migrated_engine(database_urls["collection"])
    append_n(engine, 3)
    with Session(engine) as session:
        append_audit(session, action="thing.change", entity_type="thing", entity_id="single-before", detail={})
        append_audit_many(session, items(1_500, start=10))
        append_audit(session, action="thing.change", entity_type="thing", entity_id="single-after", detail={})
        append_audit_many(session, items(5, start=5_000))
        session.commit()
    append_n(engine, 2, start=9_000)
    result = verify_chain(engine)
    assert result.ok and result.length == 3 + 1 + 1_500 + 1 + 5 + 2
    with Session(engine) as session:
        assert session.get(AuditEntry, 4).entity_id == "single-before"
        assert session.get(AuditEntry, 5).entity_id == "10"
        assert session.get(AuditEntry, 1_505).entity_id == "single-after"
        assert session.get(AuditEntry, 1_506).entity_id == "5000"
        assert chain_head(session) == {"seq": result.length, "hash": result.head_hash}


def test_a_rolled_back_bulk_append_leaves_the_chain_as_it_was(database_urls):
    engine = migrated_engine(database_urls["collection"])
    append_n(engine, 2)
    before = verify_chain(engine)
    with Session(engine) as session:
        append_audit_many(session, items(50))
        session.rollback()
    after = verify_chain(engine)
    assert after.ok and (after.length, after.head_hash) == (2, before.head_hash)


def test_tampering_inside_a_bulk_append_is_found(database_urls):
    engine = migrated_engine(database_urls["collection"])
    with Session(engine) as session:
        append_audit_many(session, items(20))
        session.commit()
    with Session(engine) as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 11).values(entity_id="someone-else"))
        session.commit()
    result = verify_chain(engine)
    assert not result.ok and result.first_bad_seq == 11


def test_concurrent_bulk_and_single_appends_never_fork_the_chain(database_urls):
    engine = migrated_engine(database_urls["collection"])
    errors: list[BaseException] = []

    def bulk(k: int) -> None:
        try:
            for round_ in range(5):
                with Session(engine) as session:
                    append_audit_many(session, items(40, start=k * 1_000 + round_ * 100))
                    session.commit()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def single(k: int) -> None:
        try:
            append_n(engine, 25, start=100_000 + k * 100)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=bulk, args=(k,)) for k in range(3)]
    threads += [threading.Thread(target=single, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    result = verify_chain(engine)
    assert result.ok and result.length == 3 * 5 * 40 + 2 * 25
