"""Shared alembic environment: the engine and target metadata come from ``services.kernel.migrations``.

Replicas of a service start together against one database: the upgrade runs under a lock, so one process migrates
and the others, once it committed, find the heads already reached. PostgreSQL: a transaction-level advisory lock
taken before alembic reads the current heads; SQLite: the transaction's ``BEGIN IMMEDIATE`` (kernel db) already is
that lock.
"""

from alembic import context
from sqlalchemy import text

from services.kernel.migrations import compared_on

MIGRATION_LOCK = 0x5F1F_0D00_0001  # advisory lock key (per database) held by the process that migrates

config = context.config
engine = config.attributes["engine"]
target_metadata = config.attributes["target_metadata"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=compared_on(connection.dialect.name),
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        context.run_migrations()
