"""Scheduled jobs (server/jobs.py, docs/jobs.md), driven by a fake clock: no test waits for a
schedule; each calls the scheduler's run and catch-up functions as APScheduler would."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select, update

from server.cli import main
from server.jobs import (
    JOBS,
    Job,
    JobScheduler,
    ensure_rows,
    job_named,
    job_statuses,
    previous_fire_time,
    run_now,
)
from server.service import store
from server.storage.db import db
from server.storage.models import AuditEntry, Device, JobRun, LoginLimit, Problem, Snapshot
from tests.conftest import app_for, sql_engine
from tests.county import uid

NAMES = [job.name for job in JOBS]


class FakeClock:
    """``app.config["CLOCK"]``: a settable now, given in local time (Asia/Shanghai)."""

    def __init__(self, local: str) -> None:
        self.at = datetime.fromisoformat(local).astimezone(UTC)

    def __call__(self) -> datetime:
        return self.at

    def set(self, local: str) -> None:
        self.at = datetime.fromisoformat(local).astimezone(UTC)

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def use_clock(*apps, local="2026-11-25T12:00:00+08:00"):
    clock = FakeClock(local)
    for app in apps:
        app.config["CLOCK"] = clock
    return clock


def counting_job(name="count", cron=None, block=None):
    """A job that records each run; ``block`` (started, release) holds it inside its run."""
    calls = []

    def run(at):
        calls.append(at)
        if block:
            started, release = block
            started.set()
            assert release.wait(10), "the test never released the job"
        return f"run {len(calls)}"

    return Job(name, cron or {"hour": 7, "minute": 30}, run, "测试", "test"), calls


@pytest.fixture
def other_app(any_app, tmp_path):
    """A second server process on the same database (its own engine and connections)."""
    app = app_for(any_app.config["DATABASE_URL"], tmp_path / "other")
    yield app
    with app.app_context():
        db.engine.dispose()


def prepared(*schedulers):
    """Schedulers after their first start: the catch-up made the job rows and ran nothing."""
    for scheduler in schedulers:
        assert scheduler.catch_up() == []
    return schedulers


def snapshots(app, kind):
    with app.app_context(), store().engine.connect() as conn:
        rows = conn.execute(select(Snapshot).where(Snapshot.kind == kind).order_by(Snapshot.id))
        return [(r.period, r.region_id, json.loads(r.data)) for r in rows]


def visit_week_48(county, clock):
    """Visits on Tuesday 2026-11-24 to h1 (东河镇) and h5 (西岭镇); 5 households are due."""
    clock.set("2026-11-24T12:00:00+08:00")
    for username, household in (("cadre_a", "h1"), ("cadre_c", "h5")):
        device = county.device(username)
        visit = device.visit(county.households[household])
        assert device.push([visit], device_time=clock().isoformat()).status_code == 200


def job_row(app, name):
    with app.app_context(), store().engine.connect() as conn:
        return conn.execute(select(JobRun).where(JobRun.name == name)).one()


# --- the schedule --------------------------------------------------------------------------


def test_each_job_fires_at_its_hour_in_the_configured_timezone(app):
    wednesday_noon = datetime.fromisoformat("2026-11-25T12:00:00+08:00")
    next_fire = {
        job.name: job.trigger(app.config["TIMEZONE"]).get_next_fire_time(None, wednesday_noon)
        for job in JOBS
    }
    assert {name: fire.isoformat() for name, fire in next_fire.items()} == {
        "weekly_bulletin": "2026-11-30T08:00:00+08:00",
        "overdue_digest": "2026-11-26T07:30:00+08:00",
        "problem_escalation": "2026-11-26T07:45:00+08:00",
        "notice_delivery": "2026-11-25T12:00:00+08:00",
        "sqlite_backup": "2026-11-26T02:30:00+08:00",
        "visit_summary": "2026-11-25T12:00:00+08:00",
        "token_purge": "2026-11-26T03:00:00+08:00",
        "photo_cleanup": "2026-11-26T03:15:00+08:00",
    }


def test_the_previous_fire_time_is_the_latest_at_or_before_now():
    weekly = JOBS[0].trigger("Asia/Shanghai")
    at_fire = datetime.fromisoformat("2026-11-30T08:00:00+08:00")
    assert previous_fire_time(weekly, at_fire) == at_fire
    assert previous_fire_time(weekly, at_fire - timedelta(seconds=1)) == at_fire - timedelta(7)


def walked_back(trigger, at, horizon):
    """Every fire time of the horizon, walked forward: the slow, obvious answer."""
    latest, fire = None, trigger.get_next_fire_time(None, at - horizon)
    while fire is not None and fire <= at:
        latest, fire = fire, trigger.get_next_fire_time(fire, fire)
    return latest


@pytest.mark.parametrize("job", JOBS, ids=NAMES)
def test_the_previous_fire_time_is_what_walking_the_whole_horizon_finds(job):
    trigger = job.trigger("Asia/Shanghai")
    # long enough for a weekly job; the walk of a minute job's fire times is slow to check
    horizon = timedelta(days=8 if "day_of_week" in job.cron else 2)
    for local in (
        "2026-11-30T08:00:00",
        "2026-11-30T07:59:59",
        "2026-11-25T12:34:56",
        "2026-12-01T00:00:00",
        "2026-11-23T07:29:59",
        "2026-11-26T03:00:00.000001",
    ):
        at = datetime.fromisoformat(local + "+08:00")
        expected = walked_back(trigger, at, horizon)
        assert previous_fire_time(trigger, at, horizon) == expected, local


def test_no_previous_fire_time_within_a_short_horizon_is_none():
    weekly = JOBS[0].trigger("Asia/Shanghai")
    wednesday = datetime.fromisoformat("2026-11-25T12:00:00+08:00")
    assert previous_fire_time(weekly, wednesday, horizon=timedelta(days=1)) is None


def test_the_catch_up_runs_however_late_the_scheduler_gets_to_it(app):
    """A worker starting the schedulers of many counties reaches each one's catch-up late."""
    scheduler = JobScheduler(app)
    scheduler.start(paused=True)
    try:
        time.sleep(1.5)  # APScheduler's default grace: a fire 1 s late is dropped
        scheduler.scheduler.resume()
        for _ in range(100):
            with app.app_context(), store().engine.connect() as conn:
                rows = conn.execute(select(JobRun.name)).scalars().all()
            if len(rows) == len(NAMES):
                break
            time.sleep(0.1)
    finally:
        scheduler.shutdown()
    assert sorted(rows) == sorted(NAMES)


