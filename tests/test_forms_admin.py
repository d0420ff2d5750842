"""Forms on the administration page (issue 15, docs/admin.md "Forms"): an XLSForm upload is
previewed with every problem by row, published as the CLI publishes it, listed with its field
counts, and any version downloads back as an XLSForm that imports to the same definition."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

import forms
from server.admin.forms_service import form_overview, publish_next_version, published_form
from server.admin.xlsform_export import xlsform_workbook
from server.admin.xlsform_io import convert_workbook

SAMPLES = Path(__file__).parent / "samples"
MONTHLY = SAMPLES / "xlsform_monthly_monitoring.xlsx"
UNSUPPORTED = SAMPLES / "xlsform_unsupported.xlsx"


def upload(device: Any, path: str, content: bytes, name: str, **form: str) -> Any:
    return device.client.post(
        f"/api/v1/admin/forms{path}",
        data={"file": (io.BytesIO(content), name), **form},
        headers=device.headers,
        content_type="multipart/form-data",
    )


def reimported(form: forms.FormVersion) -> dict[str, Any]:
    """The record data of a version downloaded as XLSForm and imported again."""
    doc = convert_workbook(
        io.BytesIO(xlsform_workbook(form)), version=form.version, filename="download.xlsx"
    )
    (version,) = doc["versions"]
    return forms.FormVersion.from_dict(doc["form_id"], version).to_record_data()


@pytest.mark.parametrize("form_id", ["weekly_visit", "monthly_monitoring"])
def test_a_shipped_form_downloaded_as_xlsform_imports_to_the_same_definition(form_id):
    (form,) = [v for v in forms.load_definitions().all_versions() if v.form_id == form_id]
    expected = form.to_record_data()
    if form_id == "monthly_monitoring":
        # XLSForm has no "in [...]": it comes back as the or of its comparisons, same meaning
        (risk_types,) = [f for f in expected["fields"] if f["id"] == "risk_types"]
        risk_types["relevant"] = "risk_level == 'medium' or risk_level == 'high'"
    assert reimported(form) == expected


def test_the_sample_xlsform_imported_downloaded_and_imported_again_is_the_same_definition():
    doc = convert_workbook(MONTHLY, version=2)
    form = forms.FormVersion.from_dict(doc["form_id"], doc["versions"][0])
    assert reimported(form) == form.to_record_data()


def test_a_download_has_survey_choices_and_settings_sheets_labelled_in_both_languages():
    (form,) = [v for v in forms.load_definitions().all_versions() if v.form_id == "weekly_visit"]
    book = load_workbook(io.BytesIO(xlsform_workbook(form)))
    assert book.sheetnames == ["survey", "choices", "settings"]
    header = [cell.value for cell in book["survey"][1]]
    assert "label::中文 (zh-CN)" in header and "label::English (en)" in header
    rows = [dict(zip(header, (c.value for c in row), strict=True)) for row in book["survey"]]
    food_issue = next(row for row in rows if row["name"] == "food_issue")
    assert food_issue["relevant"] == "${food_ok} = 'no'"
    assert food_issue["required"] == "yes"
    assert rows[1]["type"] == "begin_group"


def test_a_preview_answers_the_version_it_would_become_and_stores_nothing(any_county):
    admin = any_county.device("admin")
    answer = upload(admin, "/preview", MONTHLY.read_bytes(), MONTHLY.name)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["status"], body["form_id"], body["version"]) == ("new", "monthly_monitoring", 2)
    assert body["fields"] == len(body["form"]["fields"]) > 0
    with any_county.app.app_context():
        assert published_form("monthly_monitoring", 2) is None


def test_a_bad_xlsform_is_422_with_every_problem_by_sheet_row_and_column(county):
    answer = upload(county.device("admin"), "/preview", UNSUPPORTED.read_bytes(), UNSUPPORTED.name)
    assert answer.status_code == 422
    error = answer.get_json()["error"]
    problems = error["details"]["problems"]
    assert len(problems) > 3 and all(p["row"] for p in problems if p["sheet"] == "survey")
    assert error["details"]["fields"]["file"][0].startswith("survey row ")
    assert problems[0]["text"] == error["details"]["fields"]["file"][0]


def test_a_file_that_is_no_workbook_is_422_not_a_500(county):
    answer = upload(county.device("admin"), "/preview", b"not a workbook", "~$lock.xlsx")
    assert answer.status_code == 422
    assert "no .xlsx or .xls workbook" in answer.get_json()["error"]["details"]["fields"]["file"][0]


def test_publishing_makes_the_next_version_and_the_same_upload_again_publishes_nothing(
    any_county,
):
    admin = any_county.device("admin")
    first = upload(admin, "", MONTHLY.read_bytes(), MONTHLY.name)
    assert first.status_code == 201, first.get_json()
    assert (first.get_json()["status"], first.get_json()["version"]) == ("published", 2)
    again = upload(admin, "", MONTHLY.read_bytes(), MONTHLY.name)
    assert again.status_code == 200
    assert (again.get_json()["status"], again.get_json()["version"]) == ("unchanged", 2)


def test_a_downloaded_version_uploaded_again_publishes_nothing(county):
    admin = county.device("admin")
    assert upload(admin, "", MONTHLY.read_bytes(), MONTHLY.name).status_code == 201
    download = admin.client.get(
        "/api/v1/admin/forms/monthly_monitoring/2.xlsx", headers=admin.headers
    )
    assert download.status_code == 200
    assert download.headers["Content-Disposition"].endswith('"monthly_monitoring-v2.xlsx"')
    again = upload(admin, "", download.data, "monthly_monitoring-v2.xlsx")
    assert (again.status_code, again.get_json()["status"]) == (200, "unchanged")


def test_an_unknown_version_downloads_as_404(county):
    admin = county.device("admin")
    for path in ("monthly_monitoring/9.xlsx", "monthly_monitoring/x.xlsx", "nope/1.xlsx"):
        answer = admin.client.get(f"/api/v1/admin/forms/{path}", headers=admin.headers)
        assert answer.status_code == 404, path


def test_the_list_counts_fields_as_forms_list_does(county):
    admin = county.device("admin")
    with county.app.app_context():
        publish_next_version(convert_workbook(MONTHLY), actor=None)
        overview = {(o["form_id"], o["version"]): o["fields"] for o in form_overview()}
    listed = admin.client.get("/api/v1/admin/forms", headers=admin.headers).get_json()["forms"]
    assert {(f["form_id"], f["version"]): f["fields"] for f in listed} == overview
    assert ("monthly_monitoring", 2) in overview


def label(text: str) -> dict[str, str]:
    return {"zh-CN": f"{text}（中）", "en": text}


EVERY_CONSTRUCT = {
    "version": 1,
    "title": label("Every construct"),
    "policy": None,
    "fields": [
        {"id": "members", "type": "integer", "label": label("Members"), "min": 1, "max": 20,
         "required": True, "required_message": label("How many?"), "group": "household",
         "group_label": label("Home")},
        {"id": "workers", "type": "integer", "label": label("Workers"), "group": "household",
         "group_label": label("Home"),
         "constraint": "workers <= members", "constraint_message": label("Too many")},
        {"id": "income", "name": "Income", "type": "number", "label": label("Income"), "min": 0,
         "hint": label("yuan")},
        {"id": "kinds", "type": "multiple_choice", "label": label("Kinds"),
         "choices": [{"value": "a", "label": label("A")}, {"value": "b", "label": label("B")}],
         "relevant": "not (members == null) and (members > 2 or income < 100)"},
        {"id": "why", "type": "text", "label": label("Why"), "max_length": 200,
         "relevant": "selected(kinds, 'a') or count(kinds) >= 2",
         "required": "members != null"},
        {"id": "town", "type": "single_choice", "label": label("Town"),
         "choices": [{"value": "east", "label": label("East")},
                     {"value": "west", "label": label("West")}]},
        {"id": "village", "type": "single_choice", "label": label("Village"),
         "choice_filter": [{"column": "town", "field": "town"},
                           {"column": "kind", "value": "rural"}],
         "choices": [{"value": "up", "label": label("Up"),
                      "filter": {"town": "east", "kind": "rural"}},
                     {"value": "down", "label": label("Down"),
                      "filter": {"town": "west", "kind": "rural"}}],
         "relevant": "town == null or town != 'west'"},
        {"id": "score", "type": "range", "label": label("Score"), "min": 0, "max": 10,
         "step": 2},
        {"id": "day", "type": "date", "label": label("Day"), "prefill": "today",
         "read_only": True},
        {"id": "home", "type": "geopoint", "label": label("Home"),
         "default": {"lat": 26.5, "lon": 106.7}},
        {"id": "ok", "type": "boolean", "label": label("OK"), "default": True,
         "problem": {"when": "ok == false", "category": "water"}},
        {"id": "about", "type": "note", "label": label("About")},
        {"id": "source", "type": "hidden", "label": label("source"), "default": "x"},
        {"id": "house", "type": "photo", "label": label("House")},
    ],
}  # fmt: skip


def test_every_construct_a_download_writes_imports_back_to_the_same_definition():
    assert forms.validate_definition({"form_id": "every", "versions": [EVERY_CONSTRUCT]}) == []
    form = forms.FormVersion.from_dict("every_construct", EVERY_CONSTRUCT)
    assert reimported(form) == form.to_record_data()


CASCADES = {
    "version": 1,
    "title": label("Cascades"),
    "policy": None,
    "fields": [
        {"id": "brands", "type": "multiple_choice", "label": label("Brands"),
         "choices": [{"value": "a", "label": label("A")}, {"value": "b", "label": label("B")}]},
        {"id": "main", "type": "single_choice", "label": label("Main"),
         "choice_filter": [{"column": "cf", "selected_in": "brands"}],
         "choices": [{"value": "shop_a", "label": label("A"), "filter": {"cf": "a"}},
                     {"value": "shop_b", "label": label("B"), "filter": {"cf": "b"}}]},
        {"id": "town", "type": "single_choice", "label": label("Town"),
         "choices": [{"value": "east", "label": label("East")},
                     {"value": "other", "label": label("Other")}]},
        {"id": "place", "type": "single_choice", "label": label("Place"),
         "choice_filter": [{"column": "${town} = 'other'", "field": "town"}],
         "choices": [{"value": "p", "label": label("P"),
                      "filter": {"${town} = 'other'": "other"}}]},
    ],
}  # fmt: skip


def choices(*values: str) -> list[dict[str, Any]]:
    return [{"value": value, "label": label(value)} for value in values]


#: every construct a definition holds, its expressions spelt as the import writes them, so
#: that the definition comes back text for text
REPEATS_AND_CALCULATIONS = {
    "version": 1,
    "title": label("Repeats and calculations"),
    "policy": "monthly",
    "fields": [
        {"id": "hh_size", "type": "integer", "label": label("Size"), "min": 1, "max": 20,
         "required": True, "group": "household", "group_label": label("Home")},
        {"id": "head", "type": "person", "label": label("Who answers"), "group": "household",
         "group_label": label("Home")},
        {"id": "workers", "type": "integer", "label": label("Workers"), "min": 0, "max": 20,
         "constraint": "workers <= hh_size", "constraint_message": label("Too many")},
        {"id": "member", "type": "repeat", "label": label("Member"), "seed": "people",
         "hint": label("one per person"), "relevant": "hh_size > 0",
         "fields": [
             {"id": "age", "type": "integer", "label": label("Age"), "min": 0, "max": 120,
              "constraint": "age <= 100 or hh_size > 5"},
             {"id": "income", "type": "number", "label": label("Income"), "min": 0},
             {"id": "works", "type": "boolean", "label": label("Works")},
             {"id": "job", "type": "text", "label": label("Job"), "relevant": "works == true",
              "max_length": 50, "constraint": "regex(job, '^[a-z ]+$')"},
             {"id": "n_kids", "type": "integer", "label": label("Kids"), "group": "kids_part",
              "group_label": label("Kids")},
             {"id": "kids", "type": "repeat", "label": label("Kid"), "repeat_count": "n_kids",
              "group": "kids_part", "group_label": label("Kids"),
              "fields": [
                  {"id": "kid_name", "type": "text", "label": label("Name"), "required": True},
                  {"id": "kid_school", "type": "single_choice", "label": label("School"),
                   "choices": choices("none", "primary", "middle")},
              ]},
             {"id": "entry_number", "type": "calculate", "label": label("Entry"),
              "calculation": "position()"},
         ]},
        {"id": "plots", "type": "repeat", "label": label("Plot"),
         "repeat_count": "(hh_size - 1)",
         "fields": [{"id": "plot_area", "type": "number", "label": label("Area")}]},
        {"id": "visits", "type": "repeat", "label": label("Visit"), "repeat_count": 2,
         "fields": [{"id": "visit_day", "type": "date", "label": label("Day")}]},
        {"id": "total_income", "type": "calculate", "label": label("Total"),
         "calculation": "sum(income)"},
        {"id": "per_capita", "type": "calculate", "label": label("Per head"),
         "calculation": "round((total_income / hh_size), 2)"},
        {"id": "below_line", "type": "calculate", "label": label("Below"),
         "calculation": "if(per_capita < 6000, 'below', 'above')"},
        {"id": "kinds", "type": "multiple_choice", "label": label("Kinds"),
         "choices": choices("a", "b", "c"), "required": "count(member) > 1",
         "required_message": label("Say which")},
        {"id": "summary", "type": "calculate", "label": label("Summary"),
         "calculation": "concat(string_length(head), ' ', count_selected(kinds), ' ', "
                        "coalesce(int(number('3.5')), 0), ' ', today(), now())"},
        {"id": "odd", "type": "calculate", "label": label("Odd"),
         "calculation": "(((hh_size % 2) * (-total_income)) - count(kid_name))"},
        {"id": "picked_a", "type": "calculate", "label": label("Picked a"),
         "calculation": "(selected(kinds, 'a') and not (hh_size == null))"},
        {"id": "remark", "type": "text", "label": label("Remark"),
         "dynamic_default": "concat('走访 ', today())"},
        {"id": "adults", "type": "integer", "label": label("Adults"),
         "dynamic_default": "(hh_size - 1)"},
        {"id": "place", "type": "text", "label": label("Place"), "dynamic_default": "'村委'"},
        {"id": "town", "type": "single_choice", "label": label("Town"),
         "choices": choices("east", "west")},
        {"id": "village", "type": "single_choice", "label": label("Village"),
         "choice_filter": [{"column": "town", "field": "town"}],
         "choices": [{"value": "up", "label": label("Up"), "filter": {"town": "east"}},
                     {"value": "up", "label": label("Up west"), "filter": {"town": "west"}},
                     {"value": "down", "label": label("Down"), "filter": {"town": "west"}}],
         "relevant": "town == null or town != 'west'"},
        {"id": "priorities", "type": "rank", "label": label("Priorities"),
         "choices": choices("road", "water", "school"), "default": ["water", "road"]},
        {"id": "voice", "type": "audio", "label": label("Voice")},
        {"id": "clip", "type": "video", "label": label("Clip")},
        {"id": "paper", "type": "file", "label": label("Paper")},
        {"id": "card", "type": "barcode", "label": label("Card"), "read_only": True,
         "default": "000"},
        {"id": "path", "type": "geotrace", "label": label("Path")},
        {"id": "field_area", "type": "geoshape", "label": label("Field")},
        {"id": "started", "type": "time", "label": label("Started"), "prefill": "now"},
        {"id": "stamp", "type": "datetime", "label": label("Stamp"), "prefill": "today"},
        {"id": "ok", "type": "boolean", "label": label("OK"),
         "problem": {"when": "ok == false and per_capita < 6000", "category": "income"}},
        {"id": "rate", "type": "number", "label": label("Rate"), "min": 0.00001, "max": 0.5},
        {"id": "grade", "type": "range", "label": label("Grade"), "min": 0, "max": 1,
         "step": 0.00005},
    ],
}  # fmt: skip


def test_selected_in_and_constant_choice_filters_download_and_import_back_the_same():
    assert forms.validate_definition({"form_id": "cascades", "versions": [CASCADES]}) == []
    form = forms.FormVersion.from_dict("cascades", CASCADES)
    assert reimported(form) == form.to_record_data()


def test_repeats_calculations_and_every_type_download_and_import_to_the_same_definition():
    doc = {"form_id": "repeats", "versions": [REPEATS_AND_CALCULATIONS]}
    assert forms.validate_definition(doc) == []
    form = forms.FormVersion.from_dict("repeats", REPEATS_AND_CALCULATIONS)
    assert reimported(form) == form.to_record_data()


def test_the_pyxform_xls_sample_imported_downloaded_and_imported_again_is_the_same_definition():
    doc = convert_workbook(SAMPLES / "xlsform_pyxform_yes_or_no.xls")
    form = forms.FormVersion.from_dict(doc["form_id"], doc["versions"][0])
    assert reimported(form) == form.to_record_data()


def test_an_expression_xlsform_spells_otherwise_is_written_with_a_comment_saying_so():
    (form,) = [
        v for v in forms.load_definitions().all_versions() if v.form_id == "monthly_monitoring"
    ]
    sheet = load_workbook(io.BytesIO(xlsform_workbook(form)))["survey"]
    header = [cell.value for cell in sheet[1]]
    (row,) = [r for r in sheet.iter_rows(min_row=2) if r[1].value == "risk_types"]
    relevant = row[header.index("relevant")]
    assert relevant.value == "${risk_level} = 'medium' or ${risk_level} = 'high'"
    assert "x in [a, b]" in relevant.comment.text
    commented = [c for r in sheet.iter_rows(min_row=2) for c in r if c.comment is not None]
    assert commented == [relevant]


def test_a_published_version_with_repeats_downloads_and_uploads_again_unchanged(any_county):
    admin = any_county.device("admin")
    doc = {"form_id": "repeats", "versions": [REPEATS_AND_CALCULATIONS]}
    with any_county.app.app_context():
        publish_next_version(doc, actor=None)
    download = admin.client.get("/api/v1/admin/forms/repeats/1.xlsx", headers=admin.headers)
    assert download.status_code == 200
    again = upload(admin, "", download.data, "repeats-v1.xlsx")
    assert (again.status_code, again.get_json()["status"]) == (200, "unchanged")


AWKWARD = {
    "version": 1,
    "title": label("Awkward"),
    "policy": None,
    "fields": [
        {"id": "a", "type": "text", "label": label("A"), "group": "g", "group_label": label("G"),
         "default": "x (y)"},
        {"id": "b", "type": "text", "label": label("B"), "relevant": "a == 'it\\'s \"q\"'"},
        {"id": "c", "type": "text", "label": label("C"), "group": "g", "group_label": label("G")},
        {"id": "r", "type": "repeat", "label": label("R"), "required": True,
         "fields": [{"id": "d", "type": "text", "label": label("D")}]},
    ],
}  # fmt: skip


def test_what_xlsform_cannot_say_is_still_downloaded_with_a_comment_on_its_cell():
    assert forms.validate_definition({"form_id": "awkward", "versions": [AWKWARD]}) == []
    book = xlsform_workbook(forms.FormVersion.from_dict("awkward", AWKWARD))
    sheet = load_workbook(io.BytesIO(book))["survey"]
    header = [cell.value for cell in sheet[1]]
    notes = {
        (row[1].value, header[cell.column - 1]): cell.comment.text
        for row in sheet.iter_rows(min_row=2)
        for cell in row
        if cell.comment is not None
    }
    assert set(notes) == {("a", "default"), ("b", "relevant"), ("g_2", "name"), ("r", "type")}
    assert "both ' and \"" in notes[("b", "relevant")]
