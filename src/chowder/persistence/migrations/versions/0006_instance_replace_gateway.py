"""restart as one engine operation (replace_gateway); the never-read attempts counter goes

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch_op:
        batch_op.add_column(sa.Column("replace_gateway", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.drop_column("attempts")


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch_op:
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.drop_column("replace_gateway")
