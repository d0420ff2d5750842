"""The tables. Synced records share one shape (``SyncedColumns``): the contract's ``data`` as
JSON text, the version that orders every change, and the two keys that decide who sees it;
each table adds the typed columns that reports and look-ups query.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from server.storage.db import db

ID = String(64)


class SyncedColumns:
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, unique=True, nullable=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    village_id: Mapped[str | None] = mapped_column(ID)
    household_id: Mapped[str | None] = mapped_column(ID)
    data: Mapped[str] = mapped_column(Text, nullable=False)


class Region(SyncedColumns, db.Model):
    __tablename__ = "regions"
    parent_id: Mapped[str | None] = mapped_column(ID, index=True)
    level: Mapped[str] = mapped_column(String(16), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    code: Mapped[str | None] = mapped_column(String(20))


class Household(SyncedColumns, db.Model):
    __tablename__ = "households"
    code: Mapped[str | None] = mapped_column(String(40), unique=True)
    category: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")
    visit_policy: Mapped[str] = mapped_column(String(16), nullable=False, default="weekly")
    __table_args__ = (
        Index("ix_households_village_version", "village_id", "version"),
        Index("ix_households_id_version", "household_id", "version"),
        Index(  # reports: the households due, by village, from this index alone
            "ix_households_due", "visit_policy", "status", "deleted", "village_id", "id"
        ),
    )


class Person(SyncedColumns, db.Model):
    __tablename__ = "people"
    __table_args__ = (
        Index("ix_people_village_version", "village_id", "version"),
        Index("ix_people_household_version", "household_id", "version"),
    )


class Visit(SyncedColumns, db.Model):
    """Append-only and the largest table: every index here is paid on each pushed visit, so a
    directly assigned household's visits are pulled through (household_id, time), not a
    (household_id, version) index of their own."""

    __tablename__ = "visits"
    visitor_id: Mapped[str | None] = mapped_column(ID)
    device_id: Mapped[str | None] = mapped_column(ID)
    visited_at_effective: Mapped[datetime] = mapped_column(DateTime, nullable=False)  # UTC
    received_at: Mapped[datetime | None] = mapped_column(DateTime)  # UTC
    voided: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    voided_at: Mapped[datetime | None] = mapped_column(DateTime)  # UTC, when the void arrived
    corrects: Mapped[str | None] = mapped_column(ID)
    __table_args__ = (
        Index("ix_visits_village_version", "village_id", "version"),
        Index("ix_visits_household_time", "household_id", "visited_at_effective"),
        Index("ix_visits_time", "visited_at_effective"),  # as_of reports
        Index(  # reports: is this visit replaced by a correction? (corrections are rare)
            "ix_visits_corrects",
            "corrects",
            sqlite_where=text("corrects IS NOT NULL"),
            postgresql_where=text("corrects IS NOT NULL"),
        ),
    )


class Problem(SyncedColumns, db.Model):
    __tablename__ = "problems"
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    category: Mapped[str | None] = mapped_column(String(40))
    assignee_id: Mapped[str | None] = mapped_column(ID, index=True)
    due_date: Mapped[str | None] = mapped_column(String(10))
    __table_args__ = (
        Index("ix_problems_village_version", "village_id", "version"),
        Index("ix_problems_household_version", "household_id", "version"),
    )


class Measure(SyncedColumns, db.Model):
    __tablename__ = "measures"
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    __table_args__ = (
        Index("ix_measures_village_version", "village_id", "version"),
        Index("ix_measures_household_version", "household_id", "version"),
    )


class Form(SyncedColumns, db.Model):
    __tablename__ = "forms"
    form_id: Mapped[str] = mapped_column(String(64), nullable=False)
    form_version: Mapped[int] = mapped_column(Integer, nullable=False)


class Conflict(SyncedColumns, db.Model):
    __tablename__ = "conflicts"
    record_type: Mapped[str] = mapped_column(String(16), nullable=False)
    record_id: Mapped[str] = mapped_column(ID, nullable=False, index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    __table_args__ = (
        Index("ix_conflicts_village_version", "village_id", "version"),
        Index("ix_conflicts_household_version", "household_id", "version"),
    )


class User(db.Model):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)  # cadre | supervisor | admin
    password_hash: Mapped[str] = mapped_column(String(200), nullable=False)
    phone: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class UserRecord(SyncedColumns, db.Model):
    """A user as phones see them (CONTRACT §4 ``user``): username, name, role and whether they
    are active, written at a new version whenever an account or its assignment changes, so an
    ordinary pull brings it. ``user_reach`` says which devices receive it (sync.store.meets)."""

    __tablename__ = "user_records"


class UserReach(db.Model):
    """One place a user works, for the pull's scope rule: a region assigned to them
    (``household_id`` empty) or a household assigned to them with its village."""

    __tablename__ = "user_reach"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ID, nullable=False, index=True)
    region_id: Mapped[str | None] = mapped_column(ID)
    household_id: Mapped[str | None] = mapped_column(ID)


class Assignment(db.Model):
    """包保: a user is given a region (and what lies below it) or a household."""

    __tablename__ = "assignments"
    user_id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # region | household
    target_id: Mapped[str] = mapped_column(ID, primary_key=True, index=True)


class AssignmentSnapshot(db.Model):
    """Every assignment a cursor was issued for, by fingerprint, to compute scope changes."""

    __tablename__ = "assignment_snapshots"
    fingerprint: Mapped[str] = mapped_column(String(32), primary_key=True)
    region_ids: Mapped[str] = mapped_column(Text, nullable=False)
    household_ids: Mapped[str] = mapped_column(Text, nullable=False)


class Device(db.Model):
    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    user_id: Mapped[str] = mapped_column(ID, nullable=False, index=True)
    label: Mapped[str] = mapped_column(String(100), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_sync_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_by: Mapped[str | None] = mapped_column(ID)
    next_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)
    floor_hlc: Mapped[str] = mapped_column(String(20), nullable=False)
    last_hlc: Mapped[str] = mapped_column(String(20), nullable=False)


class Op(db.Model):
    """The ops log: every acknowledged op, what it carried and what it did (the sync audit)."""

    __tablename__ = "ops"
    device_id: Mapped[str] = mapped_column(ID, primary_key=True)
    device_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    op_id: Mapped[str] = mapped_column(ID, nullable=False, index=True)
    user_id: Mapped[str] = mapped_column(ID, nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    record_id: Mapped[str] = mapped_column(ID, nullable=False)
    hlc: Mapped[str] = mapped_column(String(40), nullable=False)
    effective_hlc: Mapped[str] = mapped_column(String(20), nullable=False)
    base_version: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[str] = mapped_column(Text, nullable=False)  # the op as received
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    version: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    __table_args__ = (
        Index(
            "ix_ops_rejected",
            "received_at",
            sqlite_where=text("status = 'rejected'"),
            postgresql_where=text("status = 'rejected'"),
        ),
        #: a problem's history (migration 0012); a visit's op is not in it
        Index(
            "ix_ops_problem",
            "record_id",
            sqlite_where=text("type = 'problem'"),
            postgresql_where=text("type = 'problem'"),
        ),
    )


class FieldWrite(db.Model):
    __tablename__ = "field_writes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    record_type: Mapped[str] = mapped_column(String(16), nullable=False)
    record_id: Mapped[str] = mapped_column(ID, nullable=False)
    field: Mapped[str] = mapped_column(String(64), nullable=False)
    op_id: Mapped[str] = mapped_column(ID, nullable=False)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False)
    base_version: Mapped[int] = mapped_column(BigInteger, nullable=False)
    device_id: Mapped[str] = mapped_column(ID, nullable=False)
    device_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    hlc: Mapped[str] = mapped_column(String(20), nullable=False)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    user_id: Mapped[str | None] = mapped_column(ID)
    __table_args__ = (Index("ix_field_writes_record", "record_type", "record_id"),)


class Counter(db.Model):
    """``version``: the one server-wide sequence; its row lock orders commits on PostgreSQL."""

    __tablename__ = "counters"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, nullable=False)


class AuditEntry(db.Model):
    """Who changed what, and when, but for the changes phones sync: their ops are their audit,
    and the view ``audit_trail`` reads both (migration 0013). Ids are handed out as entries
    are written, so the newest entries have the highest: ``id`` is indexed, ``at`` is not."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    user_id: Mapped[str | None] = mapped_column(ID)
    device_id: Mapped[str | None] = mapped_column(ID)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(ID)
    details: Mapped[str | None] = mapped_column(Text)
    __table_args__ = (
        #: a problem's escalations and relayed changes (migration 0012); a visit is not in it
        Index(
            "ix_audit_log_problem",
            "target_id",
            sqlite_where=text("target_type = 'problem'"),
            postgresql_where=text("target_type = 'problem'"),
        ),
    )


