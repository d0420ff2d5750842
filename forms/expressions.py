"""The expression language of form definitions (``required``, ``relevant``, ``constraint``,
``problem.when`` and ``calculation``).

Definitions are configuration written by county admins and shipped to every phone, so their
conditions are parsed by a hand-written tokenizer and recursive-descent parser into a small
tree that can only read answers: nothing here reaches ``eval``, ``exec`` or ``compile``.
The semantics are written down in ``forms/README.md``; the JavaScript evaluator of the PWA
follows the same rules and both pass ``tests/vectors/forms_validation.json``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from forms.regex import RegexError, compile_regex

Answers = Mapping[str, object]

KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
#: the functions a field id may not be named after (those of the first definitions); the
#: functions added since are told from fields by the ``(`` that follows them
FUNCTIONS = frozenset({"selected", "count"})
#: every function and how many arguments it takes (lowest, highest)
ARITIES: dict[str, tuple[int, int]] = {
    "selected": (2, 2),
    "count": (1, 1),
    "count_selected": (1, 1),
    "string_length": (1, 1),
    "regex": (2, 2),
    "today": (0, 0),
    "now": (0, 0),
    "if": (3, 3),
    "concat": (1, 32),
    "coalesce": (2, 32),
    "int": (1, 1),
    "number": (1, 1),
    "round": (1, 2),
    "sum": (1, 1),
    "position": (0, 0),
    "true": (0, 0),
    "false": (0, 0),
}
COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
ARITHMETIC = ("+", "-", "*", "/", "%")
#: integral results up to this magnitude are integers (JavaScript's safe integers)
_MAX_EXACT = 2**53
# Nesting deeper than this is no condition a person writes; the limit keeps the recursive
# parser far from Python's recursion limit whatever text it is given.
MAX_DEPTH = 32
MAX_DIGITS = 15

_DIGITS = frozenset("0123456789")
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_REST = _NAME_START | _DIGITS
_WHITESPACE = frozenset(" \t\r\n")
_PUNCTUATION = frozenset("()[],+-*/%")
_ESCAPABLE = frozenset("\\'\"")
_LITERAL_WORDS: dict[str, object] = {"true": True, "false": False, "null": None}


class ExpressionError(ValueError):
    """A condition that does not parse; ``position`` is the 0-based character offset."""

    def __init__(self, message: str, position: int, expression: str) -> None:
        super().__init__(f"{message} at position {position}")
        self.message = message
        self.position = position
        self.expression = expression


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "string", "name", "op", one of "()[],+-*/%", or "end"
    value: object
    position: int


def tokenize(text: str) -> list[Token]:
    """Split a condition into tokens, ending with an ``end`` token."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in _WHITESPACE:
            i += 1
        elif char in _PUNCTUATION:
            tokens.append(Token(char, char, i))
            i += 1
        elif text.startswith(COMPARISONS, i):
            op = next(op for op in COMPARISONS if text.startswith(op, i))
            tokens.append(Token("op", op, i))
            i += len(op)
        elif char in "'\"":
            value, end = _read_string(text, i)
            tokens.append(Token("string", value, i))
            i = end
        elif char in _DIGITS:
            number, end = _read_number(text, i)
            tokens.append(Token("number", number, i))
            i = end
        elif char in _NAME_START:
            end = i + 1
            while end < len(text) and text[end] in _NAME_REST:
                end += 1
            tokens.append(Token("name", text[i:end], i))
            i = end
        else:
            raise ExpressionError(f"unexpected character {char!r}", i, text)
    tokens.append(Token("end", None, len(text)))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    """The value of the quoted string at ``start`` and the offset just past its closing quote."""
    quote = text[start]
    chars: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == quote:
            return "".join(chars), i + 1
        if char == "\\":
            if text[i + 1 : i + 2] not in _ESCAPABLE:
                raise ExpressionError("unknown escape in string", i, text)
            chars.append(text[i + 1])
            i += 2
        else:
            chars.append(char)
            i += 1
    raise ExpressionError("unterminated string", start, text)


def _read_number(text: str, start: int) -> tuple[int | float, int]:
    """The number at ``start`` (``-?digits(.digits)?``) and the offset just past it.

    At most 15 digits either side of the point, so Python and JavaScript read every literal
    as the same number.
    """
    whole_end = _skip_digits(text, start + 1)
    end = whole_end
    if text[end : end + 1] == "." and text[end + 1 : end + 2] in _DIGITS:
        end = _skip_digits(text, end + 1)
    sign = 1 if text[start] == "-" else 0
    digits_before = whole_end - start - sign
    digits_after = max(end - whole_end - 1, 0)
    if digits_before > MAX_DIGITS or digits_after > MAX_DIGITS:
        raise ExpressionError(f"number with more than {MAX_DIGITS} digits", start, text)
    literal = text[start:end]
    return (float(literal) if end > whole_end else int(literal)), end


