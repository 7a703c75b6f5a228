"""a job's uploaded file in parts (job_input → job_input_part); where the ETA's pace is measured from

Revision ID: 6a1f0c2d9e47
Revises: 35fcd5cf75ef
Create Date: 2026-12-07 00:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '6a1f0c2d9e47'
down_revision: str | Sequence[str] | None = '35fcd5cf75ef'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('job_input_part',
    sa.Column('job_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('part_no', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], ),
    sa.PrimaryKeyConstraint('job_id', 'part_no')
    )
    # A file stored whole before stays one part: it reads back the same.
    op.execute("INSERT INTO job_input_part (job_id, part_no, data) SELECT job_id, 0, data FROM job_input")
    op.drop_table('job_input')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('run_began_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('run_began_rows', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_column('run_began_rows')
        batch_op.drop_column('run_began_at')
    op.create_table('job_input',
    sa.Column('job_id', sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], ),
    sa.PrimaryKeyConstraint('job_id')
    )
    # Each file joined back whole, one file in memory at a time.
    connection = op.get_bind()
    job_ids = connection.execute(sa.text("SELECT DISTINCT job_id FROM job_input_part")).scalars().all()
    for job_id in job_ids:
        parts = connection.execute(sa.text("SELECT data FROM job_input_part WHERE job_id = :j ORDER BY part_no"),
                                   {"j": job_id}).scalars()
        connection.execute(sa.text("INSERT INTO job_input (job_id, data) VALUES (:j, :d)"),
                           {"j": job_id, "d": b"".join(parts)})
    op.drop_table('job_input_part')
