"""household_periods (server/summary.py) gives the reports the same answers as the visits.

Every report here is computed twice — from the summary and, with the summary switched off,
from the visits directly — on random syncs: visits on both sides of week and month ends, late
arrivals, voids, corrections (moving a visit to another week) and voided corrections, with the
summary caught up in between at random moments.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import OperationalError

from server.reports import coverage as reports
from server.reports import summary
from server.service import store
from server.storage.models import Snapshot
from server.storage.store import SETTINGS
from tests.test_reports import push, set_clock

START = datetime(2026, 10, 26, tzinfo=UTC)  # Monday of 2026-W44 (08:00 in Shanghai)
WEEKS = ["2026-W44", "2026-W45", "2026-W46", "2026-W47", "2026-W48"]
MONTHS = ["2026-10", "2026-11", "2026-12"]


def both_ways(app, monkeypatch, report, *args, **kwargs):
    """The report from the summary, and from the visits with the summary switched off."""
    with app.app_context():
        assert reports._summarized(kwargs.get("tz"), kwargs.get("as_of"))
        fast = report(*args, **kwargs)
        with monkeypatch.context() as patched:
            patched.setattr(reports, "usable", lambda engine, zone: False)
            direct = report(*args, **kwargs)
    return fast, direct


def rows(app) -> list[tuple]:
    with app.app_context(), store().engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(select(summary.SUMMARY)))


def local(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_summary_answers_like_the_visits(any_county, monkeypatch, seed):
    app, households, regions = any_county.app, list(any_county.households.values()), any_county
    rng = random.Random(seed)
    set_clock(app, local(START))
    phones = [any_county.device(name) for name in ("cadre_a", "cadre_b", "cadre_c", "admin")]
    stored: list[dict] = []
    clock = START
    for step in range(14):
        clock += timedelta(hours=rng.randint(6, 40))
        phone = rng.choice(phones)
        ops = []
        for _ in range(rng.randint(1, 6)):
            choice = rng.random()
            if stored and choice < 0.15:
                victim = rng.choice(stored)
                ops.append(phone.op("void", "visit", victim["id"], {"reason": "录错了"}))
            elif stored and choice < 0.35:
                original = rng.choice(stored)
                when = clock - timedelta(days=rng.randint(0, 12), hours=rng.randint(0, 23))
                ops.append(
                    phone.visit(
                        original["data"]["household_id"],
                        visited_at=local(when),
                        corrects=original["id"],
                    )
                )
            else:
                when = clock - timedelta(days=rng.randint(0, 12), hours=rng.randint(0, 23))
                ops.append(phone.visit(rng.choice(households), visited_at=local(when)))
        set_clock(app, local(clock))
        response = phone.push(ops, device_time=local(clock))
        assert response.status_code == 200, response.get_json()
        stored += [
            op
            for op, result in zip(ops, response.get_json()["results"], strict=True)
            if op["action"] == "create" and result["status"] == "applied"
        ]
        if step == 6:  # a bulletin of W45 is taken: later arrivals are late against it
            with app.app_context(), store().engine.begin() as conn:
                conn.execute(
                    insert(Snapshot).values(
                        kind="bulletin",
                        period="2026-W45",
                        region_id=regions.regions["county"],
                        taken_at=clock.replace(tzinfo=None),
                        data="{}",
                    )
                )
        if rng.random() < 0.5:  # a report in between catches the summary up
            fast, direct = both_ways(app, monkeypatch, reports.coverage, rng.choice(WEEKS),
                                     regions.regions["county"])  # fmt: skip
            assert fast == direct
    for period in WEEKS + MONTHS:
        for region in ("county", "east", "upper", "ridge"):
            fast, direct = both_ways(
                app, monkeypatch, reports.coverage, period, regions.regions[region]
            )
            assert fast == direct, (period, region)
    fast, direct = both_ways(
        app, monkeypatch, reports.trend, regions.regions["county"], 6, until="2026-W48"
    )
    assert fast == direct
    assert sum(week["visited"] for week in fast) > 0


def test_a_rebuilt_summary_equals_the_one_kept_up(any_county):
    app, h = any_county.app, any_county.households
    set_clock(app, "2026-11-16T08:00:00+08:00")
    phone = any_county.device("cadre_a")
    first = phone.visit(h["h1"], visited_at="2026-11-30T23:30:00+08:00")  # W49, November
    push(app, phone, "2026-12-01T08:00:00+08:00", [first])
    with app.app_context():
        assert reports._summarized(None, None)  # caught up: first is in
    fix = phone.visit(h["h1"], visited_at="2026-12-01T00:30:00+08:00", corrects=first["id"])
    other = phone.visit(h["h2"], "2026-12-01T10:00+08:00")
    push(app, phone, "2026-12-01T09:00:00+08:00", [fix, other])
    with app.app_context():
        assert reports._summarized(None, None)
    kept = rows(app)
    assert {(r[0], r[1]) for r in kept} == {
        ("2026-W49", h["h1"]),
        ("2026-12", h["h1"]),
        ("2026-W49", h["h2"]),
        ("2026-12", h["h2"]),
    }  # the corrected visit left November
    with app.app_context(), store().engine.begin() as conn:
        conn.execute(delete(summary.SUMMARY))
        conn.execute(
            update(summary.COUNTERS)
            .where(summary.COUNTERS.c.name == summary.WATERMARK)
            .values(value=0)
        )
    with app.app_context():
        summary.catch_up(store().engine, reports.zone_of(None))  # round by round from 0
    assert rows(app) == kept
    with app.app_context(), store().engine.begin() as conn:
        conn.execute(delete(SETTINGS).where(SETTINGS.c.key == summary.ZONE_KEY))
    with app.app_context():
        summary.catch_up(store().engine, reports.zone_of(None))  # built anew in one pass
    assert rows(app) == kept


def test_a_long_backlog_is_answered_from_the_visits_until_the_job_catches_up(
    any_county, monkeypatch
):
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    set_clock(app, "2026-11-16T08:00:00+08:00")
    phone = any_county.device("cadre_a")
    monkeypatch.setattr(summary, "INLINE", 1)
    monkeypatch.setattr(summary, "ROUND", 2)  # several rounds for the job
    push(app, phone, "2026-11-20T08:00:00+08:00", [
        phone.visit(h["h1"], "2026-11-18T10:00:00+08:00"),
        phone.visit(h["h2"], "2026-11-18T11:00:00+08:00"),
        phone.visit(h["h3"], "2026-11-19T10:00:00+08:00"),
    ])  # fmt: skip
    with app.app_context():
        assert not reports._summarized(None, None)
        assert reports.coverage("2026-W47", upper)["summary"]["visited"] == 3
        from server.jobs import run_now

        assert run_now("visit_summary").status == "ok"
        assert reports._summarized(None, None)
        assert reports.coverage("2026-W47", upper)["summary"]["visited"] == 3
    assert len(rows(app)) == 6


def test_another_time_zone_and_as_of_read_the_visits(any_county):
    with any_county.app.app_context():
        assert not reports._summarized("UTC", None)
        assert not reports._summarized(None, "2026-11-20T00:00:00+08:00")


def test_a_new_server_time_zone_rebuilds_the_summary(any_county):
    app, h = any_county.app, any_county.households
    set_clock(app, "2026-11-16T08:00:00+08:00")
    phone = any_county.device("cadre_a")
    # Monday 02:00 in Shanghai is still Sunday of the week before in UTC
    push(app, phone, "2026-11-23T08:00:00+08:00", [phone.visit(h["h1"], "2026-11-23T02:00+08:00")])
    with app.app_context():
        assert reports._summarized(None, None)
        assert {r[0] for r in rows(app)} == {"2026-W48", "2026-11"}
        summary.catch_up(store().engine, reports.zone_of("UTC"))
        assert {r[0] for r in rows(app)} == {"2026-W47", "2026-11"}
        with store().engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(summary.SUMMARY)).scalar() == 2


def test_a_summary_that_cannot_catch_up_leaves_the_report_to_the_visits(any_county, monkeypatch):
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    set_clock(app, "2026-11-16T08:00:00+08:00")
    phone = any_county.device("cadre_a")
    push(app, phone, "2026-11-20T08:00:00+08:00", [phone.visit(h["h1"], "2026-11-18T10:00+08:00")])

    def read_only(engine, zone):
        raise OperationalError("INSERT …", {}, Exception("attempt to write a readonly database"))

    monkeypatch.setattr(summary, "catch_up", read_only)
    with app.app_context():
        assert not reports._summarized(None, None)
        assert reports.coverage("2026-W47", upper)["summary"]["visited"] == 1
