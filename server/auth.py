"""Passwords, device tokens and the login rate limit.

Passwords are hashed with Argon2id (memory-hard); a device token is shown once, at
registration, and only its SHA-256 is stored, so a copy of the database opens no phone.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, g, request
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from server.errors import ApiError
from server.models import Assignment as AssignmentRow
from server.models import Device, LoginAttempt, User
from server.timeutil import utcnow
from sync.scope import Assignment

ROLES = ("cadre", "supervisor", "admin")
LOGIN_WINDOW = timedelta(minutes=15)
LOGIN_FAILURES_PER_USER = 10
LOGIN_FAILURES_PER_IP = 50
TOKEN_TTL_DAYS = 180  # the default of ZOUFANG_TOKEN_TTL_DAYS


def hasher() -> PasswordHasher:
    return PasswordHasher(**current_app.config["PASSWORD_HASH"])


def hash_password(password: str, params: dict[str, int] | None = None) -> str:
    return PasswordHasher(**params).hash(password) if params else hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


#: a hash to verify against when the user does not exist, so both answers take as long
_DUMMY: dict[str, str] = {}


def dummy_hash() -> str:
    key = repr(sorted(current_app.config["PASSWORD_HASH"].items()))
    if key not in _DUMMY:
        _DUMMY[key] = hasher().hash(secrets.token_hex(16))
    return _DUMMY[key]


def token_expiry_cutoff() -> datetime:
    """A token unused since before this moment has expired (``TOKEN_TTL_DAYS`` of disuse)."""
    return utcnow() - timedelta(days=int(current_app.config.get("TOKEN_TTL_DAYS", TOKEN_TTL_DAYS)))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Caller:
    """Who is calling the API: the device, its user and their assignment."""

    device_id: str
    user_id: str
    username: str
    name: str
    role: str
    assignment: Assignment


def check_login_rate(conn: Connection, username: str, ip: str) -> None:
    """429 when this username or address failed too often in the last quarter hour."""
    since = utcnow() - LOGIN_WINDOW
    by_user = conn.execute(
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.username == username, LoginAttempt.at > since)
    ).scalar()
    by_ip = conn.execute(
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.ip == ip, LoginAttempt.at > since)
    ).scalar()
    if by_user >= LOGIN_FAILURES_PER_USER or by_ip >= LOGIN_FAILURES_PER_IP:
        raise ApiError(
            "rate_limited",
            "too many failed sign-ins",
            headers={"Retry-After": str(int(LOGIN_WINDOW.total_seconds()))},
        )


def record_failure(conn: Connection, username: str, ip: str) -> None:
    conn.execute(insert(LoginAttempt).values(username=username, ip=ip, at=utcnow()))


def clear_failures(conn: Connection, username: str) -> None:
    conn.execute(delete(LoginAttempt).where(LoginAttempt.username == username))


def assignment_of(conn: Connection, user_id: str) -> Assignment:
    rows = conn.execute(
        select(AssignmentRow.kind, AssignmentRow.target_id).where(AssignmentRow.user_id == user_id)
    ).all()
    return Assignment.of(
        [r.target_id for r in rows if r.kind == "region"],
        [r.target_id for r in rows if r.kind == "household"],
    )


def current_caller() -> Caller:
    """The caller behind the bearer token; 401 ``unauthorized`` or ``device_revoked`` otherwise."""
    if "caller" in g:
        return g.caller  # type: ignore[no-any-return]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError("unauthorized", "a bearer token is required")
    engine = current_app.extensions["zoufang_store"].engine
    with engine.connect() as conn:
        row = conn.execute(
            select(
                Device.id,
                Device.revoked_at,
                Device.revoked_by,
                Device.created_at,
                Device.last_seen_at,
                User.id.label("user_id"),
                User.username,
                User.name,
                User.role,
                User.active,
            )
            .join(User, User.id == Device.user_id)
            .where(Device.token_hash == token_hash(token.strip()))
        ).first()
        if row is None:
            raise ApiError("unauthorized", "unknown or expired token")
        if row.revoked_at is not None and row.revoked_by is not None:
            raise ApiError("device_revoked")  # before the user check: the phone must wipe itself
        if not row.active:
            raise ApiError("unauthorized", "this account is deactivated")
        # revoked by nobody = purged for disuse: sign in again, the phone keeps its data
        last_used = row.last_seen_at or row.created_at
        if row.revoked_at is not None or last_used < token_expiry_cutoff():
            raise ApiError("unauthorized", "the token has expired; sign in again")
        assignment = assignment_of(conn, row.user_id)
    _touch_device(engine, row.id, row.last_seen_at)
    g.caller = Caller(row.id, row.user_id, row.username, row.name, row.role, assignment)
    return g.caller  # type: ignore[no-any-return]


def _touch_device(engine: Engine, device_id: str, last_seen: datetime | None) -> None:
    """Keep last_seen_at roughly current without a write on every request."""
    now = utcnow()
    if last_seen is not None and now - last_seen < timedelta(minutes=5):
        return
    with engine.begin() as conn:
        conn.execute(update(Device).where(Device.id == device_id).values(last_seen_at=now))


def require_role(caller: Caller, *roles: str) -> None:
    if caller.role not in roles:
        raise ApiError("forbidden", "your role may not do this")
