"""Checking form definition documents before any phone or server uses them.

A definition reaches every phone, and visits filled with it are kept forever, so a mistake
in one (a typo in a field id, a condition that can never hold) must stop the loader rather
than surface in the field. ``validate_definition`` lists every mistake as a readable sentence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from forms.answers import check_value
from forms.expressions import (
    FUNCTIONS,
    KEYWORDS,
    And,
    Arithmetic,
    Call,
    Comparison,
    Count,
    ExpressionError,
    Literal,
    Membership,
    Negate,
    Node,
    Not,
    Or,
    Reference,
    Selected,
    is_number,
    parse_expression,
)
from forms.model import (
    CHOICE_TYPES,
    FIELD_TYPES,
    FILE_TYPES,
    LANGUAGES,
    NUMBER_TYPES,
    ORDERED_TYPES,
    POLICIES,
    PREFILLS,
    PROBLEM_CATEGORIES,
    SEEDS,
    FormVersion,
)

_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")
_RESERVED = KEYWORDS | FUNCTIONS
_FORM_KEYS = frozenset({"form_id", "versions"})
_VERSION_KEYS = frozenset({"version", "title", "policy", "fields"})
_FIELD_KEYS = frozenset(
    {
        "id",
        "type",
        "label",
        "hint",
        "required",
        "relevant",
        "choices",
        "min",
        "max",
        "max_length",
        "default",
        "problem",
        "group",
        "name",
        "required_message",
        "constraint_message",
        "read_only",
        "step",
        "prefill",
        "group_label",
        "choice_filter",
        "constraint",
        "fields",
        "repeat_count",
        "seed",
        "calculation",
        "dynamic_default",
    }
)
#: keys only a repeat has, and keys a repeat (which takes no answer of its own) never has
_REPEAT_KEYS = frozenset({"fields", "repeat_count", "seed"})
#: how deep repeats nest (a household's members, each member's children, …)
MAX_REPEAT_DEPTH = 3
_NOT_ON_REPEAT = frozenset(
    {"choices", "min", "max", "max_length", "default", "problem", "step", "prefill"}
    | {"choice_filter", "constraint", "read_only"}
)
_CHOICE_KEYS = frozenset({"value", "label", "filter"})
#: the answers a cascading list may be filtered by: text, as its choices' filter columns are
_FILTER_SOURCE_TYPES = ("single_choice", "text", "multiple_choice")
_PROBLEM_KEYS = frozenset({"when", "category"})
#: answers that are no text, number or boolean: a condition can only test them for null
_UNCOMPARABLE_TYPES = ("note", "geopoint", "geotrace", "geoshape", "repeat", *FILE_TYPES)
#: the answers ``count()`` reads: a list of choices, or a repeat's entries or values
_COUNTABLE_TYPES = ("multiple_choice", "rank", "repeat")
#: functions whose value is a yes/no answer (``if`` may be one, depending on its branches)
_CONDITION_FUNCTIONS = frozenset({"if", "true", "false"})

FieldDocs = Mapping[str, Mapping[str, Any]]


class DefinitionError(ValueError):
    """A form definition with mistakes; ``errors`` lists each of them."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("invalid form definition:\n" + "\n".join(f"- {e}" for e in errors))
        self.errors = errors


def parse_definition(doc: object) -> list[FormVersion]:
    """The form versions of a definition document; raises DefinitionError if it has mistakes."""
    errors = validate_definition(doc)
    if errors or not isinstance(doc, dict):
        raise DefinitionError(errors)
    return [FormVersion.from_dict(doc["form_id"], version) for version in doc["versions"]]


def validate_definition(doc: object) -> list[str]:
    """Every mistake in a definition document ``{"form_id", "versions"}``; empty when valid."""
    if not isinstance(doc, dict):
        return ["the definition must be a JSON object"]
    errors = _unknown_keys(doc, _FORM_KEYS, "definition")
    if not _is_id(doc.get("form_id")):
        errors.append("form_id must be a snake_case id")
    versions = doc.get("versions")
    if not isinstance(versions, list) or not versions:
        return [*errors, "versions must be a non-empty list"]
    for index, version in enumerate(versions):
        errors += _version_errors(version, f"versions[{index}]")
    errors += _order_errors(versions)
    return errors or _default_errors(versions)


