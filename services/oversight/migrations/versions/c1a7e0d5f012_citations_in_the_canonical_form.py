"""seed citations in the canonical form (docs/citations.md)

Rewrites the citations stored in oversight's own rows to the one written form: ASCII brackets around an article's
item (``001 第二十九条(五)``), every clause of a list written in full (``004 第3项、第22项``), 004's task-table items as
``第N项``. Only the citation text changes. Rows of the audit log and events already published are left as they
were: the audit log is a hash chain, and an event is a fact as it was sent.

Revision ID: c1a7e0d5f012
Revises: 3eab7dc586fe
Create Date: 2026-12-06 05:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c1a7e0d5f012'
down_revision: str | Sequence[str] | None = '3eab7dc586fe'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (old text, canonical text); longest first, so that a longer old form is not cut by a shorter one.
REWRITES: tuple[tuple[str, str], ...] = (
    ("004 第24行；ARCHITECTURE 原则5（审计日志哈希链）", "004 第24项"),
    ("004 第3、22项", "004 第3项、第22项"),
    *((f"条（{item}）", f"条({item})") for item in "一二三四五六"),
)

COLUMNS: tuple[tuple[str, str], ...] = (
    ("oversight_case", "seed_clause"),
    ("oversight_case", "details"),
    ("case_occurrence", "details"),
    ("case_history", "detail"),
    ("whistleblower_reward", "decision"),
)


def upgrade() -> None:
    for table, column in COLUMNS:
        for old, new in REWRITES:
            op.execute(sa.text(f"UPDATE {table} SET {column} = REPLACE({column}, :old, :new) "
                               f"WHERE {column} LIKE :pattern").bindparams(old=old, new=new, pattern=f"%{old}%"))


def downgrade() -> None:
    # The canonical text is read by every version of the code alike: nothing to undo.
    pass
