"""Signed, opaque pull cursors (CONTRACT §8).

A cursor is ``base64url(json) . base64url(hmac)``: the server can trust what it reads back,
and a cursor made for one device is refused for another (``invalid_cursor``). ``sign`` and
``unsign`` serve every other paged list too (the reports' visit list).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from sync.errors import InvalidCursor


@dataclass(frozen=True)
class Cursor:
    device_id: str
    version: int  # every change up to this version has been delivered
    scope: str  # fingerprint of the scope the device held at that point
    #: a scope change in progress: {"from": old scope, "phase": "enter"|"leave", "after": version}
    transition: dict[str, Any] | None = None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest()[:18])


def sign(payload: dict[str, Any], secret: bytes) -> str:
    """``payload`` as an opaque token the server can trust when it comes back."""
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return body + "." + _mac(secret, body)


def unsign(text: Any, secret: bytes, max_length: int = 4096) -> dict[str, Any]:
    """The payload of a token made by ``sign`` with ``secret``; InvalidCursor if it is forged,
    altered or no token at all."""
    if not isinstance(text, str) or not text.isascii() or text.count(".") != 1:
        raise InvalidCursor("malformed cursor")  # a token we made is base64url: ASCII
    if len(text) > max_length:
        raise InvalidCursor("malformed cursor")
    body, mac = text.split(".")
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise InvalidCursor("cursor signature does not match")
    try:
        payload = json.loads(_unb64(body))
    except ValueError as exc:
        raise InvalidCursor("malformed cursor") from exc
    if not isinstance(payload, dict):
        raise InvalidCursor("malformed cursor")
    return payload


def encode_cursor(cursor: Cursor, secret: bytes) -> str:
    payload: dict[str, Any] = {"d": cursor.device_id, "v": cursor.version, "s": cursor.scope}
    if cursor.transition:
        payload["t"] = cursor.transition
    return sign(payload, secret)


def decode_cursor(text: str, secret: bytes, device_id: str) -> Cursor:
    """The cursor behind ``text``; InvalidCursor if forged, altered or issued to another device."""
    payload = unsign(text, secret)
    try:
        cursor = Cursor(payload["d"], int(payload["v"]), str(payload["s"]), payload.get("t"))
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    if cursor.device_id != device_id:
        raise InvalidCursor("cursor belongs to another device")
    return cursor