def _order_errors(versions: list[Any]) -> list[str]:
    """Versions must be strictly increasing, so the last one is always the latest."""
    numbers: list[int] = [
        v["version"] for v in versions if isinstance(v, dict) and _is_positive_int(v.get("version"))
    ]
    if all(a < b for a, b in zip(numbers, numbers[1:], strict=False)):
        return []
    return [f"versions must be strictly increasing, found {numbers}"]


def _version_errors(version: object, where: str) -> list[str]:
    if not isinstance(version, dict):
        return [f"{where}: must be an object"]
    errors = _unknown_keys(version, _VERSION_KEYS, where)
    if not _is_positive_int(version.get("version")):
        errors.append(f"{where}: version must be an integer of at least 1")
    errors += _label_errors(version.get("title"), f"{where}.title")
    if version.get("policy") not in POLICIES:
        errors.append(f"{where}: policy must be 'weekly', 'monthly' or null")
    fields = version.get("fields")
    if not isinstance(fields, list) or not fields:
        return [*errors, f"{where}: fields must be a non-empty list"]
    docs: dict[str, Mapping[str, Any]] = {}
    for index, field in enumerate(fields):
        field_where = f"{where}.fields[{index}]"
        errors += _field_errors(field, field_where)
        for path, each in _with_children(field, field_where):
            field_id = each.get("id")
            if isinstance(field_id, str) and field_id in docs:
                errors.append(f"{path}: duplicate field id '{field_id}'")
            elif isinstance(field_id, str):
                docs[field_id] = each
    return errors + _level_condition_errors(fields, _outside_docs(fields, docs), where)


def _level_condition_errors(fields: list[Any], docs: FieldDocs, where: str) -> list[str]:
    """The conditions of the fields of one level (the version's, or a repeat's entries):
    each reads ``docs``; a repeat's own fields read its entry's fields over them."""
    errors: list[str] = []
    for index, field in enumerate(fields):
        if not isinstance(field, dict):
            continue
        field_where = f"{where}.fields[{index}]"
        errors += _field_condition_errors(field, docs, field_where)
        errors += _choice_filter_errors(field, docs, field_where)
        children = field.get("fields")
        if field.get("type") == "repeat" and isinstance(children, list):
            errors += _repeat_count_errors(field, docs, field_where)
            entry = {c["id"]: c for c in children if isinstance(c, dict) and "id" in c}
            inside = _outside_docs(children, {**docs, **entry})
            errors += _level_condition_errors(children, inside, field_where)
    return errors + _cycle_errors(fields, where)


def _with_children(field: object, where: str) -> list[tuple[str, Mapping[str, Any]]]:
    """A field and, for a repeat, each of its fields at any depth (objects with an id), with
    where they are."""
    if not isinstance(field, dict):
        return []
    children = field.get("fields") if field.get("type") == "repeat" else None
    found: list[tuple[str, Mapping[str, Any]]] = [(where, field)]
    for index, child in enumerate(children if isinstance(children, list) else ()):
        if isinstance(child, dict) and isinstance(child.get("id"), str):
            found += _with_children(child, f"{where}.fields[{index}]")
    return found


def _outside_docs(fields: list[Any], docs: FieldDocs) -> dict[str, Mapping[str, Any]]:
    """What a condition at one level reads: the fields of that level as they are, and the
    fields of a repeat among them (at any depth) as the list of their values across its
    entries."""
    outside: dict[str, Mapping[str, Any]] = dict(docs)
    for field in fields:
        for _, child in _with_children(field, "")[1:]:
            outside[child["id"]] = {"id": child["id"], "type": "repeat"}
    return outside


def _repeat_count_errors(field: Mapping[str, Any], docs: FieldDocs, where: str) -> list[str]:
    """``repeat_count``: a whole number, or an expression read outside the repeat."""
    count = field.get("repeat_count")
    if count is None or (isinstance(count, int) and not isinstance(count, bool) and count >= 0):
        return []
    where = f"{where} ({field.get('id')}).repeat_count"
    if not isinstance(count, str):
        return [f"{where}: a whole number of at least 0, or an expression"]
    try:
        expression = parse_expression(count)
    except ExpressionError as error:
        return [f"{where}: does not parse: {error}"]
    unknown = sorted(expression.references() - docs.keys())
    return [f"{where}: unknown field '{name}'" for name in unknown]


