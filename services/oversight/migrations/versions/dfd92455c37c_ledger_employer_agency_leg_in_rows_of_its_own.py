"""ledger: R2's AGENCY leg in rows of its own (ledger_employer_period_agency)

As 977a03bb30fa did for R1: ledger_employer_period held an employer's fund × period cell in one row moved by the
COLLECTION consumer (ASSESSED, TAX) and the ACCOUNTS consumer (AGENCY), whose events name the same employers at
about the same time, so on PostgreSQL one waited for the other's row lock until its commit (282.7 ms of the
upsert's time at 50 000 lines once R1's rows were apart). The AGENCY figure now has its own rows, moved by the
ACCOUNTS consumer alone; R2 reads both tables. The figures move here (rows with an AGENCY figure copied, the column
dropped); the downgrade puts them back.

Revision ID: dfd92455c37c
Revises: 977a03bb30fa
Create Date: 2026-12-08 01:05:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = 'dfd92455c37c'
down_revision: str | Sequence[str] | None = '977a03bb30fa'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ledger_employer_period_agency',
    sa.Column('period', sa.Integer(), nullable=False),
    sa.Column('fund', sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
    sa.Column('employer_key', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('agency_fen', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('period', 'fund', 'employer_key')
    )
    op.execute("INSERT INTO ledger_employer_period_agency (period, fund, employer_key, agency_fen, updated_at) "
               "SELECT period, fund, employer_key, agency_fen, updated_at FROM ledger_employer_period "
               "WHERE agency_fen <> 0")
    with op.batch_alter_table('ledger_employer_period', schema=None) as batch_op:
        batch_op.drop_column('agency_fen')


def downgrade() -> None:
    with op.batch_alter_table('ledger_employer_period', schema=None) as batch_op:
        batch_op.add_column(sa.Column('agency_fen', sa.BigInteger(), server_default='0', nullable=False))
    op.execute("INSERT INTO ledger_employer_period (period, fund, employer_key, agency_fen, updated_at) "
               "SELECT period, fund, employer_key, agency_fen, updated_at FROM ledger_employer_period_agency "
               "WHERE true ON CONFLICT (period, fund, employer_key) DO UPDATE SET agency_fen = excluded.agency_fen")
    op.drop_table('ledger_employer_period_agency')
