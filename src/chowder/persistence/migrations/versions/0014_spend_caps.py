"""spend caps: monthly token limits on scoped keys and organizations, and each one's running monthly total

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_CAPPED = ("organizations", "api_keys")


def upgrade() -> None:
    for table in _CAPPED:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("monthly_token_limit", sa.BigInteger(), nullable=True))
    op.create_table(
        "monthly_token_spend",
        sa.Column("subject_id", sa.String(36), primary_key=True),
        sa.Column("month", sa.String(7), primary_key=True),
        sa.Column("organization_id", sa.String(36), nullable=False),
        sa.Column("tokens", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("monthly_token_spend")
    for table in _CAPPED:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("monthly_token_limit")
