"""enrolment: the index on person_id becomes (person_id, fund, employer_id, start_period, end_period, status), which
serves every lookup by person as before and answers posting's enrolment read from the index alone

Revision ID: fb0e2d513e13
Revises: cab4ca4f2fcc
Create Date: 2026-12-08 00:55:00.000000
"""
from collections.abc import Sequence

from alembic import op


revision: str = 'fb0e2d513e13'
down_revision: str | Sequence[str] | None = 'cab4ca4f2fcc'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ['person_id', 'fund', 'employer_id', 'start_period', 'end_period', 'status']


def upgrade() -> None:
    with op.batch_alter_table('enrolment', schema=None) as batch_op:
        batch_op.create_index('ix_enrolment_person_facts', COLUMNS, unique=False)
        batch_op.drop_index(batch_op.f('ix_enrolment_person_id'))


def downgrade() -> None:
    with op.batch_alter_table('enrolment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_enrolment_person_id'), ['person_id'], unique=False)
        batch_op.drop_index('ix_enrolment_person_facts')