def test_starting_the_scheduler_registers_every_job_and_the_catch_up(app):
    scheduler = JobScheduler(app)
    scheduler.start(paused=True)
    try:
        registered = {job.id for job in scheduler.scheduler.get_jobs()}
    finally:
        scheduler.shutdown()
    assert registered == {*NAMES, "catch_up"}


def test_the_first_catch_up_records_each_jobs_next_run(app):
    use_clock(app)
    prepared(JobScheduler(app))
    assert job_row(app, "token_purge").next_run_at == datetime(2026, 11, 25, 19, 0)  # 03:00 +8


# --- one run in the deployment: the database lock --------------------------------------------


def test_two_schedulers_racing_for_the_same_fire_run_it_once(any_app, other_app):
    clock = use_clock(any_app, other_app, local="2026-11-23T07:30:01+08:00")
    job, calls = counting_job()
    first, second = prepared(JobScheduler(any_app, [job]), JobScheduler(other_app, [job]))
    for day in range(4):
        barrier = threading.Barrier(2)
        results = {}

        def fire(scheduler, barrier=barrier, results=results):
            barrier.wait()
            results[scheduler.owner] = scheduler.run_due("count").status

        threads = [threading.Thread(target=fire, args=(s,)) for s in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results.values())[-1] == "ok" and list(results.values()).count("ok") == 1
        assert len(calls) == day + 1
        clock.advance(days=1)


