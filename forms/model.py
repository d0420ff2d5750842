"""Form versions and their fields as validated, ready-to-use objects.

A definition file is checked once by ``validate_definition``; these objects are built only
from documents that passed, so they hold parsed conditions and need no checks of their own.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from forms.expressions import FALSE, TRUE, Call, Expression, parse_expression

FIELD_TYPES = (
    "text",
    "number",
    "boolean",
    "date",
    "single_choice",
    "multiple_choice",
    "person",
    "photo",
    "integer",
    "range",
    "time",
    "datetime",
    "note",
    "hidden",
    "geopoint",
    "geotrace",
    "geoshape",
    "repeat",
    "audio",
    "video",
    "file",
    "barcode",
    "rank",
    "calculate",
)
#: types whose answer is a file uploaded by content (CONTRACT §11): its lowercase sha256
FILE_TYPES = ("photo", "audio", "video", "file")
#: what a repeat may be seeded from: ``people`` gives one entry per person of the household
SEEDS = ("people",)
#: types whose answers are numbers, bounded by ``min``/``max``
NUMBER_TYPES = ("number", "integer", "range")
#: types whose answers order: numbers numerically, ISO dates and times as text
ORDERED_TYPES = (*NUMBER_TYPES, "date", "time", "datetime", "text")
#: what ``prefill`` may ask the phone for, and the types it fits
PREFILLS = {"today": ("date", "datetime"), "now": ("time", "datetime")}
CHOICE_TYPES = ("single_choice", "multiple_choice", "rank")
#: choice types whose answer is a list of choice values
LIST_CHOICE_TYPES = ("multiple_choice", "rank")
PROBLEM_CATEGORIES = (
    "food",
    "clothing",
    "education",
    "medical",
    "housing",
    "water",
    "income",
    "other",
)
POLICIES = ("weekly", "monthly", None)
LANGUAGES = ("zh-CN", "en")
DEFAULT_MAX_LENGTH = 2000


@dataclass(frozen=True)
class Problem:
    """The "problem found" path: when ``when`` holds, the PWA offers a problem of ``category``."""

    when: Expression
    category: str


@dataclass(frozen=True)
class FilterTerm:
    """One term of a cascading choice list: a choice is offered when its ``filter[column]``
    equals the answer of ``field`` (or the literal ``value``), or is one of the values
    selected in the multiple_choice field ``selected_in``."""

    column: str
    field: str | None
    value: str | None
    selected_in: str | None = None


@dataclass(frozen=True)
class Field:
    """One question of a form version."""

    id: str
    type: str
    label: Mapping[str, str]
    required: Expression = FALSE
    relevant: Expression = TRUE
    choices: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # value -> label
    minimum: int | float | None = None
    maximum: int | float | None = None
    max_length: int = DEFAULT_MAX_LENGTH
    default: object = None
    problem: Problem | None = None
    group: str | None = None
    step: int | float | None = None
    choice_filter: tuple[FilterTerm, ...] = ()
    constraint: Expression = TRUE
    # value -> the filter of each choice naming it (a value may appear once per filter)
    choice_tags: Mapping[str, tuple[Mapping[str, str], ...]] = field(default_factory=dict)
    fields: Mapping[str, Field] = field(default_factory=dict)  # a repeat's own fields
    repeat_count: Expression | None = None  # how many entries a repeat must have
    seed: str | None = None  # "people": one entry per person of the household
    calculation: Expression | None = None  # calculate fields only
    #: a repeat's calculate fields, each after those it reads (as FormVersion.calculations)
    calculations: tuple[Field, ...] = ()

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Field:
        """The field of a validated definition document."""
        required = doc.get("required", False)
        problem = doc.get("problem")
        if problem is not None:
            problem = Problem(parse_expression(problem["when"]), problem["category"])
        children = {child["id"]: cls.from_dict(child) for child in doc.get("fields", ())}
        return cls(
            id=doc["id"],
            type=doc["type"],
            label=doc["label"],
            required=parse_expression(_as_condition(required)),
            relevant=parse_expression(doc.get("relevant", "true")),
            choices=_first_labels(doc.get("choices", ())),
            minimum=doc.get("min"),
            maximum=doc.get("max"),
            max_length=doc.get("max_length", DEFAULT_MAX_LENGTH),
            default=doc.get("default"),
            problem=problem,
            group=doc.get("group"),
            step=doc.get("step"),
            choice_filter=tuple(
                FilterTerm(
                    term["column"], term.get("field"), term.get("value"), term.get("selected_in")
                )
                for term in doc.get("choice_filter", ())
            ),
            constraint=parse_expression(doc.get("constraint", "true")),
            choice_tags=_tags(doc.get("choices", ())),
            fields=children,
            repeat_count=_count_expression(doc.get("repeat_count")),
            seed=doc.get("seed"),
            calculation=parse_expression(doc["calculation"]) if "calculation" in doc else None,
            calculations=calculation_order(list(children.values())),
        )

    def walk(self) -> list[Field]:
        """This field and, for a repeat, the fields of its entries at any depth."""
        return [self, *(each for child in self.fields.values() for each in child.walk())]


@dataclass(frozen=True)
class FormVersion:
    """One version of a form: what a visit records as ``form_id`` + ``form_version``."""

    form_id: str
    version: int
    title: Mapping[str, str]
    policy: str | None
    fields: Mapping[str, Field]  # id -> field, in the order of the definition
    definition: Mapping[str, Any]  # the version object exactly as written in the file
    calculations: tuple[Field, ...] = ()  # calculate fields, each after those it reads

    @classmethod
    def from_dict(cls, form_id: str, doc: Mapping[str, Any]) -> FormVersion:
        """The form version of a validated definition document."""
        fields = [Field.from_dict(field_doc) for field_doc in doc["fields"]]
        return cls(
            form_id=form_id,
            version=doc["version"],
            title=doc["title"],
            policy=doc.get("policy"),
            fields={each.id: each for each in fields},
            definition=copy.deepcopy(dict(doc)),
            calculations=calculation_order(fields),
        )

    def all_fields(self) -> list[Field]:
        """Every field at any depth, in form order: a repeat, then its own fields."""
        return [each for top in self.fields.values() for each in top.walk()]

    @cached_property
    def reads_clock(self) -> bool:
        """Whether any expression of the version calls ``today()`` or ``now()``: only then do
        its answers' checks depend on when the visit was made."""
        for each in self.all_fields():
            expressions = [
                each.relevant,
                each.required,
                each.constraint,
                each.calculation,
                each.repeat_count,
                each.problem.when if each.problem else None,
            ]
            for expression in expressions:
                if expression is not None and any(
                    isinstance(node, Call) and node.function in ("today", "now")
                    for node in expression.nodes()
                ):
                    return True
        return False

    @cached_property
    def seeds_people(self) -> bool:
        """Whether a repeat of the version (only one outside any other may be) is seeded from
        the household's people: its answers are then checked against them, visit by visit."""
        return any(each.seed for each in self.fields.values())

    def field_count(self) -> int:
        """Questions, notes and hidden values at any depth; a repeat itself is no field
        (CONTRACT §9), as a group is none."""
        return sum(1 for each in self.all_fields() if each.type != "repeat")

    def to_record_data(self) -> dict[str, Any]:
        """The ``data`` of the contract's ``form`` record (CONTRACT §4), a fresh copy."""
        return {
            "form_id": self.form_id,
            "version": self.version,
            "title": copy.deepcopy(dict(self.title)),
            "fields": copy.deepcopy(self.definition["fields"]),
            "policy": self.policy,
        }


