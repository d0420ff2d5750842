"""Converting an XLSForm, the ODK/KoBoToolbox spreadsheet convention, into a form definition.

County staff design surveys in Excel the way ODK and KoBo taught them. The workbook is read
by pyxform, the reference implementation those projects keep (``server/admin/xlsform_io.py``), so
every spelling it accepts (``select one from L``, ``label::English (en)``, ``.xls`` …) means
here what it means there. ``convert_survey`` turns pyxform's JSON form into a definition
document that ``validate_definition`` accepts, translating ``relevant``, ``required`` and
simple ``constraint`` expressions into the condition language of this package. What a Zoufang
form cannot hold is refused, never dropped: every problem is reported at once with its sheet,
row and column, so the author fixes the spreadsheet in one pass. pyxform's JSON keeps no row
numbers, so ``locate`` reads them from the sheets' rows, for the messages only. Pure standard
library; the rules are in the XLSForm section of ``README.md``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from forms.definition import validate_definition
from forms.expressions import (
    ARITIES,
    FUNCTIONS,
    KEYWORDS,
    ExpressionError,
    Or,
    parse_expression,
)
from forms.model import NUMBER_TYPES, POLICIES, PREFILLS

Row = Mapping[str, object]
Sheets = Mapping[str, Sequence[Row]]

#: ``rows[0]`` of a sheet is spreadsheet row 2: row 1 holds the column headers.
FIRST_ROW = 2
MAX_NESTING = 32

_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")
_RESERVED = KEYWORDS | FUNCTIONS
_TRUE_WORDS = frozenset({"yes", "true", "true()", "1"})
_FALSE_WORDS = frozenset({"", "no", "false", "false()", "0"})
_ZH_NAMES = frozenset({"chinese", "中文", "汉语", "简体中文", "普通话", "mandarin"})
_EN_NAMES = frozenset({"english", "英文", "英语"})
_CHOICE_TYPES = ("single_choice", "multiple_choice", "rank")

#: pyxform keeps a question's type as the author spelt it; every spelling of its type
#: dictionary (pyxform/question_type_dictionary.py) that means the same question
_ALIASES = {
    "string": "text",
    "q string": "text",
    "add text prompt": "text",
    "int": "integer",
    "q int": "integer",
    "add integer prompt": "integer",
    "add decimal prompt": "decimal",
    "q decimal": "decimal",
    "add date prompt": "date",
    "q date": "date",
    "datetime": "dateTime",
    "date time": "dateTime",
    "q date time": "dateTime",
    "q datetime": "dateTime",
    "add date time prompt": "dateTime",
    "add datetime prompt": "dateTime",
    "add note prompt": "note",
    "q note": "note",
    "q acknowledge": "acknowledge",
    "add acknowledge prompt": "acknowledge",
    "location": "geopoint",
    "gps": "geopoint",
    "q geopoint": "geopoint",
    "q location": "geopoint",
    "add location prompt": "geopoint",
    "q geotrace": "geotrace",
    "q geoshape": "geoshape",
    "photo": "image",
    "q picture": "image",
    "q image": "image",
    "add image prompt": "image",
    "q audio": "audio",
    "add audio prompt": "audio",
    "q video": "video",
    "add video prompt": "video",
    "add file prompt": "file",
    "q barcode": "barcode",
    "add barcode prompt": "barcode",
    "q calculate": "calculate",
    "add calculate prompt": "calculate",
    "select one using": "select one",
    "q select1": "select one",
    "add select one prompt using": "select one",
    "select all that apply from": "select all that apply",
    "select multiple from": "select all that apply",
    "select multiple using": "select all that apply",
    "q select": "select all that apply",
    "add select multiple prompt using": "select all that apply",
}
_TYPES = {
    "text": "text",
    "integer": "integer",
    "decimal": "number",
    "range": "range",
    "date": "date",
    "time": "time",
    "dateTime": "datetime",
    "note": "note",
    "image": "photo",
    "acknowledge": "boolean",
    "trigger": "boolean",
    "hidden": "hidden",
    "geopoint": "geopoint",
    "geotrace": "geotrace",
    "geoshape": "geoshape",
    "calculate": "calculate",
    "select one": "single_choice",
    "select all that apply": "multiple_choice",
    "rank": "rank",
    "audio": "audio",
    "video": "video",
    "file": "file",
    "barcode": "barcode",
}
#: the selects whose choices may come from a file or the external_choices sheet
_SELECTS = ("select one", "select all that apply", "rank")
#: Zoufang's own survey column on a begin_repeat row: ``people`` asks the repeat once per
#: person of the household (the definition's ``seed``)
_SEED_COLUMN = "repeat_seed"
#: Zoufang's own survey column: ``person`` on a text question makes it a pick of one of the
#: household's people (the ``person`` type), which XLSForm has no type for
_ZOUFANG_TYPE_COLUMN = "zoufang_type"
#: Filled in by the phone, not asked: a Zoufang visit records who, when, where and on which
#: device by itself, so these questions are skipped.
_METADATA = frozenset(
    {
        "start",
        "end",
        "today",
        "deviceid",
        "imei",
        "device id",
        "get device id",
        "username",
        "email",
        "phonenumber",
        "phone number",
        "get phone number",
        "simserial",
        "sim id",
        "get sim id",
        "subscriberid",
        "subscriber id",
        "get subscriber id",
        "start time",
        "end time",
        "get start time",
        "get end time",
        "get today",
        "audit",
        "start-geopoint",
        "background-geopoint",
        "background-audio",
        "uri:deviceid",
        "uri:username",
        "uri:email",
        "uri:phonenumber",
        "uri:simserial",
        "uri:subscriberid",
    }
)
_UNSUPPORTED = {
    "xml-external": "external data files are not supported yet",
    "csv-external": "external data files are not supported yet",
    "osm": "OpenStreetMap questions are not supported",
}
#: Columns whose meaning a Zoufang field cannot carry yet; presentation columns (appearance,
#: media::image, …) and KoBo's bookkeeping ($kuid, …) are ignored.
_UNSUPPORTED_COLUMNS = {
    "trigger": "trigger is not supported yet",
}
#: pyxform's JSON keeps these in a question's ``bind``; here they are the columns they came from
_BIND_COLUMNS = {
    "jr:constraintMsg": "constraint_message",
    "jr:requiredMsg": "required_message",
    "readonly": "read_only",
    "calculate": "calculation",
}
#: keys of pyxform's JSON questions that hold no column of their own, or one Zoufang reads
#: elsewhere (choices, range parameters) or ignores (control: appearance)
_STRUCTURE_KEYS = frozenset(
    {
        "type",
        "name",
        "children",
        "choices",
        "itemset",
        "list_name",
        "parameters",
        "control",
        "actions",
        "_dynamic_default",
        "media",
        "sms_field",
        "instance",
    }
)
_DYNAMIC_DEFAULTS = {"today()": "today", "now()": "now"}
#: the question pyxform adds after a select with ``or_other``, and its relevant
_OR_OTHER = re.compile(r"selected\(\.\./(?P<name>[^,]+), 'other'\)")
_OTHER_LABEL = {"zh-CN": "其他", "en": "Other"}
_SPECIFY_OTHER_LABEL = {"zh-CN": "请注明其他", "en": "Specify other"}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_COLUMN_OF_PATH = {
    ".choice_filter": "choice_filter",
    ".relevant": "relevant",
    ".required": "required",
    ".problem.when": "problem_when",
    ".label": "label",
    ".hint": "hint",
}
_ORDERED = (*NUMBER_TYPES, "date", "time", "datetime")
#: the questions that may carry a ``calculation`` (ODK then computes their value)
_CALCULATED = frozenset(_TYPES) - {"note", "calculate"} | {"select one external"}
#: the columns of what a person answers, without meaning on a computed question
_ANSWERED_COLUMNS = frozenset(
    {
        "required",
        "required_message",
        "default",
        "constraint",
        "constraint_message",
        "choice_filter",
        "read_only",
    }
)
#: questions a constraint never compares with another question
_UNCOMPARED = frozenset({"multiple_choice", "photo", "note", "geopoint", "geotrace", "geoshape"})
#: XLSForm's functions of values and their Zoufang spelling (others: see _value_call)
_VALUE_FUNCTIONS = {
    "string-length": "string_length",
    "today": "today",
    "now": "now",
    "concat": "concat",
    "coalesce": "coalesce",
    "int": "int",
    "number": "number",
    "round": "round",
    "sum": "sum",
}
_NUMERIC_FUNCTIONS = frozenset(
    {"string-length", "int", "number", "round", "sum", "count", "count-selected", "position"}
)


@dataclass(frozen=True)
class SheetProblem:
    """One thing in the spreadsheet that cannot become part of a Zoufang form, and where."""

    sheet: str
    row: int | None  # the spreadsheet's row number: the header is row 1
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.sheet if self.row is None else f"{self.sheet} row {self.row}"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


class XLSFormError(ValueError):
    """An XLSForm that cannot be imported; ``problems`` lists every reason, in sheet order."""

    def __init__(self, problems: list[SheetProblem]) -> None:
        lines = "\n".join(f"- {problem}" for problem in problems)
        super().__init__(f"the XLSForm cannot be imported ({len(problems)} problems):\n{lines}")
        self.problems = problems


@dataclass(frozen=True)
class SheetRows:
    """Where the workbook holds what pyxform's JSON names, so messages name rows."""

    survey: Mapping[str, int]  # question or group name -> its row
    choices: Mapping[tuple[str, str], int]  # (list_name, choice name) -> its row
    settings: Mapping[str, str]  # the settings row, headers normalized
    settings_row: int | None


