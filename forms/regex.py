"""The regular expressions of ``regex()``: a subset that Python's ``re`` and JavaScript's
``RegExp`` (with the ``u`` flag) read alike, checked when an expression is parsed.

Both sides walk the pattern with the same rules (``pwa_static/js/regex.js`` is this file in
JavaScript) and rewrite the few constructs whose meaning differs between the engines: ``\\d``
``\\w`` ``\\s`` become their ASCII classes, ``.`` excludes the line terminators JavaScript
excludes, and ``$`` is the end of the text only (Python's ``$`` also matches before a final
newline). Everything else — lookaround, backreferences, named groups, flags, ``\\p{…}``,
hex and unicode escapes — is refused with a reason, and so is a group repeated without bound
that itself holds a quantifier or ``|`` (``(a+)+``), the shape that backtracks for ever.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_PATTERN = 500
MAX_REPEAT = 1000
_SYNTAX = frozenset("^$\\.*+?()[]{}|/")
_CLASS_ESCAPES = {
    "d": "0-9",
    "w": "A-Za-z0-9_",
    "s": " \\t\\n\\r\\f\\v",
}
_CONTROL_ESCAPES = frozenset("tnrfv")
_DOT = "[^\\n\\r\\u2028\\u2029]"
#: what a literal character is written as inside a class
_CLASS_SPECIAL = frozenset("\\]^-[")
_REPEAT = re.compile(r"\{([0-9]{1,4})(,([0-9]{0,4}))?\}")


class RegexError(ValueError):
    """A regex() pattern outside the subset both languages read alike."""


@dataclass
class _Group:
    complex: bool = False  # holds a quantifier or |
    start: int = 0


@dataclass
class _Walk:
    pattern: str
    out: list[str] = field(default_factory=list)
    groups: list[_Group] = field(default_factory=lambda: [_Group()])
    atom: bool = False  # the last thing written can take a quantifier
    atom_complex: bool = False  # that thing is a group holding a quantifier or |
    quantified: bool = False  # the last thing written is a quantifier


def translate(pattern: str) -> str:
    """The pattern as Python's ``re`` must read it to mean what JavaScript reads."""
    if len(pattern) > MAX_PATTERN:
        raise RegexError(f"a pattern of more than {MAX_PATTERN} characters")
    walk = _Walk(pattern)
    i = 0
    while i < len(pattern):
        i = _step(walk, i)
    if len(walk.groups) > 1:
        raise RegexError("a '(' is not closed")
    return "".join(walk.out)


def compile_regex(pattern: str) -> re.Pattern[str]:
    """The compiled pattern (ASCII ``\\b``, as JavaScript's), or RegexError."""
    try:
        return re.compile(translate(pattern), re.ASCII)
    except re.error as error:  # not expected: the walk admits only what re reads
        raise RegexError(str(error)) from None


def _step(walk: _Walk, i: int) -> int:
    """Write the construct at ``i`` and return the offset after it."""
    char = walk.pattern[i]
    if char == "\\":
        return _escape(walk, i)
    if char == "[":
        return _char_class(walk, i)
    if char == "(":
        return _open_group(walk, i)
    if char == ")":
        return _close_group(walk, i)
    if char in "*+?":
        return _quantifier(walk, i, char, 1, unbounded=char != "?")
    if char == "{":
        match = _REPEAT.match(walk.pattern, i)
        if match is None:
            raise RegexError(f"'{{' at {i} is no repetition {{n}}, {{n,}} or {{n,m}}: write \\{{")
        low, comma, high = match.group(1), match.group(2), match.group(3)
        if int(low) > MAX_REPEAT or (high and (int(high) > MAX_REPEAT or int(high) < int(low))):
            raise RegexError(f"repetition {match.group(0)} at {i}")
        return _quantifier(
            walk, i, match.group(0), match.end() - i, unbounded=bool(comma) and not high
        )
    if char in "}]":
        raise RegexError(f"a lone '{char}' at {i}: write \\{char}")
    if char == "|":
        walk.groups[-1].complex = True
        _write(walk, "|", atom=False)
    elif char == "^":
        _write(walk, "^", atom=False)
    elif char == "$":
        _write(walk, "\\Z", atom=False)
    elif char == ".":
        _write(walk, _DOT)
    else:
        _write(walk, char)
    return i + 1


def _write(walk: _Walk, text: str, *, atom: bool = True, complex_atom: bool = False) -> None:
    walk.out.append(text)
    walk.atom, walk.atom_complex, walk.quantified = atom, complex_atom, False


