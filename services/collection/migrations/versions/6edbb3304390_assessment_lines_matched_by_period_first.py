"""assessment lines: the payments' match index led by the period — (period, person_id, fund) instead of
(person_id, fund, period): a month's issued lines are inserted into the newest period's part of the index, not at
random places over every month's (the open-lines query binds both the periods and the persons, and an employer's
lines are now searched within the batch's periods)

Revision ID: 6edbb3304390
Revises: ea3afe3e1633
Create Date: 2026-12-07 18:30:00.000000
"""
from collections.abc import Sequence

from alembic import op


revision: str = '6edbb3304390'
down_revision: str | Sequence[str] | None = 'ea3afe3e1633'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_assessment_line_match', table_name='assessment_line')
    op.create_index('ix_assessment_line_period_match', 'assessment_line', ['period', 'person_id', 'fund'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_assessment_line_period_match', table_name='assessment_line')
    op.create_index('ix_assessment_line_match', 'assessment_line', ['person_id', 'fund', 'period'], unique=False)