def locate(sheets: Sheets) -> SheetRows:
    """The rows of the survey, choices and settings sheets as the author sees them in Excel.

    ``sheets`` maps sheet names (any case) to their data rows as ``{column header: cell}``;
    ``rows[i]`` is spreadsheet row ``i + 2`` and a blank row is an empty mapping.
    """
    by_name = {name.strip().lower(): rows for name, rows in sheets.items()}
    survey: dict[str, int] = {}
    for index, raw in enumerate(by_name.get("survey", ())):
        name = _normalize(raw).get("name")
        if name:
            survey.setdefault(name, index + FIRST_ROW)
    choices: dict[tuple[str, str], int] = {}
    for index, raw in enumerate(by_name.get("choices", ())):
        cells = _normalize(raw)
        key = (cells.get("list_name", ""), cells.get("name", ""))
        choices.setdefault(key, index + FIRST_ROW)
    for index, raw in enumerate(by_name.get("settings", ())):
        cells = _normalize(raw)
        if cells:
            return SheetRows(survey, choices, cells, index + FIRST_ROW)
    return SheetRows(survey, choices, {}, None)


def convert_survey(
    survey: Mapping[str, Any],
    rows: SheetRows,
    *,
    form_id: str | None = None,
    fallback_id: str | None = None,
    version: int | None = None,
    external: ExternalChoices | None = None,
) -> dict[str, Any]:
    """The definition document ``{"form_id", "versions": [one version]}`` of pyxform's JSON
    form (``pyxform.xls2json.workbook_to_json``).

    The form id is ``form_id``, else the settings sheet's, else ``fallback_id`` (the file
    name) made snake_case; ``version`` overrides the settings sheet. ``external`` holds the
    choices of ``select_one_from_file`` and ``select_one_external`` questions (see
    ``ExternalChoices``); they are copied into the definition. Raises XLSFormError listing
    every problem.
    """
    return _Converter(survey, rows, external).convert(form_id, fallback_id, version)


def snake_id(text: str) -> str:
    """A snake_case id for a name an author wrote (``HH_Size`` → ``hh_size``, ``2b`` →
    ``q_2b``), at most 64 characters; empty if nothing of it is usable."""
    words = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not words:
        return ""
    if not words[0].isalpha():
        words = f"q_{words}"
    return words[:64].rstrip("_")


def from_xpath(
    text: str,
    questions: Mapping[str, tuple[str, str]],
    *,
    condition: bool,
    current: str | None = None,
) -> str:
    """An XLSForm expression as the import translates it: a condition (``relevant``, or a
    ``constraint`` of the question named ``current``) or a value (``calculation``).
    ``questions`` maps each question's name to its field id and Zoufang type. Raises
    ValueError when it cannot be translated. What ``forms.xpath_out`` is the inverse of."""
    known = {
        name: _Question(None, name, ident, kind, kind, {}, None)
        for name, (ident, kind) in questions.items()
    }
    for question in known.values():
        if question.type == "boolean":
            question.booleans = {"yes": True, "no": False}
    translator = _Translator(known, current=None if current is None else known[current])
    node = _Parser(text).parse()
    return translator.condition(node) if condition else translator.value(node)


class _Untranslatable(ValueError):
    """Something in an XLSForm expression that a Zoufang condition cannot say."""


@dataclass
class _Group:
    row: int | None
    name: str
    id: str
    relevant: str
    parent: _Group | None
    label: dict[str, str]
    condition: str | None = None  # the translated relevant, once translated
    translated: bool = False


@dataclass
class _Question:
    row: int | None
    name: str  # as the author wrote it, which ${…} references use
    id: str  # the field id: the name, made snake_case if it is not
    kind: str  # the XLSForm type: integer, select one, acknowledge, …
    type: str  # the Zoufang field type
    cells: dict[str, str]
    group: _Group | None
    choices: list[dict[str, Any]] = field(default_factory=list)
    booleans: dict[str, bool] = field(default_factory=dict)  # lowercase answer -> true/false
    node: Mapping[str, Any] = field(default_factory=dict)
    repeat: _Question | None = None  # the repeat whose entries ask this question


#: rows of choices from outside the choices sheet: a file name (``villages.csv``) or a list of
#: the external_choices sheet (``select_one_external L``) -> its rows as {column: cell}
ExternalChoices = Mapping[str, Sequence[Mapping[str, object]]]