def test_a_running_job_holds_its_lock_against_every_other_process(any_app, other_app):
    use_clock(any_app, other_app, local="2026-11-23T07:30:01+08:00")
    started, release = threading.Event(), threading.Event()
    job, calls = counting_job(block=(started, release))
    first, second = prepared(JobScheduler(any_app, [job]), JobScheduler(other_app, [job]))
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(first=first.run_due("count")))
    runner.start()
    try:
        assert started.wait(10)
        assert second.run_due("count").status == "locked"
        assert job_row(any_app, "count").last_status == "running"
    finally:
        release.set()
        runner.join()
    assert outcome["first"].status == "ok"
    assert second.run_due("count").status == "done"  # this fire time ran already
    assert len(calls) == 1


def test_a_lock_left_by_a_dead_process_expires(app, county):
    clock = use_clock(app)
    with app.app_context():
        run_now("token_purge")
        with store().engine.begin() as conn:  # a process died in the middle of a run
            conn.execute(
                update(JobRun)
                .where(JobRun.name == "token_purge")
                .values(
                    last_status="running",
                    lock_owner="gone:1",
                    lock_expires_at=datetime(2026, 11, 25, 5, 0),  # 13:00 local, in an hour
                )
            )
        assert run_now("token_purge").status == "locked"
        clock.advance(hours=1, minutes=1)
        assert next(j for j in job_statuses() if j["name"] == "token_purge")["last_status"] == (
            "interrupted"
        )
        assert run_now("token_purge").status == "ok"


# --- catch-up --------------------------------------------------------------------------------


def test_a_job_missed_while_the_server_was_down_runs_once_on_start_and_not_twice(app):
    clock = use_clock(app, local="2026-11-23T12:00:00+08:00")
    job, calls = counting_job()
    prepared(JobScheduler(app, [job]))  # then the server stops, for three days
    clock.advance(days=3)
    restarted, other_worker = JobScheduler(app, [job]), JobScheduler(app, [job])
    assert [r.status for r in restarted.catch_up()] == ["ok"]
    assert other_worker.catch_up() == [] and restarted.catch_up() == []
    assert len(calls) == 1
    assert job_row(app, "count").last_started_at == datetime(2026, 11, 26, 4, 0)


def test_a_job_that_ran_at_its_time_is_not_caught_up(app):
    clock = use_clock(app, local="2026-11-23T07:30:00+08:00")
    job, calls = counting_job()
    (scheduler,) = prepared(JobScheduler(app, [job]))
    clock.advance(days=1)
    assert scheduler.run_due("count").status == "ok"
    clock.advance(hours=5)
    assert scheduler.catch_up() == []
    assert len(calls) == 1


def test_a_new_install_runs_nothing_on_its_first_start(app):
    use_clock(app)
    job, calls = counting_job()
    assert JobScheduler(app, [job]).catch_up() == [] and calls == []
    assert job_row(app, "count").next_run_at == datetime(2026, 11, 25, 23, 30)  # 07:30 +8


def test_a_failing_job_is_recorded_and_the_others_still_run(app):
    clock = use_clock(app, local="2026-11-23T12:00:00+08:00")

    def broken(at):
        raise RuntimeError("the disk is full")

    failing = Job("broken", {"hour": 7, "minute": 30}, broken, "坏", "broken")
    job, calls = counting_job()
    (scheduler,) = prepared(JobScheduler(app, [failing, job]))
    clock.advance(days=1)
    results = scheduler.catch_up()
    assert [(r.name, r.status) for r in results] == [("broken", "failed"), ("count", "ok")]
    row = job_row(app, "broken")
    assert row.last_status == "failed" and row.last_message == "RuntimeError: the disk is full"
    assert row.lock_owner is None and row.last_finished_at is not None
    assert len(calls) == 1


