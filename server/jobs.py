"""Scheduled jobs, configured in one place: the ``JOBS`` table (docs/jobs.md).

Every worker process of ``zoufang serve`` runs an APScheduler, but a job runs in one process
only: a run starts by claiming the job's ``job_runs`` row with one conditional UPDATE (its lock
is free or expired and, for a scheduled run, this fire time has not been started yet), which
SQLite and PostgreSQL both apply atomically. A job whose fire time passed while no server ran
runs once when a scheduler starts (``JobScheduler.catch_up``). Every run is recorded in its
row and logged; a failing job is recorded as failed and never stops the scheduler.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from flask import Flask, current_app
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from server.auth import token_age_cutoff, token_expiry_cutoff
from server.http import blobs_api
from server.notices import notify
from server.notices import queue as notices_queue
from server.reports import bulletins, exports, problems, province, summary
from server.reports import coverage as reports
from server.reports.periods import week_label
from server.service import SERVER_DEVICE, audit, store
from server.storage.db import writing
from server.storage.models import Device, JobRun, LoginLimit, Region, Snapshot
from server.storage.store import dumps
from server.timeutil import now, utcnow

log = logging.getLogger(__name__)

BACKUP_RETENTION = 14  # the default of ZOUFANG_BACKUP_RETENTION
BACKUP_NAME = re.compile(r"^zoufang-\d{8}-\d{4}\.db$")
LOGIN_ATTEMPTS_KEPT = timedelta(days=1)
#: how far back catch-up looks for a missed fire time: longer than the longest period
CATCH_UP_HORIZON = timedelta(days=35)


@dataclass(frozen=True)
class Job:
    """A scheduled job: ``run`` gets the local time it runs at and returns a short result."""

    name: str
    cron: dict[str, str | int]  # CronTrigger fields, in the app's TIMEZONE
    run: Callable[[datetime], str]
    description_zh: str
    description_en: str
    lock_for: timedelta = timedelta(hours=1)

    def trigger(self, timezone: str) -> CronTrigger:
        return CronTrigger(timezone=ZoneInfo(timezone), **self.cron)

    @property
    def schedule(self) -> str:
        """The cron fields as a crontab line: minute hour day month weekday."""
        c = self.cron
        return f"{c.get('minute', '*')} {c.get('hour', '*')} * * {c.get('day_of_week', '*')}"


@dataclass(frozen=True)
class RunResult:
    """What asking for a run did: ``ok`` or ``failed`` when it ran here; ``locked`` when
    another process holds the job; ``done`` when this fire time was run already."""

    name: str
    status: str
    message: str


class UnknownJob(LookupError):
    """No job has this name."""


# --- the jobs ---------------------------------------------------------------------------


def weekly_bulletin(at: datetime) -> str:
    """每周通报: coverage of the ISO week that ended last Sunday for the county and each
    township, kept as a snapshot (the figures as reported) and as the Excel bulletin; the
    county's figures also as the snapshot its province adds up (server/reports/province.py)."""
    period = week_label(at.date() - timedelta(days=at.isoweekday()))  # ended last Sunday
    folder = bulletins.folder()
    folder.mkdir(parents=True, exist_ok=True)
    regions = _bulletin_regions()
    due = visited = 0
    coverages = {}
    for region in regions:
        coverage = coverages[region.id] = reports.coverage(period, region.id)
        _keep_snapshot("bulletin", period, region.id, coverage)
        if region.level == "county":
            _keep_snapshot(province.KIND, period, region.id, province.county_snapshot(coverage))
        _write_atomically(
            folder / bulletins.file_name(period, region),
            exports.weekly_bulletin_xlsx(period, region.id),
        )
        if region.level != "township":
            due += coverage["summary"]["due"]
            visited += coverage["summary"]["visited"]
    townships = sum(1 for region in regions if region.level == "township")
    rate = f"{100 * visited / due:.1f}%" if due else "—"
    queued = notify.bulletin(period, coverages)
    return f"{period}: {townships} 个乡镇, 覆盖率 {rate}" + _notices(queued)


