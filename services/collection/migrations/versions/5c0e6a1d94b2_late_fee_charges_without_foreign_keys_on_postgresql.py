"""late fee charges without foreign keys on PostgreSQL: each charge's two checks (its assessment line, its tax
payment) took a FOR KEY SHARE lock on both parent rows, written to the WAL: 37 s and 367 MB of WAL for the
1 000 000 charges of a month, two-thirds of the COPY (50 000 rows, durable settings: 2.7 s and 27 MB with the keys,
0.4 s and 13 MB without).

Integrity holds without them: a charge is written only by a tax payment batch and by a reviewer's resolve, and
refers to a payment inserted (the batch) or locked FOR UPDATE (the resolve) in the same transaction and to a line
read in it under the period's settlement lock (``collection.payments.settling``); assessment lines and tax payments
are never deleted (a correction marks lines superseded) and their ids never change. SQLite keeps the keys (its
check is an index probe, nothing written). The models keep them too, marked ``SQLITE_ONLY`` (not compared on
PostgreSQL).

Revision ID: 5c0e6a1d94b2
Revises: b42f713a3440
Create Date: 2026-12-07 22:00:00.000000
"""
from collections.abc import Sequence

from alembic import op


revision: str = '5c0e6a1d94b2'
down_revision: str | Sequence[str] | None = 'b42f713a3440'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEYS = (("late_fee_charge_assessment_line_id_fkey", "assessment_line_id", "assessment_line"),
         ("late_fee_charge_tax_payment_id_fkey", "tax_payment_id", "tax_payment"))


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, _, _ in _KEYS:
            op.execute(f"ALTER TABLE late_fee_charge DROP CONSTRAINT IF EXISTS {name}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, column, parent in _KEYS:
            op.create_foreign_key(name, "late_fee_charge", parent, [column], ["id"])
