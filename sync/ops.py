"""The op envelope of a push (CONTRACT §5): parsing, validation and the payload fingerprint.

Two levels of failure: an op whose ``op_id`` or ``device_seq`` is unusable cannot even be
acknowledged, so the whole request fails (422); any other problem makes that one op
``rejected`` — acknowledged, kept for review, never applied.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, NamedTuple

from sync.errors import ValidationFailed
from sync.hlc import is_hlc
from sync.records import RECORD_TYPES, UUID_PATTERN, check_fields, normalized

ACTIONS = ("create", "update", "void")
MAX_SEQ = 2**53 - 1  # what a JavaScript number holds exactly
#: how deep an op's JSON may nest: a visit's answers with repeats of lists use about 7 levels
MAX_DEPTH = 24


class Op(NamedTuple):
    """One op of a push, parsed. A named tuple: immutable like a frozen dataclass, and made in a
    third of the time, which a push of 500 ops notices (bench/profile_push.py)."""

    op_id: str
    device_seq: int
    hlc: str
    action: str
    type: str
    id: str
    base_version: int | None
    data: dict[str, Any]
    fingerprint: str
    payload: str  # the op as received, canonical JSON: what the ops log keeps
    #: field → messages when the op can never be applied; None when it is well formed
    problems: dict[str, list[str]] | None = None


#: a faster spelling of canonical JSON with sorted keys, e.g. orjson's (the server passes it; this
#: package is standard library only). It must raise TypeError for what it cannot spell, and is
#: only asked to spell plain values (see _shape), where its bytes are the stdlib's.
FastJson = Callable[[Any], str]
#: the leaves besides floats whose spelling orjson and the stdlib share (exact types: a subclass,
#: a tuple, a datetime… takes the stdlib's way, which is what decides what such a value means)
_PLAIN_LEAVES = frozenset({str, int, bool, type(None)})


def canonical_json(value: Any, fast: FastJson | None = None) -> str:
    """One spelling per JSON value, so that equal payloads hash equal whatever their key order.

    The spelling is the standard library's, for good: the ops log keeps each op's fingerprint,
    and a phone re-sending an op after an upgrade must find it a ``duplicate``. ``fast`` spells
    the same bytes in a fraction of the time; it is used only where that is known to hold."""
    return _spelled(value, fast, fast is not None and _shape(value, MAX_DEPTH)[1])


def _spelled(value: Any, fast: FastJson | None, plain: bool) -> str:
    """``value`` in canonical JSON: through ``fast`` when ``plain`` says it may be, else (or if
    ``fast`` refuses it: orjson refuses an int beyond 64 bits, a lone surrogate, a key that is
    not a string) through the standard library."""
    if fast is not None and plain:
        try:
            return fast(value)
        except TypeError:
            pass
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _plain_float(number: float) -> bool:
    """Whether the stdlib and orjson spell this float alike: both write the shortest digits that
    read back the same, but below 1e-4 the stdlib writes ``1e-05`` where orjson writes
    ``0.00001`` or ``1e-5``; nan and infinities are ``NaN``/``Infinity`` against orjson's
    ``null``. Large exponents (``1e+16``) agree today; they are left to the stdlib all the same,
    so that only positional notation (0, and 1e-4 ≤ |x| < 1e16) is trusted."""
    return number == 0.0 or 1e-4 <= abs(number) < 1e16


def fingerprint(payload: str, device_id: str) -> str:
    """Same device and same canonical payload: the same op."""
    return hashlib.sha256((device_id + "\n" + payload).encode()).hexdigest()


def parse_ops(raw_ops: Any, device_id: str, fast: FastJson | None = None) -> list[Op]:
    """Ops of a push in ``device_seq`` order; ValidationFailed if any cannot be acknowledged.
    ``fast`` spells the payloads' canonical JSON faster (canonical_json)."""
    if not isinstance(raw_ops, list):
        raise ValidationFailed({"ops": ["must be a list of ops"]})
    errors: dict[str, list[str]] = {}
    ops: list[Op] = []
    seen_seq: set[int] = set()
    for index, raw in enumerate(raw_ops):
        where = f"ops[{index}]"
        if not isinstance(raw, dict):
            errors[where] = ["must be an object"]
            continue
        op_id, seq = raw.get("op_id"), raw.get("device_seq")
        if not isinstance(op_id, str) or not UUID_PATTERN.match(op_id):
            errors[f"{where}.op_id"] = ["must be a UUID"]
        if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
            errors[f"{where}.device_seq"] = ["must be a positive integer"]
        elif seq in seen_seq:
            errors[f"{where}.device_seq"] = ["appears twice in this batch"]
        else:
            seen_seq.add(seq)
        if not errors:
            ops.append(_parse_one(raw, device_id, fast))
    if errors:
        raise ValidationFailed(errors)
    ops.sort(key=lambda op: op.device_seq)
    return ops


