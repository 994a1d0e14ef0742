"""indexes for the growing lists' pages: an org's instances and audit entries by creation time

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_INDEXES = {"ix_instances_org_created": "instances", "ix_audit_events_org_created": "audit_events"}


def upgrade() -> None:
    for name, table in _INDEXES.items():
        op.create_index(name, table, ["organization_id", "created_at"])


def downgrade() -> None:
    for name, table in _INDEXES.items():
        op.drop_index(name, table)
