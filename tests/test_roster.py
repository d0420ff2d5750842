"""Roster import (CONTRACT §1 `zoufang import roster`): format, checks, matching, atomicity."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import func, select

from server.admin.demo import id_number_check_digit
from server.admin.roster import RosterRejected, import_roster
from server.cli import main
from server.storage.models import AuditEntry, Counter, FieldWrite, Op
from server.storage.store import TABLES
from tests.county import uid

SAMPLE = Path(__file__).parent / "samples" / "roster_example.csv"
HEADER = [
    "户编码",
    "户主姓名",
    "乡镇",
    "村",
    "人员姓名",
    "与户主关系",
    "身份证号",
    "性别",
    "出生年份",
    "类别",
    "老",
    "弱",
    "病",
    "残",
    "孤",
    "独居",
    "留守",
    "联系电话",
    "备注",
]
FULL_ID = re.compile(r"\d{17}[\dX]")


def id_number(born: str = "19411020", sequence: str = "179") -> str:
    first17 = "341823" + born + sequence
    return first17 + id_number_check_digit(first17)


def row(**cells: str) -> dict[str, str]:
    """One person's row of household 341823101001001, with ``cells`` changed."""
    base = {
        "户编码": "341823101001001",
        "户主姓名": "汪德明",
        "乡镇": "榔桥镇",
        "村": "大庄村",
        "人员姓名": "汪德明",
        "与户主关系": "户主",
        "类别": "脱贫户",
    }
    return {**base, **cells}


def roster_csv(rows: list[dict[str, str]], header: list[str] = HEADER, bom: bool = False) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for cells in rows:
        writer.writerow([cells.get(name, "") for name in header])
    return ("\ufeff" if bom else "").encode() + out.getvalue().encode()


def run(app, content: bytes, county: str | None = "绩溪县", **options):
    with app.app_context():
        return import_roster(content, county=county, **options)


def rejected(app, content: bytes, county: str | None = "绩溪县") -> RosterRejected:
    with pytest.raises(RosterRejected) as caught:
        run(app, content, county)
    return caught.value


def records(app, type_: str) -> list[dict]:
    table = TABLES[type_]
    with app.extensions["zoufang_store"].engine.connect() as conn:
        rows = conn.execute(select(table).where(~table.c.deleted).order_by(table.c.version)).all()
    return [{"id": r.id, "version": r.version, **json.loads(r.data)} for r in rows]


def count(app, model) -> int:
    with app.extensions["zoufang_store"].engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(model)).scalar()


def head_version(app) -> int:
    return app.extensions["zoufang_store"].head_version()


def by_code(app) -> dict[str, dict]:
    return {h["code"]: h for h in records(app, "household")}


def people_named(app) -> dict[str, dict]:
    return {p["name"]: p for p in records(app, "person")}


# --- the sample and the format ---------------------------------------------------------------


def test_the_sample_roster_imports_its_households_people_and_regions(any_app):
    summary = run(any_app, SAMPLE.read_bytes())

    assert summary["households"] == {"created": 6, "updated": 0, "unchanged": 0}
    assert summary["people"] == {"created": 10, "updated": 0, "unchanged": 0}
    assert summary["regions"] == {"created": 7}  # 县, 2 镇, 4 村
    regions = {r["name"]: r for r in records(any_app, "region")}
    assert regions["大庄村"]["parent_id"] == regions["榔桥镇"]["id"]
    assert regions["榔桥镇"]["parent_id"] == regions["绩溪县"]["id"]
    household = by_code(any_app)["341823101001002"]
    assert household["village_id"] == regions["大庄村"]["id"]
    assert (household["head_name"], household["category"]) == ("胡秀英", "监测户")
    assert household["phone"] == "13905631202"
    people = people_named(any_app)
    assert people["程小军"]["household_id"] == household["id"]
    assert people["程小军"]["flags"] == ["left_behind"]
    assert people["吴国华"]["flags"] == ["elderly", "frail", "sick"]
    assert people["汪德明"]["id_number"] == "341823194110201790"  # stored in full
    assert people["陈小平"]["birth_year"] == 1985


