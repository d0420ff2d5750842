"""The forms package: definitions, conditions, answer validation and the shared vectors."""

from __future__ import annotations

import ast
import contextlib
import copy
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from forms import (
    DEFINITIONS,
    FIELD_TYPES,
    MESSAGES,
    DefinitionError,
    ExpressionError,
    FormRegistry,
    FormVersion,
    UnknownForm,
    calculate,
    describe,
    load_definitions,
    parse_definition,
    parse_expression,
    problems_found,
    validate_answers,
    validate_definition,
)
from tests.test_layering import MUTATION_RUNNER

FORMS_DIR = Path(__file__).resolve().parent.parent / "forms"
VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "forms_validation.json").read_text(encoding="utf-8")
)
FORM_CASES = [case for case in VECTORS if "form" in case]
EXPRESSION_CASES = [case for case in VECTORS if "result" in case]
PARSE_ERROR_CASES = [case for case in VECTORS if case.get("parse_error")]

SIX_ONES = [
    "health_asked",
    "knowledge_shared",
    "difficulty_solved",
    "comfort_given",
    "hygiene_improved",
    "plan_updated",
]
CHECKS = {
    "food_ok": "food",
    "clothing_ok": "clothing",
    "education_ok": "education",
    "medical_ok": "medical",
    "housing_ok": "housing",
    "water_ok": "water",
}
ALL_FINE = {check: True for check in CHECKS}


@pytest.fixture(scope="module")
def registry() -> FormRegistry:
    return load_definitions()


@pytest.fixture(scope="module")
def weekly(registry: FormRegistry) -> FormVersion:
    return registry.get("weekly_visit", 1)


@pytest.fixture(scope="module")
def monthly(registry: FormRegistry) -> FormVersion:
    return registry.get("monthly_monitoring", 1)


def vector_form(version: dict[str, Any]) -> FormVersion:
    (form,) = parse_definition({"form_id": "vector_form", "versions": [version]})
    return form


def definition(*fields: dict[str, Any], version: int = 1) -> dict[str, Any]:
    return {
        "form_id": "test_form",
        "versions": [
            {"version": version, "title": {"zh-CN": "测试", "en": "Test"}, "fields": list(fields)}
        ],
    }


def field(field_id: str, field_type: str = "boolean", **extra: Any) -> dict[str, Any]:
    return {
        "id": field_id,
        "type": field_type,
        "label": {"zh-CN": field_id, "en": field_id},
        **extra,
    }


# The shared vectors: the JavaScript implementation must pass the same file.


@pytest.mark.parametrize("case", FORM_CASES, ids=[case["name"] for case in FORM_CASES])
def test_vector_answers_validate_to_the_listed_errors(case: dict[str, Any]) -> None:
    form = vector_form(case["form"])
    errors = validate_answers(form, case["answers"], case["people"], clock=case.get("clock"))
    assert errors == case["errors"]


@pytest.mark.parametrize("case", EXPRESSION_CASES, ids=[c["name"] for c in EXPRESSION_CASES])
def test_vector_expression_evaluates_to_the_listed_result(case: dict[str, Any]) -> None:
    expression = parse_expression(case["expression"])
    result = expression.evaluate(
        case["answers"], clock=case.get("clock"), position=case.get("position")
    )
    assert (type(result), result) == (type(case["result"]), case["result"])


@pytest.mark.parametrize("case", PARSE_ERROR_CASES, ids=[c["name"] for c in PARSE_ERROR_CASES])
def test_vector_expression_does_not_parse(case: dict[str, Any]) -> None:
    with pytest.raises(ExpressionError):
        parse_expression(case["expression"])


def test_vectors_cover_every_field_type_with_at_least_40_cases() -> None:
    types = {f["type"] for case in FORM_CASES for f in case["form"]["fields"]}
    assert types == set(FIELD_TYPES)
    assert len(VECTORS) >= 40


def test_vectors_only_use_codes_that_have_messages_in_both_languages() -> None:
    codes = {code for case in FORM_CASES for codes in case["errors"].values() for code in codes}
    for code in codes:
        assert describe(code, "zh-CN") != describe(code, "en")


# The shipped definitions.


def test_shipped_definition_files_are_valid() -> None:
    paths = sorted(DEFINITIONS.glob("*.json"))
    assert [path.stem for path in paths] == ["monthly_monitoring", "weekly_visit"]
    for path in paths:
        assert validate_definition(json.loads(path.read_text(encoding="utf-8"))) == []


