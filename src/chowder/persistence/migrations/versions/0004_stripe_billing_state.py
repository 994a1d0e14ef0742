"""stripe quantity sync marks, and the time of the last stripe event applied

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organizations") as batch_op:
        batch_op.add_column(sa.Column("stripe_quantity_due", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("stripe_quantity_lease_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("stripe_event_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_organizations_stripe_quantity_due", ["stripe_quantity_due"])


def downgrade() -> None:
    with op.batch_alter_table("organizations") as batch_op:
        batch_op.drop_index("ix_organizations_stripe_quantity_due")
        batch_op.drop_column("stripe_event_at")
        batch_op.drop_column("stripe_quantity_lease_until")
        batch_op.drop_column("stripe_quantity_due")
