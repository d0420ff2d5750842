"""Coverage, trend and overdue reports on hand-made data with known answers (docs/reports.md).

The county of tests/county.py: 东河镇 → 上村 (h1, h2, h3) and 下村 (h4); 西岭镇 → 岭村 (h5); all
weekly. ISO week 2026-W47 is Mon 16 – Sun 22 November 2026, Asia/Shanghai (UTC+8).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert

from server.reports import coverage as reports
from server.service import create_server_records, server_update, store
from server.storage.models import Snapshot
from tests.county import uid

W47 = "2026-W47"


def set_clock(app, moment: str) -> None:
    """The server's clock (received_at, voided_at, now) at ``moment``."""
    fixed = datetime.fromisoformat(moment).astimezone(UTC)
    app.config["CLOCK"] = lambda: fixed


def push(app, device, now: str, ops: list[dict]) -> list[dict]:
    """Push at server time ``now`` from a phone whose clock is right."""
    set_clock(app, now)
    response = device.push(ops, device_time=now)
    assert response.status_code == 200, response.get_json()
    results = response.get_json()["results"]
    assert all(r["status"] in ("applied", "conflict") for r in results), results
    return results


def visit(device, household: str, at: str, **data) -> dict:
    return device.visit(household, visited_at=at, **data)


def coverage(app, period: str, region: str, **kwargs) -> dict:
    with app.app_context():
        return reports.coverage(period, region, **kwargs)


def figures(body: dict) -> tuple[int, int]:
    return body["summary"]["due"], body["summary"]["visited"]


@pytest.fixture
def cadre_a(any_county):
    set_clock(any_county.app, "2026-11-16T08:00:00+08:00")
    return any_county.device("cadre_a")


# --- what counts --------------------------------------------------------------------------------


def test_coverage_counts_due_and_visited_households_by_region_and_cadre(any_county, cadre_a):
    app, h, r = any_county.app, any_county.households, any_county.regions
    push(app, cadre_a, "2026-11-20T18:00:00+08:00", [
        visit(cadre_a, h["h1"], "2026-11-18T10:00:00+08:00"),
        visit(cadre_a, h["h2"], "2026-11-19T10:00:00+08:00"),
    ])  # fmt: skip
    body = coverage(app, W47, r["county"], as_of="2026-11-24T00:00:00+08:00")
    assert body["summary"] == {"due": 5, "visited": 2, "overdue": 3, "coverage": 0.4}
    assert body["region"] == {"id": r["county"], "name": "青山县", "level": "county"}
    children = {c["name"]: (c["level"], c["due"], c["visited"]) for c in body["children"]}
    assert children == {"东河镇": ("township", 4, 2), "西岭镇": ("township", 1, 0)}
    cadres = {c["name"]: (c["due"], c["visited"]) for c in body["cadres"]}
    assert cadres == {"甲干部": (3, 2), "乙干部": (3, 2), "丙干部": (2, 0)}


def test_a_household_visited_twice_by_two_cadres_counts_once(any_county, cadre_a):
    app, h = any_county.app, any_county.households
    cadre_b = any_county.device("cadre_b")
    push(
        app,
        cadre_a,
        "2026-11-18T18:00:00+08:00",
        [visit(cadre_a, h["h1"], "2026-11-18T10:00+08:00")],
    )
    push(
        app,
        cadre_b,
        "2026-11-19T18:00:00+08:00",
        [visit(cadre_b, h["h1"], "2026-11-19T10:00+08:00")],
    )
    body = coverage(app, W47, any_county.regions["upper"])
    assert figures(body) == (3, 1)


def test_a_voided_visit_does_not_count(any_county, cadre_a):
    app, h = any_county.app, any_county.households
    op = visit(cadre_a, h["h1"], "2026-11-18T10:00:00+08:00")
    push(app, cadre_a, "2026-11-18T18:00:00+08:00", [op])
    push(app, cadre_a, "2026-11-18T19:00:00+08:00", [
        cadre_a.op("void", "visit", op["id"], {"reason": "录错了户"})
    ])  # fmt: skip
    assert figures(coverage(app, W47, any_county.regions["upper"])) == (3, 0)


