"""A published form version written back as an XLSForm workbook (.xlsx), so that a county can
take a form out of Zoufang, change it in Excel (or KoboToolbox, ODK) and import it again.

The workbook is what ``forms.xlsform`` reads: a survey, a choices and a settings sheet, labels
as ``label::中文 (zh-CN)`` and ``label::English (en)``, and the conditions of the definition
translated back into XLSForm's XPath (``f == 'x'`` → ``${f} = 'x'``). Importing the download
again gives the same definition (tests/test_forms_admin.py holds this for the sample forms):
each construct is written the way the import reads it back. What XLSForm has no word for is
listed in forms/README.md ("Download back as XLSForm").
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from openpyxl import Workbook

import forms
from forms.expressions import (
    And,
    Comparison,
    Count,
    Literal,
    Membership,
    Node,
    Not,
    NullTest,
    Or,
    Reference,
    Selected,
    parse_expression,
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
    "person": "text",  # XLSForm has no picker of the household's people
}
_PREFILLS = {"today": "today()", "now": "now()"}
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
    "choice_filter",
    "default",
    "read_only",
    "parameters",
    "problem_when",
    "problem_category",
)


def xlsform_workbook(form: forms.FormVersion) -> bytes:
    """The .xlsx bytes of one form version."""
    data = form.to_record_data()
    fields = data["fields"]
    book = Workbook()
    survey = book.active
    survey.title = "survey"
    _write(survey, _SURVEY_COLUMNS, _survey_rows(fields))
    choice_rows, filter_columns = _choice_rows(fields)
    columns = ("list_name", "name", *(f"label::{n}" for n in LANGUAGES.values()), *filter_columns)
    _write(book.create_sheet("choices"), columns, choice_rows)
    settings = {"form_id": form.form_id, "version": form.version, "policy": form.policy or ""}
    settings["form_title"] = data["title"]["zh-CN"]
    settings.update(_localized("form_title", data["title"]))
    _write(book.create_sheet("settings"), tuple(settings), [settings])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _write(sheet: Any, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    sheet.append(list(columns))
    for row in rows:
        sheet.append([spreadsheet_text(row.get(column)) for column in columns])


def _localized(column: str, text: Mapping[str, str] | None) -> dict[str, str]:
    if not text:
        return {}
    return {f"{column}::{name}": text[lang] for lang, name in LANGUAGES.items() if lang in text}


def _survey_rows(fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per field, a field's innermost group as begin_group/end_group around its run."""
    names = {f["id"]: f for f in fields}
    rows: list[dict[str, Any]] = []
    group: str | None = None
    for field in fields:
        if field.get("group") != group:
            if group is not None:
                rows.append({"type": "end_group"})
            group = field.get("group")
            if group is not None:
                begin = {"type": "begin_group", "name": group}
                begin.update(_localized("label", field.get("group_label")))
                rows.append(begin)
        rows.append(_survey_row(field, names))
    if group is not None:
        rows.append({"type": "end_group"})
    return rows


