"""Importing XLSForms (ODK/KoBo spreadsheets) as Zoufang form versions."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forms import parse_definition, parse_expression, validate_answers, validate_definition
from forms.xlsform import SheetProblem, XLSFormError
from server.admin.forms_service import publish_forms
from server.admin.xlsform_io import convert_sheets, convert_workbook, read_xlsform
from server.cli import main
from tests.samples import make_xlsforms

SAMPLES = Path(__file__).parent / "samples"
MONTHLY = SAMPLES / "xlsform_monthly_monitoring.xlsx"
UNSUPPORTED = SAMPLES / "xlsform_unsupported.xlsx"

YES_NO = [
    {"list_name": "yes_no", "name": "yes", "label": "是"},
    {"list_name": "yes_no", "name": "no", "label": "否"},
]
RISK = [{"list_name": "risk", "name": name, "label": name} for name in ("low", "medium", "high")]
KINDS = [{"list_name": "kinds", "name": name, "label": name} for name in ("ill", "flood", "other")]
# Questions every expression test can refer to, one of each kind.
QUESTIONS = [
    {"type": "select_one yes_no", "name": "a", "label": "a"},
    {"type": "select_one risk", "name": "risk", "label": "risk"},
    {"type": "select_multiple kinds", "name": "kinds", "label": "kinds"},
    {"type": "integer", "name": "n", "label": "n"},
    {"type": "decimal", "name": "x", "label": "x"},
    {"type": "text", "name": "t", "label": "t"},
    {"type": "date", "name": "d", "label": "d"},
    {"type": "acknowledge", "name": "ok", "label": "ok"},
    {"type": "image", "name": "photo", "label": "photo"},
]


def convert(*rows: dict[str, Any], **options: Any) -> dict[str, Any]:
    sheets = {
        "survey": [*QUESTIONS, *rows],
        "choices": [*YES_NO, *RISK, *KINDS],
        "settings": [{"form_id": "test_form"}],
    }
    return convert_sheets(sheets, **options)


def field_of(doc: dict[str, Any], field_id: str) -> dict[str, Any]:
    return next(f for f in doc["versions"][0]["fields"] if f["id"] == field_id)


def relevant_of(expression: str) -> str:
    doc = convert({"type": "text", "name": "q", "label": "q", "relevant": expression})
    return str(field_of(doc, "q")["relevant"])


def problems_of(*rows: dict[str, Any], **sheets: Any) -> list[SheetProblem]:
    with pytest.raises(XLSFormError) as caught:
        if sheets:
            convert_sheets(sheets)
        else:
            convert(*rows)
    return caught.value.problems


def where(problems: list[SheetProblem]) -> list[tuple[str, int | None, str | None]]:
    return [(p.sheet, p.row, p.column) for p in problems]


@pytest.fixture(scope="module")
def monthly_doc() -> dict[str, Any]:
    return convert_workbook(MONTHLY)


# The real-shaped sample: a monthly monitoring survey laid out for KoBo


def test_the_monthly_sample_imports_to_a_valid_definition(monthly_doc: dict[str, Any]) -> None:
    assert validate_definition(monthly_doc) == []
    (form,) = parse_definition(monthly_doc)
    assert (form.form_id, form.title["zh-CN"]) == ("monthly_monitoring", "监测户/边缘户月监测")
    assert list(form.fields) == [
        "income_changed",
        "income_change_note",
        "monthly_income",
        "workers",
        "risk_level",
        "risk_types",
        "risk_other",
        "risk_combined",
        "measures_reviewed",
        "new_measure_needed",
        "measure_note",
        "next_visit",
        "home_photo",
        "confirmed",
    ]


def test_the_monthly_sample_maps_each_xlsform_type(monthly_doc: dict[str, Any]) -> None:
    types = {f["id"]: f["type"] for f in monthly_doc["versions"][0]["fields"]}
    assert types == {
        "income_changed": "boolean",  # select_one yes_no
        "income_change_note": "text",
        "monthly_income": "number",  # decimal
        "workers": "integer",
        "risk_level": "single_choice",
        "risk_types": "multiple_choice",
        "risk_other": "text",
        "risk_combined": "text",
        "measures_reviewed": "boolean",
        "new_measure_needed": "boolean",
        "measure_note": "text",
        "next_visit": "date",
        "home_photo": "photo",  # image
        "confirmed": "boolean",  # acknowledge
    }


def test_the_monthly_sample_keeps_chinese_and_english_labels_hints_and_choices(
    monthly_doc: dict[str, Any],
) -> None:
    note = field_of(monthly_doc, "income_change_note")
    assert note["label"] == {"zh-CN": "收入变化情况", "en": "How income changed"}
    assert note["hint"] == {"zh-CN": "变化原因和大致金额", "en": "Why, and roughly how much"}
    risk = field_of(monthly_doc, "risk_level")
    assert risk["choices"][2] == {"value": "high", "label": {"zh-CN": "高", "en": "High"}}


def test_the_monthly_sample_translates_groups_conditions_defaults_and_bounds(
    monthly_doc: dict[str, Any],
) -> None:
    income, risk_types = (
        field_of(monthly_doc, "income_changed"),
        field_of(monthly_doc, "risk_types"),
    )
    assert (income["group"], income["required"], income["default"]) == ("income", True, False)
    assert risk_types["relevant"] == "risk_level == 'medium' or risk_level == 'high'"
    assert field_of(monthly_doc, "risk_other")["relevant"] == "selected(risk_types, 'other')"
    assert field_of(monthly_doc, "risk_combined")["relevant"] == "count(risk_types) >= 2"
    assert field_of(monthly_doc, "home_photo")["relevant"] == "not (measures_reviewed == true)"
    income_bounds = field_of(monthly_doc, "monthly_income")
    assert (income_bounds["min"], income_bounds["max"]) == (0, 100000)
    assert field_of(monthly_doc, "risk_level")["problem"] == {
        "when": "risk_level == 'high'",
        "category": "income",
    }
    assert "group" not in field_of(monthly_doc, "confirmed")


def test_answers_to_the_imported_monthly_form_validate(monthly_doc: dict[str, Any]) -> None:
    (form,) = parse_definition(monthly_doc)
    answers = {
        "income_changed": True,
        "income_change_note": "外出务工收入减少",
        "monthly_income": 850.5,
        "workers": 1,
        "risk_level": "high",
        "risk_types": ["illness", "other"],
        "risk_other": "房屋漏雨",
        "risk_combined": "看病花销加上修房",
        "measures_reviewed": False,
        "new_measure_needed": True,
        "measure_note": "申请临时救助",
        "next_visit": "2026-12-05",
        "home_photo": "ab" * 32,
        "confirmed": True,
    }
    assert validate_answers(form, answers) == {}


def test_the_imported_monthly_form_enforces_its_required_and_relevant_rules(
    monthly_doc: dict[str, Any],
) -> None:
    (form,) = parse_definition(monthly_doc)
    answers = {
        "income_changed": False,
        "income_change_note": "不该填",
        "monthly_income": -1,
        "risk_level": "medium",
        "new_measure_needed": True,
        "confirmed": True,
    }
    assert validate_answers(form, answers) == {
        "income_change_note": ["not_relevant"],
        "monthly_income": ["too_small:0"],
        "risk_types": ["required"],
        "measure_note": ["required"],
    }


# The unsupported sample: every problem at once, each with its sheet, row and column


def test_every_unsupported_feature_is_reported_at_once_with_its_row_and_column() -> None:
    with pytest.raises(XLSFormError) as caught:
        convert_workbook(UNSUPPORTED)
    problems = caught.value.problems
    assert where(problems) == [
        ("survey", 6, "calculation"),
        ("survey", 8, "constraint"),
        ("survey", 11, "type"),
        ("survey", 12, "default"),
        ("survey", 13, "relevant"),
    ]
    messages = [p.message for p in problems]
    for row, phrase in enumerate(
        [
            "once() is not supported",
            "lookaround",
            "the choices file villages.csv is not attached",
            "${last-saved#…} defaults are not supported",
            "pow() is not supported",
        ]
    ):
        assert phrase in messages[row]
    assert "survey row 6, column calculation: cannot translate" in str(caught.value)


# Types


def test_select_one_of_a_yes_no_list_is_a_boolean_but_a_one_zero_list_stays_a_choice() -> None:
    sheets = {
        "survey": [
            {"type": "select_one yn", "name": "a", "label": "a"},
            {"type": "select_one ten", "name": "b", "label": "b"},
            {"type": "select_multiple yn", "name": "c", "label": "c"},
        ],
        "choices": [
            {"list_name": "yn", "name": "Yes", "label": "是"},
            {"list_name": "yn", "name": "No", "label": "否"},
            {"list_name": "ten", "name": 1, "label": "是"},
            {"list_name": "ten", "name": 0, "label": "否"},
        ],
        "settings": [{"form_id": "t"}],
    }
    doc = convert_sheets(sheets)
    assert [f["type"] for f in doc["versions"][0]["fields"]] == [
        "boolean",
        "single_choice",
        "multiple_choice",
    ]
    assert [c["value"] for c in field_of(doc, "b")["choices"]] == ["1", "0"]


def test_metadata_rows_are_skipped_and_spaced_type_words_are_understood() -> None:
    doc = convert(
        {"type": "start", "name": "start"},
        {"type": "deviceid", "name": "deviceid"},
        {"type": "begin group", "name": "g", "label": "g"},
        {"type": "select one yes_no", "name": "q", "label": "q"},
        {"type": "end group"},
    )
    assert field_of(doc, "q") | {"label": None} == {
        "id": "q",
        "type": "boolean",
        "label": None,
        "group": "g",
        "group_label": {"zh-CN": "g", "en": "g"},
    }
    assert not any(f["id"] in ("start", "deviceid") for f in doc["versions"][0]["fields"])


def test_nested_groups_give_the_innermost_name_and_all_their_conditions() -> None:
    doc = convert(
        {"type": "begin_group", "name": "outer", "relevant": "${a} = 'yes'"},
        {"type": "begin_group", "name": "inner", "relevant": "${risk} != 'low'"},
        {"type": "text", "name": "q", "label": "q", "relevant": "${n} > 2"},
        {"type": "end_group"},
        {"type": "end_group"},
    )
    q = field_of(doc, "q")
    assert q["group"] == "inner"
    assert q["relevant"] == "a == true and (risk == null or risk != 'low') and n > 2"


@pytest.mark.parametrize(
    ("row", "column", "phrase"),
    [
        ({"type": "select_one nowhere", "name": "q", "label": "q"}, None, "nowhere"),
        ({"type": "osm", "name": "q", "label": "q"}, "type", "not supported"),
        ({"type": "select_one_from_file v.csv", "name": "q", "label": "q"}, "type", "attached"),
        ({"type": "text", "label": "q"}, None, "no name"),
        ({"name": "q", "label": "q"}, None, "no type"),
        ({"type": "end_group"}, None, "Unmatched 'end_group'"),
        ({"type": "begin_group", "name": "g"}, None, "Unmatched 'begin_group'"),
        ({"type": "note", "name": "q", "label": "q", "calculation": "1"}, "calculation", ""),
        ({"type": "text", "name": "q", "label": "q", "default": "once(${t})"}, "default", "once"),
        ({"type": "select_one yes_no", "name": "q", "label": "q", "default": "x"}, "default", ""),
        ({"type": "integer", "name": "q", "label": "q", "default": "many"}, "default", "number"),
        (
            {"type": "text", "name": "q", "label": "q", "problem_when": "${n} > 1"},
            "problem_category",
            "together",
        ),
        ({"type": "note", "name": "q", "label": "q", "required": "yes"}, "required", "no answer"),
        ({"type": "text", "name": "q", "label": "q", "read_only": "${n} > 1"}, "read_only", "no"),
    ],
)
def test_a_row_zoufang_cannot_hold_is_reported_at_its_row_and_column(
    row: dict[str, Any], column: str | None, phrase: str
) -> None:
    (problem,) = problems_of(row)
    assert (problem.sheet, problem.row, problem.column) == ("survey", 11, column)
    assert phrase in problem.message


def test_blank_rows_count_in_the_row_numbers() -> None:
    problems = problems_of({}, {}, {"type": "osm", "name": "q", "label": "q"})
    assert where(problems) == [("survey", 13, "type")]


# Labels and settings


def test_a_plain_label_serves_both_languages_and_a_missing_language_borrows_the_other() -> None:
    doc = convert(
        {"type": "text", "name": "p", "label": "姓名"},
        {"type": "text", "name": "e", "label::English (en)": "Name"},
        {"type": "text", "name": "z", "label::中文": "姓名", "label::Tibetan (bo)": "མིང"},
        {"type": "text", "name": "both", "Label::chinese (zh-CN)": "姓名", "label::EN": "Name"},
    )
    assert field_of(doc, "p")["label"] == {"zh-CN": "姓名", "en": "姓名"}
    assert field_of(doc, "e")["label"] == {"zh-CN": "Name", "en": "Name"}
    assert field_of(doc, "z")["label"] == {"zh-CN": "姓名", "en": "姓名"}
    assert field_of(doc, "both")["label"] == {"zh-CN": "姓名", "en": "Name"}


def test_settings_give_the_form_id_version_title_and_policy() -> None:
    sheets = {
        "Survey": [{"type": "text", "name": "q", "label": "q"}],
        "settings": [
            {
                "form_id": "household_check",
                "version": 3.0,  # Excel keeps numbers as floats
                "form_title": "入户核查",
                "policy": "weekly",
            }
        ],
    }
    doc = convert_sheets(sheets)
    version = doc["versions"][0]
    assert (doc["form_id"], version["version"], version["policy"]) == (
        "household_check",
        3,
        "weekly",
    )
    assert version["title"] == {"zh-CN": "入户核查", "en": "入户核查"}
    assert convert_sheets(sheets, form_id="other_form", version=7)["form_id"] == "other_form"


def test_settings_problems_are_reported_on_the_settings_sheet() -> None:
    problems = problems_of(
        survey=[{"type": "text", "name": "q", "label": "q"}],
        settings=[{"version": "v2", "policy": "daily"}],
    )
    assert where(problems) == [("settings", 2, "form_id"), ("settings", 2, "policy")]


def test_a_settings_version_that_is_no_number_is_no_mistake() -> None:
    """ODK and Kobo forms often carry a date as their version; the import numbers its own."""
    sheets = {
        "survey": [{"type": "text", "name": "q", "label": "q"}],
        "settings": [{"form_id": "osm_buildings", "version": "2023-05-02 10:43:54"}],
    }
    assert convert_sheets(sheets)["versions"][0]["version"] == 1


def test_a_workbook_without_a_survey_sheet_is_refused() -> None:
    problems = problems_of(choices=[], settings=[{"form_id": "t"}])
    assert [str(p) for p in problems] == ["survey: pyxform: You must have a sheet named 'survey'."]


# Expressions: XLSForm syntax into the condition language


@pytest.mark.parametrize(
    ("xlsform", "zoufang"),
    [
        ("${a} = 'yes'", "a == true"),
        ("${a} = 'no'", "a == false"),
        ("${ok} = 'OK'", "ok == true"),
        ("${risk} = 'high'", "risk == 'high'"),
        ("'high' = ${risk}", "risk == 'high'"),
        ("${risk} != 'low'", "risk == null or risk != 'low'"),
        ("selected(${kinds}, 'flood')", "selected(kinds, 'flood')"),
        ("selected(${risk}, 'high')", "risk == 'high'"),
        ("selected(${a}, 'yes')", "a == true"),
        ("count-selected(${kinds}) > 1", "count(kinds) > 1"),
        ("2 <= count-selected(${kinds})", "count(kinds) >= 2"),
        ("count-selected(${kinds})", "count(kinds) > 0"),
        ("${n} >= 60 and ${x} < -1.50", "n >= 60 and x < -1.5"),
        ("${n} > '3'", "n > 3"),
        ("${d} < '2026-01-01'", "d < '2026-01-01'"),
        ('${t} = "it\'s"', "t == 'it\\'s'"),
        ("${t} = ''", "t == null"),
        ("${t} != ''", "t != null"),
        ("${t}", "t != null"),
        ("not(${a} = 'yes')", "not (a == true)"),
        ("not(${a} = 'yes' or ${n} = 1)", "not (a == true or n == 1)"),
        ("${a} = 'yes' and (${n} = 1 or ${n} = 2)", "a == true and (n == 1 or n == 2)"),
        ("${a} = 'yes' or ${n} = 1 and ${n} = 2", "a == true or n == 1 and n == 2"),
        ("${a} = 'yes' and ${risk} != 'low'", "a == true and (risk == null or risk != 'low')"),
        ("true()", "true"),
        ("${photo} != ''", "photo != null"),
    ],
)
def test_relevant_expressions_are_translated(xlsform: str, zoufang: str) -> None:
    assert relevant_of(xlsform) == zoufang


@pytest.mark.parametrize(
    ("xlsform", "answers", "shown"),
    [
        ("${risk} != 'low'", {}, True),
        ("${risk} != 'low'", {"risk": "low"}, False),
        ("${a} = 'yes'", {}, False),
        ("not(${a} = 'yes')", {}, True),
        ("${t}", {"t": ""}, False),
        ("${n} > 2", {}, False),
    ],
)
def test_translated_conditions_treat_unanswered_questions_as_xlsform_does(
    xlsform: str, answers: dict[str, Any], shown: bool
) -> None:
    """XLSForm compares an unanswered question as empty text: it differs from everything."""
    assert parse_expression(relevant_of(xlsform)).evaluate(answers) is shown


@pytest.mark.parametrize(
    ("xlsform", "phrase"),
    [
        ("${n} + 1", "arithmetic is not a condition"),
        ("pow(${n}, 2) > 4", "pow() is not supported"),
        ("${kinds} > 'flood'", "cannot be compared"),
        ("${n} | ${x}", "unions"),
        ("regex(${t}, '(a)\\1')", "\\1"),
        ("regex(${t}, ${x})", "quoted pattern"),
        ("string-length(${t})", "a value, not a condition"),
        ("once(${n}) > 1", "once() is not supported"),
        ("instance('towns')/root/item[name=${t}]/label = 'x'", "external data (instance"),
        ("${risk} > 'low'", "cannot be compared"),
        ("${a} = 'maybe'", "never 'maybe'"),
        ("${n} = 'many'", "is a number"),
        ("${n} = 1 = 2", "chained"),
        ("(${a} = 'yes'", "not closed"),
        ("${t} = 'open", "string is not closed"),
        (". > 1", "constraints only"),
        ("a = 'yes'", "${a}"),
        ("${n} >", "ends too early"),
        ("${photo} = 'x'", "image"),
        ("'yes'", "not a condition"),
        ("(" * 40 + "${a} = 'yes'" + ")" * 40, "nested too deeply"),
    ],
)
def test_untranslatable_expressions_are_reported_with_the_reason(xlsform: str, phrase: str) -> None:
    (problem,) = problems_of({"type": "text", "name": "q", "label": "q", "relevant": xlsform})
    assert (problem.row, problem.column) == (11, "relevant")
    assert phrase in problem.message


def test_a_required_expression_is_translated_and_yes_words_are_plain_true() -> None:
    doc = convert(
        {"type": "text", "name": "q1", "label": "q", "required": "${a} = 'yes'"},
        {"type": "text", "name": "q2", "label": "q", "required": "TRUE"},
        {"type": "text", "name": "q3", "label": "q", "required": "no"},
        {"type": "text", "name": "q4", "label": "q", "required": True},
    )
    assert field_of(doc, "q1")["required"] == "a == true"
    assert field_of(doc, "q2")["required"] is True
    assert "required" not in field_of(doc, "q3")
    assert field_of(doc, "q4")["required"] is True


def test_a_condition_on_a_misspelt_choice_is_reported_at_its_row() -> None:
    (problem,) = problems_of(
        {"type": "text", "name": "q", "label": "q", "relevant": "${risk} = 'hgih'"}
    )
    assert (problem.row, problem.column) == (11, "relevant")
    assert '"hgih" is not a choice' in problem.message


@pytest.mark.parametrize(
    ("xls_type", "constraint", "bounds"),
    [
        ("integer", ". >= 0 and . <= 120", {"min": 0, "max": 120}),
        ("decimal", "0 <= . and . <= 2.5", {"min": 0, "max": 2.5}),
        ("integer", ". > 0", {"min": 1}),
        ("integer", ". < 10 and . <= 20", {"max": 9}),
        ("text", "string-length(.) <= 50", {"max_length": 50}),
    ],
)
def test_simple_constraints_become_bounds(
    xls_type: str, constraint: str, bounds: dict[str, Any]
) -> None:
    doc = convert({"type": xls_type, "name": "q", "label": "q", "constraint": constraint})
    q = field_of(doc, "q")
    assert {k: q[k] for k in ("min", "max", "max_length") if k in q} == bounds


@pytest.mark.parametrize(
    ("xls_type", "constraint", "condition"),
    [
        ("decimal", ". > 0", "q > 0"),
        ("integer", ". != 0", "q == null or q != 0"),
        ("integer", ". >= ${x}", "q >= x"),
        ("integer", "${n} >= .", "n >= q"),
        ("date", ". != ${d}", "d == null or q != d"),
        ("select_one risk", "not(. = 'low')", "not (q == 'low')"),
        ("integer", ". <= ${n} and . >= 1", "q <= n and q >= 1"),
        ("select_multiple kinds", "count-selected(.) <= 2", "count(q) <= 2"),
        (
            "select_multiple kinds",
            "not(selected(., 'ill') and selected(., 'flood'))",
            "not (selected(q, 'ill') and selected(q, 'flood'))",
        ),
    ],
)
def test_other_constraints_become_a_condition_on_the_answer(
    xls_type: str, constraint: str, condition: str
) -> None:
    doc = convert({"type": xls_type, "name": "q", "label": "q", "constraint": constraint})
    assert field_of(doc, "q")["constraint"] == condition


def test_a_constraint_against_another_question_validates_on_both_sides() -> None:
    doc = convert(
        {"type": "integer", "name": "q", "label": "q", "constraint": ". <= ${n}"},
    )
    (form,) = parse_definition(doc)
    assert validate_answers(form, {"n": 3, "q": 4}) == {"q": ["constraint"]}
    assert validate_answers(form, {"n": 3, "q": 3}) == {}
    assert validate_answers(form, {"q": 3}) == {"q": ["constraint"]}  # as ODK: '' is no bound


@pytest.mark.parametrize(
    ("xls_type", "constraint"),
    [
        ("text", ". >= 2"),
        ("integer", ". >= ${t}"),
        ("text", "regex(., '[')"),
        ("integer", ". >= pow(${n}, 2)"),
    ],
)
def test_constraints_without_an_equivalent_are_reported(xls_type: str, constraint: str) -> None:
    (problem,) = problems_of(
        {"type": xls_type, "name": "q", "label": "q", "constraint": constraint}
    )
    assert (problem.row, problem.column) == (11, "constraint")
    assert "cannot translate" in problem.message


def test_min_above_max_is_reported_at_the_constraint() -> None:
    (problem,) = problems_of(
        {"type": "integer", "name": "q", "label": "q", "constraint": ". >= 5 and . <= 1"}
    )
    assert (problem.row, problem.column) == (11, "constraint")


# Reading .xlsx files


def test_the_committed_samples_hold_what_the_generator_writes(tmp_path: Path) -> None:
    """Compared by content: the bytes also depend on the openpyxl and zlib versions."""
    for written in make_xlsforms.write_samples(tmp_path):
        assert read_xlsform(written) == read_xlsform(SAMPLES / written.name), written.name


def test_the_generator_stamps_no_time_of_its_own_so_its_bytes_never_change() -> None:
    sheets = make_xlsforms.SAMPLES["xlsform_monthly_monitoring.xlsx"]
    with zipfile.ZipFile(io.BytesIO(make_xlsforms.workbook_bytes(sheets))) as workbook:
        assert {entry.date_time for entry in workbook.infolist()} == {make_xlsforms.ZIP_TIME}
        properties = workbook.read("docProps/core.xml").decode()
    stamps = re.findall(r"<dcterms:(?:created|modified)[^>]*>([^<]*)<", properties)
    assert stamps == [make_xlsforms.FIXED_TIME] * 2


def test_reading_a_file_that_is_no_workbook_is_an_import_problem(tmp_path: Path) -> None:
    path = tmp_path / "survey.xlsx"
    path.write_text("type,name,label\n", encoding="utf-8")
    with pytest.raises(XLSFormError) as caught:
        read_xlsform(path)
    assert "survey.xlsx is no .xlsx or .xls workbook" in str(caught.value)


def test_reading_keeps_blank_rows_and_drops_empty_cells() -> None:
    workbook = make_xlsforms.workbook_bytes(
        {"survey": [["type", "name", None, "label"], [], ["text", "q", "stray", "问"], [None]]}
    )
    assert read_xlsform(io.BytesIO(workbook)).survey == [
        {},
        {"type": "text", "name": "q", "label": "问"},
    ]


# The command line: import as the next version, then phones pull it


def cli(app: Any, *args: str) -> Any:
    env = {
        "ZOUFANG_DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "ZOUFANG_SECRET_KEY": "cli-test",
    }
    return CliRunner(env=env).invoke(main, list(args), catch_exceptions=False)


def test_the_cli_imports_the_sample_as_the_next_version_and_a_phone_pulls_it(county: Any) -> None:
    with county.app.app_context():
        publish_forms(actor=None)
    phone = county.device("cadre_a")
    phone.pull_all()
    result = cli(county.app, "forms", "import-xlsform", str(MONTHLY))
    assert result.exit_code == 0, result.output
    assert "published monthly_monitoring version 2 (14 fields)" in result.output
    (record,) = [r for r in phone.pull_all() if r["type"] == "form"]
    assert (record["data"]["form_id"], record["data"]["version"]) == ("monthly_monitoring", 2)
    assert record["data"]["policy"] == "monthly"  # kept from version 1
    assert record["data"]["fields"][0]["id"] == "income_changed"


def test_the_cli_dry_run_prints_the_definition_and_stores_nothing(county: Any) -> None:
    with county.app.app_context():
        publish_forms(actor=None)
    result = cli(county.app, "forms", "import-xlsform", str(MONTHLY), "--dry-run")
    assert result.exit_code == 0, result.output
    assert '"version": 2' in result.stdout and "dry run: would publish" in result.stderr
    listing = cli(county.app, "forms", "list")
    assert "monthly_monitoring" in listing.output and "v2" not in listing.output


def test_importing_the_same_file_twice_publishes_one_version(county: Any) -> None:
    first = cli(county.app, "forms", "import-xlsform", str(MONTHLY), "--form-id", "monitoring_b")
    again = cli(county.app, "forms", "import-xlsform", str(MONTHLY), "--form-id", "monitoring_b")
    assert "published monitoring_b version 1" in first.output
    assert again.exit_code == 0 and "unchanged: identical to the published" in again.output


def test_the_cli_refuses_an_xlsform_with_problems_naming_each_row(county: Any) -> None:
    result = cli(county.app, "forms", "import-xlsform", str(UNSUPPORTED))
    assert result.exit_code == 1
    assert "xlsform_unsupported.xlsx: the XLSForm cannot be imported (5 problems)" in result.output
    assert "survey row 6, column calculation: cannot translate" in result.output
    assert "survey row 13, column relevant: cannot translate" in result.output
    assert "survey row 6, column calculation: cannot translate" in result.output
    assert "household_survey" not in cli(county.app, "forms", "list").output


# Read as pyxform reads: its spellings, .xls, names as written, every new question type

PYXFORM_XLS = SAMPLES / "xlsform_pyxform_yes_or_no.xls"


def test_an_xls_workbook_of_pyxform_s_older_spellings_imports() -> None:
    """pyxform's own example (BSD-2-Clause): .xls, ``select one from``, ``label:english``
    and a ``list name`` column; without a settings sheet the id is the file name's."""
    doc = convert_workbook(PYXFORM_XLS)
    assert doc["form_id"] == "xlsform_pyxform_yes_or_no"
    (good_day,) = doc["versions"][0]["fields"]
    assert good_day["type"] == "boolean"
    assert good_day["label"]["en"] == "have you had a good day today?"