def _skip_digits(text: str, i: int) -> int:
    while i < len(text) and text[i] in _DIGITS:
        i += 1
    return i


# The tree. Every node is immutable, so a parsed expression can be cached and shared.


@dataclass(frozen=True)
class Context:
    """What an expression reads: the answers by field id, the clock and the repeat position.

    ``clock`` is the local date and time of the visit, ``YYYY-MM-DDTHH:MM:SS`` (``today()`` is
    its date, ``now()`` all of it); without one both are null. ``position`` is the 1-based
    index of the repeat entry being evaluated (``position()``), null outside a repeat. Inside
    a repeat entry the caller passes the entry's own answers over the form's; outside, a
    repeat's child field maps to the list of its values across entries.
    """

    answers: Answers
    clock: str | None = None
    position: int | None = None


class Node:
    """A node of a parsed expression."""

    def evaluate(self, context: Context) -> object:
        raise NotImplementedError

    def children(self) -> tuple[Node, ...]:
        return ()


@dataclass(frozen=True)
class Literal(Node):
    value: object

    def evaluate(self, context: Context) -> object:
        return self.value


@dataclass(frozen=True)
class Reference(Node):
    """A field's answer; an unanswered field is null."""

    field: str

    def evaluate(self, context: Context) -> object:
        value = context.answers.get(self.field)
        return value if is_answered(value) else None


@dataclass(frozen=True)
class Selected(Node):
    """``selected(field, 'value')``: the multiple-choice answer holds the value."""

    field: str
    value: str

    def evaluate(self, context: Context) -> object:
        answer = context.answers.get(self.field)
        return isinstance(answer, list) and self.value in answer


@dataclass(frozen=True)
class Count(Node):
    """``count(field)`` and ``count_selected(field)``: the length of a list answer (the choices
    of a multiple choice, the entries of a repeat), 0 for anything else."""

    field: str

    def evaluate(self, context: Context) -> object:
        answer = context.answers.get(self.field)
        return len(answer) if isinstance(answer, list) else 0


@dataclass(frozen=True)
class Comparison(Node):
    op: str
    left: Node
    right: Node

    def evaluate(self, context: Context) -> object:
        return compare(self.op, self.left.evaluate(context), self.right.evaluate(context))

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class NullTest(Node):
    """``x == null`` / ``x != null``: the only comparisons that hold for a null value."""

    operand: Node
    is_null: bool

    def evaluate(self, context: Context) -> object:
        return (self.operand.evaluate(context) is None) == self.is_null

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Membership(Node):
    """``x in [a, b]``, which means exactly ``x == a or x == b``."""

    operand: Node
    items: tuple[object, ...]

    def evaluate(self, context: Context) -> object:
        value = self.operand.evaluate(context)
        if value is None:
            return None in self.items
        return any(item is not None and equal(value, item) for item in self.items)

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Not(Node):
    operand: Node

    def evaluate(self, context: Context) -> object:
        return not is_true(self.operand.evaluate(context))

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class And(Node):
    operands: tuple[Node, ...]

    def evaluate(self, context: Context) -> object:
        return all(is_true(operand.evaluate(context)) for operand in self.operands)

    def children(self) -> tuple[Node, ...]:
        return self.operands


@dataclass(frozen=True)
class Or(Node):
    operands: tuple[Node, ...]

    def evaluate(self, context: Context) -> object:
        return any(is_true(operand.evaluate(context)) for operand in self.operands)

    def children(self) -> tuple[Node, ...]:
        return self.operands