def test_shipped_forms_load_with_their_policies(registry: FormRegistry) -> None:
    forms = [(f.form_id, f.version, f.policy) for f in registry.all_versions()]
    assert forms == [("monthly_monitoring", 1, "monthly"), ("weekly_visit", 1, "weekly")]


def test_weekly_form_holds_the_six_ones_and_the_checks(weekly: FormVersion) -> None:
    groups = {f.id: f.group for f in weekly.fields.values() if f.type == "boolean"}
    assert [i for i, group in groups.items() if group == "six_ones"] == SIX_ONES
    assert [i for i, group in groups.items() if group == "checks"] == list(CHECKS)


def test_each_weekly_check_defaults_to_true_and_is_followed_by_its_issue_field(
    weekly: FormVersion,
) -> None:
    ids = list(weekly.fields)
    for check in CHECKS:
        issue = check.replace("_ok", "_issue")
        assert weekly.fields[check].default is True
        assert ids[ids.index(check) + 1] == issue
        assert weekly.fields[issue].relevant.text == f"{check} == false"
        assert weekly.fields[issue].required.text == "true"


def test_every_field_has_chinese_and_english_labels(registry: FormRegistry) -> None:
    for form in registry.all_versions():
        for f in form.fields.values():
            assert set(f.label) == {"zh-CN", "en"}, f.id


def test_routine_weekly_visit_with_all_checks_fine_is_valid(weekly: FormVersion) -> None:
    for done in itertools.product([True, False], repeat=len(SIX_ONES)):
        answers = {**dict(zip(SIX_ONES, done, strict=True)), **ALL_FINE}
        assert validate_answers(weekly, answers) == {}


def test_unsafe_water_without_water_issue_is_required(weekly: FormVersion) -> None:
    answers = {**ALL_FINE, "water_ok": False}
    assert validate_answers(weekly, answers) == {"water_issue": ["required"]}


def test_water_issue_while_water_is_safe_is_not_relevant(weekly: FormVersion) -> None:
    answers = {**ALL_FINE, "water_issue": "井水浑浊"}
    assert validate_answers(weekly, answers) == {"water_issue": ["not_relevant"]}


def test_difficulty_detail_is_optional_and_only_relevant_when_a_difficulty_was_solved(
    weekly: FormVersion,
) -> None:
    assert validate_answers(weekly, {"difficulty_solved": True}) == {}
    assert validate_answers(weekly, {"difficulty_solved": False, "difficulty_detail": "修灶"}) == {
        "difficulty_detail": ["not_relevant"]
    }


def test_problems_found_lists_each_failed_check_with_its_category(weekly: FormVersion) -> None:
    answers = {**ALL_FINE, "water_ok": False, "housing_ok": False}
    assert problems_found(weekly, answers) == [
        {"field": "housing_ok", "category": "housing"},
        {"field": "water_ok", "category": "water"},
    ]


def test_every_weekly_check_raises_a_problem_of_its_own_category(weekly: FormVersion) -> None:
    for check, category in CHECKS.items():
        found = problems_found(weekly, {**ALL_FINE, check: False})
        assert found == [{"field": check, "category": category}]


def test_problems_found_is_empty_for_an_all_fine_visit(weekly: FormVersion) -> None:
    assert problems_found(weekly, ALL_FINE) == []
    assert problems_found(weekly, {}) == []


def test_high_risk_in_monthly_monitoring_is_an_income_problem(monthly: FormVersion) -> None:
    answers = {"risk_level": "high", "risk_types": ["illness"]}
    assert validate_answers(monthly, answers) == {}
    assert problems_found(monthly, answers) == [{"field": "risk_level", "category": "income"}]


def test_monthly_risk_level_is_required_and_risk_types_follow_it(monthly: FormVersion) -> None:
    assert validate_answers(monthly, {}) == {"risk_level": ["required"]}
    assert validate_answers(monthly, {"risk_level": "low", "risk_types": ["illness"]}) == {
        "risk_types": ["not_relevant"]
    }


def test_monthly_income_change_needs_a_note(monthly: FormVersion) -> None:
    answers = {"risk_level": "low", "income_changed": True}
    assert validate_answers(monthly, answers) == {"income_change_note": ["required"]}


def test_unknown_person_is_reported_only_when_people_are_given() -> None:
    form = vector_form(
        {"version": 1, "title": {"zh-CN": "t", "en": "t"}, "fields": [field("who", "person")]}
    )
    assert validate_answers(form, {"who": "p-2"}, people=["p-1"]) == {"who": ["unknown_person"]}
    assert validate_answers(form, {"who": "p-2"}) == {}