def test_the_form_id_comes_from_the_file_name_made_snake_case(tmp_path: Path) -> None:
    path = tmp_path / "Household Survey 2024.xlsx"
    path.write_bytes(
        make_xlsforms.workbook_bytes({"survey": [["type", "name", "label"], ["text", "q", "Q"]]})
    )
    assert convert_workbook(path)["form_id"] == "household_survey_2024"
    assert convert_workbook(path, form_id="mine")["form_id"] == "mine"


def test_names_are_kept_as_written_and_the_field_id_maps_to_them() -> None:
    doc = convert(
        {"type": "integer", "name": "HH_Size", "label": "size"},
        {"type": "text", "name": "count", "label": "c"},
        {"type": "text", "name": "q", "label": "q", "relevant": "${HH_Size} > 2"},
    )
    assert field_of(doc, "hh_size")["name"] == "HH_Size"
    assert field_of(doc, "count_q")["name"] == "count"
    assert field_of(doc, "q")["relevant"] == "hh_size > 2"
    assert "name" not in field_of(doc, "q")


def test_aliases_and_language_spellings_pyxform_accepts_are_understood() -> None:
    doc = convert(
        {"type": "select one from risk", "name": "s1", "label": "One", "label:Chinese (zh)": "一"},
        {"type": "select all that apply from kinds", "name": "s2", "label::English (en)": "M"},
        {"type": "q int", "name": "i1", "label": "i", "label::Chinese (zh)": "整数"},
        {"type": "location", "name": "g1", "label": "where"},
        {"type": "uri:deviceid", "name": "dev"},
    )
    types = {f["id"]: f["type"] for f in doc["versions"][0]["fields"]}
    assert [types[k] for k in ("s1", "s2", "i1", "g1")] == [
        "single_choice",
        "multiple_choice",
        "integer",
        "geopoint",
    ]
    assert "dev" not in types
    assert field_of(doc, "s1")["label"] == {"zh-CN": "一", "en": "One"}
    assert field_of(doc, "i1")["label"] == {"zh-CN": "整数", "en": "i"}


