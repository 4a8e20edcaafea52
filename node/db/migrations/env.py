"""Alembic environment: runs on the connection the node hands over."""

from __future__ import annotations

from alembic import context

from node.db.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only the node runs migrations
    raise RuntimeError("run migrations through node.db.engine.Database.upgrade()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
