"""backups of an instance's state, and their schedules

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("instance_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("openclaw_version", sa.String(32), nullable=False),
        sa.Column("openclaw_release", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )
    op.create_index("ix_backups_org_created", "backups", ["organization_id", "created_at"])
    op.create_index("ix_backups_instance_id", "backups", ["instance_id"])
    op.create_index("ix_backups_status", "backups", ["status"])
    with op.batch_alter_table("instances") as batch_op:
        batch_op.add_column(sa.Column("backup_every_hours", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("backup_keep", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("backup_due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_instances_backup_due_at", ["backup_due_at"])
        # Restore and clone (helper E): the backup to put in place before the next boot.
        batch_op.add_column(sa.Column("restore_backup_id", sa.String(36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch_op:
        batch_op.drop_column("restore_backup_id")
        batch_op.drop_index("ix_instances_backup_due_at")
        batch_op.drop_column("backup_due_at")
        batch_op.drop_column("backup_keep")
        batch_op.drop_column("backup_every_hours")
    for name in ("ix_backups_status", "ix_backups_instance_id", "ix_backups_org_created"):
        op.drop_index(name, "backups")
    op.drop_table("backups")