def calculation_order(fields: list[Field]) -> tuple[Field, ...]:
    """The calculate fields, each after every calculation it reads (definitions have no cycles;
    ``validate_definition`` refuses them), otherwise in form order. The PWA orders them alike."""
    calculated = {each.id: each for each in fields if each.calculation is not None}
    ordered: dict[str, Field] = {}

    def visit(each: Field, path: frozenset[str]) -> None:
        if each.id in ordered or each.id in path:
            return
        assert each.calculation is not None
        reads = each.calculation.references() | each.relevant.references()
        for name in sorted(reads & calculated.keys()):
            visit(calculated[name], path | {each.id})
        ordered[each.id] = each

    for each in calculated.values():
        visit(each, frozenset())
    return tuple(ordered.values())


def _as_condition(required: bool | str) -> str:
    """``required`` is a boolean or a condition; a boolean is the condition of that value."""
    if isinstance(required, bool):
        return "true" if required else "false"
    return required


def _first_labels(choices: Any) -> dict[str, Mapping[str, str]]:
    """Value -> label; a value listed once per filter shows the label it is first given."""
    labels: dict[str, Mapping[str, str]] = {}
    for choice in choices:
        labels.setdefault(choice["value"], choice["label"])
    return labels


def _tags(choices: Any) -> dict[str, tuple[Mapping[str, str], ...]]:
    tags: dict[str, tuple[Mapping[str, str], ...]] = {}
    for choice in choices:
        tags[choice["value"]] = (*tags.get(choice["value"], ()), choice.get("filter", {}))
    return tags


def _count_expression(count: int | str | None) -> Expression | None:
    """``repeat_count`` is a whole number or an expression giving one."""
    if count is None:
        return None
    return parse_expression(str(count) if isinstance(count, int) else count)
