"""Expressions of a definition written back in XLSForm's XPath: the inverse of the translation
in ``forms/xlsform.py``, for downloading a form version as an XLSForm.

Each node is written in the one spelling the import reads back as the same node, knowing each
question's name and type as the import does (``f == true`` on a yes/no question is
``${f} = 'yes'``; ``f == null or f != 'x'`` is XLSForm's ``${f} != 'x'``; arithmetic is
parenthesized, ``/`` and ``%`` are ``div`` and ``mod``). Where XLSForm has no spelling that
comes back as the same tree, the nearest one with the same meaning is written and the reason
is named in ``XPath.changes`` (one of ``CHANGES``), so the download can say so. The classes
are listed in ``forms/README.md`` ("Download back as XLSForm") and held by
``tests/test_xpath_out.py``. Pure standard library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from forms.expressions import (
    And,
    Arithmetic,
    Call,
    Comparison,
    Count,
    Literal,
    Membership,
    Negate,
    Node,
    Not,
    NullTest,
    Or,
    Reference,
    Regex,
    Selected,
    is_number,
    parse_expression,
)
from forms.model import NUMBER_TYPES
from forms.xlsform import _decimal, _number_text

#: why an expression comes back spelt otherwise (same meaning unless said), by code
CHANGES: dict[str, str] = {
    "membership": "x in [a, b] comes back as x == a or x == b",
    "not_equal": "x != v comes back as x == null or x != v (XLSForm's != holds for an "
    "unanswered question)",
    "flipped": "a literal left of a question or function comes back on the right",
    "bare_field": "a field alone as a condition comes back as f != null (f == true if yes/no)",
    "nested": "a and (b and c) comes back as a and b and c (or alike)",
    "null_value": "null as a value (not in == null) comes back as ''",
    "empty_text": "a comparison with '' comes back as == null / != null",
    "null_test": "== null on a computed value comes back as a comparison with ''",
    "negative": "-(n) of a number comes back as the number -n",
    "literal_type": "a literal of another type than its question's comes back as the "
    "question's type ('3' against a number question as 3)",
    "count_condition": "count(f) alone as a condition comes back as count(f) > 0",
    "not_a_condition": "a value where a condition belongs: the import refuses it",
    "quotes": "a text holding both ' and \" has no XPath spelling: written with ʼ for '",
    "no_xpath": "no XPath spelling the import reads back: the import refuses it",
}
_XPATH_OPS = {"/": "div", "%": "mod"}
_XPATH_FUNCTIONS = {"string_length": "string-length"}
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_ORDERED = (*NUMBER_TYPES, "date", "time", "datetime")
#: what the import may compare a question with another question in a constraint as
_INCOMPARABLE = ("multiple_choice", "photo", "note", "geopoint", "geotrace", "geoshape")


@dataclass(frozen=True)
class Question:
    """What a reference needs: the question's name in the workbook and its Zoufang type."""

    name: str
    type: str


@dataclass(frozen=True)
class XPath:
    """An expression in XLSForm's XPath, its loosest operator (``or``, ``and`` or ``""``) for
    parenthesizing it inside another, and the codes of ``CHANGES`` it comes back with."""

    text: str
    loosest: str = ""
    changes: tuple[str, ...] = ()


def condition_xpath(
    text: str, questions: Mapping[str, Question], current: str | None = None
) -> XPath:
    """A condition (``relevant``, ``required``, ``constraint`` with ``current`` its field,
    ``problem.when``) in XPath."""
    writer = _Writer(questions, current)
    written, loosest = writer.condition(parse_expression(text).root)
    return XPath(written, loosest, tuple(dict.fromkeys(writer.changes)))


def value_xpath(text: str, questions: Mapping[str, Question]) -> XPath:
    """A value (``calculation``, ``dynamic_default``, ``repeat_count``) in XPath."""
    writer = _Writer(questions, None)
    written = writer.value(parse_expression(text).root, top=True)
    if written.startswith("-"):  # a cell starting with - is neutralized as a formula
        written = f"({written})"
    return XPath(written, "", tuple(dict.fromkeys(writer.changes)))