def test_a_corrected_visit_and_its_correction_count_the_household_once(any_county, cadre_a):
    app, h = any_county.app, any_county.households
    original = visit(cadre_a, h["h1"], "2026-11-18T10:00:00+08:00", mode="phone")
    correction = visit(cadre_a, h["h1"], "2026-11-18T10:00:00+08:00", corrects=original["id"])
    push(app, cadre_a, "2026-11-18T18:00:00+08:00", [original, correction])
    body = coverage(app, W47, any_county.regions["upper"])
    assert figures(body) == (3, 1)


def test_a_correction_that_moves_a_visit_to_another_week_moves_the_household(any_county, cadre_a):
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    original = visit(cadre_a, h["h1"], "2026-11-24T10:00:00+08:00")  # W48 by mistake
    push(app, cadre_a, "2026-11-24T18:00:00+08:00", [original])
    correction = visit(cadre_a, h["h1"], "2026-11-21T10:00:00+08:00", corrects=original["id"])
    push(app, cadre_a, "2026-11-25T09:00:00+08:00", [correction])
    assert figures(coverage(app, W47, upper))[1] == 1
    assert figures(coverage(app, "2026-W48", upper))[1] == 0
    before = "2026-11-24T20:00:00+08:00"  # the correction had not arrived yet
    assert figures(coverage(app, W47, upper, as_of=before))[1] == 0
    assert figures(coverage(app, "2026-W48", upper, as_of=before))[1] == 1


def test_a_correction_that_keeps_the_time_keeps_the_visits_week_whatever_the_clock_now(
    any_county, cadre_a
):
    """A W47 visit corrected in W48 (入户 → 电话) from a phone whose clock has since jumped
    two days: the correction keeps the visit's time, so W47 keeps the household."""
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    original = visit(cadre_a, h["h1"], "2026-11-18T10:00:00+08:00")
    push(app, cadre_a, "2026-11-18T18:00:00+08:00", [original])
    correction = visit(
        cadre_a, h["h1"], "2026-11-18T10:00:00+08:00", mode="phone", corrects=original["id"]
    )
    set_clock(app, "2026-11-25T09:00:00+08:00")
    response = cadre_a.push([correction], device_time="2026-11-27T09:00:00+08:00")
    assert response.get_json()["results"][0]["status"] == "applied"
    assert figures(coverage(app, W47, upper))[1] == 1
    assert figures(coverage(app, "2026-W48", upper))[1] == 0
    (stored,) = [r for r in cadre_a.pull_all() if r["id"] == correction["id"]]
    assert stored["data"]["visited_at_effective"] == "2026-11-18T10:00:00+08:00"


def test_a_phone_clock_at_1970_lands_its_visit_in_the_week_the_server_received_it(
    any_county, cadre_a
):
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    set_clock(app, "2026-11-20T10:00:00+08:00")
    op = visit(cadre_a, h["h1"], "1970-01-05T09:00:00+08:00")
    response = cadre_a.push([op], device_time="1970-01-05T10:00:00+08:00")
    assert response.get_json()["results"][0]["status"] == "applied"
    assert figures(coverage(app, W47, upper))[1] == 1
    assert figures(coverage(app, "1970-W02", upper))[1] == 0


# --- as_of and late syncs -----------------------------------------------------------------------


def test_a_late_sync_changes_the_week_and_as_of_reproduces_the_figure_before_it(
    any_county, cadre_a
):
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    push(
        app,
        cadre_a,
        "2026-11-20T18:00:00+08:00",
        [visit(cadre_a, h["h1"], "2026-11-18T10:00+08:00")],
    )
    push(
        app,
        cadre_a,
        "2026-11-25T09:00:00+08:00",
        [visit(cadre_a, h["h2"], "2026-11-21T15:00+08:00")],
    )
    now = coverage(app, W47, upper)
    assert figures(now) == (3, 2)
    assert now["late"] == {
        "visits": 1,
        "households": 1,
        "since": "2026-11-23T00:00:00+08:00",
        "basis": "period_end",
    }
    then = coverage(app, W47, upper, as_of="2026-11-23T00:00:00+08:00")
    assert figures(then) == (3, 1)
    assert then["late"]["visits"] == 0
    assert then["as_of"] == "2026-11-23T00:00:00+08:00"