def test_the_sample_roster_warns_of_gender_digits_that_disagree_but_imports(app):
    summary = run(app, SAMPLE.read_bytes())

    warned = sorted(w.row for w in summary["warnings"] if w.code == "gender_mismatch")
    assert warned == [3, 4, 6, 8]
    assert len(records(app, "person")) == 10


def test_visit_policy_is_weekly_with_any_flag_then_by_category_then_monthly(app):
    content = roster_csv(
        [
            row(户编码="A1", 户主姓名="甲", 人员姓名="甲", 类别="一般户", 独居="是"),
            row(户编码="A2", 户主姓名="乙", 人员姓名="乙", 类别="监测户"),
            row(户编码="A3", 户主姓名="丙", 人员姓名="丙", 类别="脱贫户", 老="否"),
        ]
    )
    run(app, content)

    policies = {code: h["visit_policy"] for code, h in by_code(app).items()}
    assert policies == {"A1": "weekly", "A2": "monthly", "A3": "monthly"}


def test_the_visit_policy_mapping_is_configuration(app):
    app.config["VISIT_POLICY"] = {"categories": {"监测户": "weekly"}, "default": "none"}
    content = roster_csv(
        [
            row(户编码="A2", 户主姓名="乙", 人员姓名="乙", 类别="监测户"),
            row(户编码="A3", 户主姓名="丙", 人员姓名="丙", 类别="一般户"),
        ]
    )
    run(app, content)

    assert by_code(app)["A2"]["visit_policy"] == "weekly"
    assert by_code(app)["A3"]["visit_policy"] == "none"


def test_the_visit_policy_can_be_set_by_the_environment(monkeypatch, sqlite_url, tmp_path):
    from tests.conftest import app_for

    monkeypatch.setenv("ZOUFANG_VISIT_POLICY", '{"categories": {"脱贫户": "weekly"}}')
    app = app_for(sqlite_url, tmp_path)
    run(app, roster_csv([row()]))

    assert by_code(app)["341823101001001"]["visit_policy"] == "weekly"
    app.extensions["zoufang_store"].engine.dispose()


@pytest.mark.parametrize("bom", [True, False])
def test_csv_with_or_without_a_byte_order_mark_imports(app, bom):
    content = SAMPLE.read_bytes().removeprefix(b"\xef\xbb\xbf")
    summary = run(app, (b"\xef\xbb\xbf" if bom else b"") + content)

    assert summary["people"]["created"] == 10
    assert by_code(app)["341823101001001"]["head_name"] == "汪德明"


def test_columns_in_another_order_import_the_same_records(app):
    with SAMPLE.open(encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    shuffled = list(reversed(HEADER))
    run(app, roster_csv(rows, header=shuffled))

    people = people_named(app)
    assert len(people) == 10
    assert people["程小军"]["flags"] == ["left_behind"]
    assert people["程小军"]["relation"] == "孙子"
    assert by_code(app)["341823102002001"]["category"] == "监测户"


def test_an_xlsx_roster_built_with_openpyxl_imports_with_numbers_as_codes(app):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["花名册（2026 年 11 月）"])  # a title row above the header
    sheet.append(
        ["人员姓名", "户编码", "户主姓名", "乡镇", "村", "与户主关系", "类别"]
        + ["身份证号", "出生年份", "老"]
    )
    sheet.append(
        [
            "汪德明",
            341823101001001,
            "汪德明",
            "榔桥镇",
            "大庄村",
            "户主",
            "脱贫户",
            id_number(),
            1941,
            "是",
        ]
    )
    sheet.append(
        [
            "汪小花",
            341823101001001,
            "汪德明",
            "榔桥镇",
            "大庄村",
            "孙女",
            "脱贫户",
            None,
            2012,
            None,
        ]
    )
    buffer = io.BytesIO()
    workbook.save(buffer)

    summary = run(app, buffer.getvalue())

    assert summary["people"]["created"] == 2
    household = by_code(app)["341823101001001"]
    assert household["visit_policy"] == "weekly"
    assert people_named(app)["汪德明"]["birth_year"] == 1941
    assert people_named(app)["汪德明"]["id_number"] == id_number()


