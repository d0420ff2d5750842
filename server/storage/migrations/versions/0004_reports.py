"""reports: find the correction of a visit by index

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_visits_corrects",
            ["corrects"],
            unique=False,
            sqlite_where=sa.text("corrects IS NOT NULL"),
            postgresql_where=sa.text("corrects IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("visits", schema=None) as batch_op:
        batch_op.drop_index("ix_visits_corrects")
