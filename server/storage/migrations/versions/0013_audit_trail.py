"""the audit trail: a view of the audit log and of the changes the ops log holds

A change a phone made was written twice: as its op in ``ops`` and as a ``sync_*`` entry in
``audit_log`` that repeated the op's user, device, record, time and status. The ops log is
now its only record, and the view ``audit_trail`` reads every change from one place: the
audit log's own entries (sign-ins, web edits, imports …) and a ``sync_create``,
``sync_update`` (with the names of the fields it changed) or ``sync_void`` entry for each op
that changed a record, as the audit log held them. The entries an earlier release wrote for
synced changes stay in ``audit_log``; the view leaves them out, since their ops are in it.
A later migration that rebuilds ``ops`` or ``audit_log`` on SQLite (batch mode) drops the
view first and creates it again after.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

#: the entries of the audit log itself (not the synced changes an earlier release wrote)
OWN = """
SELECT id, at, user_id, device_id, action, target_type, target_id, details
FROM audit_log WHERE substr(action, 1, 5) <> 'sync_'
"""

#: an entry for each op a phone sent that changed a record (a server edit is audited by the
#: page that made it). ``details`` as the audit log spelled it: the op id, its status and the
#: version it made, and for an update the names of the fields it changed (sorted: the op is
#: kept in canonical JSON, its keys in order)
SYNCED = {
    "sqlite": """
SELECT NULL, received_at, user_id, device_id, 'sync_' || action, type, record_id,
  CASE WHEN action = 'update' AND payload <> '' THEN json_object(
    'op_id', op_id, 'status', status, 'version', version,
    'fields', json((SELECT json_group_array(key) FROM json_each(payload, '$.data'))))
  ELSE json_object('op_id', op_id, 'status', status, 'version', version) END
FROM ops WHERE status IN ('applied', 'conflict') AND device_id <> 'server'
""",
    "postgresql": """
SELECT NULL::integer, received_at, user_id, device_id, 'sync_' || action, type, record_id,
  CASE WHEN action = 'update' AND payload <> '' THEN json_build_object(
    'op_id', op_id, 'status', status, 'version', version,
    'fields', (SELECT coalesce(json_agg(k ORDER BY k), '[]'::json)
               FROM json_object_keys((payload::json) -> 'data') AS k))::text
  ELSE json_build_object('op_id', op_id, 'status', status, 'version', version)::text END
FROM ops WHERE status IN ('applied', 'conflict') AND device_id <> 'server'
""",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(f"CREATE VIEW audit_trail AS {OWN} UNION ALL {SYNCED[dialect]}")


def downgrade() -> None:
    """The synced changes made since stay in the ops log only: an earlier release's
    audit_log does not get them back."""
    op.execute("DROP VIEW audit_trail")
