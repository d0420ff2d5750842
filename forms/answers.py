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

from forms.expressions import equal, is_answered, is_number
from forms.model import Field, FormVersion

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}(?::[0-9]{2})?")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2})?")
_VISITED_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
_POINT_KEYS = frozenset({"lat", "lon", "accuracy", "altitude"})
#: the fewest points of a line and of an area
_LEAST_POINTS = {"geotrace": 2, "geoshape": 3}
#: how far from a whole number of steps a range answer may be (decimal steps such as 0.1
#: are not exact in binary; Python and JavaScript compute the same double)
_STEP_TOLERANCE = 1e-9
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: how far apart a stored and a recomputed calculation may be, relative to their size (both
#: sides compute the same doubles; the tolerance only absorbs a value that was rounded on
#: its way, e.g. written with fewer digits by another client)
_CALCULATION_TOLERANCE = 1e-9

Check = Callable[[Field, object, Collection[str] | None], str | None]


def validate_answers(
    form: FormVersion,
    answers: Mapping[str, object],
    people: list[str] | None = None,
    *,
    clock: str | None = None,
) -> dict[str, list[str]]:
    """Field id -> message codes of everything wrong with the answers; empty when valid.

    ``people`` are the ids of the household's people; when given, a person answer must be
    one of them. ``clock`` is the visit's local time ``YYYY-MM-DDTHH:MM:SS``, what ``today()``
    and ``now()`` read (null without it).
    """
    known_people = None if people is None else frozenset(people)
    errors = {field_id: ["unknown_field"] for field_id in answers if field_id not in form.fields}
    expected = calculate(form, answers, clock=clock)
    for field in form.fields.values():
        code = _field_error(field, answers, known_people, clock)
        if code is None and field.id in expected:
            code = _calculation_error(answers.get(field.id), expected[field.id])
        if code is not None:
            errors[field.id] = [code]
    return errors


def visit_clock(visited_at: object) -> str | None:
    """The clock of ``today()``/``now()`` for a visit: the local date and time of its
    ``visited_at`` (ISO 8601 with the phone's offset) as written, ``YYYY-MM-DDTHH:MM:SS``, so
    the server reads the same day the phone did; None when it is not such a time."""
    if isinstance(visited_at, str) and _VISITED_AT.match(visited_at):
        return visited_at[:19]
    return None


def calculate(
    form: FormVersion, answers: Mapping[str, object], *, clock: str | None = None
) -> dict[str, object]:
    """The value of every calculate field from the other answers, each calculation reading
    those computed before it (an irrelevant calculation is null). The phone stores these."""
    values = dict(answers)
    for field in form.calculations:
        assert field.calculation is not None
        relevant = field.relevant.holds(values, clock=clock)
        value = field.calculation.evaluate(values, clock=clock) if relevant else None
        values[field.id] = value if is_answered(value) else None
    return {field.id: values[field.id] for field in form.calculations}


def _calculation_error(given: object, expected: object) -> str | None:
    """``calculation_mismatch`` unless the stored value is the recomputed one (unanswered
    for null; numbers to within a relative 1e-9)."""
    if not is_answered(given):
        return None if expected is None else "calculation_mismatch"
    return None if same_value(given, expected) else "calculation_mismatch"


def same_value(given: object, expected: object) -> bool:
    """Whether a stored calculation is the recomputed value: equal numbers to within a
    relative 1e-9, equal text or booleans, lists of such values item by item."""
    if is_number(given) and is_number(expected):
        scale = max(1.0, abs(given), abs(expected))
        return abs(given - expected) <= _CALCULATION_TOLERANCE * scale
    if isinstance(given, list) and isinstance(expected, list):
        return len(given) == len(expected) and all(map(same_value, given, expected))
    return expected is not None and equal(given, expected)


def problems_found(
    form: FormVersion, answers: Mapping[str, object], *, clock: str | None = None
) -> list[dict[str, str]]:
    """The problems the answers point to, in form order, for the PWA to offer as new problems."""
    return [
        {"field": field.id, "category": field.problem.category}
        for field in form.fields.values()
        if field.problem is not None
        and field.relevant.holds(answers, clock=clock)
        and field.problem.when.holds(answers, clock=clock)
    ]


def check_value(field: Field, value: object, people: Collection[str] | None = None) -> str | None:
    """The message code of an answer that does not fit the field, or None when it fits."""
    return _CHECKS[field.type](field, value, people)


def _field_error(
    field: Field, answers: Mapping[str, object], people: Collection[str] | None, clock: str | None
) -> str | None:
    """At most one code per field: relevance first, then presence, then the value itself."""
    value = answers.get(field.id)
    answered = is_answered(value)
    if not field.relevant.holds(answers, clock=clock):
        return "not_relevant" if answered else None
    if not answered:
        return "required" if field.required.holds(answers, clock=clock) else None
    code = check_value(field, value, people)
    if code is None and field.choice_filter:
        chosen = value if isinstance(value, list) else [value]
        offered = offered_choices(field, answers)
        code = None if all(item in offered for item in chosen) else "not_offered"
    if code is None and not field.constraint.holds(answers, clock=clock):
        return "constraint"
    return code


def offered_choices(field: Field, answers: Mapping[str, object]) -> list[str]:
    """The choices a cascading list offers given the other answers, in order: those whose
    ``filter`` column equals, as text, each term's answer or literal (an unanswered question
    is the empty text, as in XLSForm; an answer that is no text matches nothing)."""
    expected: dict[str, str | None] = {}
    for term in field.choice_filter:
        if term.field is None:
            expected[term.column] = term.value
            continue
        answer = answers.get(term.field)
        if not is_answered(answer):
            answer = ""
        expected[term.column] = answer if isinstance(answer, str) else None
    return [
        value
        for value, tags in field.choice_tags.items()
        if all(tags.get(column, "") == want for column, want in expected.items())
    ]


def _check_text(field: Field, value: object, people: Collection[str] | None) -> str | None:
    if not isinstance(value, str):
        return "wrong_type:text"
    if len(value) > field.max_length:
        return f"too_long:{field.max_length}"
    return None


def _check_number(field: Field, value: object, people: Collection[str] | None) -> str | None:
    if not is_number(value) or not math.isfinite(value):
        return "wrong_type:number"
    return _bound_error(field, value)


def _check_integer(field: Field, value: object, people: Collection[str] | None) -> str | None:
    if not is_number(value) or not math.isfinite(value) or not float(value).is_integer():
        return "wrong_type:integer"
    return _bound_error(field, value)


def _check_range(field: Field, value: object, people: Collection[str] | None) -> str | None:
    """A number within min and max, a whole number of steps above min."""
    if not is_number(value) or not math.isfinite(value):
        return "wrong_type:range"
    error = _bound_error(field, value)
    if error is None and field.step is not None and field.minimum is not None:
        steps = (value - field.minimum) / field.step
        if abs(steps - round(steps)) > _STEP_TOLERANCE:
            return f"off_step:{format_number(field.step)}"
    return error


def _bound_error(field: Field, value: int | float) -> str | None:
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


def _check_time(field: Field, value: object, people: Collection[str] | None) -> str | None:
    if not isinstance(value, str) or not _TIME.fullmatch(value):
        return "wrong_type:time"
    return None if _is_time(value) else "invalid_time"


def _check_datetime(field: Field, value: object, people: Collection[str] | None) -> str | None:
    """A local date and time as a phone's datetime input writes it: ``2026-05-01T14:30``."""
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        return "wrong_type:datetime"
    day, _, time = value.partition("T")
    try:
        datetime.date.fromisoformat(day)
    except ValueError:
        return "invalid_date"
    return None if _is_time(time) else "invalid_time"


def _is_time(text: str) -> bool:
    """``HH:MM`` or ``HH:MM:SS`` naming a time of the day (00:00 to 23:59:59)."""
    hours, minutes, *seconds = (int(part) for part in text.split(":"))
    return hours < 24 and minutes < 60 and all(second < 60 for second in seconds)


def _check_note(field: Field, value: object, people: Collection[str] | None) -> str | None:
    """A note is text to read; it takes no answer."""
    return "wrong_type:note"


def _check_hidden(field: Field, value: object, people: Collection[str] | None) -> str | None:
    return None if isinstance(value, str) else "wrong_type:hidden"


def _check_calculate(field: Field, value: object, people: Collection[str] | None) -> str | None:
    """A calculation's value is what its expression gives: text, a number, a boolean or a
    list of them; whether it is the right one is checked against the recomputation."""
    scalar = (str, bool, int, float)
    fits = isinstance(value, scalar) or (
        isinstance(value, list) and all(isinstance(item, scalar) for item in value)
    )
    if is_number(value) and not math.isfinite(value):
        fits = False
    return None if fits else "wrong_type:calculate"


def _check_geopoint(field: Field, value: object, people: Collection[str] | None) -> str | None:
    return None if _is_point(value) else "wrong_type:geopoint"


def _check_geopoints(field: Field, value: object, people: Collection[str] | None) -> str | None:
    """A line (geotrace) or an area (geoshape): a list of enough points, stored as given."""
    fits = (
        isinstance(value, list)
        and len(value) >= _LEAST_POINTS[field.type]
        and all(_is_point(point) for point in value)
    )
    return None if fits else f"wrong_type:{field.type}"


def _is_point(value: object) -> bool:
    """``{"lat", "lon"}`` in degrees, with the phone's ``accuracy`` (metres, at least 0) and
    ``altitude`` when it gives them."""
    if not isinstance(value, dict) or not {"lat", "lon"} <= value.keys() <= _POINT_KEYS:
        return False
    numbers = value.values()
    if not all(is_number(n) and math.isfinite(n) for n in numbers):
        return False
    accuracy = value.get("accuracy", 0)
    return bool(abs(value["lat"]) <= 90 and abs(value["lon"]) <= 180 and accuracy >= 0)


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
    "integer": _check_integer,
    "range": _check_range,
    "time": _check_time,
    "datetime": _check_datetime,
    "note": _check_note,
    "hidden": _check_hidden,
    "geopoint": _check_geopoint,
    "geotrace": _check_geopoints,
    "geoshape": _check_geopoints,
    "calculate": _check_calculate,
}


def format_number(number: int | float) -> str:
    """A bound as it appears in a code: integral values without a decimal point (``0``, ``2.5``)."""
    if float(number).is_integer():
        return str(int(number))
    return repr(float(number))