class _Converter:
    def __init__(
        self, survey: Mapping[str, Any], rows: SheetRows, external: ExternalChoices | None = None
    ) -> None:
        self.survey = survey
        self.rows = rows
        self.external = external if external is not None else {}
        self.positions: dict[tuple[int, ...], _Question] = {}  # where each field is
        self.repeat_counts: dict[str, str] = {}  # pyxform's <repeat>_count -> its expression
        self.loop_names: dict[str, str] = {}  # a question of a loop, per choice -> its name
        self.problems: list[SheetProblem] = []
        self.settings_row = rows.settings_row
        self.questions: dict[str, _Question] = {}
        self.ids: dict[str, int | None] = {}

    def problem(self, sheet: str, row: int | None, column: str | None, message: str) -> None:
        self.problems.append(SheetProblem(sheet, row, column, message))

    def convert(
        self, form_id: str | None, fallback_id: str | None, version: int | None
    ) -> dict[str, Any]:
        settings = self.rows.settings
        form_id = self._form_id(form_id, settings, fallback_id)
        number = self._version(version, settings)
        policy = self._policy(settings)
        title = _localized(settings, "form_title") or {"zh-CN": form_id, "en": form_id}
        questions = self._questions()
        self.questions = {question.name: question for question in questions}
        fields = self._nested_fields(questions)
        if self.problems:
            raise XLSFormError(_in_sheet_order(self.problems))
        doc = {
            "form_id": form_id,
            "versions": [{"version": number, "title": title, "policy": policy, "fields": fields}],
        }
        for error in validate_definition(doc):
            self._definition_problem(error, questions)
        if self.problems:
            raise XLSFormError(_in_sheet_order(self.problems))
        return doc

    def _nested_fields(self, questions: list[_Question]) -> list[dict[str, Any]]:
        """The fields of the questions, those of a repeat in the repeat's ``fields``; where
        each came from is kept for placing the findings of ``validate_definition``."""
        fields: list[dict[str, Any]] = []
        repeats: dict[str, tuple[tuple[int, ...], list[dict[str, Any]]]] = {"": ((), fields)}
        for question in questions:
            doc = self._field(question)
            parent = "" if question.repeat is None else question.repeat.name
            if parent not in repeats:
                continue  # its repeat could not be converted, which is reported already
            path, siblings = repeats[parent]
            path = (*path, len(siblings))
            self.positions[path] = question
            siblings.append(doc)
            if question.type == "repeat":
                repeats[question.name] = (path, doc["fields"])
        return fields

    # settings sheet

    def _form_id(self, given: str | None, settings: Mapping[str, str], fallback: str | None) -> str:
        form_id = given if given is not None else settings.get("form_id", "")
        if not form_id and fallback:
            return snake_id(fallback) or "form"
        if given is None and snake_id(form_id):
            return snake_id(form_id)  # ODK's ids may be MyForm or tutorial-2
        if not form_id:
            self.problem(
                "settings",
                self.settings_row,
                "form_id",
                "no form_id: name the form in the settings sheet or give a form id",
            )
        elif not _is_id(form_id):
            self.problem(
                "settings",
                None if given is not None else self.settings_row,
                "form_id",
                f"form id {form_id!r} must be snake_case: lowercase letters, digits and _, "
                "starting with a letter, at most 64 characters",
            )
        return form_id

    def _version(self, given: int | None, settings: Mapping[str, str]) -> int:
        """The settings sheet's version when it is a whole number, else 1. ODK and Kobo take
        any text there (often a date, ``2024-05-05 09:29:21``), and the import numbers the
        published version itself, so a version that is no number is no mistake."""
        if given is not None:
            return given
        text = settings.get("version", "")
        if text.isascii() and text.isdigit() and int(text) >= 1:
            return int(text)
        return 1

    def _policy(self, settings: Mapping[str, str]) -> str | None:
        policy = settings.get("policy") or None
        if policy not in POLICIES:
            self.problem(
                "settings", self.settings_row, "policy", "policy must be weekly, monthly or empty"
            )
            return None
        return policy

    # survey, first pass: the questions, their types and groups

    def _questions(self) -> list[_Question]:
        questions: list[_Question] = []
        self._walk(self.survey.get("children") or [], None, questions)
        if not questions and not self.problems:
            self.problem("survey", None, None, "no questions to import")
        return questions

    def _walk(
        self,
        nodes: Sequence[Any],
        group: _Group | None,
        out: list[_Question],
        repeat: _Question | None = None,
    ) -> None:
        """Every question of ``nodes`` and of the groups and repeats in them, in form order
        (a repeat before its own questions)."""
        for node in nodes:
            if not isinstance(node, Mapping):
                continue
            written, name = str(node.get("type", "")), str(node.get("name", ""))
            kind = _ALIASES.get(written, written)
            row = self.rows.survey.get(self.loop_names.get(name, name))
            if kind == "calculate" and _counts_a_repeat(name, nodes):
                # pyxform writes a repeat_count other than ${question} as this calculation
                self.repeat_counts[name] = str((node.get("bind") or {}).get("calculate", ""))
                continue
            if kind == "group" and name == "meta" and (node.get("control") or {}).get("bodyless"):
                continue  # pyxform's own instanceID, and the metadata a visit records itself
            if kind == "group":
                ident = self._field_id(name, row, "group")
                relevant = str((node.get("bind") or {}).get("relevant", ""))
                label = _localized(_cells(node), "label")
                inner = _Group(row, name, ident or "", relevant, group, label)
                self._walk(node.get("children") or [], inner, out, repeat)
            elif kind == "loop":
                self._loop(node, row, group, out, repeat)
            elif kind == "repeat":
                entry = self._repeat(node, row, group)
                if entry is not None:
                    entry.repeat = repeat
                    out.append(entry)
                    self._walk(node.get("children") or [], None, out, entry)
            elif kind not in _METADATA:
                question = self._question(node, kind, row, group, out)
                if question is not None:
                    question.repeat = repeat
                    out.append(question)

    def _loop(
        self,
        node: Mapping[str, Any],
        row: int | None,
        group: _Group | None,
        out: list[_Question],
        repeat: _Question | None,
    ) -> None:
        """``begin loop over L``: its questions asked once per choice of ``L``, as pyxform
        writes the XForm: a group per choice (titled by the choice's label), each question
        named ``<question>_<choice>`` and ``%(label)s`` / ``%(name)s`` in its label filled in."""
        name = str(node.get("name", ""))
        relevant = str((node.get("bind") or {}).get("relevant", ""))
        for column in node.get("columns") or []:
            choice = str(column.get("name", ""))
            label = _localized(_cells(column), "label") or {"zh-CN": choice, "en": choice}
            ident = self._field_id(f"{name}_{choice}", row, "group")
            inner = _Group(row, f"{name}_{choice}", ident or "", relevant, group, label)
            children = [self._for_choice(c, choice, label) for c in node.get("children") or []]
            self._walk(children, inner, out, repeat)

    def _for_choice(self, node: Any, choice: str, label: Mapping[str, str]) -> Any:
        """A question (or group) of a loop as it is asked for one choice."""
        if not isinstance(node, Mapping):
            return node
        name = str(node.get("name", ""))
        renamed = f"{name}_{choice}"
        self.loop_names[renamed] = self.loop_names.get(name, name)
        text = next(iter(label.values()), choice)

        def filled(value: Any) -> Any:
            if isinstance(value, str):
                return value.replace("%(label)s", text).replace("%(name)s", choice)
            if isinstance(value, Mapping):
                return {k: filled(v) for k, v in value.items()}
            return value

        copy = {key: filled(value) for key, value in node.items() if key != "children"}
        copy["name"] = renamed
        if "children" in node:
            copy["children"] = [self._for_choice(c, choice, label) for c in node["children"]]
        return copy

    def _repeat(
        self, node: Mapping[str, Any], row: int | None, group: _Group | None
    ) -> _Question | None:
        """A begin_repeat: a field of type repeat, its questions asked once per entry."""
        name = str(node.get("name", ""))
        ident = self._field_id(name, row, "repeat")
        if ident is None:
            return None
        cells = _cells(node)
        if not _localized(cells, "label"):
            cells["label"] = name
        return _Question(row, name, ident, "repeat", "repeat", cells, group, node=node)

    def _question(
        self,
        node: Mapping[str, Any],
        kind: str,
        row: int | None,
        group: _Group | None,
        before: list[_Question],
    ) -> _Question | None:
        name = str(node.get("name", ""))
        cells = _cells(node)
        other_of = _other_of(node, before)
        if other_of is not None:
            row = other_of.row
            cells["relevant"] = f"selected(${{{other_of.name}}}, 'other')"
        if cells.get("calculation") and kind in _CALCULATED:
            return self._calculated(node, kind, row, group)
        field_type = self._field_type(node, kind, row)
        if field_type is not None and cells.get(_ZOUFANG_TYPE_COLUMN):
            field_type = self._zoufang_type(field_type, cells[_ZOUFANG_TYPE_COLUMN], row)
        ident = self._field_id(name, row, "question")
        if field_type is None or ident is None:
            return None
        if field_type == "hidden" and not _localized(cells, "label"):
            cells["label"] = name
        if other_of is not None:
            cells = {k: v for k, v in cells.items() if not k.startswith("label")}
            cells["label::chinese"] = _SPECIFY_OTHER_LABEL["zh-CN"]
            cells["label::english"] = _SPECIFY_OTHER_LABEL["en"]
        if not _localized(cells, "label"):
            # pyxform accepts a question shown by its hint or its media alone
            cells["label"] = cells.get("hint") or name
        question = _Question(row, name, ident, kind, field_type, cells, group, node=node)
        if kind in ("acknowledge", "trigger"):
            question.booleans = {"ok": True}
        elif field_type in _CHOICE_TYPES:
            self._choices(question, node)
        return question

    def _calculated(
        self, node: Mapping[str, Any], kind: str, row: int | None, group: _Group | None
    ) -> _Question | None:
        """A question with a ``calculation``: ODK computes its value and shows it, so it is a
        calculate field keeping its label. What a person would answer (required, default,
        constraint, choices) has no meaning for it and is dropped."""
        name = str(node.get("name", ""))
        ident = self._field_id(name, row, "question")
        if ident is None:
            return None
        cells = {k: v for k, v in _cells(node).items() if k not in _ANSWERED_COLUMNS}
        if not _localized(cells, "label"):
            cells["label"] = cells.get("hint") or name
        return _Question(row, name, ident, kind, "calculate", cells, group, node=node)

    def _choices(self, question: _Question, node: Mapping[str, Any]) -> None:
        list_name = str(node.get("list_name") or node.get("itemset") or "")
        choices: list[dict[str, Any]] = []
        rows = node.get("choices") or self.external.get(str(node.get("itemset") or "")) or []
        static, remainder = _split_filter(question.cells.get("choice_filter", ""))
        if static:
            question.cells["choice_filter"] = remainder
        columns = {column for choice in rows for column in _cells(choice)}
        for choice in rows:
            value = str(choice.get("name", ""))
            cells = _cells(choice)
            if not all(_holds_for(term, value, cells, columns) for term in static):
                continue  # a choice a filter on its own columns never offers
            label = _localized(cells, "label")
            row = self.rows.choices.get((list_name, value))
            if row is None and value == "other":
                label = _OTHER_LABEL  # the choice pyxform adds for or_other
            elif not label:  # pyxform accepts a choice shown by its image alone
                label = {"zh-CN": value, "en": value}
            entry: dict[str, Any] = {"value": value, "label": label}
            tags = {
                column: _tag(column, value, cells)
                for column, _, _ in _filter_terms(question.cells.get("choice_filter", "")) or ()
            }
            if any(tags.values()):
                entry["filter"] = {column: tag for column, tag in tags.items() if tag}
            choices.append(entry)
        booleans = _yes_no([c["value"] for c in choices])
        if question.type == "single_choice" and booleans and "choice_filter" not in question.cells:
            question.type, question.booleans = "boolean", booleans
        else:
            question.choices = choices

    def _field_type(self, node: Mapping[str, Any], kind: str, row: int | None) -> str | None:
        """The Zoufang type of a question; None, with the problem noted, if it has none."""
        itemset = str(node.get("itemset") or "")
        if kind == "select one external" or (
            kind in _SELECTS and itemset.endswith((".csv", ".xml", ".geojson"))
        ):
            return self._external_type(kind, row, itemset)
        if kind in _TYPES:
            if kind.startswith("select") and not node.get("choices"):
                self.problem("survey", row, "type", f"no choices for {node.get('name')!r}")
                return None
            return _TYPES[kind]
        if kind in _UNSUPPORTED:
            self.problem("survey", row, "type", _UNSUPPORTED[kind])
        else:
            self.problem("survey", row, "type", f"{kind!r} is not supported by Zoufang forms")
        return None

    def _zoufang_type(self, field_type: str, written: str, row: int | None) -> str | None:
        if written == "person" and field_type == "text":
            return "person"
        message = "zoufang_type is person (on a text question) or empty"
        self.problem("survey", row, _ZOUFANG_TYPE_COLUMN, message)
        return None

    def _external_type(self, kind: str, row: int | None, itemset: str) -> str | None:
        """A select whose choices are the rows of an attached CSV file or of the
        external_choices sheet; they are copied into the field's choices."""
        if itemset.endswith((".xml", ".geojson")):
            message = (
                f"choices from {itemset} are not supported (a GeoJSON or XML file, such as the "
                "map features a mapping project generates, is no list a phone can offer): give "
                "them as a .csv file with name and label columns"
            )
            self.problem("survey", row, "type", message)
            return None
        if itemset not in self.external:
            if kind == "select one external":
                message = f"the external_choices sheet has no list {itemset!r}"
            else:
                message = (
                    f"the choices file {itemset} is not attached: put it beside the workbook "
                    "(or in the folder given with --media)"
                )
            self.problem("survey", row, "type", message)
            return None
        return _TYPES["select one" if kind == "select one external" else kind]

    def _field_id(self, name: str, row: int | None, what: str) -> str | None:
        """The field or group id of a name: the name itself when it is a snake_case id that
        is no word of the condition language, else made one; unique across the form."""
        if not name:
            self.problem("survey", row, "name", f"the {what} has no name")
            return None
        ident = snake_id(name)
        if not ident:
            self.problem("survey", row, "name", f"name {name!r} has no letter or digit")
            return None
        if ident in _RESERVED:
            ident = f"{ident}_q"
        base, number = ident, 1
        while ident in self.ids:
            number += 1
            ident = f"{base[: 63 - len(str(number))]}_{number}"
        self.ids[ident] = row
        return ident

    # survey sheet, second pass: each question as a field, its expressions translated

    def _field(self, question: _Question) -> dict[str, Any]:
        if question.type == "repeat":
            return self._repeat_field(question)
        cells, row = question.cells, question.row
        doc: dict[str, Any] = {
            "id": question.id,
            "type": question.type,
            "label": _localized(cells, "label"),
        }
        if question.name != question.id:
            doc["name"] = question.name
        for column in ("hint", "required_message", "constraint_message"):
            text = _localized(cells, column)
            if text:
                doc[column] = text
        required = self._required(question)
        if required is not False and question.type == "note":
            self.problem("survey", row, "required", "a note takes no answer, so it is not required")
        elif required is not False:
            doc["required"] = required
        if self._read_only(question):
            doc["read_only"] = True
        if question.type == "range":
            doc.update(self._range(question))
        relevant = self._relevant(question)
        if relevant:
            doc["relevant"] = relevant
        if question.choices:
            doc["choices"] = question.choices
        if cells.get("choice_filter") and question.type in _CHOICE_TYPES:
            # pyxform ignores a choice_filter on a question without choices, as ODK does
            doc.update(self._choice_filter(question, cells["choice_filter"]))
        doc.update(self._constraint(question))
        prefill = _DYNAMIC_DEFAULTS.get(cells.get("default", ""))
        if prefill is not None and question.type in PREFILLS[prefill]:
            doc["prefill"] = prefill
        elif "${" in cells.get("default", "") or "(" in cells.get("default", ""):
            dynamic = self._dynamic_default(question, cells["default"])
            if dynamic is not None:
                doc["dynamic_default"] = dynamic
        elif cells.get("default"):
            doc["default"] = self._default(question, cells["default"])
        problem = self._problem_path(question)
        if problem is not None:
            doc["problem"] = problem
        if question.group is not None and question.group.id:
            doc["group"] = question.group.id
            if question.group.label:
                doc["group_label"] = question.group.label
        for column, message in _UNSUPPORTED_COLUMNS.items():
            if cells.get(column):
                self.problem("survey", row, column, message)
        if question.type == "calculate":
            doc["calculation"] = self._calculation(question)
        elif cells.get("calculation"):
            self.problem(
                "survey",
                row,
                "calculation",
                f"calculation on a {question.kind} question is not supported: "
                "use a calculate question",
            )
        return doc

    def _repeat_field(self, question: _Question) -> dict[str, Any]:
        """A repeat: its label, relevance and group, how many entries it has (``repeat_count``,
        or one per person of the household with ``repeat_seed`` = ``people``); its
        fields are added by ``_nested_fields``."""
        cells, row = question.cells, question.row
        doc: dict[str, Any] = {"id": question.id, "type": "repeat"}
        doc["label"] = _localized(cells, "label")
        if question.name != question.id:
            doc["name"] = question.name
        hint = _localized(cells, "hint")
        if hint:
            doc["hint"] = hint
        relevant = self._relevant(question)
        if relevant:
            doc["relevant"] = relevant
        if question.group is not None and question.group.id:
            doc["group"] = question.group.id
            if question.group.label:
                doc["group_label"] = question.group.label
        seed = cells.get(_SEED_COLUMN, "")
        count = str((question.node.get("control") or {}).get("jr:count", "")).strip()
        if seed and seed != "people":
            self.problem("survey", row, _SEED_COLUMN, f"{_SEED_COLUMN} is people or empty")
        elif seed and count:
            message = "a repeat asked once per person has no repeat_count"
            self.problem("survey", row, "repeat_count", message)
        elif seed:
            doc["seed"] = "people"
        elif count:
            doc.update(self._repeat_count(question, count))
        doc["fields"] = []
        return doc

    def _repeat_count(self, question: _Question, text: str) -> dict[str, Any]:
        """``repeat_count``: a whole number, or a number question or calculation outside the
        repeat."""
        match = re.fullmatch(r"\$\{\s*([^}]+?)\s*\}", text)
        if match and match.group(1) in self.repeat_counts:
            text = self.repeat_counts[match.group(1)].strip()
            match = re.fullmatch(r"\$\{\s*([^}]+?)\s*\}", text)
        if text.isascii() and text.isdigit():
            return {"repeat_count": int(text)}
        source = self.questions.get(match.group(1)) if match else None
        outside: list[_Question | None] = [None]  # enclosing repeats: their questions count
        enclosing = question.repeat
        while enclosing is not None:
            outside.append(enclosing)
            enclosing = enclosing.repeat
        counts = (*NUMBER_TYPES, "calculate")  # a calculation giving the number too
        if source is not None and source.repeat in outside and source.type in counts:
            return {"repeat_count": source.id}
        if source is None:
            try:  # an expression, which validate_definition checks reads outside the repeat
                count = _Translator(self.questions).value(_Parser(text).parse())
                parse_expression(count)
                return {"repeat_count": count}
            except (_Untranslatable, ExpressionError):
                pass
        message = (
            f"repeat_count {text!r} is not supported yet: a whole number or "
            "${question} naming a number question outside the repeat"
        )
        self.problem("survey", question.row, "repeat_count", message)
        return {}

    def _choice_filter(self, question: _Question, text: str) -> dict[str, Any]:
        """A cascading list: ``column = ${question}`` and ``column = 'text'`` terms joined with
        ``and`` (``true()`` filters nothing)."""
        terms = _filter_terms(text)
        if terms is None:
            self.problem(
                "survey",
                question.row,
                "choice_filter",
                f"choice_filter {text!r} is not supported yet: only column = ${{question}}, "
                "column = 'text', ${question} = 'text' or selected(${question}, column), "
                "joined with and",
            )
            return {}
        doc: list[dict[str, str]] = []
        for column, operand, kind in terms:
            if kind == "value":
                doc.append({"column": column, "value": operand})
                continue
            source = self.questions.get(operand)
            if source is None:
                message = f"${{{operand}}} is no question of this form"
                self.problem("survey", question.row, "choice_filter", message)
                return {}
            doc.append({"column": column, kind: source.id})
        return {"choice_filter": doc} if doc else {}

    def _read_only(self, question: _Question) -> bool:
        text = question.cells.get("read_only", "")
        if text.lower() in _TRUE_WORDS | _FALSE_WORDS:
            return text.lower() in _TRUE_WORDS
        self.problem("survey", question.row, "read_only", "read_only is yes or no, no condition")
        return False

    def _range(self, question: _Question) -> dict[str, Any]:
        """A range's start, end and step (ODK's defaults: 1, 10 and 1) as min, max and step."""
        parameters = question.node.get("parameters") or {}
        bounds: dict[str, Any] = {}
        for key, name, default in (
            ("min", "start", "1"),
            ("max", "end", "10"),
            ("step", "step", "1"),
        ):
            number = _decimal(str(parameters.get(name, default)))
            if number is None:
                self.problem("survey", question.row, "parameters", f"{name} is no number")
                return {}
            bounds[key] = _json_number(number)
        if bounds["min"] > bounds["max"]:
            # ODK counts down from start to end; Zoufang checks the same values upwards
            bounds["min"], bounds["max"] = bounds["max"], bounds["min"]
        bounds["step"] = abs(bounds["step"])
        return bounds

    def _required(self, question: _Question) -> bool | str:
        text = question.cells.get("required", "")
        if text.lower() in _TRUE_WORDS:
            return True
        if text.lower() in _FALSE_WORDS:
            return False
        return self._condition(question.row, "required", text) or False

    def _relevant(self, question: _Question) -> str | None:
        """A question shows when its own relevant and that of every enclosing group hold."""
        conditions: list[str] = []
        group = question.group
        while group is not None:
            condition = self._group_condition(group)
            if condition:
                conditions.insert(0, condition)
            group = group.parent
        own = question.cells.get("relevant", "")
        if own:
            translated = self._condition(question.row, "relevant", own)
            if translated:
                conditions.append(translated)
        if len(conditions) <= 1:
            return conditions[0] if conditions else None
        return " and ".join(
            f"({c})" if isinstance(parse_expression(c).root, Or) else c for c in conditions
        )

    def _group_condition(self, group: _Group) -> str | None:
        if not group.translated:
            group.translated = True
            if group.relevant:
                group.condition = self._condition(group.row, "relevant", group.relevant)
        return group.condition

    def _condition(self, row: int | None, column: str, text: str) -> str | None:
        """The Zoufang condition of an XLSForm expression; None, with the problem noted."""
        try:
            node = _Parser(text).parse()
            condition = _Translator(self.questions).condition(node)
            parse_expression(condition)
        except (_Untranslatable, ExpressionError) as error:
            self.problem("survey", row, column, f"cannot translate {text!r}: {error}")
            return None
        return condition

    def _calculation(self, question: _Question) -> str:
        """A calculate question's expression as a Zoufang calculation."""
        text = question.cells.get("calculation", "")
        try:
            calculation = _Translator(self.questions).value(_Parser(text).parse())
            parse_expression(calculation)
        except (_Untranslatable, ExpressionError) as error:
            self.problem(
                "survey", question.row, "calculation", f"cannot translate {text!r}: {error}"
            )
            return "null"
        return calculation

    def _constraint(self, question: _Question) -> dict[str, Any]:
        text = question.cells.get("constraint", "")
        if not text:
            return {}
        try:
            node = _Parser(text).parse()
        except _Untranslatable as error:
            self.problem(
                "survey", question.row, "constraint", f"cannot translate {text!r}: {error}"
            )
            return {}
        try:
            return _bounds(node, question)
        except _Untranslatable:
            pass  # no bounds: a condition on the answer then, checked once it is answered
        bounds, node = _leading_bounds(node, question)
        try:
            condition = _Translator(self.questions, current=question).condition(node)
            parse_expression(condition)
        except (_Untranslatable, ExpressionError) as error:
            self.problem(
                "survey", question.row, "constraint", f"cannot translate {text!r}: {error}"
            )
            return {}
        return {**bounds, "constraint": condition}

    def _dynamic_default(self, question: _Question, text: str) -> str | None:
        """A default that is an expression (``${x}``, ``today()`` on a text question): the
        phone evaluates it once when the visit starts."""
        if "last-saved#" in text:
            message = "${last-saved#…} defaults are not supported: a visit does not read the last"
        else:
            try:
                value = _Translator(self.questions).value(_Parser(text).parse())
                parse_expression(value)
                return value
            except (_Untranslatable, ExpressionError) as error:
                message = f"cannot translate dynamic default {text!r}: {error}"
        self.problem("survey", question.row, "default", message)
        return None

    def _default(self, question: _Question, text: str) -> object:
        """The default as an answer of the field's type; ``validate_definition`` then checks it
        is a valid one (a choice of the list, a real date)."""
        if question.type == "boolean":
            if text.lower() not in question.booleans:
                self.problem(
                    "survey",
                    question.row,
                    "default",
                    f"default {text!r} is none of {', '.join(question.booleans)}",
                )
            return question.booleans.get(text.lower())
        if question.type in NUMBER_TYPES:
            number = _decimal(text)
            if number is None:
                self.problem("survey", question.row, "default", f"default {text!r} is no number")
                return None
            return _json_number(number)
        if question.type == "geopoint":
            return self._point(question, text)
        if question.type == "date" and re.fullmatch(r"[0-9-]{10}[ T]00:00:00", text):
            return text[:10]  # an Excel date cell, which pyxform writes with its midnight
        if question.type in ("multiple_choice", "rank"):
            return text.split()
        if question.type in ("photo", "note", "geotrace", "geoshape", "audio", "video", "file"):
            self.problem("survey", question.row, "default", f"a {question.kind} has no default")
        return text

    def _point(self, question: _Question, text: str) -> dict[str, int | float] | None:
        """ODK writes a location ``lat lon [altitude [accuracy]]``."""
        numbers = [_decimal(part) for part in text.split()]
        if not 2 <= len(numbers) <= 4 or any(n is None for n in numbers):
            self.problem("survey", question.row, "default", f"default {text!r} is no location")
            return None
        keys = ("lat", "lon", "altitude", "accuracy")
        pairs = zip(keys, numbers, strict=False)
        return {key: _json_number(n) for key, n in pairs if n is not None}

    def _problem_path(self, question: _Question) -> dict[str, str] | None:
        """Zoufang's own columns ``problem_when`` and ``problem_category``: when the condition
        holds, the phone offers to open a problem of that category (see README.md)."""
        when = question.cells.get("problem_when", "")
        category = question.cells.get("problem_category", "")
        if not when and not category:
            return None
        if not when or not category:
            missing = "problem_category" if when else "problem_when"
            self.problem(
                "survey",
                question.row,
                missing,
                "problem_when and problem_category are given together",
            )
            return None
        condition = self._condition(question.row, "problem_when", when)
        return None if condition is None else {"when": condition, "category": category}

    def _definition_problem(self, error: str, questions: list[_Question]) -> None:
        """A mistake ``validate_definition`` found, placed at its question's row and column."""
        match = re.fullmatch(
            r"versions\[0\]((?:\.fields\[\d+\](?: \([^)]*\))?)+)([\w.\[\]]*): (.*)",
            error,
            re.DOTALL,
        )
        found = [] if match is None else re.findall(r"fields\[(\d+)\]", match.group(1))
        where = tuple(int(index) for index in found)
        question = self.positions.get(where)
        if match and question is not None:
            path, message = match.group(2), match.group(3)
            column = _COLUMN_OF_PATH.get(path)
            if column is None and path.startswith(".choices"):
                column = "type"
            elif column is None:
                column = _column_named_in(message)
            self.problem("survey", question.row, column, message)
            return
        match = re.fullmatch(r"versions\[0\] \(([^)]*)\): (.*)", error)
        by_id = {question.id: question for question in questions}
        if match and match.group(1) in by_id:
            self.problem("survey", by_id[match.group(1)].row, "default", match.group(2))
            return
        match = re.fullmatch(r"versions\[0\]\.title: (.*)", error)
        if match:
            self.problem("settings", self.settings_row, "form_title", match.group(1))
            return
        self.problem("survey", None, None, error)


