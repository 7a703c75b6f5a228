"""assessment lines leave half of each page free on PostgreSQL (fillfactor 50), so that settling a line (its paid
amounts and status, no indexed column) writes its new version on the same page: a HOT update, no new entry in the
line's three indexes. SQLite updates in place and has no such setting.

Revision ID: b42f713a3440
Revises: 6edbb3304390
Create Date: 2026-12-07 20:15:00.000000
"""
from collections.abc import Sequence

from alembic import op


revision: str = 'b42f713a3440'
down_revision: str | Sequence[str] | None = '6edbb3304390'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":  # pages written from now on; existing ones keep their rows
        op.execute("ALTER TABLE assessment_line SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE assessment_line RESET (fillfactor)")
