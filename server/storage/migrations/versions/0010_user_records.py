"""user records: the users phones see (CONTRACT §4 ``user``), versioned like every record

Each user gets a ``user_records`` row at a new version (so the next pull of every device brings
the users it meets) and their places in ``user_reach``: assigned regions, and assigned
households with their village.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    records = op.create_table(
        "user_records",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("village_id", sa.String(length=64), nullable=True),
        sa.Column("household_id", sa.String(length=64), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version"),
    )
    reach = op.create_table(
        "user_reach",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("region_id", sa.String(length=64), nullable=True),
        sa.Column("household_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_user_reach_user_id", "user_reach", ["user_id"])
    _publish_existing_users(records, reach)


def _publish_existing_users(records: sa.Table, reach: sa.Table) -> None:
    conn = op.get_bind()
    users = conn.execute(
        sa.text("SELECT id, username, name, role, active FROM users ORDER BY created_at, id")
    ).all()
    if not users:
        return
    version = conn.execute(sa.text("SELECT value FROM counters WHERE name = 'version'")).scalar()
    if version is None:
        conn.execute(sa.text("INSERT INTO counters (name, value) VALUES ('version', 0)"))
    version = int(version or 0)
    places = conn.execute(
        sa.text(
            "SELECT a.user_id, a.kind, a.target_id, h.village_id FROM assignments a"
            " LEFT JOIN households h ON a.kind = 'household' AND h.id = a.target_id"
        )
    ).all()
    rows, reach_rows = [], []
    for user in users:
        version += 1
        data = {"username": user.username, "name": user.name, "role": user.role}
        data["active"] = bool(user.active)
        rows.append(
            {
                "id": user.id,
                "version": version,
                "deleted": False,
                "village_id": None,
                "household_id": None,
                "data": json.dumps(data, ensure_ascii=False),
            }
        )
    for place in places:
        if place.kind == "region":
            reach_rows.append(
                {"user_id": place.user_id, "region_id": place.target_id, "household_id": None}
            )
        else:
            reach_rows.append(
                {
                    "user_id": place.user_id,
                    "region_id": place.village_id,
                    "household_id": place.target_id,
                }
            )
    conn.execute(sa.insert(records), rows)
    if reach_rows:
        conn.execute(sa.insert(reach), reach_rows)
    conn.execute(sa.text("UPDATE counters SET value = :v WHERE name = 'version'"), {"v": version})


def downgrade() -> None:
    op.drop_index("ix_user_reach_user_id", table_name="user_reach")
    op.drop_table("user_reach")
    op.drop_table("user_records")