def _counts_a_repeat(name: str, nodes: Sequence[Any]) -> bool:
    """Whether ``name`` is the calculation pyxform adds for a repeat's ``repeat_count``."""
    return any(
        isinstance(node, Mapping)
        and node.get("type") == "repeat"
        and name == f"{node.get('name')}_count"
        and (node.get("control") or {}).get("jr:count") == f"${{{name}}}"
        for node in nodes
    )


def _in_sheet_order(problems: list[SheetProblem]) -> list[SheetProblem]:
    """Problems as the author meets them: survey, choices, settings, each from the top."""
    order = {"survey": 0, "choices": 1, "settings": 2}
    return sorted(problems, key=lambda p: (order.get(p.sheet, 3), p.row or 0))


def _column_named_in(message: str) -> str | None:
    for word, column in (
        ("problem category", "problem_category"),
        ("default", "default"),
        ("min", "constraint"),
        ("max", "constraint"),
    ):
        if word in message:
            return column
    return None


def _yes_no(values: Sequence[str]) -> dict[str, bool]:
    """A list of exactly yes and no (or true and false) is a boolean question; nothing else
    is, since a two-choice list such as male/female or 1/0 has no unambiguous true."""
    names = {value.lower() for value in values}
    if len(values) == 2 and names == {"yes", "no"}:
        return {"yes": True, "no": False}
    if len(values) == 2 and names == {"true", "false"}:
        return {"true": True, "false": False}
    return {}