# Registry and records.


def test_registry_get_of_an_unknown_version_raises_unknown_form(registry: FormRegistry) -> None:
    with pytest.raises(UnknownForm, match="weekly_visit version 99"):
        registry.get("weekly_visit", 99)


def test_registry_latest_of_an_unknown_form_raises_unknown_form(registry: FormRegistry) -> None:
    with pytest.raises(UnknownForm):
        registry.latest("no_such_form")


def test_registry_latest_is_the_highest_version() -> None:
    doc = definition(field("a"))
    doc["versions"].append({**doc["versions"][0], "version": 3})
    registry = FormRegistry(parse_definition(doc))
    assert registry.latest("test_form").version == 3
    assert registry.get("test_form", 1).version == 1


def test_form_record_data_has_the_contract_keys_and_the_definition_fields(
    weekly: FormVersion,
) -> None:
    data = weekly.to_record_data()
    assert set(data) == {"form_id", "version", "title", "fields", "policy"}
    assert (data["form_id"], data["version"], data["policy"]) == ("weekly_visit", 1, "weekly")
    raw = json.loads((DEFINITIONS / "weekly_visit.json").read_text(encoding="utf-8"))
    assert data["fields"] == raw["versions"][0]["fields"]


def test_form_record_data_is_a_copy_callers_may_change(weekly: FormVersion) -> None:
    weekly.to_record_data()["fields"][0]["id"] = "changed"
    assert weekly.to_record_data()["fields"][0]["id"] == "health_asked"


# Definition checks.


def test_definition_with_a_duplicate_field_id_is_rejected() -> None:
    errors = validate_definition(definition(field("a"), field("a")))
    assert errors == ["versions[0].fields[1]: duplicate field id 'a'"]


def test_definition_with_an_unparsable_condition_is_rejected() -> None:
    (error,) = validate_definition(definition(field("a"), field("b", relevant="a ==")))
    assert error.startswith("versions[0].fields[1] (b).relevant: does not parse")


def test_definition_with_a_condition_on_an_unknown_field_is_rejected() -> None:
    errors = validate_definition(definition(field("a", relevant="watr_ok == false")))
    assert errors == ["versions[0].fields[0] (a).relevant: unknown field 'watr_ok'"]


def test_definition_with_an_unknown_type_is_rejected() -> None:
    errors = validate_definition(definition(field("a", "checkbox")))
    assert errors == ["versions[0].fields[0] (a): unknown type 'checkbox'"]


def test_definition_with_a_choice_field_without_choices_is_rejected() -> None:
    errors = validate_definition(definition(field("a", "single_choice")))
    assert errors == ["versions[0].fields[0] (a): a choice field needs a non-empty list of choices"]


def test_definition_with_versions_out_of_order_is_rejected() -> None:
    doc = definition(field("a"), version=2)
    doc["versions"].append({**doc["versions"][0], "version": 2})
    assert validate_definition(doc) == ["versions must be strictly increasing, found [2, 2]"]


def test_definition_comparing_a_choice_with_a_misspelt_value_is_rejected() -> None:
    risk = field(
        "risk", "single_choice", choices=[{"value": "high", "label": {"zh-CN": "高", "en": "High"}}]
    )
    errors = validate_definition(definition(risk, field("b", relevant="risk == 'hgih'")))
    assert errors == ["versions[0].fields[1] (b).relevant: \"hgih\" is not a choice of 'risk'"]


def test_definition_using_a_text_field_as_a_condition_is_rejected() -> None:
    errors = validate_definition(definition(field("t", "text"), field("b", relevant="t")))
    assert errors == ["versions[0].fields[1] (b).relevant: text field 't' is not a condition"]


def test_definition_with_a_default_that_is_no_valid_answer_is_rejected() -> None:
    errors = validate_definition(definition(field("a", default="yes")))
    assert errors == ["versions[0] (a): default is not valid (wrong_type:boolean)"]


def test_definition_with_a_misspelt_key_is_rejected() -> None:
    errors = validate_definition(definition(field("a", requried=True)))
    assert errors == ["versions[0].fields[0] (a): unknown key 'requried'"]


def test_parse_definition_raises_definition_error_listing_every_mistake() -> None:
    with pytest.raises(DefinitionError) as raised:
        parse_definition(definition(field("a", "checkbox"), field("a")))
    assert len(raised.value.errors) == 2


