"""Reports on a streaming replica (server/storage/replica.py), with a real primary and a real
hot standby this module starts itself (``pg_basebackup -R``): what the replica has replayed is
what reports answer, its replay time is their ``as_of``, and a replica that is down or too far
behind is passed over for the primary with a warning in the log.

The tests share one primary/standby pair and run in file order; the last one stops the standby.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text

from server import jobs
from server.admin.forms_service import publish_forms
from server.reports import coverage as coverage_module
from server.reports import summary
from server.reports.coverage import local_iso
from server.reports.periods import week_label
from server.service import store
from server.storage import replica
from server.storage.upgrade import upgrade
from tests import pgserver
from tests.conftest import IN_CI, app_for
from tests.county import County, build_county

pytestmark = pytest.mark.postgres

ZONE = ZoneInfo("Asia/Shanghai")
REPLICA_LOG = "server.storage.replica"


class Pair:
    """The primary and its standby, the app whose reports read the standby, and the county."""

    def __init__(self, primary: Any, standby: Any, county: County) -> None:
        self.primary, self.standby, self.county = primary, standby, county
        self.app = county.app
        self.primary_sql = create_engine(primary.url, isolation_level="AUTOCOMMIT")
        self.standby_sql = create_engine(standby.url, isolation_level="AUTOCOMMIT")
        self.supervisor = county.device("sup_east")

    def on_standby(self, statement: str) -> Any:
        with self.standby_sql.connect() as conn:
            return conn.execute(text(statement)).scalar()

    def replayed(self, timeout: float = 30) -> None:
        """Wait until the standby has replayed everything the primary wrote so far."""
        with self.primary_sql.connect() as conn:
            lsn = conn.execute(text("SELECT pg_current_wal_lsn()")).scalar()
        deadline = time.monotonic() + timeout
        done = f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn"
        while not self.on_standby(done):
            assert time.monotonic() < deadline, "the standby did not catch up"
            time.sleep(0.05)

    def pause(self) -> None:
        self.on_standby("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + 30
        while self.on_standby("SELECT pg_get_wal_replay_pause_state()") != "paused":
            assert time.monotonic() < deadline, "replay did not pause"
            time.sleep(0.05)

    def resume(self) -> None:
        self.on_standby("SELECT pg_wal_replay_resume()")
        self.replayed()


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    try:
        primary = pgserver.start()
    except RuntimeError as exc:
        if IN_CI:
            pytest.fail(f"CI needs PostgreSQL and it could not start: {exc}")
        pytest.skip(f"PostgreSQL unavailable here: {exc}")
    try:
        standby = pgserver.start_standby(primary)
    except RuntimeError as exc:
        primary.stop()
        if IN_CI:
            pytest.fail(f"CI needs a PostgreSQL standby and it could not start: {exc}")
        pytest.skip(f"PostgreSQL standby unavailable here: {exc}")
    name = f"zoufang_{uuid.uuid4().hex[:8]}"
    admin = create_engine(primary.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    database = primary.url.rsplit("/", 1)[0] + "/" + name
    reports_database = standby.url.rsplit("/", 1)[0] + "/" + name
    app = app_for(
        database, tmp_path_factory.mktemp("replica"), REPORTS_DATABASE_URL=reports_database
    )
    upgrade(app)
    with app.app_context():
        publish_forms(actor=None)
    county = build_county(app)
    setup = Pair(primary, standby, county)
    setup.replayed()
    yield setup
    with app.app_context():
        replica.databases().primary.dispose()
        if replica.databases().replica is not None:
            replica.databases().replica.dispose()
    setup.primary_sql.dispose()
    setup.standby_sql.dispose()
    standby.stop()
    primary.stop()


@pytest.fixture
def bound(pair: Pair) -> Iterator[Any]:
    """Set the lag bound for one test (the app's default is 300 s)."""
    databases = pair.app.extensions[replica.EXTENSION]

    def set_bound(seconds: float) -> None:
        databases.max_lag = seconds

    yield set_bound
    databases.max_lag = replica.DEFAULT_MAX_LAG_SECONDS


def visit_now(pair: Pair, household: str) -> None:
    """cadre_a visits a household of 上村 now, by the real clock."""
    device = pair.county.device("cadre_a")
    moment = datetime.now(ZONE).isoformat(timespec="seconds")
    response = device.push([device.visit(pair.county.households[household], moment)], moment)
    assert response.status_code == 200
    assert response.get_json()["results"][0]["status"] == "applied"


def coverage(pair: Pair) -> dict[str, Any]:
    """东河镇's coverage this week, as its supervisor asks for it (from one device, registered
    once: a registration is a commit, and would make the replica's last commit recent)."""
    device = pair.supervisor
    period = week_label(datetime.now(ZONE).date())
    query = {"period": period, "region_id": pair.county.regions["east"]}
    response = device.client.get("/api/v1/reports/coverage", query_string=query, **_auth(device))
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def _auth(device: Any) -> dict[str, Any]:
    return {"headers": device.headers}


def replica_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == REPLICA_LOG]


def parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso).astimezone(UTC)


def test_a_visit_pushed_to_the_primary_appears_in_the_replicas_coverage(pair, caplog):
    before = coverage(pair)["summary"]["visited"]
    visit_now(pair, "h1")
    pair.replayed()
    asked = datetime.now(UTC).replace(microsecond=0)
    body = coverage(pair)
    assert body["summary"]["visited"] == before + 1
    assert parse(body["as_of"]) >= asked  # replayed everything: the replica is current
    assert replica_warnings(caplog) == []


def test_a_replica_held_behind_answers_as_of_its_replay_time(pair, caplog):
    before = coverage(pair)["summary"]["visited"]
    pair.pause()
    try:
        replayed_at = pair.on_standby("SELECT pg_last_xact_replay_timestamp()")
        visit_now(pair, "h2")
        time.sleep(1.1)  # so that "now" and the replay time differ in the answer's seconds
        body = coverage(pair)
    finally:
        pair.resume()
    assert body["summary"]["visited"] == before  # the replica has not replayed the visit
    expected = local_iso(replayed_at.astimezone(UTC).replace(tzinfo=None), ZONE)
    assert body["as_of"] == expected
    assert replica_warnings(caplog) == []
    assert coverage(pair)["summary"]["visited"] == before + 1  # replayed now


def test_a_replica_further_behind_than_the_bound_is_passed_over_for_the_primary(
    pair, bound, caplog
):
    before = coverage(pair)["summary"]["visited"]
    pair.pause()
    try:
        visit_now(pair, "h3")
        bound(0.5)
        time.sleep(1)
        with caplog.at_level(logging.WARNING, logger=REPLICA_LOG):
            body = coverage(pair)
    finally:
        pair.resume()
    assert body["summary"]["visited"] == before + 1  # the primary has it
    assert parse(body["as_of"]) >= datetime.now(UTC) - timedelta(seconds=5)
    assert any("behind" in message for message in replica_warnings(caplog))


def test_an_idle_replica_that_replayed_everything_is_current_however_old_its_last_commit(
    pair, bound, caplog
):
    pair.replayed()
    bound(1)
    time.sleep(2)  # the last commit the replica replayed is now older than the bound
    with caplog.at_level(logging.WARNING, logger=REPLICA_LOG):
        body = coverage(pair)
    assert replica_warnings(caplog) == []
    assert parse(body["as_of"]) >= datetime.now(UTC) - timedelta(seconds=5)


def test_the_bulletin_job_reads_the_replica_and_keeps_its_snapshots_on_the_primary(pair, caplog):
    with pair.app.app_context():
        result = jobs.weekly_bulletin(datetime.now(ZONE))
    assert "覆盖率" in result
    pair.replayed()  # a write on the standby would have failed: the snapshots came through it
    with pair.app.app_context(), replica.report() as conn:
        assert replica.on_replica(conn)
        taken = conn.execute(text("SELECT count(*) FROM snapshots WHERE kind = 'bulletin'"))
        assert taken.scalar() == 3  # the county and its two townships
    assert replica_warnings(caplog) == []


def test_a_replica_reads_the_visit_summary_only_while_it_holds_every_visit(pair):
    """The primary's visit_summary job keeps household_periods; the replica's copy is read
    when complete, and never caught up on the replica (it is read-only)."""
    with pair.app.app_context():
        summary.catch_up(store().engine, ZONE)
    pair.replayed()
    with pair.app.app_context(), replica.report() as conn:
        assert replica.on_replica(conn)
        assert coverage_module._summarized(None, None, conn)
    visit_now(pair, "h1")
    pair.replayed()
    with pair.app.app_context(), replica.report() as conn:
        assert not coverage_module._summarized(None, None, conn)


def test_a_stopped_replica_leaves_reports_answering_from_the_primary(pair, caplog):
    visited = coverage(pair)["summary"]["visited"]
    pair.standby.halt()
    with caplog.at_level(logging.WARNING, logger=REPLICA_LOG):
        body = coverage(pair)
    assert body["summary"]["visited"] == visited
    assert any("unreachable" in message for message in replica_warnings(caplog))
