"""contribution_month: drop the index on person_id alone (the unique (person_id, fund, period) index serves every
lookup by person; the second index only cost each posted line one more B-tree insert)

Revision ID: cab4ca4f2fcc
Revises: b4f0998d684d
Create Date: 2026-12-07 12:50:00.000000
"""
from collections.abc import Sequence

from alembic import op


revision: str = 'cab4ca4f2fcc'
down_revision: str | Sequence[str] | None = 'b4f0998d684d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('contribution_month', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contribution_month_person_id'))


def downgrade() -> None:
    with op.batch_alter_table('contribution_month', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contribution_month_person_id'), ['person_id'], unique=False)
