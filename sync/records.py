"""What each record type holds, which fields phones may create and update, how values are
checked.

One table of field specs serves op validation, the merge rules and the server's storage.
Validation here is hand-written on purpose: it runs once per op on the push hot path
(see bench/README.md for what a schema library costs per visit).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

UUID_PATTERN = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
PERSON_FLAGS = ("elderly", "frail", "sick", "disabled", "orphan", "alone", "left_behind")
VISIT_MODES = ("home", "phone", "wechat", "video", "other")
PROBLEM_STATUSES = ("open", "in_progress", "resolved", "verified")
MEASURE_CATEGORIES = (
    "industry",
    "employment",
    "education",
    "medical",
    "housing",
    "social_security",
    "other",
)
MEASURE_STATUSES = ("planned", "in_progress", "done")
HOUSEHOLD_STATUSES = ("active", "archived")
VISIT_POLICIES = ("weekly", "monthly", "none")
MAX_TEXT = 2000
#: times outside these years are refused: a phone set to 1970 or 2035 is right inside them,
#: and every time in them can be shifted by any skew between two of them without overflow
MIN_YEAR, MAX_YEAR = 1900, 2999
FIRST_BIRTH_YEAR = 1880
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
#: why an ID number is refused, by the code id_number_problem answers (the roster words
#: them for people, in Chinese and English, with the number masked)
ID_NUMBER_PROBLEMS = {
    "id_length": "must have 18 characters (15-digit numbers of the first generation are "
    "not accepted)",
    "id_characters": "the first 17 characters must be digits, the last a digit or X",
    "id_birth_date": "holds no valid birth date",
    "id_check_digit": "has a wrong check digit",
}

Check = Callable[[Any], str | None]


def _text(max_length: int = MAX_TEXT, nullable: bool = True) -> Check:
    def check(value: Any) -> str | None:
        if value is None:
            return None if nullable else "required"
        if not isinstance(value, str):
            return "must be a string"
        if len(value) > max_length:
            return f"longer than {max_length} characters"
        return None

    return check


def _required_text(max_length: int = 200) -> Check:
    def check(value: Any) -> str | None:
        problem = _text(max_length, nullable=False)(value)
        if problem is None and not value.strip():
            return "must not be empty"
        return problem

    return check


def _uuid(nullable: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if value is None:
            return None if nullable else "required"
        if not isinstance(value, str) or not UUID_PATTERN.match(value):
            return "must be a UUID"
        return None

    return check


def _ref(nullable: bool = True) -> Check:
    """An id of a record the server created (uuid or any short token)."""

    def check(value: Any) -> str | None:
        if value is None:
            return None if nullable else "required"
        if not isinstance(value, str) or not 0 < len(value) <= 64:
            return "must be an id"
        return None

    return check


def _choice(options: tuple[str, ...], nullable: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if value is None:
            return None if nullable else "required"
        if value not in options:
            return "must be one of " + ", ".join(options)
        return None

    return check


def _integer(low: int, high: int, nullable: bool = True) -> Check:
    def check(value: Any) -> str | None:
        if value is None:
            return None if nullable else "required"
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be an integer"
        if not low <= value <= high:
            return f"must be between {low} and {high}"
        return None

    return check


def _number(low: float, high: float, nullable: bool = True) -> Check:
    def check(value: Any) -> str | None:
        if value is None:
            return None if nullable else "required"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        if not low <= value <= high:
            return f"must be between {low} and {high}"
        return None

    return check


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _date(nullable: bool = True) -> Check:
    def check(value: Any) -> str | None:
        if value is None:
            return None if nullable else "required"
        if not isinstance(value, str) or len(value) != 10:
            return "must be a date YYYY-MM-DD"
        try:
            date.fromisoformat(value)
        except ValueError:
            return "must be a date YYYY-MM-DD"
        return None

    return check


def parse_offset_datetime(value: Any) -> datetime | None:
    """An ISO 8601 timestamp with a UTC offset, or None when it is not one."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None or not MIN_YEAR <= parsed.year <= MAX_YEAR:
        return None  # a year-1 time in +05:00 cannot even be compared with UTC
    return parsed


