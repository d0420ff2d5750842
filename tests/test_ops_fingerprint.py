"""An op's payload is spelled exactly as the standard library spells it, whichever encoder the
server passes (sync.ops.canonical_json): the ops log keeps each op's fingerprint, and a phone
re-sending an op after an upgrade must find it a duplicate, never a conflict."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.storage.store import canonical_dumps
from sync.ops import canonical_json, parse_ops


def stdlib(value: Any) -> str:
    """The spelling every stored fingerprint was made with."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=500)
@given(json_values)
def test_the_fast_spelling_of_any_json_value_is_the_stdlibs(value):
    assert canonical_json(value, canonical_dumps) == stdlib(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_the_fast_spelling_of_any_float_is_the_stdlibs(number):
    assert canonical_json({"lat": number}, canonical_dumps) == stdlib({"lat": number})


EDGES = [
    # floats where orjson spells otherwise (1e-05 against 0.00001, 1e-07 against 1e-7)
    1e-05,
    9.99e-05,
    1e-07,
    -1.234e-09,
    1e-10,
    5e-324,
    1e-4,
    0.0001000001,
    9999999999999998.0,
    1e16,
    -1e16,
    1.7976931348623157e308,
    -0.0,
    0.0,
    float("nan"),  # not JSON, but the stdlib spells it: NaN, where orjson writes null
    float("inf"),
    [float("-inf")],
    # integers beyond 64 bits, which orjson refuses
    2**63,
    2**64 - 1,
    2**64,
    -(2**63) - 1,
    [10**30],
    # every control character, escapes, non-BMP, separators JavaScript treats as line ends
    "".join(chr(c) for c in range(0x20)),
    '"\\/\x7f\u2028\u2029\ufeff\uffff',
    "😀𝄞\U0010ffff",
    "\ud800",  # a lone surrogate: orjson refuses it
    # key order with non-ASCII and non-BMP keys
    {"é": 1, "z": 2, "Z": 3, "中": 4, "😀": 5, "\uffff": 6, "": 7, "\x00": 8, "\ue000": 9},
    {"b": {"😀": [], "\uffff": {}}, "a": [{"y": None, "x": True}]},
    # not JSON as parsed, spelled by the stdlib all the same: non-string keys, tuples
    {1: "one", 2: "two"},
    {"t": (1, 2.5e-7)},
    {True: 1},
]


@pytest.mark.parametrize("value", EDGES, ids=repr)
def test_the_fast_spelling_of_an_edge_case_is_the_stdlibs(value):
    assert canonical_json(value, canonical_dumps) == stdlib(value)


def test_a_value_the_stdlib_cannot_spell_is_refused_with_the_fast_encoder_too():
    with pytest.raises(TypeError):
        canonical_json({"when": dt.datetime(2026, 12, 4)}, canonical_dumps)


def visit_op(**data: Any) -> dict[str, Any]:
    return {
        "op_id": "0b7e1a52-8e7a-4f0a-9d7e-3f5d2c1b0a99",
        "device_seq": 1,
        "hlc": "001763971200000-0000",
        "action": "create",
        "type": "visit",
        "id": "5d0f4c4e-2c55-4a53-9b8f-8e2f0e1c9a11",
        "base_version": None,
        "data": {"household_id": "5d0f4c4e-2c55-4a53-9b8f-8e2f0e1c9a12", **data},
    }


@pytest.mark.parametrize(
    "data",
    [
        {"location": {"lat": 30.123456, "lon": 104.5, "accuracy": 12}, "notes": "老人身体良好"},
        {"location": {"lat": 1e-05, "lon": 104.5, "accuracy": 1e-7}},
        {"answers": {"income": 2**70, "note": "\x1f\u2028"}},
        {"answers": {"n": math.ulp(0.0)}},
    ],
    ids=["usual", "tiny floats", "huge int", "subnormal"],
)
def test_an_ops_payload_and_fingerprint_are_the_same_with_the_fast_encoder(data):
    raw = visit_op(**data)
    slow, fast = parse_ops([raw], "phone-a")[0], parse_ops([raw], "phone-a", canonical_dumps)[0]
    assert fast.payload == slow.payload == stdlib(raw)
    assert fast.fingerprint == slow.fingerprint
