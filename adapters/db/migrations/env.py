"""Alembic environment: runs on the connection handed in by ``adapters.db.migrate``."""

from __future__ import annotations

from alembic import context

from adapters.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the worker always hands a connection in
    raise RuntimeError("run migrations through `ebok-worker db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
