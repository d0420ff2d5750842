"""When a visit happened (CONTRACT §10): a phone may record a visit made earlier, never in the
future and at most ZOUFANG_BACKDATE_DAYS (default 7) before it recorded it. The moment it
recorded it is the op's hlc, read on the phone's own clock, not the time of the push.

ISO week 2026-W47 is Mon 16 – Sun 22 November 2026, W48 Mon 23 – Sun 29 (Asia/Shanghai).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert

from server.service import store
from server.storage.models import Snapshot
from sync.effective import hlc_of, visit_time_problem
from tests.county import hlc_at
from tests.test_reports import coverage, figures, push, set_clock

W46, W47 = "2026-W46", "2026-W47"


@pytest.fixture
def cadre_a(any_county):
    set_clock(any_county.app, "2026-11-02T08:00:00+08:00")
    return any_county.device("cadre_a")


def send(app, device, now: str, ops: list[dict], device_time: str | None = None) -> list[dict]:
    """Push at server time ``now``; the results whatever they are."""
    set_clock(app, now)
    response = device.push(ops, device_time=device_time or now)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]


def stored_visit(device, visit_id: str) -> dict:
    records = device.pull_all()
    return next(r["data"] for r in records if r["type"] == "visit" and r["id"] == visit_id)


def test_a_visit_entered_days_later_counts_in_the_week_it_happened(any_county, cadre_a):
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    op = cadre_a.visit(
        h["h1"], "2026-11-21T10:00:00+08:00", recorded_at="2026-11-25T09:00:00+08:00"
    )
    push(app, cadre_a, "2026-11-25T09:05:00+08:00", [op])
    assert figures(coverage(app, W47, upper))[1] == 1
    assert figures(coverage(app, "2026-W48", upper))[1] == 0
    assert stored_visit(cadre_a, op["id"])["visited_at_effective"] == "2026-11-21T10:00:00+08:00"


def test_a_visit_later_than_the_moment_the_phone_recorded_it_is_rejected(any_county, cadre_a):
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    op = cadre_a.visit(
        h["h1"], "2026-11-25T10:00:00+08:00", recorded_at="2026-11-25T09:00:00+08:00"
    )
    [result] = send(app, cadre_a, "2026-11-25T12:00:00+08:00", [op])
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "validation_failed"
    assert "future" in result["error"]["details"]["fields"]["data.visited_at"][0]
    assert figures(coverage(app, "2026-W48", upper))[1] == 0


def test_a_visit_more_than_seven_days_before_it_was_recorded_is_rejected(any_county, cadre_a):
    app, h = any_county.app, any_county.households
    op = cadre_a.visit(
        h["h1"], "2026-11-17T08:00:00+08:00", recorded_at="2026-11-25T09:00:00+08:00"
    )
    [result] = send(app, cadre_a, "2026-11-25T09:00:00+08:00", [op])
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "validation_failed"
    assert result["error"]["details"]["fields"]["data.visited_at"] == [
        "more than 7 days before the phone recorded the visit"
    ]


def test_the_backdate_bound_is_zoufang_backdate_days_and_phones_learn_it(any_county, cadre_a):
    app, h = any_county.app, any_county.households
    app.config["BACKDATE_DAYS"] = 3
    assert cadre_a.pull().get_json()["backdate_days"] == 3
    ops = [
        cadre_a.visit(h["h1"], "2026-11-21T10:00:00+08:00", recorded_at="2026-11-25T09:00+08:00"),
        cadre_a.visit(h["h2"], "2026-11-22T10:00:00+08:00", recorded_at="2026-11-25T09:00+08:00"),
    ]
    results = send(app, cadre_a, "2026-11-25T09:05:00+08:00", ops)
    assert [r["status"] for r in results] == ["rejected", "applied"]


def test_a_phone_offline_for_six_days_has_the_visits_it_recorded_then_accepted(any_county, cadre_a):
    """Recorded on the 19th for a visit on the 14th, pushed on the 25th: eleven days after the
    visit, but five before the phone recorded it."""
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    ops = [
        cadre_a.visit(h["h1"], "2026-11-14T10:00:00+08:00", recorded_at="2026-11-19T18:00+08:00"),
        cadre_a.visit(h["h2"], "2026-11-19T17:00:00+08:00", recorded_at="2026-11-19T18:00+08:00"),
    ]
    push(app, cadre_a, "2026-11-25T09:00:00+08:00", ops)
    assert figures(coverage(app, W46, upper))[1] == 1
    assert figures(coverage(app, W47, upper))[1] == 1


def test_a_phone_whose_clock_is_set_to_1970_has_its_visits_accepted(any_county, cadre_a):
    """Its clock says 1970, its hlc the server time it last saw (an hlc never runs behind):
    the visit it records "now" is accepted and lands in the week it really happened."""
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    last_seen = hlc_at("2026-11-25T08:00:00+08:00")  # the server_hlc of its last sync
    op = cadre_a.visit(h["h1"], "1970-01-01T10:00:00+08:00", hlc=last_seen[:-4] + "0001")
    [result] = send(
        app, cadre_a, "2026-11-25T10:00:00+08:00", [op], device_time="1970-01-01T10:00:30+08:00"
    )
    assert result["status"] == "applied", result
    visit = stored_visit(cadre_a, op["id"])
    assert visit["visited_at_effective"].startswith("2026-11-25T09:59")
    assert "clock_corrected" in visit["review"]
    assert figures(coverage(app, "2026-W48", upper))[1] == 1


def test_a_phone_once_set_to_2035_and_put_right_has_its_visits_accepted(any_county, cadre_a):
    """Its hlc stays in 2035 (an hlc never goes back), its clock is right again: the hlc says
    nothing of when it recorded the visit, which is taken as dated right."""
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    op = cadre_a.visit(h["h1"], "2026-11-25T09:00:00+08:00", recorded_at="2035-01-01T00:00+08:00")
    push(app, cadre_a, "2026-11-25T09:30:00+08:00", [op])
    assert figures(coverage(app, "2026-W48", upper))[1] == 1


def test_a_correction_of_a_three_week_old_visit_keeps_its_time(any_county, cadre_a):
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    original = cadre_a.visit(h["h1"], "2026-11-04T10:00:00+08:00")
    push(app, cadre_a, "2026-11-04T11:00:00+08:00", [original])
    correction = cadre_a.visit(
        h["h1"],
        "2026-11-04T10:00:00+08:00",
        recorded_at="2026-11-25T09:00:00+08:00",
        mode="phone",
        corrects=original["id"],
    )
    push(app, cadre_a, "2026-11-25T09:00:00+08:00", [correction])
    kept = stored_visit(cadre_a, correction["id"])
    assert kept["visited_at_effective"] == "2026-11-04T10:00:00+08:00"
    assert figures(coverage(app, "2026-W45", upper))[1] == 1


def test_a_correction_that_moves_the_time_beyond_the_bound_is_rejected(any_county, cadre_a):
    app, h = any_county.app, any_county.households
    original = cadre_a.visit(h["h1"], "2026-11-04T10:00:00+08:00")
    push(app, cadre_a, "2026-11-04T11:00:00+08:00", [original])
    moved = cadre_a.visit(
        h["h1"],
        "2026-11-03T10:00:00+08:00",
        recorded_at="2026-11-25T09:00:00+08:00",
        corrects=original["id"],
    )
    [result] = send(app, cadre_a, "2026-11-25T09:00:00+08:00", [moved])
    assert result["status"] == "rejected"
    assert "data.visited_at" in result["error"]["details"]["fields"]


def test_a_visit_entered_after_its_weeks_bulletin_is_late_in_coverage(any_county, cadre_a):
    app, h, r = any_county.app, any_county.households, any_county.regions
    with app.app_context(), store().engine.begin() as conn:
        conn.execute(
            insert(Snapshot).values(
                kind="bulletin",
                period=W47,
                region_id=r["county"],
                taken_at=datetime(2026, 11, 23, 1, 0),  # 09:00 in Shanghai
                data="{}",
            )
        )
    push(app, cadre_a, "2026-11-25T09:00:00+08:00", [
        cadre_a.visit(h["h1"], "2026-11-21T10:00:00+08:00"),
        cadre_a.visit(h["h2"], "2026-11-21T11:00:00+08:00"),
    ])  # fmt: skip
    body = coverage(app, W47, r["upper"])
    assert figures(body)[1] == 2
    assert body["late"]["visits"] == 2
    assert body["late"]["households"] == 2
    assert body["late"]["basis"] == "bulletin"


DAY_MS = 86_400_000
SEVEN_DAYS = timedelta(days=7)


@given(
    offset=st.integers(-56 * 365 * DAY_MS, 9 * 365 * DAY_MS),  # the phone's clock: 1970 to 2035
    since_sync=st.integers(0, 30 * DAY_MS),  # the server time it last saw, before recording
    earlier=st.integers(0, 7 * DAY_MS),  # how long before recording the visit was made
    offline=st.integers(0, 30 * DAY_MS),  # from recording to push
)
def test_an_honest_phone_is_never_refused_whatever_its_clock(offset, since_sync, earlier, offline):
    """Any steady clock error, any time offline: a visit dated within the bound on the phone's
    own clock passes (CONTRACT §7: the server never rejects for the clock)."""
    recording = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # the server's time
    phone = timedelta(milliseconds=offset)
    hlc = max(hlc_of(recording + phone), hlc_of(recording - timedelta(milliseconds=since_sync)))
    visited_at = recording + phone - timedelta(milliseconds=earlier)
    pushed = recording + timedelta(milliseconds=offline)
    assert visit_time_problem(visited_at, hlc, pushed + phone, pushed, SEVEN_DAYS) is None
