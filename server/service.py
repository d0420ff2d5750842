"""What the API does, between the HTTP edge (api.py) and the sync engine: devices, push,
pull, conflicts and server-side edits. Every change goes through sync.engine.push, so an
admin's edit, a conflict resolution and a phone's op are merged and logged the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import insert, select, update

from server.auth import (
    Caller,
    assignment_of,
    dummy_hash,
    forgive_sign_in,
    new_token,
    reserve_sign_in,
    token_hash,
    verify_password,
)
from server.http.errors import ApiError
from server.storage.db import one_push_at_a_time, writing
from server.storage.models import AuditEntry, Device, User
from server.storage.store import SERVER_DEVICE, SqlStore, canonical_dumps, dumps
from server.timeutil import now, utcnow
from sync import engine
from sync.effective import hlc_of
from sync.hlc import Clock
from sync.ids import new_id
from sync.ops import parse_ops
from sync.records import parse_offset_datetime
from sync.scope import Assignment, RegionTree, Scope, expand
from sync.store import Record


def store() -> SqlStore:
    return current_app.extensions["zoufang_store"]  # type: ignore[no-any-return]


def server_hlc() -> str:
    """The server's hlc now: its own clock, never behind anything it handed out before."""
    clock: Clock = current_app.extensions["zoufang_clock"]
    return clock.observe(hlc_of(now()))


def scope_of(assignment: Assignment) -> Scope:
    s = store()
    return expand(assignment, s.region_tree(), s.household_villages(assignment.household_ids))


def user_scope(user_id: str) -> Scope | None:
    """Where a user works, or None when no active user has this id: who may be named the
    assignee or responsible person of a household's record (sync.permissions)."""
    with store().engine.connect() as conn:
        active = conn.execute(select(User.active).where(User.id == user_id)).scalar()
        if not active:
            return None
        assignment = assignment_of(conn, user_id)
    return scope_of(assignment)


@dataclass(frozen=True)
class Administration:
    """What an admin administers (CONTRACT §3, docs/admin.md "Who administers what"): the
    regions assigned to them and every region below, the households their scope holds, and
    the users whose whole assignment lies within. ``everything`` when they are assigned every
    county (or the server has no region yet): server-wide settings are theirs alone."""

    everything: bool
    assigned: frozenset[str]
    tree: RegionTree
    scope: Scope

    def region(self, region_id: str | None) -> bool:
        """The region is assigned to the admin or lies below one that is."""
        if self.everything:
            return region_id in self.tree
        while region_id is not None and region_id in self.tree:
            if region_id in self.assigned:
                return True
            region_id = self.tree[region_id][0]
        return False

    def household(self, village_id: str | None, household_id: str | None) -> bool:
        return self.scope.holds(village_id, household_id)

    def user(self, assignment: Assignment, villages: Mapping[str, str] | None = None) -> bool:
        """Every region and household of the user's assignment is the admin's: no admin
        reaches a user who also works elsewhere, nor gives anyone more than they hold.
        ``villages``: household → village for the assignment's households, if known."""
        if self.everything:
            return True
        if villages is None:
            villages = store().household_villages(assignment.household_ids)
        return all(self.region(r) for r in assignment.region_ids) and all(
            self.household(villages.get(h), h) for h in assignment.household_ids
        )


def administration(caller: Caller) -> Administration:
    """The one rule of who administers what; every admin route and revoke_device ask it."""
    s = store()
    tree = s.region_tree()
    scope = expand(caller.assignment, tree, s.household_villages(caller.assignment.household_ids))
    no_regions = not any(parent is None for parent, _level in tree.values())
    everything = caller.role == "admin" and (scope.everything or no_regions)
    if everything:
        scope = replace(scope, everything=True)
    return Administration(everything, frozenset(caller.assignment.region_ids), tree, scope)


def audit(
    conn: Any,
    action: str,
    user_id: str | None,
    device_id: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        insert(AuditEntry).values(
            at=utcnow(),
            user_id=user_id,
            device_id=device_id,
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=dumps(details) if details else None,
        )
    )


