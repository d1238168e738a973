"""The hand-over of correspondence to the office's outbox (one row per handed-over document).

Revision ID: 0005
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_correspondence",
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("folder", sa.String(length=300), nullable=True),
        sa.Column("handed_over_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["document_id"], ["worker_document.id"], name=op.f("fk_worker_correspondence_document_id_worker_document")
        ),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_worker_correspondence")),
    )


def downgrade() -> None:
    op.drop_table("worker_correspondence")