def test_an_xlsx_id_number_stored_as_a_number_is_reported_at_its_file_row(app):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["户编码", "户主姓名", "乡镇", "村", "人员姓名", "与户主关系", "类别", "身份证号"])
    sheet.append(
        ["H1", "汪德明", "榔桥镇", "大庄村", "汪德明", "户主", "脱贫户", 341823194110201790]
    )
    buffer = io.BytesIO()
    workbook.save(buffer)

    error = rejected(app, buffer.getvalue())

    assert [(e.row, e.column, e.code) for e in error.errors] == [
        (2, "身份证号", "id_stored_as_number")
    ]


# --- bad files: every bad row reported, nothing imported ------------------------------------


def test_a_missing_required_column_is_one_error_naming_it(app):
    header = [h for h in HEADER if h != "与户主关系"]
    error = rejected(app, roster_csv([row(), row(人员姓名="汪小花")], header=header))

    assert [(e.row, e.column, e.code) for e in error.errors] == [
        (1, "与户主关系", "missing_column")
    ]
    assert "与户主关系" in error.errors[0].text(english=True)


def test_empty_required_cells_are_reported_per_row_and_column(app):
    error = rejected(app, roster_csv([row(), row(人员姓名="", 与户主关系="孙女"), row(类别="")]))

    assert [(e.row, e.column, e.code) for e in error.errors] == [
        (3, "人员姓名", "required"),
        (4, "类别", "required"),
    ]


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (id_number()[:-1] + ("0" if id_number()[-1] != "0" else "1"), "id_check_digit"),
        (id_number()[:17], "id_length"),
        ("34182319411320179X", "id_birth_date"),  # month 13
        ("3418231941102017A" + "9", "id_characters"),
    ],
)
def test_a_bad_id_number_is_an_error_with_its_row_and_never_shown_in_full(app, value, code):
    error = rejected(
        app, roster_csv([row(身份证号=value), row(人员姓名="汪小花", 与户主关系="孙女")])
    )

    assert [(e.row, e.column, e.code) for e in error.errors] == [(2, "身份证号", code)]
    for english in (True, False):
        assert value not in error.errors[0].text(english)
        assert not FULL_ID.search(error.errors[0].text(english))


def test_a_gender_that_disagrees_with_the_id_number_is_only_a_warning(app):
    summary = run(app, roster_csv([row(身份证号=id_number(), 性别="女")]))

    assert [(w.row, w.code) for w in summary["warnings"]] == [(2, "gender_mismatch")]
    assert people_named(app)["汪德明"]["gender"] == "女"  # as the roster says


def test_rows_of_one_household_code_with_conflicting_heads_are_rejected(app):
    content = roster_csv(
        [
            row(),
            row(人员姓名="王桂兰", 与户主关系="配偶", 户主姓名="汪德民"),
            row(人员姓名="汪小花", 与户主关系="孙女", 村="黄田村"),
        ]
    )
    error = rejected(app, content)

    assert [(e.row, e.column, e.code) for e in error.errors] == [
        (3, "户主姓名", "conflicting_household"),
        (4, "村", "conflicting_household"),
    ]
    assert "row 2" in error.errors[0].message(english=True)


def test_a_person_twice_in_a_household_is_rejected(app):
    content = roster_csv(
        [
            row(),
            row(人员姓名="汪小花", 与户主关系="孙女"),
            row(人员姓名="汪小花", 与户主关系="孙女"),
            row(户编码="H2", 户主姓名="王", 人员姓名="王", 身份证号=id_number()),
            row(户编码="H3", 户主姓名="李", 人员姓名="李", 身份证号=id_number()),
        ]
    )
    error = rejected(app, content)

    assert [(e.row, e.code) for e in error.errors] == [
        (4, "duplicate_person"),
        (6, "duplicate_id_number"),
    ]
    assert not FULL_ID.search(error.errors[1].text(True))


def test_two_people_of_one_name_and_relation_with_different_id_numbers_are_two_people(app):
    content = roster_csv(
        [
            row(),
            row(人员姓名="汪小", 与户主关系="孙子", 身份证号=id_number("20120101", "011")),
            row(人员姓名="汪小", 与户主关系="孙子", 身份证号=id_number("20140101", "011")),
        ]
    )
    assert run(app, content)["people"]["created"] == 3


