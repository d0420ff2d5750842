"""The shared vectors keep the Python sync core and the PWA's JavaScript identical.

``tests/vectors/*.json`` hold inputs with the outputs Python computes; the Node tests in
``tests/js/`` replay them against ``pwa_static/js``. Here the vectors are checked against
Python (and against their generator, so a change to ``sync/`` cannot leave them stale), and
Node runs the JavaScript half. Without ``node`` that half skips, except in CI, where it fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import subprocess
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from forms import MESSAGES, describe, parse_expression
from forms.answers import format_number
from forms.expressions import ExpressionError
from forms.regex import RegexError, compile_regex, translate
from sync.hlc import ZERO, Clock, HLCError, format_hlc, is_hlc, parse_hlc
from sync.merge import CONFLICT_NAMESPACE, FieldWrite, conflict_for, heads, merge_write, resolve
from sync.records import RECORD_TYPES

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "tests" / "vectors"
IN_CI = os.environ.get("CI") == "true"


def load_generator() -> ModuleType:
    """tests/vectors is data, not a package: load the generator from its file."""
    path = VECTORS / "make_merge_vectors.py"
    spec = importlib.util.spec_from_file_location("make_merge_vectors", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GENERATOR = load_generator()
MERGE = json.loads(GENERATOR.MERGE_FILE.read_text(encoding="utf-8"))
HLC = json.loads(GENERATOR.HLC_FILE.read_text(encoding="utf-8"))
REGENERATE = "stale: run `python tests/vectors/make_merge_vectors.py` and commit the result"


def test_merge_vectors_are_what_the_generator_writes() -> None:
    written = GENERATOR.MERGE_FILE.read_text(encoding="utf-8")
    assert written == GENERATOR.render(GENERATOR.merge_vectors()), REGENERATE


def test_hlc_vectors_are_what_the_generator_writes() -> None:
    written = GENERATOR.HLC_FILE.read_text(encoding="utf-8")
    assert written == GENERATOR.render(GENERATOR.hlc_vectors()), REGENERATE


def test_merge_vectors_hold_at_least_60_cases() -> None:
    assert len(MERGE["cases"]) >= 60


def test_field_rules_are_those_of_the_record_types() -> None:
    rules = {
        f"{type_name}.{field}": rule
        for type_name, record_type in RECORD_TYPES.items()
        for field, rule in record_type.rules.items()
    }
    assert MERGE["field_rules"] == rules


def test_uuid5_vectors_are_python_uuid5() -> None:
    assert MERGE["conflict_namespace"] == str(CONFLICT_NAMESPACE)
    for case in MERGE["uuid5"]:
        assert str(uuid.uuid5(CONFLICT_NAMESPACE, case["name"])) == case["uuid"]


@pytest.mark.parametrize("case", MERGE["cases"], ids=lambda case: case["name"])
def test_merge_case_is_what_sync_merge_computes(case: dict[str, Any]) -> None:
    rule = case["rule"]
    writes = [FieldWrite(**write) for write in case["writes"]]
    assert [[j for j, o in enumerate(writes) if w.saw(o)] for w in writes] == case["saw"]
    final = heads(writes)
    assert [w.op_id for w in final] == case["heads"]
    value, credited = resolve(rule, final)
    assert {"value": value, "credited": credited.op_id} == case["resolve"]
    assert _conflict(conflict_for(rule, final, "open")) == case["conflict"]
    for index, (write, step) in enumerate(zip(writes, case["steps"], strict=True)):
        outcome = merge_write(rule, writes[:index], write)
        assert [_conflict(c) for c in outcome.upsert] == step["upsert"], f"step {index}"
        assert (outcome.value, outcome.retire) == (step["value"], step["retire"]), f"step {index}"


def _conflict(conflict: Any) -> dict[str, Any] | None:
    return None if conflict is None else {"id": conflict.id, **conflict.data()}


def test_hlc_format_and_parse_vectors() -> None:
    assert HLC["zero"] == ZERO
    for case in HLC["format"]:
        assert format_hlc(case["ms"], case["counter"]) == case["hlc"]
    for case in HLC["format_errors"]:
        with pytest.raises(HLCError):
            format_hlc(case["ms"], case["counter"])
    for case in HLC["parse"]:
        assert parse_hlc(case["hlc"]) == (case["ms"], case["counter"])
    for value in HLC["not_hlc"]:
        assert not is_hlc(value)
        with pytest.raises(HLCError):
            parse_hlc(value)


def test_hlc_string_order_is_time_order() -> None:
    for case in HLC["compare"]:
        a, b = case["a"], case["b"]
        time_order = (parse_hlc(a) > parse_hlc(b)) - (parse_hlc(a) < parse_hlc(b))
        assert time_order == case["order"], (a, b)


@pytest.mark.parametrize("case", HLC["clocks"], ids=lambda case: case["name"])
def test_hlc_clock_vectors(case: dict[str, Any]) -> None:
    wall = [0]
    clock = Clock(physical=lambda: wall[0], last=case["last"])
    for step in case["steps"]:
        wall[0] = step["physical"]
        remote = step["observe"]
        if step.get("error"):
            with pytest.raises(HLCError):
                clock.observe(remote)
        else:
            assert (clock.now() if remote is None else clock.observe(remote)) == step["result"]
        assert clock.last == step["last"]


def node() -> str:
    """The node executable; without one the JavaScript half skips, but never in CI."""
    found = shutil.which("node")
    if found is None:
        reason = "node is not installed, so the JavaScript tests (tests/js) did not run"
        if IN_CI:
            pytest.fail(f"{reason}; CI=true needs them")
        print(reason)
        pytest.skip(reason)
    return found


def test_node_passes_the_javascript_tests() -> None:
    result = subprocess.run(
        [node(), "--test", "tests/js/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"node --test failed:\n{result.stdout}\n{result.stderr}"


# Asks forms.js what the Python forms package answers about wording, bounds and error
# positions, which the shared forms vectors do not pin.
_ASK_FORMS_JS = """
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const forms = await import(pathToFileURL(process.argv[1]));
const question = JSON.parse(readFileSync(0, "utf8"));
const or = (work, fallback) => {
  try {
    return work();
  } catch (error) {
    return fallback(error);
  }
};
const describe = ([code, lang]) => or(() => forms.describe(code, lang), () => null);
const position = (text) => or(() => forms.parseExpression(text) && -1, (error) => error.position);
console.log(JSON.stringify({
  messages: forms.MESSAGES,
  numbers: question.numbers.map(forms.formatNumber),
  describe: question.codes.map(describe),
  positions: question.expressions.map(position),
}));
"""


def _position(text: str) -> int:
    try:
        parse_expression(text)
    except ExpressionError as error:
        return error.position
    return -1


def test_forms_js_words_codes_bounds_and_errors_as_python() -> None:
    numbers = [0, 2, 2.0, -3, 0.5, 1e-05, 0.0001, 123.25, -1.5e-07, 1e21, 0.1 + 0.2, 1e-300]
    bounds = ("too_small", "too_large", "too_long")
    bounded = [f"{key}:{argument}" for key in bounds for argument in ("5", "0.5", "$&")]
    plain = [code for code, text in MESSAGES["en"].items() if "{0}" not in text]
    unknown = ["too_small", "wrong_type:colour", "required:1", "nonsense", "toString", ""]
    codes = [*plain, *bounded, *unknown]
    langs = ["zh-CN", "en", "en-US", "EN", "fr", "zh-TW", ""]
    pairs = [[code, lang] for code in codes for lang in langs]
    expressions = [
        *("a == 1", "😀", "a == 😀", "'😀' == x y", "a and", "'abc", "x == '\\q'", "f(x)"),
        *("(" * 33 + "a" + ")" * 33, "x == 1234567890123456", "a in [b]", "a == 1 == 2"),
    ]
    question = {"numbers": numbers, "codes": pairs, "expressions": expressions}
    result = subprocess.run(
        [node(), "--input-type=module", "-e", _ASK_FORMS_JS, str(ROOT / "pwa_static/js/forms.js")],
        input=json.dumps(question),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["messages"] == MESSAGES
    assert answer["numbers"] == [format_number(n) for n in numbers]
    assert answer["describe"] == [_describe(code, lang) for code, lang in pairs]
    assert answer["positions"] == [_position(text) for text in expressions]


def _describe(code: str, lang: str) -> str | None:
    try:
        return describe(code, lang)
    except ValueError:
        return None


REGEX_JS = ROOT / "pwa_static" / "js" / "regex.js"
EXPRESSIONS_JS = ROOT / "pwa_static" / "js" / "expressions.js"
_IMPORTS = """
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
"""
_REGEX_JS = """
const [modulePath] = process.argv.slice(1);
const { compileRegex, translateRegex, RegexError } = await import(pathToFileURL(modulePath));
const [patterns, texts] = JSON.parse(readFileSync(0, "utf8"));
console.log(JSON.stringify(patterns.map((pattern) => {
  try {
    const compiled = compileRegex(pattern);
    return [translateRegex(pattern), texts.map((text) => compiled.test(text))];
  } catch (error) {
    if (error instanceof RegexError) return null;
    throw error;
  }
})));
"""
_REGEX_PIECES = [*"ab\\dDwsSb.^$*+?(){}[]|-,09:z走😀", "(?:", "(?=", "{2}", "{1,3}", "{2,}"]
_REGEX_PIECES += ["\\-", "\\.", "\\[", "\\]", "\\1", "a-z", "[^"]
_REGEX_TEXTS = ["", "a", "ab", "a\n", "1", "走", "😀", "-", "a-b", "ab12", " ", "\n", "9:", "z,"]


def test_regex_js_accepts_writes_and_matches_as_python_on_random_patterns() -> None:
    """regex() patterns are checked on both sides by a port of one walk: thousands of random
    patterns are refused alike, or translated alike and match the same texts."""
    rng = random.Random(15)
    patterns = sorted(
        {"".join(rng.choice(_REGEX_PIECES) for _ in range(rng.randint(1, 8))) for _ in range(3000)}
    )
    result = subprocess.run(
        [node(), "--input-type=module", "-e", _IMPORTS + _REGEX_JS, str(REGEX_JS)],
        input=json.dumps([patterns, _REGEX_TEXTS]),
        capture_output=True,
        text=True,
        check=True,
    )
    expected = []
    for pattern in patterns:
        try:
            compiled = compile_regex(pattern)
        except RegexError:
            expected.append(None)
            continue
        matches = [compiled.search(text) is not None for text in _REGEX_TEXTS]
        expected.append([translate(pattern).replace("\\Z", "$"), matches])
    assert json.loads(result.stdout) == expected
    assert sum(item is not None for item in expected) > 300  # not only refusals


_EVALUATE_JS = """
const [modulePath] = process.argv.slice(1);
const { parseExpression } = await import(pathToFileURL(modulePath));
const [texts, contexts] = JSON.parse(readFileSync(0, "utf8"));
console.log(JSON.stringify(texts.map((text) => contexts.map(({ answers, clock, position }) =>
  parseExpression(text).evaluate(answers, { clock, position })))));
