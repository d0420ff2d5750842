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

    ``people`` are the ids of the household's people; when given, a person answer (and the
    person of an entry of a repeat seeded from the people) must be one of them. The fields of
    a repeat's entries are keyed ``<repeat>[<index>].<field>``, the index counted from 0.
    ``clock`` is the visit's local time ``YYYY-MM-DDTHH:MM:SS``, what ``today()`` and ``now()``
    read (null without it).
    """
    known_people = None if people is None else frozenset(people)
    errors = {field_id: ["unknown_field"] for field_id in answers if field_id not in form.fields}
    context = answer_context(form, answers)
    expected = _computed(form.calculations, dict(context), clock)
    for field in form.fields.values():
        if field.type == "repeat":
            value = answers.get(field.id)
            errors.update(_repeat_errors(field, value, context, known_people, field.id, clock))
            continue
        code = _field_error(field, answers.get(field.id), context, known_people, clock)
        if code is None and field.id in expected:
            code = _calculation_error(answers.get(field.id), expected[field.id])
        if code is not None:
            errors[field.id] = [code]
    return errors


def answer_context(form: FormVersion, answers: Mapping[str, object]) -> dict[str, object]:
    """What a condition outside any repeat reads: the answers, and for each field of a
    repeat the list of its values across the entries (so ``count()`` and ``sum()`` read them)."""
    return _level_context(form.fields, answers, answers)


def _level_context(
    fields: Mapping[str, Field], answers: Mapping[str, object], base: Mapping[str, object]
) -> dict[str, object]:
    """``base`` with, for each repeat among ``fields`` (whose answers are ``answers``), every
    field of its entries at any depth as the list of its values, entry after entry."""
    context = dict(base)
    for repeat in fields.values():
        if repeat.type == "repeat":
            for child, values in _values_across(repeat, _entries(answers.get(repeat.id))).items():
                context[child] = values
    return context


def _values_across(repeat: Field, entries: list[Mapping[str, object]]) -> dict[str, list[object]]:
    """Each field of the repeat at any depth -> its values across ``entries`` (those of a
    nested repeat flattened, entry after entry, as XPath reads a path across repeats)."""
    values: dict[str, list[object]] = {child: [] for child in repeat.fields}
    for entry in entries:
        for child in repeat.fields.values():
            values[child.id].append(entry.get(child.id))
            if child.type == "repeat":
                for inner, found in _values_across(child, _entries(entry.get(child.id))).items():
                    values.setdefault(inner, []).extend(found)
    return values


def entry_context(
    repeat: Field, context: Mapping[str, object], entry: Mapping[str, object]
) -> dict[str, object]:
    """What a condition inside one entry of a repeat reads: the entry's own answers over the
    enclosing level's (``context`` from ``answer_context``, or the enclosing entry's), and the
    fields of a repeat inside the entry as lists."""
    inside = {**context, **{child: entry.get(child) for child in repeat.fields}}
    return _level_context(repeat.fields, entry, inside)


def _entries(value: object) -> list[Mapping[str, object]]:
    return [e for e in value if isinstance(e, dict)] if isinstance(value, list) else []


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
    return _computed(form.calculations, answer_context(form, answers), clock)


def _computed(
    calculations: tuple[Field, ...],
    values: dict[str, object],
    clock: str | None,
    position: int | None = None,
) -> dict[str, object]:
    """Each of ``calculations`` (in their order) computed from ``values``, which each result
    joins for those after it to read: the form's own, or one entry's at its ``position``."""
    for field in calculations:
        assert field.calculation is not None
        relevant = field.relevant.holds(values, clock=clock, position=position)
        value = (
            field.calculation.evaluate(values, clock=clock, position=position) if relevant else None
        )
        values[field.id] = value if is_answered(value) else None
    return {field.id: values[field.id] for field in calculations}


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
    context = answer_context(form, answers)
    return [
        {"field": field.id, "category": field.problem.category}
        for field in form.fields.values()
        if field.problem is not None
        and field.relevant.holds(context, clock=clock)
        and field.problem.when.holds(context, clock=clock)
    ]


def check_value(field: Field, value: object, people: Collection[str] | None = None) -> str | None:
    """The message code of an answer that does not fit the field, or None when it fits."""
    return _CHECKS[field.type](field, value, people)


def _field_error(
    field: Field,
    value: object,
    context: Mapping[str, object],
    people: Collection[str] | None,
    clock: str | None,
    position: int | None = None,
) -> str | None:
    """At most one code per field: relevance first, then presence, then the value itself."""
    answered = is_answered(value)
    if not field.relevant.holds(context, clock=clock, position=position):
        return "not_relevant" if answered else None
    if not answered:
        return "required" if field.required.holds(context, clock=clock, position=position) else None
    code = check_value(field, value, people)
    if code is None and field.choice_filter:
        chosen = value if isinstance(value, list) else [value]
        offered = offered_choices(field, context)
        code = None if all(item in offered for item in chosen) else "not_offered"
    if code is None and not field.constraint.holds(context, clock=clock, position=position):
        return "constraint"
    return code


def _repeat_errors(
    repeat: Field,
    value: object,
    context: Mapping[str, object],
    people: Collection[str] | None,
    key: str,
    clock: str | None,
    position: int | None = None,
) -> dict[str, list[str]]:
    """The repeat's own code (relevance, presence, shape, number of entries) under ``key``,
    and each entry's, validated like a form of the repeat's fields, under ``key[i].field``
    (a repeat inside it under ``key[i].inner[j].field``)."""
    code = _field_error(repeat, value, context, people, clock, position)
    # an answered repeat with no code is relevant: _field_error checked that first
    if code is not None or not is_answered(value):
        return {} if code is None else {key: [code]}
    assert isinstance(value, list)
    errors: dict[str, list[str]] = {}
    wanted = (
        None
        if repeat.repeat_count is None
        else repeat.repeat_count.evaluate(context, clock=clock, position=position)
    )
    if is_number(wanted) and len(value) != wanted:
        errors[key] = [f"entry_count:{format_number(wanted)}"]
    seen: set[object] = set()
    for index, entry in enumerate(value):
        assert isinstance(entry, dict)
        where = f"{key}[{index}]."
        for name in entry:
            if name not in repeat.fields and not (name == "person" and repeat.seed):
                errors[where + name] = ["unknown_field"]
        if repeat.seed:
            code = _entry_person_error(entry.get("person"), seen, people)
            if code is not None:
                errors[where + "person"] = [code]
        inside = entry_context(repeat, context, entry)
        # the phone stores each entry's calculations in the entry: each is checked
        expected = _computed(repeat.calculations, dict(inside), clock, index + 1)
        for child in repeat.fields.values():
            if child.type == "repeat":
                inner = entry.get(child.id)
                errors.update(
                    _repeat_errors(child, inner, inside, people, where + child.id, clock, index + 1)
                )
                continue
            code = _field_error(child, entry.get(child.id), inside, people, clock, index + 1)
            if code is None and child.id in expected:
                code = _calculation_error(entry.get(child.id), expected[child.id])
            if code is not None:
                errors[where + child.id] = [code]
    return errors


def _entry_person_error(
    person: object, seen: set[object], people: Collection[str] | None
) -> str | None:
    """An entry of a repeat seeded from the people names one of them, each at most once."""
    if not is_answered(person):
        return "required"
    if not isinstance(person, str):
        return "wrong_type:person"
    if people is not None and person not in people:
        return "unknown_person"
    if person in seen:
        return "duplicate_person"
    seen.add(person)
    return None


def offered_choices(field: Field, answers: Mapping[str, object]) -> list[str]:
    """The choices a cascading list offers given the other answers, in order: those whose
    ``filter`` column equals, as text, each term's answer or literal (an unanswered question
    is the empty text, as in XLSForm; a multiple choice's values joined by a space, as XPath
    reads them; any other answer that is no text matches nothing), and, for a ``selected_in``
    term, is one of the values selected there. A value the
    list names more than once (under different filters) is offered when any of them matches."""
    expected: dict[str, str | None] = {}
    among: dict[str, frozenset[str]] = {}  # selected_in terms: the values selected there
    for term in field.choice_filter:
        if term.selected_in is not None:
            chosen = answers.get(term.selected_in)
            among[term.column] = frozenset(_texts(chosen) or ())
            continue
        if term.field is None:
            expected[term.column] = term.value
            continue
        answer = answers.get(term.field)
        if not is_answered(answer):
            answer = ""
        texts = _texts(answer)
        if texts is not None:
            answer = " ".join(texts)  # a multiple choice reads as XPath's space-joined values
        expected[term.column] = answer if isinstance(answer, str) else None
    return [
        value
        for value, filters in field.choice_tags.items()
        if any(
            all(tags.get(column, "") == want for column, want in expected.items())
            and all(tags.get(column, "") in chosen for column, chosen in among.items())
            for tags in filters
        )
    ]


def _texts(answer: object) -> list[str] | None:
    """A list answer of texts (a multiple choice's), else None."""
    if isinstance(answer, list) and all(isinstance(item, str) for item in answer):
        return answer
    return None


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


def _check_file(field: Field, value: object, people: Collection[str] | None) -> str | None:
    """A photo, recording or file is stored by content: the answer is its sha256."""
    if not isinstance(value, str) or not _SHA256.fullmatch(value):
        return f"wrong_type:{field.type}"
    return None


def _check_barcode(field: Field, value: object, people: Collection[str] | None) -> str | None:
    """The text a barcode holds, scanned or typed."""
    return None if isinstance(value, str) else "wrong_type:barcode"


def _check_rank(field: Field, value: object, people: Collection[str] | None) -> str | None:
    """Choice values in the order of preference: all of them or some, each at most once."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return "wrong_type:rank"
    return _check_multiple_choice(field, value, people)


def _check_repeat(field: Field, value: object, people: Collection[str] | None) -> str | None:
    """A list of entries, each an object of the repeat's field ids to answers."""
    fits = isinstance(value, list) and all(isinstance(entry, dict) for entry in value)
    return None if fits else "wrong_type:repeat"


_CHECKS: dict[str, Check] = {
    "text": _check_text,
    "number": _check_number,
    "boolean": _check_boolean,
    "date": _check_date,
    "single_choice": _check_single_choice,
    "multiple_choice": _check_multiple_choice,
    "person": _check_person,
    "photo": _check_file,
    "integer": _check_integer,
    "range": _check_range,
    "time": _check_time,
    "datetime": _check_datetime,
    "note": _check_note,
    "hidden": _check_hidden,
    "geopoint": _check_geopoint,
    "geotrace": _check_geopoints,
    "geoshape": _check_geopoints,
    "repeat": _check_repeat,
    "audio": _check_file,
    "video": _check_file,
    "file": _check_file,
    "barcode": _check_barcode,
    "rank": _check_rank,
    "calculate": _check_calculate,
}


def format_number(number: int | float) -> str:
    """A bound as it appears in a code: integral values without a decimal point (``0``, ``2.5``)."""
    if float(number).is_integer():
        return str(int(number))
    return repr(float(number))