@pytest.mark.parametrize("value", ["abc", "1850", "2990", "19４1"])
def test_a_birth_year_that_is_no_plausible_year_is_rejected(app, value):
    error = rejected(app, roster_csv([row(出生年份=value)]))

    assert [(e.row, e.column, e.code) for e in error.errors] == [(2, "出生年份", "bad_year")]


@pytest.mark.parametrize("value", ["Y", "1", "√", "是的"])
def test_a_flag_cell_other_than_shi_fou_or_blank_is_rejected(app, value):
    error = rejected(app, roster_csv([row(留守=value)]))

    assert [(e.row, e.column, e.code) for e in error.errors] == [(2, "留守", "bad_flag")]


def test_one_bad_row_among_many_imports_nothing(app):
    rows = [row(户编码=f"H{i}", 户主姓名=f"户主{i}", 人员姓名=f"户主{i}") for i in range(50)]
    rows[37]["出生年份"] = "一九四一"
    before = head_version(app)

    error = rejected(app, roster_csv(rows))

    assert [e.row for e in error.errors] == [39]
    assert records(app, "region") == [] and records(app, "household") == []
    assert head_version(app) == before


def test_a_file_that_is_not_utf8_is_reported(app):
    error = rejected(app, SAMPLE.read_text(encoding="utf-8-sig").encode("gb18030"))

    assert [e.code for e in error.errors] == ["not_utf8"]


def test_a_header_only_file_is_an_error(app):
    assert [e.code for e in rejected(app, roster_csv([])).errors] == ["no_rows"]


# --- re-import: matching and updates ---------------------------------------------------------


def test_importing_the_same_file_again_changes_nothing(any_app):
    run(any_app, SAMPLE.read_bytes())
    version = head_version(any_app)

    summary = run(any_app, SAMPLE.read_bytes())

    assert summary["households"] == {"created": 0, "updated": 0, "unchanged": 6}
    assert summary["people"] == {"created": 0, "updated": 0, "unchanged": 10}
    assert summary["regions"] == {"created": 0}
    assert head_version(any_app) == version
    assert len(records(any_app, "household")) == 6


def test_reimport_updates_changed_fields_through_the_sync_engine(any_app):
    run(any_app, SAMPLE.read_bytes())
    text = SAMPLE.read_text(encoding="utf-8-sig")
    text = text.replace(
        "程小军,孙子,341823201108163783,男,2011,监测户,,,,,,,是",
        "程小军,孙子,341823201108163783,男,2011,监测户,,,是,,,,",
    )
    text = text.replace("13905631206", "13800000006")
    assert text != SAMPLE.read_text(encoding="utf-8-sig")
    before = {p["name"]: p["version"] for p in records(any_app, "person")}

    summary = run(any_app, text.encode())

    assert summary["households"] == {"created": 0, "updated": 1, "unchanged": 5}
    assert summary["people"] == {"created": 0, "updated": 3, "unchanged": 7}
    people = people_named(any_app)
    assert len(people) == 10 and len(records(any_app, "household")) == 6
    assert people["程小军"]["flags"] == ["sick"]
    assert people["程小军"]["version"] > before["程小军"]
    assert people["陈小平"]["phone"] == "13800000006"
    assert by_code(any_app)["341823102002001"]["phone"] == "13800000006"
    with any_app.extensions["zoufang_store"].engine.connect() as conn:
        ops = conn.execute(select(Op.type, Op.device_id, Op.status)).all()
        writes = conn.execute(
            select(FieldWrite.field).where(FieldWrite.record_id == people["程小军"]["id"])
        ).scalars()
        assert sorted(writes) == ["flags"]
    assert sorted(o.type for o in ops) == ["household", "person", "person", "person"]
    assert {(o.device_id, o.status) for o in ops} == {("server", "applied")}


def test_a_person_without_id_number_is_matched_by_name_and_relation(app):
    run(app, roster_csv([row(), row(人员姓名="汪小花", 与户主关系="孙女", 出生年份="2012")]))

    summary = run(app, roster_csv([row(), row(人员姓名="汪小花", 与户主关系="孙女", 留守="是")]))

    assert summary["people"] == {"created": 0, "updated": 1, "unchanged": 1}
    person = people_named(app)["汪小花"]
    assert person["flags"] == ["left_behind"]
    assert person["birth_year"] == 2012  # a blank cell never erases a stored value


