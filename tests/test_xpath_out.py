"""Expressions written back as XLSForm XPath (forms/xpath_out.py) are read by the import
(forms/xlsform.py) as the same parsed tree, or say why not (forms/README.md, "Download back
as XLSForm"): a property test over every expression of the shared vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forms.expressions import Count, ExpressionError, Node, Selected, parse_expression
from forms.xlsform import from_xpath
from forms.xpath_out import CHANGES, Question, condition_xpath, value_xpath

VECTORS = json.loads((Path(__file__).parent / "vectors" / "forms_validation.json").read_text())
#: changes after which the import refuses the expression
REFUSED = {"not_a_condition", "quotes", "no_xpath"}
PLAIN_TYPES = ["calculate", "text", "number", "integer", "date", "boolean", "single_choice"]


def parses(text: str) -> bool:
    try:
        parse_expression(text)
    except ExpressionError:
        return False
    return True


EXPRESSIONS = sorted(
    {case["expression"] for case in VECTORS if "expression" in case and parses(case["expression"])}
)


def fields_of(root: Node) -> tuple[set[str], set[str]]:
    """The fields an expression reads, and those it reads as lists (selected, count)."""
    plain: set[str] = set()
    lists: set[str] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, Selected | Count):
            lists.add(node.field)
        elif hasattr(node, "field"):
            plain.add(node.field)
        stack.extend(node.children())
    return plain - lists, lists


def environment(text: str, kind: str) -> dict[str, Question]:
    plain, lists = fields_of(parse_expression(text).root)
    questions = {name: Question(name, kind) for name in plain}
    questions.update({name: Question(name, "multiple_choice") for name in lists})
    return questions


def read_back(xpath: str, questions: dict[str, Question], *, condition: bool) -> Node:
    known = {q.name: (ident, q.type) for ident, q in questions.items()}
    return parse_expression(from_xpath(xpath, known, condition=condition)).root


def test_the_vectors_hold_many_expressions_to_write_back():
    assert len(EXPRESSIONS) > 100


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(EXPRESSIONS), st.sampled_from(PLAIN_TYPES))
def test_a_value_written_as_xpath_reads_back_as_the_same_tree_or_names_why_not(text, kind):
    questions = environment(text, kind)
    written = value_xpath(text, questions)
    assert set(written.changes) <= set(CHANGES)
    if not written.changes:
        assert read_back(written.text, questions, condition=False) == parse_expression(text).root
    elif not REFUSED & set(written.changes):
        read_back(written.text, questions, condition=False)  # the same meaning, spelt otherwise


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(EXPRESSIONS), st.sampled_from(PLAIN_TYPES))
def test_a_condition_written_as_xpath_reads_back_as_the_same_tree_or_names_why_not(text, kind):
    questions = environment(text, kind)
    written = condition_xpath(text, questions)
    assert set(written.changes) <= set(CHANGES)
    if not written.changes:
        assert read_back(written.text, questions, condition=True) == parse_expression(text).root


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_every_vector_expression_as_a_calculation_over_calculations(text):
    questions = environment(text, "calculate")
    written = value_xpath(text, questions)
    if not written.changes:
        assert read_back(written.text, questions, condition=False) == parse_expression(text).root


def flat(fields: list[dict]) -> list[dict]:
    return [g for f in fields for g in (f, *flat(f.get("fields", [])))]


def form_expressions() -> list[tuple[str, dict[str, Question], str, str]]:
    """Every expression of the vectors' forms, with the form's own question types: (text,
    questions, what it is, the field it belongs to)."""
    found = []
    for case in VECTORS:
        if "form" not in case:
            continue
        fields = flat(case["form"]["fields"])
        questions = {f["id"]: Question(f.get("name", f["id"]), f["type"]) for f in fields}
        for field in fields:
            texts = {key: field.get(key) for key in ("relevant", "required", "constraint")}
            texts["calculation"] = field.get("calculation")
            texts["when"] = (field.get("problem") or {}).get("when")
            for key, text in texts.items():
                if isinstance(text, str) and parses(text):
                    found.append((text, questions, key, field["id"]))
    return found


FORM_EXPRESSIONS = form_expressions()


@pytest.mark.parametrize(("text", "questions", "key", "field"), FORM_EXPRESSIONS)
def test_an_expression_of_a_vector_form_reads_back_as_the_same_tree_or_names_why_not(
    text, questions, key, field
):
    current = field if key == "constraint" else None
    condition = key != "calculation"
    written = (
        condition_xpath(text, questions, current) if condition else value_xpath(text, questions)
    )
    known = {q.name: (ident, q.type) for ident, q in questions.items()}
    author = None if current is None else questions[current].name
    back = parse_expression(from_xpath(written.text, known, condition=condition, current=author))
    if not written.changes:
        assert back.root == parse_expression(text).root
    assert not REFUSED & set(written.changes)


def test_the_readme_names_every_change_the_download_comments_on():
    readme = (Path(__file__).parents[1] / "forms" / "README.md").read_text(encoding="utf-8")
    section = readme.partition("### Download back as XLSForm")[2]
    assert [code for code in CHANGES if f"`{code}`" not in section] == []