@dataclass(frozen=True)
class Arithmetic(Node):
    """``a + b``, ``-``, ``*``, ``/``, ``%``: numbers only; null, any other value, a division
    by zero or a result beyond the doubles give null."""

    op: str
    left: Node
    right: Node

    def evaluate(self, context: Context) -> object:
        return arithmetic(self.op, self.left.evaluate(context), self.right.evaluate(context))

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class Negate(Node):
    """Unary minus: the negated number, null for anything else."""

    operand: Node

    def evaluate(self, context: Context) -> object:
        value = self.operand.evaluate(context)
        number = _float(value) if is_number(value) else None
        return None if number is None else normalize(-number)

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Regex(Node):
    """``regex(x, 'pattern')``: the pattern (a literal, checked when parsed) is found in the
    text of ``x``; false for null and for lists."""

    operand: Node
    pattern: re.Pattern[str]
    source: str = ""  # the pattern as written, for writing the expression back (XLSForm)

    def evaluate(self, context: Context) -> object:
        text = as_text(self.operand.evaluate(context))
        return text is not None and self.pattern.search(text) is not None

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Call(Node):
    """Any other function: ``if``, ``concat``, ``coalesce``, ``int``, ``number``, ``round``,
    ``sum``, ``string_length``, ``today``, ``now``, ``position``."""

    function: str
    args: tuple[Node, ...]

    def evaluate(self, context: Context) -> object:
        if self.function == "if":
            condition, then, otherwise = self.args
            return (then if is_true(condition.evaluate(context)) else otherwise).evaluate(context)
        if self.function == "today":
            return None if context.clock is None else context.clock[:10]
        if self.function == "now":
            return context.clock
        if self.function == "position":
            return context.position
        values = [arg.evaluate(context) for arg in self.args]
        return _FUNCTIONS[self.function](*values)

    def children(self) -> tuple[Node, ...]:
        return self.args


def is_answered(value: object) -> bool:
    """Absent, null, an empty string and an empty list all mean "not answered"."""
    return not (value is None or value == "" or value == [])


def is_true(value: object) -> bool:
    """Only the boolean ``true`` counts as true: 1, "yes" and non-empty lists do not."""
    return value is True