def test_the_question_types_real_forms_use_are_brought_over() -> None:
    doc = convert(
        {"type": "note", "name": "intro", "label": "Read this"},
        {"type": "time", "name": "tm", "label": "t", "default": "now()"},
        {"type": "dateTime", "name": "when", "label": "w"},
        {"type": "date", "name": "day", "label": "d", "default": "today()"},
        {"type": "geopoint", "name": "home", "label": "h", "default": "26.5 106.7"},
        {"type": "geotrace", "name": "road", "label": "r"},
        {"type": "geoshape", "name": "field", "label": "f"},
        {"type": "range", "name": "score", "label": "s", "parameters": "start=0 end=10 step=2"},
        {"type": "hidden", "name": "source", "default": "kobo"},
        {"type": "trigger", "name": "seen", "label": "OK?"},
    )
    fields = {f["id"]: f for f in doc["versions"][0]["fields"]}
    assert {k: fields[k]["type"] for k in list(fields)[9:]} == {
        "intro": "note",
        "tm": "time",
        "when": "datetime",
        "day": "date",
        "home": "geopoint",
        "road": "geotrace",
        "field": "geoshape",
        "score": "range",
        "source": "hidden",
        "seen": "boolean",
    }
    assert (fields["tm"]["prefill"], fields["day"]["prefill"]) == ("now", "today")
    assert fields["home"]["default"] == {"lat": 26.5, "lon": 106.7}
    assert (fields["score"]["min"], fields["score"]["max"], fields["score"]["step"]) == (0, 10, 2)
    assert fields["source"] == {
        "id": "source",
        "type": "hidden",
        "label": {"zh-CN": "source", "en": "source"},
        "default": "kobo",
    }