def test_a_visit_voided_after_as_of_still_counts_as_of_then(any_county, cadre_a):
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    op = visit(cadre_a, h["h1"], "2026-11-18T10:00:00+08:00")
    push(app, cadre_a, "2026-11-18T18:00:00+08:00", [op])
    push(app, cadre_a, "2026-11-24T09:00:00+08:00", [
        cadre_a.op("void", "visit", op["id"], {"reason": "重复录入"})
    ])  # fmt: skip
    assert figures(coverage(app, W47, upper, as_of="2026-11-23T12:00:00+08:00"))[1] == 1
    assert figures(coverage(app, W47, upper))[1] == 0


def test_visits_received_after_the_bulletin_are_late_and_those_before_are_not(any_county, cadre_a):
    app, h, r = any_county.app, any_county.households, any_county.regions
    push(
        app,
        cadre_a,
        "2026-11-23T08:00:00+08:00",
        [visit(cadre_a, h["h1"], "2026-11-22T10:00+08:00")],
    )
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
    push(app, cadre_a, "2026-11-23T10:00:00+08:00", [
        visit(cadre_a, h["h2"], "2026-11-22T11:00+08:00"),
        visit(cadre_a, h["h2"], "2026-11-22T12:00+08:00"),
    ])  # fmt: skip
    late = coverage(app, W47, r["upper"])["late"]
    assert late == {
        "visits": 2,
        "households": 1,
        "since": "2026-11-23T09:00:00+08:00",
        "basis": "bulletin",
    }


def test_as_of_must_be_a_time(any_county, cadre_a):
    with pytest.raises(reports.ApiError) as raised:
        coverage(any_county.app, W47, any_county.regions["upper"], as_of="last tuesday")
    assert raised.value.code == "validation_failed"
    assert "as_of" in raised.value.details["fields"]


# --- due households ------------------------------------------------------------------------------


def test_only_active_households_are_due_and_archiving_does_not_rewrite_past_weeks(
    any_county, cadre_a
):
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    set_clock(app, "2026-11-25T09:00:00+08:00")
    admin = any_county.users["admin"]
    with app.app_context():
        server_update(admin, reports.EVERYTHING, "household", h["h3"], {"status": "archived"})
    assert figures(coverage(app, "2026-W48", upper))[0] == 2
    assert figures(coverage(app, W47, upper))[0] == 3


def test_a_week_counts_weekly_households_and_a_month_monthly_ones(any_county, cadre_a):
    app, upper = any_county.app, any_county.regions["upper"]
    monthly = add_monthly_household(any_county)
    push(
        app,
        cadre_a,
        "2026-11-20T18:00:00+08:00",
        [visit(cadre_a, monthly, "2026-11-18T10:00+08:00")],
    )
    assert figures(coverage(app, W47, upper)) == (3, 0)
    month = coverage(app, "2026-11", upper)
    assert figures(month) == (1, 1)
    assert (month["policy"], month["start"], month["end"]) == (
        "monthly",
        "2026-11-01",
        "2026-11-30",
    )


def test_coverage_is_one_when_no_household_is_due(any_county, cadre_a):
    body = coverage(any_county.app, "2026-11", any_county.regions["upper"])
    assert body["summary"] == {"due": 0, "visited": 0, "overdue": 0, "coverage": 1.0}


def add_monthly_household(county, village: str = "upper") -> str:
    household = uid()
    with county.app.app_context():
        create_server_records(
            [
                (
                    "household",
                    household,
                    {
                        "village_id": county.regions[village],
                        "code": f"M-{household[:8]}",
                        "head_name": "监测户",
                        "address": None,
                        "phone": "13800001111",
                        "category": "监测户",
                        "status": "active",
                        "visit_policy": "monthly",
                        "lat": None,
                        "lon": None,
                        "notes": None,
                    },
                )
            ],
            actor=None,
        )
    return household


# --- overdue in the summary ----------------------------------------------------------------------


def test_overdue_of_a_past_week_is_due_minus_visited(any_county, cadre_a):
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    push(
        app,
        cadre_a,
        "2026-11-20T18:00:00+08:00",
        [visit(cadre_a, h["h1"], "2026-11-18T10:00+08:00")],
    )
    body = coverage(app, W47, upper, as_of="2026-11-24T12:00:00+08:00")
    assert body["state"] == "past"
    assert body["summary"]["overdue"] == 2