def _offset_datetime(value: Any) -> str | None:
    if parse_offset_datetime(value) is None:
        return (
            "must be an ISO 8601 time with offset between the years "
            f"{MIN_YEAR} and {MAX_YEAR}, e.g. 2026-11-24T09:31:00+08:00"
        )
    return None


def id_number_check_digit(first17: str) -> str:
    """The 18th character of a 居民身份证号 (GB 11643-1999, ISO 7064 MOD 11-2)."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise ValueError(f"expected 17 digits, got {first17!r}")
    total = sum(int(digit) * weight for digit, weight in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def normal_id_number(value: str) -> str:
    """An ID number as people type it, in its one spelling: no spaces, the x upper case."""
    return value.strip().replace(" ", "").upper()


def id_number_problem(value: str, today: date | None = None) -> str | None:
    """Why ``value`` is no valid 居民身份证号 (GB 11643: 18 characters, a real birth date from
    1880 to ``today``, the MOD 11-2 check character), as a code of ID_NUMBER_PROBLEMS; None if
    it is one. The one rule of sync, the admin API and the roster import.

    ``today`` defaults to the latest date anywhere on Earth, so that a child registered on its
    birthday in China is never refused by a server whose clock says UTC."""
    if len(value) != 18:
        return "id_length"
    first17, last = value[:17], value[17]
    if not (first17.isascii() and first17.isdigit()) or last not in "0123456789X":
        return "id_characters"
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return "id_birth_date"
    latest = today or (datetime.now(UTC) + timedelta(hours=14)).date()
    if born.year < FIRST_BIRTH_YEAR or born > latest:
        return "id_birth_date"
    if id_number_check_digit(first17) != last:
        return "id_check_digit"
    return None


def _normal_id_number(value: Any) -> Any:
    """An empty ID number is none on file."""
    return (normal_id_number(value) or None) if isinstance(value, str) else value


def _id_number(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        return "must be a string"
    problem = id_number_problem(value)
    return ID_NUMBER_PROBLEMS[problem] if problem else None


def _flags(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(f, str) for f in value):
        return "must be a list of flags"
    unknown = sorted(set(value) - set(PERSON_FLAGS))
    if unknown:
        return "unknown flags: " + ", ".join(unknown)
    return None


def _id_list(value: Any) -> str | None:
    if not isinstance(value, list) or len(value) > 50:
        return "must be a list of ids"
    if not all(isinstance(v, str) and 0 < len(v) <= 64 for v in value):
        return "must be a list of ids"
    return None


def _json_object(value: Any) -> str | None:
    return None if isinstance(value, dict) else "must be an object"


#: the checks of a location's numbers, made once: every visit made at home carries one
_LOCATION_NUMBERS = (
    ("lat", _number(-90, 90, nullable=False)),
    ("lon", _number(-180, 180, nullable=False)),
)
_ACCURACY = _number(0, 1e7)


def _location(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return "must be an object {lat, lon, accuracy} or null"
    for key, check in _LOCATION_NUMBERS:
        problem = check(value.get(key))
        if problem:
            return f"{key} {problem}"
    if _ACCURACY(value.get("accuracy")):
        return "accuracy must be a number of metres"
    if set(value) - {"lat", "lon", "accuracy"}:
        return "only lat, lon and accuracy"
    return None


@dataclass(frozen=True)
class Field:
    check: Check
    updatable: bool = True
    required: bool = False
    default: Any = None
    #: the value in its one spelling, applied before the check (``normalized``)
    normalize: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class RecordType:
    name: str
    fields: dict[str, Field]
    actions: frozenset[str]
    #: per-field merge rule name when concurrent writes disagree (default: "latest")
    rules: dict[str, str]


RECORD_TYPES: dict[str, RecordType] = {
    "household": RecordType(
        "household",
        {
            "village_id": Field(_ref(nullable=False), updatable=False, required=True),
            "code": Field(_text(40), updatable=False),
            "head_name": Field(_required_text()),
            "address": Field(_text(200)),
            "phone": Field(_text(40)),
            "category": Field(_text(40)),
            "status": Field(_choice(HOUSEHOLD_STATUSES), default="active"),
            "visit_policy": Field(_choice(VISIT_POLICIES), default="weekly"),
            "lat": Field(_number(-90, 90)),
            "lon": Field(_number(-180, 180)),
            "notes": Field(_text()),
        },
        frozenset({"update"}),
        {},
    ),
    "person": RecordType(
        "person",
        {
            "household_id": Field(_ref(nullable=False), updatable=False, required=True),
            "name": Field(_required_text(), required=True),
            "gender": Field(_text(10)),
            "birth_year": Field(_integer(1880, 2100)),
            "relation": Field(_text(20)),
            "flags": Field(_flags, default=[]),
            "id_number": Field(_id_number, normalize=_normal_id_number),
            "phone": Field(_text(40)),
            "notes": Field(_text()),
        },
        frozenset({"create", "update"}),
        {"flags": "union"},
    ),
    "visit": RecordType(
        "visit",
        {
            "household_id": Field(_ref(nullable=False), required=True),
            "visited_at": Field(_offset_datetime, required=True),
            "mode": Field(_choice(VISIT_MODES), required=True),
            "form_id": Field(_text(64)),
            "form_version": Field(_integer(1, 10**6)),
            "answers": Field(_json_object, default={}),
            "people_seen": Field(_id_list, default=[]),
            "location": Field(_location),
            "notes": Field(_text()),
            "corrects": Field(_uuid(nullable=True)),
        },
        frozenset({"create", "void"}),
        {},
    ),
    "problem": RecordType(
        "problem",
        {
            "household_id": Field(_ref(nullable=False), updatable=False, required=True),
            "person_id": Field(_ref()),
            "visit_id": Field(_ref(), updatable=False),
            "category": Field(_required_text(40), required=True),
            "description": Field(_required_text(MAX_TEXT), required=True),
            "status": Field(_choice(PROBLEM_STATUSES), default="open"),
            "assignee_id": Field(_ref()),
            "due_date": Field(_date()),
            "resolution": Field(_text()),
            "status_note": Field(_text()),
        },
        frozenset({"create", "update"}),
        {"status": "least_closed"},
    ),
    "measure": RecordType(
        "measure",
        {
            "household_id": Field(_ref(nullable=False), updatable=False, required=True),
            "person_id": Field(_ref()),
            "category": Field(_choice(MEASURE_CATEGORIES), required=True),
            "description": Field(_required_text(MAX_TEXT), required=True),
            "responsible_id": Field(_ref()),
            "status": Field(_choice(MEASURE_STATUSES), default="planned"),
            "due_date": Field(_date()),
        },
        frozenset({"create", "update"}),
        {},
    ),
}

#: record types a device pulls but never writes
READ_ONLY_TYPES = ("region", "form", "conflict")
ALL_TYPES = ("region", "form", "household", "person", "visit", "problem", "measure", "conflict")


def normalized(record_type: RecordType, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with each value in its field's one spelling, as it is checked and stored."""
    out = dict(data)
    for name, value in data.items():
        spec = record_type.fields.get(name)
        if spec is not None and spec.normalize is not None:
            out[name] = spec.normalize(value)
    return out


def check_fields(
    record_type: RecordType, data: dict[str, Any], creating: bool
) -> dict[str, list[str]]:
    """Field → messages for ``data`` of a create (all fields) or an update (changed fields only)."""
    errors: dict[str, list[str]] = {}
    for name, value in data.items():
        spec = record_type.fields.get(name)
        if spec is None:
            errors[name] = ["unknown field"]
        elif not creating and not spec.updatable:
            errors[name] = ["cannot be changed"]
        else:
            problem = spec.check(value)
            if problem:
                errors[name] = [problem]
    if creating:
        for name, spec in record_type.fields.items():
            if spec.required and name not in data:
                errors[name] = ["required"]
    return errors


def with_defaults(record_type: RecordType, data: dict[str, Any]) -> dict[str, Any]:
    """A created record's full data: every declared field, defaults where the op left one out."""
    return {
        name: data[name] if name in data else _fresh(spec.default)
        for name, spec in record_type.fields.items()
    }


def _fresh(default: Any) -> Any:
    """A default of a new record's own: a list or an object is copied (the record may change
    it), None and the strings are shared."""
    return default if default is None or isinstance(default, str) else copy.deepcopy(default)