def _field_errors(field: object, where: str, depth: int = 1) -> list[str]:
    """The mistakes in one field that need no other field to see."""
    if not isinstance(field, dict):
        return [f"{where}: must be an object"]
    field_id = field.get("id")
    if not _is_id(field_id) or field_id in _RESERVED:
        return [f"{where}: id must be a snake_case id and no keyword, found {field_id!r}"]
    where = f"{where} ({field_id})"
    errors = _unknown_keys(field, _FIELD_KEYS, where)
    field_type = field.get("type")
    if field_type not in FIELD_TYPES:
        errors.append(f"{where}: unknown type {field_type!r}")
    errors += _label_errors(field.get("label"), f"{where}.label")
    for key in ("hint", "required_message", "constraint_message", "group_label"):
        if key in field:
            errors += _label_errors(field[key], f"{where}.{key}")
    name = field.get("name", field_id)
    if not isinstance(name, str) or not name or len(name) > 255:
        errors.append(f"{where}: name (the XLSForm name) must be a non-empty string")
    if not isinstance(field.get("read_only", False), bool):
        errors.append(f"{where}: read_only must be true or false")
    errors += _prefill_errors(field, where)
    errors += _dynamic_default_errors(field, where)
    if field_type == "note" and (field.get("required", False) is not False or "default" in field):
        errors.append(f"{where}: a note takes no answer, so it has no required or default")
    errors += _calculation_errors(field, where)
    if not isinstance(field.get("required", False), bool | str):
        errors.append(f"{where}: required must be true, false or a condition")
    for key in ("relevant", "constraint"):
        if not isinstance(field.get(key, ""), str):
            errors.append(f"{where}: {key} must be a condition")
    if "group" in field and not _is_id(field["group"]):
        errors.append(f"{where}: group must be a snake_case id")
    errors += _repeat_errors(field, where, depth)
    errors += _choice_errors(field, where)
    errors += _bound_errors(field, where)
    if "problem" in field:
        errors += _problem_errors(field["problem"], where)
    return errors


def _repeat_errors(field: Mapping[str, Any], where: str, depth: int = 1) -> list[str]:
    """A repeat holds fields (a repeat among them at most MAX_REPEAT_DEPTH deep), is seeded
    from the household's people (outside any other repeat) or counted, and takes no answer
    of its own."""
    if field.get("type") != "repeat":
        return [f"{where}: {key} belongs to repeats only" for key in _REPEAT_KEYS & field.keys()]
    errors = [f"{where}: a repeat has no {key}" for key in sorted(_NOT_ON_REPEAT & field.keys())]
    children = field.get("fields")
    if not isinstance(children, list) or not children:
        return [*errors, f"{where}: a repeat needs a non-empty list of fields"]
    if field.get("seed", None) not in (*SEEDS, None):
        errors.append(f"{where}: seed must be 'people'")
    elif "seed" in field and "repeat_count" in field:
        errors.append(f"{where}: a repeat seeded from the people has no repeat_count")
    for index, child in enumerate(children):
        child_where = f"{where}.fields[{index}]"
        nested = isinstance(child, dict) and child.get("type") == "repeat"
        if nested and depth >= MAX_REPEAT_DEPTH:
            errors.append(f"{child_where}: repeats nest at most {MAX_REPEAT_DEPTH} deep")
        elif nested and "seed" in child:
            errors.append(f"{child_where}: only a repeat outside any other is seeded")
        elif nested:
            errors += _field_errors(child, child_where, depth + 1)
        elif isinstance(child, dict) and "problem" in child:
            errors.append(f"{child_where}: a field of a repeat has no problem path")
        elif isinstance(child, dict) and "seed" in field and child.get("id") == "person":
            errors.append(f"{child_where}: 'person' names the entry's person in this repeat")
        else:
            errors += _field_errors(child, child_where)
    return errors


def _calculation_errors(field: Mapping[str, Any], where: str) -> list[str]:
    """A calculate field has a ``calculation`` (an expression) and nothing a person answers."""
    if field.get("type") != "calculate":
        return (
            [f"{where}: calculation belongs to calculate fields only"]
            if ("calculation" in field)
            else []
        )
    if not isinstance(field.get("calculation"), str):
        return [f"{where}: a calculate field needs a calculation (an expression)"]
    if field.get("required", False) is not False or "default" in field or "prefill" in field:
        return [f"{where}: a calculate field is computed: no required, default or prefill"]
    return []


