"""A published form version written back as an XLSForm workbook (.xlsx), so that a county can
take a form out of Zoufang, change it in Excel (or KoboToolbox, ODK) and import it again.

The workbook is what ``forms.xlsform`` reads: a survey, a choices and a settings sheet, labels
as ``label::中文 (zh-CN)`` and ``label::English (en)``, and the conditions of the definition
translated back into XLSForm's XPath by ``forms.xpath_out`` (``f == 'x'`` → ``${f} = 'x'``),
repeats as begin_repeat/end_repeat. Importing the download again gives the same definition
(tests/test_forms_admin.py holds this for the shipped and sample forms and for a definition
using every construct): each construct is written the way the import reads it back. What
XLSForm has no spelling for is written in its nearest one, with a comment on the cell; the
list is in forms/README.md ("Download back as XLSForm").
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from typing import Any

from openpyxl import Workbook
from openpyxl.comments import Comment

import forms
from forms.xpath_out import (
    CHANGES,
    Question,
    XPath,
    condition_xpath,
    number_xpath,
    value_xpath,
)
from server.reports.exports import spreadsheet_text

LANGUAGES = {"zh-CN": "中文 (zh-CN)", "en": "English (en)"}
YES_NO = "yes_no"
_TYPES = {
    "text": "text",
    "number": "decimal",
    "integer": "integer",
    "range": "range",
    "date": "date",
    "time": "time",
    "datetime": "dateTime",
    "note": "note",
    "hidden": "hidden",
    "geopoint": "geopoint",
    "geotrace": "geotrace",
    "geoshape": "geoshape",
    "photo": "image",
    "audio": "audio",
    "video": "video",
    "file": "file",
    "barcode": "barcode",
    "calculate": "calculate",
    "person": "text",  # with zoufang_type = person: XLSForm has no picker of the people
}
_CHOICE_WORDS = {
    "single_choice": "select_one",
    "multiple_choice": "select_multiple",
    "rank": "rank",
}
_PREFILLS = {"today": "today()", "now": "now()"}
#: Zoufang's own survey column: a question XLSForm has no type for (``person``)
ZOUFANG_TYPE = "zoufang_type"
_SURVEY_COLUMNS = (
    "type",
    "name",
    *(f"label::{name}" for name in LANGUAGES.values()),
    *(f"hint::{name}" for name in LANGUAGES.values()),
    "required",
    *(f"required_message::{name}" for name in LANGUAGES.values()),
    "relevant",
    "constraint",
    *(f"constraint_message::{name}" for name in LANGUAGES.values()),
    "calculation",
    "choice_filter",
    "default",
    "read_only",
    "parameters",
    "repeat_count",
    "repeat_seed",
    ZOUFANG_TYPE,
    "problem_when",
    "problem_category",
)
#: where a row keeps the notes on its cells: what the import will read back otherwise
_NOTES = "_notes"


def xlsform_workbook(form: forms.FormVersion) -> bytes:
    """The .xlsx bytes of one form version. Never fails on a valid version: what XLSForm
    cannot say exactly is written in its nearest spelling with a comment on the cell."""
    data = form.to_record_data()
    fields = data["fields"]
    everything = list(_every_field(fields))
    questions = {f["id"]: Question(_name(f), f["type"]) for f in everything}
    book = Workbook()
    survey = book.active
    survey.title = "survey"
    names = {question.name for question in questions.values()}
    _write(survey, _SURVEY_COLUMNS, _survey_rows(fields, questions, names))
    choice_rows, filter_columns = _choice_rows(everything)
    columns = ("list_name", "name", *(f"label::{n}" for n in LANGUAGES.values()), *filter_columns)
    _write(book.create_sheet("choices"), columns, choice_rows)
    settings = {"form_id": form.form_id, "version": form.version, "policy": form.policy or ""}
    settings["form_title"] = data["title"]["zh-CN"]
    settings.update(_localized("form_title", data["title"]))
    listed = [(row["list_name"], row["name"]) for row in choice_rows]
    if len(set(listed)) < len(listed):  # a village named alike in two towns
        settings["allow_choice_duplicates"] = "yes"
    _write(book.create_sheet("settings"), tuple(settings), [settings])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _every_field(fields: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every field at any depth, a repeat before its own fields."""
    for field in fields:
        yield field
        yield from _every_field(field.get("fields", []))


