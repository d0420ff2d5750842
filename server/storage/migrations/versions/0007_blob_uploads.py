"""photos: the device that uploaded each one, for the per-device upload budget

Photos stored before have no device and count against no budget.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a plain ADD COLUMN on both databases: the photos' bytes are not copied
    op.add_column("blobs", sa.Column("device_id", sa.String(length=64), nullable=True))
    op.create_index("ix_blobs_device_created", "blobs", ["device_id", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_blobs_device_created", table_name="blobs")
    with op.batch_alter_table("blobs") as batch:
        batch.drop_column("device_id")
