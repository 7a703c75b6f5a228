"""registry enrolments: no index on person_id (collection reads its mirror's enrolments by employer or by id, never
by person; every imported enrolment paid a random-order write into it)

Revision ID: ea3afe3e1633
Revises: fff598039e1f
Create Date: 2026-12-07 16:00:00.000000
"""
from collections.abc import Sequence

from alembic import op


revision: str = 'ea3afe3e1633'
down_revision: str | Sequence[str] | None = 'fff598039e1f'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index('ix_registry_enrolment_person_id', table_name='registry_enrolment')


def downgrade() -> None:
    op.create_index('ix_registry_enrolment_person_id', 'registry_enrolment', ['person_id'], unique=False)
