"""A province's coverage (server/reports/province.py): its counties' weekly snapshots added
up, never their visits; a county without a snapshot is missing, not 0 %."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from sqlalchemy import insert, select

from server import jobs
from server.admin.accounts import create_user
from server.reports import province
from server.service import create_server_records, store
from server.storage.models import Snapshot
from tests.county import PASSWORD, uid
from tests.test_reports import set_clock
from tests.test_roster import records, roster_csv, row, run

W47 = "2026-W47"
MONDAY_AFTER_W47 = "2026-11-23T06:00:00+08:00"  # the bulletin job keeps 2026-W47


def region(parent: str | None, level: str, name: str, code: str) -> dict:
    return {"parent_id": parent, "level": level, "name": name, "code": code}


@pytest.fixture
def anhui(any_county):
    """安徽省 with three counties of its own (none of them the test county): 绩溪县 and 歙县
    have snapshots of W47, 黟县 has none; and the province's supervisor."""
    ids = {"province": uid(), "jixi": uid(), "she": uid(), "yi": uid()}
    items = [
        ("region", ids["province"], region(None, "province", "安徽省", "34")),
        ("region", ids["jixi"], region(ids["province"], "county", "绩溪县", "341824")),
        ("region", ids["she"], region(ids["province"], "county", "歙县", "341021")),
        ("region", ids["yi"], region(ids["province"], "county", "黟县", "341023")),
    ]
    with any_county.app.app_context():
        create_server_records(items, actor=None)
        create_user("sup_anhui", PASSWORD, "supervisor", [ids["province"]], [], "省督导")
    any_county.regions.update(ids)
    return any_county


def keep(app, county_id: str, taken_at: str, due: int, visited: int, overdue: int = 0) -> None:
    summary = {"due": due, "visited": visited, "overdue": overdue, "coverage": visited / due}
    data = {"period": W47, "region": {"id": county_id}, "as_of": taken_at, "summary": summary}
    with app.app_context(), store().engine.begin() as conn:
        conn.execute(
            insert(Snapshot).values(
                kind=province.KIND,
                period=W47,
                region_id=county_id,
                taken_at=datetime.fromisoformat(taken_at),
                data=json.dumps(data),
            )
        )


def ask(county, username: str, path: str = "/api/v1/reports/coverage", **query):
    device = county.device(username)
    query = {"period": W47, "region_id": county.regions["province"], **query}
    return device.client.get(path, query_string=query, headers=device.headers)


def test_province_coverage_adds_up_its_counties_snapshots_and_lists_the_missing(anhui):
    keep(anhui.app, anhui.regions["jixi"], "2026-11-22T22:00:00", due=100, visited=90, overdue=10)
    keep(anhui.app, anhui.regions["she"], "2026-11-22T22:00:00", due=50, visited=20, overdue=30)
    keep(anhui.app, anhui.regions["she"], "2026-11-23T01:00:00", due=50, visited=40, overdue=10)
    response = ask(anhui, "sup_anhui")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["region"]["level"] == "province"
    assert body["summary"] == {"due": 150, "visited": 130, "overdue": 20, "coverage": 0.8667}
    assert body["as_of"] == "2026-11-23T09:00:00+08:00"  # the latest snapshot read
    children = {c["name"]: c for c in body["children"]}
    assert [c["name"] for c in body["children"]] == ["歙县", "黟县", "绩溪县"]  # by code
    assert (children["歙县"]["visited"], children["歙县"]["missing"]) == (40, False)
    assert children["黟县"] == {
        "region_id": anhui.regions["yi"],
        "name": "黟县",
        "level": "county",
        "due": None,
        "visited": None,
        "coverage": None,
        "as_of": None,
        "missing": True,
    }
    assert body["missing"] == [{"region_id": anhui.regions["yi"], "name": "黟县"}]


def test_province_coverage_as_of_reads_only_the_snapshots_taken_by_then(anhui):
    keep(anhui.app, anhui.regions["she"], "2026-11-22T22:00:00", due=50, visited=20)
    keep(anhui.app, anhui.regions["she"], "2026-11-23T01:00:00", due=50, visited=40)
    body = ask(anhui, "sup_anhui", as_of="2026-11-23T08:00:00+08:00").get_json()
    assert body["summary"]["visited"] == 20