def test_overdue_of_the_current_week_counts_only_households_missed_last_week_too(
    any_county, cadre_a
):
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    push(
        app,
        cadre_a,
        "2026-11-11T18:00:00+08:00",
        [visit(cadre_a, h["h1"], "2026-11-11T10:00+08:00")],
    )
    push(
        app,
        cadre_a,
        "2026-11-18T18:00:00+08:00",
        [visit(cadre_a, h["h2"], "2026-11-18T10:00+08:00")],
    )
    body = coverage(app, W47, upper)  # now: Wednesday of W47
    assert body["state"] == "current"
    assert body["summary"] == {"due": 3, "visited": 1, "overdue": 1, "coverage": 0.3333}


# --- time zone and calendar boundaries -----------------------------------------------------------


def test_iso_week_53_of_2026_runs_from_28_december_to_3_january(any_county, cadre_a):
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    push(app, cadre_a, "2027-01-03T20:00:00+08:00", [
        visit(cadre_a, h["h1"], "2026-12-28T00:30:00+08:00"),  # Sunday 16:30 UTC, W52 in UTC
        visit(cadre_a, h["h2"], "2027-01-02T10:00:00+08:00"),
    ])  # fmt: skip
    body = coverage(app, "2026-W53", upper)
    assert (body["start"], body["end"]) == ("2026-12-28", "2027-01-03")
    assert figures(body) == (3, 2)
    assert figures(coverage(app, "2026-W52", upper))[1] == 0
    assert figures(coverage(app, "2027-W01", upper))[1] == 0


@pytest.mark.parametrize("period", ["2027-W53", "2026-W54", "2026-W00", "2026-13", "2026-11-01"])
def test_a_period_that_does_not_exist_is_a_validation_error(any_county, cadre_a, period):
    with pytest.raises(reports.ApiError) as raised:
        coverage(any_county.app, period, any_county.regions["upper"])
    assert raised.value.code == "validation_failed"
    assert list(raised.value.details["fields"]) == ["period"]


def test_a_month_ends_at_midnight_in_shanghai_not_in_utc(any_county, cadre_a):
    app, upper = any_county.app, any_county.regions["upper"]
    late_evening, early_morning = (
        add_monthly_household(any_county),
        add_monthly_household(any_county),
    )
    push(app, cadre_a, "2026-12-01T09:00:00+08:00", [
        visit(cadre_a, late_evening, "2026-11-30T23:30:00+08:00"),
        visit(cadre_a, early_morning, "2026-12-01T07:30:00+08:00"),  # 30 Nov 23:30 UTC
    ])  # fmt: skip
    assert figures(coverage(app, "2026-11", upper)) == (2, 1)
    assert figures(coverage(app, "2026-12", upper)) == (2, 1)
    assert figures(coverage(app, "2026-11", upper, tz="UTC")) == (2, 2)
    app.config["TIMEZONE"] = "UTC"  # ZOUFANG_TIMEZONE
    assert figures(coverage(app, "2026-12", upper)) == (2, 0)


# --- regions ------------------------------------------------------------------------------------


def test_a_township_report_holds_only_its_own_villages(any_county, cadre_a):
    app, h, r = any_county.app, any_county.households, any_county.regions
    cadre_c = any_county.device("cadre_c")
    push(app, cadre_c, "2026-11-20T18:00:00+08:00", [
        visit(cadre_c, h["h4"], "2026-11-18T10:00+08:00"),
        visit(cadre_c, h["h5"], "2026-11-18T11:00+08:00"),
    ])  # fmt: skip
    east = coverage(app, W47, r["east"])
    assert figures(east) == (4, 1)
    assert [c["name"] for c in east["children"]] == ["下村", "上村"]
    assert figures(coverage(app, W47, r["west"])) == (1, 1)
    village = coverage(app, W47, r["lower"])
    assert figures(village) == (1, 1) and village["children"] == []


def test_an_unknown_region_is_not_found(any_county, cadre_a):
    with pytest.raises(reports.ApiError) as raised:
        coverage(any_county.app, W47, uid())
    assert raised.value.code == "not_found"


