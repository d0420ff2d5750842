"""photos: the bytes may live outside the database (server/storage/blobstore.py)

``blobs.content`` becomes nullable: NULL when the bytes are in a directory or a bucket.
Every photo stored before keeps its bytes in its row.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # PostgreSQL drops the constraint in place; SQLite copies the table (batch mode)
    with op.batch_alter_table("blobs") as batch:
        batch.alter_column("content", existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    """Only once every photo's bytes are back in the database (a NULL would refuse it)."""
    with op.batch_alter_table("blobs") as batch:
        batch.alter_column("content", existing_type=sa.LargeBinary(), nullable=False)