def test_a_person_is_matched_by_id_number_when_the_name_changes(app):
    run(app, roster_csv([row(身份证号=id_number())]))

    summary = run(
        app, roster_csv([row(人员姓名="汪德民", 户主姓名="汪德民", 身份证号=id_number())])
    )

    assert summary["people"] == {"created": 0, "updated": 1, "unchanged": 0}
    assert [p["name"] for p in records(app, "person")] == ["汪德民"]
    assert by_code(app)["341823101001001"]["head_name"] == "汪德民"


def test_a_corrected_id_number_updates_the_person_found_by_name_with_a_warning(app):
    run(app, roster_csv([row(身份证号=id_number(sequence="179"))]))

    summary = run(app, roster_csv([row(身份证号=id_number(sequence="177"))]))

    assert summary["people"]["updated"] == 1
    assert [w.code for w in summary["warnings"]] == ["id_number_changed"]
    assert not FULL_ID.search(summary["warnings"][0].text(True))
    assert people_named(app)["汪德明"]["id_number"] == id_number(sequence="177")


def test_flags_whose_column_the_file_lacks_are_left_as_they_are(app):
    run(app, roster_csv([row(老="是", 独居="是")]))
    header = [h for h in HEADER if h != "独居"]

    run(app, roster_csv([row(老="")], header=header))

    assert people_named(app)["汪德明"]["flags"] == ["alone"]


def test_a_household_in_another_village_than_stored_is_an_error(app):
    run(app, SAMPLE.read_bytes())
    text = SAMPLE.read_text(encoding="utf-8-sig").replace(
        "榔桥镇,大庄村,汪德明", "榔桥镇,黄田村,汪德明"
    )

    error = rejected(app, text.encode())

    assert [(e.row, e.code) for e in error.errors] == [(2, "household_moved")]
    assert "榔桥镇/大庄村" in error.errors[0].message(True)


def test_regions_are_found_by_name_under_their_parent_on_reimport(app):
    run(app, SAMPLE.read_bytes())
    extra = roster_csv([row(户编码="H9", 户主姓名="新", 人员姓名="新", 村="新村")])

    summary = run(app, extra, county=None)  # the only county is found without --county

    assert summary["regions"] == {"created": 1}
    names = [r["name"] for r in records(app, "region")]
    assert names.count("榔桥镇") == 1 and names.count("新村") == 1


def test_without_a_county_region_the_county_must_be_named(app):
    error = rejected(app, SAMPLE.read_bytes(), county=None)

    assert [e.code for e in error.errors] == ["no_county"]


def test_a_dry_run_counts_the_changes_and_writes_nothing(app):
    before = head_version(app)
    summary = run(app, SAMPLE.read_bytes(), dry_run=True)

    assert summary["dry_run"] is True and summary["households"]["created"] == 6
    assert records(app, "household") == [] and head_version(app) == before


