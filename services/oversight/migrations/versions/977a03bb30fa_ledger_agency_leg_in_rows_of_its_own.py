"""ledger: R1's AGENCY leg in rows of its own (ledger_fund_period_agency)

``ledger_fund_period`` held the three legs of a fund × period cell in one row, moved by two consumers: COLLECTION
(the TAX leg of every collected batch, the FINANCE leg of receipts) and ACCOUNTS (the AGENCY leg of every posting).
A month's lines are one period and a handful of funds, so both consumers moved the same few rows all month, and on
PostgreSQL each transaction waited for the other's row lock until its commit: 36.9 s of waiting at 1 000 000 lines.
The AGENCY leg now has its own rows, moved by the ACCOUNTS consumer alone; R1, the budget's contributions and the
recent-months metric read both tables. The figures move here (rows with an AGENCY figure copied, the two columns
dropped); the downgrade puts them back.

Revision ID: 977a03bb30fa
Revises: 449be005fb97
Create Date: 2026-12-08 00:58:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '977a03bb30fa'
down_revision: str | Sequence[str] | None = '449be005fb97'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ledger_fund_period_agency',
    sa.Column('period', sa.Integer(), nullable=False),
    sa.Column('fund', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('agency_fen', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('agency_lines', sa.Integer(), server_default='0', nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('period', 'fund')
    )
    op.execute("INSERT INTO ledger_fund_period_agency (period, fund, agency_fen, agency_lines, updated_at) "
               "SELECT period, fund, agency_fen, agency_lines, updated_at FROM ledger_fund_period "
               "WHERE agency_fen <> 0 OR agency_lines <> 0")
    with op.batch_alter_table('ledger_fund_period', schema=None) as batch_op:
        batch_op.drop_column('agency_lines')
        batch_op.drop_column('agency_fen')


def downgrade() -> None:
    with op.batch_alter_table('ledger_fund_period', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agency_fen', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('agency_lines', sa.Integer(), server_default='0', nullable=False))
    op.execute("INSERT INTO ledger_fund_period (period, fund, agency_fen, agency_lines, updated_at) "
               "SELECT period, fund, agency_fen, agency_lines, updated_at FROM ledger_fund_period_agency WHERE true "
               "ON CONFLICT (period, fund) DO UPDATE SET agency_fen = excluded.agency_fen, "
               "agency_lines = excluded.agency_lines")
    op.drop_table('ledger_fund_period_agency')
