"""Alembic environment: the URL and metadata come from the Zoufang app being upgraded."""

from __future__ import annotations

from alembic import context

from server.storage.db import db

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=db.metadata, render_as_batch=True, compare_type=True
)
with context.begin_transaction():
    context.run_migrations()