def _cycle_errors(fields: list[Any], where: str) -> list[str]:
    """Calculations that read each other in a circle can never be computed."""
    reads: dict[str, frozenset[str]] = {}
    for field in fields:
        if isinstance(field, dict) and field.get("type") == "calculate":
            texts = [field.get("calculation"), field.get("relevant", "true")]
            try:
                names = [parse_expression(t).references() for t in texts if isinstance(t, str)]
            except ExpressionError:
                continue  # reported as a parse error
            reads[str(field.get("id"))] = frozenset().union(*names)
    errors = []
    for start in reads:
        seen: set[str] = set()
        stack = [start]
        while stack:
            for name in reads.get(stack.pop(), frozenset()):
                if name == start:
                    errors.append(f"{where}: calculation '{start}' reads itself through a cycle")
                    stack = []
                    break
                if name in reads and name not in seen:
                    seen.add(name)
                    stack.append(name)
    return errors


def _choice_errors(field: Mapping[str, Any], where: str) -> list[str]:
    choices = field.get("choices")
    if field.get("type") not in CHOICE_TYPES:
        return [f"{where}: choices belong to choice fields only"] if "choices" in field else []
    if not isinstance(choices, list) or not choices:
        return [f"{where}: a choice field needs a non-empty list of choices"]
    errors: list[str] = []
    seen: set[str] = set()
    for index, choice in enumerate(choices):
        choice_where = f"{where}.choices[{index}]"
        if not isinstance(choice, dict) or not isinstance(choice.get("value"), str):
            errors.append(f"{choice_where}: must be {{'value': string, 'label': ...}}")
            continue
        errors += _unknown_keys(choice, _CHOICE_KEYS, choice_where)
        errors += _label_errors(choice.get("label"), f"{choice_where}.label")
        tags = choice.get("filter", {})
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
        ):
            errors.append(f"{choice_where}: filter must map column names to text")
        # a value may be listed again under another filter (a village of that name in two towns)
        key = json.dumps([choice["value"], tags], sort_keys=True)
        if not choice["value"] or key in seen:
            errors.append(f"{choice_where}: value must be non-empty, and unique for its filter")
        seen.add(key)
    return errors


def _dynamic_default_errors(field: Mapping[str, Any], where: str) -> list[str]:
    """``dynamic_default`` is an expression the phone evaluates once when the visit starts."""
    if "dynamic_default" not in field:
        return []
    takes_answer = field.get("type") not in ("note", "calculate")
    alone = "default" not in field and "prefill" not in field
    if not isinstance(field["dynamic_default"], str) or not takes_answer or not alone:
        return [
            f"{where}: dynamic_default is an expression, on a field that takes an answer, "
            "without default or prefill"
        ]
    return []


def _prefill_errors(field: Mapping[str, Any], where: str) -> list[str]:
    """``prefill`` asks the phone for the day or the time when the visit starts."""
    if "prefill" not in field:
        return []
    fits = PREFILLS.get(field["prefill"]) if isinstance(field["prefill"], str) else None
    if fits is None or field.get("type") not in fits or "default" in field:
        return [
            f"{where}: prefill is 'today' (date, datetime) or 'now' (time, datetime), "
            "without a default"
        ]
    return []


def _choice_filter_errors(field: Mapping[str, Any], docs: FieldDocs, where: str) -> list[str]:
    """A cascading list: terms ``{"column", "field"}`` (a single_choice or text field) or
    ``{"column", "value"}``, on a choice field."""
    if "choice_filter" not in field:
        return []
    where = f"{where} ({field.get('id')}).choice_filter"
    terms = field["choice_filter"]
    if field.get("type") not in CHOICE_TYPES or not isinstance(terms, list) or not terms:
        return [f"{where}: a non-empty list of terms, on choice fields only"]
    errors = []
    for term in terms:
        source = term.get("field") if isinstance(term, dict) else None
        shape = isinstance(term, dict) and isinstance(term.get("column"), str)
        if shape and set(term) == {"column", "value"} and isinstance(term["value"], str):
            continue
        if shape and set(term) == {"column", "selected_in"}:
            chosen = docs.get(str(term["selected_in"]), {}).get("type")
            if chosen != "multiple_choice":
                errors.append(f"{where}: '{term['selected_in']}' is no multiple_choice field")
            continue
        if not shape or set(term) != {"column", "field"}:
            errors.append(
                f"{where}: each term is {{column, field}}, {{column, value}} "
                "or {column, selected_in}"
            )
        elif docs.get(str(source), {}).get("type") not in _FILTER_SOURCE_TYPES:
            errors.append(f"{where}: '{source}' is no single_choice or text field")
    return errors


