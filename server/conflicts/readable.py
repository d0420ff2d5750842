"""A conflict a supervisor can settle knowing what it is (docs/admin.md, "Conflicts").

The stored conflict names a record id, a field and device ids. The list adds, as extra fields
(CONTRACT §4's shape is kept): the household and, for a person, the person by name; the field
by its zh-CN label; for each side the user's name, the device's label and the time of the
write in the server's timezone. Values stay masked (service.masked_conflict) for every role but
admins, who need the whole ID or phone number to choose; everyone chooses by ``choice``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Connection

from server.storage.models import Device, User
from server.storage.store import TABLES, chunks, loads

#: (record type, field) → the zh-CN label the PWA shows (pwa_static/js/i18n.js ``field.*``)
FIELD_LABELS: dict[tuple[str, str], str] = {
    ("household", "head_name"): "户主",
    ("household", "address"): "地址",
    ("household", "phone"): "联系电话",
    ("household", "category"): "类别",
    ("household", "notes"): "备注",
    ("household", "status"): "状态",
    ("household", "visit_policy"): "走访频次",
    ("household", "lat"): "纬度",
    ("household", "lon"): "经度",
    ("person", "name"): "姓名",
    ("person", "gender"): "性别",
    ("person", "birth_year"): "出生年份",
    ("person", "relation"): "与户主关系",
    ("person", "flags"): "人员标识",
    ("person", "id_number"): "身份证号",
    ("person", "phone"): "电话",
    ("person", "notes"): "备注",
    ("problem", "status"): "问题状态",
    ("problem", "category"): "问题类别",
    ("problem", "description"): "问题描述",
    ("problem", "assignee_id"): "责任人",
    ("problem", "due_date"): "整改期限",
    ("problem", "resolution"): "解决情况",
    ("measure", "status"): "措施状态",
    ("measure", "category"): "措施类别",
    ("measure", "description"): "措施内容",
    ("measure", "responsible_id"): "责任人",
    ("measure", "due_date"): "完成期限",
}


def field_label(record_type: str, field: str) -> str:
    return FIELD_LABELS.get((record_type, field), field)


def hlc_time(hlc: str | None, zone: ZoneInfo) -> str | None:
    """The wall time of an hlc (15 digits of ms since the epoch) in ``zone``, ISO 8601."""
    if not hlc or not hlc[:15].isdigit():
        return None
    moment = datetime.fromtimestamp(int(hlc[:15]) / 1000, zone)
    return moment.isoformat(timespec="seconds")


def readable(conn: Connection, conflicts: list[dict[str, Any]], zone: ZoneInfo) -> list[dict]:
    """``conflicts`` (as service.conflict_list gives them) with names, labels and times."""
    households = _column(conn, "household", {c.get("household_id") for c in conflicts})
    people = _column(
        conn, "person", {c["record_id"] for c in conflicts if c["record_type"] == "person"}
    )
    sides = [s for c in conflicts for s in [c["kept"], *(c.get("lost") or [])]]
    users = _names(conn, User.id, User.name, {s.get("user_id") for s in sides})
    devices = _names(conn, Device.id, Device.label, {s.get("by") for s in sides})

    def side(s: dict[str, Any]) -> dict[str, Any]:
        return {
            **s,
            "user_name": users.get(s.get("user_id")),
            "device_label": devices.get(s.get("by")),
            "at": hlc_time(s.get("hlc"), zone),
        }

    return [
        {
            **c,
            "household_name": households.get(c.get("household_id")),
            "person_name": people.get(c["record_id"]),
            "field_label": field_label(c["record_type"], c["field"]),
            "kept": side(c["kept"]),
            "lost": [side(s) for s in c.get("lost") or []],
        }
        for c in conflicts
    ]


def _column(conn: Connection, type_: str, ids: Iterable[str | None]) -> dict[str, str]:
    """Record id → its name (a household's head, a person's name)."""
    table, key = TABLES[type_], "head_name" if type_ == "household" else "name"
    out: dict[str, str] = {}
    for chunk in chunks(i for i in ids if i):
        for row in conn.execute(select(table.c.id, table.c.data).where(table.c.id.in_(chunk))):
            out[row.id] = loads(row.data).get(key)
    return out


def _names(conn: Connection, id_column: Any, name_column: Any, ids: Iterable[Any]) -> dict:
    out: dict[str, str] = {}
    for chunk in chunks(i for i in ids if i):
        out.update(conn.execute(select(id_column, name_column).where(id_column.in_(chunk))).all())
    return out