class _Writer:
    def __init__(self, questions: Mapping[str, Question], current: str | None) -> None:
        self.questions = questions
        self.current = current
        self.changes: list[str] = []

    def change(self, code: str) -> None:
        self.changes.append(code)

    # conditions: the import's _Translator._term

    def condition(self, node: Node) -> tuple[str, str]:
        if isinstance(node, And):
            return self._junction(node.operands, "and"), "and"
        if isinstance(node, Or):
            return self._junction(node.operands, "or"), "or"
        if isinstance(node, Not):
            return f"not({self.condition(node.operand)[0]})", ""
        if isinstance(node, Literal) and isinstance(node.value, bool):
            return ("true()" if node.value else "false()"), ""
        if isinstance(node, Reference):
            self.change("bare_field")
            if self._type(node.field) == "boolean":
                return f"{self._ref(node.field)} = 'yes'", ""
            return self._ref(node.field), ""
        if isinstance(node, NullTest):
            return self._null_test(node), ""
        if isinstance(node, Comparison):
            return self._comparison(node)
        if isinstance(node, Membership):
            return self._membership(node)
        if isinstance(node, Selected | Regex) or (isinstance(node, Call) and node.function == "if"):
            return self.value(node), ""
        if isinstance(node, Count):
            self.change("count_condition")
            return f"count-selected({self._ref(node.field)})", ""
        if isinstance(node, Literal) and is_number(node.value):
            self.change("literal_type")  # XPath's boolean(): 0 is false, any other true
            return number_xpath(node.value), ""
        self.change("not_a_condition")
        return self.value(node), ""

    def _junction(self, operands: tuple[Node, ...], word: str) -> str:
        parts: list[str] = []
        index = 0
        while index < len(operands):
            pair = operands[index : index + 2]
            if word == "or" and len(pair) == 2 and self._is_not_equal(pair[0], pair[1]):
                assert isinstance(pair[1], Comparison)
                parts.append(self._plain_comparison(pair[1]))
                index += 2
                continue
            text, loosest = self.condition(operands[index])
            if loosest == word:
                self.change("nested")
            if loosest == "or" and word == "and":
                text = f"({text})"
            parts.append(text)
            index += 1
        return f" {word} ".join(parts)

    def _is_not_equal(self, null: Node, comparison: Node) -> bool:
        """``f == null or f != v``: what the import makes of XLSForm's ``${f} != v`` (and, in
        a constraint, ``g == null or f != g`` of ``${f} != ${g}``)."""
        if not (
            isinstance(null, NullTest)
            and null.is_null
            and isinstance(null.operand, Reference)
            and isinstance(comparison, Comparison)
            and comparison.op == "!="
            and isinstance(comparison.left, Reference)
        ):
            return False
        right = comparison.right
        if isinstance(right, Literal):
            return (
                right.value is not None
                and null.operand == comparison.left
                and self._literal_kept(comparison.left.field, right.value)
            )
        return (
            isinstance(right, Reference)
            and null.operand in (comparison.left, right)
            and self._two_questions(comparison.left, right)
            and (null.operand.field != self.current)
            and self._comparable(comparison.left.field, right.field, "!=")
        )

    def _null_test(self, node: NullTest) -> str:
        op = "=" if node.is_null else "!="
        if not isinstance(node.operand, Reference):
            self.change("null_test")
        return f"{self._left_value(node.operand)} {op} ''"

    def _left_value(self, node: Node) -> str:
        """The left side of a comparison: the import reads ``count-selected()`` there only
        against a number, so a count is ``count()`` (the same count of a list answer)."""
        if isinstance(node, Count):
            return f"count({self._ref(node.field)})"
        return self.value(node)

    def _membership(self, node: Membership) -> tuple[str, str]:
        self.change("membership")
        parts = []
        for item in node.items:
            if item is None:
                parts.append(f"{self.value(node.operand)} = ''")
            else:
                parts.append(self._plain_comparison(Comparison("==", node.operand, Literal(item))))
        if not parts:
            return "false()", ""
        return " or ".join(parts), "or" if len(parts) > 1 else ""

    def _comparison(self, node: Comparison) -> tuple[str, str]:
        left, right, op = node.left, node.right, node.op
        if isinstance(left, Reference) and isinstance(right, Literal):
            if right.value == "" and op in ("==", "!="):
                self.change("empty_text")
            elif op == "!=" and self._literal_kept(left.field, right.value):
                self.change("not_equal")
        if _kind(left) in ("string", "number") and _kind(right) in ("ref", "call"):
            self.change("flipped")
        if (
            isinstance(left, Reference)
            and isinstance(right, Reference)
            and self._two_questions(left, right)
        ):
            if op == "!=":
                self.change("not_equal")
            if not self._comparable(left.field, right.field, op):
                self.change("no_xpath")
        return self._plain_comparison(node), ""

    def _two_questions(self, left: Reference, right: Reference) -> bool:
        return self.current is not None and self.current in (left.field, right.field)

    def _comparable(self, first: str, second: str, op: str) -> bool:
        """What the import accepts of ``. op ${x}`` in a constraint: questions of one kind."""
        types = (self._type(first), self._type(second))
        kinds = {"number" if t in NUMBER_TYPES else t for t in types}
        # a calculation's value is a number or text as it comes out: compared with anything
        dynamic = "calculate" in types
        current = self._type(self.current) if self.current is not None else types[0]
        ordered = op in ("==", "!=") or current in (*_ORDERED, "calculate")
        return (len(kinds) == 1 or dynamic) and ordered and not set(types) & set(_INCOMPARABLE)

    def _plain_comparison(self, node: Comparison) -> str:
        """``left op right`` as the import reads it: a question against a literal in the
        question's spelling of it, anything else both sides as values."""
        op = "=" if node.op == "==" else node.op
        left, right = node.left, node.right
        if isinstance(right, Reference) and _kind(left) in ("string", "number"):
            left, right, op = right, left, _FLIP[node.op].replace("==", "=")
        if isinstance(left, Count) and self._type(left.field) == "multiple_choice":
            number = _number_literal(right)
            if number is not None:
                return f"count-selected({self._ref(left.field)}) {op} {number}"
        if isinstance(left, Reference) and isinstance(right, Literal):
            if right.value is None or (right.value == "" and node.op in ("==", "!=")):
                return f"{self._ref(left.field)} {op} ''"
            text, change = self._literal_for(left.field, right.value, node.op)
            if change is not None:
                self.change(change)
            return f"{self._ref(left.field)} {op} {text}"
        sides = []
        for side, other in ((left, right), (right, left)):
            if (
                isinstance(side, Literal)
                and isinstance(side.value, str)
                and _decimal(side.value) is not None
                and self._numeric(other)
            ):
                self.change("literal_type")
            sides.append(self._left_value(side) if side is left else self.value(side))
        return f"{sides[0]} {op} {sides[1]}"

    def _numeric(self, node: Node) -> bool:
        """What the import reads as a numeric side (its _Translator._numeric)."""
        if isinstance(node, Arithmetic | Negate):
            return True
        if isinstance(node, Literal):
            return is_number(node.value)
        if isinstance(node, Reference):
            return self._type(node.field) in NUMBER_TYPES
        if isinstance(node, Count):
            return True
        return isinstance(node, Call) and node.function in (
            "string_length",
            "int",
            "number",
            "round",
            "sum",
            "position",
        )

    def _literal_kept(self, field: str, value: object) -> bool:
        """Whether ``${f} op literal`` is read by the import as a question against this very
        literal (its simple shape, where ``!=`` comes back as ``f == null or f != v``)."""
        if isinstance(value, bool) and self._type(field) != "boolean":
            return False  # written true(), a call: compared as a value
        return self._literal_for(field, value, "==")[1] is None

    def _literal_for(self, field: str, value: object, op: str) -> tuple[str, str | None]:
        """A literal compared with a question, in the spelling the import reads as that
        literal for the question's type, and the change code when it reads another."""
        kind = self._type(field)
        if isinstance(value, bool) and kind != "boolean":
            return ("true()" if value else "false()"), None
        number = _decimal(value) if isinstance(value, str) else None
        if kind == "calculate":
            if isinstance(value, str):
                return self._string(value), None if number is None else "literal_type"
            return number_xpath(value) if is_number(value) else "''", None
        if (op not in ("==", "!=") and kind not in _ORDERED) or kind in _INCOMPARABLE:
            return self._string(str(value)), "no_xpath"
        if kind == "boolean":
            if isinstance(value, bool):
                return ("'yes'" if value else "'no'"), None
            return self._string(str(value)), "no_xpath"
        if kind in NUMBER_TYPES:
            if is_number(value):
                return number_xpath(value), None
            return self._string(str(value)), "no_xpath" if number is None else "literal_type"
        if is_number(value):
            return number_xpath(value), "literal_type"
        return self._string(str(value)), None

    # values: the import's _Translator.value

    def value(self, node: Node, top: bool = False) -> str:
        if isinstance(node, Reference):
            return self._ref(node.field)
        if isinstance(node, Literal):
            return self._literal_value(node.value)
        if isinstance(node, Arithmetic):
            left, right = self.value(node.left), self.value(node.right)
            text = f"{left} {_XPATH_OPS.get(node.op, node.op)} {right}"
            return text if top else f"({text})"
        if isinstance(node, Negate):
            if isinstance(node.operand, Literal) and is_number(node.operand.value):
                self.change("negative")
            inner = self.value(node.operand)
            if isinstance(node.operand, Negate):
                inner = f"({inner})"
            return f"-{inner}" if top else f"(-{inner})"
        if isinstance(node, Count):
            word = "count-selected" if self._type(node.field) == "multiple_choice" else "count"
            return f"{word}({self._ref(node.field)})"
        if isinstance(node, Selected):
            return f"selected({self._ref(node.field)}, {self._string(node.value)})"
        if isinstance(node, Regex):
            return f"regex({self.value(node.operand)}, {self._string(node.source)})"
        if isinstance(node, Call):
            return self._call(node)
        text = self.condition(node)[0]
        return text if top or isinstance(node, Not) else f"({text})"

    def _call(self, node: Call) -> str:
        if node.function == "if":
            condition, then, otherwise = node.args
            test = self.condition(condition)[0]
            return f"if({test}, {self.value(then)}, {self.value(otherwise)})"
        if node.function == "position":
            return "position(..)"
        name = _XPATH_FUNCTIONS.get(node.function, node.function)
        return f"{name}({', '.join(self.value(arg) for arg in node.args)})"

    def _literal_value(self, value: object) -> str:
        if value is None:
            self.change("null_value")
            return "''"
        if isinstance(value, bool):
            return "true()" if value else "false()"
        if is_number(value):
            return number_xpath(value)
        return self._string(str(value))

    def _string(self, text: str) -> str:
        """A quoted string: XPath has no escapes, so a text with both quotes has no spelling."""
        if "'" not in text:
            return f"'{text}'"
        if '"' not in text:
            return f'"{text}"'
        self.change("quotes")
        return "'" + text.replace("'", "\u02bc") + "'"  # pyxform reads ’ as '

    def _ref(self, field: str) -> str:
        question = self.questions.get(field)
        return f"${{{field if question is None else question.name}}}"

    def _type(self, field: str) -> str:
        question = self.questions.get(field)
        return "" if question is None else question.type


def _kind(node: Node) -> str:
    """The kind the import's parser gives the written node (its _Node.kind)."""
    if isinstance(node, Reference):
        return "ref"
    if isinstance(node, Literal):
        if isinstance(node.value, bool):
            return "call"
        return "number" if is_number(node.value) else "string"
    if isinstance(node, Count | Selected | Regex | Call | Not):
        return "call"
    return "other"


def _number_literal(node: Node) -> str | None:
    if isinstance(node, Literal) and is_number(node.value):
        return number_xpath(node.value)
    return None


def number_xpath(value: int | float) -> str:
    """A number as XPath writes it: no exponent, no trailing zeros (``1e-05`` is
    ``0.00001``)."""
    return _number_text(Decimal(repr(value)))
