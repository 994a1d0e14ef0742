"""warm_gateways: the warm pool's members, gateways booted before any instance claims them

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "warm_gateways",
        sa.Column("sandbox_id", sa.String(64), primary_key=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("release", sa.String(32), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("gateway_token_enc", sa.Text(), nullable=False),
        sa.Column("model_token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("model_token_enc", sa.Text(), nullable=False),
        sa.Column("gateway_url", sa.String(255), nullable=True),
        sa.UniqueConstraint("provider", "release", "slot"),
    )


def downgrade() -> None:
    op.drop_table("warm_gateways")
