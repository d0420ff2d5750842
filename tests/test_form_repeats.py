"""Repeats and the question types that came with them, as definitions (the answers are pinned
by the shared vectors in tests/vectors/forms_validation.json)."""

from __future__ import annotations

from typing import Any

from forms import parse_definition, validate_definition
from tests.test_forms import definition, field


def repeat(field_id: str, *children: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return field(field_id, "repeat", fields=list(children), **extra)


def test_a_repeat_with_fields_is_a_valid_definition() -> None:
    doc = definition(field("size", "integer"), repeat("member", field("age", "integer")))
    assert validate_definition({**doc}) == []


def test_a_repeat_inside_a_repeat_is_a_valid_definition() -> None:
    doc = definition(
        repeat(
            "member",
            field("n", "integer"),
            repeat("child", field("age", "integer"), repeat_count="n"),
        )
    )
    assert validate_definition(doc) == []


def test_repeats_nest_at_most_three_deep() -> None:
    deepest = repeat("d", repeat("c", repeat("b", field("age", "integer"))))
    assert any("at most 3 deep" in e for e in validate_definition(definition(repeat("a", deepest))))


def test_only_a_repeat_outside_any_other_is_seeded() -> None:
    doc = definition(repeat("a", repeat("b", field("age", "integer"), seed="people")))
    assert any("only a repeat outside" in e for e in validate_definition(doc))


def test_a_condition_inside_a_nested_entry_reads_its_own_and_the_enclosing_entry() -> None:
    inner = repeat("child", field("age", "integer"), field("school", relevant="age < n"))
    assert validate_definition(definition(repeat("member", field("n", "integer"), inner))) == []


def test_a_repeat_without_fields_is_refused() -> None:
    doc = definition(field("member", "repeat"))
    assert any("non-empty list of fields" in e for e in validate_definition(doc))


def test_a_seeded_repeat_has_no_repeat_count() -> None:
    doc = definition(repeat("member", field("age", "integer"), seed="people", repeat_count=2))
    assert any("no repeat_count" in e for e in validate_definition(doc))


def test_a_seed_other_than_people_is_refused() -> None:
    doc = definition(repeat("member", field("age", "integer"), seed="plots"))
    assert any("seed must be 'people'" in e for e in validate_definition(doc))


def test_a_field_of_a_seeded_repeat_is_not_called_person() -> None:
    doc = definition(repeat("member", field("person", "text"), seed="people"))
    assert any("names the entry's person" in e for e in validate_definition(doc))


def test_a_field_id_of_a_repeat_may_not_repeat_a_top_level_id() -> None:
    doc = definition(field("age", "integer"), repeat("member", field("age", "integer")))
    assert any("duplicate field id 'age'" in e for e in validate_definition(doc))


def test_repeat_count_naming_an_unknown_field_is_refused() -> None:
    doc = definition(repeat("member", field("age", "integer"), repeat_count="hh_size"))
    assert any("unknown field 'hh_size'" in e for e in validate_definition(doc))


def test_repeat_only_keys_on_another_field_are_refused() -> None:
    doc = definition(field("age", "integer", seed="people"))
    assert any("seed belongs to repeats only" in e for e in validate_definition(doc))


def test_a_repeat_takes_no_default() -> None:
    doc = definition(repeat("member", field("age", "integer"), default=[]))
    assert any("a repeat has no default" in e for e in validate_definition(doc))


def test_a_condition_inside_an_entry_reads_the_entry_fields() -> None:
    doc = definition(
        repeat("member", field("age", "integer"), field("school", relevant="age < 16"))
    )
    assert validate_definition(doc) == []


def test_outside_a_repeat_its_fields_are_lists_that_compare_with_nothing() -> None:
    doc = definition(repeat("member", field("age", "integer")), field("x", relevant="age > 3"))
    assert validate_definition(doc) != []


def test_count_reads_a_repeat_and_its_fields() -> None:
    doc = definition(
        repeat("member", field("age", "integer")),
        field("x", relevant="count(member) > 1 and count(age) > 1"),
    )
    assert validate_definition(doc) == []


def test_a_choice_named_twice_under_one_filter_is_refused() -> None:
    label = {"zh-CN": "甲", "en": "A"}
    choices = [{"value": "a", "label": label, "filter": {"town": "n"}}] * 2
    doc = definition(field("village", "single_choice", choices=choices))
    assert any("unique for its filter" in e for e in validate_definition(doc))


def test_a_form_counts_the_questions_inside_repeats_but_not_the_repeat() -> None:
    inner = repeat("child", field("school", "text"))
    doc = definition(
        field("size", "integer"), repeat("member", field("age"), field("job", "text"), inner)
    )
    (form,) = parse_definition(doc)
    assert form.field_count() == 4