def _survey_row(field: dict[str, Any], fields: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    xpath = XPath(fields)
    kind = field["type"]
    row: dict[str, Any] = {"name": field.get("name", field["id"])}
    if kind == "boolean":
        row["type"] = f"select_one {YES_NO}"
    elif kind in ("single_choice", "multiple_choice"):
        word = "select_one" if kind == "single_choice" else "select_multiple"
        row["type"] = f"{word} {_list_name(field)}"
    else:
        row["type"] = _TYPES[kind]
    for column in ("label", "hint", "required_message", "constraint_message"):
        row.update(_localized(column, field.get(column)))
    required = field.get("required", False)
    if required is True:
        row["required"] = "yes"
    elif isinstance(required, str):
        row["required"] = xpath.condition(required)
    if field.get("relevant"):
        row["relevant"] = xpath.condition(field["relevant"])
    row["constraint"] = _constraint(field, xpath)
    if field.get("choice_filter"):
        row["choice_filter"] = " and ".join(
            _filter_term(term, fields) for term in field["choice_filter"]
        )
    if "prefill" in field:
        row["default"] = _PREFILLS[field["prefill"]]
    elif "default" in field:
        row["default"] = _default(field, field["default"])
    if field.get("read_only"):
        row["read_only"] = "yes"
    if kind == "range":
        row["parameters"] = f"start={field['min']} end={field['max']} step={field['step']}"
    if field.get("problem"):
        row["problem_when"] = xpath.condition(field["problem"]["when"])
        row["problem_category"] = field["problem"]["category"]
    return row


def _constraint(field: dict[str, Any], xpath: XPath) -> str | None:
    """Bounds as comparisons of ``.`` (what the import reads as min, max and max_length), and
    a constraint condition as it is, its own question named ``${name}``: the import would read
    ``. >= 3`` alone as a bound."""
    parts = []
    if field["type"] in ("number", "integer"):
        if "min" in field:
            parts.append(f". >= {field['min']}")
        if "max" in field:
            parts.append(f". <= {field['max']}")
    if "max_length" in field:
        parts.append(f"string-length(.) <= {field['max_length']}")
    if field.get("constraint"):
        text = xpath.condition(field["constraint"])
        parts.append(f"({text})" if parts and xpath.loosest == "or" else text)
    return " and ".join(parts) or None


def _default(field: dict[str, Any], value: Any) -> Any:
    kind = field["type"]
    if kind == "boolean":
        return "yes" if value else "no"
    if kind == "multiple_choice":
        return " ".join(value)
    if kind == "geopoint":
        keys = ("lat", "lon", "altitude", "accuracy")
        if "accuracy" in value and "altitude" not in value:
            value = {**value, "altitude": 0}
        return " ".join(str(value[key]) for key in keys if key in value)
    return value


def _filter_term(term: dict[str, str], fields: dict[str, Any]) -> str:
    """One term of a choice_filter in XPath. A ``${q} = 'text'`` term of an import is kept
    in a column named as the term was written: that name is the term."""
    if term["column"].startswith("${"):
        return term["column"]
    if "selected_in" in term:
        return f"selected(${{{_name(fields[term['selected_in']])}}}, {term['column']})"
    if "field" in term:
        return f"{term['column']} = ${{{_name(fields[term['field']])}}}"
    return f"{term['column']} = {_quoted(term['value'])}"


def _choice_rows(fields: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
    """The choices of every list, and the filter columns of the cascading ones."""
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


class XPath:
    """A condition of the definition in XLSForm's XPath, written as the import translates it
    back: a yes/no question compares with ``'yes'``/``'no'``, an unanswered question is
    ``''``, and ``f == null or f != 'x'`` is XLSForm's own ``${f} != 'x'``."""

    def __init__(self, fields: Mapping[str, Mapping[str, Any]]) -> None:
        self.fields = fields
        self.loosest = ""

    def condition(self, text: str) -> str:
        written, self.loosest = self._term(parse_expression(text).root)
        return written

    def _term(self, node: Node) -> tuple[str, str]:
        """The XPath of a node and its loosest operator, so that it is parenthesized only
        inside a tighter one."""
        if isinstance(node, And | Or):
            pattern = self._not_equal(node)
            if pattern is not None:
                return pattern, ""
            word = "and" if isinstance(node, And) else "or"
            parts = []
            for operand in node.operands:
                text, loosest = self._term(operand)
                parts.append(f"({text})" if loosest == "or" and word == "and" else text)
            return f" {word} ".join(parts), word
        if isinstance(node, Not):
            return f"not({self._term(node.operand)[0]})", ""
        if isinstance(node, Literal):
            return ("true()" if node.value else "false()"), ""
        if isinstance(node, Reference):
            if self.fields[node.field]["type"] == "boolean":
                return f"{self._ref(node.field)} = 'yes'", ""
            return f"{self._ref(node.field)} != ''", ""
        if isinstance(node, NullTest):
            return f"{self._operand(node.operand)} {'=' if node.is_null else '!='} ''", ""
        if isinstance(node, Selected):
            return f"selected({self._ref(node.field)}, {_quoted(node.value)})", ""
        if isinstance(node, Membership):
            operand = self._operand(node.operand)
            field = self._field_of(node.operand)
            items = [f"{operand} = {self._literal(field, item)}" for item in node.items]
            return " or ".join(items), "or" if len(items) > 1 else ""
        if isinstance(node, Comparison):
            return self._comparison(node), ""
        raise ValueError(f"no XPath for {node!r}")

    def _not_equal(self, node: Node) -> str | None:
        """``f == null or f != v`` (and ``g == null or f != g``): XLSForm's ``!=``, which holds
        for an unanswered question."""
        if not (isinstance(node, Or) and len(node.operands) == 2):
            return None
        null, comparison = node.operands
        if not (
            isinstance(null, NullTest)
            and null.is_null
            and isinstance(null.operand, Reference)
            and isinstance(comparison, Comparison)
            and comparison.op == "!="
            and null.operand in (comparison.left, comparison.right)
        ):
            return None
        return self._comparison(comparison)

    def _comparison(self, node: Comparison) -> str:
        op = "=" if node.op == "==" else node.op
        field = self._field_of(node.left) or self._field_of(node.right)
        left, right = (
            self._literal(field, side.value) if isinstance(side, Literal) else self._operand(side)
            for side in (node.left, node.right)
        )
        return f"{left} {op} {right}"

    def _operand(self, node: Node) -> str:
        if isinstance(node, Reference):
            return self._ref(node.field)
        if isinstance(node, Count):
            return f"count-selected({self._ref(node.field)})"
        if isinstance(node, Literal):
            return self._literal(None, node.value)
        raise ValueError(f"no XPath for {node!r}")

    def _field_of(self, node: Node) -> Mapping[str, Any] | None:
        if isinstance(node, Reference):
            return self.fields[node.field]
        return None

    def _literal(self, field: Mapping[str, Any] | None, value: object) -> str:
        if value is None:
            return "''"
        if isinstance(value, bool):
            if field is not None and field["type"] == "boolean":
                return "'yes'" if value else "'no'"
            return "true()" if value else "false()"
        if isinstance(value, int | float):
            return str(value)
        return _quoted(str(value))

    def _ref(self, field_id: str) -> str:
        return f"${{{_name(self.fields[field_id])}}}"