def test_loader_names_the_file_of_a_broken_definition(tmp_path: Path) -> None:
    (tmp_path / "test_form.json").write_text(json.dumps(definition(field("a"), field("a"))))
    with pytest.raises(DefinitionError) as raised:
        load_definitions(tmp_path)
    assert raised.value.errors == ["test_form.json: versions[0].fields[1]: duplicate field id 'a'"]


def test_loader_refuses_a_file_named_differently_from_its_form_id(tmp_path: Path) -> None:
    (tmp_path / "other.json").write_text(json.dumps(definition(field("a"))))
    with pytest.raises(DefinitionError, match="differs from the file name"):
        load_definitions(tmp_path)


def test_loader_refuses_a_json_object_with_a_repeated_key(tmp_path: Path) -> None:
    text = json.dumps(definition(field("a"))).replace('"id": "a"', '"id": "a", "id": "b"')
    (tmp_path / "test_form.json").write_text(text)
    with pytest.raises(DefinitionError, match="repeated key 'id'"):
        load_definitions(tmp_path)


@given(
    st.sampled_from(["id", "type", "label", "required", "relevant", "default", "problem", "group"]),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=8,
    ),
)
def test_validate_definition_returns_errors_rather_than_raising_on_any_value(
    key: str, value: object
) -> None:
    doc = json.loads((DEFINITIONS / "weekly_visit.json").read_text(encoding="utf-8"))
    broken = copy.deepcopy(doc)
    broken["versions"][0]["fields"][8][key] = value
    assert isinstance(validate_definition(broken), list)


# The expression parser.


def test_parser_refuses_a_call_to_import() -> None:
    with pytest.raises(ExpressionError, match="unknown function '__import__' at position 0"):
        parse_expression("__import__('os')")


def test_parser_refuses_attribute_access() -> None:
    with pytest.raises(ExpressionError, match=r"unexpected character '\.' at position 8"):
        parse_expression("water_ok.__class__")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a == 'x' 'y'", "unexpected a string at position 9"),
        ("selected('x', 'y')", "expected a field id, found a string at position 9"),
        ("a in ['x', b]", "expected a literal in the list, found 'b' at position 11"),
        ("a ==", "expected a value, found end of expression at position 4"),
        ("x == '\\q'", "unknown escape in string at position 6"),
        ("x == 1234567890123456", "number with more than 15 digits at position 5"),
        ("selected(a, b)", "selected() needs a quoted choice value at position 12"),
    ],
)
def test_a_parse_error_says_what_it_found_and_where(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        parse_expression(text)
    assert str(raised.value) == message


def test_parser_refuses_calls_to_unknown_functions() -> None:
    with pytest.raises(ExpressionError, match="unknown function 'open'"):
        parse_expression("water_ok == false or open('x')")


def test_expression_error_carries_the_offset_of_the_mistake() -> None:
    with pytest.raises(ExpressionError) as raised:
        parse_expression("a == 1 and b ==")
    assert raised.value.position == len("a == 1 and b ==")


def test_parse_expression_parses_each_text_once() -> None:
    assert parse_expression("risk_level == 'high'") is parse_expression("risk_level == 'high'")


@given(st.text())
def test_parser_raises_only_expression_error_on_arbitrary_text(text: str) -> None:
    with contextlib.suppress(ExpressionError):
        parse_expression(text)


@given(st.text(alphabet="ab_() []'\",=!<>.-019 andortinselcu\\", max_size=60))
def test_parser_raises_only_expression_error_on_near_grammatical_text(text: str) -> None:
    with contextlib.suppress(ExpressionError):
        parse_expression(text).evaluate({"a": ["a"], "b": True})


ANSWER_VALUES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4)


@given(
    st.text(alphabet="ab_() ,'+-*/%.019 andortifsumcnclegx", max_size=50),
    st.dictionaries(st.sampled_from(["a", "b"]), ANSWER_VALUES | st.lists(ANSWER_VALUES)),
)
def test_values_never_raise_whatever_the_answers(text: str, answers: dict[str, Any]) -> None:
    """Huge integers, infinities, NaN, text and lists in arithmetic and functions give null or
    a value, never an exception."""
    with contextlib.suppress(ExpressionError):
        parse_expression(text).evaluate(answers, clock="2026-05-01T00:00:00", position=1)


def test_arithmetic_on_an_integer_beyond_the_doubles_is_null() -> None:
    huge = {"a": 10**400}
    for text in ("-a", "a + 1", "sum(a)", "round(a)", "concat(a)", "number(a)"):
        assert parse_expression(text).evaluate(huge) is None, text


# Messages.