def register_device(username: str, password: str, label: str, ip: str) -> dict[str, Any]:
    """CONTRACT §3: a device and its token for a user who signs in with the right password."""
    engine_, ip = store().engine, ip[:64]
    with writing(engine_) as conn:  # committed before the slow hash: the attempt counts already
        trusted = reserve_sign_in(conn, username, ip)
        user = conn.execute(select(User).where(User.username == username)).first()
    ok = verify_password(user.password_hash if user else dummy_hash(), password)
    if user is None or not ok or not user.active:
        with engine_.begin() as conn:
            audit(conn, "login_failed", None, details={"username": username, "ip": ip})
        raise ApiError("unauthorized", "wrong username or password")
    token, device_id, hlc = new_token(), new_id(), server_hlc()
    with engine_.begin() as conn:
        forgive_sign_in(conn, username, ip, trusted)
        conn.execute(
            insert(Device).values(
                id=device_id,
                user_id=user.id,
                label=label or "",
                token_hash=token_hash(token),
                created_at=utcnow(),
                last_seen_at=utcnow(),
                next_seq=1,
                floor_hlc=hlc,
                last_hlc=hlc,
            )
        )
        audit(
            conn,
            "device_registered",
            user.id,
            device_id,
            "device",
            device_id,
            {"label": label, "ip": ip},
        )
        assignment = assignment_of(conn, user.id)
    store().remember_assignment(assignment)
    return {
        "device_id": device_id,
        "token": token,
        "user": user_summary(user, assignment),
        "server_hlc": hlc,
    }


def user_summary(user: Any, assignment: Assignment) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "name": user.name,
        "role": user.role,
        "region_ids": list(assignment.region_ids),
        "household_ids": list(assignment.household_ids),
    }


def revoke_device(caller: Caller, device_id: str) -> dict[str, Any]:
    """The device's own user, or an admin who administers that user, revokes it."""
    with store().engine.connect() as conn:
        device = conn.execute(select(Device).where(Device.id == device_id)).first()
        if device is None or device_id == SERVER_DEVICE:
            raise ApiError("not_found", "no such device")
        owner = assignment_of(conn, device.user_id)
    if device.user_id != caller.user_id and not (
        caller.role == "admin" and administration(caller).user(owner)
    ):
        raise ApiError("forbidden", "only the device's own user or their admin may revoke it")
    with store().engine.begin() as conn:
        revoked = conn.execute(
            update(Device)
            .where(Device.id == device_id, Device.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoked_by=caller.user_id)
        ).rowcount
        if revoked:
            audit(conn, "device_revoked", caller.user_id, caller.device_id, "device", device_id)
    return {"device_id": device_id, "revoked": True}


def revoke_devices_of(conn: Any, user_id: str, caller: Caller) -> int:
    """Sign ``user_id`` out of every device but the caller's own: each answers 401
    ``device_revoked`` from now on. How many were revoked."""
    return int(
        conn.execute(
            update(Device)
            .where(
                Device.user_id == user_id,
                Device.revoked_at.is_(None),
                Device.id != caller.device_id,
            )
            .values(revoked_at=utcnow(), revoked_by=caller.user_id)
        ).rowcount
    )


def backdate_days() -> int:
    """How many days before the phone recorded it a visit may have happened (CONTRACT §10);
    phones learn it from every pull's answer and offer no earlier date."""
    return int(current_app.config["BACKDATE_DAYS"])


def push(caller: Caller, envelope: dict[str, Any]) -> dict[str, Any]:
    """CONTRACT §5: the ops of one request, applied in order and committed before we answer."""
    if envelope["device_id"] != caller.device_id:
        raise ApiError("forbidden", "device_id does not match the token")
    raw_ops = envelope["ops"]
    limit = current_app.config["MAX_PUSH_OPS"]
    if len(raw_ops) > limit:
        raise ApiError(
            "payload_too_large",
            f"at most {limit} ops per push",
            {"max_ops": limit, "max_bytes": current_app.config["MAX_PUSH_BYTES"]},
        )
    with one_push_at_a_time(store().engine):
        return _apply(caller, envelope, raw_ops)


def _apply(caller: Caller, envelope: dict[str, Any], raw_ops: list[Any]) -> dict[str, Any]:
    ops = parse_ops(raw_ops, caller.device_id, canonical_dumps)
    hlc = server_hlc()
    checker = current_app.extensions.get("zoufang_answer_check")
    ctx = engine.PushContext(
        device_id=caller.device_id,
        user_id=caller.user_id,
        scope=scope_of(caller.assignment),
        received_at=now(),
        server_hlc=hlc,
        role=caller.role,
        device_time=parse_offset_datetime(envelope.get("device_time")),
        check_answers=checker() if checker else None,
        scope_of_user=user_scope,
        backdate=timedelta(days=backdate_days()),
    )
    result = engine.push(store(), ctx, ops)
    return {"results": result.results, "next_seq": result.next_seq, "server_hlc": hlc}