def overdue_digest(at: datetime) -> str:
    """日查岗: each township's overdue households of the day, kept as a snapshot."""
    today = at.date()
    regions = _bulletin_regions()
    townships = [r for r in regions if r.level == "township"]
    total = 0
    lists = {}
    for township in townships:
        households = lists[township.id] = reports.overdue(township.id, today=today)
        total += len(households)
        digest = {
            "date": today.isoformat(),
            "region": {"id": township.id, "name": township.name, "level": township.level},
            "count": len(households),
            "households": households,
        }
        _keep_snapshot("overdue_digest", today.isoformat(), township.id, digest)
    queued = notify.overdue(today, regions, lists)
    return f"{today.isoformat()}: {len(townships)} 个乡镇, 逾期 {total} 户" + _notices(queued)


def problem_escalation(at: datetime) -> str:
    """督办: problems past their due date move up to the supervisors."""
    escalated = problems.escalate_overdue(at.date())
    queued = notify.escalations(at.date(), escalated)
    return f"{at.date().isoformat()}: 升级 {len(escalated)} 个逾期问题" + _notices(queued)


def notice_delivery(at: datetime) -> str:
    """Send the notices the jobs above queued, and retry those that failed (server/notices):
    every minute, so that no job waits on a webhook or a mail server."""
    return notices_queue.deliver_due()


def _notices(queued: int) -> str:
    return f", 待发通知 {queued} 条" if queued else ""


def sqlite_backup(at: datetime) -> str:
    """A consistent copy of the SQLite database taken while the server writes; the newest
    ``BACKUP_RETENTION`` copies are kept. PostgreSQL is backed up with its own tools."""
    engine = store().engine
    if engine.dialect.name != "sqlite":
        return "skipped: use pg_dump (docs/deploy)"
    source = engine.url.database
    if not source or source == ":memory:":
        return "skipped: in-memory database"
    folder = Path(current_app.instance_path) / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    for leftover in folder.glob("zoufang-*.part"):  # from a run that died; we hold the lock
        leftover.unlink()
    target = folder / f"zoufang-{at:%Y%m%d-%H%M}.db"
    partial = target.with_suffix(".part")
    _copy_sqlite(source, partial)
    os.replace(partial, target)
    kept = _prune_backups(folder, _backup_retention())
    return f"{target.name} ({target.stat().st_size / 1e6:.1f} MB), 保留 {kept} 份"


def token_purge(at: datetime) -> str:
    """Revoke device tokens unused for ``TOKEN_TTL_DAYS`` or older than ``TOKEN_MAX_AGE_DAYS``
    (the API refuses them already) and forget sign-in counters untouched for a day (but an
    address a user is trusted from)."""
    cutoff = token_expiry_cutoff()
    last_used = func.coalesce(Device.last_seen_at, Device.created_at)
    expired = or_(last_used < cutoff, Device.created_at < token_age_cutoff())
    expiring = [Device.revoked_at.is_(None), Device.id != SERVER_DEVICE, expired]
    revoked = 0
    with writing(store().engine) as conn:
        candidates = conn.execute(
            select(Device.id, Device.user_id, last_used.label("last_used")).where(*expiring)
        ).all()
        for device in candidates:
            # revoked_by stays empty: expired, not revoked by someone (auth.current_caller)
            changed = conn.execute(
                update(Device).where(Device.id == device.id, *expiring).values(revoked_at=utcnow())
            ).rowcount
            if changed:
                revoked += 1
                details = {"user_id": device.user_id, "last_used": device.last_used.isoformat()}
                audit(conn, "device_expired", None, None, "device", device.id, details)
        untrusted = or_(LoginLimit.trusted_until.is_(None), LoginLimit.trusted_until < utcnow())
        forgotten = conn.execute(
            delete(LoginLimit).where(LoginLimit.last_at < utcnow() - LOGIN_ATTEMPTS_KEPT, untrusted)
        ).rowcount
    return f"停用 {revoked} 台过期设备, 清理 {forgotten} 条登录失败记录"


