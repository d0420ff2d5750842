"""Request bodies at the HTTP edge (marshmallow). The ops inside a push are checked by
sync.ops instead: it runs per op on the hot path, and the sync core stays library-free.
"""

from __future__ import annotations

from typing import Any

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

from server.http.errors import ApiError
from sync.records import parse_offset_datetime

CURRENT_SCHEMA = 1


class DeviceRegistration(Schema):
    class Meta:
        unknown = EXCLUDE

    username = fields.String(required=True, validate=validate.Length(1, 64))
    password = fields.String(required=True, validate=validate.Length(1, 200))
    label = fields.String(load_default="", validate=validate.Length(0, 100))


class PushEnvelope(Schema):
    class Meta:
        unknown = EXCLUDE

    device_id = fields.String(required=True, validate=validate.Length(1, 64))
    device_time = fields.String(load_default=None, allow_none=True)
    schema = fields.Integer(
        load_default=CURRENT_SCHEMA, strict=True, validate=validate.Range(1, CURRENT_SCHEMA)
    )
    ops = fields.Raw(required=True)

    @validates("device_time")
    def _time_with_offset(self, value: Any, **_: Any) -> None:
        if value is not None and parse_offset_datetime(value) is None:
            raise ValidationError("must be an ISO 8601 time with offset")

    @validates("ops")
    def _a_list(self, value: Any, **_: Any) -> None:
        if not isinstance(value, list):
            raise ValidationError("must be a list of ops")


class PullQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    cursor = fields.String(load_default=None, validate=validate.Length(1, 4096))
    limit = fields.Integer(load_default=1000, validate=validate.Range(1, 5000))


class ConflictResolution(Schema):
    """The value to keep: given whole, or ``choice`` of the values the conflict lists (0 the
    kept one, 1… the lost ones), for screens that show masked phone and ID numbers."""

    class Meta:
        unknown = RAISE

    value = fields.Raw(allow_none=True)
    choice = fields.Integer(strict=True, validate=validate.Range(0, 1000))

    @validates_schema
    def _one_of_them(self, data: dict[str, Any], **_: Any) -> None:
        if ("value" in data) == ("choice" in data):
            raise ValidationError("give either value or choice", "_body")


def load(schema: Schema, payload: Any) -> dict[str, Any]:
    """Validated data, or 422 ``validation_failed`` with a message list per field."""
    if not isinstance(payload, dict):
        raise ApiError(
            "validation_failed",
            "the body must be a JSON object",
            {"fields": {"_body": ["must be a JSON object"]}},
        )
    try:
        return schema.load(payload)  # type: ignore[no-any-return]
    except ValidationError as exc:
        raise ApiError(
            "validation_failed", "validation failed", {"fields": _flatten(exc.messages)}
        ) from exc


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        out[prefix or "_body"] = list(messages)
    else:
        out[prefix or "_body"] = [str(messages)]
    return out
