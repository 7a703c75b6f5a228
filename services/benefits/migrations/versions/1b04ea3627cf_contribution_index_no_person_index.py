"""contribution index: no separate index on person_id (the unique key person_id, fund, period starts with it and
serves every read by person; each assessed pension line paid a random-order write into the second B-tree)

Revision ID: 1b04ea3627cf
Revises: 86527e93ac1e
Create Date: 2026-12-07 18:40:00.000000
"""
from collections.abc import Sequence

from alembic import op


revision: str = '1b04ea3627cf'
down_revision: str | Sequence[str] | None = '86527e93ac1e'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_contribution_index_person_id', table_name='contribution_index')


def downgrade() -> None:
    op.create_index('ix_contribution_index_person_id', 'contribution_index', ['person_id'], unique=False)