def visit_summary(at: datetime) -> str:
    """Bring household_periods up to the newest visit (server/summary.py): the reports
    catch up themselves only when few visits wait."""
    read = summary.catch_up(store().engine, ZoneInfo(current_app.config["TIMEZONE"]))
    return f"汇总 {read} 条走访"


def photo_cleanup(at: datetime) -> str:
    """Delete photos no visit refers to, ``PHOTO_GRACE_DAYS`` after their upload. A phone
    sends a visit before its photos, but a photo may still arrive first (its visit's push
    failed and waits for a retry): it waits that long for its visit."""
    grace = timedelta(days=int(current_app.config["PHOTO_GRACE_DAYS"]))
    deleted, size = blobs_api.delete_unreferenced(utcnow() - grace)
    return f"删除 {deleted} 张无走访引用的照片 ({size / 1e6:.1f} MB)"


JOBS: tuple[Job, ...] = (
    Job(
        "weekly_bulletin",
        {"day_of_week": "mon", "hour": 8, "minute": 0},
        weekly_bulletin,
        "每周覆盖率通报：县和各乡镇上周走访覆盖率存档，生成 Excel 通报",
        "Weekly coverage bulletin: last week's coverage of the county and each township, "
        "kept as a snapshot and an Excel file",
    ),
    Job(
        "overdue_digest",
        {"hour": 7, "minute": 30},
        overdue_digest,
        "每日逾期清单：各乡镇逾期未走访的农户",
        "Daily overdue digest: each township's overdue households",
    ),
    Job(
        "problem_escalation",
        {"hour": 7, "minute": 45},
        problem_escalation,
        "问题督办：逾期未解决的问题升级",
        "Problem escalation: problems past their due date are escalated",
    ),
    Job(
        "notice_delivery",
        {"minute": "*"},
        notice_delivery,
        "发送通知：逾期提醒、督办和通报发到企业微信、钉钉群和邮箱，失败重试",
        "Notice delivery: bulletins, overdue digests and escalations to WeCom, DingTalk and "
        "e-mail, retried after a failure",
        lock_for=timedelta(minutes=30),
    ),
    Job(
        "sqlite_backup",
        {"hour": 2, "minute": 30},
        sqlite_backup,
        "数据库夜间备份（SQLite），保留最近 14 份",
        "Nightly database backup (SQLite), the newest 14 kept",
    ),
    Job(
        "visit_summary",
        {"minute": "*/5"},
        visit_summary,
        "走访汇总：把新同步的走访计入覆盖率汇总表（每 5 分钟）",
        "Visit summary: new visits are added to the coverage summary (every 5 minutes)",
        lock_for=timedelta(minutes=30),
    ),
    Job(
        "token_purge",
        {"hour": 3, "minute": 0},
        token_purge,
        "清理过期设备令牌和登录失败记录",
        "Purge expired device tokens and old failed sign-ins",
    ),
    Job(
        "photo_cleanup",
        {"hour": 3, "minute": 15},
        photo_cleanup,
        "清理无走访引用的照片（默认上传 30 天后）",
        "Delete photos no visit refers to, 30 days (by default) after their upload",
    ),
)


# --- running a job once, under the database lock ------------------------------------------


def job_named(name: str, jobs: Iterable[Job] = JOBS) -> Job:
    for job in jobs:
        if job.name == name:
            return job
    raise UnknownJob(name)


def run_job(job: Job, owner: str, due: datetime | None = None) -> RunResult:
    """Run ``job`` here if ``owner`` can claim it. ``due``, for a scheduled run, is the fire
    time (naive UTC) it answers, so that fire time runs once in the whole deployment."""
    claim = _claim(job, owner, due)
    if claim != "claimed":
        log.info("job %s not run by %s: %s", job.name, owner, claim)
        return RunResult(job.name, claim, "")
    log.info("job %s started by %s", job.name, owner)
    try:
        status, message = "ok", job.run(local_now())
    except Exception as exc:
        log.exception("job %s failed", job.name)
        status, message = "failed", f"{type(exc).__name__}: {exc}"
    _finish(job, owner, status, message)
    log.info("job %s %s: %s", job.name, status, message)
    return RunResult(job.name, status, message)


