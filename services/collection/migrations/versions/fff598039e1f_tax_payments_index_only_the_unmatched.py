"""tax payments: one partial index on the unmatched ones (the reviewer's work list) instead of the period × fund
and employer indexes no query of a matched payment needs (every line of every tax batch maintained them)

Revision ID: fff598039e1f
Revises: d364e70d4fb3
Create Date: 2026-12-07 07:12:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'fff598039e1f'
down_revision: str | Sequence[str] | None = 'd364e70d4fb3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNMATCHED = sa.text("match_status = 'unmatched'")


def upgrade() -> None:
    with op.batch_alter_table('tax_payment', schema=None) as batch_op:
        batch_op.drop_index('ix_tax_payment_employer_id')
        batch_op.drop_index('ix_tax_payment_period_fund')
        batch_op.create_index('ix_tax_payment_unmatched', ['id'], unique=False, sqlite_where=UNMATCHED,
                              postgresql_where=UNMATCHED)


def downgrade() -> None:
    with op.batch_alter_table('tax_payment', schema=None) as batch_op:
        batch_op.drop_index('ix_tax_payment_unmatched', sqlite_where=UNMATCHED, postgresql_where=UNMATCHED)
        batch_op.create_index('ix_tax_payment_period_fund', ['period', 'fund'], unique=False)
        batch_op.create_index('ix_tax_payment_employer_id', ['employer_id'], unique=False)