def test_or_other_adds_the_other_choice_and_a_text_question_relevant_when_chosen() -> None:
    doc = convert({"type": "select_one risk or_other", "name": "r2", "label": "r"})
    select, other = field_of(doc, "r2"), field_of(doc, "r2_other")
    assert select["choices"][-1] == {"value": "other", "label": {"zh-CN": "其他", "en": "Other"}}
    assert other["type"] == "text"
    assert other["relevant"] == "r2 == 'other'"
    assert other["label"] == {"zh-CN": "请注明其他", "en": "Specify other"}


def test_messages_read_only_and_group_labels_are_kept() -> None:
    doc = convert(
        {"type": "begin_group", "name": "g", "label::English (en)": "Home", "label::中文": "住房"},
        {
            "type": "integer",
            "name": "q",
            "label": "q",
            "required": "yes",
            "required_message": "请填写",
            "constraint": ". >= 0",
            "constraint_message::English (en)": "not negative",
            "read_only": "yes",
            "default": "0",
        },
        {"type": "end_group"},
    )
    q = field_of(doc, "q")
    assert q["required_message"] == {"zh-CN": "请填写", "en": "请填写"}
    assert q["constraint_message"] == {"zh-CN": "not negative", "en": "not negative"}
    assert q["read_only"] is True and q["min"] == 0
    assert q["group_label"] == {"zh-CN": "住房", "en": "Home"}
    (form,) = parse_definition(doc)
    assert validate_answers(form, {"q": 1.5}) == {"q": ["wrong_type:integer"]}


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00" * 165,  # an Excel lock file, ~$survey.xlsx
        b"PK\x03\x04 not really a zip",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600,  # an OLE header and nothing else
        make_xlsforms.workbook_bytes({"Sheet1": [["household", "head"], ["1", "张三"]]}),
        make_xlsforms.workbook_bytes({"data": [["a"], [1]], "other": [["b"]]}),
    ],
    ids=["empty", "lock_file", "broken_zip", "broken_ole", "roster", "no_survey"],
)
def test_no_file_gives_anything_but_an_import_problem(content: bytes) -> None:
    with pytest.raises(XLSFormError) as caught:
        convert_workbook(io.BytesIO(content), filename="~$survey.xlsx")
    assert caught.value.problems
    assert "Traceback" not in str(caught.value)