def _cells(node: Mapping[str, Any]) -> dict[str, str]:
    """A question of pyxform's JSON as the columns of its survey row: ``label`` per language
    (``label::English (en)``), the ``bind`` columns (relevant, required, constraint …) and
    every other column pyxform kept (default, choice_filter, problem_when …)."""
    raw: dict[str, object] = {}

    def put(column: str, value: object) -> None:
        if isinstance(value, Mapping):
            for language, text in value.items():
                raw[column if language == "default" else f"{column}::{language}"] = text
        elif isinstance(value, str | int | float | bool):
            raw[column] = value

    for key, value in node.items():
        if key == "bind" and isinstance(value, Mapping):
            for bind_key, bind_value in value.items():
                put(_BIND_COLUMNS.get(str(bind_key), str(bind_key)), bind_value)
        elif key not in _STRUCTURE_KEYS:
            put(key, value)
    return _normalize(raw)


_FILTER_TERM = re.compile(
    r"""\s*(?:(?P<column>[A-Za-z_][\w.-]*)\s*=\s*(?P<operand>\$\{[^}]+\}|'[^']*'|"[^"]*")
    |(?P<reference>\$\{[^}]+\})\s*=\s*(?P<column2>[A-Za-z_][\w.-]*))\s*""",
    re.VERBOSE,
)


#: ``selected(${q}, column)``: the choice's column is one of the values selected in q
_SELECTED_TERM = re.compile(
    r"\s*selected\(\s*\$\{(?P<name>[^}]+)\}\s*,\s*(?P<column>[A-Za-z_][\w.-]*)\s*\)\s*"
)
#: ``${q} = 'text'`` (or ``'text' = ${q}``): a choice_filter that reads no column of the choice
_CONSTANT_TERM = re.compile(
    r"""\s*(?:(?P<reference>\$\{[^}]+\})\s*=\s*(?P<text>'[^']*'|"[^"]*")
    |(?P<text2>'[^']*'|"[^"]*")\s*=\s*(?P<reference2>\$\{[^}]+\}))\s*""",
    re.VERBOSE,
)