"""
_NUMBERS = ["a", "b", "0", "1", "2.5", "0.1", "-3", "7", "1000000", "position()", "count(k)"]
_NUMBERS += ["string_length(t)", "sum(xs)", "number(' 2.5 ')", "n"]
_TEXTS = ["t", "'a'", "'12'", "''", "today()", "now()", "n"]
_CONDITIONS = ["f", "true", "false", "selected(k, 'x')", "n"]
_CONTEXTS = [
    {"answers": {"a": 6, "b": 4, "t": "走访😀", "k": ["x", "y"], "f": True, "xs": [1, 2.5, None]},
     "clock": "2026-05-01T14:30:00", "position": 2},
    {"answers": {"a": 0.1, "b": 0, "t": "", "k": [], "f": False, "xs": [0.2, "x"], "n": None},
     "clock": None, "position": None},
    {"answers": {"a": -7.5, "b": 1e300, "t": "13800138000", "xs": 3, "k": "x"},
     "clock": "2026-12-31T23:59:59", "position": 1},
    {"answers": {"a": 3, "b": -2, "t": "12.5", "k": ["y"], "f": True, "xs": [0.1, 0.2, 0.3]},
     "clock": "2026-01-01T00:00:00", "position": 3},
]  # fmt: skip


def _number(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.3:
        return rng.choice(_NUMBERS)
    x, y = _number(rng, depth - 1), _number(rng, depth - 1)
    return rng.choice(
        [
            f"({x} {rng.choice('+-*/%')} {y})",
            f"(-{x})",
            f"round({x})",
            f"round({x}, {rng.randrange(4)})",
            f"int({x})",
            f"number({_text(rng, depth - 1)})",
            f"if({_condition(rng, depth - 1)}, {x}, {y})",
            f"coalesce(n, {x})",
        ]
    )


def _text(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.4:
        return rng.choice(_TEXTS)
    value = rng.choice([_number, _text, _condition])(rng, depth - 1)
    return rng.choice([f"concat({_text(rng, depth - 1)}, {value})", f"coalesce(n, {value})"])


def _condition(rng: random.Random, depth: int) -> str:
    if depth == 0 or rng.random() < 0.2:
        return rng.choice(_CONDITIONS)
    comparison = rng.choice(["==", "!=", "<", "<=", ">", ">="])
    return rng.choice(
        [
            f"({_number(rng, depth - 1)} {comparison} {_number(rng, depth - 1)})",
            f"({_text(rng, depth - 1)} {comparison} {_text(rng, depth - 1)})",
            f"({_condition(rng, depth - 1)} {rng.choice(['and', 'or'])} "
            f"{_condition(rng, depth - 1)})",
            f"(not {_condition(rng, depth - 1)})",
            f"regex({rng.choice([_number, _text])(rng, depth - 1)}, '^-?[0-9]+([.][0-9]+)?$')",
        ]
    )


def _random_expression(rng: random.Random, depth: int) -> str:
    return rng.choice([_number, _text, _condition])(rng, depth)


def _same(python: Any, javascript: Any) -> bool:
    """Equal JSON values of the same kind (Python's True == 1 is no match)."""
    if isinstance(python, bool) or isinstance(javascript, bool):
        return python is javascript
    if isinstance(python, list) and isinstance(javascript, list):
        return len(python) == len(javascript) and all(map(_same, python, javascript))
    return (
        type(python) in (int, float)
        and type(javascript) in (int, float)
        and (python == javascript)
        or python == javascript
    )


def test_expressions_evaluate_alike_in_javascript_on_random_expressions() -> None:
    """Beyond the vectors: thousands of random expressions over awkward answers (0.1, -7.5,
    1e300, text that looks like a number, lists, null) give the same value on both sides."""
    rng = random.Random(15)
    texts = sorted({_random_expression(rng, 4) for _ in range(3000)})
    result = subprocess.run(
        [node(), "--input-type=module", "-e", _IMPORTS + _EVALUATE_JS, str(EXPRESSIONS_JS)],
        input=json.dumps([texts, _CONTEXTS]),
        capture_output=True,
        text=True,
        check=True,
    )
    differ = []
    for text, javascript in zip(texts, json.loads(result.stdout), strict=True):
        expression = parse_expression(text)
        for context, js_value in zip(_CONTEXTS, javascript, strict=True):
            value = expression.evaluate(
                context["answers"], clock=context["clock"], position=context["position"]
            )
            if not _same(value, js_value):
                differ.append((text, context["answers"], value, js_value))
    assert differ == []
