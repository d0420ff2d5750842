"""The problem list (问题清单) and its workflow: open → in_progress → resolved → verified,
due dates and assignees (督办), every change's history, and the escalation of overdue problems.
Changes go through ``service.server_update``, so they pass the permission check a phone's op
passes (sync/permissions.py) and are merged, versioned and pulled like any edit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, func, select
from sqlalchemy.engine import Connection

from server import service
from server.auth import Caller
from server.http.errors import ApiError
from server.reports.coverage import (
    ASSIGNMENTS,
    AUDIT,
    CONFLICTS,
    EVERYTHING,
    HOUSEHOLDS,
    OPEN_STATUSES,
    PEOPLE,
    PROBLEMS,
    SYSTEM_USER,
    USERS,
    Regions,
    holds,
    in_villages,
    local_iso,
    local_today,
    user_names,
    zone_of,
)
from server.reports.periods import invalid
from server.storage import replica
from server.storage.store import DEVICES, OPS, WRITES, chunks
from server.timeutil import utc_iso
from sync.merge import FieldWrite, merge_write
from sync.records import PROBLEM_STATUSES, RECORD_TYPES, with_defaults
from sync.scope import Scope


def problem_list(scope: Scope, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """Problems the scope holds, filtered by ``region_id``, ``category``, ``status`` (one or a
    list), ``assignee_id``, ``overdue`` (bool, relative to ``today``), at most ``limit``;
    open ones with the nearest due date first."""
    p = PROBLEMS.alias("p")
    zone = zone_of(filters.get("tz"))
    today: date = filters.get("today") or local_today(zone)
    with replica.report() as conn:  # a list may lag; a problem's own page does not
        regions = Regions.load(conn)
        query = select(p).where(~p.c.deleted, holds(p, scope))
        if filters.get("region_id"):
            regions.get(filters["region_id"])
            query = query.where(in_villages(p, regions.village_ids(filters["region_id"])))
        if filters.get("category"):
            query = query.where(p.c.category == filters["category"])
        statuses = filters.get("status")
        if statuses:
            query = query.where(
                p.c.status.in_([statuses] if isinstance(statuses, str) else statuses)
            )
        if filters.get("assignee_id"):
            query = query.where(p.c.assignee_id == filters["assignee_id"])
        late = and_(p.c.due_date < today.isoformat(), p.c.status.in_(OPEN_STATUSES))
        if filters.get("overdue") is True:
            query = query.where(late)
        elif filters.get("overdue") is False:
            query = query.where(~late)
        query = query.order_by(
            p.c.status.not_in(OPEN_STATUSES),
            p.c.due_date.is_(None),
            p.c.due_date,
            p.c.version.desc(),
        ).limit(int(filters.get("limit") or 1000))
        rows = conn.execute(query).all()
        return describe_problems(conn, regions, rows, today)


def describe_problems(
    conn: Connection, regions: Regions, rows: list[Any], today: date
) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    households = _records(conn, HOUSEHOLDS, {r.household_id for r in rows})
    datas = [json.loads(r.data) for r in rows]
    people = _records(conn, PEOPLE, {d.get("person_id") for d in datas})
    names = user_names(conn, {r.assignee_id for r in rows})
    escalations = escalations_of(conn, ids)
    conflicts = _open_conflicts(conn, ids)
    out = []
    for row, data in zip(rows, datas, strict=True):
        household = households.get(row.household_id, {})
        person = people.get(data.get("person_id"))
        village = regions.by_id.get(row.village_id)
        township = regions.of_level(row.village_id, "township")
        overdue = bool(
            row.due_date and row.due_date < today.isoformat() and row.status in OPEN_STATUSES
        )
        out.append(
            {
                "id": row.id,
                "version": row.version,
                "household": {
                    "id": row.household_id,
                    "code": household.get("code"),
                    "head_name": household.get("head_name"),
                },
                "person": {"id": data["person_id"], "name": person.get("name")} if person else None,
                "village": village.summary() if village else None,
                "township": township.summary() if township else None,
                "visit_id": data.get("visit_id"),
                "category": row.category,
                "description": data.get("description"),
                "status": row.status,
                "status_note": data.get("status_note"),
                "resolution": data.get("resolution"),
                "assignee": {"id": row.assignee_id, "name": names.get(row.assignee_id)}
                if row.assignee_id
                else None,
                "due_date": row.due_date,
                "overdue": overdue,
                "days_overdue": (today - date.fromisoformat(row.due_date)).days
                if overdue
                else None,
                "escalated": escalations.get(row.id),
                "open_conflicts": conflicts.get(row.id, 0),
            }
        )
    return out


def _records(conn: Connection, table: Table, ids: Iterable[str | None]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for chunk in chunks(sorted({i for i in ids if i})):
        rows = conn.execute(select(table.c.id, table.c.data).where(table.c.id.in_(chunk)))
        out.update({r.id: json.loads(r.data) for r in rows})
    return out


def _escalations(problem_ids: list[str]) -> tuple[ColumnElement[bool], ...]:
    """The audit entries of these problems' escalations. ``target_type`` is what lets the
    database use ix_audit_log_problem rather than read the whole log (migration 0012)."""
    return (
        AUDIT.c.target_type == "problem",
        AUDIT.c.target_id.in_(problem_ids),
        AUDIT.c.action == "problem_escalated",
    )


def escalations_of(conn: Connection, problem_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Problem → its latest escalation (when, which due date it missed, from whom to whom)."""
    out: dict[str, dict[str, Any]] = {}
    for chunk in chunks(problem_ids):
        rows = conn.execute(
            select(AUDIT.c.target_id, AUDIT.c.at, AUDIT.c.details)
            .where(*_escalations(chunk))
            .order_by(AUDIT.c.id)
        )
        for r in rows:
            details = json.loads(r.details or "{}")
            out[r.target_id] = {
                "at": utc_iso(r.at),
                "due_date": details.get("due_date"),
                "from_assignee_id": details.get("from"),
                "to_assignee_id": details.get("to"),
            }
    return out


