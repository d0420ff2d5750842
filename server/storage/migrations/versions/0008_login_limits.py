"""sign-in limits: one counter row per (address, username), per username and per address

The limits of server/auth.py count an attempt with one conditional UPDATE of its row before the
password is checked, so parallel guesses cannot slip past them. ``login_attempts`` is no longer
written; it stays for the previous release during a rolling restart.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_limits",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.Column("trusted_until", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("username", "ip"),
    )


def downgrade() -> None:
    op.drop_table("login_limits")