def test_a_household_with_an_open_conflict_is_counted_once(any_county, cadre_a):
    app, h, upper = any_county.app, any_county.households, any_county.regions["upper"]
    cadre_b = any_county.device("cadre_b")
    push(app, cadre_a, "2026-11-18T18:00:00+08:00", [
        cadre_a.op("update", "household", h["h1"], {"notes": "甲"}, base_version=1),
        visit(cadre_a, h["h1"], "2026-11-18T10:00+08:00"),
    ])  # fmt: skip
    results = push(app, cadre_b, "2026-11-18T19:00:00+08:00", [
        cadre_b.op("update", "household", h["h1"], {"notes": "乙"}, base_version=1),
        visit(cadre_b, h["h1"], "2026-11-18T11:00+08:00"),
    ])  # fmt: skip
    assert results[0]["status"] == "conflict"
    assert figures(coverage(app, W47, upper)) == (3, 1)


# --- trend ---------------------------------------------------------------------------------------


def test_trend_gives_each_of_the_last_weeks_oldest_first(any_county, cadre_a):
    app, h = any_county.app, any_county.households
    push(app, cadre_a, "2026-11-25T18:00:00+08:00", [
        visit(cadre_a, h["h1"], "2026-11-10T10:00+08:00"),
        visit(cadre_a, h["h1"], "2026-11-18T10:00+08:00"),
        visit(cadre_a, h["h2"], "2026-11-19T10:00+08:00"),
        visit(cadre_a, h["h2"], "2026-11-20T10:00+08:00"),
        visit(cadre_a, h["h3"], "2026-11-24T10:00+08:00"),
    ])  # fmt: skip
    with app.app_context():
        weeks = reports.trend(any_county.regions["upper"], weeks=3, until="2026-W48")
    assert [(w["period"], w["due"], w["visited"], w["coverage"]) for w in weeks] == [
        ("2026-W46", 3, 1, 0.3333),
        ("2026-W47", 3, 2, 0.6667),
        ("2026-W48", 3, 1, 0.3333),
    ]


# --- overdue households --------------------------------------------------------------------------


def test_overdue_lists_households_missed_this_week_and_last_most_overdue_first(any_county, cadre_a):
    app, h, r = any_county.app, any_county.households, any_county.regions
    cadre_c = any_county.device("cadre_c")
    push(
        app,
        cadre_c,
        "2026-11-04T18:00:00+08:00",
        [visit(cadre_c, h["h4"], "2026-11-04T10:00+08:00")],
    )
    push(
        app,
        cadre_a,
        "2026-11-10T18:00:00+08:00",
        [visit(cadre_a, h["h1"], "2026-11-10T10:00+08:00")],
    )
    push(
        app,
        cadre_a,
        "2026-11-17T18:00:00+08:00",
        [visit(cadre_a, h["h2"], "2026-11-17T10:00+08:00")],
    )
    with app.app_context():
        found = reports.overdue(r["county"], today=date(2026, 11, 25))
    summary = [(x["head_name"], x["never_visited"], x["days_overdue"]) for x in found]
    assert summary == [
        ("户主3", True, None),
        ("户主5", True, None),
        ("户主4", False, 10),  # last visit in W45: W46 missed, overdue since Mon 16 Nov
        ("户主1", False, 3),  # last visit in W46: W47 missed, overdue since Mon 23 Nov
    ]
    h1 = found[-1]
    assert h1["overdue_since"] == "2026-11-23"
    assert h1["last_visit"] == {
        "visited_at": "2026-11-10T10:00:00+08:00",
        "mode": "home",
        "visitor_id": any_county.users["cadre_a"],
        "visitor_name": "甲干部",
    }
    assert [c["name"] for c in h1["cadres"]] == ["乙干部", "甲干部"]
    assert h1["phone"] == "139****1201"


def test_overdue_for_one_cadre_lists_only_their_households(any_county, cadre_a):
    with any_county.app.app_context():
        found = reports.overdue(
            any_county.regions["county"],
            today=date(2026, 11, 25),
            cadre_id=any_county.users["cadre_c"],
        )
    assert sorted(x["head_name"] for x in found) == ["户主4", "户主5"]


