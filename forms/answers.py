"""Validation of a visit's answers against the form version it was filled with.

The server runs this on every pushed visit and the PWA runs the same rules before saving, so
the result is a plain mapping of field id to stable message codes (rendered by ``describe``)
and every rule is written down in ``forms/README.md``.
"""

from __future__ import annotations

import datetime
import math
import re
from collections.abc import Callable, Collection, Mapping

from forms.expressions import is_answered, is_number
from forms.model import Field, FormVersion

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SHA256 = re.compile(r"[0-9a-f]{64}")

Check = Callable[[Field, object, Collection[str] | None], str | None]


def validate_answers(
    form: FormVersion, answers: Mapping[str, object], people: list[str] | None = None
) -> dict[str, list[str]]:
    """Field id -> message codes of everything wrong with the answers; empty when valid.

    ``people`` are the ids of the household's people; when given, a person answer must be
    one of them.
    """
    known_people = None if people is None else frozenset(people)
    errors = {field_id: ["unknown_field"] for field_id in answers if field_id not in form.fields}
    for field in form.fields.values():
        code = _field_error(field, answers, known_people)
        if code is not None:
            errors[field.id] = [code]
    return errors


def problems_found(form: FormVersion, answers: Mapping[str, object]) -> list[dict[str, str]]:
    """The problems the answers point to, in form order, for the PWA to offer as new problems."""
    return [
        {"field": field.id, "category": field.problem.category}
        for field in form.fields.values()
        if field.problem is not None
        and field.relevant.holds(answers)
        and field.problem.when.holds(answers)
    ]


def check_value(field: Field, value: object, people: Collection[str] | None = None) -> str | None:
    """The message code of an answer that does not fit the field, or None when it fits."""
    return _CHECKS[field.type](field, value, people)


def _field_error(
    field: Field, answers: Mapping[str, object], people: Collection[str] | None
) -> str | None:
    """At most one code per field: relevance first, then presence, then the value itself."""
    value = answers.get(field.id)
    answered = is_answered(value)
    if not field.relevant.holds(answers):
        return "not_relevant" if answered else None
    if not answered:
        return "required" if field.required.holds(answers) else None
    return check_value(field, value, people)


def _check_text(field: Field, value: object, people: Collection[str] | None) -> str | None:
    if not isinstance(value, str):
        return "wrong_type:text"
    if len(value) > field.max_length:
        return f"too_long:{field.max_length}"
    return None


def _check_number(field: Field, value: object, people: Collection[str] | None) -> str | None:
    if not is_number(value) or not math.isfinite(value):
        return "wrong_type:number"
    if field.minimum is not None and value < field.minimum:
        return f"too_small:{format_number(field.minimum)}"
    if field.maximum is not None and value > field.maximum:
        return f"too_large:{format_number(field.maximum)}"
    return None


def _check_boolean(field: Field, value: object, people: Collection[str] | None) -> str | None:
    return None if isinstance(value, bool) else "wrong_type:boolean"


def _check_date(field: Field, value: object, people: Collection[str] | None) -> str | None:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        return "wrong_type:date"
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return "invalid_date"
    return None


def _check_single_choice(field: Field, value: object, people: Collection[str] | None) -> str | None:
    if not isinstance(value, str):
        return "wrong_type:single_choice"
    return None if value in field.choices else "not_a_choice"


def _check_multiple_choice(
    field: Field, value: object, people: Collection[str] | None
) -> str | None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return "wrong_type:multiple_choice"
    if any(item not in field.choices for item in value):
        return "not_a_choice"
    if len(set(value)) != len(value):
        return "duplicate_choice"
    return None


def _check_person(field: Field, value: object, people: Collection[str] | None) -> str | None:
    if not isinstance(value, str):
        return "wrong_type:person"
    if people is not None and value not in people:
        return "unknown_person"
    return None


def _check_photo(field: Field, value: object, people: Collection[str] | None) -> str | None:
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        return "wrong_type:photo"
    return None


_CHECKS: dict[str, Check] = {
    "text": _check_text,
    "number": _check_number,
    "boolean": _check_boolean,
    "date": _check_date,
    "single_choice": _check_single_choice,
    "multiple_choice": _check_multiple_choice,
    "person": _check_person,
    "photo": _check_photo,
}


def format_number(number: int | float) -> str:
    """A bound as it appears in a code: integral values without a decimal point (``0``, ``2.5``)."""
    if float(number).is_integer():
        return str(int(number))
    return repr(float(number))
