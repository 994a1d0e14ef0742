"""session_turns: the API key holding each session's running chat turn, shared by API replicas

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "session_turns",
        sa.Column("instance_id", sa.String(36), primary_key=True),
        sa.Column("session_id", sa.String(128), primary_key=True),
        sa.Column("key_id", sa.String(36), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("session_turns")
