"""The three ways a notice leaves the server: a WeCom (企业微信) group robot, a DingTalk (钉钉)
group robot, and e-mail over SMTP. Each sends one message or raises ``DeliveryFailed``; none
retries (the queue does, server/notices/queue.py). Outgoing HTTP is urllib with a short
timeout and no redirects: the URL is what an admin typed, so only http(s) to the host they
named is ever fetched."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import smtplib
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

TIMEOUT = 10  # seconds: a webhook slower than this is retried later
MAX_ANSWER = 64 * 1024
CHANNELS = ("wecom", "dingtalk", "email")


class DeliveryFailed(Exception):
    """The channel did not take the message; the text says why (it is shown to admins)."""


class BadWebhook(ValueError):
    """A webhook URL the server will not call."""


def check_webhook_url(url: str) -> str:
    """An http(s) URL with a host and no user:password part; anything else (file:, ftp:,
    data:, a bare path) is refused before it is stored and again before it is called."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise BadWebhook("the webhook URL must start with https:// (or http://)")
    if not parts.hostname or parts.username or parts.password:
        raise BadWebhook("the webhook URL needs a host and no user name or password")
    if any(c.isspace() or ord(c) < 32 for c in url.strip()):
        raise BadWebhook("the webhook URL may not contain spaces or control characters")
    return url.strip()


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int | None = None) -> str:
    """DingTalk's 加签: ``timestamp`` (ms) and ``sign`` = url-encoded base64 of
    HMAC-SHA256(key=secret, "timestamp\\nsecret"), appended to the webhook URL."""
    timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest))
    return f"{url}{'&' if '?' in url else '?'}timestamp={timestamp}&sign={sign}"


def send_wecom(url: str, title: str, text: str) -> None:
    """WeCom group robot: a markdown message (its title is the first line of the text)."""
    _post_json(url, {"msgtype": "markdown", "markdown": {"content": text}})


def send_dingtalk(url: str, secret: str | None, title: str, text: str) -> None:
    """DingTalk group robot: a markdown message, signed when the robot has a secret."""
    target = dingtalk_signed_url(url, secret) if secret else url
    _post_json(target, {"msgtype": "markdown", "markdown": {"title": title, "text": text}})


@dataclass(frozen=True)
class SmtpSettings:
    """ZOUFANG_SMTP_HOST / PORT / USER / PASSWORD / FROM / STARTTLS (docs/deploy.md)."""

    host: str
    port: int
    user: str | None
    password: str | None
    sender: str
    starttls: bool

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSettings | None:
        host = config.get("SMTP_HOST")
        if not host:
            return None
        user = _text(config.get("SMTP_USER"))
        return cls(
            host=str(host),
            port=int(config.get("SMTP_PORT") or 25),
            user=user,
            password=_text(config.get("SMTP_PASSWORD")),
            sender=str(config.get("SMTP_FROM") or user or f"zoufang@{host}"),
            starttls=_true(config.get("SMTP_STARTTLS", False)),
        )


def send_email(smtp: SmtpSettings | None, recipients: Sequence[str], title: str, text: str) -> None:
    """One plain-text e-mail (UTF-8) to the region's recipients."""
    if smtp is None:
        raise DeliveryFailed("no SMTP server is configured (ZOUFANG_SMTP_HOST)")
    message = EmailMessage()
    message["Subject"] = title
    message["From"] = smtp.sender
    message["To"] = ", ".join(recipients)
    message.set_content(text)
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT) as server:
            if smtp.starttls:
                server.starttls(context=ssl.create_default_context())
            if smtp.user:
                server.login(smtp.user, smtp.password or "")
            server.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryFailed(f"SMTP: {type(exc).__name__}: {exc}") from exc


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A robot webhook answers itself; a redirect could lead anywhere, so it is a failure."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect())


def _post_json(url: str, body: dict[str, Any]) -> None:
    """POST the JSON body; the robot's answer must be JSON with ``errcode`` 0."""
    try:
        check_webhook_url(url)
    except BadWebhook as exc:
        raise DeliveryFailed(str(exc)) from exc
    request = urllib.request.Request(
        url,
        data=json.dumps(body, ensure_ascii=False).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
        method="POST",
    )
    try:
        with _opener.open(request, timeout=TIMEOUT) as response:
            answer = response.read(MAX_ANSWER)
    except urllib.error.HTTPError as exc:
        raise DeliveryFailed(f"HTTP {exc.code} {exc.reason}") from exc
    except (OSError, ValueError) as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
    try:
        result = json.loads(answer)
    except ValueError as exc:
        raise DeliveryFailed("the robot's answer is not JSON") from exc
    if not isinstance(result, dict) or result.get("errcode") != 0:
        code = result.get("errcode") if isinstance(result, dict) else None
        message = result.get("errmsg") if isinstance(result, dict) else None
        raise DeliveryFailed(f"errcode {code}: {message}")


def _text(value: Any) -> str | None:
    """A setting as text: from_prefixed_env reads ZOUFANG_SMTP_PASSWORD=123456 as a number."""
    return None if value is None or value == "" else str(value)


def _true(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on")