def run_now(name: str, user_id: str | None = None, device_id: str | None = None) -> RunResult:
    """A run asked for by a person (dashboard, command line), whatever the schedule."""
    job = job_named(name)
    ensure_rows([job])
    result = run_job(job, f"{process_id()}:manual")
    with writing(store().engine) as conn:
        audit(conn, "job_run", user_id, device_id, "job", name, {"status": result.status})
    return result


def job_statuses() -> list[dict[str, Any]]:
    """Each job with its schedule and its last run, for the dashboard and ``zoufang jobs list``."""
    timezone = current_app.config["TIMEZONE"]
    zone = ZoneInfo(timezone)
    with store().engine.connect() as conn:
        rows = {row.name: row for row in conn.execute(select(JobRun)).all()}
    at = utcnow()
    statuses = []
    for job in JOBS:
        row = rows.get(job.name)
        status = row.last_status if row else None
        if status == "running" and not (row.lock_expires_at and row.lock_expires_at > at):
            status = "interrupted"  # its process died: the lock expired with no result
        next_run = row.next_run_at if row and row.next_run_at else _next_fire(job, timezone)
        statuses.append(
            {
                "name": job.name,
                "description": {"zh-CN": job.description_zh, "en": job.description_en},
                "schedule": job.schedule,
                "timezone": timezone,
                "last_status": status,
                "last_message": row.last_message if row else None,
                "last_started_at": reports.local_iso(row.last_started_at if row else None, zone),
                "last_finished_at": reports.local_iso(row.last_finished_at if row else None, zone),
                "next_run_at": reports.local_iso(next_run, zone),
            }
        )
    return statuses


def ensure_rows(jobs: Iterable[Job]) -> None:
    """A ``job_runs`` row for each job, so that claiming it is one UPDATE."""
    with store().engine.connect() as conn:
        known = set(conn.execute(select(JobRun.name)).scalars())
    timezone = current_app.config["TIMEZONE"]
    for job in jobs:
        if job.name in known:
            continue
        try:
            with writing(store().engine) as conn:
                conn.execute(
                    insert(JobRun).values(name=job.name, next_run_at=_next_fire(job, timezone))
                )
        except IntegrityError:
            log.debug("job %s: row inserted by another process", job.name)


def _claim(job: Job, owner: str, due: datetime | None) -> str:
    """Take the job's lock in one conditional UPDATE: 'claimed', or 'locked' or 'done'."""
    at = utcnow()
    conditions = [
        JobRun.name == job.name,
        or_(JobRun.lock_expires_at.is_(None), JobRun.lock_expires_at < at),
    ]
    if due is not None:
        conditions.append(or_(JobRun.last_started_at.is_(None), JobRun.last_started_at < due))
    with writing(store().engine) as conn:
        claimed = conn.execute(
            update(JobRun)
            .where(*conditions)
            .values(
                lock_owner=owner[:100],
                lock_expires_at=at + job.lock_for,
                last_started_at=at,
                last_status="running",
                last_message=None,
            )
        ).rowcount
        if claimed == 1:
            return "claimed"
        lock_expires_at = conn.execute(
            select(JobRun.lock_expires_at).where(JobRun.name == job.name)
        ).scalar_one()
    held = lock_expires_at is not None and lock_expires_at >= at
    return "locked" if held or due is None else "done"


def _finish(job: Job, owner: str, status: str, message: str) -> None:
    with writing(store().engine) as conn:
        recorded = conn.execute(
            update(JobRun)
            .where(JobRun.name == job.name, JobRun.lock_owner == owner[:100])
            .values(
                last_finished_at=utcnow(),
                last_status=status,
                last_message=message[:1000],
                next_run_at=_next_fire(job, current_app.config["TIMEZONE"]),
                lock_owner=None,
                lock_expires_at=None,
            )
        ).rowcount
    if not recorded:
        log.error(
            "job %s outlived its lock (%s): its result is not recorded", job.name, job.lock_for
        )


