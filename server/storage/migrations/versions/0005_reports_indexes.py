"""reports: a period's visits and the due households read from indexes alone

``ix_visits_time`` becomes covering (the reports were its only reader); ``ix_households_due``
lists the due households by village. docs/reports.md, Speed.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
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
DUE = ["visit_policy", "status", "deleted", "village_id", "id"]


def upgrade() -> None:
    op.drop_index("ix_visits_time", table_name="visits")
    op.create_index("ix_visits_time", "visits", COVERING_TIME, unique=False)
    op.create_index("ix_households_due", "households", DUE, unique=False)


def downgrade() -> None:
    op.drop_index("ix_households_due", table_name="households")
    op.drop_index("ix_visits_time", table_name="visits")
    op.create_index("ix_visits_time", "visits", ["visited_at_effective"], unique=False)