def _bound_errors(field: Mapping[str, Any], where: str) -> list[str]:
    errors: list[str] = []
    for key in ("min", "max"):
        if key in field and (field.get("type") not in NUMBER_TYPES or not is_number(field[key])):
            errors.append(f"{where}: {key} must be a number, on number fields only")
    if not errors and "min" in field and "max" in field and field["min"] > field["max"]:
        errors.append(f"{where}: min must not be greater than max")
    step = field.get("step")
    if field.get("type") == "range" and not (
        is_number(step) and step > 0 and "min" in field and "max" in field
    ):
        errors.append(f"{where}: a range needs min, max and a positive step")
    elif field.get("type") != "range" and "step" in field:
        errors.append(f"{where}: step belongs to range fields only")
    if "max_length" in field and (
        field.get("type") != "text" or not _is_positive_int(field["max_length"])
    ):
        errors.append(f"{where}: max_length must be a positive integer, on text fields only")
    return errors


def _problem_errors(problem: object, where: str) -> list[str]:
    if not isinstance(problem, dict) or not isinstance(problem.get("when"), str):
        return [f"{where}: problem must be {{'when': condition, 'category': ...}}"]
    errors = _unknown_keys(problem, _PROBLEM_KEYS, f"{where}.problem")
    if problem.get("category") not in PROBLEM_CATEGORIES:
        errors.append(f"{where}: problem category must be one of {', '.join(PROBLEM_CATEGORIES)}")
    return errors


def _default_errors(versions: list[Any]) -> list[str]:
    """A default is what the PWA prefills, so it must be a valid answer itself.

    Checked on the built form versions, hence only once everything else is valid.
    """
    errors = []
    for index, doc in enumerate(versions):
        for field in FormVersion.from_dict("", doc).all_fields():
            code = None if field.default is None else check_value(field, field.default)
            if code is not None:
                errors.append(f"versions[{index}] ({field.id}): default is not valid ({code})")
    return errors


def _field_condition_errors(field: Mapping[str, Any], docs: FieldDocs, where: str) -> list[str]:
    """The mistakes in a field's conditions, which may read any field of the version."""
    where = f"{where} ({field.get('id')})"
    problem = field.get("problem")
    errors: list[str] = []
    for key in ("calculation", "dynamic_default"):
        text = field.get(key)
        if isinstance(text, str):
            errors += [
                f"{where}.{key}: {e}" for e in _expression_errors(text, docs, condition=False)
            ]
    conditions = [
        ("required", field.get("required")),
        ("relevant", field.get("relevant")),
        ("constraint", field.get("constraint")),
        ("problem.when", problem.get("when") if isinstance(problem, dict) else None),
    ]
    for name, text in conditions:
        if isinstance(text, str):
            errors += [f"{where}.{name}: {e}" for e in _expression_errors(text, docs)]
    return errors


def _expression_errors(text: str, fields: FieldDocs, *, condition: bool = True) -> list[str]:
    """Why a condition (or a calculation) cannot work with these fields: it does not parse,
    reads an unknown field, is not a yes/no question, or compares a field with a value it can
    never have."""
    try:
        expression = parse_expression(text)
    except ExpressionError as error:
        return [f"does not parse: {error}"]
    errors = [f"unknown field '{name}'" for name in sorted(expression.references() - fields.keys())]
    if condition:
        errors += _not_a_condition(expression.root, fields)
    for node in expression.nodes():
        errors += _node_errors(node, fields)
    return list(dict.fromkeys(errors))


def _node_errors(node: Node, fields: FieldDocs) -> list[str]:
    if isinstance(node, Not | And | Or):
        return [error for child in node.children() for error in _not_a_condition(child, fields)]
    if isinstance(node, Selected | Count):
        return _list_function_errors(node, fields)
    if isinstance(node, Comparison):
        return _comparison_errors(node, fields)
    if isinstance(node, Membership) and isinstance(node.operand, Reference):
        field = fields.get(node.operand.field)
        return [] if field is None else [e for v in node.items for e in _literal_errors(field, v)]
    return []