def test_describe_renders_a_code_in_chinese_by_default_and_in_english() -> None:
    assert describe("too_small:0") == "不能小于 0"
    assert describe("too_small:0", "en") == "must be at least 0"
    assert describe("wrong_type:boolean", "en-US") == "must be yes or no"


def test_describe_refuses_an_unknown_code() -> None:
    with pytest.raises(ValueError, match="unknown message code"):
        describe("no_such_code")


def test_messages_exist_in_both_languages_for_the_same_codes() -> None:
    assert set(MESSAGES["zh-CN"]) == set(MESSAGES["en"])


def test_readme_lists_every_message_code() -> None:
    readme = (FORMS_DIR / "README.md").read_text(encoding="utf-8")
    for key in MESSAGES["en"]:
        code = key.partition(":")[0]
        assert f"| `{code}" in readme, code


def test_forms_package_imports_only_the_standard_library() -> None:
    for path in FORMS_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                allowed = {"forms", "__future__", *MUTATION_RUNNER}
                assert top in sys.stdlib_module_names or top in allowed, path


# Calculations and the value language


def test_calculations_reading_each_other_in_a_cycle_are_refused() -> None:
    errors = validate_definition(
        definition(
            field("a", "calculate", calculation="b + 1"),
            field("b", "calculate", calculation="a * 2"),
        )
    )
    assert any("cycle" in error and "'a'" in error for error in errors), errors


def test_a_calculation_reading_itself_is_refused() -> None:
    errors = validate_definition(definition(field("a", "calculate", calculation="a + 1")))
    assert any("cycle" in error for error in errors), errors


def test_a_calculate_field_needs_a_calculation_and_takes_no_required() -> None:
    missing = validate_definition(definition(field("a", "calculate")))
    required = validate_definition(
        definition(field("a", "calculate", calculation="1", required=True))
    )
    assert any("needs a calculation" in error for error in missing), missing
    assert any("no required" in error for error in required), required


def test_calculation_belongs_to_calculate_fields_only() -> None:
    errors = validate_definition(definition(field("a", "integer", calculation="1")))
    assert any("calculate fields only" in error for error in errors), errors


def test_a_calculation_reading_an_unknown_field_is_refused() -> None:
    errors = validate_definition(definition(field("a", "calculate", calculation="nope * 2")))
    assert any("unknown field 'nope'" in error for error in errors), errors


def test_arithmetic_alone_is_no_condition() -> None:
    errors = validate_definition(
        definition(field("n", "integer"), field("q", "text", relevant="n + 1"))
    )
    assert any("not a condition" in error for error in errors), errors


def test_a_regex_outside_the_subset_is_refused_at_definition_time() -> None:
    errors = validate_definition(definition(field("t", "text", constraint="regex(t, '(?<=a)b')")))
    assert any("lookaround" in error for error in errors), errors


def test_a_calculation_may_be_compared_with_a_number_or_text() -> None:
    doc = definition(
        field("n", "integer"),
        field("c", "calculate", calculation="n * 2"),
        field("q", "text", relevant="c > 10 or c == 'x'"),
    )
    assert validate_definition(doc) == []


def test_calculate_computes_each_calculation_after_those_it_reads() -> None:
    (form,) = parse_definition(
        definition(
            field("b", "calculate", calculation="a + 1"),
            field("a", "calculate", calculation="n * 2"),
            field("n", "integer"),
        )
    )
    assert [each.id for each in form.calculations] == ["a", "b"]
    assert calculate(form, {"n": 3}) == {"a": 6, "b": 7}


def test_validation_reads_today_from_the_clock_it_is_given() -> None:
    (form,) = parse_definition(definition(field("d", "date", constraint="d <= today()")))
    answers = {"d": "2026-05-02"}
    assert validate_answers(form, answers, clock="2026-05-01T09:00:00") == {"d": ["constraint"]}
    assert validate_answers(form, answers, clock="2026-05-02T09:00:00") == {}


def test_a_dynamic_default_is_an_expression_over_known_fields_without_a_fixed_default() -> None:
    good = definition(field("n", "integer"), field("m", "integer", dynamic_default="n - 1"))
    both = definition(field("m", "integer", dynamic_default="1", default=1))
    on_note = definition(field("m", "note", dynamic_default="1"))
    unknown = definition(field("m", "integer", dynamic_default="nope + 1"))
    assert validate_definition(good) == []
    assert any("without default" in error for error in validate_definition(both))
    assert any("takes an answer" in error for error in validate_definition(on_note))
    assert any("unknown field 'nope'" in error for error in validate_definition(unknown))
