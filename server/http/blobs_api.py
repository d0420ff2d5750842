"""Photos by content (CONTRACT §11): PUT stores the bytes under their SHA-256, HEAD tells
whether they arrived, GET returns them to whoever may see a visit that refers to them.

What a photo is (uploader, device, size, the visits that refer to it) is a row of the database;
its bytes are in the store ``BLOB_STORE`` names (server/storage/blobstore.py): the database, a
directory or a bucket. Every app server of a deployment sees the same photos either way.
Each device has an upload budget (``PHOTOS_PER_HOUR``, ``PHOTO_BYTES_PER_DAY``) so that one
token cannot fill the disk; a photo no visit refers to is deleted ``PHOTO_GRACE_DAYS`` after
its upload (job ``photo_cleanup``, docs/jobs.md).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, redirect, request
from sqlalchemy import Row, delete, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from server.auth import Caller, current_caller
from server.http.errors import ApiError
from server.service import scope_of, store
from server.storage.blobstore import BlobMissing, DatabaseBlobs, blob_store
from server.storage.models import Blob, BlobRef, Device, Visit
from server.timeutil import utcnow

blobs = Blueprint("blobs", __name__, url_prefix="/api/v1/blobs")
SHA256 = re.compile(r"[0-9a-f]{64}")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


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
        with store().write_unversioned() as conn:
            if conn.execute(select(Blob.sha256).where(Blob.sha256 == sha256)).first():
                return jsonify({"sha256": sha256, "size": len(body)}), 200  # idempotent, free
            _charge(conn, caller.device_id, len(body))
            conn.execute(
                insert(Blob).values(
                    sha256=sha256,
                    size=len(body),
                    content_type=content_type,
                    created_at=utcnow(),
                    created_by=caller.user_id,
                    device_id=caller.device_id,
                )
            )
            blob_store().put(conn, sha256, body, content_type)
    except IntegrityError:  # the same photo, stored meanwhile from another device
        return jsonify({"sha256": sha256, "size": len(body)}), 200
    return jsonify({"sha256": sha256, "size": len(body)}), 201


def _charge(conn: Connection, device_id: str, size: int) -> None:
    """429 ``rate_limited`` when ``size`` more bytes would take the device over its budget:
    ``PHOTOS_PER_HOUR`` photos in any hour, ``PHOTO_BYTES_PER_DAY`` bytes in any 24 hours.

    The budget is what the device's stored photos of the last day add up to. Counting and
    storing happen in one transaction that holds the device (its row locked on PostgreSQL;
    SQLite has one writer at a time), so concurrent uploads of a device never overspend."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(Device.id).where(Device.id == device_id).with_for_update())
    now = utcnow()
    uploads = conn.execute(
        select(Blob.created_at, Blob.size)
        .where(Blob.device_id == device_id, Blob.created_at > now - DAY)
        .order_by(Blob.created_at)
    ).all()
    per_hour = int(current_app.config["PHOTOS_PER_HOUR"])
    per_day = int(current_app.config["PHOTO_BYTES_PER_DAY"])
    wait = max(_hourly_wait(uploads, now, per_hour), _daily_wait(uploads, now, size, per_day))
    if wait > timedelta(0):
        seconds = max(1, math.ceil(wait.total_seconds()))
        raise ApiError(
            "rate_limited",
            "this device has used its photo upload budget; try again later",
            {
                "max_photos_per_hour": per_hour,
                "max_bytes_per_day": per_day,
                "retry_after": seconds,
            },
            headers={"Retry-After": str(seconds)},
        )


def _hourly_wait(uploads: Sequence[Row[Any]], now: datetime, per_hour: int) -> timedelta:
    """How long until one more photo fits in the hour: until enough of the last hour's
    uploads have left it."""
    last_hour = [u.created_at for u in uploads if u.created_at > now - HOUR]
    if len(last_hour) < per_hour:
        return timedelta(0)
    if per_hour < 1:
        return HOUR
    return last_hour[len(last_hour) - per_hour] + HOUR - now


def _daily_wait(uploads: Sequence[Row[Any]], now: datetime, size: int, per_day: int) -> timedelta:
    """How long until ``size`` more bytes fit in the day: until enough of the last 24 hours'
    uploads have left it (a whole day for a photo bigger than the day's budget)."""
    spent = sum(u.size for u in uploads)
    if spent + size <= per_day:
        return timedelta(0)
    for upload in uploads:
        spent -= upload.size
        if spent + size <= per_day:
            return upload.created_at + DAY - now
    return DAY


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
    """The bytes, or a redirect to a short-lived URL of the bucket that holds them; either only
    after the scope check. Bytes still in the photo's row (not yet moved by ``zoufang blobs
    migrate``) are sent from there whatever the store."""
    caller = current_caller()
    found = select(
        Blob.sha256, Blob.content_type, Blob.created_by, Blob.content.is_not(None).label("here")
    )
    with store().engine.connect() as conn:
        blob = conn.execute(found.where(Blob.sha256 == _checked(sha256))).first()
        if blob is None or not _may_see(conn, caller, blob):
            raise ApiError("not_found", "no such photo in your scope")
        where = DatabaseBlobs() if blob.here else blob_store()
        url = where.url(sha256)
        if url is not None:
            return redirect(url, 307)
        try:
            content = where.get(conn, sha256)
        except BlobMissing as missing:
            current_app.logger.error("photo %s has a row but no bytes in its store", sha256)
            raise ApiError("not_found", "this photo's bytes are missing") from missing
    return Response(content, mimetype=blob.content_type)


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


def delete_unreferenced(uploaded_before: datetime) -> tuple[int, int]:
    """Delete the photos uploaded before ``uploaded_before`` that no visit refers to; how
    many went and their bytes.

    A visit refers to a photo from the moment it is stored (``blob_refs``), voided or not:
    the photo of a voided visit is evidence and stays. A photo that arrived before its visit
    waits for it until ``uploaded_before``; a visit later than that shows its photo pending
    until the phone sends it again."""
    referenced = select(BlobRef.sha256).where(BlobRef.sha256 == Blob.sha256).exists()
    with store().write_unversioned() as conn:
        deleted = conn.execute(
            delete(Blob)
            .where(Blob.created_at < uploaded_before, ~referenced)
            .returning(Blob.sha256, Blob.size)
        ).all()
    # the bytes go after their rows: a crash between leaves bytes no row names, never a row
    # whose bytes are gone
    blob_store().delete(row.sha256 for row in deleted)
    return len(deleted), sum(row.size for row in deleted)