def test_a_database_that_is_down_neither_stops_the_scheduler_nor_escapes_a_fire(tmp_path, caplog):
    app = app_for(f"sqlite:///{tmp_path / 'no-such-folder' / 'z.db'}", tmp_path)
    use_clock(app, local="2026-11-23T07:30:01+08:00")
    job, calls = counting_job()
    scheduler = JobScheduler(app, [job])
    scheduler.start(paused=True)  # what a worker does as it boots
    scheduler.shutdown()
    assert scheduler.run_due("count") is None and calls == []
    assert "job count could not be run or recorded" in caplog.text


# --- the report jobs ---------------------------------------------------------------------------


def test_the_weekly_bulletin_keeps_last_weeks_coverage_of_the_county_and_each_township(app, county):
    pytest.importorskip("server.reports.exports", reason="server/exports.py has not landed yet")
    clock = use_clock(app)
    visit_week_48(county, clock)
    clock.set("2026-11-30T08:00:00+08:00")
    (scheduler,) = prepared(JobScheduler(app, [job_named("weekly_bulletin")]))
    result = scheduler.run_due("weekly_bulletin")
    assert (result.status, result.message) == ("ok", "2026-W48: 2 个乡镇, 覆盖率 40.0%")
    kept = snapshots(app, "bulletin")
    r = county.regions
    assert [(period, region) for period, region, _ in kept] == [
        ("2026-W48", r["county"]),
        ("2026-W48", r["east"]),
        ("2026-W48", r["west"]),
    ]
    summaries = [(data["summary"]["due"], data["summary"]["visited"]) for *_, data in kept]
    assert summaries == [(5, 2), (4, 1), (1, 1)]
    folder = Path(app.instance_path) / "bulletins"
    files = sorted(path.name for path in folder.iterdir())
    assert files == [f"2026-W48-code-{key}.xlsx" for key in ("county", "east", "west")]
    assert all((folder / name).read_bytes()[:2] == b"PK" for name in files)  # xlsx is a zip


def test_a_bulletin_run_again_adds_a_snapshot_and_keeps_the_first(app, county):
    pytest.importorskip("server.reports.exports", reason="server/exports.py has not landed yet")
    clock = use_clock(app, local="2026-11-30T08:00:00+08:00")
    with app.app_context():
        run_now("weekly_bulletin")
        clock.advance(days=2)  # Wednesday: still the bulletin of the week that ended
        assert run_now("weekly_bulletin").message.startswith("2026-W48: ")
    taken = [region for _, region, _ in snapshots(app, "bulletin")]
    assert sorted(taken) == sorted(2 * [county.regions[k] for k in ("county", "east", "west")])


def test_the_overdue_digest_keeps_each_townships_overdue_households_of_the_day(app, county):
    clock = use_clock(app)
    visit_week_48(county, clock)
    clock.set("2026-11-26T07:30:00+08:00")
    (scheduler,) = prepared(JobScheduler(app, [job_named("overdue_digest")]))
    result = scheduler.run_due("overdue_digest")
    assert (result.status, result.message) == ("ok", "2026-11-26: 2 个乡镇, 逾期 3 户")
    h = county.households
    digest = {region: data for _, region, data in snapshots(app, "overdue_digest")}
    east, west = digest[county.regions["east"]], digest[county.regions["west"]]
    assert (east["date"], east["count"], east["region"]["name"]) == ("2026-11-26", 3, "东河镇")
    assert {item["household_id"] for item in east["households"]} == {h["h2"], h["h3"], h["h4"]}
    assert (west["count"], west["households"]) == (0, [])
    assert {period for period, _, _ in snapshots(app, "overdue_digest")} == {"2026-11-26"}


