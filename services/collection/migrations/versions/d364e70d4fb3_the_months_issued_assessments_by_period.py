"""the month's issued assessments by period (the month's assessed lines read in pages)

Revision ID: d364e70d4fb3
Revises: b8a923d2e642
Create Date: 2026-12-07 07:10:00.000000
"""
from collections.abc import Sequence

from alembic import op


revision: str = 'd364e70d4fb3'
down_revision: str | Sequence[str] | None = 'b8a923d2e642'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('assessment', schema=None) as batch_op:
        batch_op.create_index('ix_assessment_period', ['period', 'status', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('assessment', schema=None) as batch_op:
        batch_op.drop_index('ix_assessment_period')
