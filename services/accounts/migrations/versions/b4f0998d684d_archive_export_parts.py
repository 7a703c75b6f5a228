"""archive exports as jobs: the package's bytes, in parts, for the exporter to download

Revision ID: b4f0998d684d
Revises: a4931aba81bf
Create Date: 2026-12-07 06:55:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'b4f0998d684d'
down_revision: str | Sequence[str] | None = 'a4931aba81bf'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('archive_export_part',
    sa.Column('export_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('part_no', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['export_id'], ['archive_export.id'], ),
    sa.PrimaryKeyConstraint('export_id', 'part_no')
    )


def downgrade() -> None:
    op.drop_table('archive_export_part')
