"""XLSForm repeats, the remaining question types and choices from outside the choices sheet
(forms/README.md, "XLSForm import")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from forms import parse_definition, validate_answers
from forms.xlsform import XLSFormError
from server.admin.xlsform_io import MediaFolder, convert_sheets
from tests.test_xlsform import convert, field_of, problems_of, where

MEMBERS = [
    {"type": "integer", "name": "hh_size", "label": "人数"},
    {"type": "begin_repeat", "name": "member", "label": "成员", "repeat_count": "${hh_size}"},
    {"type": "text", "name": "member_name", "label": "姓名", "required": "yes"},
    {"type": "begin_group", "name": "work", "label": "工作"},
    {"type": "integer", "name": "age", "label": "年龄"},
    {"type": "decimal", "name": "income", "label": "收入", "relevant": "${age} >= 16"},
    {"type": "end_group"},
    {"type": "end_repeat"},
]


def test_begin_repeat_becomes_a_repeat_field_holding_its_questions() -> None:
    doc = convert(*MEMBERS)
    member = field_of(doc, "member")
    assert member["type"] == "repeat" and member["repeat_count"] == "hh_size"
    assert [f["id"] for f in member["fields"]] == ["member_name", "age", "income"]
    income = member["fields"][2]
    assert income["relevant"] == "age >= 16" and income["group"] == "work"
    assert "member_name" not in [f["id"] for f in doc["versions"][0]["fields"]]


def test_repeat_count_may_be_a_whole_number() -> None:
    rows = [dict(MEMBERS[1], repeat_count="3"), MEMBERS[2], MEMBERS[-1]]
    assert field_of(convert(*rows), "member")["repeat_count"] == 3


def test_repeat_count_may_be_a_calculation_outside_the_repeat() -> None:
    calc = {"type": "calculate", "name": "entries", "calculation": "${n} + 1"}
    rows = [calc, dict(MEMBERS[1], repeat_count="${entries}"), MEMBERS[2], MEMBERS[-1]]
    doc = convert(*rows)
    assert field_of(doc, "member")["repeat_count"] == "entries"
    (form,) = parse_definition(doc)
    one = {"member_name": "a"}
    assert validate_answers(form, {"n": 1, "entries": 2, "member": [one, one]}) == {}
    assert validate_answers(form, {"n": 1, "entries": 2, "member": [one]}) == {
        "member": ["entry_count:2"]
    }


def test_repeat_seed_people_asks_the_repeat_once_per_person() -> None:
    rows = [dict(MEMBERS[1], repeat_count="", repeat_seed="people"), MEMBERS[2], MEMBERS[-1]]
    member = field_of(convert(*rows), "member")
    assert member["seed"] == "people" and "repeat_count" not in member


def test_repeat_seed_other_than_people_is_refused_at_its_row() -> None:
    rows = [dict(MEMBERS[1], repeat_count="", repeat_seed="plots"), MEMBERS[2], MEMBERS[-1]]
    assert where(problems_of(*rows))[0][2] == "repeat_seed"


def test_a_repeat_inside_a_repeat_is_a_repeat_among_its_fields() -> None:
    inner = [
        {"type": "integer", "name": "n_children", "label": "子女数"},
        {"type": "begin_repeat", "name": "child", "label": "子女", "repeat_count": "${n_children}"},
        {"type": "text", "name": "child_name", "label": "姓名"},
        {"type": "end_repeat"},
    ]
    member = field_of(convert(*MEMBERS[:3], *inner, MEMBERS[-1]), "member")
    child = member["fields"][-1]
    assert child["type"] == "repeat" and child["repeat_count"] == "n_children"
    assert [f["id"] for f in child["fields"]] == ["child_name"]


def test_repeats_four_deep_are_refused_at_the_row_of_the_fourth() -> None:
    rows: list[dict[str, Any]] = []
    for depth in range(4):
        rows.append({"type": "begin_repeat", "name": f"r{depth}", "label": "r"})
    rows.append({"type": "text", "name": "deep", "label": "d"})
    rows += [{"type": "end_repeat"}] * 4
    assert where(problems_of(*rows)) == [("survey", 14, None)]  # the fourth begin_repeat


def test_a_mistake_inside_a_repeat_is_placed_at_its_row() -> None:
    rows = [*MEMBERS[:3], {"type": "integer", "name": "n2", "label": "n", "default": "x"}]
    problems = problems_of(*rows, MEMBERS[-1])
    assert where(problems) == [("survey", len(rows) + 10, "default")]  # after 9 QUESTIONS


@pytest.mark.parametrize("kind", ["audio", "video", "file", "barcode"])
def test_audio_video_file_and_barcode_keep_their_type(kind: str) -> None:
    doc = convert({"type": kind, "name": "q", "label": "q"})
    assert field_of(doc, "q")["type"] == kind


def test_rank_orders_the_choices_of_its_list() -> None:
    doc = convert({"type": "rank risk", "name": "q", "label": "q"})
    q = field_of(doc, "q")
    assert q["type"] == "rank" and [c["value"] for c in q["choices"]] == ["low", "medium", "high"]


def test_select_one_external_takes_the_external_choices_sheet_with_its_filter_columns() -> None:
    sheets = {
        "survey": [
            {"type": "select_one towns", "name": "town", "label": "镇"},
            {
                "type": "select_one_external villages",
                "name": "village",
                "label": "村",
                "choice_filter": "town=${town}",
            },
        ],
        "choices": [{"list_name": "towns", "name": n, "label": n} for n in ("north", "south")],
        "external_choices": [
            {"list_name": "villages", "name": "xiao", "label": "小庄", "town": "north"},
            {"list_name": "villages", "name": "xiao", "label": "小庄", "town": "south"},
        ],
        "settings": [{"form_id": "ext"}],
    }
    village = convert_sheets(sheets)["versions"][0]["fields"][1]
    assert village["type"] == "single_choice"
    assert [c["filter"] for c in village["choices"]] == [{"town": "north"}, {"town": "south"}]


def test_select_one_from_file_copies_the_rows_of_the_attached_csv(tmp_path: Path) -> None:
    (tmp_path / "villages.csv").write_text(
        "name,label::Chinese (zh),label::English (en),town\nxiao,小庄,Xiaozhuang,north\n",
        encoding="utf-8",
    )
    row = {"type": "select_multiple_from_file villages.csv", "name": "v", "label": "村"}
    doc = convert(row, media=MediaFolder(tmp_path))
    v = field_of(doc, "v")
    assert v["type"] == "multiple_choice"
    assert v["choices"] == [{"value": "xiao", "label": {"zh-CN": "小庄", "en": "Xiaozhuang"}}]


def test_a_choices_file_that_is_not_attached_is_refused_at_its_row(tmp_path: Path) -> None:
    row = {"type": "select_one_from_file villages.csv", "name": "v", "label": "村"}
    with pytest.raises(XLSFormError) as caught:
        convert(row, media=MediaFolder(tmp_path))
    assert "villages.csv is not attached" in str(caught.value)


def test_a_choices_file_is_looked_up_by_plain_name_only(tmp_path: Path) -> None:
    (tmp_path / "villages.csv").write_text("name,label\nx,x\n", encoding="utf-8")
    folder: Any = MediaFolder(tmp_path / "sub")
    assert "../villages.csv" not in folder and "villages.csv" not in folder


COLOURS = [
    {"list_name": "colours", "name": "red", "label": "红", "pastel": "no"},
    {"list_name": "colours", "name": "mauve", "label": "淡紫", "pastel": "yes"},
    {"list_name": "colours", "name": "apricot", "label": "杏色", "pastel": "yes"},
]


@pytest.mark.parametrize(
    ("choice_filter", "kept", "left"),
    [
        ("pastel=yes", ["mauve", "apricot"], False),
        ("pastel = 'yes'", ["red", "mauve", "apricot"], True),  # a {column, value} term
        ("name != 'mauve'", ["red", "apricot"], False),
        ("label != ''", ["red", "mauve", "apricot"], False),
        ("pastel != 'yes' and name != 'red'", [], False),
    ],
)
def test_a_choice_filter_on_the_choices_own_columns_is_decided_at_import(
    choice_filter: str, kept: list[str], left: bool
) -> None:
    text = choice_filter
    sheets = {
        "survey": [
            {"type": "select_one colours", "name": "c", "label": "c", "choice_filter": text}
        ],
        "choices": COLOURS,
        "settings": [{"form_id": "colours"}],
    }
    if not kept:
        with pytest.raises(XLSFormError, match="non-empty list of choices"):
            convert_sheets(sheets)
        return
    (c,) = convert_sheets(sheets)["versions"][0]["fields"]
    assert [choice["value"] for choice in c["choices"]] == kept
    assert ("choice_filter" in c) == left


def test_begin_loop_asks_its_questions_once_per_choice_in_a_group_each() -> None:
    doc = convert(
        {"type": "begin_loop over risk", "name": "per_risk", "label": "风险"},
        {"type": "integer", "name": "cases", "label": "%(label)s 的户数"},
        {"type": "end_loop"},
    )
    fields = [f for f in doc["versions"][0]["fields"] if f.get("group", "").startswith("per_risk")]
    assert [f["id"] for f in fields] == ["cases_low", "cases_medium", "cases_high"]
    assert fields[0]["label"]["zh-CN"] == "low 的户数" and fields[0]["group"] == "per_risk_low"


def test_the_cli_reads_a_choices_file_from_media_or_refuses_the_row_without_it(
    county: Any, tmp_path: Path
) -> None:
    from tests.samples.make_xlsforms import workbook_bytes
    from tests.test_xlsform import cli

    survey = [["type", "name", "label"], ["select_one_from_file villages.csv", "village", "村"]]
    book = tmp_path / "survey.xlsx"
    book.write_bytes(workbook_bytes({"survey": survey, "settings": [["form_id"], ["villages"]]}))
    refused = cli(county.app, "forms", "import-xlsform", str(book))
    assert refused.exit_code == 1
    assert "survey row 2, column type: the choices file villages.csv is not attached" in (
        refused.output
    )
    media = tmp_path / "media"
    media.mkdir()
    (media / "villages.csv").write_text("name,label\nshang,上村\nxia,下村\n", encoding="utf-8")
    result = cli(county.app, "forms", "import-xlsform", str(book), "--media", str(media))
    assert result.exit_code == 0, result.output
    assert "published villages version 1 (1 fields)" in result.output


def test_forms_list_counts_the_questions_inside_a_repeat_not_the_repeat(
    county: Any, tmp_path: Path
) -> None:
    from tests.samples.make_xlsforms import workbook_bytes
    from tests.test_xlsform import cli

    header = ["type", "name", "label", "repeat_count"]
    survey = [header, *([row.get(key) for key in header] for row in MEMBERS)]
    book = tmp_path / "members.xlsx"
    book.write_bytes(workbook_bytes({"survey": survey, "settings": [["form_id"], ["members"]]}))
    result = cli(county.app, "forms", "import-xlsform", str(book))
    assert "published members version 1 (4 fields)" in result.output, result.output
    listed = json.loads(cli(county.app, "forms", "list", "--json").output)
    assert [f["fields"] for f in listed if f["form_id"] == "members"] == [4]


def test_repeat_count_may_be_an_expression_of_questions_outside_it() -> None:
    rows = [MEMBERS[0], dict(MEMBERS[1], repeat_count="${hh_size} - 1"), MEMBERS[2], MEMBERS[-1]]
    assert field_of(convert(*rows), "member")["repeat_count"] == "(hh_size - 1)"


def test_zoufang_type_person_makes_a_text_question_a_pick_of_the_households_people() -> None:
    doc = convert({"type": "text", "name": "who", "label": "谁", "zoufang_type": "person"})
    assert field_of(doc, "who")["type"] == "person"


def test_zoufang_type_other_than_person_on_a_text_is_refused_at_its_row() -> None:
    problems = problems_of(
        {"type": "integer", "name": "who", "label": "谁", "zoufang_type": "person"}
    )
    assert where(problems) == [("survey", 11, "zoufang_type")]  # after 9 QUESTIONS


def test_bounds_of_the_answer_before_a_condition_are_min_max_and_the_condition_the_rest() -> None:
    doc = convert(
        {"type": "integer", "name": "cap", "label": "cap"},
        {
            "type": "integer",
            "name": "q",
            "label": "q",
            "constraint": ". >= 0 and . <= 9 and ${q} <= ${cap}",
        },
    )
    q = field_of(doc, "q")
    assert (q["min"], q["max"], q["constraint"]) == (0, 9, "q <= cap")


def test_a_maximum_length_before_a_condition_imports_as_both() -> None:
    doc = convert(
        {
            "type": "text",
            "name": "motto",
            "label": "m",
            "constraint": "string-length(.) <= 5 and regex(${motto}, '^a')",
        }
    )
    t = field_of(doc, "motto")
    assert (t["max_length"], t["constraint"]) == (5, "regex(motto, '^a')")
