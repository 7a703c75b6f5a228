"""Every service's migrations build exactly its models' schema, and upgrading an up-to-date database changes nothing.

Runs on SQLite (``make test``) and PostgreSQL (``make test-postgres``).
"""

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, inspect

from services.kernel.db import make_engine
from services.kernel.migrations import alembic_config, pending_schema_changes, upgrade_database
from services.kernel.settings import SERVICES
from sifund import services as catalogue

WRITES = ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE")


def schema_snapshot(engine) -> dict:  # noqa: ANN001
    inspector = inspect(engine)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted(i["name"] for i in inspector.get_indexes(table)),
        )
        for table in sorted(inspector.get_table_names())
    }


def heads(engine) -> set[str]:  # noqa: ANN001
    with engine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_models_and_upgrade_is_idempotent(service: str, database_urls: dict[str, str]):
    spec = catalogue.spec(service)
    engine = make_engine(database_urls[service])
    try:
        upgrade_database(engine, service, spec.metadata)
        assert pending_schema_changes(engine, spec.metadata) == []
        first_heads, first_schema = heads(engine), schema_snapshot(engine)
        assert first_heads, "upgrade must stamp the alembic version table"

        statements: list[str] = []

        @event.listens_for(engine, "before_cursor_execute")
        def record(_conn, _cursor, statement, *_args):  # noqa: ANN001
            statements.append(statement)

        upgrade_database(engine, service, spec.metadata)
        event.remove(engine, "before_cursor_execute", record)

        writes = [s for s in statements if s.lstrip().upper().startswith(WRITES)]
        assert writes == [], "a second upgrade must not change the database"
        assert heads(engine) == first_heads
        assert schema_snapshot(engine) == first_schema
        assert pending_schema_changes(engine, spec.metadata) == []
    finally:
        engine.dispose()


def _postgresql_catalog(database_urls: dict[str, str], sql: str):  # noqa: ANN202
    """One value from the catalogue of collection's migrated database (the test skipped but on PostgreSQL)."""
    engine = make_engine(database_urls["collection"])
    try:
        upgrade_database(engine, "collection", catalogue.spec("collection").metadata)
        if engine.dialect.name != "postgresql":
            pytest.skip("a PostgreSQL storage setting")
        with engine.connect() as connection:
            return connection.exec_driver_sql(sql).scalar_one()
    finally:
        engine.dispose()


def test_assessment_lines_leave_room_to_settle_on_postgresql(database_urls: dict[str, str]):
    """PostgreSQL: assessment_line's pages are filled half (fillfactor 50), so a settlement is a HOT update; the
    migration and a table made from the model agree. SQLite has no such setting."""
    options = _postgresql_catalog(database_urls, "SELECT reloptions FROM pg_class WHERE relname = 'assessment_line'")
    assert options == ["fillfactor=50"]


def test_outbox_envelopes_are_compressed_with_lz4_on_postgresql(database_urls: dict[str, str]):
    """PostgreSQL: an outbox envelope (up to ~500 KB of JSON) is TOASTed with lz4 rather than pglz."""
    method = _postgresql_catalog(database_urls, "SELECT attcompression FROM pg_attribute "
                                                "WHERE attrelid = 'outbox'::regclass AND attname = 'envelope'")
    assert method == "l"


def _charges(engine) -> list[tuple]:  # noqa: ANN001
    with engine.connect() as connection:
        return [tuple(row) for row in connection.exec_driver_sql(
            "SELECT id, assessment_line_id, tax_payment_id, days_late, principal_before_fen, principal_paid_fen, "
            "fee_accrued_fen, fee_paid_fen, computed_at FROM late_fee_charge")]