def _tag(column: str, value: str, cells: Mapping[str, str]) -> str:
    """What a choice holds in a column a choice_filter names: its own name for ``name``, the
    text of a constant term (see _CONSTANT_TERM) for that term's column, else its cell."""
    if column == "name":
        return value
    if column.startswith("${"):
        return column.partition(" = ")[2][1:-1]
    return cells.get(column.lower(), "")


_STATIC_TERM = re.compile(
    r"""\s*(?P<left>[A-Za-z_][\w.:-]*)\s*(?P<op>!=|=)\s*
    (?P<right>'[^']*'|"[^"]*"|[A-Za-z_][\w.:-]*)\s*""",
    re.VERBOSE,
)


def _split_filter(text: str) -> tuple[list[tuple[str, str, str]], str]:
    """The ``and``-terms of a choice_filter that read only the choice's own columns
    (``pastel=yes``: two columns; ``label::English != ''``, ``name != 'xia'``), which the import
    decides for each choice once, and the rest of the filter as text. ``column = 'text'``
    stays in the rest, as a ``{column, value}`` term of the definition."""
    static: list[tuple[str, str, str]] = []
    rest: list[str] = []
    parts = re.split(r"\s+and\s+", text.strip()) if text.strip() else []
    for part in parts:
        match = _STATIC_TERM.fullmatch(part)
        quoted = match is not None and match["right"][0] in "'\""
        if match is None or (match["op"] == "=" and quoted) or match["right"] in _XPATH_WORDS:
            rest.append(part)
        else:
            static.append((match["left"], match["op"], match["right"]))
    return static, " and ".join(rest)


#: bare words that are XPath operators or functions, never a column of the choice
_XPATH_WORDS = frozenset({"and", "or", "div", "mod", "true", "false", "not"})


def _holds_for(
    term: tuple[str, str, str], value: str, cells: Mapping[str, str], columns: set[str]
) -> bool:
    """Whether a term on a choice's own columns holds for this choice: a column the choice
    leaves empty is the empty text; a bare word that is no column of the list is read as the
    text it spells (``pastel=yes`` means ``pastel='yes'``, as its author meant; XPath would
    read a missing node and offer nothing)."""

    def operand(text: str) -> str:
        if text[0] in "'\"":
            return text[1:-1]
        if text == "name":
            return value
        return cells.get(text.lower(), "") if text.lower() in columns else text

    left, op, right = term
    return (operand(left) == operand(right)) == (op == "=")


def _filter_terms(text: str) -> list[tuple[str, str, str]] | None:
    """The ``(column, question name or text, kind)`` terms of a choice_filter that Zoufang can
    check, kind ``field``, ``value`` or ``selected_in`` (``selected(${q}, column)``: the
    choice's column is one of the values selected in q); [] for none (empty, ``true()``),
    None if it cannot."""
    if text.strip() in ("", "true()"):
        return []
    terms = []
    for part in re.split(r"\s+and\s+", text.strip()):
        constant = _CONSTANT_TERM.fullmatch(part)
        if constant is not None:
            # offers every choice or none: each choice is tagged with the text in a column
            # named after the term, which the question's answer must equal
            reference, text = (
                constant["reference"] or constant["reference2"],
                (constant["text"] or constant["text2"]),
            )
            terms.append((f"{reference} = {text}", reference[2:-1].strip(), "field"))
            continue
        chosen = _SELECTED_TERM.fullmatch(part)
        if chosen is not None:
            terms.append((chosen["column"], chosen["name"].strip(), "selected_in"))
            continue
        match = _FILTER_TERM.fullmatch(part)
        if match is None:
            return None
        column = match["column"] or match["column2"]
        operand = match["operand"] or match["reference"]
        if operand.startswith("${"):
            terms.append((column, operand[2:-1].strip(), "field"))
        else:
            terms.append((column, operand[1:-1], "value"))
    return terms


def _other_of(node: Mapping[str, Any], before: Sequence[_Question]) -> _Question | None:
    """The select whose ``or_other`` made pyxform add this "specify other" question."""
    match = _OR_OTHER.fullmatch(str((node.get("bind") or {}).get("relevant", "")))
    if match is None or not before or node.get("name") != f"{match['name']}_other":
        return None
    previous = before[-1]
    return previous if previous.name == match["name"] else None


# cells and headers