def test_a_failure_while_writing_leaves_nothing_half_imported(any_app, monkeypatch):
    run(any_app, SAMPLE.read_bytes())
    text = SAMPLE.read_text(encoding="utf-8-sig").replace("13905631206", "13800000006")
    text += "341823109009009,新户,新镇,新村,新户,户主,,,,脱贫户,,,,,,,,,\n"
    counts = {m.__name__: count(any_app, m) for m in (Op, FieldWrite, AuditEntry, Counter)}
    version = head_version(any_app)

    def fail(*_args, **_kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("server.admin.roster.audit", fail)  # the very last write of the import
    with pytest.raises(RuntimeError, match="disk full"):
        run(any_app, text.encode())

    assert head_version(any_app) == version
    assert {m.__name__: count(any_app, m) for m in (Op, FieldWrite, AuditEntry, Counter)} == counts
    assert len(records(any_app, "household")) == 6
    assert len(records(any_app, "region")) == 7
    assert people_named(any_app)["陈小平"]["phone"] == "13905631206"


def test_an_import_is_audited_without_personal_data(app):
    run(app, SAMPLE.read_bytes(), actor=None, source="roster_example.csv")

    with app.extensions["zoufang_store"].engine.connect() as conn:
        entry = conn.execute(select(AuditEntry).where(AuditEntry.action == "roster_imported")).one()
    details = json.loads(entry.details)
    assert details["file"] == "roster_example.csv" and details["people"]["created"] == 10
    assert not FULL_ID.search(entry.details)


def test_people_created_on_a_phone_are_kept_when_the_roster_lacks_them(app):
    run(app, roster_csv([row()]))
    household = by_code(app)["341823101001001"]
    from server.service import create_server_records

    with app.app_context():
        create_server_records(
            [("person", uid(), {"household_id": household["id"], "name": "新生儿", "flags": []})],
            actor=None,
        )

    summary = run(app, roster_csv([row()]))

    assert summary["people"] == {"created": 0, "updated": 0, "unchanged": 1}
    assert sorted(people_named(app)) == ["新生儿", "汪德明"]


# --- the command line ------------------------------------------------------------------------


def cli(args, database):
    env = {"ZOUFANG_DATABASE_URL": database, "ZOUFANG_SECRET_KEY": "cli-test", "LANG": "C.UTF-8"}
    return CliRunner(env=env).invoke(main, args, catch_exceptions=False)


def test_the_cli_imports_a_roster_and_exits_0_with_a_summary(tmp_path):
    database = f"sqlite:///{tmp_path / 'z.db'}"

    first = cli(["import", "roster", str(SAMPLE), "--county", "绩溪县"], database)
    again = cli(["import", "roster", str(SAMPLE)], database)

    assert first.exit_code == 0, first.output
    assert "households 6 created, 0 updated" in first.stdout
    assert "people 10 created" in first.stdout and "regions 7 created" in first.stdout
    assert "warning: row 3:" in first.stderr
    assert again.exit_code == 0
    assert "households 0 created, 0 updated, 6 unchanged" in again.stdout


def test_the_cli_exits_non_zero_with_every_row_error_and_imports_nothing(tmp_path):
    database = f"sqlite:///{tmp_path / 'z.db'}"
    bad = tmp_path / "bad.csv"
    text = SAMPLE.read_text(encoding="utf-8-sig")
    text = text.replace("341823194110201790", "341823194110201791").replace(",1952,", ",19x2,")
    bad.write_text(text, encoding="utf-8")

    result = cli(["import", "roster", str(bad), "--county", "绩溪县"], database)

    assert result.exit_code == 1
    assert "row 2: ID number 341823********1791 has a wrong check digit" in result.stderr
    assert "row 3: 出生年份 '19x2' is not a year" in result.stderr
    assert "2 error(s) in bad.csv; nothing was imported" in result.stderr
    assert "341823194110201791" not in result.output
    status = cli(["import", "roster", str(SAMPLE), "--dry-run", "--county", "绩溪县"], database)
    assert "households 6 created" in status.stdout  # still nothing there


def test_the_cli_speaks_chinese_when_lang_is_chinese(tmp_path):
    database = f"sqlite:///{tmp_path / 'z.db'}"
    env = {"ZOUFANG_DATABASE_URL": database, "ZOUFANG_SECRET_KEY": "x", "LANG": "zh_CN.UTF-8"}
    result = CliRunner(env=env).invoke(main, ["import", "roster", str(SAMPLE)])

    assert result.exit_code == 1
    assert "系统中还没有县级区划" in result.stderr


def test_the_cli_refuses_a_file_that_does_not_exist(tmp_path):
    result = cli(["import", "roster", str(tmp_path / "none.csv")], f"sqlite:///{tmp_path / 'z.db'}")

    assert result.exit_code == 2


def test_a_nul_in_a_damaged_cell_is_dropped_not_stored(any_app):
    """PostgreSQL's text columns refuse NUL; no one can type or see it in a cell."""
    run(any_app, roster_csv([row(户主姓名="汪德\x00明", 人员姓名="汪德\x00明")]))
    assert [h["head_name"] for h in records(any_app, "household")] == ["汪德明"]
    assert [p["name"] for p in records(any_app, "person")] == ["汪德明"]