def test_late_fee_charges_have_no_foreign_keys(database_urls: dict[str, str]):
    """A charge's line and payment are not foreign keys on either database (PostgreSQL's checks locked both parents,
    written to the WAL; SQLite's were two index searches a charge), and the models agree; a charge's rows survive
    SQLite's rebuild of the table (migration 8f7165bfa1c3), and its index is there."""
    engine = make_engine(database_urls["collection"])
    metadata = catalogue.spec("collection").metadata
    try:
        command.upgrade(alembic_config(engine, "collection", metadata), "5c0e6a1d94b2")
        with engine.begin() as connection:  # a charge as the previous schema kept it (parents first on SQLite)
            connection.exec_driver_sql("INSERT INTO tax_payment_batch (id, received_at, received_by, source_format, "
                                       "lines, accepted, duplicates, rejected, matched, unmatched) VALUES "
                                       "('batch-1', '2026-12-08 00:00:00', 'tax', 'json', 1, 1, 0, 0, 1, 0)")
            connection.exec_driver_sql("INSERT INTO tax_payment (id, tax_line_id, content_hash, batch_id, fund, period, "
                                       "employer_fen, individual_fen, late_fee_fen, method, voucher_no, paid_date, "
                                       "match_status) VALUES ('payment-1', 'T1', 'h', 'batch-1', 'PENSION', 202611, "
                                       "8000, 2000, 12, 'online', 'V1', '2026-12-07', 'matched')")
            connection.exec_driver_sql("INSERT INTO assessment (id, employer_id, period, parameters_id, status, due_date, "
                                       "lines, employer_total_fen, individual_total_fen, issued_at, issued_by) VALUES "
                                       "('assessment-1', 'e', 202611, 'rates', 'issued', '2026-11-15', 1, 8000, 2000, "
                                       "'2026-12-01 00:00:00', 'clerk')")
            connection.exec_driver_sql("INSERT INTO assessment_line (id, assessment_id, person_id, fund, period, "
                                       "base_fen, employer_rate, individual_rate, employer_fen, individual_fen, "
                                       "due_date, status, paid_principal_fen, paid_late_fee_fen) VALUES ('line-1', "
                                       "'assessment-1', 'p', 'PENSION', 202611, 50000, '0.16', '0.04', 8000, 2000, "
                                       "'2026-11-15', 'paid', 10000, 12)")
            connection.exec_driver_sql("INSERT INTO late_fee_charge (assessment_line_id, tax_payment_id, days_late, "
                                       "principal_before_fen, principal_paid_fen, fee_accrued_fen, fee_paid_fen, "
                                       "computed_at) VALUES ('line-1', 'payment-1', 3, 10000, 10000, 12, 12, "
                                       "'2026-12-08 00:00:00')")
        before = _charges(engine)
        upgrade_database(engine, "collection", metadata)
        assert [row[:8] for row in before] == [(1, "line-1", "payment-1", 3, 100_00, 100_00, 12, 12)]
        assert _charges(engine) == before
        assert inspect(engine).get_foreign_keys("late_fee_charge") == []
        assert {i["name"] for i in inspect(engine).get_indexes("late_fee_charge")} == {
            "ix_late_fee_charge_assessment_line_id"}
        assert pending_schema_changes(engine, metadata) == []
    finally:
        engine.dispose()


def test_lines_and_payments_have_their_parent_key_on_sqlite_only(database_urls: dict[str, str]):
    """A declaration's and an assessment's lines and a batch's tax payments refer to their parent by a foreign key
    on SQLite; PostgreSQL's were dropped (migration 3f9d2c7be1a4: each row of a COPY ran the key's check), and the
    models, which keep them as ``SQLITE_ONLY``, still agree with it."""
    engine = make_engine(database_urls["collection"])
    try:
        upgrade_database(engine, "collection", catalogue.spec("collection").metadata)
        children = {"declaration_line": "declaration", "assessment_line": "assessment",
                    "tax_payment": "tax_payment_batch"}
        parents = {child: {fk["referred_table"] for fk in inspect(engine).get_foreign_keys(child)} for child in children}
        sqlite = engine.dialect.name == "sqlite"
        assert parents == {child: {parent} if sqlite else set() for child, parent in children.items()}
        assert pending_schema_changes(engine, catalogue.spec("collection").metadata) == []
    finally:
        engine.dispose()