def _mark_synced(device_id: str) -> None:
    with store().engine.begin() as conn:
        conn.execute(update(Device).where(Device.id == device_id).values(last_sync_at=utcnow()))


def pull(caller: Caller, cursor: str | None, limit: int) -> dict[str, Any]:
    """CONTRACT §8: the next page of changes in the caller's scope."""
    s = store()
    s.remember_assignment(caller.assignment)
    page = engine.pull(
        s,
        caller.device_id,
        caller.assignment,
        cursor,
        limit,
        current_app.config["CURSOR_KEY"],
        lambda: scope_of(caller.assignment),
        shaper(caller.role),
    )
    if page.records or not cursor:
        _mark_synced(caller.device_id)
    return {
        "records": page.records,
        "cursor": page.cursor,
        "more": page.more,
        "server_hlc": server_hlc(),
        "backdate_days": backdate_days(),
    }


def mask_id_number(value: str | None) -> str | None:
    """341823194110201790 → 341823********1790: the place of registration and the last
    four, as on a receipt. Whatever its length, no stored value is ever shown whole: a
    malformed one, stored before numbers were checked, keeps at most its first two and
    last character (341823199 → 34******9), and one shorter than 6 only stars."""
    if not value:
        return value
    if len(value) == 18:
        return value[:6] + "*" * 8 + value[-4:]
    if len(value) < 6:
        return "*" * len(value)
    return value[:2] + "*" * (len(value) - 3) + value[-1:]


def mask_phone(value: str | None) -> str | None:
    """13905631201 → 139****1201: enough to recognise a number, not to dial it."""
    if not value:
        return value
    digits = value.strip()
    if len(digits) < 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def shaper(role: str) -> Any:
    """How records leave the server for this role: ID numbers only whole for admins."""

    def shape(record: Record) -> dict[str, Any]:
        out = record.envelope()
        if role == "admin" or record.deleted:
            return out
        data = out["data"]
        if record.type == "person":
            out["data"] = {**data, "id_number": mask_id_number(data.get("id_number"))}
        elif record.type == "conflict":
            out["data"] = masked_conflict(data, ("id_number",))
        return out

    return shape


#: fields whose values are personal data, and how lists, exports and the audit log show them
MASKS: dict[str, Callable[[str], str | None]] = {
    "id_number": mask_id_number,
    "phone": mask_phone,
}


def masked_value(field: str, value: Any) -> Any:
    """``value`` of ``field`` masked when the field is personal data."""
    mask = MASKS.get(field)
    return mask(value) if mask is not None and isinstance(value, str) else value


def masked_conflict(
    conflict: dict[str, Any], fields: Iterable[str] = tuple(MASKS)
) -> dict[str, Any]:
    """A conflict with the values it keeps and loses masked, when it is about one of
    ``fields``; the resolving screen picks a value by ``choice``, not by retyping it."""
    field = conflict.get("field", "")
    if field not in fields:
        return conflict

    def hide(side: dict[str, Any]) -> dict[str, Any]:
        return {**side, "value": masked_value(field, side.get("value"))}

    return {
        **conflict,
        "kept": hide(conflict["kept"]),
        "lost": [hide(side) for side in conflict.get("lost") or []],
    }


def server_update(
    user_id: str,
    scope: Scope,
    type_: str,
    id_: str,
    data: dict[str, Any],
    action: str = "update",
    role: str = "admin",
) -> dict[str, Any]:
    """An edit made on the server (admin page, problem workflow, conflict resolution) as an op
    of the server's device: it saw every write so far, so it replaces them and resolves their
    conflicts. ``role`` is the editor's: the op passes the same permission check as a phone's
    (sync.permissions), and a refusal is answered with its code (403, 422 per field)."""
    hlc = server_hlc()
    raw = {
        "op_id": new_id(),
        "device_seq": 1,
        "hlc": hlc,
        "action": action,
        "type": type_,
        "id": id_,
        "base_version": 2**62,
        "data": data,
    }
    op = parse_ops([raw], SERVER_DEVICE, canonical_dumps)[0]
    ctx = engine.PushContext(
        SERVER_DEVICE, user_id, scope, now(), hlc, role, scope_of_user=user_scope
    )
    result = engine.push(store(), ctx, [op], renumber=True)
    outcome = result.results[0]
    if outcome["status"] == "rejected":
        error = outcome["error"]
        raise ApiError(error["code"], error["message"], _body_fields(error.get("details")))
    return outcome