def test_forms_list_counts_questions_and_notes(county: Any) -> None:
    with county.app.app_context():
        publish_forms(actor=None)
    result = cli(county.app, "forms", "import-xlsform", str(PYXFORM_XLS))
    assert result.output.startswith("published xlsform_pyxform_yes_or_no version 1 (1 fields)")
    listing = json.loads(cli(county.app, "forms", "list", "--json").output)
    counts = {(f["form_id"], f["version"]): f["fields"] for f in listing}
    assert counts[("xlsform_pyxform_yes_or_no", 1)] == 1


def test_forms_list_counts_calculations_as_fields(county: Any, tmp_path: Path) -> None:
    path = tmp_path / "income.xlsx"
    survey = [
        ["type", "name", "label", "calculation"],
        ["integer", "income", "Income"],
        ["integer", "members", "Members"],
        ["calculate", "per_capita", None, "${income} div ${members}"],
    ]
    path.write_bytes(make_xlsforms.workbook_bytes({"survey": survey}))
    result = cli(county.app, "forms", "import-xlsform", str(path))
    assert result.output.startswith("published income version 1 (3 fields)"), result.output
    listing = json.loads(cli(county.app, "forms", "list", "--json").output)
    assert {(f["form_id"], f["fields"]) for f in listing} >= {("income", 3)}