# --- the scheduler of one process ---------------------------------------------------------


class JobScheduler:
    """The jobs of one process: APScheduler fires them, the database lock picks one runner."""

    def __init__(self, app: Flask, jobs: Sequence[Job] = JOBS) -> None:
        self.app = app
        self.jobs = tuple(jobs)
        self.timezone: str = app.config["TIMEZONE"]
        # with ZOUFANG_COUNTIES a process runs a scheduler per county: the logs name it
        county = f"{app.config['COUNTY']}:" if app.config.get("COUNTY") else ""
        self.owner = f"{process_id()}:{county}{uuid.uuid4().hex[:8]}"
        self.scheduler = BackgroundScheduler(timezone=ZoneInfo(self.timezone))

    def start(self, paused: bool = False) -> None:
        """Schedule every job and, first of all, the catch-up of those missed while down.
        Nothing here touches the database: a database that is down must not stop a worker
        from booting; the scheduler's thread meets it, logs it and goes on."""
        for job in self.jobs:
            self.scheduler.add_job(
                self.run_due,
                job.trigger(self.timezone),
                args=[job.name],
                id=job.name,
                name=job.description_en,
                coalesce=True,
                max_instances=1,
                misfire_grace_time=None,  # late is better than never; the claim keeps it once
            )
        # however late this process's threads get to it (a worker starting the schedulers
        # of a hundred counties), the catch-up runs: APScheduler drops a fire 1 s late
        self.scheduler.add_job(
            self.catch_up, id="catch_up", name="catch up missed jobs", misfire_grace_time=None
        )
        self.scheduler.start(paused=paused)
        log.info("scheduler %s started: %s", self.owner, ", ".join(j.name for j in self.jobs))

    def shutdown(self) -> None:
        self.scheduler.shutdown(wait=False)

    def run_due(self, name: str) -> RunResult | None:
        """A job's scheduled fire: run it unless another process has run this fire time."""
        job = job_named(name, self.jobs)
        with self.app.app_context():
            due = previous_fire_time(job.trigger(self.timezone), now())
            if due is None:
                return None
            return self._guarded(job, due)

    def catch_up(self) -> list[RunResult]:
        """Run once each job whose latest fire time passed with no run since (docs/jobs.md)."""
        results = []
        with self.app.app_context():
            ensure_rows(self.jobs)
            at = now()
            with store().engine.connect() as conn:
                rows = {row.name: row for row in conn.execute(select(JobRun)).all()}
            for job in self.jobs:
                due = previous_fire_time(job.trigger(self.timezone), at)
                row = rows.get(job.name)
                if due is not None and row is not None and missed(row, naive_utc(due)):
                    log.warning("job %s missed its run at %s: running it now", job.name, due)
                    result = self._guarded(job, due)
                    if result is not None:
                        results.append(result)
                elif row is not None:
                    _set_next_run(job, self.timezone)
        return results

    def _guarded(self, job: Job, due: datetime) -> RunResult | None:
        """run_job, with a database failure (claim or record) logged, not raised: APScheduler's
        thread must go on to the next fire."""
        try:
            ensure_rows([job])
            return run_job(job, self.owner, naive_utc(due))
        except Exception:
            log.exception("job %s could not be run or recorded", job.name)
            return None


def start_scheduler(app: Flask) -> JobScheduler:
    """Start this process's scheduler (``zoufang serve`` calls it in each worker after fork)."""
    scheduler = JobScheduler(app)
    scheduler.start()
    app.extensions["zoufang_scheduler"] = scheduler
    return scheduler


def missed(row: Any, due: datetime) -> bool:
    """A fire time ``due`` was missed when no run started since it. A job never run counts
    from the first fire time the scheduler recorded for it, so a new install runs nothing."""
    if row.last_started_at is not None:
        return bool(row.last_started_at < due)
    return row.next_run_at is not None and row.next_run_at <= due


