"""sleep when idle: each instance's auto_stop delays, its power and its idle and wake deadlines

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_DEADLINES = ("idle_freeze_at", "idle_stop_at", "wake_at")


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch_op:
        batch_op.add_column(sa.Column("freeze_after_s", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("stop_after_s", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("power", sa.String(8), nullable=False, server_default="awake"))
        for name in _DEADLINES:
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
            batch_op.create_index(f"ix_instances_{name}", [name])


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch_op:
        for name in _DEADLINES:
            batch_op.drop_index(f"ix_instances_{name}")
            batch_op.drop_column(name)
        batch_op.drop_column("power")
        batch_op.drop_column("stop_after_s")
        batch_op.drop_column("freeze_after_s")
