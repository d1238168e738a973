"""One signature, one filing: the digests of the verified signature values of each
document (``worker_signature_digest``), to refuse a replayed signature
(``DUPLICATE_SIGNATURE``).

Revision ID: 0004
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_signature_digest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["worker_document.id"],
            name=op.f("fk_worker_signature_digest_document_id_worker_document"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_signature_digest")),
        sa.UniqueConstraint("digest", "document_id", name="uq_worker_signature_digest_digest_document_id"),
    )
    op.create_index(op.f("ix_worker_signature_digest_digest"), "worker_signature_digest", ["digest"], unique=False)
    op.create_index(op.f("ix_worker_signature_digest_document_id"), "worker_signature_digest", ["document_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_worker_signature_digest_document_id"), table_name="worker_signature_digest")
    op.drop_index(op.f("ix_worker_signature_digest_digest"), table_name="worker_signature_digest")
    op.drop_table("worker_signature_digest")