def previous_fire_time(
    trigger: CronTrigger, at: datetime, horizon: timedelta = CATCH_UP_HORIZON
) -> datetime | None:
    """The latest fire time at or before ``at`` (APScheduler 3 triggers only look forward).

    Looked for in windows growing back from ``at`` (an hour, a day, 24 days, the horizon):
    a job of every minute is found among an hour's 60 fire times instead of walking the 50,000
    of 35 days, on every fire of every county's scheduler."""
    window = timedelta(hours=1)
    while True:
        window = min(window, horizon)
        latest = None
        fire = trigger.get_next_fire_time(None, at - window)
        while fire is not None and fire <= at:
            latest = fire
            fire = trigger.get_next_fire_time(fire, fire)
        if latest is not None or window == horizon:
            return latest
        window *= 24


# --- helpers ------------------------------------------------------------------------------


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def local_now() -> datetime:
    return now().astimezone(ZoneInfo(current_app.config["TIMEZONE"]))


def naive_utc(value: datetime) -> datetime:
    """An aware time as the naive UTC the DateTime columns hold."""
    return value.astimezone(UTC).replace(tzinfo=None)


def _next_fire(job: Job, timezone: str) -> datetime | None:
    """The first fire time strictly after now (naive UTC)."""
    fire = job.trigger(timezone).get_next_fire_time(None, now() + timedelta(microseconds=1))
    return naive_utc(fire) if fire else None


def _set_next_run(job: Job, timezone: str) -> None:
    with writing(store().engine) as conn:
        conn.execute(
            update(JobRun)
            .where(JobRun.name == job.name)
            .values(next_run_at=_next_fire(job, timezone))
        )


def _bulletin_regions() -> list[Any]:
    """The county (every root region but a province, and every county under one) and each
    township, each once, counties first. A province's figures are its counties' snapshots;
    a province over county databases has no county of its own (its counties' jobs keep them)."""
    if current_app.extensions.get(province.COUNTY_DATABASES) is not None:
        return []
    columns = (Region.id, Region.parent_id, Region.level, Region.name, Region.code)
    root = and_(Region.parent_id.is_(None), Region.level != province.LEVEL)
    wanted = or_(root, Region.level.in_(("county", "township")))
    with store().engine.connect() as conn:
        rows = conn.execute(
            select(*columns)
            .where(~Region.deleted, wanted)
            .order_by(Region.level == "township", Region.code, Region.name)
        ).all()
    return rows


def _keep_snapshot(kind: str, period: str, region_id: str, data: Any) -> None:
    """A report as computed now. A re-run adds one and never replaces: the first bulletin of
    a week is the line after which reports count visits as late (reports.bulletin_time)."""
    with writing(store().engine) as conn:
        conn.execute(
            insert(Snapshot).values(
                kind=kind, period=period, region_id=region_id, taken_at=utcnow(), data=dumps(data)
            )
        )


def _write_atomically(path: Path, content: bytes) -> None:
    """Readers see the old file or the new one, never half of one."""
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(content)
    os.replace(partial, path)


def _copy_sqlite(source: str, target: Path) -> None:
    """sqlite3's online backup in one step: one read transaction, so the copy is a consistent
    state of the database while the server goes on writing (WAL lets it)."""
    target.unlink(missing_ok=True)
    with (
        contextlib.closing(sqlite3.connect(source, timeout=30)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        check = dst.execute("PRAGMA quick_check").fetchone()[0]
    if check != "ok":
        target.unlink()
        raise RuntimeError(f"the backup copy failed its check: {check}")


def _backup_retention() -> int:
    keep = int(current_app.config.get("BACKUP_RETENTION", BACKUP_RETENTION))
    if keep < 1:
        raise ValueError("ZOUFANG_BACKUP_RETENTION must be at least 1")
    return keep


def _prune_backups(folder: Path, keep: int) -> int:
    """Delete all but the newest ``keep`` backups (their names sort by time); how many remain."""
    backups = sorted(p for p in folder.iterdir() if BACKUP_NAME.match(p.name))
    for old in backups[:-keep]:
        old.unlink()
    return min(len(backups), keep)
