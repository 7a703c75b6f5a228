"""late fee charges without foreign keys on SQLite too: each charge's two checks (its assessment line, its tax
payment) were two more index searches per charge, 1.7 us of a tax batch's ~50 a line (bench.collection_tax_batch,
100 000 lines: the charges' insert 5.0 → 3.3 us a line; 7.9 → 4.3 us a row with parents at random places).

Integrity holds without them, as on PostgreSQL since 5c0e6a1d94b2: a charge is written only by a tax payment batch
and by a reviewer's resolve, and refers to a payment inserted (the batch) or locked (the resolve) in the same
transaction and to a line read in it under the period's settlement lock (SQLite: the writer holds the whole database);
assessment lines and tax payments are never deleted and their ids never change. SQLite cannot drop a constraint: the
table is rebuilt (its rows copied in id order, its index made again).

Revision ID: 8f7165bfa1c3
Revises: 3f9d2c7be1a4
Create Date: 2026-12-08 00:50:00.000000
"""
from collections.abc import Sequence

from alembic import op


revision: str = '8f7165bfa1c3'
down_revision: str | Sequence[str] | None = '3f9d2c7be1a4'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("id, assessment_line_id, tax_payment_id, days_late, principal_before_fen, principal_paid_fen, "
            "fee_accrued_fen, fee_paid_fen, computed_at")


def _rebuild(keys: str) -> None:
    op.execute(f"""CREATE TABLE _late_fee_charge_new (
	id INTEGER NOT NULL,
	assessment_line_id VARCHAR(36) NOT NULL,
	tax_payment_id VARCHAR(36) NOT NULL,
	days_late INTEGER NOT NULL,
	principal_before_fen BIGINT NOT NULL,
	principal_paid_fen BIGINT NOT NULL,
	fee_accrued_fen BIGINT NOT NULL,
	fee_paid_fen BIGINT NOT NULL,
	computed_at DATETIME NOT NULL,
	PRIMARY KEY (id){keys}
)""")
    op.execute(f"INSERT INTO _late_fee_charge_new ({_COLUMNS}) SELECT {_COLUMNS} FROM late_fee_charge ORDER BY id")
    op.execute("DROP TABLE late_fee_charge")  # nothing refers to a charge
    op.execute("ALTER TABLE _late_fee_charge_new RENAME TO late_fee_charge")
    op.execute("CREATE INDEX ix_late_fee_charge_assessment_line_id ON late_fee_charge (assessment_line_id)")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild("")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild(",\n\tFOREIGN KEY(assessment_line_id) REFERENCES assessment_line (id),"
                 "\n\tFOREIGN KEY(tax_payment_id) REFERENCES tax_payment (id)")
