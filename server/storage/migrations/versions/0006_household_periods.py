"""reports: the household_periods summary, and the visits' time index narrow again

The reports read which households were visited in a period from ``household_periods``
(server/summary.py), so the covering ``ix_visits_time`` of 0005 — paid on every pushed visit —
goes back to the visit time alone, which the ``as_of`` reports still range over.
The summary fills itself from the visits after the upgrade (job visit_summary).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COVERING_TIME = [
    "visited_at_effective",
    "household_id",
    "village_id",
    "deleted",
    "voided",
    "received_at",
    "voided_at",
    "id",
]


def upgrade() -> None:
    op.create_table(
        "household_periods",
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("village_id", sa.String(length=64), nullable=True),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("first_received", sa.DateTime(), nullable=False),
        sa.Column("last_received", sa.DateTime(), nullable=False),
        sa.Column("received", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("period", "household_id"),
        sqlite_with_rowid=False,
    )
    op.drop_index("ix_visits_time", table_name="visits")
    op.create_index("ix_visits_time", "visits", ["visited_at_effective"], unique=False)
    # the watermark row exists before any process catches up: two first catch-ups never race
    # to insert it (server/summary.py locks it on PostgreSQL)
    op.execute("INSERT INTO counters (name, value) VALUES ('household_periods', 0)")


def downgrade() -> None:
    op.drop_index("ix_visits_time", table_name="visits")
    op.create_index("ix_visits_time", "visits", COVERING_TIME, unique=False)
    op.drop_table("household_periods")
    op.execute("DELETE FROM counters WHERE name = 'household_periods'")