def test_problem_escalation_hands_problems_past_due_to_the_township_supervisor(app, county):
    clock = use_clock(app, local="2026-11-24T12:00:00+08:00")
    cadre, problem_id = county.device("cadre_a"), uid()
    problem = {
        "household_id": county.households["h1"],
        "category": "health",
        "description": "药快吃完了",
        "due_date": "2026-11-25",
        "assignee_id": county.users["cadre_a"],
    }
    cadre.push(
        [cadre.op("create", "problem", problem_id, problem)], device_time=clock().isoformat()
    )
    clock.set("2026-11-26T07:45:00+08:00")
    (scheduler,) = prepared(JobScheduler(app, [job_named("problem_escalation")]))
    result = scheduler.run_due("problem_escalation")
    assert (result.status, result.message) == ("ok", "2026-11-26: 升级 1 个逾期问题")
    with app.app_context(), store().engine.connect() as conn:
        assignee = conn.execute(
            select(Problem.assignee_id).where(Problem.id == problem_id)
        ).scalar()
    assert assignee == county.users["sup_east"]


# --- the backup ------------------------------------------------------------------------------


def test_the_backup_is_a_consistent_copy_while_another_thread_writes(app):
    use_clock(app, local="2026-11-26T02:30:00+08:00")
    writer_engine = sql_engine(app.config["DATABASE_URL"])
    stop, some_written = threading.Event(), threading.Event()
    batches = []

    def write():
        while not stop.is_set():
            batch = f"batch-{len(batches)}"
            with writer_engine.begin() as conn:
                for _ in range(50):  # 50 statements: a torn copy would hold part of a batch
                    conn.execute(insert(AuditEntry).values(at=datetime(2026, 1, 1), action=batch))
            batches.append(batch)
            if len(batches) >= 3:
                some_written.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        assert some_written.wait(30)
        with app.app_context():
            result = run_now("sqlite_backup")
    finally:
        stop.set()
        writer.join()
        writer_engine.dispose()
    assert result.status == "ok", result.message
    copy = Path(app.instance_path) / "backups" / "zoufang-20261126-0230.db"
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        per_batch = conn.execute(
            "SELECT action, count(*) FROM audit_log WHERE action LIKE 'batch-%' GROUP BY action"
        ).fetchall()
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert len(per_batch) >= 3 and {count for _, count in per_batch} == {50}
    assert not list(copy.parent.glob("*.part"))


def make_old_backups(app, count):
    folder = Path(app.instance_path) / "backups"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"zoufang-202610{day:02d}-0230.db" for day in range(1, count + 1)]
    for name in names:
        (folder / name).write_bytes(b"old")
    (folder / "notes.txt").write_text("not a backup")
    return folder, names


def test_the_backup_keeps_the_newest_14(app):
    use_clock(app, local="2026-11-26T02:30:00+08:00")
    folder, names = make_old_backups(app, 20)
    with app.app_context():
        assert run_now("sqlite_backup").status == "ok"
    kept = sorted(p.name for p in folder.glob("zoufang-*"))
    assert kept == [*names[-13:], "zoufang-20261126-0230.db"]
    assert (folder / "notes.txt").exists()


def test_the_number_of_backups_kept_is_configurable(app):
    use_clock(app, local="2026-11-26T02:30:00+08:00")
    app.config["BACKUP_RETENTION"] = 3
    folder, names = make_old_backups(app, 5)
    with app.app_context():
        assert run_now("sqlite_backup").status == "ok"
    assert sorted(p.name for p in folder.glob("zoufang-*")) == [
        *names[-2:],
        "zoufang-20261126-0230.db",
    ]


@pytest.mark.postgres
def test_postgresql_is_not_backed_up_here_and_the_job_says_so(postgres_url, tmp_path):
    app = app_for(postgres_url, tmp_path)
    with app.app_context():
        result = run_now("sqlite_backup")
        db.engine.dispose()
    assert (result.status, result.message) == ("ok", "skipped: use pg_dump (docs/deploy)")
    assert not (tmp_path / "backups").exists()


# --- expired tokens --------------------------------------------------------------------------