def _not_a_condition(node: Node, fields: FieldDocs) -> list[str]:
    """Where a yes/no answer is needed: a bare field must be boolean, and count() and literals
    other than true and false never are one (only ``true`` is true, so they never hold)."""
    if isinstance(node, Literal) and not isinstance(node.value, bool):
        return [f"{json.dumps(node.value)} is not a condition"]
    if isinstance(node, Count):
        return [f"count({node.field}) is a number, not a condition"]
    if isinstance(node, Arithmetic | Negate):
        return ["arithmetic gives a number, not a condition"]
    if isinstance(node, Call) and node.function not in _CONDITION_FUNCTIONS:
        return [f"{node.function}() gives a value, not a condition"]
    if isinstance(node, Reference) and node.field in fields:
        field_type = fields[node.field].get("type")
        if field_type not in ("boolean", "calculate"):
            return [f"{field_type} field '{node.field}' is not a condition"]
    return []


def _list_function_errors(node: Selected | Count, fields: FieldDocs) -> list[str]:
    field = fields.get(node.field)
    if field is None:
        return []
    if isinstance(node, Count) and field.get("type") in _COUNTABLE_TYPES:
        return []
    if field.get("type") not in ("multiple_choice", "rank"):
        return [f"'{node.field}' is not a multiple_choice field"]
    if isinstance(node, Selected):
        return _literal_errors(field, node.value, as_element=True)
    return []


def _comparison_errors(node: Comparison, fields: FieldDocs) -> list[str]:
    """Comparisons that are always false: ordering null or unordered fields, or a field
    against a value it cannot hold."""
    if _is_null(node.left) or _is_null(node.right):
        return [f"'{node.op} null' is always false; only == null and != null test for null"]
    errors: list[str] = []
    for reference, other in ((node.left, node.right), (node.right, node.left)):
        if not isinstance(reference, Reference) or reference.field not in fields:
            continue
        field = fields[reference.field]
        if node.op not in ("==", "!=") and field.get("type") not in (*ORDERED_TYPES, "calculate"):
            errors.append(
                f"'{node.op}' on {field.get('type')} field '{reference.field}' is always false"
            )
        if isinstance(other, Literal):
            errors += _literal_errors(field, other.value)
    return errors


def _is_null(node: Node) -> bool:
    return isinstance(node, Literal) and node.value is None


def _literal_errors(
    field: Mapping[str, Any], value: object, *, as_element: bool = False
) -> list[str]:
    """A value compared with a field must be one the field can hold, else the condition is
    silently always false (a typo such as 'hgih' for 'high')."""
    field_type = field.get("type")
    name = f"'{field.get('id')}'"
    if value is None or field_type == "calculate":
        return []  # a calculation may give any value
    if field_type in ("multiple_choice", "rank") and not as_element:
        return [f"compare multiple_choice field {name} with selected() or count()"]
    if field_type in CHOICE_TYPES:
        fits = value in _choice_values(field)
        return [] if fits else [f"{json.dumps(value)} is not a choice of {name}"]
    if field_type == "boolean":
        fits = isinstance(value, bool)
    elif field_type in NUMBER_TYPES:
        fits = is_number(value)
    elif field_type in _UNCOMPARABLE_TYPES:
        fits = False
    else:
        fits = isinstance(value, str)
    return [] if fits else [f"{field_type} field {name} never equals {json.dumps(value)}"]


def _choice_values(field: Mapping[str, Any]) -> list[object]:
    choices = field.get("choices")
    if not isinstance(choices, list):
        return []
    return [choice.get("value") for choice in choices if isinstance(choice, dict)]


def _unknown_keys(doc: Mapping[str, Any], allowed: frozenset[str], where: str) -> list[str]:
    return [f"{where}: unknown key '{key}'" for key in doc if key not in allowed]


def _label_errors(label: object, where: str) -> list[str]:
    """Labels are shown to people, in Chinese by default and in English."""
    if isinstance(label, dict) and all(
        isinstance(label.get(lang), str) and label[lang] for lang in LANGUAGES
    ):
        return []
    return [f"{where}: needs non-empty 'zh-CN' and 'en' text"]


def _is_id(value: object) -> bool:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1
