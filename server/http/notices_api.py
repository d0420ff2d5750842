"""Where each county's and township's notices go, and what became of them (docs/admin.md,
"Notices"): admin routes under /api/v1/admin, asking service.administration like every admin
route, so an admin configures only the regions they administer (others answer 404). Webhook
URLs and signing secrets are kept but never shown back whole: a robot's URL holds its key."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import RAISE, Schema, fields, validate

from server import service
from server.auth import Caller, current_caller, require_role
from server.http.errors import ApiError
from server.http.request_checks import checked_json
from server.http.schemas import load
from server.notices import channels, queue
from server.service import Administration
from server.timeutil import utc_iso

notices_api = Blueprint("notices", __name__, url_prefix="/api/v1/admin")

BODY_MAX_BYTES = 16 * 1024
NOTICE_LEVELS = ("county", "township")
MAX_DELIVERIES = 200


class ChannelBody(Schema):
    """A channel as the admin saves it; a field left out keeps its stored value."""

    class Meta:
        unknown = RAISE

    url = fields.String(validate=validate.Length(1, 2000))
    secret = fields.String(allow_none=True, validate=validate.Length(0, 200))
    recipients = fields.List(fields.Email(), validate=validate.Length(1, 20))
    jobs = fields.List(
        fields.String(validate=validate.OneOf(queue.NOTIFYING_JOBS)),
        validate=validate.Length(1, len(queue.NOTIFYING_JOBS)),
    )


class DeliveryQuery(Schema):
    class Meta:
        unknown = RAISE

    region_id = fields.String(validate=validate.Length(1, 64))
    status = fields.String(validate=validate.OneOf(("queued", "retrying", "sent", "failed")))
    limit = fields.Integer(load_default=50, validate=validate.Range(1, MAX_DELIVERIES))


def _administered(region_id: str) -> tuple[Caller, Administration]:
    """An admin and a region they administer; any other region is not there for them."""
    caller = current_caller()
    require_role(caller, "admin")
    administers = service.administration(caller)
    if not administers.region(region_id):
        raise ApiError("not_found", "no such region")
    return caller, administers


def _invalid(field: str, message: str) -> ApiError:
    return ApiError("validation_failed", message, {"fields": {field: [message]}})


@notices_api.get("/regions/<region_id>/notices")
def region_notices(region_id: str) -> Response:
    """The region's channels (URLs and secrets masked), which jobs can notify, and whether the
    server can send e-mail at all."""
    _administered(region_id)
    return jsonify(
        {
            "region_id": region_id,
            "channels": [_channel_json(c) for c in queue.channels_of([region_id])],
            "jobs": list(queue.NOTIFYING_JOBS),
            "smtp_configured": channels.SmtpSettings.from_config(current_app.config) is not None,
            "public_url": current_app.config.get("PUBLIC_URL") or None,
        }
    )


@notices_api.put("/regions/<region_id>/notices/<channel>")
def save_region_channel(region_id: str, channel: str) -> Response:
    """Create or change the region's WeCom robot, DingTalk robot or e-mail recipients."""
    caller, administers = _administered(region_id)
    if channel not in channels.CHANNELS:
        raise ApiError("not_found", "no such channel: wecom, dingtalk or email")
    if administers.tree[region_id][1] not in NOTICE_LEVELS:
        raise _invalid("region_id", "notices go to a county or a township")
    request.max_content_length = BODY_MAX_BYTES
    body = load(ChannelBody(), checked_json(request.get_json(silent=True)))
    stored = next((c for c in queue.channels_of([region_id]) if c.channel == channel), None)
    target, secret = _target_and_secret(channel, body, stored)
    jobs = body.get("jobs") or (json.loads(stored.jobs) if stored else list(queue.NOTIFYING_JOBS))
    queue.save_channel(region_id, channel, target, secret, jobs, caller.user_id)
    with service.store().engine.begin() as conn:
        details = {"region_id": region_id, "channel": channel, "jobs": jobs}
        service.audit(
            conn,
            "notice_channel_saved",
            caller.user_id,
            caller.device_id,
            "region",
            region_id,
            details,
        )
    saved = next(c for c in queue.channels_of([region_id]) if c.channel == channel)
    return jsonify(_channel_json(saved))