def _write(sheet: Any, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    sheet.append(list(columns))
    for row in rows:
        sheet.append([spreadsheet_text(row.get(column)) for column in columns])
        for column, notes in row.get(_NOTES, {}).items():
            cell = sheet.cell(row=sheet.max_row, column=columns.index(column) + 1)
            cell.comment = Comment("\n".join(dict.fromkeys(notes)), "Zoufang")


def _note(row: dict[str, Any], column: str, message: str) -> None:
    row.setdefault(_NOTES, {}).setdefault(column, []).append(message)


def _localized(column: str, text: Mapping[str, str] | None) -> dict[str, str]:
    if not text:
        return {}
    return {f"{column}::{name}": text[lang] for lang, name in LANGUAGES.items() if lang in text}


def _survey_rows(
    fields: list[dict[str, Any]], questions: Mapping[str, Question], names: set[str]
) -> list[dict[str, Any]]:
    """One row per field, a field's innermost group as begin_group/end_group around its run,
    a repeat as begin_repeat, the rows of its own fields, end_repeat. ``names`` holds the
    names taken: a group's later run apart from its first needs one of its own."""
    rows: list[dict[str, Any]] = []
    group: str | None = None
    for field in fields:
        if field.get("group") != group:
            if group is not None:
                rows.append({"type": "end_group"})
            group = field.get("group")
            if group is not None:
                begin = {"type": "begin_group", "name": _group_name(group, names)}
                begin.update(_localized("label", field.get("group_label")))
                if begin["name"] != group:
                    _note(
                        begin,
                        "name",
                        f"the name {group} is taken: the group comes back as {begin['name']}",
                    )
                rows.append(begin)
        if field["type"] == "repeat":
            rows.append(_repeat_row(field, questions))
            rows.extend(_survey_rows(field["fields"], questions, names))
            rows.append({"type": "end_repeat"})
        else:
            rows.append(_survey_row(field, questions))
    if group is not None:
        rows.append({"type": "end_group"})
    return rows


def _group_name(group: str, names: set[str]) -> str:
    """The group's id, or, taken already, the id the import gives the next of that name."""
    name, number = group, 1
    while name in names:
        number += 1
        name = f"{group}_{number}"
    names.add(name)
    return name


def _repeat_row(field: dict[str, Any], questions: Mapping[str, Question]) -> dict[str, Any]:
    """``begin_repeat``: its count as ``repeat_count`` (a number, or XPath), one entry per
    person of the household as Zoufang's ``repeat_seed`` = ``people``."""
    row: dict[str, Any] = {"type": "begin_repeat", "name": _name(field)}
    for column in ("label", "hint"):
        row.update(_localized(column, field.get(column)))
    if field.get("relevant"):
        _expression(row, "relevant", condition_xpath(field["relevant"], questions))
    count = field.get("repeat_count")
    if isinstance(count, str):
        _expression(row, "repeat_count", value_xpath(count, questions))
    elif count is not None:
        row["repeat_count"] = count
    if field.get("seed"):
        row["repeat_seed"] = field["seed"]
    if field.get("required"):
        _note(row, "type", "required on a repeat has no XLSForm column: it is not imported")
    return row


def _expression(row: dict[str, Any], column: str, xpath: XPath) -> None:
    """An expression's XPath in its column, and what the import reads back otherwise."""
    row[column] = xpath.text
    for change in xpath.changes:
        _note(row, column, f"comes back otherwise: {CHANGES[change]}")


def _survey_row(field: dict[str, Any], questions: Mapping[str, Question]) -> dict[str, Any]:
    kind = field["type"]
    row: dict[str, Any] = {"name": _name(field)}
    if kind == "boolean":
        row["type"] = f"select_one {YES_NO}"
    elif kind in _CHOICE_WORDS:
        row["type"] = f"{_CHOICE_WORDS[kind]} {_list_name(field)}"
    else:
        row["type"] = _TYPES[kind]
    if kind == "person":
        row[ZOUFANG_TYPE] = "person"
    for column in ("label", "hint", "required_message", "constraint_message"):
        row.update(_localized(column, field.get(column)))
    required = field.get("required", False)
    if required is True:
        row["required"] = "yes"
    elif isinstance(required, str):
        _expression(row, "required", condition_xpath(required, questions))
    if field.get("relevant"):
        _expression(row, "relevant", condition_xpath(field["relevant"], questions))
    _constraint(row, field, questions)
    if "calculation" in field:
        _expression(row, "calculation", value_xpath(field["calculation"], questions))
    if field.get("choice_filter"):
        row["choice_filter"] = " and ".join(
            _filter_term(term, questions) for term in field["choice_filter"]
        )
    _default_cell(row, field, questions)
    if field.get("read_only"):
        row["read_only"] = "yes"
    if kind == "range":
        start, end, step = (number_xpath(field[key]) for key in ("min", "max", "step"))
        row["parameters"] = f"start={start} end={end} step={step}"
    if field.get("problem"):
        _expression(row, "problem_when", condition_xpath(field["problem"]["when"], questions))
        row["problem_category"] = field["problem"]["category"]
    return row


def _constraint(
    row: dict[str, Any], field: dict[str, Any], questions: Mapping[str, Question]
) -> None:
    """Bounds as comparisons of ``.`` first (what the import reads as min, max and
    max_length), then the constraint condition, its own question named ``${name}``: the
    import reads ``. >= 3`` as a bound and what follows the bounds as the condition."""
    parts = []
    if field["type"] in ("number", "integer"):
        if "min" in field:
            parts.append(f". >= {number_xpath(field['min'])}")
        if "max" in field:
            parts.append(f". <= {number_xpath(field['max'])}")
    if "max_length" in field:
        parts.append(f"string-length(.) <= {field['max_length']}")
    changes: tuple[str, ...] = ()
    if field.get("constraint"):
        xpath = condition_xpath(field["constraint"], questions, current=field["id"])
        parts.append(f"({xpath.text})" if parts and xpath.loosest == "or" else xpath.text)
        changes = xpath.changes
    if parts:
        _expression(row, "constraint", XPath(" and ".join(parts), changes=changes))


def _default_cell(
    row: dict[str, Any], field: dict[str, Any], questions: Mapping[str, Question]
) -> None:
    """``prefill`` as today()/now(); a dynamic default as XPath, in parentheses when it reads
    no question and calls nothing (the import takes only such a default for an expression);
    a fixed default as the import reads one of the field's type."""
    if "prefill" in field:
        row["default"] = _PREFILLS[field["prefill"]]
    elif "dynamic_default" in field:
        xpath = value_xpath(field["dynamic_default"], questions)
        if "${" not in xpath.text and "(" not in xpath.text:
            xpath = XPath(f"({xpath.text})", changes=xpath.changes)
        _expression(row, "default", xpath)
    elif "default" in field:
        row["default"] = _default(field, field["default"])
        if isinstance(row["default"], str) and ("${" in row["default"] or "(" in row["default"]):
            _note(row, "default", "the import reads a text with ${ or ( as an expression")


def _default(field: dict[str, Any], value: Any) -> Any:
    kind = field["type"]
    if kind == "boolean":
        return "yes" if value else "no"
    if kind in ("multiple_choice", "rank"):
        return " ".join(value)
    if kind == "geopoint":
        keys = ("lat", "lon", "altitude", "accuracy")
        if "accuracy" in value and "altitude" not in value:
            value = {**value, "altitude": 0}
        return " ".join(str(value[key]) for key in keys if key in value)
    return value


def _filter_term(term: dict[str, str], questions: Mapping[str, Question]) -> str:
    """One term of a choice_filter in XPath. A ``${q} = 'text'`` term of an import is kept
    in a column named as the term was written: that name is the term."""
    if term["column"].startswith("${"):
        return term["column"]
    if "selected_in" in term:
        return f"selected(${{{questions[term['selected_in']].name}}}, {term['column']})"
    if "field" in term:
        return f"{term['column']} = ${{{questions[term['field']].name}}}"
    return f"{term['column']} = {_quoted(term['value'])}"


def _choice_rows(fields: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The choices of every list (fields at any depth), and the filter columns of the
    cascading ones."""
    rows: list[dict[str, Any]] = []
    columns: dict[str, None] = {}
    if any(f["type"] == "boolean" for f in fields):
        rows.append({"list_name": YES_NO, "name": "yes", **_localized("label", _YES)})
        rows.append({"list_name": YES_NO, "name": "no", **_localized("label", _NO)})
    for field in fields:
        for choice in field.get("choices", ()):
            row = {"list_name": _list_name(field), "name": choice["value"]}
            row.update(_localized("label", choice["label"]))
            for column, tag in choice.get("filter", {}).items():
                if column != "name" and not column.startswith("${"):
                    columns.setdefault(column)
                    row[column] = tag
            rows.append(row)
    return rows, tuple(columns)


_YES = {"zh-CN": "是", "en": "Yes"}
_NO = {"zh-CN": "否", "en": "No"}


def _list_name(field: dict[str, Any]) -> str:
    return str(field["id"])


def _name(field: Mapping[str, Any]) -> str:
    return str(field.get("name", field["id"]))


def _quoted(text: str) -> str:
    return f'"{text}"' if "'" in text else f"'{text}'"