def is_number(value: object) -> TypeGuard[int | float]:
    """JSON numbers; booleans are not numbers even though Python's bool is an int."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def normalize(number: float) -> int | float | None:
    """A computed number as both languages write it: null when not finite, an integer when
    integral (and within 2**53, where doubles are exact), so -0 is 0 and 6 / 2 is 3."""
    if not math.isfinite(number):
        return None
    if number.is_integer() and abs(number) <= _MAX_EXACT:
        return int(number)
    return number


def _float(value: int | float) -> float | None:
    """The double of a JSON number (a huge integer has none: null)."""
    try:
        return float(value)
    except OverflowError:
        return None


def arithmetic(op: str, left: object, right: object) -> int | float | None:
    """Doubles, as in JavaScript: both operands are read as doubles and the result normalized.
    ``%`` keeps the sign of the dividend (as XPath's ``mod``)."""
    if not (is_number(left) and is_number(right)):
        return None
    a, b = _float(left), _float(right)
    if a is None or b is None or (op in "/%" and b == 0):
        return None
    if op == "+":
        return normalize(a + b)
    if op == "-":
        return normalize(a - b)
    if op == "*":
        return normalize(a * b)
    if op == "/":
        return normalize(a / b)
    return normalize(math.fmod(a, b))


def equal(left: object, right: object) -> bool:
    """Equality of two non-null values: same JSON type and value (``1 == 1.0``, ``true != 1``).

    Lists and objects equal nothing; conditions look into lists with selected() and count().
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if is_number(left) and is_number(right):
        return left == right
    if isinstance(left, str) and isinstance(right, str):
        return left == right
    return False


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def compare(op: str, left: object, right: object) -> bool:
    """A comparison of two values: false whenever either is null or the types do not order.

    Numbers order numerically, strings by code point (so ISO dates order by time).
    """
    if left is None or right is None:
        return False
    if op == "==":
        return equal(left, right)
    if op == "!=":
        return not equal(left, right)
    if (is_number(left) and is_number(right)) or (isinstance(left, str) and isinstance(right, str)):
        return _ORDERINGS[op](left, right)
    return False


def as_text(value: object) -> str | None:
    """A value as text: a string itself, a number as ``format_number`` writes it (``3``,
    ``2.5``), a boolean ``true``/``false``; null, lists and objects have none."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if is_number(value):
        number = _float(value)
        if number is None or not math.isfinite(number):
            return None
        if number.is_integer():
            return str(int(number))
        return repr(number)
    return None


_NUMBER_TEXT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def as_number(value: object) -> int | float | None:
    """``number(x)``: a number itself, a boolean 1 or 0, a decimal text (``' 2.5 '``, spaces
    around it allowed) its value; anything else null."""
    if isinstance(value, bool):
        return 1 if value else 0
    if is_number(value):
        number = _float(value)
        return None if number is None else normalize(number)
    if isinstance(value, str):
        text = value.strip(" \t\r\n")
        if _NUMBER_TEXT.fullmatch(text):
            return normalize(float(text))
    return None


def _concat(*values: object) -> object:
    parts = []
    for value in values:
        text = "" if value is None else as_text(value)
        if text is None:
            return None
        parts.append(text)
    return "".join(parts)


def _coalesce(*values: object) -> object:
    return next((value for value in values if is_answered(value)), None)


def _int(value: object) -> object:
    number = as_number(value)
    return None if number is None else normalize(float(math.trunc(number)))


#: 10**n for round(x, n), written out so that both languages use the same doubles
_POWERS = tuple(10.0**n for n in range(16))


def _round(value: object, digits: object = 0) -> object:
    """Half up (toward +infinity), as XPath's round: ``round(2.5)`` is 3, ``round(-2.5)`` -2;
    ``digits`` an integer from 0 to 15, else null."""
    number = as_number(value)
    if number is None or not is_number(digits) or digits not in range(16):
        return None
    power = _POWERS[int(digits)]
    return normalize(math.floor(float(number) * power + 0.5) / power)


def _sum(value: object) -> object:
    """The sum of a list's numbers (unanswered items skipped, any other item makes it null);
    null is 0, a number itself."""
    if value is None:
        return 0
    if is_number(value):
        return as_number(value)
    if not isinstance(value, list):
        return None
    total = 0.0
    for item in value:
        if not is_answered(item):
            continue
        number = _float(item) if is_number(item) else None
        if number is None:
            return None
        total += number
    return normalize(total)


def _string_length(value: object) -> object:
    if value is None:
        return 0
    text = as_text(value)
    return None if text is None else len(text)


_FUNCTIONS: dict[str, Callable[..., object]] = {
    "concat": _concat,
    "coalesce": _coalesce,
    "int": _int,
    "number": as_number,
    "round": _round,
    "sum": _sum,
    "string_length": _string_length,
}


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its source text and its tree."""

    text: str
    root: Node

    def evaluate(
        self, answers: Answers, *, clock: str | None = None, position: int | None = None
    ) -> object:
        """The value of the expression for these answers (see ``Context``)."""
        return self.root.evaluate(Context(answers, clock, position))

    def holds(
        self, answers: Answers, *, clock: str | None = None, position: int | None = None
    ) -> bool:
        """Whether the condition is true for these answers."""
        return is_true(self.evaluate(answers, clock=clock, position=position))

    def nodes(self) -> Iterator[Node]:
        """Every node of the tree, parents before children."""
        stack = [self.root]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children()))

    def references(self) -> frozenset[str]:
        """The ids of every field the expression reads."""
        return frozenset(
            node.field for node in self.nodes() if isinstance(node, Reference | Selected | Count)
        )


TRUE = Expression("true", Literal(True))
FALSE = Expression("false", Literal(False))


@functools.lru_cache(maxsize=4096)
def parse_expression(text: str) -> Expression:
    """Parse an expression once; every form version that uses the same text shares it."""
    return Expression(text, _Parser(text).parse())


class _Parser:
    """Recursive descent over the grammar in ``forms/README.md``, one method per rule."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    def parse(self) -> Node:
        node = self.disjunction()
        token = self.peek()
        if token.kind != "end":
            raise self.error(f"unexpected {self.describe(token)}", token)
        return node

    def disjunction(self) -> Node:
        operands = [self.conjunction()]
        while self.accept_word("or"):
            operands.append(self.conjunction())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def conjunction(self) -> Node:
        operands = [self.negation()]
        while self.accept_word("and"):
            operands.append(self.negation())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def negation(self) -> Node:
        token = self.peek()
        if self.accept_word("not"):
            with self.nested(token):
                return Not(self.negation())
        return self.comparison()

    def comparison(self) -> Node:
        left = self.additive()
        token = self.peek()
        if token.kind == "op":
            self.index += 1
            right = self.additive()
            return _comparison(str(token.value), left, right)
        if self.accept_word("in"):
            return Membership(left, self.list_literal())
        return left

    def additive(self) -> Node:
        node = self.multiplicative()
        while self.peek().kind in ("+", "-"):
            op = str(self.advance().kind)
            node = Arithmetic(op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Node:
        node = self.unary()
        while self.peek().kind in ("*", "/", "%"):
            op = str(self.advance().kind)
            node = Arithmetic(op, node, self.unary())
        return node

    def unary(self) -> Node:
        token = self.peek()
        if token.kind != "-":
            return self.operand()
        self.index += 1
        if self.peek().kind == "number":
            value = self.advance().value
            assert is_number(value)
            return Literal(-value)  # a negative literal: -0 is 0, -0.0 stays a float
        with self.nested(token):
            return Negate(self.unary())

    def operand(self) -> Node:
        token = self.advance()
        if token.kind in ("number", "string"):
            return Literal(token.value)
        if token.kind == "(":
            with self.nested(token):
                node = self.disjunction()
            self.expect(")")
            return node
        if token.kind == "name":
            return self.name(token)
        raise self.error(f"expected a value, found {self.describe(token)}", token)

    def name(self, token: Token) -> Node:
        word = str(token.value)
        if word in _LITERAL_WORDS:
            if word != "null" and self.peek().kind == "(":
                self.index += 1
                self.expect(")")  # true() and false(), as XPath writes them
            return Literal(_LITERAL_WORDS[word])
        if word in KEYWORDS:
            raise self.error(f"expected a value, found '{word}'", token)
        if self.peek().kind == "(":
            return self.call(token)
        return Reference(word)

    def call(self, token: Token) -> Node:
        function = str(token.value)
        if function not in ARITIES:
            raise self.error(f"unknown function '{function}'", token)
        self.expect("(")
        if function in ("count", "count_selected"):
            field = self.field_name()
            self.expect(")")
            return Count(field)
        if function == "selected":
            field = self.field_name()
            self.expect(",")
            value = self.advance()
            if value.kind != "string":
                raise self.error("selected() needs a quoted choice value", value)
            self.expect(")")
            return Selected(field, str(value.value))
        args = self.arguments(token)
        if function == "regex":
            return self.regex(args, token)
        return Call(function, args)

    def arguments(self, token: Token) -> tuple[Node, ...]:
        """The arguments of a call up to its ``)``, as many as the function takes."""
        args: list[Node] = []
        if self.peek().kind != ")":
            with self.nested(token):
                args.append(self.disjunction())
                while self.peek().kind == ",":
                    self.index += 1
                    args.append(self.disjunction())
        self.expect(")")
        low, high = ARITIES[str(token.value)]
        if not low <= len(args) <= high:
            wanted = str(low) if low == high else f"{low} to {high}"
            raise self.error(f"{token.value}() takes {wanted} arguments", token)
        return tuple(args)

    def regex(self, args: tuple[Node, ...], token: Token) -> Node:
        """``regex(x, 'pattern')``: the pattern is a literal in the subset both languages read
        alike (``forms/README.md``), compiled once here."""
        pattern = args[1]
        if not isinstance(pattern, Literal) or not isinstance(pattern.value, str):
            raise self.error("regex() needs a quoted pattern", token)
        try:
            compiled = compile_regex(pattern.value)
        except RegexError as error:
            raise self.error(f"regex(): {error}", token) from None
        return Regex(args[0], compiled, pattern.value)

    def field_name(self) -> str:
        token = self.advance()
        if token.kind != "name" or token.value in KEYWORDS:
            raise self.error(f"expected a field id, found {self.describe(token)}", token)
        return str(token.value)

    def list_literal(self) -> tuple[object, ...]:
        self.expect("[")
        items: list[object] = []
        if self.peek().kind != "]":
            items.append(self.list_item())
            while self.peek().kind == ",":
                self.index += 1
                items.append(self.list_item())
        self.expect("]")
        return tuple(items)

    def list_item(self) -> object:
        token = self.advance()
        if token.kind in ("number", "string"):
            return token.value
        if token.kind == "name" and token.value in _LITERAL_WORDS:
            return _LITERAL_WORDS[str(token.value)]
        raise self.error(f"expected a literal in the list, found {self.describe(token)}", token)

    @contextlib.contextmanager
    def nested(self, token: Token) -> Iterator[None]:
        """Count parentheses and ``not`` around a sub-parse and refuse more than MAX_DEPTH."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nested deeper than {MAX_DEPTH}", token)
        yield
        self.depth -= 1

    def peek(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def accept_word(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "name" and token.value == word:
            self.index += 1
            return True
        return False

    def expect(self, kind: str) -> None:
        token = self.advance()
        if token.kind != kind:
            raise self.error(f"expected '{kind}', found {self.describe(token)}", token)

    def error(self, message: str, token: Token) -> ExpressionError:
        return ExpressionError(message, token.position, self.text)

    @staticmethod
    def describe(token: Token) -> str:
        if token.kind == "end":
            return "end of expression"
        if token.kind == "string":
            return "a string"
        return f"'{token.value}'"


def _comparison(op: str, left: Node, right: Node) -> Node:
    """A comparison node; against the literal null only ``==`` and ``!=`` mean anything."""
    if isinstance(right, Literal) and right.value is None and op in ("==", "!="):
        return NullTest(left, is_null=op == "==")
    if isinstance(left, Literal) and left.value is None and op in ("==", "!="):
        return NullTest(right, is_null=op == "==")
    return Comparison(op, left, right)
