"""Passwords, device tokens and the login rate limit.

Passwords are hashed with Argon2id (memory-hard); a device token is shown once, at
registration, and only its SHA-256 is stored, so a copy of the database opens no phone.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, g, request
from sqlalchemy import bindparam, case, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine, Row

from server.http.errors import ApiError
from server.storage.models import Assignment as AssignmentRow
from server.storage.models import Device, LoginLimit, User
from server.timeutil import utcnow
from sync.scope import Assignment

ROLES = ("cadre", "supervisor", "admin")
TOKEN_TTL_DAYS = 180  # the default of ZOUFANG_TOKEN_TTL_DAYS
TOKEN_MAX_AGE_DAYS = 365  # the default of ZOUFANG_TOKEN_MAX_AGE_DAYS


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


def token_age_cutoff() -> datetime:
    """A token issued before this moment has expired however often it is used
    (``TOKEN_MAX_AGE_DAYS``): a copied token does not open a phone's account for ever."""
    days = int(current_app.config.get("TOKEN_MAX_AGE_DAYS", TOKEN_MAX_AGE_DAYS))
    return utcnow() - timedelta(days=days)


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


@dataclass(frozen=True)
class Limit:
    """At most ``failures`` failed sign-ins in ``window``; past that, one try per ``spacing``
    (a slowdown that nobody can turn into a lockout), or none till the window ends."""

    failures: int
    window: timedelta
    spacing: timedelta | None = None


#: one address guessing one username: that pair waits, and nobody else
PAIR_LIMIT = Limit(10, timedelta(minutes=15))
#: one username from every address: a distributed guesser gets a guess a minute
USERNAME_LIMIT = Limit(30, timedelta(hours=1), timedelta(minutes=1))
#: one address for every username: a township office behind one NAT stays open, a sprayer slows
ADDRESS_LIMIT = Limit(100, timedelta(minutes=15), timedelta(seconds=5))
#: an address a user signed in from skips the username and address limits this long
TRUSTED_FOR = timedelta(days=30)


def reserve_sign_in(conn: Connection, username: str, ip: str) -> bool:
    """Count this attempt as failed before its password is checked, each counter with one
    conditional UPDATE, so that parallel guesses cannot all pass one look at the counts
    (``forgive_sign_in`` takes it back). 429 ``rate_limited`` with Retry-After past a limit.
    True when ``ip`` is trusted for ``username``: only the pair's limit applies then."""
    now = utcnow()
    trusted = conn.execute(
        select(LoginLimit.username).where(
            LoginLimit.username == username, LoginLimit.ip == ip, LoginLimit.trusted_until > now
        )
    ).first()
    counters = [(username, ip, PAIR_LIMIT)]
    if trusted is None:
        counters += [(username, "", USERNAME_LIMIT), ("", ip, ADDRESS_LIMIT)]
    for counter in counters:  # always in this order, so two sign-ins never deadlock
        _count(conn, *counter, now)
    return trusted is not None


def _count(conn: Connection, username: str, ip: str, limit: Limit, now: datetime) -> None:
    dialect_insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        dialect_insert(LoginLimit)
        .values(username=username, ip=ip, window_start=now, failures=0, last_at=now)
        .on_conflict_do_nothing()
    )
    row = (LoginLimit.username == username, LoginLimit.ip == ip)
    expired = LoginLimit.window_start <= now - limit.window
    allowed = [expired, LoginLimit.failures < limit.failures]
    if limit.spacing is not None:
        allowed.append(LoginLimit.last_at <= now - limit.spacing)
    counted = conn.execute(
        update(LoginLimit)
        .where(*row, or_(*allowed))
        .values(
            failures=case((expired, 1), else_=LoginLimit.failures + 1),
            window_start=case((expired, now), else_=LoginLimit.window_start),
            last_at=now,
        )
    ).rowcount
    if counted:
        return
    held = conn.execute(select(LoginLimit.window_start, LoginLimit.last_at).where(*row)).one()
    until = held.window_start + limit.window
    if limit.spacing is not None:
        until = min(until, held.last_at + limit.spacing)
    wait = max(1, math.ceil((until - now).total_seconds()))
    raise ApiError("rate_limited", "too many failed sign-ins", headers={"Retry-After": str(wait)})


def forgive_sign_in(conn: Connection, username: str, ip: str, trusted: bool) -> None:
    """The password was right: the attempt counted by ``reserve_sign_in`` is no failure, and
    this address is trusted for this user from now on."""
    conn.execute(
        update(LoginLimit)
        .where(LoginLimit.username == username, LoginLimit.ip == ip)
        .values(failures=0, trusted_until=utcnow() + TRUSTED_FOR)
    )
    if trusted:
        return
    for user_key, ip_key in ((username, ""), ("", ip)):
        conn.execute(
            update(LoginLimit)
            .where(LoginLimit.username == user_key, LoginLimit.ip == ip_key)
            .values(failures=case((LoginLimit.failures > 0, LoginLimit.failures - 1), else_=0))
        )


def clear_failures(conn: Connection, username: str) -> None:
    """Forgive every failed sign-in of ``username`` (an admin set a new password)."""
    conn.execute(update(LoginLimit).where(LoginLimit.username == username).values(failures=0))


#: built once: every request asks them, and building a statement costs more than running it
_ASSIGNMENT = select(AssignmentRow.kind, AssignmentRow.target_id).where(
    AssignmentRow.user_id == bindparam("user_id")
)
_CALLER = (
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
        AssignmentRow.kind,
        AssignmentRow.target_id,
    )
    .join(User, User.id == Device.user_id)
    .outerjoin(AssignmentRow, AssignmentRow.user_id == User.id)
    .where(Device.token_hash == bindparam("token_hash"))
)


def assignment_of(conn: Connection, user_id: str) -> Assignment:
    return _assignment(conn.execute(_ASSIGNMENT, {"user_id": user_id}).all())


def _assignment(rows: Sequence[Row[Any]]) -> Assignment:
    """The assignment in rows of ``kind`` and ``target_id`` (a row of neither is skipped)."""
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
    store = current_app.extensions["zoufang_store"]
    engine = store.engine
    with store.reader.connect() as conn:
        # the device, its user and the user's assignment in one round trip: a row per
        # assigned region or household (one with no kind when the user has none)
        rows = conn.execute(_CALLER, {"token_hash": token_hash(token.strip())}).all()
        row = rows[0] if rows else None
        if row is None:
            raise ApiError("unauthorized", "unknown or expired token")
        if row.revoked_at is not None and row.revoked_by is not None:
            raise ApiError("device_revoked")  # before the user check: the phone must wipe itself
        if not row.active:
            raise ApiError("unauthorized", "this account is deactivated")
        # revoked by nobody = purged for disuse: sign in again, the phone keeps its data
        last_used = row.last_seen_at or row.created_at
        too_old = row.created_at < token_age_cutoff()
        if row.revoked_at is not None or last_used < token_expiry_cutoff() or too_old:
            raise ApiError("unauthorized", "the token has expired; sign in again")
        assignment = _assignment(rows)
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
