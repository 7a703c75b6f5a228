"""role conflict rules: the default rules' basis in the canonical citation form (docs/citations.md)

Only the default rules' text as the platform seeded it is rewritten; a rule a region wrote itself is left alone.

Revision ID: d4b2f6a8c310
Revises: b7ace8921818
Create Date: 2026-12-06 05:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd4b2f6a8c310'
down_revision: str | Sequence[str] | None = 'b7ace8921818'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REWRITES: tuple[tuple[str, str], ...] = (
    ("004 第3、22项；001 第十六条", "004 第3项、第22项；001 第十六条"),
    ("003 经办与监督分离；001 第十六条", "003 二.3；001 第十六条"),
)


def upgrade() -> None:
    for old, new in REWRITES:
        op.execute(sa.text("UPDATE role_conflict_rule SET basis = :new WHERE basis = :old")
                   .bindparams(old=old, new=new))


def downgrade() -> None:
    # The canonical text is read by every version of the code alike: nothing to undo.
    pass
