"""The weekly bulletin as Excel and CSV, and the read-only SQLite snapshot, opened and checked
the way their readers open them (openpyxl, sqlite3)."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from server.cli import main
from server.reports import exports, labels
from tests.county import build_county, uid
from tests.test_reports import push, set_clock

W47 = "2026-W47"


@pytest.fixture
def county(any_county):
    """W47: cadre_a visited h1 and h2 (上村 2 of 3), cadre_c h4 (下村 1 of 1), nobody h5 (岭村);
    one open problem in h1, one verified in h4."""
    app, h = any_county.app, any_county.households
    set_clock(app, "2026-11-16T08:00:00+08:00")
    a, c = any_county.device("cadre_a"), any_county.device("cadre_c")
    push(app, a, "2026-11-20T18:00:00+08:00", [
        a.visit(h["h1"], "2026-11-18T10:00:00+08:00"),
        a.visit(h["h2"], "2026-11-19T10:00:00+08:00"),
        a.op("create", "problem", uid(), {
            "household_id": h["h1"], "category": "housing", "description": "屋顶漏雨",
            "assignee_id": any_county.users["cadre_a"], "due_date": "2026-11-30",
        }),
    ])  # fmt: skip
    s = any_county.device("sup_east")  # a cadre may not record a problem already verified
    push(app, c, "2026-11-20T19:00:00+08:00", [c.visit(h["h4"], "2026-11-18T11:00:00+08:00")])
    push(app, s, "2026-11-20T19:00:00+08:00", [
        s.op("create", "problem", uid(), {
            "household_id": h["h4"], "category": "medical", "description": "已送医",
            "status": "verified",
        }),
    ])  # fmt: skip
    set_clock(app, "2026-11-24T09:00:00+08:00")
    return any_county


def bulletin(county, region: str = "county"):
    with county.app.app_context():
        content = exports.weekly_bulletin_xlsx(W47, county.regions[region])
    return load_workbook(io.BytesIO(content))


def all_cells(book) -> str:
    return "\n".join(
        str(cell.value) for sheet in book for row in sheet.iter_rows() for cell in row if cell.value
    )


# --- Excel --------------------------------------------------------------------------------------


def test_the_bulletin_has_coverage_unvisited_and_open_problem_sheets(county):
    assert bulletin(county).sheetnames == ["覆盖率", "未访户", "未办结问题"]


def test_the_coverage_sheet_has_a_title_bold_headers_and_the_figures_by_village(county):
    sheet = bulletin(county)["覆盖率"]
    assert sheet["A1"].value == "青山县2026年第47周走访覆盖率通报"
    assert sheet["A1"].font.bold and sheet["A1"].font.size == 14
    assert [c.value for c in sheet[3]] == exports.COVERAGE_HEADERS
    assert all(c.font.bold for c in sheet[3])
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=4)]
    assert rows == [
        ["东河镇", "下村", 1, 1, 0, 1.0],
        ["东河镇", "上村", 3, 2, 1, 0.6667],
        ["东河镇", "小计", 4, 3, 1, 0.75],
        ["西岭镇", "岭村", 1, 0, 1, 0.0],
        ["西岭镇", "小计", 1, 0, 1, 0.0],
        ["合计", None, 5, 3, 2, 0.6],
    ]


def test_the_coverage_column_is_a_percent_and_low_coverage_is_filled_red(county):
    sheet = bulletin(county)["覆盖率"]
    assert {sheet.cell(row=r, column=6).number_format for r in range(4, 10)} == {"0.0%"}
    rules = [
        (str(cf.sqref), rule.operator, rule.formula, rule.dxf.fill.fgColor.rgb)
        for cf in sheet.conditional_formatting
        for rule in cf.rules
    ]
    assert rules == [("F4:F9", "lessThan", ["0.9"], "00FFC7CE")]


def test_the_coverage_sheet_freezes_its_header_and_sets_column_widths(county):
    sheet = bulletin(county)["覆盖率"]
    assert sheet.freeze_panes == "A4"
    assert [sheet.column_dimensions[c].width for c in "ABCDEF"] == [16, 16, 11, 11, 11, 10]


def test_every_sheet_prints_on_a4_landscape_fit_to_width(county):
    for sheet in bulletin(county):
        setup = sheet.page_setup
        assert (int(setup.paperSize), setup.orientation) == (9, "landscape"), sheet.title
        assert sheet.sheet_properties.pageSetUpPr.fitToPage
        assert (setup.fitToWidth, setup.fitToHeight) == (1, 0)


def test_every_sheet_repeats_its_header_rows_on_each_printed_page_and_freezes_them(county):
    for sheet in bulletin(county):
        assert sheet.print_title_rows == "$1:$3", sheet.title
        assert sheet.freeze_panes == "A4"


def test_the_printed_header_names_region_and_period_and_the_footer_numbers_pages(county):
    sheet = bulletin(county, "east")["未访户"]
    assert sheet.oddHeader.left.text == "东河镇"
    assert sheet.oddHeader.center.text == "未访户"
    assert sheet.oddHeader.right.text == "2026年第47周"
    assert sheet.oddFooter.center.text == "第 &P 页，共 &N 页"


def test_the_bulletin_writes_times_as_people_do_in_the_county_time_zone(county):
    sheet = bulletin(county)["覆盖率"]
    assert "截至 2026年11月24日 09:00；" in sheet["A2"].value


def test_the_problem_sheet_names_categories_in_chinese(county):
    sheet = bulletin(county)["未办结问题"]
    assert [row[4].value for row in sheet.iter_rows(min_row=4)] == ["住房安全"]


def test_the_category_labels_are_the_words_the_app_shows():
    source = (Path(__file__).resolve().parents[1] / "pwa_static/js/i18n.js").read_text("utf-8")
    chinese = source[source.index("const zh = {") : source.index("const en = {")]
    app = dict(re.findall(r'"category\.(\w+)": "([^"]+)"', chinese))
    assert app == labels.CATEGORY_LABELS


def test_the_unvisited_sheet_lists_the_households_missed_in_the_week_with_masked_phones(county):
    sheet = bulletin(county)["未访户"]
    assert [c.value for c in sheet[3]][:5] == ["乡镇", "村", "户编码", "户主", "联系电话"]
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=4)]
    assert [(r[1], r[3], r[4], r[6], r[7]) for r in rows] == [
        ("上村", "户主3", "139****1203", "乙干部、甲干部", "从未走访"),
        ("岭村", "户主5", "139****1205", "丙干部", "从未走访"),
    ]


def test_the_problem_sheet_lists_only_open_problems(county):
    sheet = bulletin(county)["未办结问题"]
    rows = [[c.value for c in row] for row in sheet.iter_rows(min_row=4)]
    assert [(r[3], r[4], r[5], r[6], r[7], r[8]) for r in rows] == [
        ("户主1", "住房安全", "屋顶漏雨", "待处理", "甲干部", "2026-11-30")
    ]


def test_no_whole_phone_or_id_number_appears_in_the_bulletin(county):
    text = all_cells(bulletin(county))
    assert "1390563120" not in text
    assert "341823194110201790" not in text


def test_the_bulletin_of_a_township_holds_only_its_villages(county):
    rows = [[c.value for c in r] for r in bulletin(county, "east")["覆盖率"].iter_rows(min_row=4)]
    assert [r[1] for r in rows] == ["下村", "上村", None]
    assert rows[-1][:5] == ["合计", None, 4, 3, 1]


def test_the_excel_endpoint_serves_the_workbook_to_supervisors_only(county):
    sup = county.device("sup_east")
    query = {"period": W47, "region_id": county.regions["east"]}
    response = sup.client.get(
        "/api/v1/reports/coverage.xlsx", query_string=query, headers=sup.headers
    )
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    assert "attachment" in response.headers["Content-Disposition"]
    assert load_workbook(io.BytesIO(response.data)).sheetnames[0] == "覆盖率"
    cadre = county.device("cadre_a")
    denied = cadre.client.get(
        "/api/v1/reports/coverage.xlsx", query_string=query, headers=cadre.headers
    )
    assert denied.status_code == 403


# --- CSV ----------------------------------------------------------------------------------------


def test_the_csv_starts_with_a_bom_and_holds_the_coverage_table(county):
    with county.app.app_context():
        text = exports.weekly_bulletin_csv(W47, county.regions["county"])
    assert text.startswith("\ufeff乡镇,村,应访户数,已访户数,未访户数,覆盖率\r\n")
    lines = text.lstrip("\ufeff").splitlines()
    assert lines[1:3] == ["东河镇,下村,1,1,0,100.0%", "东河镇,上村,3,2,1,66.7%"]
    assert lines[-1] == "合计,,5,3,2,60.0%"


def test_the_csv_endpoint_sends_utf8_with_a_bom(county):
    sup = county.device("sup_east")
    query = {"period": W47, "region_id": county.regions["east"]}
    response = sup.client.get(
        "/api/v1/reports/coverage.csv", query_string=query, headers=sup.headers
    )
    assert response.status_code == 200
    assert response.data.startswith("\ufeff乡镇".encode())
    assert response.mimetype == "text/csv"


# --- the SQLite snapshot ------------------------------------------------------------------------


@pytest.fixture
def snapshot(county, tmp_path):
    path = tmp_path / "zoufang.sqlite"
    with county.app.app_context():
        counts = exports.sqlite_snapshot(path)
    return path, counts


def read_only(path):
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def test_the_snapshot_holds_every_table_with_its_rows(snapshot):
    path, counts = snapshot
    assert counts == {
        "regions": 6,
        "users": 5,
        "assignments": 6,
        "households": 5,
        "people": 1,
        "visits": 3,
        "problems": 2,
        "measures": 0,
    }
    with read_only(path) as conn:
        for table, count in counts.items():
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == count


def test_the_snapshot_masks_id_numbers_and_phones_and_has_no_password_hashes(snapshot):
    path, _ = snapshot
    with read_only(path) as conn:
        person = conn.execute("SELECT id_number, flags FROM people").fetchone()
        phones = {r[0] for r in conn.execute("SELECT phone FROM households")}
        users = [r[1] for r in conn.execute("PRAGMA table_info(users)")]
    assert person == ("341823********1790", '["elderly"]')
    assert all(p.startswith("139****") for p in phones)
    assert "password_hash" not in users


def test_the_snapshot_declares_foreign_keys_and_indexes(snapshot):
    path, _ = snapshot
    with read_only(path) as conn:
        keys = {(r[3], r[2]) for r in conn.execute("PRAGMA foreign_key_list(visits)")}
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(visits)")}
        violations = conn.execute("PRAGMA foreign_key_check").fetchall()
    assert keys == {
        ("household_id", "households"),
        ("village_id", "regions"),
        ("visitor_id", "users"),
    }
    assert "idx_visits_household_id_visited_at_effective" in indexes
    assert violations == []


def test_the_snapshot_is_a_read_only_file_in_rollback_journal_mode(snapshot):
    path, _ = snapshot
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    with read_only(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_the_snapshot_gives_each_visit_its_local_date_week_and_month(snapshot):
    path, _ = snapshot
    with read_only(path) as conn:
        rows = conn.execute(
            "SELECT visited_at_effective, visited_date, iso_week, month FROM visits ORDER BY 1"
        ).fetchall()
    assert rows[0] == ("2026-11-18T10:00:00+08:00", "2026-11-18", W47, "2026-11")


def test_zoufang_export_sqlite_writes_the_snapshot(app, tmp_path):
    build_county(app)
    path = tmp_path / "z.sqlite"
    env = {"ZOUFANG_DATABASE_URL": app.config["DATABASE_URL"], "ZOUFANG_SECRET_KEY": "x"}
    result = CliRunner(env=env).invoke(main, ["export", "sqlite", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["counts"]["households"] == 5
    with read_only(path) as conn:
        assert conn.execute("SELECT count(*) FROM regions").fetchone()[0] == 6


def test_exporting_again_replaces_the_read_only_snapshot(snapshot, county):
    path, _ = snapshot
    with county.app.app_context():
        counts = exports.sqlite_snapshot(path)
    assert counts["visits"] == 3
