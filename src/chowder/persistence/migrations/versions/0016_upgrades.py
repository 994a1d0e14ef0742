"""version upgrades with rollback: the upgrade under way on an instance

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch_op:
        batch_op.add_column(sa.Column("upgrade_version", sa.String(32), nullable=True))
        batch_op.add_column(sa.Column("upgrade_release", sa.String(32), nullable=True))
        batch_op.add_column(sa.Column("upgrade_backup_id", sa.String(36), nullable=True))
        batch_op.add_column(sa.Column("upgrade_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch_op:
        for name in ("upgrade_error", "upgrade_backup_id", "upgrade_release", "upgrade_version"):
            batch_op.drop_column(name)