def _escape(walk: _Walk, i: int) -> int:
    escaped = walk.pattern[i + 1 : i + 2]
    if escaped in _CLASS_ESCAPES:
        _write(walk, f"[{_CLASS_ESCAPES[escaped]}]")
    elif escaped.lower() in _CLASS_ESCAPES:
        _write(walk, f"[^{_CLASS_ESCAPES[escaped.lower()]}]")
    elif escaped in ("b", "B"):
        _write(walk, "\\" + escaped, atom=False)
    elif escaped in _CONTROL_ESCAPES or escaped in _SYNTAX:
        _write(walk, "\\" + escaped)
    elif escaped == "-":
        _write(walk, "-")
    else:
        raise RegexError(f"the escape \\{escaped} at {i} is not supported")
    return i + 2


def _open_group(walk: _Walk, i: int) -> int:
    if walk.pattern.startswith("(?", i) and not walk.pattern.startswith("(?:", i):
        raise RegexError(f"'(?' at {i}: lookaround, named groups and flags are not supported")
    opening = "(?:" if walk.pattern.startswith("(?:", i) else "("
    walk.groups.append(_Group(start=i))
    _write(walk, opening, atom=False)
    return i + len(opening)


def _close_group(walk: _Walk, i: int) -> int:
    if len(walk.groups) == 1:
        raise RegexError(f"a ')' at {i} closes no group")
    group = walk.groups.pop()
    if group.complex:
        walk.groups[-1].complex = True
    _write(walk, ")", complex_atom=group.complex)
    return i + 1


def _quantifier(walk: _Walk, i: int, text: str, length: int, *, unbounded: bool) -> int:
    if not walk.atom:
        raise RegexError(f"'{text}' at {i} repeats nothing")
    if unbounded and walk.atom_complex:
        raise RegexError(
            f"'{text}' at {i} repeats without bound a group that itself repeats or has '|'"
        )
    walk.groups[-1].complex = True
    walk.out.append(text)
    end = i + length
    if walk.pattern[end : end + 1] == "?":  # lazy
        walk.out.append("?")
        end += 1
    walk.atom, walk.atom_complex, walk.quantified = False, False, True
    return end


def _char_class(walk: _Walk, start: int) -> int:
    """``[…]`` and ``[^…]``: characters, ranges ``a-z``, ``\\d \\w \\s`` and escaped
    characters; ``-`` is literal only first or last; ``[`` and ``]`` inside are escaped."""
    pattern = walk.pattern
    i = start + 1
    negated = pattern[i : i + 1] == "^"
    i += negated
    parts: list[str] = []
    items = 0
    while True:
        if i >= len(pattern):
            raise RegexError(f"a '[' at {start} is not closed")
        char = pattern[i]
        if char == "]":
            break
        if char == "[":
            raise RegexError(f"a '[' inside a class at {i}: write \\[")
        if pattern.startswith(("&&", "~~", "||"), i):
            raise RegexError(f"'{pattern[i : i + 2]}' inside a class at {i}")
        if char == "\\" and pattern[i + 1 : i + 2] in _CLASS_ESCAPES:
            parts.append(_CLASS_ESCAPES[pattern[i + 1]])
            i += 2
            items += 1
            continue
        low, i = _class_char(pattern, i, start)
        if pattern[i : i + 1] == "-" and pattern[i + 1 : i + 2] not in ("]", ""):
            high, i = _class_char(pattern, i + 1, start)
            if ord(high) < ord(low):
                raise RegexError(f"the range {low}-{high} in the class at {start} is reversed")
            parts.append(f"{_in_class(low)}-{_in_class(high)}")
        elif low == "-" and items and pattern[i : i + 1] != "]":
            raise RegexError(f"a '-' in the middle of the class at {start}: write \\-")
        else:
            parts.append(_in_class(low))
        items += 1
    if not items:
        raise RegexError(f"the class at {start} is empty")
    _write(walk, "[" + ("^" if negated else "") + "".join(parts) + "]")
    return i + 1


def _class_char(pattern: str, i: int, start: int) -> tuple[str, int]:
    """One character of a class (an escaped one unescaped) and the offset after it."""
    char = pattern[i : i + 1]
    if char != "\\":
        if char in ("", "["):
            raise RegexError(f"the class at {start} is not closed properly")
        return char, i + 1
    escaped = pattern[i + 1 : i + 2]
    controls = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v"}
    if escaped in controls:
        return controls[escaped], i + 2
    if escaped in _SYNTAX or escaped == "-":
        return escaped, i + 2
    raise RegexError(f"the escape \\{escaped} at {i} is not supported in a class")


def _in_class(char: str) -> str:
    controls = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f", "\v": "\\v"}
    if char in controls:
        return controls[char]
    return "\\" + char if char in _CLASS_SPECIAL else char
