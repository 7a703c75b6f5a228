"""system clients: when each last obtained a token (the IT administrator's list of clients shows it)

Revision ID: f0974fb42da5
Revises: d4b2f6a8c310
Create Date: 2026-12-07 07:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'f0974fb42da5'
down_revision: str | Sequence[str] | None = 'd4b2f6a8c310'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("system_client") as batch:
        batch.add_column(sa.Column("last_token_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("system_client") as batch:
        batch.drop_column("last_token_at")