def _body_fields(details: dict[str, Any] | None) -> dict[str, Any] | None:
    """An op's ``data.<field>`` is the request body's ``<field>`` for a server edit."""
    if not details or "fields" not in details:
        return details
    fields = {k.removeprefix("data."): v for k, v in details["fields"].items()}
    return {**details, "fields": fields}


def conflict_list(caller: Caller, status: str | None) -> list[dict[str, Any]]:
    from server.storage.models import Conflict

    scope = scope_of(caller.assignment)
    query = select(Conflict).where(~Conflict.deleted).order_by(Conflict.version.desc())
    if status:
        query = query.where(Conflict.status == status)
    with store().engine.connect() as conn:
        rows = conn.execute(query.limit(1000)).all()
    return [
        {"id": r.id, "version": r.version, "household_id": r.household_id, **json.loads(r.data)}
        for r in rows
        if scope.holds(r.village_id, r.household_id)
    ]


def resolve_conflict(
    caller: Caller, conflict_id: str, resolution: dict[str, Any]
) -> dict[str, Any]:
    """A supervisor picks the value: written over every concurrent value, conflict resolved.
    ``resolution`` is ``{"value": …}``, or ``{"choice": n}`` for the n-th of the values the
    conflict lists (0 the kept one, 1… the lost ones)."""
    from server.storage.models import Conflict

    if caller.role not in ("supervisor", "admin"):
        raise ApiError("forbidden", "only supervisors and admins resolve conflicts")
    with store().engine.connect() as conn:
        row = conn.execute(select(Conflict).where(Conflict.id == conflict_id)).first()
    scope = scope_of(caller.assignment)
    if row is None or row.deleted or not scope.holds(row.village_id, row.household_id):
        raise ApiError("not_found", "no such conflict")
    conflict = json.loads(row.data)
    if "value" in resolution:
        value = resolution["value"]
    else:
        values = [conflict["kept"], *(conflict.get("lost") or [])]
        if resolution["choice"] >= len(values):
            message = f"must be 0 to {len(values) - 1}"
            raise ApiError("validation_failed", message, {"fields": {"choice": [message]}})
        value = values[resolution["choice"]].get("value")
    if conflict["status"] != "open":
        raise ApiError("conflict", "this conflict is already resolved")
    outcome = server_update(
        caller.user_id,
        scope,
        conflict["record_type"],
        conflict["record_id"],
        {conflict["field"]: value},
        role=caller.role,
    )
    with store().engine.begin() as conn:
        audit(
            conn,
            "conflict_resolved",
            caller.user_id,
            caller.device_id,
            "conflict",
            conflict_id,
            {
                "record_type": conflict["record_type"],
                "record_id": conflict["record_id"],
                "field": conflict["field"],
                "choice": resolution.get("choice"),
                "value": masked_value(conflict["field"], value),
            },
        )
        row = conn.execute(select(Conflict).where(Conflict.id == conflict_id)).first()
    return {"id": conflict_id, "version": row.version, **json.loads(row.data), "result": outcome}


def create_server_records(
    items: list[tuple[str, str, dict[str, Any]]], actor: str | None, action: str = "records_created"
) -> int:
    """Records made on the server (seed, roster import): one transaction, versions in order.

    Each record gets the scope keys of sync.store.Record from its data: a village region is
    its own village; a household belongs to its village; the rest to their household.
    """
    with store().write() as txn:
        villages: dict[str, str] = {}
        pending = [i for i in items if i[0] not in ("region", "household", "form")]
        household_ids = {d["household_id"] for _, _, d in pending}
        villages.update(
            {
                i: r.village_id
                for i, r in txn.records("household", household_ids).items()
                if r.village_id
            }
        )
        records = []
        for type_, id_, data in items:
            if type_ == "region":
                keys = (id_ if data["level"] == "village" else None, None)
            elif type_ == "household":
                keys = (data["village_id"], id_)
                villages[id_] = data["village_id"]
            elif type_ == "form":
                keys = (None, None)
            else:
                keys = (villages.get(data["household_id"]), data["household_id"])
            records.append(Record(type_, id_, txn.allocate_version(), False, data, *keys))
        txn.insert_records(records)
        audit(txn.conn, action, actor, details={"count": len(records)})
    return len(records)
