"""The condition language of form definitions (``required``, ``relevant``, ``problem.when``).

Definitions are configuration written by county admins and shipped to every phone, so their
conditions are parsed by a hand-written tokenizer and recursive-descent parser into a small
tree that can only read answers: nothing here reaches ``eval``, ``exec`` or ``compile``.
The semantics are written down in ``forms/README.md``; the JavaScript evaluator of the PWA
follows the same rules and both pass ``tests/vectors/forms_validation.json``.
"""

from __future__ import annotations

import contextlib
import functools
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

Answers = Mapping[str, object]

KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
FUNCTIONS = frozenset({"selected", "count"})
COMPARISONS = ("==", "!=", "<=", ">=", "<", ">")
# Nesting deeper than this is no condition a person writes; the limit keeps the recursive
# parser far from Python's recursion limit whatever text it is given.
MAX_DEPTH = 32
MAX_DIGITS = 15

_DIGITS = frozenset("0123456789")
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_REST = _NAME_START | _DIGITS
_WHITESPACE = frozenset(" \t\r\n")
_PUNCTUATION = frozenset("()[],")
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
    kind: str  # "number", "string", "name", "op", one of "()[],", or "end"
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
        elif char in _DIGITS or (char == "-" and text[i + 1 : i + 2] in _DIGITS):
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


class Node:
    """A node of a parsed condition."""

    def evaluate(self, answers: Answers) -> object:
        raise NotImplementedError

    def children(self) -> tuple[Node, ...]:
        return ()


@dataclass(frozen=True)
class Literal(Node):
    value: object

    def evaluate(self, answers: Answers) -> object:
        return self.value


@dataclass(frozen=True)
class Reference(Node):
    """A field's answer; an unanswered field is null."""

    field: str

    def evaluate(self, answers: Answers) -> object:
        value = answers.get(self.field)
        return value if is_answered(value) else None


@dataclass(frozen=True)
class Selected(Node):
    """``selected(field, 'value')``: the multiple-choice answer holds the value."""

    field: str
    value: str

    def evaluate(self, answers: Answers) -> object:
        answer = answers.get(self.field)
        return isinstance(answer, list) and self.value in answer


@dataclass(frozen=True)
class Count(Node):
    """``count(field)``: the length of a list answer, 0 for anything else."""

    field: str

    def evaluate(self, answers: Answers) -> object:
        answer = answers.get(self.field)
        return len(answer) if isinstance(answer, list) else 0


@dataclass(frozen=True)
class Comparison(Node):
    op: str
    left: Node
    right: Node

    def evaluate(self, answers: Answers) -> object:
        return compare(self.op, self.left.evaluate(answers), self.right.evaluate(answers))

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True)
class NullTest(Node):
    """``x == null`` / ``x != null``: the only comparisons that hold for a null value."""

    operand: Node
    is_null: bool

    def evaluate(self, answers: Answers) -> object:
        return (self.operand.evaluate(answers) is None) == self.is_null

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Membership(Node):
    """``x in [a, b]``, which means exactly ``x == a or x == b``."""

    operand: Node
    items: tuple[object, ...]

    def evaluate(self, answers: Answers) -> object:
        value = self.operand.evaluate(answers)
        if value is None:
            return None in self.items
        return any(item is not None and equal(value, item) for item in self.items)

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class Not(Node):
    operand: Node

    def evaluate(self, answers: Answers) -> object:
        return not is_true(self.operand.evaluate(answers))

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True)
class And(Node):
    operands: tuple[Node, ...]

    def evaluate(self, answers: Answers) -> object:
        return all(is_true(operand.evaluate(answers)) for operand in self.operands)

    def children(self) -> tuple[Node, ...]:
        return self.operands


@dataclass(frozen=True)
class Or(Node):
    operands: tuple[Node, ...]

    def evaluate(self, answers: Answers) -> object:
        return any(is_true(operand.evaluate(answers)) for operand in self.operands)

    def children(self) -> tuple[Node, ...]:
        return self.operands


def is_answered(value: object) -> bool:
    """Absent, null, an empty string and an empty list all mean "not answered"."""
    return not (value is None or value == "" or value == [])


def is_true(value: object) -> bool:
    """Only the boolean ``true`` counts as true: 1, "yes" and non-empty lists do not."""
    return value is True


def is_number(value: object) -> TypeGuard[int | float]:
    """JSON numbers; booleans are not numbers even though Python's bool is an int."""
    return isinstance(value, int | float) and not isinstance(value, bool)


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


@dataclass(frozen=True)
class Expression:
    """A parsed condition: its source text and its tree."""

    text: str
    root: Node

    def evaluate(self, answers: Answers) -> object:
        """The value of the expression for these answers (normally a boolean)."""
        return self.root.evaluate(answers)

    def holds(self, answers: Answers) -> bool:
        """Whether the condition is true for these answers."""
        return is_true(self.root.evaluate(answers))

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
    """Parse a condition once; every form version that uses the same text shares the result."""
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
        left = self.operand()
        token = self.peek()
        if token.kind == "op":
            self.index += 1
            right = self.operand()
            return _comparison(str(token.value), left, right)
        if self.accept_word("in"):
            return Membership(left, self.list_literal())
        return left

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
            return Literal(_LITERAL_WORDS[word])
        if word in KEYWORDS:
            raise self.error(f"expected a value, found '{word}'", token)
        if self.peek().kind == "(":
            return self.call(token)
        return Reference(word)

    def call(self, token: Token) -> Node:
        function = str(token.value)
        if function not in FUNCTIONS:
            raise self.error(f"unknown function '{function}'", token)
        self.expect("(")
        field = self.field_name()
        if function == "count":
            self.expect(")")
            return Count(field)
        self.expect(",")
        value = self.advance()
        if value.kind != "string":
            raise self.error("selected() needs a quoted choice value", value)
        self.expect(")")
        return Selected(field, str(value.value))

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
