"""Converting an XLSForm, the ODK/KoBoToolbox spreadsheet convention, into a form definition.

County staff design surveys in Excel the way ODK and KoBo taught them: a ``survey`` sheet with
one question per row, a ``choices`` sheet and a ``settings`` sheet. ``convert_xlsform`` turns
those sheets, given as rows of cells, into a definition document that ``validate_definition``
accepts, translating ``relevant``, ``required`` and simple ``constraint`` expressions into the
condition language of this package. What a Zoufang form cannot hold is refused, never dropped:
every problem is reported at once with its sheet, row and column, so the author fixes the
spreadsheet in one pass. Pure standard library; the server reads .xlsx files into rows
(``server/xlsform_io.py``). The rules are in the XLSForm section of ``README.md``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from forms.definition import validate_definition
from forms.expressions import FUNCTIONS, KEYWORDS, ExpressionError, Or, parse_expression
from forms.model import POLICIES

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
_CHOICE_TYPES = ("single_choice", "multiple_choice")

_SIMPLE_TYPES = {
    "text": "text",
    "string": "text",
    "integer": "number",
    "int": "number",
    "decimal": "number",
    "date": "date",
    "image": "photo",
    "photo": "photo",
    "acknowledge": "boolean",
}
#: Filled in by the phone, not asked: a Zoufang visit records who, when, where and on which
#: device by itself, so these rows are skipped.
_METADATA = frozenset(
    {
        "start",
        "end",
        "today",
        "deviceid",
        "imei",
        "username",
        "email",
        "phonenumber",
        "simserial",
        "subscriberid",
        "audit",
        "start-geopoint",
    }
)
_UNSUPPORTED = {
    "begin_repeat": "repeat groups are not supported: a visit holds one set of answers "
    "(record people in the household roster instead)",
    "calculate": "calculate is not supported: a Zoufang form holds only questions people answer",
    "geopoint": "geopoint is not supported: a visit records where it took place by itself "
    "(the visit's location)",
    "geotrace": "geotrace is not supported",
    "geoshape": "geoshape is not supported",
    "note": "note is not supported: put its text in the hint of the question it explains",
    "time": "time is not supported: use date or text",
    "datetime": "datetime is not supported: use date or text",
}
_NOT_SUPPORTED_TYPES = frozenset(
    {
        "barcode",
        "audio",
        "video",
        "file",
        "range",
        "rank",
        "hidden",
        "trigger",
        "background-audio",
        "xml-external",
        "csv-external",
        "select_one_from_file",
        "select_multiple_from_file",
    }
)
#: Columns whose meaning a Zoufang field cannot carry; presentation columns (appearance,
#: constraint_message, media::image, …) and KoBo's bookkeeping ($kuid, …) are ignored.
_UNSUPPORTED_COLUMNS = {
    "choice_filter": "choice_filter (cascading choices) is not supported: "
    "use one list of choices, or one question per case with its own relevant",
    "calculation": "calculation is not supported",
    "repeat_count": "repeat_count is not supported",
    "trigger": "trigger is not supported",
}
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_COLUMN_OF_PATH = {
    ".relevant": "relevant",
    ".required": "required",
    ".problem.when": "problem_when",
    ".label": "label",
    ".hint": "hint",
}


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


def convert_xlsform(
    sheets: Sheets, *, form_id: str | None = None, version: int | None = None
) -> dict[str, Any]:
    """The definition document ``{"form_id", "versions": [one version]}`` of an XLSForm.

    ``sheets`` maps sheet names (any case) to their data rows as ``{column header: cell
    value}``; ``rows[i]`` is spreadsheet row ``i + 2`` and a blank row is an empty mapping,
    so every problem names the row the author sees. ``form_id`` and ``version`` override the
    settings sheet. Raises XLSFormError listing every problem.
    """
    return _Converter(sheets).convert(form_id, version)


class _Untranslatable(ValueError):
    """Something in an XLSForm expression that a Zoufang condition cannot say."""


@dataclass
class _Group:
    row: int
    name: str
    relevant: str
    parent: _Group | None
    repeat: bool
    condition: str | None = None  # the translated relevant, once translated
    translated: bool = False


@dataclass
class _Question:
    row: int
    name: str
    kind: str  # the XLSForm type: integer, select_one, acknowledge, …
    type: str  # the Zoufang field type
    cells: dict[str, str]
    group: _Group | None
    choices: list[dict[str, Any]] = field(default_factory=list)
    booleans: dict[str, bool] = field(default_factory=dict)  # lowercase answer -> true/false


@dataclass(frozen=True)
class _Choice:
    row: int
    name: str
    label: dict[str, str]


class _Converter:
    def __init__(self, sheets: Sheets) -> None:
        self.sheets = {name.strip().lower(): rows for name, rows in sheets.items()}
        self.problems: list[SheetProblem] = []
        self.settings_row: int | None = None
        self.questions: dict[str, _Question] = {}

    def problem(self, sheet: str, row: int | None, column: str | None, message: str) -> None:
        self.problems.append(SheetProblem(sheet, row, column, message))

    def convert(self, form_id: str | None, version: int | None) -> dict[str, Any]:
        settings = self._settings()
        form_id = self._form_id(form_id, settings)
        number = self._version(version, settings)
        policy = self._policy(settings)
        title = _localized(settings, "form_title") or {"zh-CN": form_id, "en": form_id}
        questions = self._questions(self._choice_lists())
        self.questions = {question.name: question for question in questions}
        fields = [self._field(question) for question in questions]
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

    # settings sheet

    def _settings(self) -> dict[str, str]:
        for index, raw in enumerate(self.sheets.get("settings", ())):
            cells = _normalize(raw)
            if cells:
                self.settings_row = index + FIRST_ROW
                return cells
        return {}

    def _form_id(self, given: str | None, settings: Mapping[str, str]) -> str:
        form_id = given if given is not None else settings.get("form_id", "")
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
        if given is not None:
            return given
        text = settings.get("version", "")
        if not text:
            return 1
        if text.isascii() and text.isdigit() and int(text) >= 1:
            return int(text)
        self.problem(
            "settings",
            self.settings_row,
            "version",
            f"version {text!r} is not a whole number of at least 1",
        )
        return 1

    def _policy(self, settings: Mapping[str, str]) -> str | None:
        policy = settings.get("policy") or None
        if policy not in POLICIES:
            self.problem(
                "settings", self.settings_row, "policy", "policy must be weekly, monthly or empty"
            )
            return None
        return policy

    # choices sheet

    def _choice_lists(self) -> dict[str, list[_Choice]]:
        lists: dict[str, list[_Choice]] = {}
        for index, raw in enumerate(self.sheets.get("choices", ())):
            row, cells = index + FIRST_ROW, _normalize(raw)
            if not cells:
                continue
            list_name, name = cells.get("list_name", ""), cells.get("name", "")
            if not list_name:
                self.problem("choices", row, "list_name", "no list_name")
                continue
            if not name:
                self.problem("choices", row, "name", f"a choice of list {list_name!r} has no name")
                continue
            label = _localized(cells, "label")
            if not label:
                self.problem(
                    "choices", row, "label", f"choice {name!r} of list {list_name!r} has no label"
                )
            entries = lists.setdefault(list_name, [])
            first = next((choice.row for choice in entries if choice.name == name), None)
            if first is not None:
                self.problem(
                    "choices",
                    row,
                    "name",
                    f"duplicate choice {name!r} in list {list_name!r} (first on row {first})",
                )
                continue
            entries.append(_Choice(row, name, label))
        return lists

    # survey sheet, first pass: the questions, their types and groups

    def _questions(self, lists: Mapping[str, list[_Choice]]) -> list[_Question]:
        rows = self.sheets.get("survey")
        if rows is None:
            self.problem("survey", None, None, "the workbook has no survey sheet")
            return []
        questions: list[_Question] = []
        names: dict[str, int] = {}
        group: _Group | None = None
        for index, raw in enumerate(rows):
            row, cells = index + FIRST_ROW, _normalize(raw)
            if not cells:
                continue
            type_text = cells.get("type", "")
            kind, arguments = _split_type(type_text)
            if not kind:
                self.problem("survey", row, "type", "no type")
            elif kind in ("begin_group", "begin_repeat"):
                if kind == "begin_repeat":
                    self.problem("survey", row, "type", _UNSUPPORTED["begin_repeat"])
                self._check_name(cells.get("name", ""), row, names, "group")
                relevant = cells.get("relevant", "")
                group = _Group(row, cells.get("name", ""), relevant, group, kind == "begin_repeat")
            elif kind in ("end_group", "end_repeat"):
                group = self._close(group, kind, row)
            elif kind not in _METADATA:
                question = self._question(row, cells, (kind, arguments, type_text), lists, names)
                if question is not None:
                    question.group = group
                    questions.append(question)
        while group is not None:
            begin = "begin_repeat" if group.repeat else "begin_group"
            self.problem("survey", group.row, "type", f"this {begin} is never closed")
            group = group.parent
        if not questions and not self.problems:
            self.problem("survey", None, None, "no questions to import")
        return questions

    def _close(self, group: _Group | None, kind: str, row: int) -> _Group | None:
        expected = "end_repeat" if group is not None and group.repeat else "end_group"
        if group is None:
            self.problem("survey", row, "type", f"{kind} without a matching begin")
        elif kind != expected:
            self.problem("survey", row, "type", f"{kind} closes the group of row {group.row}")
        return None if group is None else group.parent

    def _question(
        self,
        row: int,
        cells: dict[str, str],
        xls_type: tuple[str, list[str], str],
        lists: Mapping[str, list[_Choice]],
        names: dict[str, int],
    ) -> _Question | None:
        kind, arguments, type_text = xls_type
        field_type = self._field_type(row, kind, arguments, type_text, lists)
        name = cells.get("name", "")
        named = self._check_name(name, row, names, "question")
        if field_type is None:
            return None
        if not _localized(cells, "label"):
            self.problem("survey", row, "label", f"question {name or '(no name)'} has no label")
        if not named:
            return None
        question = _Question(row, name, kind, field_type, cells, None)
        if kind == "acknowledge":
            question.booleans = {"ok": True}
        elif field_type in _CHOICE_TYPES:
            choices = lists[arguments[0]]
            booleans = _yes_no(choices)
            if field_type == "single_choice" and booleans:
                question.type, question.booleans = "boolean", booleans
            else:
                question.choices = [{"value": c.name, "label": c.label} for c in choices]
        return question

    def _field_type(
        self,
        row: int,
        kind: str,
        arguments: list[str],
        type_text: str,
        lists: Mapping[str, list[_Choice]],
    ) -> str | None:
        """The Zoufang type of a question row; None, with the problem noted, if it has none."""
        if kind in ("select_one", "select_multiple"):
            if arguments[1:] == ["or_other"]:
                self.problem(
                    "survey",
                    row,
                    "type",
                    "or_other is not supported: add an 'other' choice and a text question "
                    "relevant when it is selected",
                )
            elif len(arguments) != 1:
                self.problem("survey", row, "type", f"{kind} needs one list name: {type_text!r}")
            elif arguments[0] not in lists:
                self.problem(
                    "survey", row, "type", f"no choice list {arguments[0]!r} in the choices sheet"
                )
            else:
                return "single_choice" if kind == "select_one" else "multiple_choice"
            return None
        if not arguments and kind in _SIMPLE_TYPES:
            return _SIMPLE_TYPES[kind]
        if kind in _UNSUPPORTED:
            self.problem("survey", row, "type", _UNSUPPORTED[kind])
        elif kind in _NOT_SUPPORTED_TYPES:
            self.problem("survey", row, "type", f"{kind} is not supported by Zoufang forms")
        else:
            self.problem("survey", row, "type", f"unknown type {type_text!r}")
        return None

    def _check_name(self, name: str, row: int, names: dict[str, int], what: str) -> bool:
        """Names become field ids and group keys, read by conditions: unique snake_case."""
        if not name:
            self.problem("survey", row, "name", f"the {what} has no name")
            return False
        first = names.setdefault(name, row)
        if first != row:
            self.problem("survey", row, "name", f"duplicate name {name!r} (first on row {first})")
            return False
        if not _is_id(name):
            self.problem(
                "survey",
                row,
                "name",
                f"name {name!r} must be snake_case: lowercase letters, digits and _, "
                "starting with a letter, at most 64 characters",
            )
            return False
        if name in _RESERVED:
            self.problem(
                "survey", row, "name", f"name {name!r} is a word of the condition language"
            )
            return False
        return True

    # survey sheet, second pass: each question as a field, its expressions translated

    def _field(self, question: _Question) -> dict[str, Any]:
        cells, row = question.cells, question.row
        doc: dict[str, Any] = {
            "id": question.name,
            "type": question.type,
            "label": _localized(cells, "label"),
        }
        hint = _localized(cells, "hint")
        if hint:
            doc["hint"] = hint
        required = self._required(question)
        if required is not False:
            doc["required"] = required
        relevant = self._relevant(question)
        if relevant:
            doc["relevant"] = relevant
        if question.choices:
            doc["choices"] = question.choices
        doc.update(self._constraint(question))
        if cells.get("default"):
            doc["default"] = self._default(question, cells["default"])
        problem = self._problem_path(question)
        if problem is not None:
            doc["problem"] = problem
        if question.group is not None:
            doc["group"] = question.group.name
        for column, message in _UNSUPPORTED_COLUMNS.items():
            if cells.get(column):
                self.problem("survey", row, column, message)
        return doc

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

    def _condition(self, row: int, column: str, text: str) -> str | None:
        """The Zoufang condition of an XLSForm expression; None, with the problem noted."""
        try:
            node = _Parser(text).parse()
            condition = _Translator(self.questions).condition(node)
            parse_expression(condition)
        except (_Untranslatable, ExpressionError) as error:
            self.problem("survey", row, column, f"cannot translate {text!r}: {error}")
            return None
        return condition

    def _constraint(self, question: _Question) -> dict[str, Any]:
        text = question.cells.get("constraint", "")
        if not text:
            return {}
        try:
            return _bounds(_Parser(text).parse(), question)
        except _Untranslatable as error:
            self.problem(
                "survey",
                question.row,
                "constraint",
                f"cannot translate {text!r}: {error}. Zoufang forms check only '. >= n' and "
                "'. <= n' on numbers and 'string-length(.) <= n' on text, joined with 'and'",
            )
            return {}

    def _default(self, question: _Question, text: str) -> object:
        """The default as an answer of the field's type; ``validate_definition`` then checks it
        is a valid one (a choice of the list, a real date)."""
        if "${" in text or "(" in text:
            self.problem(
                "survey",
                question.row,
                "default",
                f"dynamic default {text!r} is not supported: a default is a fixed answer",
            )
            return None
        if question.type == "boolean":
            if text.lower() not in question.booleans:
                self.problem(
                    "survey",
                    question.row,
                    "default",
                    f"default {text!r} is none of {', '.join(question.booleans)}",
                )
            return question.booleans.get(text.lower())
        if question.type == "number":
            number = _decimal(text)
            if number is None:
                self.problem("survey", question.row, "default", f"default {text!r} is no number")
                return None
            return _json_number(number)
        if question.type == "multiple_choice":
            return text.split()
        if question.type == "photo":
            self.problem("survey", question.row, "default", "an image has no default")
        return text

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
            r"versions\[0\]\.fields\[(\d+)\](?: \([^)]*\))?([\w.\[\]]*): (.*)", error, re.DOTALL
        )
        if match:
            question = questions[int(match.group(1))]
            path, message = match.group(2), match.group(3)
            column = _COLUMN_OF_PATH.get(path)
            if column is None and path.startswith(".choices"):
                column = "type"
            elif column is None:
                column = _column_named_in(message)
            self.problem("survey", question.row, column, message)
            return
        match = re.fullmatch(r"versions\[0\] \(([^)]*)\): (.*)", error)
        if match and match.group(1) in self.questions:
            row = self.questions[match.group(1)].row
            self.problem("survey", row, "default", match.group(2))
            return
        match = re.fullmatch(r"versions\[0\]\.title: (.*)", error)
        if match:
            self.problem("settings", self.settings_row, "form_title", match.group(1))
            return
        self.problem("survey", None, None, error)


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


def _yes_no(choices: Sequence[_Choice]) -> dict[str, bool]:
    """A list of exactly yes and no (or true and false) is a boolean question; nothing else
    is, since a two-choice list such as male/female or 1/0 has no unambiguous true."""
    names = {choice.name.lower() for choice in choices}
    if len(choices) == 2 and names == {"yes", "no"}:
        return {"yes": True, "no": False}
    if len(choices) == 2 and names == {"true", "false"}:
        return {"true": True, "false": False}
    return {}


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
        header = "list_name" if header == "list name" else header
        header = "form_id" if header == "id_string" else header
        text = _cell(value)
        if header and text:
            cells.setdefault(header, text)
    return cells


def _split_type(type_text: str) -> tuple[str, list[str]]:
    """``select_one yes_no`` → (select_one, [yes_no]); ``begin group`` → (begin_group, [])."""
    words = type_text.split()
    if not words:
        return "", []
    if len(words) >= 2 and f"{words[0]} {words[1]}".lower() in (
        "begin group",
        "end group",
        "begin repeat",
        "end repeat",
        "select one",
        "select multiple",
    ):
        words = [f"{words[0]}_{words[1]}", *words[2:]]
    return words[0].lower(), words[1:]


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
    own column takes the plain column's text, else the other language's; {} if there is none."""
    own: dict[str, str] = {}
    for header, text in cells.items():
        if header.startswith(f"{column}::"):
            language = _language(header[len(column) + 2 :])
            if language is not None:
                own.setdefault(language, text)
    plain = cells.get(column, "")
    chinese = own.get("zh-CN") or plain or own.get("en", "")
    english = own.get("en") or plain or own.get("zh-CN", "")
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
    | (?P<op>!=|<=|>=|=|<|>|\(|\)|,)
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
        left = self._primary()
        kind, op = self._peek()
        if kind != "op" or op not in _COMPARISON_OPS:
            return left
        self._take()
        node = _Node("compare", "==" if op == "=" else op, (left, self._primary()))
        kind, op = self._peek()
        if kind == "op" and op in _COMPARISON_OPS:
            raise _Untranslatable("chained comparisons are not supported")
        return node

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
        if kind == "other" and value == "-" and self._peek()[0] == "number":
            return _Node("number", "-" + self._take()[1])
        if (kind, value) == ("op", "("):
            node = self._or()
            if self._take() != ("op", ")"):
                raise _Untranslatable("a '(' is not closed")
            return node
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
    if value in ("+", "-", "*", "|") or value.lower() in ("div", "mod"):
        return f"arithmetic ({value}) is not supported"
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
        case _:
            return node.value or node.kind