def test_a_token_unused_for_181_days_gets_401_and_the_purge_revokes_it(app, county):
    clock = use_clock(app)
    idle, busy = county.device("cadre_a"), county.device("cadre_b")
    clock.advance(days=100)
    assert busy.client.get("/api/v1/me", headers=busy.headers).status_code == 200
    clock.advance(days=81)
    response = idle.client.get("/api/v1/me", headers=idle.headers)
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert busy.client.get("/api/v1/me", headers=busy.headers).status_code == 200
    with app.app_context():
        assert run_now("token_purge").message.startswith("停用 1 台过期设备")
        with store().engine.connect() as conn:
            revoked = dict(conn.execute(select(Device.id, Device.revoked_at)).all())
            audited = conn.execute(
                select(AuditEntry.target_id).where(AuditEntry.action == "device_expired")
            ).all()
    assert revoked[idle.device_id] is not None
    assert revoked[busy.device_id] is None and revoked["server"] is None
    assert audited == [(idle.device_id,)]
    after = idle.client.get("/api/v1/me", headers=idle.headers).get_json()
    assert after["error"]["code"] == "unauthorized"  # sign in again; the phone keeps its data


def test_a_device_revoked_by_an_admin_stays_device_revoked_however_old(app, county):
    clock = use_clock(app)
    admin, lost = county.device("admin"), county.device("cadre_a")
    admin.client.delete(f"/api/v1/devices/{lost.device_id}", headers=admin.headers)
    clock.advance(days=400)
    with app.app_context():
        run_now("token_purge")
    response = lost.client.get("/api/v1/me", headers=lost.headers)
    assert response.get_json()["error"]["code"] == "device_revoked"


def test_the_token_lifetime_is_configurable(app, county):
    clock = use_clock(app)
    app.config["TOKEN_TTL_DAYS"] = 30
    device = county.device("cadre_a")
    clock.advance(days=29)
    assert device.client.get("/api/v1/me", headers=device.headers).status_code == 200
    clock.advance(days=30, seconds=1)
    assert device.client.get("/api/v1/me", headers=device.headers).status_code == 401


def test_the_purge_forgets_sign_in_counters_untouched_for_a_day(app, county):
    clock = use_clock(app)
    client = app.test_client()
    client.post("/api/v1/devices", json={"username": "cadre_a", "password": "wrong-password"})
    clock.advance(days=1, minutes=1)
    client.post("/api/v1/devices", json={"username": "cadre_b", "password": "wrong-password"})
    with app.app_context():
        run_now("token_purge")
        with store().engine.connect() as conn:
            left = {tuple(r) for r in conn.execute(select(LoginLimit.username, LoginLimit.ip))}
    assert left == {("cadre_b", "127.0.0.1"), ("cadre_b", ""), ("", "127.0.0.1")}


def test_the_purge_keeps_the_addresses_a_user_is_trusted_from(app, county):
    clock = use_clock(app)
    county.device("cadre_a")
    clock.advance(days=2)
    with app.app_context():
        run_now("token_purge")
        with store().engine.connect() as conn:
            left = {tuple(r) for r in conn.execute(select(LoginLimit.username, LoginLimit.ip))}
    assert left == {("cadre_a", "127.0.0.1")}


# --- the dashboard API and the command line ------------------------------------------------


def test_admins_and_supervisors_see_each_job_with_its_last_run(app, county):
    use_clock(app)
    admin = county.device("admin")
    admin.client.post("/api/v1/admin/jobs/token_purge/run", headers=admin.headers)
    body = admin.client.get("/api/v1/admin/jobs", headers=admin.headers).get_json()
    assert [job["name"] for job in body["jobs"]] == NAMES
    purge = next(job for job in body["jobs"] if job["name"] == "token_purge")
    assert purge["last_status"] == "ok" and purge["last_message"].startswith("停用 0 台")
    assert purge["last_started_at"] == "2026-11-25T12:00:00+08:00"
    assert purge["next_run_at"] == "2026-11-26T03:00:00+08:00"
    assert purge["schedule"] == "0 3 * * *" and purge["timezone"] == "Asia/Shanghai"
    assert set(purge["description"]) == {"zh-CN", "en"}
    never = next(job for job in body["jobs"] if job["name"] == "weekly_bulletin")
    assert never["last_status"] is None and never["next_run_at"] == "2026-11-30T08:00:00+08:00"
    supervisor = county.device("sup_east")
    assert (
        supervisor.client.get("/api/v1/admin/jobs", headers=supervisor.headers).status_code == 200
    )