def _cell(value: object) -> str:
    """A cell as the text an author typed: Excel stores 2 as 2.0 and TRUE as a boolean."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def _normalize(row: Row) -> dict[str, str]:
    """A row with lowercase headers (``label::Chinese (zh)`` → ``label::chinese (zh)``) and
    without empty cells; an empty result is a blank row."""
    cells: dict[str, str] = {}
    for key, value in row.items():
        header = re.sub(r"\s*::\s*", "::", " ".join(str(key).split()).lower())
        # pyxform's older spelling of a language column: label:English
        header = re.sub(r"^(label|hint|[a-z_]+_message|form_title):(?!:)\s*", r"\1::", header)
        header = "list_name" if header == "list name" else header
        header = "form_id" if header == "id_string" else header
        text = _cell(value)
        if header and text:
            cells.setdefault(header, text)
    return cells


#: a sheet row with its headers as the converter reads them (for the external_choices sheet)
normalize_row = _normalize


def _language(suffix: str) -> str | None:
    """The Zoufang language of an XLSForm one: ``chinese (zh)``, ``zh-cn``, ``中文`` → zh-CN;
    ``english (en)``, ``en`` → en; any other language is not shown by Zoufang."""
    match = re.fullmatch(r"(.*?)\s*(?:\(([^()]*)\))?", suffix.strip())
    words = (match.group(2) or "", match.group(1)) if match else (suffix,)
    for word in (w.strip().lower() for w in words):
        if word in _ZH_NAMES or word == "zh" or word.startswith(("zh-", "zh_", "cmn")):
            return "zh-CN"
        if word in _EN_NAMES or word == "en" or word.startswith(("en-", "en_")):
            return "en"
    return None


def _localized(cells: Mapping[str, str], column: str) -> dict[str, str]:
    """The zh-CN and en text of ``label``, ``label::Chinese (zh)``, …: a language without its
    own column takes the plain column's text, else the other language's, else that of the
    first other language (a form written in Swahili only shows its Swahili text); {} if there
    is none."""
    own: dict[str, str] = {}
    others: list[str] = []
    for header, text in cells.items():
        if header.startswith(f"{column}::"):
            language = _language(header[len(column) + 2 :])
            if language is not None:
                own.setdefault(language, text)
            else:
                others.append(text)
    plain = cells.get(column, "")
    other = others[0] if others else ""
    chinese = own.get("zh-CN") or plain or own.get("en") or other
    english = own.get("en") or plain or own.get("zh-CN") or other
    return {"zh-CN": chinese, "en": english} if chinese else {}


def _is_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


def _decimal(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _json_number(number: Decimal) -> int | float:
    return int(number) if number == number.to_integral_value() else float(number)


def _number_text(number: Decimal) -> str:
    """A number as the condition language writes it: no exponent, no trailing zeros."""
    if number == number.to_integral_value():
        return str(int(number))
    return format(number.normalize(), "f")


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# XLSForm expressions: the XPath subset forms use, parsed into a small tree


@dataclass(frozen=True)
class _Node:
    kind: str  # ref, current, string, number, call, and, or, compare
    value: str = ""  # the field name, literal text, function name or comparison operator
    args: tuple[_Node, ...] = ()


_TOKEN = re.compile(
    r"""\s*(?:
      \$\{\s*(?P<ref>[^}]*?)\s*\}
    | (?P<string>'[^']*'|"[^"]*")
    | (?P<number>[0-9]+(?:\.[0-9]*)?|\.[0-9]+)
    | (?P<op>!=|<=|>=|=|<|>|\(|\)|,|\+|-|\*)
    | (?P<parent>\.\.)
    | (?P<current>\.)
    | (?P<name>[A-Za-z_][A-Za-z0-9_.:-]*)
    | (?P<other>\S)
    )""",
    re.VERBOSE,
)
_COMPARISON_OPS = ("=", "!=", "<", "<=", ">", ">=")


class _Parser:
    """A recursive-descent parser for the XPath subset: ``${field}``, strings, numbers, ``.``,
    comparisons, ``and``/``or`` and function calls; anything else is untranslatable."""

    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup
            if kind is not None:
                self.tokens.append((kind, match.group(kind)))
        self.tokens.append(("end", ""))
        self.index = 0
        self.depth = 0

    def parse(self) -> _Node:
        node = self._or()
        if self._peek() != ("end", ""):
            raise _Untranslatable(_unexpected(self._peek()))
        return node

    def _peek(self) -> tuple[str, str]:
        return self.tokens[self.index]

    def _take(self) -> tuple[str, str]:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _accept(self, kind: str, value: str) -> bool:
        token = self._peek()
        if token[0] == kind and token[1].lower() == value:
            self.index += 1
            return True
        return False

    def _or(self) -> _Node:
        node = self._and()
        while self._accept("name", "or"):
            node = _Node("or", args=(node, self._and()))
        return node

    def _and(self) -> _Node:
        node = self._comparison()
        while self._accept("name", "and"):
            node = _Node("and", args=(node, self._comparison()))
        return node

    def _comparison(self) -> _Node:
        left = self._additive()
        kind, op = self._peek()
        if kind != "op" or op not in _COMPARISON_OPS:
            return left
        self._take()
        node = _Node("compare", "==" if op == "=" else op, (left, self._additive()))
        kind, op = self._peek()
        if kind == "op" and op in _COMPARISON_OPS:
            raise _Untranslatable("chained comparisons are not supported")
        return node

    def _additive(self) -> _Node:
        node = self._multiplicative()
        while self._peek() in (("op", "+"), ("op", "-")):
            node = _Node("arith", self._take()[1], (node, self._multiplicative()))
        return node

    def _multiplicative(self) -> _Node:
        node = self._unary()
        while True:
            if self._accept("op", "*"):
                node = _Node("arith", "*", (node, self._unary()))
            elif self._accept("name", "div"):
                node = _Node("arith", "/", (node, self._unary()))
            elif self._accept("name", "mod"):
                node = _Node("arith", "%", (node, self._unary()))
            else:
                return node

    def _unary(self) -> _Node:
        if self._accept("op", "-"):
            operand = self._primary()
            if operand.kind == "number":
                return _Node("number", "-" + operand.value)
            return _Node("neg", args=(operand,))
        return self._primary()

    def _primary(self) -> _Node:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise _Untranslatable("nested too deeply")
        try:
            return self._operand()
        finally:
            self.depth -= 1

    def _operand(self) -> _Node:
        kind, value = self._take()
        if kind == "ref":
            if not value:
                raise _Untranslatable("${} names no question")
            return _Node("ref", value)
        if kind == "current":
            return _Node("current")
        if kind == "string":
            return _Node("string", value[1:-1])
        if kind == "number":
            return _Node("number", value)
        if kind == "parent":
            return _Node("parent")
        if (kind, value) == ("op", "("):
            node = self._or()
            if self._take() != ("op", ")"):
                raise _Untranslatable("a '(' is not closed")
            return node
        if kind == "name" and value.lower() == "instance":
            raise _Untranslatable(
                "lookups in external data (instance(…)) are not supported: a visit reads only "
                "its own answers, not the rows of a file attached to the form"
            )
        if kind == "name" and self._accept("op", "("):
            return _Node("call", value.lower(), self._arguments())
        if kind == "name" and value.lower() not in ("and", "or", "div", "mod"):
            raise _Untranslatable(
                f"{value!r} is no ${{…}} reference: refer to a question as ${{{value}}}"
            )
        raise _Untranslatable(_unexpected((kind, value)))

    def _arguments(self) -> tuple[_Node, ...]:
        arguments: list[_Node] = []
        if self._accept("op", ")"):
            return ()
        while True:
            arguments.append(self._or())
            if self._accept("op", ")"):
                return tuple(arguments)
            if not self._accept("op", ","):
                raise _Untranslatable(_unexpected(self._peek()))


def _unexpected(token: tuple[str, str]) -> str:
    kind, value = token
    if kind == "end":
        return "the expression ends too early"
    if value == "|":
        return "node-set unions (|) are not supported"
    if value in ("'", '"'):
        return "a string is not closed"
    return f"unexpected {value!r}"


def _show(node: _Node) -> str:
    match node.kind:
        case "ref":
            return f"${{{node.value}}}"
        case "current":
            return "."
        case "string":
            return repr(node.value)
        case "call":
            return f"{node.value}()"
        case "arith" | "neg":
            return "arithmetic"
        case _:
            return node.value or node.kind


class _Translator:
    """Writes a parsed XLSForm expression in the condition language, knowing each question's
    type. XLSForm compares unanswered questions as empty text and Zoufang as null, so ``!=``
    becomes ``(x == null or x != v)`` and a bare ``${x}`` becomes ``x != null``."""

    def __init__(
        self, questions: Mapping[str, _Question], current: _Question | None = None
    ) -> None:
        self.questions = questions
        self.current = current  # the question whose constraint this is: what '.' reads

    def condition(self, node: _Node) -> str:
        return self._term(node)[0]

    def _term(self, node: _Node) -> tuple[str, str]:
        """The condition and its loosest operator (or, and, or "" for none), so that it is
        parenthesized only where it is embedded in a tighter one."""
        if node.kind in ("and", "or"):
            parts = []
            for child in node.args:
                text, loosest = self._term(child)
                parts.append(f"({text})" if loosest == "or" and node.kind == "and" else text)
            return f" {node.kind} ".join(parts), node.kind
        if node.kind == "compare":
            return self._comparison(node)
        if node.kind == "ref":
            return f"{self._question(node).id} != null", ""
        if node.kind == "call":
            return self._call(node), ""
        if node.kind == "current":
            raise _Untranslatable("'.' (the question itself) belongs in constraints only")
        if node.kind == "number" and _decimal(node.value) is not None:
            return ("false" if _decimal(node.value) == 0 else "true"), ""  # XPath's boolean()
        raise _Untranslatable(f"{_show(node)} is not a condition")

    def value(self, node: _Node) -> str:
        """An XLSForm expression as a Zoufang value (a calculation, an operand of arithmetic
        or of a comparison other than question-against-literal), compound ones parenthesized."""
        kind = node.kind
        if kind == "ref":
            return self._question(node).id
        if kind == "current":
            if self.current is None:
                raise _Untranslatable("'.' (the question itself) belongs in constraints only")
            return self.current.id
        if kind == "string":
            return _quoted(node.value)
        if kind == "number":
            number = _decimal(node.value)
            if number is None:
                raise _Untranslatable(f"{node.value!r} is no number")
            return _number_text(number)
        if kind == "arith":
            left, right = (self.value(arg) for arg in node.args)
            return f"({left} {node.value} {right})"
        if kind == "neg":
            return f"(-{self.value(node.args[0])})"
        if kind in ("compare", "and", "or"):
            return f"({self.condition(node)})"
        if kind == "call":
            return self._value_call(node)
        raise _Untranslatable(f"{_show(node)} is not supported")

    def _value_call(self, node: _Node) -> str:
        """A function call as a value: XLSForm's names (``string-length``) in Zoufang's
        spelling (``string_length``); what has no equivalent is refused by name."""
        name, args = node.value, node.args
        if name in ("selected", "not", "true", "false"):
            return f"({self._call(node)})"
        if name == "count-selected" and len(args) == 1:
            return f"count_selected({self._multiple_choice(args[0]).id})"
        if name == "count" and len(args) == 1:
            return f"count({self._question(args[0]).id})"
        if name == "position" and all(arg.kind == "parent" for arg in args):
            return "position()"
        if name == "regex" and len(args) == 2:
            if args[1].kind != "string":
                raise _Untranslatable("regex() needs a quoted pattern")
            return f"regex({self.value(args[0])}, {_quoted(args[1].value)})"
        if name == "if" and len(args) == 3:
            then, otherwise = self.value(args[1]), self.value(args[2])
            return f"if({self.condition(args[0])}, {then}, {otherwise})"
        spelling = _VALUE_FUNCTIONS.get(name)
        if spelling is None:
            raise _Untranslatable(f"{name}() is not supported")
        low, high = ARITIES[spelling]
        if not low <= len(args) <= high:
            raise _Untranslatable(f"{name}() with {len(args)} arguments")
        return f"{spelling}({', '.join(self.value(arg) for arg in args)})"

    def _call(self, node: _Node) -> str:
        name, args = node.value, node.args
        if name in ("regex", "if"):
            return self._value_call(node)
        if name == "not" and len(args) == 1:
            return f"not ({self.condition(args[0])})"
        if name in ("true", "false") and not args:
            return name
        if name == "selected" and len(args) == 2:
            return self._selected(args[0], args[1])
        if name == "count-selected" and len(args) == 1:
            return f"{self._count(args[0])} > 0"
        if name in ("not", "true", "false", "selected", "count-selected"):
            raise _Untranslatable(f"{name}() with {len(args)} arguments")
        if name in _VALUE_FUNCTIONS or name in ("count", "position"):
            raise _Untranslatable(f"{name}() gives a value, not a condition")
        raise _Untranslatable(f"{name}() is not supported")

    def _selected(self, reference: _Node, value: _Node) -> str:
        question = self._question(reference)
        if value.kind not in ("string", "number"):
            raise _Untranslatable("selected() needs a choice name as its second argument")
        if question.type == "multiple_choice":
            return f"selected({question.id}, {_quoted(value.value)})"
        if question.type in ("single_choice", "boolean"):
            return f"{question.id} == {self._literal(question, value, ordered=False)}"
        if question.type == "calculate" and question.kind in ("select one", "select one external"):
            return f"{question.id} == {_quoted(value.value)}"  # a computed select_one
        raise _Untranslatable(f"selected() needs a select question, ${{{question.name}}} is not")

    def _count(self, reference: _Node) -> str:
        return f"count({self._multiple_choice(reference).id})"

    def _multiple_choice(self, reference: _Node) -> _Question:
        question = self._question(reference)
        if question.type != "multiple_choice":
            raise _Untranslatable(
                f"count-selected() needs a select_multiple question, ${{{question.name}}} is not"
            )
        return question

    def _comparison(self, node: _Node) -> tuple[str, str]:
        op, (left, right) = node.value, node.args
        if "current" in (left.kind, right.kind) and self.current is None:
            raise _Untranslatable("'.' (the question itself) belongs in constraints only")
        if self.current is not None:
            itself = _Node("ref", self.current.name)
            left, right = (itself if n.kind == "current" else n for n in (left, right))
            if left.kind == right.kind == "ref":
                return self._two_questions(op, left, right)
        if left.kind in ("string", "number") and right.kind in ("ref", "call"):
            op, left, right = _FLIPPED[op], right, left
        if left.kind == "call" and left.value == "count-selected" and len(left.args) == 1:
            number = _decimal(right.value) if right.kind in ("string", "number") else None
            if number is None:
                raise _Untranslatable("count-selected() is compared with a number")
            return f"{self._count(left.args[0])} {op} {_number_text(number)}", ""
        if left.kind != "ref" or right.kind not in ("string", "number"):
            return self._general_comparison(op, left, right), ""
        question = self._question(left)
        if right.kind == "string" and right.value == "" and op in ("==", "!="):
            return f"{question.id} {op} null", ""
        if question.type == "multiple_choice" and op in ("==", "!="):
            return self._just_selected(question, op, right.value)
        value = self._literal(question, right, ordered=op not in ("==", "!="))
        if op == "!=":
            return f"{question.id} == null or {question.id} != {value}", "or"
        return f"{question.id} {op} {value}", ""

    @staticmethod
    def _just_selected(question: _Question, op: str, value: str) -> tuple[str, str]:
        """``${sm} = 'x'`` on a select_multiple: XPath compares the space-joined selection,
        so it holds when exactly that one choice is selected."""
        exactly = f"count({question.id}) == 1 and selected({question.id}, {_quoted(value)})"
        return (exactly, "and") if op == "==" else (f"not ({exactly})", "")

    def _general_comparison(self, op: str, left: _Node, right: _Node) -> str:
        """A comparison of computed values (arithmetic, functions, two questions): both sides
        as values, a quoted number read as a number against a numeric side. Null rules are
        Zoufang's: a comparison with an unanswered question is false."""
        sides = []
        for node, other in ((left, right), (right, left)):
            if node.kind == "string" and self._numeric(other) and _decimal(node.value) is not None:
                node = _Node("number", node.value)
            sides.append(self.value(node))
        return f"{sides[0]} {op} {sides[1]}"

    def _numeric(self, node: _Node) -> bool:
        if node.kind in ("arith", "neg", "number"):
            return True
        if node.kind == "ref":
            question = self.questions.get(node.value)
            return question is not None and question.type in NUMBER_TYPES
        if node.kind == "current":
            return self.current is not None and self.current.type in NUMBER_TYPES
        return node.kind == "call" and node.value in _NUMERIC_FUNCTIONS

    def _two_questions(self, op: str, left: _Node, right: _Node) -> tuple[str, str]:
        """``. <= ${x}`` in a constraint: the answer against another question of the same
        kind. The answer itself is there (constraints are checked on answers), so only the
        other may be unanswered, which XLSForm compares as empty text."""
        first, second = self._question(left), self._question(right)
        current = self.current
        if current is None or current.name not in (first.name, second.name):
            return self._general_comparison(op, left, right), ""
        other = second if first.name == current.name else first
        # a calculation's value is a number or text as it comes out: compared with anything
        dynamic = "calculate" in (first.type, second.type)
        if _kind_of(first) != _kind_of(second) and not dynamic:
            raise _Untranslatable(f"${{{first.name}}} and ${{{second.name}}} are of other kinds")
        if op not in ("==", "!=") and current.type not in (*_ORDERED, "calculate"):
            raise _Untranslatable(f"${{{current.name}}} cannot be compared with < <= > >=")
        if {first.type, second.type} & _UNCOMPARED:
            raise _Untranslatable(f"${{{first.name}}} cannot be compared with another question")
        if op == "!=":
            return f"{other.id} == null or {first.id} != {second.id}", "or"
        return f"{first.id} {op} {second.id}", ""

    def _literal(self, question: _Question, node: _Node, *, ordered: bool) -> str:
        """A value compared with a question, as that question's answers are written."""
        name, field_type = f"${{{question.name}}}", question.type
        if field_type == "calculate":  # a calculation may give a number or text
            number = _decimal(node.value)
            return _quoted(node.value) if number is None else _number_text(number)
        if ordered and field_type not in _ORDERED:
            raise _Untranslatable(
                f"{name} is no number, date or time, so it cannot be compared with < <= > >="
            )
        if field_type == "multiple_choice":
            raise _Untranslatable(f"test {name} with selected() or count-selected(), not =")
        if field_type == "boolean":
            answer = question.booleans.get(node.value.lower())
            if answer is None:
                words = " or ".join(repr(word) for word in question.booleans)
                raise _Untranslatable(f"{name} is answered {words}, never {node.value!r}")
            return "true" if answer else "false"
        if field_type in NUMBER_TYPES:
            number = _decimal(node.value)
            if number is None:
                raise _Untranslatable(f"{name} is a number, never {node.value!r}")
            return _number_text(number)
        if field_type in ("photo", "note", "geopoint", "geotrace", "geoshape"):
            raise _Untranslatable(f"{name} ({question.kind}) can only be tested for being empty")
        return _quoted(node.value)

    def _question(self, node: _Node) -> _Question:
        if node.kind == "current" and self.current is not None:
            return self.current  # selected(., 'x'), count-selected(.) in a constraint
        if node.kind != "ref":
            raise _Untranslatable(f"{_show(node)} is no ${{…}} reference to a question")
        question = self.questions.get(node.value)
        if question is None and node.value in _METADATA:
            raise _Untranslatable(
                f"${{{node.value}}} is metadata ODK fills in, which a Zoufang visit records by "
                "itself and no expression reads"
            )
        if question is None:
            raise _Untranslatable(f"${{{node.value}}} is no question of this form")
        return question