def _open_conflicts(conn: Connection, problem_ids: list[str]) -> dict[str, int]:
    c = CONFLICTS.c
    out: dict[str, int] = {}
    for chunk in chunks(problem_ids):
        rows = conn.execute(
            select(c.record_id, func.count())
            .where(
                ~c.deleted, c.record_type == "problem", c.status == "open", c.record_id.in_(chunk)
            )
            .group_by(c.record_id)
        )
        out.update({r[0]: r[1] for r in rows})
    return out


def _problem_row(conn: Connection, scope: Scope, problem_id: str) -> Any:
    """The problem if the scope holds it; 404 otherwise (never reveal what lies outside)."""
    p = PROBLEMS.c
    row = conn.execute(select(PROBLEMS).where(p.id == problem_id)).first()
    if row is None or row.deleted or not scope.holds(row.village_id, row.household_id):
        raise ApiError("not_found", f"no problem {problem_id}")
    return row


def problem_detail(scope: Scope, problem_id: str, tz: str | None = None) -> dict[str, Any]:
    with service.store().report() as conn:
        row = _problem_row(conn, scope, problem_id)
        regions = Regions.load(conn)
        return describe_problems(conn, regions, [row], local_today(zone_of(tz)))[0]


def change_problem_status(
    caller: Caller,
    problem_id: str,
    status: str,
    note: str | None = None,
    resolution: str | None = None,
) -> dict[str, Any]:
    """open → in_progress → resolved → verified. Who may move it where is decided by
    sync.permissions, the check a phone's op passes too; written as a server edit."""
    if status not in PROBLEM_STATUSES:
        raise invalid("status", "one of " + ", ".join(PROBLEM_STATUSES))
    scope = service.scope_of(caller.assignment)
    with service.store().report() as conn:
        row = _problem_row(conn, scope, problem_id)
    if status == row.status:
        raise ApiError("conflict", f"the problem is already {status}")
    data: dict[str, Any] = {"status": status, "status_note": note}
    if resolution is not None:
        data["resolution"] = resolution
    outcome = service.server_update(
        caller.user_id, scope, "problem", problem_id, data, role=caller.role
    )
    _audit(
        caller,
        "problem_status_changed",
        problem_id,
        {"from": row.status, "to": status, "note": note, "op_id": outcome["op_id"]},
    )
    return problem_detail(scope, problem_id)


