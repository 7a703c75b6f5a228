"""Every service's migrations build exactly its models' schema, and upgrading an up-to-date database changes nothing.

Runs on SQLite (``make test``) and PostgreSQL (``make test-postgres``).
"""

import pytest
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, inspect

from services.kernel.db import make_engine
from services.kernel.migrations import pending_schema_changes, upgrade_database
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


def test_late_fee_charges_have_foreign_keys_on_sqlite_only(database_urls: dict[str, str]):
    """A charge's line and payment are foreign keys on SQLite; PostgreSQL's were dropped (each check locked both
    parents, written to the WAL), and the models, which keep them as ``SQLITE_ONLY``, still agree with it."""
    engine = make_engine(database_urls["collection"])
    try:
        upgrade_database(engine, "collection", catalogue.spec("collection").metadata)
        parents = {fk["referred_table"] for fk in inspect(engine).get_foreign_keys("late_fee_charge")}
        expected = {"assessment_line", "tax_payment"} if engine.dialect.name == "sqlite" else set()
        assert parents == expected
        assert pending_schema_changes(engine, catalogue.spec("collection").metadata) == []
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