def test_an_excel_date_default_is_the_day_pyxform_wrote_with_its_midnight() -> None:
    doc = convert({"type": "date", "name": "dd", "label": "d", "default": "2024-01-05 00:00:00"})
    assert field_of(doc, "dd")["default"] == "2024-01-05"


def test_the_form_id_of_the_settings_sheet_is_made_snake_case() -> None:
    sheets = {
        "survey": [{"type": "text", "name": "q", "label": "q"}],
        "settings": [{"form_id": "MyForm-2"}],
    }
    assert convert_sheets(sheets)["form_id"] == "myform_2"


CELLS = st.sampled_from(
    [
        "text", "integer", "note", "select_one risk", "select_multiple kinds or_other",
        "begin_group", "end_group", "begin_repeat", "end_repeat", "range", "geopoint",
        "hidden", "calculate", "${n} > 1", ". >= 0", "today()", "yes", "q", "Q 1", "x", "",
        "1", "selected(${kinds}, 'ill')", "'", "${", "not(", "start=5 end=1 step=0",
    ]
)  # fmt: skip
COLUMNS = ["type", "name", "label", "relevant", "constraint", "required", "default", "parameters"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.fixed_dictionaries({}, optional=dict.fromkeys(COLUMNS, CELLS)), max_size=8))
def test_any_survey_is_converted_or_refused_with_problems_never_an_exception(
    rows: list[dict[str, str]],
) -> None:
    try:
        doc = convert(*rows)
    except XLSFormError as error:
        assert error.problems and all(isinstance(p, SheetProblem) for p in error.problems)
    else:
        assert validate_definition(doc) == []


