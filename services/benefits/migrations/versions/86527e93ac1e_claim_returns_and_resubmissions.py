"""claims: 退回 (return for correction) and resubmission as steps of a claim's decisions

claim_decision gets returned_to (a return: "clerk" or the level sent back to) and voided_at (a decision a later
return made void; its level is decided again). The unique constraints (claim_id, level) and (claim_id, decided_by)
become partial unique indexes over the live decisions (voided_at IS NULL and decision approve/reject), so a level can
be decided again after a return while two live decisions of one level (or of one person) still cannot exist.
Existing rows are live decisions: nothing to fill.

Revision ID: 86527e93ac1e
Revises: e471bf84b967
Create Date: 2026-12-07 07:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '86527e93ac1e'
down_revision: str | Sequence[str] | None = 'e471bf84b967'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("voided_at IS NULL AND decision IN ('approve', 'reject')")
# The initial schema's constraints were unnamed: PostgreSQL named them itself, SQLite's are named here for the batch.
NAMING = {"uq": "%(table_name)s_%(column_0_name)s_%(column_1_name)s_key"}
OLD = (("claim_decision_claim_id_level_key", ["claim_id", "level"]),
       ("claim_decision_claim_id_decided_by_key", ["claim_id", "decided_by"]))
NEW = (("uq_claim_decision_live_level", ["claim_id", "level"]),
       ("uq_claim_decision_live_person", ["claim_id", "decided_by"]))


def upgrade() -> None:
    with op.batch_alter_table("claim_decision", naming_convention=NAMING) as batch:
        batch.add_column(sa.Column("returned_to", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch.add_column(sa.Column("voided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        for name, _ in OLD:
            batch.drop_constraint(name, type_="unique")
    for name, columns in NEW:
        op.create_index(name, "claim_decision", columns, unique=True, sqlite_where=LIVE, postgresql_where=LIVE)


def downgrade() -> None:
    for name, _ in NEW:
        op.drop_index(name, table_name="claim_decision")
    op.execute(sa.text("DELETE FROM claim_decision WHERE decision NOT IN ('approve', 'reject') "
                       "OR voided_at IS NOT NULL"))  # the old schema cannot hold a level decided twice
    with op.batch_alter_table("claim_decision") as batch:
        for name, columns in OLD:
            batch.create_unique_constraint(name, columns)
        batch.drop_column("voided_at")
        batch.drop_column("returned_to")
