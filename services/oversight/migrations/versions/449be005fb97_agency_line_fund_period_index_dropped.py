"""mirror: drop the agency lines' (fund, period) index

Every posted or held line wrote four B-trees; the (fund, period) one served only the agency-lines page filtered by
fund and period, which it serves badly: a month is one period and a handful of funds, so the index narrows nothing
and SQLite then sorts every matching line to page by payment id, where the primary key's order with the filter stops
after a page. The employer and person indexes, which do narrow, stay. A posted line costs ~0.8 µs CPU less on
SQLite without it.

Revision ID: 449be005fb97
Revises: e01379731d12
Create Date: 2026-12-07 18:40:00
"""
from collections.abc import Sequence

from alembic import op


revision: str = '449be005fb97'
down_revision: str | Sequence[str] | None = 'e01379731d12'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('mirrored_agency_line', schema=None) as batch_op:
        batch_op.drop_index('ix_mirrored_agency_line_fund_period')


def downgrade() -> None:
    with op.batch_alter_table('mirrored_agency_line', schema=None) as batch_op:
        batch_op.create_index('ix_mirrored_agency_line_fund_period', ['fund', 'period'], unique=False)