def test_a_monthly_household_is_overdue_when_missed_this_month_and_last(any_county, cadre_a):
    app = any_county.app
    monthly = add_monthly_household(any_county)
    push(
        app,
        cadre_a,
        "2026-09-20T18:00:00+08:00",
        [visit(cadre_a, monthly, "2026-09-20T10:00+08:00")],
    )
    with app.app_context():
        found = reports.overdue(any_county.regions["upper"], today=date(2026, 11, 25))
        in_october = reports.overdue(any_county.regions["upper"], today=date(2026, 10, 31))
    entry = next(x for x in found if x["household_id"] == monthly)
    assert (entry["overdue_since"], entry["days_overdue"]) == ("2026-11-01", 25)
    assert monthly not in {x["household_id"] for x in in_october}


# --- the HTTP API and who sees what --------------------------------------------------------------


def get(device, path: str, **query):
    return device.client.get(path, query_string=query, headers=device.headers)


def test_a_township_supervisor_never_sees_another_township(any_county, cadre_a):
    sup = any_county.device("sup_east")
    r = any_county.regions
    for region in ("west", "ridge", "county"):
        response = get(sup, "/api/v1/reports/coverage", period=W47, region_id=r[region])
        assert response.status_code == 403, region
        assert response.get_json()["error"]["code"] == "forbidden"
    for region in ("east", "upper", "lower"):
        assert (
            get(sup, "/api/v1/reports/coverage", period=W47, region_id=r[region]).status_code == 200
        )
    assert get(sup, "/api/v1/reports/overdue", region_id=r["west"]).status_code == 403


def test_a_cadre_sees_only_their_own_households_and_themselves(any_county, cadre_a):
    cadre_c = any_county.device("cadre_c")
    response = get(
        cadre_c, "/api/v1/reports/coverage", period=W47, region_id=any_county.regions["county"]
    )
    assert response.status_code == 200
    body = response.get_json()
    assert body["summary"]["due"] == 2  # h4 in 下村 and h5 by 包保
    assert [c["name"] for c in body["cadres"]] == ["丙干部"]
    denied = get(
        cadre_a, "/api/v1/reports/coverage", period=W47, region_id=any_county.regions["west"]
    )
    assert denied.status_code == 403


def test_the_coverage_api_answers_the_contract_shape(any_county, cadre_a):
    admin = any_county.device("admin")
    response = get(
        admin, "/api/v1/reports/coverage", period=W47, region_id=any_county.regions["east"]
    )
    assert response.status_code == 200
    body = response.get_json()
    assert {"period", "region", "as_of", "summary", "children", "cadres"} <= set(body)
    assert set(body["summary"]) == {"due", "visited", "overdue", "coverage"}
    assert set(body["children"][0]) >= {"region_id", "name", "level", "due", "visited", "coverage"}
    assert set(body["cadres"][0]) >= {"user_id", "name", "due", "visited"}


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ({"period": "2026-W54"}, 422, "period"),
        ({"period": W47, "as_of": "yesterday"}, 422, "as_of"),
        ({}, 422, "period"),
        ({"period": W47, "region_id": "nowhere"}, 404, None),
    ],
)
def test_bad_report_queries_get_the_contract_error_shape(any_county, cadre_a, query, status, field):
    admin = any_county.device("admin")
    response = get(
        admin, "/api/v1/reports/coverage", **{"region_id": any_county.regions["east"], **query}
    )
    assert response.status_code == status
    error = response.get_json()["error"]
    if field:
        assert error["code"] == "validation_failed" and field in error["details"]["fields"]
    else:
        assert error["code"] == "not_found"


def test_the_overdue_api_lists_households_with_masked_phones(any_county, cadre_a):
    sup = any_county.device("sup_east")
    response = get(sup, "/api/v1/reports/overdue", region_id=any_county.regions["east"])
    assert response.status_code == 200
    households = response.get_json()["households"]
    assert len(households) == 4
    assert all("****" in x["phone"] for x in households)


def test_the_trend_api_gives_the_requested_number_of_weeks(any_county, cadre_a):
    sup = any_county.device("sup_east")
    response = get(
        sup, "/api/v1/reports/trend", region_id=any_county.regions["east"], weeks=12, until=W47
    )
    assert response.status_code == 200
    weeks = response.get_json()["weeks"]
    assert len(weeks) == 12 and weeks[-1]["period"] == W47 and weeks[0]["period"] == "2026-W36"
