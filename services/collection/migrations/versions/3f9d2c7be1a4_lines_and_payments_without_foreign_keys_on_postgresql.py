"""declaration lines, assessment lines and tax payments without foreign keys on PostgreSQL: each row of their COPY
ran the key's check (a query run by a trigger, per row) — as much of the server's CPU as the row's insert and index
entries (50 000 rows of a tax payment's shape, three indexes, durable settings: 14.6–16.2 µs of the server's CPU a
row with the key, 8.0–8.8 without; the WAL unchanged, the parent a row of the same transaction).

Integrity holds without them: a declaration's and an assessment's lines are written only with their declaration
and assessment (collection.assessments.service, in one transaction), and a tax payment only with its batch
(collection.payments.service, in one transaction); none of them is ever deleted and their ids never change. SQLite
keeps the keys (its check is an index probe). The models keep them too, marked ``SQLITE_ONLY`` (not compared on
PostgreSQL).

Revision ID: 3f9d2c7be1a4
Revises: 5c0e6a1d94b2
Create Date: 2026-12-08 01:00:00.000000
"""
from collections.abc import Sequence

from alembic import op


revision: str = '3f9d2c7be1a4'
down_revision: str | Sequence[str] | None = '5c0e6a1d94b2'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = (("declaration_line", "declaration_line_declaration_id_fkey", "declaration_id", "declaration"),
         ("assessment_line", "assessment_line_assessment_id_fkey", "assessment_id", "assessment"),
         ("tax_payment", "tax_payment_batch_id_fkey", "batch_id", "tax_payment_batch"))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, name, _, _ in _KEYS:
            op.execute(f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, name, column, parent in _KEYS:
            op.create_foreign_key(name, table, parent, [column], ["id"])
