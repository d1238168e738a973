"""Intake that no document can stop: a mailbox whose head document cannot be taken in is
marked blocked (since when, why) for ``status`` and monitoring.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("worker_mailbox") as batch:
        batch.add_column(sa.Column("blocked_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("blocked_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("worker_mailbox") as batch:
        batch.drop_column("blocked_reason")
        batch.drop_column("blocked_since")
