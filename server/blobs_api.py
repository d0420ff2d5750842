"""Photos by content (CONTRACT §11): PUT stores the bytes under their SHA-256, HEAD tells
whether they arrived, GET returns them to whoever may see a visit that refers to them.

Photos live in the database, so every app server of a deployment sees the same ones.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import Row, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from server.auth import Caller, current_caller
from server.errors import ApiError
from server.models import Blob, BlobRef, Visit
from server.service import scope_of, store
from server.timeutil import utcnow

blobs = Blueprint("blobs", __name__, url_prefix="/api/v1/blobs")
SHA256 = re.compile(r"[0-9a-f]{64}")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")


def _checked(sha256: str) -> str:
    if not SHA256.fullmatch(sha256):
        raise ApiError("not_found", "a photo is named by the lowercase hex SHA-256 of its bytes")
    return sha256


@blobs.put("/<sha256>")
def put_blob(sha256: str) -> tuple[Response, int]:
    caller = current_caller()
    _checked(sha256)
    limit = current_app.config["MAX_BLOB_BYTES"]
    request.max_content_length = limit
    content_type = (request.mimetype or "image/jpeg").lower()
    if content_type not in IMAGE_TYPES:
        raise ApiError(
            "validation_failed",
            "photos are JPEG, PNG or WebP",
            {"fields": {"Content-Type": ["must be one of " + ", ".join(IMAGE_TYPES)]}},
        )
    body = request.get_data(cache=False)
    if hashlib.sha256(body).hexdigest() != sha256:
        raise ApiError(
            "validation_failed",
            "the bytes do not hash to the name",
            {"fields": {"sha256": ["does not match the SHA-256 of the body"]}},
        )
    try:
        with store().engine.begin() as conn:
            conn.execute(
                insert(Blob).values(
                    sha256=sha256,
                    size=len(body),
                    content_type=content_type,
                    content=body,
                    created_at=utcnow(),
                    created_by=caller.user_id,
                )
            )
    except IntegrityError:
        return jsonify({"sha256": sha256, "size": len(body)}), 200  # stored before: idempotent
    return jsonify({"sha256": sha256, "size": len(body)}), 201


@blobs.route("/<sha256>", methods=["HEAD"])
def head_blob(sha256: str) -> Response:
    current_caller()
    with store().engine.connect() as conn:
        size = conn.execute(select(Blob.size).where(Blob.sha256 == _checked(sha256))).scalar()
    if size is None:
        raise ApiError("not_found", "no such photo yet")
    response = Response(status=200)
    response.headers["Content-Length"] = str(size)
    return response


@blobs.get("/<sha256>")
def get_blob(sha256: str) -> Response:
    caller = current_caller()
    with store().engine.connect() as conn:
        blob = conn.execute(select(Blob).where(Blob.sha256 == _checked(sha256))).first()
        if blob is None or not _may_see(conn, caller, blob):
            raise ApiError("not_found", "no such photo in your scope")
    return Response(blob.content, mimetype=blob.content_type)


def _may_see(conn: Connection, caller: Caller, blob: Row[Any]) -> bool:
    """The uploader, or anyone whose scope holds a visit that refers to the photo."""
    if blob.created_by == caller.user_id:
        return True
    visits = conn.execute(
        select(Visit.village_id, Visit.household_id)
        .join(BlobRef, BlobRef.visit_id == Visit.id)
        .where(BlobRef.sha256 == blob.sha256)
    ).all()
    scope = scope_of(caller.assignment)
    return any(scope.holds(v.village_id, v.household_id) for v in visits)