def _target_and_secret(channel: str, body: dict[str, Any], stored: Any) -> tuple[str, str | None]:
    """What the channel sends to, checked; a value the admin did not send again is kept."""
    if channel == "email":
        if "url" in body or "secret" in body:
            raise _invalid("url", "an e-mail channel has recipients, not a URL or secret")
        if channels.SmtpSettings.from_config(current_app.config) is None:
            raise _invalid("recipients", "this server has no SMTP server (ZOUFANG_SMTP_HOST)")
        if "recipients" in body:
            return "\n".join(body["recipients"]), None
        if stored is None:
            raise _invalid("recipients", "give at least one e-mail address")
        return str(stored.target), None
    if "recipients" in body:
        raise _invalid("recipients", "a robot has a webhook URL, not recipients")
    if channel == "wecom" and body.get("secret"):
        raise _invalid("secret", "a WeCom robot has no signing secret")
    url = body.get("url") or (stored.target if stored else None)
    if url is None:
        raise _invalid("url", "give the robot's webhook URL")
    try:
        url = channels.check_webhook_url(url)
    except channels.BadWebhook as exc:
        raise _invalid("url", str(exc)) from exc
    secret = body.get("secret", stored.secret if stored else None)
    return url, secret or None


@notices_api.delete("/regions/<region_id>/notices/<channel>")
def delete_region_channel(region_id: str, channel: str) -> Response:
    """The region stops receiving notices on this channel; what was sent stays recorded."""
    caller, _administers = _administered(region_id)
    if channel not in channels.CHANNELS or not queue.delete_channel(region_id, channel):
        raise ApiError("not_found", "the region has no such channel")
    with service.store().engine.begin() as conn:
        details = {"region_id": region_id, "channel": channel}
        service.audit(
            conn,
            "notice_channel_deleted",
            caller.user_id,
            caller.device_id,
            "region",
            region_id,
            details,
        )
    return jsonify({"deleted": True})


@notices_api.get("/notices/deliveries")
def notice_deliveries() -> Response:
    """The newest deliveries (sent, waiting, retrying, failed) of the regions the caller
    administers or supervises: the jobs view's record of every notice and failure."""
    caller = current_caller()
    require_role(caller, "admin", "supervisor")
    query = load(DeliveryQuery(), request.args.to_dict())
    administers = service.administration(caller)
    if "region_id" in query:
        if not administers.region(query["region_id"]):
            raise ApiError("not_found", "no such region")
        regions: list[str] | None = [query["region_id"]]
    elif administers.everything:
        regions = None
    else:
        regions = [r for r in administers.tree if administers.region(r)]
    rows = queue.deliveries(regions, query.get("status"), query["limit"])
    return jsonify({"deliveries": [_delivery_json(row) for row in rows]})


def _channel_json(row: Any) -> dict[str, Any]:
    robot = row.channel != "email"
    return {
        "region_id": row.region_id,
        "channel": row.channel,
        "url": masked(row.target) if robot else None,
        "secret_set": bool(row.secret),
        "recipients": queue.recipients(row.target) if not robot else None,
        "jobs": json.loads(row.jobs),
        "updated_at": utc_iso(row.updated_at),
    }


def _delivery_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "region_id": row.region_id,
        "channel": row.channel,
        "job": row.job,
        "title": row.title,
        "text": row.text,
        "status": row.status,
        "attempts": row.attempts,
        "last_error": row.last_error,
        "created_at": utc_iso(row.created_at),
        "next_attempt_at": utc_iso(row.next_attempt_at),
        "sent_at": utc_iso(row.sent_at),
    }


def masked(url: str) -> str:
    """Enough of a webhook URL to tell robots apart: its host and its last four characters."""
    parts = url.split("/")
    return "/".join(parts[:3]) + "/…" + url[-4:]
