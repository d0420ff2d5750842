"""User accounts and their 包保 assignments: one place that creates and reassigns users."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection
from zxcvbn import zxcvbn

from server.auth import ROLES, assignment_of, hash_password
from server.service import audit, store
from server.storage.models import Assignment as AssignmentRow
from server.storage.models import Household, Region, User
from server.storage.store import SqlTxn
from server.timeutil import utcnow
from sync.ids import new_id
from sync.scope import Assignment
from sync.store import Record

USERNAME = re.compile(r"^[A-Za-z0-9_.\-]{2,64}$")
MIN_PASSWORD = 8
#: zxcvbn's score: 3 = "safely unguessable", about 10^8 guesses; its frequency lists hold the
#: common passwords, words and names, and it sees repeats, sequences, dates and keyboard walks
MIN_PASSWORD_SCORE = 3


class AccountError(ValueError):
    """A user that cannot be created as asked; the message says why."""


def create_user(
    username: str,
    password: str,
    role: str,
    region_ids: list[str],
    household_ids: list[str],
    name: str,
    phone: str | None = None,
    password_hash: str | None = None,
    actor: str | None = None,
    user_id: str | None = None,
) -> str:
    """A new user with their regions and households; ``password_hash`` skips hashing (seeding)."""
    if not USERNAME.match(username):
        raise AccountError("username: 2-64 letters, digits, '.', '_' or '-'")
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}")
    if password_hash is None:
        check_password(password, username, name)
    if role != "admin" and not region_ids and not household_ids:
        raise AccountError("a cadre or supervisor needs at least one --region or --household")
    user_id = user_id or new_id()
    with store().write() as txn:
        conn = txn.conn
        if conn.execute(select(User.id).where(User.username == username)).first():
            raise AccountError(f"user {username!r} exists")
        _check_targets(conn, region_ids, household_ids)
        conn.execute(
            insert(User).values(
                id=user_id,
                username=username,
                name=name,
                role=role,
                phone=phone,
                password_hash=password_hash or hash_password(password),
                active=True,
                created_at=utcnow(),
            )
        )
        _write_assignment(conn, user_id, region_ids, household_ids)
        audit(
            conn,
            "user_created",
            actor,
            target_type="user",
            target_id=user_id,
            details={
                "username": username,
                "role": role,
                "region_ids": region_ids,
                "household_ids": household_ids,
            },
        )
        publish_user(txn, user_id)
    store().remember_assignment(Assignment.of(region_ids, household_ids))
    return user_id


def publish_user(txn: SqlTxn, user_id: str) -> None:
    """The user's ``user`` record (CONTRACT §4) as the account is now, at a new version, in
    the transaction that changed the account: the next pull of every device whose scope meets
    the user's brings it (docs/sync.md, "Users"). No phone number, no password data."""
    conn = txn.conn
    row = conn.execute(
        select(User.username, User.name, User.role, User.active).where(User.id == user_id)
    ).one()
    assignment = assignment_of(conn, user_id)
    villages = dict(
        conn.execute(
            select(Household.id, Household.village_id).where(
                Household.id.in_(assignment.household_ids)
            )
        ).all()
    )
    reach = [(r, None) for r in assignment.region_ids]
    reach += [(villages.get(h), h) for h in assignment.household_ids]
    data = {"username": row.username, "name": row.name, "role": row.role}
    data["active"] = bool(row.active)
    record = Record("user", user_id, txn.allocate_version(), False, data, reach=tuple(reach))
    if txn.records("user", [user_id]):
        txn.update_records([record])
    else:
        txn.insert_records([record])


def check_password(password: str, *personal: str) -> None:
    """Refuse a password that is short, common or easy to guess, or made of ``personal`` words
    (the username, the name): an online guesser tries those first."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password: at least {MIN_PASSWORD} characters")
    # zxcvbn reads at most 72 characters (its time grows with the length)
    if zxcvbn(password[:72], user_inputs=[p for p in personal if p])["score"] < MIN_PASSWORD_SCORE:
        raise AccountError(
            "password: too easy to guess (a common password, a pattern, a date or your name);"
            " use a longer one, e.g. a few words and digits only you would put together"
        )


def _check_targets(conn: Connection, region_ids: list[str], household_ids: list[str]) -> None:
    found = set(conn.execute(select(Region.id).where(Region.id.in_(region_ids))).scalars())
    missing = sorted(set(region_ids) - found)
    if missing:
        raise AccountError("unknown region: " + ", ".join(missing))
    found = set(conn.execute(select(Household.id).where(Household.id.in_(household_ids))).scalars())
    missing = sorted(set(household_ids) - found)
    if missing:
        raise AccountError("unknown household: " + ", ".join(missing))


def _write_assignment(
    conn: Connection, user_id: str, region_ids: list[str], household_ids: list[str]
) -> None:
    conn.execute(delete(AssignmentRow).where(AssignmentRow.user_id == user_id))
    rows = [{"user_id": user_id, "kind": "region", "target_id": r} for r in set(region_ids)]
    rows += [{"user_id": user_id, "kind": "household", "target_id": h} for h in set(household_ids)]
    if rows:
        conn.execute(insert(AssignmentRow), rows)


def reassign(
    user_id: str, region_ids: list[str], household_ids: list[str], actor: str | None
) -> None:
    """Change what a user covers; their devices pick it up on the next pull (CONTRACT §8)."""
    with store().write() as txn:
        conn = txn.conn
        if conn.execute(select(User.id).where(User.id == user_id)).first() is None:
            raise AccountError("no such user")
        _check_targets(conn, region_ids, household_ids)
        _write_assignment(conn, user_id, region_ids, household_ids)
        audit(
            conn,
            "user_reassigned",
            actor,
            target_type="user",
            target_id=user_id,
            details={"region_ids": region_ids, "household_ids": household_ids},
        )
        publish_user(txn, user_id)
    store().remember_assignment(Assignment.of(region_ids, household_ids))


def _counties(conn: Connection) -> set[str]:
    return set(
        conn.execute(select(Region.id).where(Region.parent_id.is_(None), ~Region.deleted)).scalars()
    )


@contextmanager
def global_admins_keep_every_county(actor: str | None) -> Iterator[None]:
    """A county created in the block is added to every admin who had every county before, so
    that an admin of the whole server stays one (CONTRACT §3) when the server grows."""
    with store().engine.connect() as conn:
        before = _counties(conn)
        admins = conn.execute(select(User.id).where(User.role == "admin")).scalars().all()
        held = {a: assignment_of(conn, a) for a in admins}
    yield
    with store().engine.connect() as conn:
        added = _counties(conn) - before
    for admin_id, given in held.items():
        if added and before <= set(given.region_ids):
            regions = sorted(set(given.region_ids) | added)
            reassign(admin_id, regions, list(given.household_ids), actor)
