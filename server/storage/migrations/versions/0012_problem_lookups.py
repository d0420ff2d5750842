"""a problem's history and escalations by index; no index on the audit log's time

A problem's page read the ops log and the problem list read the audit log from end to end: both
grow by a row with every synced visit, so at a county's millions of visits each problem took
seconds. Two partial indexes hold only the problems' rows: ``ops`` by record where ``type`` is
``problem``, ``audit_log`` by target where ``target_type`` is ``problem``. A visit writes to
neither. ``ix_audit_log_at`` served no query and cost every synced change an index entry: the
audit log's ``id`` is in the order of its times (docs/deploy.md).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

PROBLEM_OPS = sa.text("type = 'problem'")
PROBLEM_ENTRIES = sa.text("target_type = 'problem'")


def upgrade() -> None:
    op.create_index(
        "ix_ops_problem",
        "ops",
        ["record_id"],
        sqlite_where=PROBLEM_OPS,
        postgresql_where=PROBLEM_OPS,
    )
    op.create_index(
        "ix_audit_log_problem",
        "audit_log",
        ["target_id"],
        sqlite_where=PROBLEM_ENTRIES,
        postgresql_where=PROBLEM_ENTRIES,
    )
    op.drop_index("ix_audit_log_at", table_name="audit_log")


def downgrade() -> None:
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.drop_index("ix_audit_log_problem", table_name="audit_log")
    op.drop_index("ix_ops_problem", table_name="ops")