def test_a_cadre_may_not_see_the_jobs(app, county):
    cadre = county.device("cadre_a")
    response = cadre.client.get("/api/v1/admin/jobs", headers=cadre.headers)
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "forbidden"


def test_only_an_admin_runs_a_job_and_the_run_is_audited(app, county):
    use_clock(app)
    admin, supervisor = county.device("admin"), county.device("sup_east")
    denied = supervisor.client.post(
        "/api/v1/admin/jobs/token_purge/run", headers=supervisor.headers
    )
    assert denied.status_code == 403
    response = admin.client.post("/api/v1/admin/jobs/token_purge/run", headers=admin.headers)
    assert response.status_code == 200
    assert response.get_json()["result"]["status"] == "ok"
    assert response.get_json()["job"]["last_status"] == "ok"
    with app.app_context(), store().engine.connect() as conn:
        audited = conn.execute(
            select(AuditEntry.user_id, AuditEntry.target_id).where(AuditEntry.action == "job_run")
        ).all()
    assert audited == [(county.users["admin"], "token_purge")]
    missing = admin.client.post("/api/v1/admin/jobs/no_such_job/run", headers=admin.headers)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_running_a_job_that_runs_elsewhere_is_a_conflict(app, county):
    use_clock(app)
    admin = county.device("admin")
    with app.app_context():
        ensure_rows([job_named("token_purge")])
        with store().engine.begin() as conn:
            conn.execute(
                update(JobRun)
                .where(JobRun.name == "token_purge")
                .values(lock_owner="elsewhere:1", lock_expires_at=datetime(2026, 11, 25, 5, 0))
            )
    response = admin.client.post("/api/v1/admin/jobs/token_purge/run", headers=admin.headers)
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "conflict"


def cli(args, database):
    env = {"ZOUFANG_DATABASE_URL": database, "ZOUFANG_SECRET_KEY": "cli-test"}
    return CliRunner(env=env).invoke(main, args, catch_exceptions=False)


def test_zoufang_jobs_run_runs_a_job_and_jobs_list_shows_it(tmp_path):
    database = f"sqlite:///{tmp_path / 'z.db'}"
    cli(["db", "upgrade"], database)
    ran = cli(["jobs", "run", "token_purge"], database)
    assert ran.exit_code == 0 and ran.output.startswith("token_purge: ok 停用 0 台")
    listed = json.loads(cli(["jobs", "list", "--json"], database).output)
    assert {job["name"]: job["last_status"] for job in listed}["token_purge"] == "ok"
    table = cli(["jobs", "list"], database).output.splitlines()
    assert [line.split()[0] for line in table] == NAMES
    unknown = cli(["jobs", "run", "no_such_job"], database)
    assert unknown.exit_code == 1 and "no job named" in unknown.output


def test_serve_starts_a_scheduler_in_each_worker_and_still_stops_at_once(tmp_path):
    database = f"sqlite:///{tmp_path / 'z.db'}"
    cli(["db", "upgrade"], database)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "ZOUFANG_DATABASE_URL": database, "ZOUFANG_SECRET_KEY": "serve-test"}
    server = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    engine = sql_engine(database)
    try:
        names: list[str] = []
        for _ in range(150):  # waiting for the server to come up, not for a schedule
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    pass
                with engine.connect() as conn:
                    names = list(conn.execute(select(JobRun.name).order_by(JobRun.name)).scalars())
                if len(names) == len(NAMES):
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert names == sorted(NAMES)
    finally:
        engine.dispose()
        server.terminate()  # right after start: a worker may still be starting its scheduler
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
            raise


def test_every_job_has_a_chinese_and_an_english_description():
    for job in JOBS:
        assert job.description_zh and job.description_en
        assert any("\u4e00" <= ch <= "\u9fff" for ch in job.description_zh)
    assert len(set(NAMES)) == len(NAMES)
