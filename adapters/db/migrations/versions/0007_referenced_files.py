"""Attachments sent by reference: the files fetched from ePUAP's file repository, by fileId.

Revision ID: 0007
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_remote_file",
        sa.Column("file_id", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("storage_key", sa.String(length=200), nullable=True),
        sa.Column("filename", sa.String(length=300), nullable=True),
        sa.Column("mime_type", sa.String(length=200), nullable=True),
        sa.Column("encoding", sa.String(length=50), nullable=True),
        sa.Column("detected_type", sa.String(length=100), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failed_passes", sa.Integer(), nullable=False),
        sa.Column("first_document_id", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["first_document_id"], ["worker_document.id"], name=op.f("fk_worker_remote_file_first_document_id_worker_document")
        ),
        sa.PrimaryKeyConstraint("file_id", name=op.f("pk_worker_remote_file")),
    )
    op.create_index(op.f("ix_worker_remote_file_state"), "worker_remote_file", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_worker_remote_file_state"), table_name="worker_remote_file")
    op.drop_table("worker_remote_file")
