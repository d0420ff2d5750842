"""The HTTP API under /api/v1 (CONTRACT §3, §5, §6, §8): thin views over server.service."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import Any

import orjson
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge

from server import service
from server.auth import Caller, current_caller, require_role
from server.errors import ApiError
from server.models import Conflict
from server.schemas import ConflictResolution, DeviceRegistration, PullQuery, PushEnvelope, load
from server.service import mask_phone

api = Blueprint("api", __name__, url_prefix="/api/v1")


def json_body(max_bytes: int | None = None) -> Any:
    """The request's JSON; 413 over ``max_bytes``, 400 ``invalid_request`` if it is not JSON.

    A body sent with ``Content-Encoding: gzip`` (the PWA's pushes, ~5× fewer bytes on a slow
    line) is inflated first; ``max_bytes`` then bounds the inflated JSON too."""
    if max_bytes is not None:
        request.max_content_length = max_bytes
    if not request.is_json:
        raise ApiError("invalid_request", "expected Content-Type: application/json")
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding == "gzip":
        payload = _gunzipped_json(
            request.get_data(cache=False), max_bytes or request.max_content_length
        )
    elif encoding in ("", "identity"):
        payload = request.get_json(silent=True)
    else:
        raise ApiError("invalid_request", f"unsupported Content-Encoding {encoding!r}; use gzip")
    if payload is None:
        raise ApiError("invalid_request", "the body is not valid JSON")
    return payload


def _gunzipped_json(data: bytes, limit: int | None) -> Any:
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
    try:
        raw = inflate.decompress(data, limit + 1 if limit else 0)
    except zlib.error as exc:
        raise ApiError("invalid_request", "the body is not valid gzip") from exc
    if (limit and len(raw) > limit) or inflate.unconsumed_tail:
        raise RequestEntityTooLarge()  # the same 413 as a plain body over the limit
    if not inflate.eof:
        raise ApiError("invalid_request", "the gzip body is cut short")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


@api.post("/devices")
def register_device() -> tuple[Response, int]:
    body = load(DeviceRegistration(), json_body(64 * 1024))
    ip = request.remote_addr or "unknown"
    return jsonify(
        service.register_device(body["username"], body["password"], body["label"], ip)
    ), 201


@api.delete("/devices/<device_id>")
def revoke_device(device_id: str) -> Response:
    return jsonify(service.revoke_device(current_caller(), device_id))


@api.get("/me")
def me() -> Response:
    caller = current_caller()
    return jsonify(
        {
            "device_id": caller.device_id,
            "user": {
                "id": caller.user_id,
                "username": caller.username,
                "name": caller.name,
                "role": caller.role,
                "region_ids": list(caller.assignment.region_ids),
                "household_ids": list(caller.assignment.household_ids),
            },
        }
    )


@api.post("/sync/push")
def push() -> Response:
    caller = current_caller()
    body = load(PushEnvelope(), json_body(current_app.config["MAX_PUSH_BYTES"]))
    return jsonify(service.push(caller, body))


@api.get("/sync/pull")
def pull() -> Response:
    caller = current_caller()
    query = load(PullQuery(), request.args.to_dict())
    return jsonify(service.pull(caller, query["cursor"], query["limit"]))


@api.get("/conflicts")
def conflicts() -> Response:
    caller = current_caller()
    status = request.args.get("status", "open")
    if status not in ("open", "resolved", "all"):
        raise ApiError(
            "validation_failed",
            "bad status",
            {"fields": {"status": ["must be open, resolved or all"]}},
        )
    items = service.conflict_list(caller, None if status == "all" else status)
    return jsonify({"conflicts": [masked(item) for item in items]})


@api.post("/conflicts/<conflict_id>/resolve")
def resolve_conflict(conflict_id: str) -> Response:
    """Keep ``value``, or the value at ``choice`` (0 the kept one, 1… the lost ones)."""
    caller = current_caller()
    body = load(ConflictResolution(), json_body(64 * 1024))
    value = body["value"] if "value" in body else _chosen(caller, conflict_id, body["choice"])
    return jsonify(masked(service.resolve_conflict(caller, conflict_id, value)))


#: conflict fields whose values are personal data (PRODUCT "Must be true" 7)
MASKS: dict[str, Callable[[str], str | None]] = {
    "id_number": service.mask_id_number,
    "phone": mask_phone,
}


def masked(conflict: dict[str, Any]) -> dict[str, Any]:
    """A conflict as the API shows it: a phone or ID number in it masked, whatever the role,
    as lists show them; the resolving screen picks one by ``choice``, not by retyping it."""
    mask = MASKS.get(conflict.get("field", ""))
    if mask is None:
        return conflict

    def hide(entry: dict[str, Any]) -> dict[str, Any]:
        value = entry.get("value")
        return {**entry, "value": mask(value) if isinstance(value, str) else value}

    return {
        **conflict,
        "kept": hide(conflict["kept"]),
        "lost": [hide(entry) for entry in conflict.get("lost") or []],
    }


def _chosen(caller: Caller, conflict_id: str, choice: int) -> Any:
    """The whole value behind ``choice`` of a conflict the caller may resolve."""
    require_role(caller, "supervisor", "admin")
    with service.store().engine.connect() as conn:
        row = conn.execute(select(Conflict).where(Conflict.id == conflict_id)).first()
    scope = service.scope_of(caller.assignment)
    if row is None or row.deleted or not scope.holds(row.village_id, row.household_id):
        raise ApiError("not_found", "no such conflict")
    data = json.loads(row.data)
    values = [data["kept"], *(data.get("lost") or [])]
    if choice >= len(values):
        message = f"must be 0 to {len(values) - 1}"
        raise ApiError("validation_failed", message, {"fields": {"choice": [message]}})
    return values[choice].get("value")
