"""The HTTP API under /api/v1 (CONTRACT §3, §5, §6, §8): thin views over server.service."""

from __future__ import annotations

import zlib
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from server import service
from server.auth import current_caller
from server.conflicts.readable import readable
from server.http.errors import ApiError
from server.http.request_checks import checked_json
from server.http.schemas import (
    ConflictResolution,
    DeviceRegistration,
    PullQuery,
    PushEnvelope,
    load,
)

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
        raw = _gunzipped(request.get_data(cache=False), max_bytes or request.max_content_length)
        try:
            payload = orjson.loads(raw)
        except orjson.JSONDecodeError:
            payload = None
    elif encoding in ("", "identity"):
        payload = request.get_json(silent=True)
        raw = request.get_data(cache=True)
    else:
        raise ApiError("invalid_request", f"unsupported Content-Encoding {encoding!r}; use gzip")
    if payload is None:
        raise ApiError("invalid_request", "the body is not valid JSON")
    return checked_json(payload, raw)


def _gunzipped(data: bytes, limit: int | None) -> bytes:
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
    try:
        raw = inflate.decompress(data, limit + 1 if limit else 0)
    except zlib.error as exc:
        raise ApiError("invalid_request", "the body is not valid gzip") from exc
    if (limit and len(raw) > limit) or inflate.unconsumed_tail:
        raise RequestEntityTooLarge()  # the same 413 as a plain body over the limit
    if not inflate.eof:
        raise ApiError("invalid_request", "the gzip body is cut short")
    return raw


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


#: the sync schemas, made once: loading keeps no state in them, and every sync request loads one
PUSH_ENVELOPE = PushEnvelope()
PULL_QUERY = PullQuery()


@api.post("/sync/push")
def push() -> Response:
    caller = current_caller()
    body = load(PUSH_ENVELOPE, json_body(current_app.config["MAX_PUSH_BYTES"]))
    return jsonify(service.push(caller, body))


@api.get("/sync/pull")
def pull() -> Response:
    caller = current_caller()
    query = load(PULL_QUERY, request.args.to_dict())
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
    with service.store().engine.connect() as conn:
        items = readable(conn, items, ZoneInfo(current_app.config["TIMEZONE"]))
    if caller.role != "admin":  # admins choose between whole ID and phone numbers
        items = [service.masked_conflict(item) for item in items]
    return jsonify({"conflicts": items})


@api.post("/conflicts/<conflict_id>/resolve")
def resolve_conflict(conflict_id: str) -> Response:
    """Keep ``value``, or the value at ``choice`` (0 the kept one, 1… the lost ones)."""
    caller = current_caller()
    body = load(ConflictResolution(), json_body(64 * 1024))
    return jsonify(service.masked_conflict(service.resolve_conflict(caller, conflict_id, body)))