def _parse_one(raw: dict[str, Any], device_id: str, fast: FastJson | None) -> Op:
    too_deep, plain = _shape(raw, MAX_DEPTH)  # one walk for both
    problems = _too_deep(raw) if too_deep else {}
    if problems:  # rejected, and logged without the part that cannot even be serialised
        raw = _flattened(raw, problems)
        plain = False  # rare: no need for speed
    payload = _spelled(raw, fast, plain)
    action, type_, record_id = raw.get("action"), raw.get("type"), raw.get("id")
    hlc, base, data = raw.get("hlc"), raw.get("base_version"), raw.get("data", {})
    if not is_hlc(hlc):
        problems["hlc"] = ["must be an hlc like 001763971200000-0000"]
    record_type = RECORD_TYPES.get(type_) if isinstance(type_, str) else None
    if record_type is None:
        problems["type"] = ["must be one of " + ", ".join(RECORD_TYPES)]
    elif action not in record_type.actions:
        problems["action"] = [f"{type_} allows " + ", ".join(sorted(record_type.actions))]
    if not isinstance(record_id, str) or not (
        UUID_PATTERN.match(record_id) or (action != "create" and 0 < len(record_id) <= 64)
    ):
        problems["id"] = ["must be a UUID"]
    if base is not None and (isinstance(base, bool) or not isinstance(base, int) or base < 0):
        problems["base_version"] = ["must be a version number or null"]
    if not isinstance(data, dict):
        problems["data"] = ["must be an object"]
        data = {}
    elif record_type is not None and action in ("create", "update"):
        data = normalized(record_type, data)
        for name, messages in check_fields(record_type, data, action == "create").items():
            problems.setdefault(f"data.{name}", messages)
        if action == "update" and not data:
            problems["data"] = ["an update changes at least one field"]
    elif action == "void" and not _is_reason(data.get("reason")):
        problems["data.reason"] = ["a void needs a reason"]
    return Op(
        op_id=raw["op_id"],
        device_seq=raw["device_seq"],
        hlc=hlc if isinstance(hlc, str) else "",
        action=action if isinstance(action, str) else "",
        type=type_ if isinstance(type_, str) else "",
        id=record_id if isinstance(record_id, str) else "",
        base_version=base if isinstance(base, int) and not isinstance(base, bool) else None,
        data=data,
        fingerprint=fingerprint(payload, device_id),
        payload=payload,
        problems=problems or None,
    )


def _shape(value: Any, limit: int) -> tuple[bool, bool]:
    """Whether ``value`` nests more than ``limit`` levels, and whether it is plain: made of
    dicts, lists and leaves that orjson spells as the stdlib does (_PLAIN_LEAVES, _plain_float).
    One walk over every leaf of an op answers both; it is iterative, so a hostile op nested a
    thousand deep costs no recursion. ``type(x) is`` first: exact dicts and lists are what a
    parsed request holds, and the test is cheaper than ``isinstance``."""
    plain = True
    kind = type(value)
    if kind is not dict and kind is not list:
        if kind is float:
            return False, _plain_float(value)
        if kind in _PLAIN_LEAVES:
            return False, True
        if not isinstance(value, dict | list):
            return False, False
        plain = False  # a subclass of dict or list: walked for depth all the same
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return True, plain
        for child in item.values() if isinstance(item, dict) else item:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, level + 1))
            elif kind is float:
                if plain and not _plain_float(child):
                    plain = False
            elif kind not in _PLAIN_LEAVES:
                plain = False
                if isinstance(child, dict | list):
                    stack.append((child, level + 1))
    return False, plain


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests more than ``limit`` levels."""
    return _shape(value, limit)[0]


def _too_deep(raw: dict[str, Any]) -> dict[str, list[str]]:
    """The fields of an op nested deeper than MAX_DEPTH (counted from the op), as
    ``data.<name>`` inside ``data``; asked only of an op _shape found too deep."""
    message = [f"nested deeper than {MAX_DEPTH} levels"]
    problems: dict[str, list[str]] = {}
    for key, value in raw.items():
        if key == "data" and isinstance(value, dict):
            for name, inner in value.items():
                if _deeper_than(inner, MAX_DEPTH - 2):
                    problems[f"data.{name}"] = message
        elif _deeper_than(value, MAX_DEPTH - 1):
            problems[key] = message
    return problems


def _flattened(raw: dict[str, Any], problems: dict[str, list[str]]) -> dict[str, Any]:
    """``raw`` with every field named in ``problems`` set to null."""
    flat = {k: None if k in problems else v for k, v in raw.items()}
    if isinstance(raw.get("data"), dict):
        flat["data"] = {k: None if f"data.{k}" in problems else v for k, v in raw["data"].items()}
    return flat


def _is_reason(value: Any) -> bool:
    return isinstance(value, str) and len(value.strip()) > 0 and len(value) <= 500