def test_a_cascading_select_keeps_its_filter_and_each_choice_s_column() -> None:
    village = {"type": "select_one village", "label": "村"}
    sheets = {
        "survey": [
            {"type": "select_one town", "name": "Town", "label": "乡镇"},
            {**village, "name": "v", "choice_filter": "township=${Town}"},
            {**village, "name": "w", "choice_filter": "${Town} = township and kind = 'big'"},
        ],
        "choices": [
            {"list_name": "town", "name": "east", "label": "东乡"},
            {"list_name": "town", "name": "west", "label": "西乡"},
            {
                "list_name": "village",
                "name": "shang",
                "label": "上",
                "township": "east",
                "kind": "big",
            },
            {"list_name": "village", "name": "xia", "label": "下", "township": "west"},
        ],
        "settings": [{"form_id": "t"}],
    }
    doc = convert_sheets(sheets)
    v, w = field_of(doc, "v"), field_of(doc, "w")
    assert v["choice_filter"] == [{"column": "township", "field": "town"}]
    assert [c.get("filter") for c in v["choices"]] == [{"township": "east"}, {"township": "west"}]
    assert w["choice_filter"] == [
        {"column": "township", "field": "town"},
        {"column": "kind", "value": "big"},
    ]
    assert w["choices"][0]["filter"] == {"township": "east", "kind": "big"}
    (form,) = parse_definition(doc)
    assert validate_answers(form, {"town": "east", "v": "xia"}) == {"v": ["not_offered"]}


@pytest.mark.parametrize("text", ["name != ${t}", "starts-with(name, ${t})"])
def test_a_choice_filter_zoufang_cannot_check_is_reported_at_its_row(text: str) -> None:
    row = {"type": "select_one risk", "name": "q", "label": "q", "choice_filter": text}
    (problem,) = problems_of(row)
    assert (problem.row, problem.column) == (11, "choice_filter")
    assert "is not supported yet" in problem.message


# Expressions with values: arithmetic, functions, calculations (issue 15)


@pytest.mark.parametrize(
    ("xlsform", "zoufang"),
    [
        ("${n} + 1 > 2", "(n + 1) > 2"),
        ("${n} div 2 = 1", "(n / 2) == 1"),
        ("${n} mod 2 = 1", "(n % 2) == 1"),
        ("${n} * -${x} < 0", "(n * (-x)) < 0"),
        ("${n} - 1 >= '3'", "(n - 1) >= 3"),
        ("${n} = ${x}", "n == x"),
        ("today() > ${d}", "today() > d"),
        ("regex(${t}, '^[0-9]+$')", "regex(t, '^[0-9]+$')"),
        ("string-length(${t}) > 3", "string_length(t) > 3"),
        ("count-selected(${kinds}) + 1 > 2", "(count_selected(kinds) + 1) > 2"),
        ("if(${n} > 1, 'a', 'b') = 'a'", "if(n > 1, 'a', 'b') == 'a'"),
        ("int(${x}) = round(${x})", "int(x) == round(x)"),
        ("concat(${t}, 'x') != 'ax'", "concat(t, 'x') != 'ax'"),
        ("0", "false"),
        ("1", "true"),
    ],
)
def test_arithmetic_and_functions_are_translated(xlsform: str, zoufang: str) -> None:
    assert relevant_of(xlsform) == zoufang


@pytest.mark.parametrize(
    ("xls_type", "constraint", "condition"),
    [
        ("text", "regex(., '^1[3-9][0-9]{9}$')", "regex(q, '^1[3-9][0-9]{9}$')"),
        ("date", ". <= today()", "q <= today()"),
        ("text", "string-length(.) >= 2", "string_length(q) >= 2"),
        ("integer", ". <= ${n} - 1", "q <= (n - 1)"),
        ("integer", "${n} >= ${x}", "n >= x"),
    ],
)
def test_constraints_with_functions_and_arithmetic_are_translated(
    xls_type: str, constraint: str, condition: str
) -> None:
    doc = convert({"type": xls_type, "name": "q", "label": "q", "constraint": constraint})
    assert field_of(doc, "q")["constraint"] == condition


def test_a_calculate_question_becomes_a_calculation_the_server_recomputes() -> None:
    doc = convert(
        {"type": "calculate", "name": "per_capita", "calculation": "round(${x} div ${n}, 2)"},
        {"type": "text", "name": "why", "label": "why", "relevant": "${per_capita} < 6000"},
    )
    calc = field_of(doc, "per_capita")
    assert (calc["type"], calc["calculation"]) == ("calculate", "round((x / n), 2)")
    assert field_of(doc, "why")["relevant"] == "per_capita < 6000"
    (form,) = parse_definition(doc)
    assert validate_answers(form, {"x": 20000, "n": 4, "per_capita": 5000}) == {}
    assert validate_answers(form, {"x": 20000, "n": 4, "per_capita": 1}) == {
        "per_capita": ["calculation_mismatch"]
    }


def test_an_expression_default_becomes_a_dynamic_default_the_phone_evaluates() -> None:
    doc = convert(
        {"type": "integer", "name": "q", "label": "q", "default": "${n} * 2"},
        {"type": "text", "name": "day", "label": "d", "default": "today()"},
    )
    assert field_of(doc, "q")["dynamic_default"] == "(n * 2)"
    assert field_of(doc, "day")["dynamic_default"] == "today()"
    assert validate_definition(doc) == []


def test_a_calculation_column_on_a_note_is_refused() -> None:
    (problem,) = problems_of({"type": "note", "name": "q", "label": "q", "calculation": "1"})
    assert (problem.row, problem.column) == (11, "calculation")
    assert "use a calculate question" in problem.message


@pytest.mark.parametrize(
    ("xls_type", "relevant"),
    [
        ("text", "${q} = 'high'"),
        ("integer", "${q} = 'high'"),
        ("decimal", "${q} != ''"),
        ("select_one risk", "selected(${q}, 'high')"),
    ],
)
def test_a_question_with_a_calculation_becomes_a_calculate_field_keeping_its_label(
    xls_type: str, relevant: str
) -> None:
    doc = convert(
        {
            "type": xls_type,
            "name": "q",
            "label": "Computed",
            "calculation": "if(${n} > 2, 'high', 'low')",
            "required": "yes",
            "constraint": ". != ''",
        },
        {"type": "text", "name": "why", "label": "why", "relevant": relevant},
    )
    q = field_of(doc, "q")
    assert (q["type"], q["label"]["en"]) == ("calculate", "Computed")
    assert q["calculation"] == "if(n > 2, 'high', 'low')"
    assert "required" not in q and "constraint" not in q and "choices" not in q
    assert validate_definition(doc) == []
    (form,) = parse_definition(doc)
    assert validate_answers(form, {"n": 3, "q": "high"}) == {}
    assert validate_answers(form, {"n": 1, "q": "high"}) == {"q": ["calculation_mismatch"]}