class _Translator:
    """Writes a parsed XLSForm expression in the condition language, knowing each question's
    type. XLSForm compares unanswered questions as empty text and Zoufang as null, so ``!=``
    becomes ``(x == null or x != v)`` and a bare ``${x}`` becomes ``x != null``."""

    def __init__(self, questions: Mapping[str, _Question]) -> None:
        self.questions = questions

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
            return f"{self._question(node).name} != null", ""
        if node.kind == "call":
            return self._call(node), ""
        if node.kind == "current":
            raise _Untranslatable("'.' (the question itself) belongs in constraints only")
        raise _Untranslatable(f"{_show(node)} is not a condition")

    def _call(self, node: _Node) -> str:
        name, args = node.value, node.args
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
        raise _Untranslatable(f"{name}() is not supported")

    def _selected(self, reference: _Node, value: _Node) -> str:
        question = self._question(reference)
        if value.kind not in ("string", "number"):
            raise _Untranslatable("selected() needs a choice name as its second argument")
        if question.type == "multiple_choice":
            return f"selected({question.name}, {_quoted(value.value)})"
        if question.type in ("single_choice", "boolean"):
            return f"{question.name} == {self._literal(question, value, ordered=False)}"
        raise _Untranslatable(f"selected() needs a select question, ${{{question.name}}} is not")

    def _count(self, reference: _Node) -> str:
        question = self._question(reference)
        if question.type != "multiple_choice":
            raise _Untranslatable(
                f"count-selected() needs a select_multiple question, ${{{question.name}}} is not"
            )
        return f"count({question.name})"

    def _comparison(self, node: _Node) -> tuple[str, str]:
        op, (left, right) = node.value, node.args
        if "current" in (left.kind, right.kind):
            raise _Untranslatable("'.' (the question itself) belongs in constraints only")
        if left.kind in ("string", "number") and right.kind in ("ref", "call"):
            op, left, right = _FLIPPED[op], right, left
        if left.kind == "call" and left.value == "count-selected" and len(left.args) == 1:
            number = _decimal(right.value) if right.kind in ("string", "number") else None
            if number is None:
                raise _Untranslatable("count-selected() is compared with a number")
            return f"{self._count(left.args[0])} {op} {_number_text(number)}", ""
        if left.kind != "ref":
            raise _Untranslatable(f"compare a question ${{…}} with a value, not {_show(left)}")
        if right.kind == "ref":
            raise _Untranslatable("comparing two questions is not supported")
        if right.kind not in ("string", "number"):
            raise _Untranslatable(f"compare ${{{left.value}}} with a value, not {_show(right)}")
        question = self._question(left)
        if right.kind == "string" and right.value == "" and op in ("==", "!="):
            return f"{question.name} {op} null", ""
        value = self._literal(question, right, ordered=op not in ("==", "!="))
        if op == "!=":
            return f"{question.name} == null or {question.name} != {value}", "or"
        return f"{question.name} {op} {value}", ""

    def _literal(self, question: _Question, node: _Node, *, ordered: bool) -> str:
        """A value compared with a question, as that question's answers are written."""
        name, field_type = f"${{{question.name}}}", question.type
        if ordered and field_type not in ("number", "date"):
            raise _Untranslatable(
                f"{name} is no number or date, so it cannot be compared with < <= > >="
            )
        if field_type == "multiple_choice":
            raise _Untranslatable(f"test {name} with selected() or count-selected(), not =")
        if field_type == "boolean":
            answer = question.booleans.get(node.value.lower())
            if answer is None:
                words = " or ".join(repr(word) for word in question.booleans)
                raise _Untranslatable(f"{name} is answered {words}, never {node.value!r}")
            return "true" if answer else "false"
        if field_type == "number":
            number = _decimal(node.value)
            if number is None:
                raise _Untranslatable(f"{name} is a number, never {node.value!r}")
            return _number_text(number)
        if field_type == "photo":
            raise _Untranslatable(f"an image ({name}) can only be tested for being empty")
        return _quoted(node.value)

    def _question(self, node: _Node) -> _Question:
        if node.kind != "ref":
            raise _Untranslatable(f"{_show(node)} is no ${{…}} reference to a question")
        question = self.questions.get(node.value)
        if question is None:
            raise _Untranslatable(f"${{{node.value}}} is no question of this form")
        return question


def _bounds(node: _Node, question: _Question) -> dict[str, Any]:
    """The min/max or max_length that a constraint such as ``. >= 0 and . <= 120`` states."""
    bounds: dict[str, Any] = {}
    for part in _conjuncts(node):
        if part.kind != "compare":
            raise _Untranslatable(f"{_show(part)} is no comparison")
        op, (left, right) = part.value, part.args
        if left.kind in ("number", "string"):
            op, left, right = _FLIPPED[op], right, left
        number = _decimal(right.value) if right.kind in ("number", "string") else None
        if number is None:
            raise _Untranslatable("a bound must be a number")
        if left.kind == "current" and question.type == "number":
            key, value = _number_bound(op, number, question.kind in ("integer", "int"))
        elif _is_length_of_current(left) and question.type == "text":
            key, value = _length_bound(op, number)
        else:
            raise _Untranslatable(f"{_show(left)} {op} … cannot be checked on a {question.kind}")
        tighter = min if key in ("max", "max_length") else max
        bounds[key] = tighter(bounds[key], value) if key in bounds else value
    return bounds


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