def update_problem(caller: Caller, problem_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """A supervisor sets the due date or the assignee (督办); who may, and who may be the
    assignee, is decided by sync.permissions, the check a phone's op passes too."""
    data = {k: changes[k] for k in ("due_date", "assignee_id") if k in changes}
    if not data:
        raise invalid("_body", "give due_date or assignee_id")
    if "note" in changes:
        data["status_note"] = changes["note"]
    scope = service.scope_of(caller.assignment)
    with service.store().report() as conn:
        _problem_row(conn, scope, problem_id)
    outcome = service.server_update(
        caller.user_id, scope, "problem", problem_id, data, role=caller.role
    )
    _audit(caller, "problem_updated", problem_id, {**data, "op_id": outcome["op_id"]})
    return problem_detail(scope, problem_id)


def _audit(caller: Caller, action: str, problem_id: str, details: dict[str, Any]) -> None:
    with service.store().engine.begin() as conn:
        service.audit(
            conn, action, caller.user_id, caller.device_id, "problem", problem_id, details
        )


def problem_history(scope: Scope, problem_id: str, tz: str | None = None) -> list[dict[str, Any]]:
    """Every change of the problem, oldest first: who, from which device, when, each field
    old → new (old = the merged value before; ``kept`` false when a concurrent write won),
    and the note. Built from the ops log and the field writes."""
    zone = zone_of(tz)
    with service.store().report() as conn:
        _problem_row(conn, scope, problem_id)
        writes = conn.execute(
            select(WRITES)
            .where(WRITES.c.record_type == "problem", WRITES.c.record_id == problem_id)
            .order_by(WRITES.c.version, WRITES.c.id)
        ).all()
        ops = conn.execute(
            select(OPS).where(
                OPS.c.type == "problem",
                OPS.c.record_id == problem_id,
                OPS.c.status.in_(("applied", "conflict")),
            )
        ).all()
        by_op = {op.op_id: op for op in ops}
        relayed = _relayed_devices(conn, problem_id)
        devices = {r.id: r.label for r in conn.execute(select(DEVICES.c.id, DEVICES.c.label))}
        names = user_names(conn, {op.user_id for op in ops})
    create = next((op for op in ops if op.action == "create"), None)
    created = json.loads(create.payload).get("data") or {} if create else {}
    values = with_defaults(RECORD_TYPES["problem"], created) if create else {}
    entries: list[dict[str, Any]] = []

    def entry(op: Any, op_id: str, version: int | None) -> dict[str, Any]:
        device_id = relayed.get(op_id, op.device_id if op else None)
        user_id = op.user_id if op else None
        return {
            "op_id": op_id,
            "version": version,
            "action": op.action if op else "update",
            "at": local_iso(op.received_at, zone) if op else None,
            "user": {"id": user_id, "name": names.get(user_id or "")} if user_id else None,
            "device": {"id": device_id, "label": devices.get(device_id or "")}
            if device_id
            else None,
            "changes": [],
            "note": None,
        }

    if create is not None:
        first = entry(create, create.op_id, create.version)
        first["changes"] = [
            {"field": k, "old": None, "new": values.get(k), "kept": True}
            for k in ("status", "assignee_id", "due_date")
            if k in values
        ]
        first["note"] = values.get("status_note")
        entries.append(first)
    rules = RECORD_TYPES["problem"].rules
    history: dict[str, list[FieldWrite]] = {}
    current: dict[str, Any] = dict(values)
    grouped: dict[str, dict[str, Any]] = {}
    for w in writes:
        write = FieldWrite(
            w.record_type,
            w.record_id,
            w.field,
            w.op_id,
            w.version,
            w.base_version,
            w.device_id,
            w.device_seq,
            w.hlc,
            json.loads(w.value),
            w.user_id,
        )
        earlier = history.setdefault(w.field, [])
        merged = merge_write(rules.get(w.field, "latest"), earlier, write).value
        earlier.append(write)
        item = grouped.get(w.op_id)
        if item is None:
            item = grouped[w.op_id] = entry(by_op.get(w.op_id), w.op_id, w.version)
            entries.append(item)
        if w.field == "status_note":
            item["note"] = write.value
        else:
            item["changes"].append(
                {
                    "field": w.field,
                    "old": current.get(w.field),
                    "new": write.value,
                    "kept": merged == write.value,
                }
            )
        current[w.field] = merged
    return entries


def _relayed_devices(conn: Connection, problem_id: str) -> dict[str, str]:
    """Op id → the caller's device, for changes made through the API as server edits."""
    rows = conn.execute(
        select(AUDIT.c.device_id, AUDIT.c.details).where(
            AUDIT.c.target_type == "problem",
            AUDIT.c.target_id == problem_id,
            AUDIT.c.action.in_(("problem_status_changed", "problem_updated")),
        )
    )
    out = {}
    for r in rows:
        op_id = json.loads(r.details or "{}").get("op_id")
        if op_id and r.device_id:
            out[op_id] = r.device_id
    return out


def escalate_overdue(today: date) -> list[str]:
    """Reassign every problem past its due date and not resolved or verified to the supervisor
    of its township (the nearest supervised region up the tree), once per due date; the
    escalation is audited, and ``problem_list`` shows it as ``escalated``. Returns the village
    of each problem escalated now (for the notices); a second run the same day escalates
    nothing."""
    p = PROBLEMS.c
    with service.store().report() as conn:
        regions = Regions.load(conn)
        candidates = conn.execute(
            select(p.id, p.village_id, p.assignee_id, p.due_date)
            .where(~p.deleted, p.status.in_(OPEN_STATUSES), p.due_date < today.isoformat())
            .order_by(p.due_date, p.id)
        ).all()
        done = set()
        for chunk in chunks([c.id for c in candidates]):
            for r in conn.execute(
                select(AUDIT.c.target_id, AUDIT.c.details).where(*_escalations(chunk))
            ):
                done.add((r.target_id, json.loads(r.details or "{}").get("due_date")))
        supervisors = _supervisors_by_region(conn)
    escalated: list[str] = []
    for problem in candidates:
        if (problem.id, problem.due_date) in done:
            continue
        supervisor = next(
            (supervisors[r.id] for r in regions.lineage(problem.village_id) if r.id in supervisors),
            None,
        )
        if supervisor is None or supervisor[0] == problem.assignee_id:
            continue
        note = f"逾期未办结（期限 {problem.due_date}），已升级至督导 {supervisor[1]}"
        outcome = service.server_update(
            SYSTEM_USER,
            EVERYTHING,
            "problem",
            problem.id,
            {"assignee_id": supervisor[0], "status_note": note},
            role="system",
        )
        with service.store().engine.begin() as conn:
            service.audit(
                conn,
                "problem_escalated",
                SYSTEM_USER,
                target_type="problem",
                target_id=problem.id,
                details={
                    "due_date": problem.due_date,
                    "from": problem.assignee_id,
                    "to": supervisor[0],
                    "op_id": outcome["op_id"],
                },
            )
        escalated.append(problem.village_id)
    return escalated


def _supervisors_by_region(conn: Connection) -> dict[str, tuple[str, str]]:
    """Region → (id, name) of the supervisor assigned to it (the first by username)."""
    a, u = ASSIGNMENTS.c, USERS.c
    rows = conn.execute(
        select(a.target_id, u.id, u.name)
        .join(USERS, u.id == a.user_id)
        .where(a.kind == "region", u.role == "supervisor", u.active)
        .order_by(u.username)
    )
    out: dict[str, tuple[str, str]] = {}
    for r in rows:
        out.setdefault(r[0], (r[1], r[2]))
    return out