@pytest.mark.parametrize(
    ("expression", "condition"),
    [
        ("${kinds} = 'other'", "count(kinds) == 1 and selected(kinds, 'other')"),
        ("${kinds}='ill' or ${n} > 2", "count(kinds) == 1 and selected(kinds, 'ill') or n > 2"),
        ("${kinds} != 'flood'", "not (count(kinds) == 1 and selected(kinds, 'flood'))"),
    ],
)
def test_a_select_multiple_equal_to_a_choice_means_exactly_that_one_selected(
    expression: str, condition: str
) -> None:
    assert relevant_of(expression) == condition


def test_exactly_one_selected_validates_as_xpath_compares_the_joined_selection() -> None:
    doc = convert({"type": "text", "name": "q", "label": "q", "relevant": "${kinds} = 'other'"})
    (form,) = parse_definition(doc)
    assert validate_answers(form, {"kinds": ["other"], "q": "x"}) == {}
    assert validate_answers(form, {"kinds": ["ill", "other"], "q": "x"}) == {"q": ["not_relevant"]}


def test_a_constraint_may_compare_the_answer_with_a_calculation() -> None:
    doc = convert(
        {"type": "calculate", "name": "stocked", "calculation": "count-selected(${kinds})"},
        {"type": "integer", "name": "q", "label": "q", "constraint": ".>=0 and .<=${stocked}"},
    )
    assert field_of(doc, "q")["constraint"] == "q >= 0 and q <= stocked"
    assert validate_definition(doc) == []
    (form,) = parse_definition(doc)
    assert validate_answers(form, {"kinds": ["ill"], "stocked": 1, "q": 1}) == {}
    assert validate_answers(form, {"kinds": ["ill"], "stocked": 1, "q": 2}) == {"q": ["constraint"]}


def test_a_constant_choice_filter_offers_every_choice_or_none() -> None:
    doc = convert(
        {
            "type": "select_one kinds",
            "name": "v",
            "label": "v",
            "choice_filter": '${risk}="high"',
        },
    )
    v = field_of(doc, "v")
    column = '${risk} = "high"'
    assert v["choice_filter"] == [{"column": column, "field": "risk"}]
    assert {c["filter"][column] for c in v["choices"]} == {"high"}
    assert validate_definition(doc) == []
    (form,) = parse_definition(doc)
    assert validate_answers(form, {"risk": "high", "v": "ill"}) == {}
    assert validate_answers(form, {"risk": "low", "v": "ill"}) == {"v": ["not_offered"]}
    assert validate_answers(form, {"v": "ill"}) == {"v": ["not_offered"]}


def test_a_choice_filter_selected_in_a_select_multiple_offers_the_choices_selected() -> None:
    sheets = {
        "survey": [
            {"type": "select_multiple brands", "name": "flour_brands", "label": "brands"},
            {
                "type": "select_one shop",
                "name": "main",
                "label": "main",
                "choice_filter": "selected(${flour_brands},cf)",
            },
        ],
        "choices": [
            {"list_name": "brands", "name": "a", "label": "A"},
            {"list_name": "brands", "name": "b", "label": "B"},
            {"list_name": "shop", "name": "shop_a", "label": "A", "cf": "a"},
            {"list_name": "shop", "name": "shop_b", "label": "B", "cf": "b"},
        ],
        "settings": [{"form_id": "t"}],
    }
    doc = convert_sheets(sheets)
    main = field_of(doc, "main")
    assert main["choice_filter"] == [{"column": "cf", "selected_in": "flour_brands"}]
    (form,) = parse_definition(doc)
    assert validate_answers(form, {"flour_brands": ["b"], "main": "shop_b"}) == {}
    assert validate_answers(form, {"flour_brands": ["b"], "main": "shop_a"}) == {
        "main": ["not_offered"]
    }


def test_a_choice_filter_on_a_select_multiple_compares_its_joined_selection() -> None:
    sheets = {
        "survey": [
            {"type": "select_multiple counties", "name": "county", "label": "county"},
            {
                "type": "select_one cities",
                "name": "city",
                "label": "city",
                "choice_filter": "county=${county}",
            },
        ],
        "choices": [
            {"list_name": "counties", "name": "king", "label": "King"},
            {"list_name": "counties", "name": "pierce", "label": "Pierce"},
            {"list_name": "cities", "name": "seattle", "label": "S", "county": "king"},
        ],
        "settings": [{"form_id": "t"}],
    }
    (form,) = parse_definition(convert_sheets(sheets))
    assert validate_answers(form, {"county": ["king"], "city": "seattle"}) == {}
    assert validate_answers(form, {"county": ["king", "pierce"], "city": "seattle"}) == {
        "city": ["not_offered"]
    }


def test_a_choice_filter_on_a_question_without_choices_is_ignored_as_pyxform_does() -> None:
    doc = convert({"type": "text", "name": "q", "label": "q", "choice_filter": "${risk}='high'"})
    assert "choice_filter" not in field_of(doc, "q")


def test_a_reference_to_metadata_says_the_visit_records_it_by_itself() -> None:
    (problem,) = problems_of(
        {"type": "username", "name": "username"},
        {"type": "text", "name": "q", "label": "q", "relevant": "${username} != 'rsavoye'"},
    )
    assert (problem.row, problem.column) == (12, "relevant")
    assert "metadata" in problem.message and "records by itself" in problem.message


def test_choices_from_a_geojson_file_are_refused_saying_what_to_give_instead() -> None:
    (problem,) = problems_of(
        {"type": "select_one_from_file map.geojson", "name": "q", "label": "q"}
    )
    assert (problem.row, problem.column) == (11, "type")
    assert "map.geojson" in problem.message and ".csv file with name and label" in problem.message
