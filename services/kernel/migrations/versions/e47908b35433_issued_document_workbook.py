"""an issued document's workbook kept with its PDF (issued_document.xlsx), so both can be fetched again as issued

Revision ID: e47908b35433
Revises: 7755cb8b7262
Create Date: 2026-12-07 07:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = 'e47908b35433'
down_revision: str | Sequence[str] | None = '7755cb8b7262'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('issued_document', schema=None) as batch_op:
        batch_op.add_column(sa.Column('xlsx', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('issued_document', schema=None) as batch_op:
        batch_op.drop_column('xlsx')