def test_a_county_with_visits_but_no_snapshot_is_missing_not_counted(anhui):
    """The province never reads visits: a county's visits of the week, with no snapshot
    kept, make it missing."""
    village = uid()
    items = [
        ("region", township := uid(), region(anhui.regions["yi"], "township", "碧阳镇", "1")),
        ("region", village, region(township, "village", "碧山村", "11")),
    ]
    with anhui.app.app_context():
        create_server_records(items, actor=None)
    set_clock(anhui.app, "2026-11-18T09:00:00+08:00")
    body = ask(anhui, "sup_anhui").get_json()
    assert body["summary"]["due"] == 0
    assert [c["missing"] for c in body["children"]] == [True, True, True]


def test_the_weekly_bulletin_keeps_each_countys_snapshot_for_its_province(anhui):
    household = uid()
    township, village = uid(), uid()
    items = [
        ("region", township, region(anhui.regions["jixi"], "township", "华阳镇", "1")),
        ("region", village, region(township, "village", "城东村", "11")),
        (
            "household",
            household,
            {
                "village_id": village,
                "code": "3418240001",
                "head_name": "户",
                "status": "active",
                "visit_policy": "weekly",
            },
        ),
    ]
    with anhui.app.app_context():
        create_server_records(items, actor=None)
    set_clock(anhui.app, MONDAY_AFTER_W47)
    with anhui.app.app_context():
        jobs.weekly_bulletin(datetime.fromisoformat(MONDAY_AFTER_W47).replace(tzinfo=None))
    body = ask(anhui, "sup_anhui").get_json()
    children = {c["name"]: c for c in body["children"]}
    assert (children["绩溪县"]["due"], children["绩溪县"]["visited"]) == (1, 0)
    assert children["绩溪县"]["as_of"] is not None
    assert (children["歙县"]["due"], children["歙县"]["missing"]) == (0, False)  # no household
    with anhui.app.app_context(), store().engine.connect() as conn:
        kept = conn.execute(select(Snapshot.region_id).where(Snapshot.kind == province.KIND))
        counties = {anhui.regions[key] for key in ("county", "jixi", "she", "yi")}
        assert sorted(kept.scalars()) == sorted(counties)


def test_province_trend_adds_up_the_weeks_snapshots(anhui):
    keep(anhui.app, anhui.regions["jixi"], "2026-11-22T22:00:00", due=100, visited=90)
    response = ask(anhui, "sup_anhui", "/api/v1/reports/trend", weeks=2, until="2026-W48")
    assert response.status_code == 200, response.get_json()
    weeks = response.get_json()["weeks"]
    assert [(w["period"], w["due"], w["visited"], w["missing"]) for w in weeks] == [
        ("2026-W47", 100, 90, 2),
        ("2026-W48", 0, 0, 3),
    ]


def test_province_coverage_is_by_iso_week(anhui):
    response = ask(anhui, "sup_anhui", period="2026-11")
    assert response.status_code == 422
    assert "period" in response.get_json()["error"]["details"]["fields"]


def test_a_county_supervisor_may_not_read_the_province(anhui):
    assert ask(anhui, "sup_east").status_code == 403


def test_an_admin_of_every_county_adds_a_province_and_a_county_in_it(any_county):
    device = any_county.device("admin")  # assigned the only root region: every county
    made = device.client.post(
        "/api/v1/admin/regions",
        json={"name": "安徽省", "level": "province"},
        headers=device.headers,
    )
    assert made.status_code == 201, made.get_json()
    province_id = made.get_json()["id"]
    county = device.client.post(
        "/api/v1/admin/regions",
        json={"name": "黟县", "level": "county", "parent_id": province_id},
        headers=device.headers,
    )
    assert county.status_code == 201, county.get_json()
    wrong = device.client.post(
        "/api/v1/admin/regions",
        json={"name": "某镇", "level": "township", "parent_id": province_id},
        headers=device.headers,
    )
    assert wrong.status_code == 422
    assert "parent_id" in wrong.get_json()["error"]["details"]["fields"]


def test_a_roster_naming_a_county_of_a_province_imports_into_it(app):
    province_id, county_id = uid(), uid()
    items = [
        ("region", province_id, region(None, "province", "安徽省", "34")),
        ("region", county_id, region(province_id, "county", "绩溪县", "341824")),
    ]
    with app.app_context():
        create_server_records(items, actor=None)
    run(app, roster_csv([row()]), county="绩溪县")
    counties = [r for r in records(app, "region") if r["level"] == "county"]
    assert [r["id"] for r in counties] == [county_id]
