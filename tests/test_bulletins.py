"""The bulletins the Monday job kept, listed and downloaded from the dashboard (issue 14 item
4): newest first, the file as it went out, scoped like the bulletin itself, 404 for a week
that has none — on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from server import jobs
from tests.test_reports import set_clock

MONDAY_W47 = "2026-11-23T06:00:00+08:00"  # the job keeps 2026-W47
MONDAY_W48 = "2026-11-30T06:00:00+08:00"  # … and 2026-W48


def run_bulletin(county, monday: str) -> None:
    set_clock(county.app, monday)
    with county.app.app_context():
        jobs.weekly_bulletin(datetime.fromisoformat(monday).replace(tzinfo=None))


@pytest.fixture
def kept(any_county):
    run_bulletin(any_county, MONDAY_W47)
    run_bulletin(any_county, MONDAY_W48)
    run_bulletin(any_county, "2026-12-01T09:00:00+08:00")  # a re-run of W48 on Tuesday
    return any_county


def listing(county, username: str, region: str):
    device = county.device(username)
    return device.client.get(
        "/api/v1/reports/bulletins",
        query_string={"region_id": county.regions[region]},
        headers=device.headers,
    )


def download(county, username: str, region: str, period: str):
    device = county.device(username)
    return device.client.get(
        f"/api/v1/reports/bulletins/{period}.xlsx",
        query_string={"region_id": county.regions[region]},
        headers=device.headers,
    )


def test_the_kept_bulletins_are_listed_newest_first_with_when_the_first_went_out(kept):
    response = listing(kept, "sup_east", "east")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["region_id"] == kept.regions["east"]
    assert body["bulletins"] == [
        {
            "period": "2026-W48",
            "title": "2026年第48周",
            "taken_at": "2026-11-30T06:00:00+08:00",
            "file": True,
        },
        {
            "period": "2026-W47",
            "title": "2026年第47周",
            "taken_at": "2026-11-23T06:00:00+08:00",
            "file": True,
        },
    ]


def test_a_village_has_no_bulletins_of_its_own(kept):
    response = listing(kept, "sup_east", "upper")
    assert response.status_code == 200
    assert response.get_json()["bulletins"] == []


def test_a_kept_bulletin_downloads_as_the_file_the_job_wrote(kept):
    response = download(kept, "sup_east", "east", "2026-W47")
    assert response.status_code == 200, response.get_json()
    assert response.mimetype.endswith("spreadsheetml.sheet")
    assert 'filename="2026-W47-code-east.xlsx"' in response.headers["Content-Disposition"]
    written = Path(kept.app.instance_path) / "bulletins" / "2026-W47-code-east.xlsx"
    assert response.data == written.read_bytes()
    sheet = load_workbook(io.BytesIO(response.data))["覆盖率"]
    assert sheet["A1"].value == "东河镇2026年第47周走访覆盖率通报"


def test_a_week_with_no_kept_bulletin_is_404_in_the_error_shape(kept):
    response = download(kept, "sup_east", "east", "2026-W40")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_a_period_that_is_no_week_or_month_is_422(kept):
    response = download(kept, "sup_east", "east", "2026-W99")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "validation_failed"


def test_a_township_supervisor_neither_lists_nor_downloads_another_townships_bulletins(kept):
    assert listing(kept, "sup_east", "west").status_code == 403
    assert download(kept, "sup_east", "west", "2026-W48").status_code == 403


def test_a_cadre_gets_no_bulletins(kept):
    assert listing(kept, "cadre_a", "upper").status_code == 403
    assert download(kept, "cadre_a", "east", "2026-W48").status_code == 403


def test_the_countys_admin_lists_the_countys_bulletins(kept):
    body = listing(kept, "admin", "county").get_json()
    assert [b["period"] for b in body["bulletins"]] == ["2026-W48", "2026-W47"]