class LoginAttempt(db.Model):
    """Written by releases before migration 0007 only: kept for a rolling restart (the old
    release still writes it); drop it in a later migration."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), nullable=False)
    ip: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )


class LoginLimit(db.Model):
    """Sign-in attempts counted for one address and username, for one username (``ip`` empty)
    or for one address (``username`` empty); server/auth.py counts an attempt before its
    password is checked, and takes it back when the password was right."""

    __tablename__ = "login_limits"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    ip: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    failures: Mapped[int] = mapped_column(Integer, nullable=False)
    last_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    trusted_until: Mapped[datetime | None] = mapped_column(DateTime)


class JobRun(db.Model):
    """One row per scheduled job: its last run, and the lock that keeps it to one process."""

    __tablename__ = "job_runs"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_started_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_status: Mapped[str | None] = mapped_column(String(16))  # ok | failed | running
    last_message: Mapped[str | None] = mapped_column(Text)
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime)
    lock_owner: Mapped[str | None] = mapped_column(String(100))
    lock_expires_at: Mapped[datetime | None] = mapped_column(DateTime)


class NoticeChannel(db.Model):
    """Where a region's notices go (server/notices, docs/admin.md): a WeCom or DingTalk group
    robot, or e-mail; one of each kind per county or township. ``target`` is the webhook URL or
    the e-mail recipients; it and ``secret`` are never shown back whole."""

    __tablename__ = "notice_channels"
    region_id: Mapped[str] = mapped_column(ID, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)  # wecom | dingtalk | email
    target: Mapped[str] = mapped_column(Text, nullable=False)
    secret: Mapped[str | None] = mapped_column(Text)
    jobs: Mapped[str] = mapped_column(Text, nullable=False)  # JSON list of job names
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    updated_by: Mapped[str | None] = mapped_column(ID)


class NoticeDelivery(db.Model):
    """One message of a job to one channel, and what became of it: the queue the job
    ``notice_delivery`` works through, and the record the jobs view shows (docs/jobs.md)."""

    __tablename__ = "notice_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    region_id: Mapped[str] = mapped_column(ID, nullable=False)
    channel: Mapped[str] = mapped_column(String(16), nullable=False)
    job: Mapped[str] = mapped_column(String(64), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)  # queued retrying sent failed
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, index=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    __table_args__ = (Index("ix_notice_deliveries_due", "status", "next_attempt_at"),)


class HouseholdPeriod(db.Model):
    """Which households were visited in which period: one row per (period, household) with a
    visit that counts now, for the weekly (ISO week) and the monthly period of each visit in
    the server's TIMEZONE. Derived from the visits and kept up by server/summary.py; the
    reports read it instead of a period's visits (docs/reports.md, Speed)."""

    __tablename__ = "household_periods"
    period: Mapped[str] = mapped_column(String(10), primary_key=True)
    household_id: Mapped[str] = mapped_column(ID, primary_key=True)
    village_id: Mapped[str | None] = mapped_column(ID)
    visits: Mapped[int] = mapped_column(Integer, nullable=False)
    first_received: Mapped[datetime] = mapped_column(DateTime, nullable=False)  # UTC
    last_received: Mapped[datetime] = mapped_column(DateTime, nullable=False)  # UTC
    received: Mapped[str] = mapped_column(Text, nullable=False)  # every arrival, see summary.py
    __table_args__ = {"sqlite_with_rowid": False}  # stored in key order: a period is one range


