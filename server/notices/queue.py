"""The delivery queue: a job's run adds one ``notice_deliveries`` row per message and channel
(``enqueue``, in the job's own run, no network), and the job ``notice_delivery`` sends what is
due every minute (``deliver_due``), so a slow or broken webhook never holds up a job. A failed
attempt is retried after 1, 5 and 30 minutes, then the delivery is given up as ``failed``;
every row stays, with its attempts and last error, for the jobs view (docs/jobs.md)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import delete, desc, insert, select, update

from server.notices import channels
from server.notices.messages import Message
from server.service import store
from server.storage.models import NoticeChannel, NoticeDelivery
from server.timeutil import utcnow

log = logging.getLogger(__name__)

#: the jobs whose figures are sent, in the order the admin page lists them
NOTIFYING_JOBS = ("overdue_digest", "problem_escalation", "weekly_bulletin")
#: the wait after the 1st, 2nd and 3rd failed attempt; the 4th failure gives up
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30))
BATCH = 30  # deliveries per run: at most BATCH × TIMEOUT seconds, well inside the job's lock
WAITING = ("queued", "retrying")


# --- what each region has configured --------------------------------------------------------


def channels_of(region_ids: Iterable[str]) -> list[Any]:
    with store().read() as conn:
        return list(
            conn.execute(
                select(NoticeChannel)
                .where(NoticeChannel.region_id.in_(list(region_ids)))
                .order_by(NoticeChannel.region_id, NoticeChannel.channel)
            )
        )


def save_channel(
    region_id: str, channel: str, target: str, secret: str | None, jobs: list[str], actor: str
) -> None:
    """Create or replace the region's channel of this kind."""
    values = {
        "target": target,
        "secret": secret,
        "jobs": json.dumps(jobs),
        "updated_at": utcnow(),
        "updated_by": actor,
    }
    key = (NoticeChannel.region_id == region_id, NoticeChannel.channel == channel)
    with store().write_unversioned() as conn:
        if not conn.execute(update(NoticeChannel).where(*key).values(**values)).rowcount:
            conn.execute(
                insert(NoticeChannel).values(region_id=region_id, channel=channel, **values)
            )


def delete_channel(region_id: str, channel: str) -> bool:
    key = (NoticeChannel.region_id == region_id, NoticeChannel.channel == channel)
    with store().write_unversioned() as conn:
        return bool(conn.execute(delete(NoticeChannel).where(*key)).rowcount)


# --- queueing and sending -------------------------------------------------------------------


def enqueue(job: str, messages: Mapping[str, Message]) -> int:
    """A delivery for every channel of a region in ``messages`` that takes this job's notices;
    how many. Called by the job once per run, after its figures are computed."""
    if not messages:
        return 0
    at = utcnow()
    rows = [
        {
            "region_id": channel.region_id,
            "channel": channel.channel,
            "job": job,
            "title": messages[channel.region_id].title[:200],
            "text": messages[channel.region_id].text,
            "status": "queued",
            "attempts": 0,
            "created_at": at,
            "next_attempt_at": at,
        }
        for channel in channels_of(messages)
        if job in json.loads(channel.jobs)
    ]
    if rows:
        with store().write_unversioned() as conn:
            conn.execute(insert(NoticeDelivery), rows)
    return len(rows)


def deliver_due() -> str:
    """Send every delivery whose time has come (at most BATCH): the job ``notice_delivery``."""
    with store().read() as conn:
        due = conn.execute(
            select(NoticeDelivery)
            .where(NoticeDelivery.status.in_(WAITING), NoticeDelivery.next_attempt_at <= utcnow())
            .order_by(NoticeDelivery.next_attempt_at, NoticeDelivery.id)
            .limit(BATCH)
        ).all()
    outcomes = Counter(_attempt(delivery) for delivery in due)
    sent, retrying, failed = (outcomes[s] for s in ("sent", "retrying", "failed"))
    return f"发送 {sent} 条, 待重试 {retrying} 条, 失败 {failed} 条"


def _attempt(delivery: Any) -> str:
    """One try of one delivery; its row records the outcome: sent, retrying or failed."""
    found = channels_of([delivery.region_id])
    channel = next((c for c in found if c.channel == delivery.channel), None)
    error = None
    try:
        if channel is None:
            raise channels.DeliveryFailed("the region's channel was removed")
        _send(channel, delivery.title, delivery.text)
    except channels.DeliveryFailed as exc:
        error = str(exc)[:1000]
    attempts = delivery.attempts + 1
    at = utcnow()
    values: dict[str, Any] = {"attempts": attempts, "last_error": error}
    if error is None:
        values.update(status="sent", sent_at=at, next_attempt_at=None)
    elif channel is None or attempts > len(BACKOFF):
        values.update(status="failed", next_attempt_at=None)
    else:
        values.update(status="retrying", next_attempt_at=at + BACKOFF[attempts - 1])
    if error is not None:
        log.warning(
            "notice %s (%s, %s) attempt %d: %s",
            delivery.id,
            delivery.job,
            delivery.channel,
            attempts,
            error,
        )
    with store().write_unversioned() as conn:
        conn.execute(
            update(NoticeDelivery)
            .where(NoticeDelivery.id == delivery.id, NoticeDelivery.attempts == delivery.attempts)
            .values(**values)
        )
    return str(values["status"])


def _send(channel: Any, title: str, text: str) -> None:
    if channel.channel == "wecom":
        channels.send_wecom(channel.target, title, text)
    elif channel.channel == "dingtalk":
        channels.send_dingtalk(channel.target, channel.secret, title, text)
    else:
        smtp = channels.SmtpSettings.from_config(current_app.config)
        channels.send_email(smtp, recipients(channel.target), title, text)


def recipients(target: str) -> list[str]:
    """An e-mail channel's target: the addresses, one per line."""
    return [line.strip() for line in target.splitlines() if line.strip()]


# --- the record -----------------------------------------------------------------------------


def deliveries(
    region_ids: Iterable[str] | None, status: str | None = None, limit: int = 50
) -> list[Any]:
    """The newest deliveries of these regions (None: every region), newest first."""
    query = select(NoticeDelivery).order_by(desc(NoticeDelivery.id)).limit(limit)
    if region_ids is not None:
        query = query.where(NoticeDelivery.region_id.in_(list(region_ids)))
    if status:
        query = query.where(NoticeDelivery.status == status)
    with store().read() as conn:
        return list(conn.execute(query))