def _kind_of(question: _Question) -> str:
    """What a question's answers are compared as: numbers, or their own type."""
    return "number" if question.type in NUMBER_TYPES else question.type


def _bounds(node: _Node, question: _Question) -> dict[str, Any]:
    """The min/max or max_length that a constraint such as ``. >= 0 and . <= 120`` states."""
    bounds: dict[str, Any] = {}
    for part in _conjuncts(node):
        if part.kind == "call":
            raise _Untranslatable(f"{part.value}() is not supported yet")
        if part.kind != "compare":
            raise _Untranslatable(f"{_show(part)} is no comparison")
        op, (left, right) = part.value, part.args
        if left.kind in ("number", "string"):
            op, left, right = _FLIPPED[op], right, left
        number = _decimal(right.value) if right.kind in ("number", "string") else None
        if number is None:
            raise _Untranslatable("a bound must be a number")
        if left.kind == "current" and question.type in NUMBER_TYPES:
            key, value = _number_bound(op, number, question.type == "integer")
        elif _is_length_of_current(left) and question.type == "text":
            key, value = _length_bound(op, number)
        else:
            raise _Untranslatable(f"{_show(left)} {op} … cannot be checked on a {question.kind}")
        tighter = min if key in ("max", "max_length") else max
        bounds[key] = tighter(bounds[key], value) if key in bounds else value
    return bounds


def _leading_bounds(node: _Node, question: _Question) -> tuple[dict[str, Any], _Node]:
    """``. >= 0 and . <= 9 and <condition>``: the bounds of ``.`` first, then a condition that
    does not read ``.`` (as a download writes a field with both): the bounds and the rest.
    Any other constraint is all condition: ``({}, node)``."""
    parts = _conjuncts(node)
    for split in range(len(parts) - 1, 0, -1):
        head, tail = parts[:split], parts[split:]
        if any(_reads_current(part) for part in tail):
            continue
        try:
            bounds = _bounds(_joined(head), question)
        except _Untranslatable:
            continue
        return bounds, _joined(tail)
    return {}, node


def _joined(parts: list[_Node]) -> _Node:
    node = parts[0]
    for part in parts[1:]:
        node = _Node("and", args=(node, part))
    return node


def _reads_current(node: _Node) -> bool:
    return node.kind == "current" or any(_reads_current(arg) for arg in node.args)


def _conjuncts(node: _Node) -> list[_Node]:
    if node.kind == "and":
        return [part for child in node.args for part in _conjuncts(child)]
    return [node]


def _is_length_of_current(node: _Node) -> bool:
    return (
        node.kind == "call"
        and node.value == "string-length"
        and [arg.kind for arg in node.args] == ["current"]
    )


def _number_bound(op: str, number: Decimal, integer: bool) -> tuple[str, int | float]:
    """``>=``/``<=`` are min/max; ``>``/``<`` only on integer questions, whose answers
    leave no value between n and n + 1."""
    whole = number == number.to_integral_value()
    if op in (">=", "<="):
        return ("min" if op == ">=" else "max"), _json_number(number)
    if op in (">", "<") and integer and whole:
        return ("min", int(number) + 1) if op == ">" else ("max", int(number) - 1)
    raise _Untranslatable(f"'. {op} {_number_text(number)}' has no min/max equivalent")


def _length_bound(op: str, number: Decimal) -> tuple[str, int]:
    limit = int(number) - (1 if op == "<" else 0)
    if op not in ("<=", "<") or number != number.to_integral_value() or limit < 1:
        raise _Untranslatable("only a maximum length ('string-length(.) <= n') is supported")
    return "max_length", limit
