"""Monitoring: the worker's counters (``worker_counter``: documents processed by outcome,
errors by kind), what kind of error a mailbox's last error was, and correspondence
recorded as such (its outcome ``CORRESPONDENCE``, not ``REJECTED``).

The processed counter starts from the audit trail (one ``PROCESSED`` record per
processing), the processing errors from the failed attempts.

Revision ID: 0008
Revises: 0007
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_counter",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", "label", name=op.f("pk_worker_counter")),
    )
    with op.batch_alter_table("worker_mailbox") as batch:
        batch.add_column(sa.Column("error_kind", sa.String(length=16), nullable=True))
    op.execute("UPDATE worker_document SET outcome = 'CORRESPONDENCE' WHERE kind = 'CORRESPONDENCE' AND outcome = 'REJECTED'")
    now = datetime.now(UTC)
    bind = op.get_bind()
    stamp = now.replace(tzinfo=None) if bind.dialect.name == "sqlite" else now
    processed = bind.execute(sa.text(
        "SELECT CASE WHEN d.kind = 'CORRESPONDENCE' AND a.new_status = 'REJECTED' THEN 'CORRESPONDENCE' "
        "ELSE COALESCE(a.new_status, 'NONE') END AS label, count(*) AS n "
        "FROM worker_audit a LEFT JOIN worker_document d ON d.id = a.document_id "
        "WHERE a.action = 'PROCESSED' GROUP BY 1"
    )).all()
    failed = bind.execute(sa.text("SELECT count(*) FROM worker_attempt WHERE result = 'FAILED'")).scalar_one()
    rows = [{"name": "processed", "label": label, "value": float(n), "updated_at": stamp} for label, n in processed]
    if failed:
        rows.append({"name": "errors", "label": "processing", "value": float(failed), "updated_at": stamp})
    if rows:
        counter = sa.table("worker_counter", sa.column("name"), sa.column("label"), sa.column("value"), sa.column("updated_at"))
        op.bulk_insert(counter, rows)


def downgrade() -> None:
    op.execute("UPDATE worker_document SET outcome = 'REJECTED' WHERE kind = 'CORRESPONDENCE' AND outcome = 'CORRESPONDENCE'")
    with op.batch_alter_table("worker_mailbox") as batch:
        batch.drop_column("error_kind")
    op.drop_table("worker_counter")