class Snapshot(db.Model):
    """A report as it was computed at a moment (weekly bulletin, coverage snapshot)."""

    __tablename__ = "snapshots"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    period: Mapped[str] = mapped_column(String(10), nullable=False)
    region_id: Mapped[str | None] = mapped_column(ID)
    taken_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    data: Mapped[str] = mapped_column(Text, nullable=False)
    __table_args__ = (Index("ix_snapshots_kind_period", "kind", "period", "region_id"),)


class Setting(db.Model):
    """A setting an admin changes at run time (the visit policy), as JSON; it overrides the
    configuration value of the same meaning."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    updated_by: Mapped[str | None] = mapped_column(ID)


class Blob(db.Model):
    """A photo, stored by the SHA-256 of its bytes (CONTRACT §11)."""

    __tablename__ = "blobs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    #: the bytes when the database is their store (server/storage/blobstore.py), else NULL
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    created_by: Mapped[str | None] = mapped_column(ID)
    #: the device that uploaded it: its upload budget is counted from here (blobs_api)
    device_id: Mapped[str | None] = mapped_column(ID)
    __table_args__ = (Index("ix_blobs_device_created", "device_id", "created_at"),)


class BlobRef(db.Model):
    """Which visit refers to which photo: who may fetch a photo follows who may see the visit."""

    __tablename__ = "blob_refs"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    visit_id: Mapped[str] = mapped_column(ID, primary_key=True)


SYNCED_MODELS = {
    "region": Region,
    "household": Household,
    "person": Person,
    "visit": Visit,
    "problem": Problem,
    "measure": Measure,
    "form": Form,
    "conflict": Conflict,
    "user": UserRecord,
}
